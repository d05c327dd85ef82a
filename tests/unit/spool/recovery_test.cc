// SPDX-License-Identifier: Apache-2.0
// Recovery against damaged segments: a torn last record cut (or zeroed) at every byte,
// random bit flips, a zero-filled block, a bad header. Never a crash; never a record whose
// CRC fails; every record before the damage recovered.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <salvo/base/clock.h>
#include <salvo/base/log.h>
#include <salvo/spool/recovery.h>
#include <salvo/spool/spool_reader.h>
#include <salvo/spool/spool_writer.h>

#include "spool_test_util.h"

namespace salvo::spool::test {
namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void spit(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

// Writes 5 messages (one commit each) into one small segment and remembers where.
class RecoveryDamage : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { spdlog::set_level(spdlog::level::off); }
  static void TearDownTestSuite() { spdlog::set_level(spdlog::level::info); }
  void SetUp() override {
    auto engine = make_uring();
    if (!engine) GTEST_SKIP() << "io_uring unavailable";
    src_ = dir_.sub("src");
    auto r = recover(src_, 0);
    ASSERT_TRUE(r);
    SystemClock clock;
    {
      SpoolWriter w(*engine, clock, WriterOptions{.dir = src_, .segment_size = 64 * 1024}, r->index,
                    r->next_segment, r->next_id);
      for (int i = 0; i < 5; ++i) {
        MessageFixture fx;
        fx.body = "body " + std::to_string(i) + std::string(100, 'x');
        Waiter wt;
        MessageRecord m = fx.record();
        auto id = w.append_message(m, &wt);
        ASSERT_TRUE(id);
        w.flush();
        ASSERT_TRUE(run_until(*engine, [&] { return wt.calls == 1; }));
        ids_.push_back(*id);
        locs_.push_back(r->index.find(*id)->loc);
      }
    }
    for (int i = 0; i < 5; ++i) engine->run_once(std::chrono::milliseconds(1));  // timer
    seg_path_ = src_ + "/seg-0000000000000001.spool";
    pristine_ = slurp(seg_path_);
    work_ = dir_.sub("work");
    fs::create_directories(work_);
  }
  Result<RecoveryResult> recover_with(const std::string& bytes) {
    spit(work_ + "/seg-0000000000000001.spool", bytes);
    return recover(work_, 0);
  }
  // Every message recovery reports reads back with a valid CRC and decodes.
  void expect_all_readable(const RecoveryResult& r) {
    r.index.for_each([&](MessageId, const SpoolIndex::Entry& e) {
      auto b = read_record(work_, e.loc);
      ASSERT_TRUE(b) << b.error().message();
      EXPECT_TRUE(decode_message(b->raw.payload));
    });
  }

  TempDir dir_;
  std::string src_, work_, seg_path_, pristine_;
  std::vector<MessageId> ids_;
  std::vector<Location> locs_;
};

TEST_F(RecoveryDamage, TornLastRecordAtEveryByte) {
  const Location last = locs_.back();
  for (std::uint64_t cut = last.offset; cut < last.offset + last.length; ++cut) {
    // Never-written tail: zeros from the cut (the preallocated case) ...
    std::string zeroed = pristine_;
    std::fill(zeroed.begin() + static_cast<std::ptrdiff_t>(cut), zeroed.end(), '\0');
    auto r = recover_with(zeroed);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->index.message_count(), 4u) << cut;
    EXPECT_EQ(r->index.find(ids_.back()), nullptr) << cut;
    EXPECT_EQ(r->report.torn_segments, cut == last.offset ? 0u : 1u) << cut;
    // ... and a file truncated at the cut.
    auto t = recover_with(pristine_.substr(0, cut));
    ASSERT_TRUE(t);
    EXPECT_EQ(t->index.message_count(), 4u) << cut;
  }
  auto whole = recover_with(pristine_);
  ASSERT_TRUE(whole);
  EXPECT_EQ(whole->index.message_count(), 5u);
  EXPECT_EQ(whole->report.torn_segments, 0u);
}

TEST_F(RecoveryDamage, RandomBitFlipsNeverYieldBadRecords) {
  std::mt19937 rng(20261122);
  std::uint64_t end = locs_.back().offset + locs_.back().length;
  for (int trial = 0; trial < 300; ++trial) {
    std::string bytes = pristine_;
    int flips = 1 + static_cast<int>(rng() % 4);
    std::uint64_t first_flip = end;
    for (int f = 0; f < flips; ++f) {
      std::uint64_t pos = rng() % (end + 64);
      bytes[pos] = static_cast<char>(bytes[pos] ^ (1 << (rng() % 8)));
      first_flip = std::min(first_flip, pos);
    }
    auto r = recover_with(bytes);
    ASSERT_TRUE(r);
    expect_all_readable(*r);
    // Every message wholly before the first flip is still there.
    for (std::size_t i = 0; i < ids_.size(); ++i) {
      if (locs_[i].offset + locs_[i].length <= first_flip && first_flip >= locs_[0].offset) {
        EXPECT_NE(r->index.find(ids_[i]), nullptr) << trial << " msg " << i;
      }
    }
  }
}

TEST_F(RecoveryDamage, ZeroFilledBlockStopsTheSegmentThere) {
  std::string bytes = pristine_;
  std::uint64_t at = locs_[2].offset + 5;
  std::fill_n(bytes.begin() + static_cast<std::ptrdiff_t>(at), 4096, '\0');
  auto r = recover_with(bytes);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->index.message_count(), 2u);
  EXPECT_EQ(r->report.torn_segments, 1u);
  expect_all_readable(*r);
}

