// SPDX-License-Identifier: Apache-2.0
// PickupWatcher on real directories and spools with the io_uring engine, on the test's
// thread (docs/spool-format.md §8): each file is claimed into the shard's work directory
// before it is read and queued with its claim in the commit record; at start, a claimed file
// whose claim is in the spool is removed (queued before a crash) and any other is taken
// again, while files in pickup/ itself are never matched against the spool; and the claim
// decides between two takers of one file.
#include <salvo/inbound/pickup_watcher.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <salvo/base/clock.h>
#include <salvo/io/engine.h>
#include <salvo/shard/shard.h>
#include <salvo/spool/recovery.h>
#include <salvo/spool/spool_writer.h>

#include "support/process.h"
#include "support/salvod.h"
#include "unit/spool/spool_test_util.h"

namespace salvo::inbound {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

TEST(PickupClaim, HoldsTheIdAndTheFileName) {
  EXPECT_EQ(pickup_claim(spool::MessageId(0xab), "a.eml"), "00000000000000ab-a.eml");
  EXPECT_EQ(pickup_claimed_name("00000000000000ab-a.eml"), "a.eml");
  EXPECT_EQ(pickup_work_dir("/p", 3), "/p/.work/shard-3");
  // A name too long to fit keeps its end (the extension).
  const std::string long_name = std::string(300, 'n') + ".json";
  const std::string claim = pickup_claim(spool::MessageId(1), long_name);
  EXPECT_EQ(claim.size(), 255u);
  EXPECT_EQ(pickup_claimed_name(claim), std::string_view(long_name).substr(long_name.size() - 238));
  for (std::string_view other : {"a.eml", "00000000000000ab-", "00000000000000ab_a.eml",
                                 "zzzzzzzzzzzzzzzz-a.eml", "00000000000000ab-.a.eml",
                                 "00000000000000ab-a.txt", "0000000000000000-a.eml"}) {
    EXPECT_FALSE(pickup_claimed_name(other)) << other;
  }
}

// The loop of one shard on the test's thread: deferred tasks, then the engine.
class TestShard final : public shard::Shard {
 public:
  TestShard(std::uint32_t id, io::Engine& engine) : id_(id), engine_(engine) {}
  shard::ShardId id() const noexcept override { return shard::ShardId(id_); }
  std::uint32_t count() const noexcept override { return 1; }
  io::Engine& engine() noexcept override { return engine_; }
  const Clock& clock() const noexcept override { return clock_; }
  void defer(std::function<void()> fn) override { deferred_.push_back(std::move(fn)); }
  void add_poller(shard::Poller*) override {}
  void remove_poller(shard::Poller*) override {}
  void on_stop(std::function<void()>) override {}
  void hold() noexcept override {}
  void release() noexcept override {}
  bool stopping() const noexcept override { return false; }
  shard::Stats& stats() noexcept override { return stats_; }

  void turn() {
    auto tasks = std::move(deferred_);
    deferred_.clear();
    for (auto& t : tasks) t();
    engine_.run_once(1ms);
  }

 private:
  std::uint32_t id_;
  io::Engine& engine_;
  SystemClock clock_;
  std::vector<std::function<void()>> deferred_;
  shard::Stats stats_;
};

// One salvod's shard 0 as far as pickup goes: its spool (recovered at start), writer and
// watcher.
class Node {
 public:
  Node(std::string spool, const PickupShared& shared)
      : engine_(spool::test::make_uring()),
        shard_(0, *engine_),
        dir_(std::move(spool) + "/shard-0"),
        shared_(shared) {}
  ~Node() { stop(); }

