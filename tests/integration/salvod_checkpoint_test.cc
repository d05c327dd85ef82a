// SPDX-License-Identifier: Apache-2.0
// The clean-stop checkpoint end to end (docs/spool-format.md §10), with a real salvod, real
// spool files and a real salvo-sink MX found through Debian's unbound: a clean stop writes
// one per shard; the next start takes it instead of scanning and delivers everything once;
// a crash after such a start finds no checkpoint and scans (nothing lost, the mail taken
// in between included); a segment changed behind salvod's back makes it stale: scanned.
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "integration/delivery_env.h"
#include "support/eventually.h"

namespace salvo::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr int kOld = 150;  // 16 KB each: two or more 1 MB segments per shard
const std::string kSegments = "spool_segment_size = \"1MB\"\n";
const std::string kHold = "[[shaping]]\ndomain = \"*\"\nmax_connections = 0\n";
constexpr const char* kFromCheckpoint = "from checkpoint in";

SalvodOptions options(const Env& env, const std::string& more = "") {
  SalvodOptions o = env.salvod(more);
  o.node_keys += kSegments;
  return o;
}

// The checkpoint files in the spool's shard directories.
int checkpoints(const Env& env) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(env.dir.file("spool"))) {
    n += fs::exists(e.path() / "checkpoint") ? 1 : 0;
  }
  return n;
}

// kOld messages queued and held, then a clean stop: a checkpoint per shard.
void queue_and_stop(Env& env) {
  Salvod d(env.dir, options(env, kHold));
  ASSERT_EQ(blast_to(env.dir, d, kOld, "ok.test", {"--size", "16KB"})["accepted"], kOld);
  ASSERT_EQ(d.stop(), 0);
  EXPECT_NE(d.log().find("checkpoint of"), std::string::npos) << d.log();
  ASSERT_EQ(checkpoints(env), 2) << d.log();
}

// Every one of `want` (u<i>-0@d0.ok.test) and the extra addresses arrived exactly once.
void expect_each_delivered_once(Env& env, Salvod& d, const std::vector<int>& want,
                                const std::vector<std::string>& extra = {}) {
  const std::size_t total = want.size() + extra.size();
  ASSERT_TRUE(eventually([&] { return delivered_to(env).size() == total; }, 30s))
      << delivered_to(env).size() << " of " << total << " arrived\n" << d.log();
  EXPECT_EQ(d.stop(), 0);
  const auto got = delivered_to(env);
  EXPECT_EQ(got.size(), total);
  for (int i : want) {
    auto it = got.find(fmt::format("u{}-0@d0.ok.test", i));
    EXPECT_TRUE(it != got.end() && it->second == 1) << "u" << i;
  }
  for (const auto& a : extra) {
    auto it = got.find(a);
    EXPECT_TRUE(it != got.end() && it->second == 1) << a;
  }
  EXPECT_TRUE(read_spool_items(env.dir.file("spool")).empty()) << "all final: spool reclaimed";
}

// Whether salvod's log says the shard directory's start took its checkpoint.
bool took_checkpoint(const Salvod& d, const std::string& shard) {
  const std::string log = d.log();
  for (auto p = log.find(shard + ": recovered "); p != std::string::npos;
       p = log.find(shard + ": recovered ", p + 1)) {
    if (log.substr(p, log.find('\n', p) - p).find(kFromCheckpoint) != std::string::npos) {
      return true;
    }
  }
  return false;
}

std::vector<int> all_old() {
  std::vector<int> v;
  for (int i = 0; i < kOld; ++i) v.push_back(i);
  return v;
}

double checkpoint_status(const Env& env, const Salvod& d, const std::string& result) {
  Ctl s = salvoctl(env.dir, d.config_path(), {"status", "--json"});
  return s.rc == 0 ? s.j["recovery"]["checkpoint"].value(result, -1.0) : -1.0;
}

TEST(Checkpoint, ACleanStopsCheckpointIsUsedAndEverythingIsDeliveredOnce) {
  Env env;
  ASSERT_NO_FATAL_FAILURE(queue_and_stop(env));
  Salvod d(env.dir, options(env));
  EXPECT_NE(d.log().find(kFromCheckpoint), std::string::npos) << d.log();
  EXPECT_EQ(d.log().find("checkpoint not used"), std::string::npos) << d.log();
  EXPECT_EQ(d.log_number("recovered_messages"), kOld) << d.log();
  EXPECT_EQ(checkpoints(env), 0) << "taken at start: removed";
  EXPECT_EQ(checkpoint_status(env, d, "used"), 2.0);
  EXPECT_EQ(checkpoint_status(env, d, "stale"), 0.0);
  ASSERT_NO_FATAL_FAILURE(expect_each_delivered_once(env, d, all_old()));
}