TEST_F(RecoveryDamage, BadHeaderQuarantinesSegment) {
  std::string bytes = pristine_;
  bytes[0] = 'X';
  auto r = recover_with(bytes);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->report.bad_segments, 1u);
  EXPECT_EQ(r->index.message_count(), 0u);
  EXPECT_EQ(r->next_segment, SegmentSeq(2));  // never reused
  // Garbage files and an empty segment file do not crash either.
  auto e = recover_with("");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->report.bad_segments, 1u);
  spit(work_ + "/not-a-segment", "junk");
  EXPECT_TRUE(recover(work_, 0));
}

TEST_F(RecoveryDamage, SegmentCopiedUnderAnotherNameIsRejected) {
  fs::remove_all(work_);
  fs::create_directories(work_);
  spit(work_ + "/seg-0000000000000002.spool", pristine_);  // header says seq 1
  auto r = recover(work_, 0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->report.bad_segments, 1u);
  EXPECT_EQ(r->index.message_count(), 0u);
}

TEST_F(RecoveryDamage, RandomGarbageSegmentsNeverCrash) {
  std::mt19937 rng(99);
  for (int trial = 0; trial < 100; ++trial) {
    std::string bytes = pristine_.substr(0, locs_[0].offset);  // a valid header
    std::size_t n = rng() % 2048;
    for (std::size_t i = 0; i < n; ++i) bytes.push_back(static_cast<char>(rng()));
    auto r = recover_with(bytes);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->index.message_count(), 0u);
  }
}

}  // namespace
}  // namespace salvo::spool::test

namespace salvo::spool::test {
namespace {

// Ids are never handed out twice over the life of a spool: once every segment holding the
// highest ids is gone (all delivered and reclaimed), the next-id mark still carries them.
TEST_F(RecoveryDamage, IdsStayUniqueAfterEverySegmentIsReclaimed) {
  // The writer made its mark durable before it handed out the first id.
  ASSERT_TRUE(fs::exists(src_ + "/next-id"));
  fs::remove(seg_path_);  // what reclamation leaves once all five were delivered
  auto r = recover(src_, 0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->report.messages, 0u);
  EXPECT_FALSE(r->report.bad_id_mark);
  EXPECT_GT(r->next_id.value(), ids_.back().value());
}

TEST_F(RecoveryDamage, AnUnreadableIdMarkIsReportedAndTheMailIsKept) {
  fs::copy_file(seg_path_, work_ + "/seg-0000000000000001.spool");
  spit(work_ + "/next-id", "salvo-next-id 1 zzzz\n");
  auto r = recover(work_, 0);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->report.bad_id_mark);
  EXPECT_EQ(r->report.messages, 5u);
  EXPECT_EQ(r->next_id.value(), ids_.back().value() + 1);  // above what the spool holds
}

}  // namespace
}  // namespace salvo::spool::test

namespace salvo::spool::test {
namespace {

// A spool written by salvod at format version 1 (tests/data/spool-v1/README.md says how):
// every later salvo must recover it as it was. Three SMTP messages (one to two
// recipients, one with a null sender), a pickup .eml and a pickup .json job of three;
// the ok.test recipients were delivered before the stop, the held.test ones were not.
TEST(FormatFixture, ASpoolWrittenAtVersion1Recovers) {
  TempDir dir;
  const std::string shard = dir.sub("shard-0");
  fs::copy(fs::path(SALVO_SOURCE_DIR) / "tests/data/spool-v1/shard-0", shard);
  auto r = recover(shard, 0);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->report.segments, 1u);
  EXPECT_EQ(r->report.torn_segments, 0u);
  EXPECT_EQ(r->report.bad_segments, 0u);
  EXPECT_EQ(r->report.undecodable, 0u);
  EXPECT_FALSE(r->report.bad_id_mark);
  EXPECT_EQ(r->report.messages, 5u);
  std::size_t pending = 0, delivered = 0, jobs = 0;
  std::vector<std::string> bodies;
  r->index.for_each([&](MessageId, const SpoolIndex::Entry& e) {
    EXPECT_TRUE(e.committed);
    for (std::uint8_t s : e.state) {
      if (static_cast<RecipientState>(s) == RecipientState::Delivered) ++delivered;
      if (static_cast<RecipientState>(s) == RecipientState::Pending) ++pending;
    }
    if (e.is_job) {
      ++jobs;
      return;
    }
    auto b = read_record(shard, e.loc);
    ASSERT_TRUE(b) << b.error().message();
    auto m = decode_message(b->raw.payload);
    ASSERT_TRUE(m);
    bodies.emplace_back(m->body);
  });
  EXPECT_EQ(jobs, 1u);
  EXPECT_EQ(delivered, 3u);
  EXPECT_EQ(pending, 6u);
  ASSERT_EQ(bodies.size(), 4u);
  const auto has = [&](std::string_view text) {
    return std::any_of(bodies.begin(), bodies.end(),
                       [&](const std::string& b) { return b.find(text) != std::string::npos; });
  };
  EXPECT_TRUE(has("One delivered, one held.\r\n"));
  EXPECT_TRUE(has("\r\n..leading dot\r\n"));  // the text (the client sent "...")
  EXPECT_TRUE(has("Dropped as a file.\r\n"));
  EXPECT_TRUE(has("Received: from "));
  EXPECT_GT(r->next_id.value(), 6u);  // above every id the spool ever handed out
}

}  // namespace
}  // namespace salvo::spool::test
