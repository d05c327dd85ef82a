// SPDX-License-Identifier: Apache-2.0
// Recovery against damaged segments: a torn last record cut (or zeroed) at every byte,
// random bit flips, bit flips at every byte of a middle record, a zeroed header, a
// zero-filled block, frame lookalikes, a bad header, an old (version-1) segment, the resync
// budget, and the writer keeping a damaged segment. Never a crash; never a record whose CRC
// fails or that the writer did not put there; every record the damage left intact recovered.
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
  // The segment with message i's 12-byte frame header zeroed (a media error's damage).
  std::string header_zeroed(std::size_t i) const {
    std::string bytes = pristine_;
    std::fill_n(bytes.begin() + static_cast<std::ptrdiff_t>(locs_[i].offset), kFrameHeaderSize,
                '\0');
    return bytes;
  }
  // Recovery found exactly these of the five messages, each readable.
  void expect_exactly(const RecoveryResult& r, std::initializer_list<std::size_t> which) {
    EXPECT_EQ(r.index.message_count(), which.size());
    for (std::size_t i : which) EXPECT_TRUE(r.index.contains(ids_[i])) << "message " << i;
    expect_all_readable(r);
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
    EXPECT_FALSE(r->index.contains(ids_.back())) << cut;
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
        EXPECT_TRUE(r->index.contains(ids_[i])) << trial << " msg " << i;
      }
    }
  }
}

// A tail cut or zeroed at any byte of the last record is a crash during the last write:
// nothing after it to save, so not damage, and the segment is reclaimed as usual.
TEST_F(RecoveryDamage, ATornLastRecordIsNotQuarantined) {
  const Location last = locs_.back();
  for (std::uint64_t cut = last.offset; cut < last.offset + last.length; ++cut) {
    std::string bytes = pristine_;
    std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(cut), bytes.end(), '\0');
    bytes[last.offset + last.length + 100] = 'x';  // and garbage after it
    auto r = recover_with(bytes);
    ASSERT_TRUE(r);
    expect_exactly(*r, {0, 1, 2, 3});
    EXPECT_EQ(r->report.torn_segments, 1u) << cut;
    EXPECT_EQ(r->report.damaged_regions, 0u) << cut;
    EXPECT_EQ(r->report.quarantined_segments, 0u) << cut;
    EXPECT_FALSE(r->index.quarantined(SegmentSeq(1)));
  }
}

TEST_F(RecoveryDamage, ZeroFilledBlockIsSkippedAndTheRecordsAfterItRecovered) {
  // From inside message 2 to the middle of message 3: both lost, message 4 after them kept.
  std::string bytes = pristine_;
  const std::uint64_t at = locs_[2].offset + 5;
  const std::uint64_t end = locs_[3].offset + locs_[3].length / 2;
  std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(at),
            bytes.begin() + static_cast<std::ptrdiff_t>(end), '\0');
  auto r = recover_with(bytes);
  ASSERT_TRUE(r);
  expect_exactly(*r, {0, 1, 4});
  EXPECT_EQ(r->report.damaged_regions, 1u);
  EXPECT_EQ(r->report.skipped_bytes, locs_[4].offset - locs_[2].offset);
  EXPECT_EQ(r->report.records_after_damage, 1u);
  EXPECT_EQ(r->report.quarantined_segments, 1u);
  EXPECT_EQ(r->report.torn_segments, 0u);
  EXPECT_TRUE(r->index.quarantined(SegmentSeq(1)));
}

// The review's case: a media error zeroes one record's 12-byte header. That record is lost,
// the ones after it are not, and the report says what was skipped.
TEST_F(RecoveryDamage, ZeroedHeaderOfAMiddleRecordLosesOnlyThatRecord) {
  auto r = recover_with(header_zeroed(2));
  ASSERT_TRUE(r);
  expect_exactly(*r, {0, 1, 3, 4});
  EXPECT_EQ(r->report.damaged_regions, 1u);
  EXPECT_EQ(r->report.skipped_bytes, locs_[2].length);
  EXPECT_EQ(r->report.records_after_damage, 2u);
  EXPECT_EQ(r->report.quarantined_segments, 1u);
  EXPECT_EQ(r->report.torn_segments, 0u);
}

TEST_F(RecoveryDamage, BitFlipsAtEveryPositionOfAMiddleRecord) {
  std::mt19937 rng(15);
  const Location mid = locs_[2];
  for (std::uint64_t pos = mid.offset; pos < mid.offset + mid.length; ++pos) {
    std::string bytes = pristine_;
    bytes[pos] = static_cast<char>(bytes[pos] ^ (1 << (rng() % 8)));
    auto r = recover_with(bytes);
    ASSERT_TRUE(r);
    expect_exactly(*r, {0, 1, 3, 4});
    EXPECT_EQ(r->report.damaged_regions, 1u) << pos;
    EXPECT_EQ(r->report.skipped_bytes, mid.length) << pos;
    EXPECT_EQ(r->report.records, 5u) << pos;  // the header and four messages: nothing false
  }
}