  Status start() {
    fs::create_directories(dir_);
    auto r = spool::recover(dir_, 0);
    if (!r) return std::unexpected(r.error());
    rec_ = std::make_unique<spool::RecoveryResult>(std::move(*r));
    spool::WriterOptions o;
    o.dir = dir_;
    o.segment_size = 1u << 20;
    o.reserve_bytes = 0;
    writer_ = std::make_unique<spool::SpoolWriter>(*engine_, clock_, o, rec_->index,
                                                   rec_->next_segment, rec_->next_id);
    watcher_ = std::make_unique<PickupWatcher>(shard_, *writer_, rec_->index, dir_, shared_,
                                               nullptr);
    return watcher_->start(std::move(rec_->pickup_claims));
  }
  void turn() { shard_.turn(); }
  void stop() {
    if (!watcher_) return;
    watcher_->begin_stop();
    for (int i = 0; i < 2000 && !watcher_->drained(); ++i) turn();
    watcher_.reset();
    writer_.reset();
    for (int i = 0; i < 5; ++i) turn();
  }
  const PickupStats& stats() const { return watcher_->stats(); }

 private:
  std::unique_ptr<io::Engine> engine_;
  TestShard shard_;
  SystemClock clock_;
  std::string dir_;
  const PickupShared& shared_;
  std::unique_ptr<spool::RecoveryResult> rec_;
  std::unique_ptr<spool::SpoolWriter> writer_;
  std::unique_ptr<PickupWatcher> watcher_;
};

std::string eml(int i) {
  return fmt::format(
      "X-Sender: s@esp.example\nX-Receiver: r{}@example.org\nSubject: m{}\n\nbody\n", i, i);
}

std::string job(const std::string& first) {
  return "{\"from\": \"s@esp.example\", \"content\": \"Subject: hi\\n\\nbody\\n\", "
         "\"recipients\": [{\"email\": \"" + first + "\"}, {\"email\": \"x@example.org\"}]}";
}

class PickupWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!spool::test::make_uring()) GTEST_SKIP() << "io_uring unavailable";
    shared_.dir = tmp_.file("pickup");
    shared_.hostname = "mx.test";
    shared_.rescan_interval = 100ms;
    work_ = pickup_work_dir(shared_.dir, 0);
  }
  // The writer's protocol: tmp/NAME, then rename into pickup/.
  void drop(const std::string& name, const std::string& text) {
    fs::create_directories(shared_.dir + "/tmp");
    std::ofstream(shared_.dir + "/tmp/" + name) << text;
    fs::rename(shared_.dir + "/tmp/" + name, shared_.dir + "/" + name);
  }
  // Names left in pickup/ plus files left in the work directory.
  std::size_t left() const {
    std::size_t n = 0;
    for (const auto& e : fs::directory_iterator(shared_.dir)) n += e.is_regular_file();
    if (!fs::exists(work_)) return n;
    for (const auto& e : fs::directory_iterator(work_)) n += e.is_regular_file();
    return n;
  }
  static bool run_until(const std::vector<Node*>& nodes, const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      for (Node* n : nodes) n->turn();
    }
    return true;
  }

  test::TempDir tmp_;
  PickupShared shared_;
  std::string work_;
};

