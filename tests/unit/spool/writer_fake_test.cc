// SPDX-License-Identifier: Apache-2.0
// SpoolWriter on the FakeEngine: batching, waiters only after fdatasync, fsyncgate (EIO ->
// every waiter fails, segment retired, the next batch goes to a new segment, its records
// bound to their new place), short writes, ENOSPC, the batch timer, fsync=false, deferred
// job commits, and segments made ahead (their fsyncs through the engine).
#include <cerrno>
#include <chrono>

#include <filesystem>

#include <gtest/gtest.h>

#include <salvo/spool/errc.h>
#include <salvo/spool/spool_writer.h>

#include "spool/segment_file.h"
#include "spool_test_util.h"
#include "support/fake_engine.h"
#include "support/test_clock.h"

namespace salvo::spool::test {
namespace {

using namespace std::chrono_literals;
using salvo::test::FakeEngine;
using salvo::test::FakeMode;
using salvo::test::OpKind;
using salvo::test::TestClock;

class WriterFake : public ::testing::Test {
 protected:
  void make(FakeMode mode, WriterOptions o = {}) {
    engine_ = std::make_unique<FakeEngine>(clock_, mode);
    o.dir = dir_.path();
    o.segment_size = o.segment_size == (64ull << 20) ? (1u << 20) : o.segment_size;
    writer_ =
        std::make_unique<SpoolWriter>(*engine_, clock_, o, index_, SegmentSeq(1), MessageId(1));
  }
  // A writer destroyed with its batch timer armed cancels it; the cancelled timer frees
  // itself at its final call, so the engine runs once more (io::Completion lifetime).
  void TearDown() override {
    writer_.reset();
    if (engine_) pump();
  }
  void append(int n, Waiter& w) {
    for (int i = 0; i < n; ++i) {
      MessageRecord m = fx_.record();
      ASSERT_TRUE(writer_->append_message(m, &w));
    }
  }
  void pump(int rounds = 20) {
    for (int i = 0; i < rounds; ++i) engine_->run_once(0ms);
  }
  const salvo::test::FakeOp& pending_write() const {
    for (const auto& op : engine_->pending()) {
      if (op.kind == OpKind::Write) return op;
    }
    static const salvo::test::FakeOp kNone;
    return kNone;
  }
  // The oldest pending write completes in full, then the engine runs once.
  void finish_write() {
    ASSERT_TRUE(engine_->complete_next(OpKind::Write,
                                       static_cast<std::int32_t>(pending_write().data.size())));
    pump(1);
  }
  // The oldest (or newest) pending fdatasync completes with res.
  void finish_sync(std::int32_t res, bool newest = false) {
    ASSERT_TRUE(newest ? engine_->complete_newest(OpKind::Fdatasync, res)
                       : engine_->complete_next(OpKind::Fdatasync, res));
    pump(1);
  }
  // Completes the oldest pending write in full, else the oldest fdatasync (res 0), then
  // runs the engine once; false when neither is pending.
  bool finish_one_commit_op() {
    const bool done =
        engine_->complete_next(OpKind::Write,
                               static_cast<std::int32_t>(pending_write().data.size())) ||
        engine_->complete_next(OpKind::Fdatasync, 0);
    if (done) pump(1);
    return done;
  }
  std::size_t count(OpKind k) const {
    std::size_t n = 0;
    for (const auto& op : engine_->history()) n += op.kind == k ? 1 : 0;
    return n;
  }
  TempDir dir_;
  TestClock clock_;
  SpoolIndex index_;
  MessageFixture fx_;
  std::unique_ptr<FakeEngine> engine_;
  std::unique_ptr<SpoolWriter> writer_;
};

TEST_F(WriterFake, WaitersOnlyAfterFdatasync) {
  make(FakeMode::Manual);
  Waiter w;
  append(3, w);
  writer_->flush();
  ASSERT_EQ(engine_->pending_count(OpKind::Write), 1u);
  auto len = static_cast<std::int32_t>(pending_write().data.size());
  ASSERT_TRUE(engine_->complete_next(OpKind::Write, len));
  pump();
  EXPECT_EQ(w.calls, 0);
  ASSERT_EQ(engine_->pending_count(OpKind::Fdatasync), 1u);
  EXPECT_EQ(index_.message_count(), 0u);
  ASSERT_TRUE(engine_->complete_next(OpKind::Fdatasync, 0));
  pump();
  EXPECT_EQ(w.ok, 3);
  EXPECT_EQ(index_.message_count(), 3u);
  EXPECT_EQ(writer_->stats().commits, 1u);
  EXPECT_EQ(writer_->stats().messages, 3u);
  EXPECT_TRUE(writer_->idle());
}

TEST_F(WriterFake, ManyAppendsFewFsyncs) {
  make(FakeMode::Auto, WriterOptions{.batch_max_records = 256});
  Waiter w;
  append(1000, w);
  pump(50);
  EXPECT_EQ(w.ok, 1000);
  EXPECT_EQ(count(OpKind::Fdatasync), 4u);  // 256 + 256 + 256 + 232
  EXPECT_EQ(writer_->stats().commits, 4u);
  EXPECT_GE(writer_->stats().messages_per_commit.mean(), 200.0);
}

TEST_F(WriterFake, BatchBoundedByBytes) {
  make(FakeMode::Auto, WriterOptions{.batch_max_bytes = 4096});
  fx_.body.assign(1500, 'x');
  Waiter w;
  append(10, w);
  pump(50);
  EXPECT_EQ(w.ok, 10);
  EXPECT_GE(count(OpKind::Fdatasync), 4u);
  for (const auto& op : engine_->history()) {
    if (op.kind == OpKind::Write) {
      EXPECT_LE(op.data.size(), 4096u);
    }
  }
}

TEST_F(WriterFake, TimerCommitsAPartialBatch) {
  make(FakeMode::Auto);
  Waiter w;
  append(1, w);
  pump();
  EXPECT_EQ(count(OpKind::Write), 0u);
  clock_.advance(1ms);
  pump();
  EXPECT_EQ(w.ok, 1);
}

TEST_F(WriterFake, FdatasyncEioFailsBatchRetiresSegment) {
  make(FakeMode::Auto);
  engine_->script(OpKind::Fdatasync, -EIO);
  Waiter w1;
  append(3, w1);
  writer_->flush();
  pump();
  ASSERT_EQ(w1.calls, 3);
  EXPECT_EQ(w1.ok, 0);
  for (auto& e : w1.errors) EXPECT_EQ(e, std::errc::io_error);
  EXPECT_EQ(index_.message_count(), 0u);
  EXPECT_EQ(writer_->stats().fsync_failures, 1u);
  EXPECT_EQ(writer_->stats().segments_retired, 1u);
  Waiter w2;
  append(2, w2);
  writer_->flush();
  pump();
  EXPECT_EQ(w2.ok, 2);
  EXPECT_EQ(writer_->stats().segments_created, 2u);
  EXPECT_EQ(count(OpKind::Fdatasync), 2u);  // the failed fdatasync was never retried
  EXPECT_EQ(writer_->current_segment(), SegmentSeq(2));
  EXPECT_EQ(index_.find(MessageId(4))->loc.segment, SegmentSeq(2));
}

TEST_F(WriterFake, PendingBatchMovesToFreshSegmentAfterFailure) {
  // One commit at a time: the second batch is still pending when the first one fails.
  make(FakeMode::Manual, WriterOptions{.batch_max_records = 2, .commits_in_flight = 1});
  Waiter a, b;
  append(2, a);  // sealed: write issued
  append(2, b);  // pending behind it, same segment
  ASSERT_EQ(engine_->pending_count(OpKind::Write), 1u);
  const auto first = pending_write();
  ASSERT_TRUE(engine_->complete_next(OpKind::Write, static_cast<std::int32_t>(first.data.size())));
  pump(1);
  ASSERT_TRUE(engine_->complete_next(OpKind::Fdatasync, -EIO));
  pump(1);
  EXPECT_EQ(a.calls, 2);
  EXPECT_EQ(a.ok, 0);
  EXPECT_EQ(b.calls, 0);
  ASSERT_EQ(engine_->pending_count(OpKind::Write), 1u);
  const auto second = pending_write();
  EXPECT_EQ(writer_->current_segment(), SegmentSeq(2));
  EXPECT_EQ(second.offset, first.offset);  // right after the new segment's header
  // Each moved record's CRC now covers its new place (docs/spool-format.md §3).
  const std::string_view moved(second.data);
  for (std::uint64_t at = 0; at < moved.size();) {
    auto rec = parse_framed(moved.substr(at), SegmentSeq(2), second.offset + at);
    ASSERT_TRUE(rec) << at;
    at += rec->length;
  }
  ASSERT_TRUE(engine_->complete_next(OpKind::Write, static_cast<std::int32_t>(second.data.size())));
  pump(1);
  ASSERT_TRUE(engine_->complete_next(OpKind::Fdatasync, 0));
  pump(1);
  EXPECT_EQ(b.ok, 2);
  EXPECT_EQ(index_.message_count(), 2u);
}

// Two commits in flight (the default): the second batch is written while the first one's
// fdatasync runs, and waiters hear of them in order whichever fdatasync returns first.
TEST_F(WriterFake, SecondBatchIsWrittenWhileTheFirstSyncs) {
  make(FakeMode::Manual, WriterOptions{.batch_max_records = 2});
  Waiter a, b, c;
  append(2, a);  // sealed: its write is issued
  append(2, b);  // sealed, but the first write is not done
  ASSERT_EQ(engine_->pending_count(OpKind::Write), 1u);
  const auto first = pending_write();
  finish_write();
  ASSERT_EQ(engine_->pending_count(OpKind::Fdatasync), 1u);
  ASSERT_EQ(engine_->pending_count(OpKind::Write), 1u);  // b's, during a's fdatasync
  EXPECT_EQ(pending_write().offset, first.offset + first.data.size());
  append(2, c);  // a third waits: two are in flight
  EXPECT_EQ(engine_->pending_count(OpKind::Write), 1u);
  finish_write();
  ASSERT_EQ(engine_->pending_count(OpKind::Fdatasync), 2u);
  EXPECT_EQ(engine_->pending_count(OpKind::Write), 0u);
  finish_sync(0, /*newest=*/true);  // b's returns first
  EXPECT_EQ(b.calls, 0);  // not before a
  EXPECT_EQ(index_.message_count(), 0u);
  finish_sync(0);
  EXPECT_EQ(a.ok, 2);
  EXPECT_EQ(b.ok, 2);
  EXPECT_EQ(index_.message_count(), 4u);
  EXPECT_EQ(writer_->stats().commits, 2u);
  ASSERT_EQ(engine_->pending_count(OpKind::Write), 1u);  // c's, now that a slot is free
  finish_write();
  finish_sync(0);
  EXPECT_EQ(c.ok, 2);
  EXPECT_TRUE(writer_->idle());
}

// fsyncgate with two in flight: the kernel reports a writeback error to one fdatasync of
// the file, so the other commit on that segment fails too, even though its own returned 0.
TEST_F(WriterFake, AFailedFdatasyncFailsTheOtherCommitOnItsSegment) {
  make(FakeMode::Manual, WriterOptions{.batch_max_records = 2});
  Waiter a, b, c;
  append(2, a);
  append(2, b);
  finish_write();
  finish_write();
  ASSERT_EQ(engine_->pending_count(OpKind::Fdatasync), 2u);
  finish_sync(-EIO, /*newest=*/true);  // b's sees the error
  finish_sync(0);                      // a's "succeeds"
  EXPECT_EQ(a.calls, 2);
  EXPECT_EQ(a.ok, 0);
  EXPECT_EQ(b.calls, 2);
  EXPECT_EQ(b.ok, 0);
  EXPECT_EQ(index_.message_count(), 0u);
  EXPECT_EQ(writer_->stats().segments_retired, 1u);
  append(2, c);  // later mail goes to a fresh segment and commits
  finish_write();
  finish_sync(0);
  EXPECT_EQ(c.ok, 2);
  EXPECT_EQ(writer_->current_segment(), SegmentSeq(2));
}

// A batch in a new segment waits until nothing is in flight: its fdatasync would not cover
// the earlier segment's unsynced tail.
TEST_F(WriterFake, ABatchInANewSegmentWaitsForTheCommitsBeforeIt) {
  make(FakeMode::Manual, WriterOptions{.segment_size = 8192, .batch_max_records = 2});
  fx_.body.assign(3000, 'x');
  Waiter a, b;
  append(2, a);  // most of the segment
  ASSERT_EQ(writer_->current_segment(), SegmentSeq(1));
  append(2, b);  // does not fit: a new segment
  ASSERT_EQ(writer_->current_segment(), SegmentSeq(2));
  finish_write();
  EXPECT_EQ(engine_->pending_count(OpKind::Write), 0u);
  finish_sync(0);
  EXPECT_EQ(a.ok, 2);
  ASSERT_EQ(engine_->pending_count(OpKind::Write), 1u);
  finish_write();
  finish_sync(0);
  EXPECT_EQ(b.ok, 2);
}

// The writer had gone on to a new segment while batches of the full one still waited; the
// full one's commit fails. Everything queued behind the failure moves to one fresh segment
// in commit order, and appends continue there: no record is ever in an earlier segment than
// one committed before it (recovery reads segments in order; before, the writer went back
// to the segment it had gone on to, so states and job records committed after the moved
// batches sat in an earlier segment than what they name, and recovery dropped them).
TEST_F(WriterFake, BatchesOfALaterSegmentMoveWithTheRetiredOnesInCommitOrder) {
  // One commit at a time: the second batch is still queued when the first one fails.
  make(FakeMode::Manual, WriterOptions{.batch_max_records = 1, .commits_in_flight = 1});
  fx_.body = std::string(400 * 1024, 'x');  // two per 1 MiB segment
  Waiter w1, w2, w3, w4;
  append(1, w1);  // segment 1, in flight
  append(1, w2);  // segment 1, waiting
  append(1, w3);  // does not fit: segment 2, waiting
  ASSERT_EQ(writer_->current_segment(), SegmentSeq(2));
  const auto first = pending_write();
  ASSERT_TRUE(engine_->complete_next(OpKind::Write, static_cast<std::int32_t>(first.data.size())));
  pump(1);
  ASSERT_TRUE(engine_->complete_next(OpKind::Fdatasync, -EIO));
  pump(1);
  EXPECT_EQ(w1.calls, 1);
  EXPECT_EQ(w1.ok, 0);
  EXPECT_EQ(writer_->current_segment(), SegmentSeq(3));
  fx_.body = "small\r\n";
  append(1, w4);  // after the moved ones, in the same segment
  for (Waiter* w : {&w2, &w3, &w4}) {
    const auto next = pending_write();
    ASSERT_TRUE(engine_->complete_next(OpKind::Write, static_cast<std::int32_t>(next.data.size())));
    pump(1);
    ASSERT_TRUE(engine_->complete_next(OpKind::Fdatasync, 0));
    pump(1);
    EXPECT_EQ(w->ok, 1);
  }
  std::vector<Location> at;
  for (std::uint64_t id : {2, 3, 4}) {
    const auto e = index_.find(MessageId(id));
    ASSERT_TRUE(e.has_value()) << id;
    at.push_back(e->loc);
  }
  for (const Location& l : at) EXPECT_EQ(l.segment, SegmentSeq(3));
  EXPECT_LT(at[0].offset, at[1].offset);
  EXPECT_LT(at[1].offset, at[2].offset);
}

TEST_F(WriterFake, ShortWriteIsContinued) {
  make(FakeMode::Auto);
  engine_->script(OpKind::Write, 10);
  Waiter w;
  append(2, w);
  writer_->flush();
  pump();
  EXPECT_EQ(w.ok, 2);
  EXPECT_EQ(writer_->stats().short_writes, 1u);
  std::vector<salvo::test::FakeOp> writes;
  for (const auto& op : engine_->history()) {
    if (op.kind == OpKind::Write) writes.push_back(op);
  }
  ASSERT_EQ(writes.size(), 2u);
  EXPECT_EQ(writes[1].offset, writes[0].offset + 10);
  EXPECT_EQ(writes[1].data, writes[0].data.substr(10));
}

TEST_F(WriterFake, ZeroLengthWriteFails) {
  make(FakeMode::Auto);
  engine_->script(OpKind::Write, 0);
  Waiter w;
  append(1, w);
  writer_->flush();
  pump();
  ASSERT_EQ(w.errors.size(), 1u);
  EXPECT_EQ(w.errors[0], make_error_code(errc::short_write));
  EXPECT_EQ(count(OpKind::Fdatasync), 0u);
}

TEST_F(WriterFake, EnospcFailsBatchLeavesIndexAlone) {
  make(FakeMode::Auto);
  Waiter ok;
  append(1, ok);
  writer_->flush();
  pump();
  ASSERT_EQ(ok.ok, 1);
  engine_->script(OpKind::Write, -ENOSPC);
  Waiter w;
  append(2, w);
  writer_->flush();
  pump();
  ASSERT_EQ(w.errors.size(), 2u);
  EXPECT_EQ(w.errors[0], std::errc::no_space_on_device);
  EXPECT_EQ(writer_->stats().no_space, 1u);
  EXPECT_EQ(index_.message_count(), 1u);  // already-queued data untouched
}

TEST_F(WriterFake, FreeSpaceCheck) {
  make(FakeMode::Auto, WriterOptions{.reserve_bytes = 0});
  EXPECT_TRUE(writer_->free_space_ok());
  make(FakeMode::Auto, WriterOptions{.reserve_bytes = 1ull << 62});
  EXPECT_FALSE(writer_->free_space_ok());
}

TEST_F(WriterFake, NoSyncModeSkipsFdatasync) {
  make(FakeMode::Auto, WriterOptions{.sync = SyncMode::None});
  Waiter w;
  append(5, w);
  writer_->flush();
  pump();
  EXPECT_EQ(w.ok, 5);
  EXPECT_EQ(count(OpKind::Fdatasync), 0u);
}

TEST_F(WriterFake, JobCommitWaitsForItsRecords) {
  make(FakeMode::Auto);
  std::string content = "Subject: {{name}}\r\n\r\nHi {{name}}\r\n";
  JobTemplateRecord t{.job = "j", .from = "f@x", .content = content};
  Waiter wt, wb, wc;
  auto id = writer_->append_job_template(t, &wt);
  ASSERT_TRUE(id);
  JobRecipientsRecord b{.job_id = *id, .first_index = 0};
  b.recipients.push_back({"a@x", 0, "", {{"name", "A"}}});
  b.recipients.push_back({"b@x", 0, "", {{"name", "B"}}});
  ASSERT_TRUE(writer_->append_job_recipients(b, &wb));
  b.first_index = 2;
  ASSERT_TRUE(writer_->append_job_recipients(b, &wb));
  ASSERT_TRUE(writer_->append_job_commit({.job_id = *id, .recipient_count = 4}, &wc));
  writer_->flush();
  pump();
  EXPECT_EQ(wt.ok, 1);
  EXPECT_EQ(wb.ok, 2);
  EXPECT_EQ(wc.ok, 1);
  EXPECT_EQ(count(OpKind::Fdatasync), 2u);  // the commit record went in a later batch
  const auto e = index_.find(*id);
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(e->committed);
  EXPECT_EQ(e->state.size(), 4u);
  EXPECT_EQ(e->batches.size(), 2u);
  EXPECT_NE(e->commit_loc.offset, 0u);
}

TEST_F(WriterFake, JobCommitAfterRecordsDurableGoesStraightIn) {
  make(FakeMode::Auto);
  JobTemplateRecord t{.job = "j", .from = "f@x", .content = "c"};
  Waiter w, wc;
  auto id = writer_->append_job_template(t, &w);
  ASSERT_TRUE(id);
  JobRecipientsRecord b{.job_id = *id, .first_index = 0};
  b.recipients.push_back({"a@x", 0, "", {}});
  ASSERT_TRUE(writer_->append_job_recipients(b, &w));
  writer_->flush();
  pump();
  ASSERT_EQ(w.ok, 2);
  // Wrong count and unknown jobs are refused at once, without a callback.
  EXPECT_FALSE(writer_->append_job_commit({.job_id = *id, .recipient_count = 5}, &wc));
  EXPECT_FALSE(writer_->append_job_commit({.job_id = MessageId(999), .recipient_count = 1}, &wc));
  ASSERT_TRUE(writer_->append_job_commit({.job_id = *id, .recipient_count = 1}, &wc));
  EXPECT_EQ(wc.calls, 0);
  writer_->flush();
  pump();
  EXPECT_EQ(wc.ok, 1);
  EXPECT_EQ(wc.calls, 1);
  ASSERT_TRUE(index_.contains(*id));
  EXPECT_TRUE(index_.find(*id)->committed);
}

TEST_F(WriterFake, JobWithFailedRecordNeverCommits) {
  make(FakeMode::Auto);
  engine_->script(OpKind::Fdatasync, -EIO);
  JobTemplateRecord t{.job = "j", .from = "f@x", .content = "c"};
  Waiter wt, wc;
  auto id = writer_->append_job_template(t, &wt);
  ASSERT_TRUE(id);
  JobRecipientsRecord b{.job_id = *id, .first_index = 0};
  b.recipients.push_back({"a@x", 0, "", {}});
  ASSERT_TRUE(writer_->append_job_recipients(b, nullptr));
  ASSERT_TRUE(writer_->append_job_commit({.job_id = *id, .recipient_count = 1}, &wc));
  writer_->flush();
  pump();
  ASSERT_EQ(wc.errors.size(), 1u);
  EXPECT_EQ(wc.errors[0], make_error_code(errc::job_failed));
  EXPECT_FALSE(index_.contains(*id));
  EXPECT_EQ(count(OpKind::Fdatasync), 1u);
}

// A pickup file found malformed half-way: the job is abandoned while its records are
// still in flight. They land, then the job leaves the index; nothing can commit it.
TEST_F(WriterFake, AbandonedJobLeavesNothingInTheIndex) {
  make(FakeMode::Auto);
  JobTemplateRecord t{.job = "j", .from = "f@x", .content = "c"};
  Waiter w, wc;
  auto id = writer_->append_job_template(t, &w);
  ASSERT_TRUE(id);
  JobRecipientsRecord b{.job_id = *id, .first_index = 0};
  b.recipients.push_back({"a@x", 0, "", {}});
  ASSERT_TRUE(writer_->append_job_recipients(b, &w));
  ASSERT_TRUE(writer_->abandon_job(*id));  // records still buffered
  writer_->flush();
  pump();
  EXPECT_EQ(w.ok, 2);  // the records themselves were written
  EXPECT_FALSE(index_.contains(*id));
  EXPECT_FALSE(writer_->append_job_commit({.job_id = *id, .recipient_count = 1}, &wc));
  EXPECT_FALSE(writer_->abandon_job(*id));
  EXPECT_EQ(wc.calls, 0);
  // Abandoned once everything is durable: dropped at once.
  auto id2 = writer_->append_job_template(t, &w);
  ASSERT_TRUE(id2);
  writer_->flush();
  pump();
  ASSERT_TRUE(index_.contains(*id2));
  ASSERT_TRUE(writer_->abandon_job(*id2));
  EXPECT_FALSE(index_.contains(*id2));
}

// The next segment is made while the current one fills: made under its .new name, linked
// only after its fsync, ready after the directory's fsync; the roll-over then takes it
// without making one on the loop, and the one after it is begun at once.
TEST_F(WriterFake, SegmentMadeAheadIsLinkedAfterItsFsyncAndTakenAtTheRollOver) {
  make(FakeMode::Manual, WriterOptions{.segment_size = 64 * 1024, .make_segments_ahead = true});
  const std::string dir = dir_.path();
  Waiter w;
  append(1, w);  // the first segment is made on the spot; the second is begun
  EXPECT_EQ(writer_->current_segment(), SegmentSeq(1));
  EXPECT_TRUE(std::filesystem::exists(detail::unfinished_path(dir, SegmentSeq(2))));
  EXPECT_FALSE(std::filesystem::exists(detail::segment_path(dir, SegmentSeq(2))));
  ASSERT_EQ(engine_->pending_count(OpKind::Fsync), 1u);
  ASSERT_TRUE(engine_->complete_next(OpKind::Fsync, 0));  // the file's fsync
  pump(1);
  EXPECT_FALSE(std::filesystem::exists(detail::unfinished_path(dir, SegmentSeq(2))));
  EXPECT_TRUE(std::filesystem::exists(detail::segment_path(dir, SegmentSeq(2))));
  ASSERT_EQ(engine_->pending_count(OpKind::Fsync), 1u);  // the directory's
  EXPECT_FALSE(writer_->idle());
  ASSERT_TRUE(engine_->complete_next(OpKind::Fsync, 0));
  pump(1);
  while (finish_one_commit_op()) {
  }
  writer_->flush();
  while (finish_one_commit_op()) {
  }
  EXPECT_TRUE(writer_->idle());
  fx_.body.assign(30 * 1024, 'b');
  append(3, w);  // the third does not fit in segment 1
  EXPECT_EQ(writer_->current_segment(), SegmentSeq(2));
  EXPECT_EQ(writer_->stats().segments_created, 2u);
  EXPECT_EQ(writer_->stats().segments_ahead, 1u);
  EXPECT_TRUE(std::filesystem::exists(detail::unfinished_path(dir, SegmentSeq(3))));
  EXPECT_FALSE(writer_->idle());  // segment 3 is being made
  // A segment not made yet when it is needed (its fsync still running) goes; the roll-over
  // makes the next number on the spot.
  append(2, w);
  EXPECT_EQ(writer_->current_segment(), SegmentSeq(4));
  EXPECT_EQ(writer_->stats().segments_ahead, 1u);
  EXPECT_FALSE(std::filesystem::exists(detail::unfinished_path(dir, SegmentSeq(3))));
  EXPECT_FALSE(std::filesystem::exists(detail::segment_path(dir, SegmentSeq(3))));
  EXPECT_TRUE(std::filesystem::exists(detail::unfinished_path(dir, SegmentSeq(5))));
  for (;;) {
    if (engine_->complete_next(OpKind::Fsync, 0)) {
      pump(1);
    } else if (!finish_one_commit_op()) {
      break;
    }
    writer_->flush();
  }
  EXPECT_EQ(w.ok, 6);
  EXPECT_TRUE(writer_->idle());
  EXPECT_TRUE(std::filesystem::exists(detail::segment_path(dir, SegmentSeq(5))));
  EXPECT_FALSE(std::filesystem::exists(detail::segment_path(dir, SegmentSeq(3))));
  writer_->discard_spare();
  EXPECT_FALSE(std::filesystem::exists(detail::segment_path(dir, SegmentSeq(5))));
  EXPECT_EQ(writer_->stats().spare_failures, 0u);
}

// A failed fsync of the segment being made removes it and is counted; the roll-over then
// makes its segment on the spot, and appends go on.
TEST_F(WriterFake, AFailedFsyncOfTheSegmentMadeAheadFallsBackToTheRollOver) {
  make(FakeMode::Auto, WriterOptions{.segment_size = 64 * 1024, .make_segments_ahead = true});
  const std::string dir = dir_.path();
  engine_->script(OpKind::Fsync, -EIO);
  Waiter w;
  append(1, w);
  writer_->flush();
  pump();
  EXPECT_EQ(writer_->stats().spare_failures, 1u);
  EXPECT_FALSE(std::filesystem::exists(detail::unfinished_path(dir, SegmentSeq(2))));
  EXPECT_FALSE(std::filesystem::exists(detail::segment_path(dir, SegmentSeq(2))));
  EXPECT_TRUE(writer_->idle());
  fx_.body.assign(40 * 1024, 'b');
  append(2, w);
  writer_->flush();
  pump();
  EXPECT_EQ(w.ok, 3);
  EXPECT_EQ(writer_->current_segment(), SegmentSeq(3));
  EXPECT_EQ(writer_->stats().segments_ahead, 0u);
  EXPECT_TRUE(std::filesystem::exists(detail::segment_path(dir, SegmentSeq(4))));  // next one
  // The directory's fsync failing (after the link) removes the linked segment too.
  fx_.body.assign(50 * 1024, 'c');
  engine_->script(OpKind::Fsync, 0);
  engine_->script(OpKind::Fsync, -EIO);
  append(1, w);  // takes segment 4, begins 5
  writer_->flush();
  pump();
  EXPECT_EQ(writer_->current_segment(), SegmentSeq(4));
  EXPECT_EQ(writer_->stats().segments_ahead, 1u);
  EXPECT_EQ(writer_->stats().spare_failures, 2u);
  EXPECT_FALSE(std::filesystem::exists(detail::segment_path(dir, SegmentSeq(5))));
  EXPECT_EQ(w.ok, 4);
}

TEST_F(WriterFake, DestroyWithPendingAppendsFailsWaiters) {
  make(FakeMode::Manual);
  Waiter w;
  append(2, w);
  writer_.reset();
  EXPECT_EQ(w.calls, 2);
  EXPECT_EQ(w.errors.size(), 2u);
  pump();  // the cancelled timer's final call frees it
}

}  // namespace
}  // namespace salvo::spool::test