// Bytes that look like a frame inside a damaged record never become a record: a header
// with a wrong CRC, a whole version-1 frame (verifies on its own, but this is a version-2
// segment) and a version-2 frame bound to another place (a stale copy).
TEST_F(RecoveryDamage, FrameLookalikesInsideDamageNeverBecomeRecords) {
  MessageFixture fx;
  fx.rcpts = {"forged@example.com"};
  fx.body = "x";
  fx.job = "";
  MessageRecord forged = fx.record();
  forged.id = MessageId(0xf00);
  std::string payload;
  encode(forged, payload);
  std::string wrong_crc = legacy_frame(RecordType::Message, payload);
  wrong_crc[wrong_crc.size() - 1] ^= 1;
  const std::uint64_t at = locs_[2].offset + 20;
  std::string stale;
  frame(RecordType::Message, payload, SegmentSeq(1), locs_[2].offset, stale);
  std::string other_segment;
  frame(RecordType::Message, payload, SegmentSeq(2), at, other_segment);
  for (const std::string& fake :
       {wrong_crc, legacy_frame(RecordType::Message, payload), stale, other_segment}) {
    ASSERT_LT(20 + fake.size(), locs_[2].length);
    std::string bytes = header_zeroed(2);
    bytes.replace(at, fake.size(), fake);
    auto r = recover_with(bytes);
    ASSERT_TRUE(r);
    expect_exactly(*r, {0, 1, 3, 4});
    EXPECT_FALSE(r->index.contains(forged.id));
    EXPECT_EQ(r->report.skipped_bytes, locs_[2].length);
  }
  // Bound to exactly this place, it is taken: that is the record the writer would have put
  // there. Binding cannot tell more (docs/spool-format.md §7, what resync trusts).
  std::string right;
  frame(RecordType::Message, payload, SegmentSeq(1), at, right);
  std::string bytes = header_zeroed(2);
  bytes.replace(at, right.size(), right);
  auto r = recover_with(bytes);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->index.contains(forged.id));
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

// A crash while a segment was being made leaves seg-N.spool.new (the segment is linked into
// place only once its header is durable). Start-up removes it; recovery never sees it, and
// nothing else is touched. Before, the half-made file had the final name: a zero-filled
// segment kept for inspection, with an error at every start.
TEST_F(RecoveryDamage, ASegmentWhoseCreationWasCutShortIsRemovedAtStart) {
  EXPECT_FALSE(fs::exists(seg_path_ + ".new")) << "the writer left its temporary name";
  spit(work_ + "/seg-0000000000000001.spool", pristine_);
  spit(work_ + "/seg-0000000000000002.spool.new", std::string(64 * 1024, '\0'));
  spit(work_ + "/notes.new", "an operator's file");
  ASSERT_TRUE(remove_unfinished_segments(work_));
  EXPECT_FALSE(fs::exists(work_ + "/seg-0000000000000002.spool.new"));
  EXPECT_TRUE(fs::exists(work_ + "/notes.new"));
  auto r = recover(work_, 0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->report.bad_segments, 0u);
  EXPECT_EQ(r->index.message_count(), 5u);
  EXPECT_EQ(r->next_segment, SegmentSeq(2));
  // Nothing to remove is not an error, nor is a missing directory.
  EXPECT_TRUE(remove_unfinished_segments(work_));
  EXPECT_TRUE(remove_unfinished_segments(work_ + "/absent"));
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

// A segment recovery found damage in is kept when its mail is final: where reclamation
// would delete it, the writer renames it *.damaged, bytes intact, out of recovery's way.
TEST_F(RecoveryDamage, AQuarantinedSegmentIsRenamedNotDeletedWhenItsMailIsFinal) {
  std::string bytes = header_zeroed(2);
  auto r = recover_with(bytes);
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->index.quarantined(SegmentSeq(1)));
  auto engine = make_uring();
  ASSERT_TRUE(engine);
  SystemClock clock;
  const std::string seg = work_ + "/seg-0000000000000001.spool";
  {
    SpoolWriter w(*engine, clock, WriterOptions{.dir = work_, .segment_size = 64 * 1024}, r->index,
                  r->next_segment, r->next_id);
    auto deliver = [&](std::uint32_t recipient) {
      std::vector<StateUpdate> done;
      for (std::size_t i : {0, 1, 3, 4}) {
        done.push_back({ids_[i], RecipientIndex(recipient), RecipientState::Delivered, 1, 0});
      }
      Waiter wt;
      ASSERT_TRUE(w.append_states(done, &wt));
      w.flush();
      ASSERT_TRUE(run_until(*engine, [&] { return wt.calls == 1; }));
      EXPECT_EQ(wt.ok, 1);
    };
    deliver(0);  // half the recipients final: the segment still holds live mail
    EXPECT_TRUE(fs::exists(seg));
    deliver(1);
    EXPECT_EQ(r->index.message_count(), 0u);
    EXPECT_EQ(w.stats().segments_quarantined, 1u);
    EXPECT_EQ(w.stats().segments_deleted, 0u);
  }
  for (int i = 0; i < 5; ++i) engine->run_once(std::chrono::milliseconds(1));  // timer
  EXPECT_FALSE(fs::exists(seg));
  EXPECT_EQ(slurp(seg + ".damaged"), bytes);
  // Nothing comes back: the renamed file is not a segment any more.
  auto again = recover(work_, 0);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->report.messages, 0u);
  EXPECT_EQ(again->report.quarantined_segments, 0u);
  EXPECT_GT(again->next_segment.value(), 2u);
}