// Crash between commit and unlink, then a new file under the same name: the claims of the
// queued files are removed at start (exactly once), the new files are queued (never
// matched against the spool), a claim that never reached the spool is taken again (under a
// new claim), and what salvod did not put in the work directory is left alone.
TEST_F(PickupWatcherTest, ClaimsAreSettledAtStartAndPickupItselfIsNeverMatched) {
  const std::string spool = tmp_.file("spool");
  drop("a.eml", eml(1));
  drop("b.json", job("first@example.org"));
  {
    Node node(spool, shared_);
    auto st = node.start();
    ASSERT_TRUE(st) << st.error().message();
    ASSERT_TRUE(run_until({&node}, [&] { return node.stats().files_queued == 2 && left() == 0; }));
  }
  auto items = test::read_spool_items(spool);
  ASSERT_EQ(items.size(), 2u);
  std::map<std::string, std::string> claims;  // name -> claim
  for (const auto& it : items) {
    EXPECT_EQ(pickup_claimed_name(it.pickup_claim), it.pickup_name) << it.pickup_claim;
    claims[it.pickup_name] = it.pickup_claim;
  }
  ASSERT_EQ(claims.size(), 2u);

  // What a crash after the commits and before the unlinks leaves: the claimed files.
  std::ofstream(work_ + "/" + claims["a.eml"]) << eml(1);
  std::ofstream(work_ + "/" + claims["b.json"]) << job("first@example.org");
  // New files by the same names, the .eml identical to the first one.
  drop("a.eml", eml(1));
  drop("b.json", job("second@example.org"));
  // Claimed before the crash but never committed; and something salvod did not write.
  const std::string unqueued_eml = pickup_claim(spool::MessageId(0x7777), "c.eml");
  const std::string unqueued_job = pickup_claim(spool::MessageId(0x7778), "d.json");
  std::ofstream(work_ + "/" + unqueued_eml) << eml(3);
  std::ofstream(work_ + "/" + unqueued_job) << job("third@example.org");
  std::ofstream(work_ + "/notes.txt") << "an operator's";

  Node node(spool, shared_);
  ASSERT_TRUE(node.start());
  EXPECT_FALSE(fs::exists(work_ + "/" + claims["a.eml"]));  // at start, before any file
  EXPECT_FALSE(fs::exists(work_ + "/" + claims["b.json"]));
  EXPECT_FALSE(fs::exists(work_ + "/" + unqueued_eml));  // claimed anew
  EXPECT_FALSE(fs::exists(work_ + "/" + unqueued_job));
  ASSERT_TRUE(run_until({&node}, [&] { return node.stats().files_queued == 4 && left() == 1; }));
  node.stop();
  EXPECT_TRUE(fs::exists(work_ + "/notes.txt"));
  std::multiset<std::string> first_rcpts;
  std::set<std::string> all_claims;
  for (const auto& it : test::read_spool_items(spool)) {
    first_rcpts.insert(it.recipients.at(0));
    all_claims.insert(it.pickup_claim);
    EXPECT_EQ(pickup_claimed_name(it.pickup_claim), it.pickup_name);
    EXPECT_NE(it.pickup_claim, unqueued_eml);
    EXPECT_NE(it.pickup_claim, unqueued_job);
  }
  EXPECT_EQ(first_rcpts,
            (std::multiset<std::string>{"first@example.org", "r1@example.org", "r1@example.org",
                                        "r3@example.org", "second@example.org",
                                        "third@example.org"}));
  EXPECT_EQ(all_claims.size(), 6u);
}

// The claim is a rename: of two watchers that both take a file, one gets it. (Here two
// spools share one pickup directory and work directory; each file is announced to both,
// the first to look claims it and the other finds it gone.)
TEST_F(PickupWatcherTest, TwoTakersOfOneFileQueueItOnce) {
  Node a(tmp_.file("spool-a"), shared_);
  Node b(tmp_.file("spool-b"), shared_);
  ASSERT_TRUE(a.start());
  ASSERT_TRUE(b.start());
  constexpr int kFiles = 20;
  for (int i = 0; i < kFiles; ++i) {
    const std::string name = fmt::format("m{}.eml", i);
    drop(name, eml(i));
    Node& first = i % 2 == 0 ? a : b;
    Node& second = i % 2 == 0 ? b : a;
    ASSERT_TRUE(run_until({&first}, [&] { return !fs::exists(shared_.dir + "/" + name); }));
    for (int t = 0; t < 5; ++t) second.turn();  // it reads the same event: the file is gone
  }
  ASSERT_TRUE(run_until({&a, &b}, [&] {
    return a.stats().files_queued + b.stats().files_queued == kFiles && left() == 0;
  }));
  EXPECT_EQ(a.stats().files_queued, kFiles / 2);
  EXPECT_EQ(b.stats().files_queued, kFiles / 2);
  a.stop();
  b.stop();
  std::multiset<std::string> names;
  for (const auto& spool : {tmp_.file("spool-a"), tmp_.file("spool-b")}) {
    for (const auto& it : test::read_spool_items(spool)) names.insert(it.pickup_name);
  }
  ASSERT_EQ(names.size(), static_cast<std::size_t>(kFiles));
  for (int i = 0; i < kFiles; ++i) EXPECT_EQ(names.count(fmt::format("m{}.eml", i)), 1u) << i;
}

}  // namespace
}  // namespace salvo::inbound