// With background_recovery = false the checkpoint stands in for the scan before the
// listeners open, the same way.
TEST(Checkpoint, ItIsUsedWithoutBackgroundRecoveryToo) {
  Env env;
  ASSERT_NO_FATAL_FAILURE(queue_and_stop(env));
  SalvodOptions o = options(env);
  o.node_keys += "background_recovery = false\n";
  Salvod d(env.dir, o);
  EXPECT_NE(d.log().find("recovery=done"), std::string::npos) << d.log();
  EXPECT_EQ(checkpoint_status(env, d, "used"), 2.0) << d.log();
  EXPECT_EQ(d.log_number("recovered_messages"), kOld) << d.log();
  ASSERT_NO_FATAL_FAILURE(expect_each_delivered_once(env, d, all_old()));
}

// After a start from a checkpoint, new mail, then kill -9: no checkpoint is left to
// mislead the next start, which scans and finds the old mail and the new.
TEST(Checkpoint, AKillAfterACheckpointStartScansAndLosesNothing) {
  Env env;
  ASSERT_NO_FATAL_FAILURE(queue_and_stop(env));
  {
    Salvod d(env.dir, options(env, kHold));
    EXPECT_NE(d.log().find(kFromCheckpoint), std::string::npos) << d.log();
    const std::string reply = send_message(d, "new@d0.ok.test", "Subject: new\r\n\r\nnew\r\n");
    EXPECT_TRUE(reply.starts_with("250")) << reply;
    d.kill();
  }
  EXPECT_EQ(checkpoints(env), 0);
  Salvod d(env.dir, options(env));
  EXPECT_EQ(d.log().find(kFromCheckpoint), std::string::npos) << d.log();
  EXPECT_EQ(d.log_number("recovered_messages"), kOld + 1) << d.log();
  ASSERT_NO_FATAL_FAILURE(expect_each_delivered_once(env, d, all_old(), {"new@d0.ok.test"}));
}

// A segment touched, or one removed, after the stop: the checkpoint is refused as stale and
// the scan delivers what the segments hold.
TEST(Checkpoint, ASegmentChangedBehindSalvodsBackMakesItStale) {
  Env env;
  ASSERT_NO_FATAL_FAILURE(queue_and_stop(env));
  // The segments of the shard that has the most.
  std::vector<fs::path> segs;
  for (const auto& shard : fs::directory_iterator(env.dir.file("spool"))) {
    if (!shard.is_directory()) continue;
    std::vector<fs::path> these;
    for (const auto& e : fs::directory_iterator(shard.path())) {
      if (e.path().extension() == ".spool") these.push_back(e.path());
    }
    if (these.size() > segs.size()) segs = std::move(these);
  }
  std::sort(segs.begin(), segs.end());
  ASSERT_GE(segs.size(), 2u);
  const std::string shard = segs.front().parent_path().string();
  const std::string stale = shard + ": checkpoint not used (stale: ";
  // Touched: same bytes, another time.
  ASSERT_EQ(::utimensat(AT_FDCWD, segs.front().c_str(), nullptr, 0), 0);
  {
    Salvod d(env.dir, options(env, kHold));
    EXPECT_FALSE(took_checkpoint(d, shard)) << d.log();
    EXPECT_NE(d.log().find(stale + "segment " + segs.front().string() + " changed"),
              std::string::npos)
        << d.log();
    EXPECT_EQ(d.log_number("recovered_messages"), kOld) << d.log();
    EXPECT_EQ(checkpoint_status(env, d, "stale"), 1.0) << d.log();
    EXPECT_EQ(checkpoint_status(env, d, "used"), 1.0) << "the other shard's was sound";
    ASSERT_EQ(d.stop(), 0);
  }
  // Removed (its mail with it: what the operator did). The held mail's segments are
  // all still there, the writer's fresh ones included.
  ASSERT_EQ(checkpoints(env), 2);
  const std::size_t before = read_spool_items(env.dir.file("spool")).size();
  fs::remove(segs.front());
  const auto left = read_spool_items(env.dir.file("spool"));
  ASSERT_LT(left.size(), before);
  std::vector<int> want;
  for (const auto& it : left) {
    auto p = it.recipients.front();
    want.push_back(std::stoi(p.substr(1, p.find('-') - 1)));
  }
  Salvod d(env.dir, options(env));
  EXPECT_NE(d.log().find(stale + "it names"), std::string::npos) << d.log();
  EXPECT_EQ(d.log_number("recovered_messages"), static_cast<long long>(left.size())) << d.log();
  ASSERT_NO_FATAL_FAILURE(expect_each_delivered_once(env, d, want));
}

}  // namespace
}  // namespace salvo::test