// A spool written before frames were bound (segment version 1) still recovers, damage
// included.
TEST_F(RecoveryDamage, AVersionOneSegmentRecoversAndResyncs) {
  std::string seg, payload;
  encode(SegmentHeaderRecord{.version = 1, .seq = SegmentSeq(1), .capacity = 64 * 1024}, payload);
  seg = legacy_frame(RecordType::SegmentHeader, payload);
  std::vector<MessageFixture> fxs(4);
  std::vector<std::uint64_t> at;
  for (std::size_t i = 0; i < fxs.size(); ++i) {
    fxs[i].body = "old body " + std::to_string(i);
    MessageRecord m = fxs[i].record();
    m.id = MessageId(100 + i);
    payload.clear();
    encode(m, payload);
    at.push_back(seg.size());
    seg += legacy_frame(RecordType::Message, payload);
  }
  seg.resize(64 * 1024, '\0');
  auto whole = recover_with(seg);
  ASSERT_TRUE(whole);
  EXPECT_EQ(whole->index.message_count(), 4u);
  expect_all_readable(*whole);
  std::fill_n(seg.begin() + static_cast<std::ptrdiff_t>(at[1]), kFrameHeaderSize, '\0');
  auto r = recover_with(seg);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->index.message_count(), 3u);
  EXPECT_FALSE(r->index.contains(MessageId(101)));
  EXPECT_EQ(r->report.skipped_bytes, at[2] - at[1]);
  EXPECT_EQ(r->report.quarantined_segments, 1u);
  expect_all_readable(*r);
  // A version-1 header with version 2 in it (or the reverse) is nobody's.
  payload.clear();
  encode(SegmentHeaderRecord{.seq = SegmentSeq(1), .capacity = 64 * 1024}, payload);
  auto mixed = recover_with(legacy_frame(RecordType::SegmentHeader, payload));
  ASSERT_TRUE(mixed);
  EXPECT_EQ(mixed->report.bad_segments, 1u);
}

// Frame lookalikes that each claim a long payload cost a CRC over it: past the budget the
// scan stops, keeps the segment (quarantined) and says so, instead of running for hours.
TEST(RecoveryScan, ResyncWorkIsBounded) {
  constexpr std::uint64_t kCapacity = 1 << 20;
  std::string seg, payload;
  encode(SegmentHeaderRecord{.seq = SegmentSeq(1), .capacity = kCapacity}, payload);
  frame(RecordType::SegmentHeader, payload, SegmentSeq(1), 0, seg);
  const std::uint64_t damage = seg.size();
  const char head[] = {'S', 'S', 'P', 'L', 2, 1, 0, 0, 0, 0, 4, 0};  // 256 KiB claimed
  const std::string lookalike(head, sizeof head);
  while (seg.size() < kCapacity / 2) seg += lookalike;
  seg.resize(kCapacity, 'x');
  SpoolIndex index;
  RecoveryReport report;
  ScanState st{&index, &report, nullptr, nullptr, 0};
  auto d = scan_segment(seg, SegmentSeq(1), st);
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->gave_up);
  EXPECT_TRUE(d->quarantined());
  EXPECT_FALSE(d->torn);
  EXPECT_EQ(d->skipped_bytes, kCapacity - damage);
  EXPECT_EQ(report.quarantined_segments, 1u);
  EXPECT_TRUE(index.quarantined(SegmentSeq(1)));
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
