// SPDX-License-Identifier: Apache-2.0
// Start-up in two steps (docs/spool-format.md §7, "Background recovery"): list_spool()
// knows the next segment and id without reading a segment; a writer takes new mail into an
// empty index while recover_segments() scans the old ones; SpoolIndex::absorb() then gives
// the same index a single scan of everything would, and reclamation (held until then)
// works from it.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <salvo/base/clock.h>
#include <salvo/spool/recovery.h>
#include <salvo/spool/spool_writer.h>

#include "spool_test_util.h"

namespace salvo::spool::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class BackgroundRecoveryTest : public UringSpoolTest {
 protected:
  WriterOptions options() const { return WriterOptions{.dir = spool_, .segment_size = 64 * 1024}; }

  // Appends and waits for the commit.
  MessageId message(SpoolWriter& w, int body_kib) {
    MessageFixture fx;
    fx.body = std::string(static_cast<std::size_t>(body_kib) * 1024, 'x');
    MessageRecord m = fx.record();
    Waiter wt;
    auto id = w.append_message(m, &wt);
    EXPECT_TRUE(id);
    w.flush();
    EXPECT_TRUE(run_until(*engine_, [&] { return wt.calls == 1; }));
    EXPECT_EQ(wt.ok, 1);
    return id.value_or(MessageId{});
  }
  void states(SpoolWriter& w, std::vector<StateUpdate> u) {
    Waiter wt;
    ASSERT_TRUE(w.append_states(u, &wt));
    w.flush();
    ASSERT_TRUE(run_until(*engine_, [&] { return wt.calls == 1; }));
    EXPECT_EQ(wt.ok, 1);
  }
  // A job of `n` recipients in batches of two, committed.
  MessageId job(SpoolWriter& w, std::uint32_t n) {
    JobTemplateRecord t;
    t.job = "j";
    t.from = "shop@example.org";
    t.content = "Subject: {{ name }}\r\n\r\nhi\r\n";
    auto id = w.append_job_template(t, nullptr);
    EXPECT_TRUE(id);
    for (std::uint32_t first = 0; first < n; first += 2) {
      JobRecipientsRecord b;
      b.job_id = *id;
      b.first_index = first;
      for (std::uint32_t i = first; i < std::min(n, first + 2); ++i) {
        b.recipients.push_back({"r@example.com", 0, {}, {}});
      }
      EXPECT_TRUE(w.append_job_recipients(b, nullptr));
    }
    Waiter wt;
    EXPECT_TRUE(w.append_job_commit(JobCommitRecord{*id, n, std::nullopt}, &wt));
    w.flush();
    EXPECT_TRUE(run_until(*engine_, [&] { return wt.calls == 1; }));
    EXPECT_EQ(wt.ok, 1);
    return *id;
  }

  // Per message, the recipient states; per segment on disk, its live recipients.
  static std::map<std::uint64_t, std::vector<std::uint8_t>> states_of(const SpoolIndex& index) {
    std::map<std::uint64_t, std::vector<std::uint8_t>> out;
    index.for_each([&](MessageId id, const SpoolIndex::Entry& e) {
      out[id.value()].assign(e.state.begin(), e.state.end());
    });
    return out;
  }
};

TEST_F(BackgroundRecoveryTest, TheListingKnowsTheNextSegmentAndIdWithoutReadingSegments) {
  auto empty = list_spool(spool_, 0);
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->ids_known) << "an empty spool holds no id";
  EXPECT_TRUE(empty->segments.empty());
  MessageId last;
  {
    auto r = recover(spool_, 0);
    ASSERT_TRUE(r);
    SpoolWriter w(*engine_, clock_, options(), r->index, r->next_segment, r->next_id);
    for (int i = 0; i < 6; ++i) last = message(w, 30);  // two per 64 KiB segment
  }
  settle();
  auto l = list_spool(spool_, 0);
  ASSERT_TRUE(l);
  ASSERT_EQ(l->segments.size(), 3u);
  EXPECT_EQ(l->next_segment, SegmentSeq(4));
  EXPECT_TRUE(l->ids_known);
  EXPECT_GT(l->next_id.value(), last.value());
  EXPECT_EQ(l->bytes, 3u * 64 * 1024);
  // The scan agrees: the mark is above every id it finds.
  auto full = recover(spool_, 0);
  ASSERT_TRUE(full);
  EXPECT_LE(full->next_id.value(), l->next_id.value());

  // Without the mark (a spool from before marks, or a writer that could not renew it and
  // removed it) only a scan can tell the highest id.
  fs::remove(spool_ + "/next-id");
  l = list_spool(spool_, 0);
  ASSERT_TRUE(l);
  EXPECT_FALSE(l->ids_known);
  {
    std::ofstream(spool_ + "/next-id") << "salvo-next-id 1 zz\n";
  }
  l = list_spool(spool_, 0);
  ASSERT_TRUE(l);
  EXPECT_FALSE(l->ids_known);
  EXPECT_TRUE(l->bad_id_mark);
}

// The whole protocol on one spool: old mail (messages across segments, some recipients
// final or deferred, a job), then a start with an empty index: new mail and its finals
// committed, reclamation held, while the old segments are scanned; the scan absorbed; old
// recipients made final afterwards. The live index is then what one scan of everything
// gives, and reclamation deletes exactly what it may.
TEST_F(BackgroundRecoveryTest, AnAbsorbedScanEqualsOneScanOfEverything) {
  std::vector<MessageId> old;
  MessageId old_job;
  {
    auto r = recover(spool_, 0);
    ASSERT_TRUE(r);
    SpoolWriter w(*engine_, clock_, options(), r->index, r->next_segment, r->next_id);
    for (int i = 0; i < 6; ++i) old.push_back(message(w, 30));
    old_job = job(w, 5);
    // Message 0: both recipients final; message 1: one deferred, one delivered; job
    // recipient 3 bounced.
    states(w, {{old[0], RecipientIndex(0), RecipientState::Delivered, 1, 0},
               {old[0], RecipientIndex(1), RecipientState::Delivered, 1, 0},
               {old[1], RecipientIndex(0), RecipientState::Deferred, 2, 12345},
               {old[1], RecipientIndex(1), RecipientState::Delivered, 1, 0},
               {old_job, RecipientIndex(3), RecipientState::Bounced, 1, 0}});
  }
  settle();

  auto listing = list_spool(spool_, 0);
  ASSERT_TRUE(listing);
  ASSERT_TRUE(listing->ids_known);
  const std::size_t old_segments = listing->segments.size();
  ASSERT_GE(old_segments, 3u);
  SpoolIndex live;
  {
    SpoolWriter w(*engine_, clock_, options(), live, listing->next_segment, listing->next_id);
    w.hold_reclaim(true);
    // New mail while the old segments are scanned: ids above every old one.
    MessageId fresh = message(w, 1);
    MessageId done = message(w, 1);
    EXPECT_GT(fresh.value(), old_job.value());
    states(w, {{done, RecipientIndex(0), RecipientState::Delivered, 1, 0},
               {done, RecipientIndex(1), RecipientState::Delivered, 1, 0}});
    EXPECT_EQ(w.stats().segments_deleted, 0u) << "held: the old segments are not known yet";

    ScanProgress progress;
    auto scanned = recover_segments(*listing, &progress);
    ASSERT_TRUE(scanned);
    EXPECT_EQ(progress.segments_done.load(), old_segments);
    EXPECT_EQ(progress.bytes_done.load(), listing->bytes);
    EXPECT_EQ(progress.messages.load(), 7u);
    EXPECT_TRUE(live.absorb(std::move(scanned->index)).empty());
    w.hold_reclaim(false);
    EXPECT_EQ(w.stats().segments_deleted, 0u) << "every old segment still holds live mail";

    // Old mail delivered after the hand-over: its finals go to the new segment.
    std::vector<StateUpdate> finals;
    for (std::size_t i = 1; i < old.size(); ++i) {
      for (std::uint32_t r = 0; r < 2; ++r) {
        finals.push_back({old[i], RecipientIndex(r), RecipientState::Delivered, 1, 0});
      }
    }
    states(w, finals);
    // What one scan of everything gives now, old and new (the writer's segment included).
    auto full = recover(spool_, 0);
    ASSERT_TRUE(full);
    EXPECT_EQ(states_of(live), states_of(full->index));
    EXPECT_EQ(live.live_recipients(), full->index.live_recipients());
    EXPECT_EQ(live.segment_count(), full->index.segment_count());
    for (std::uint64_t s = 1; s < w.current_segment().value(); ++s) {
      EXPECT_EQ(live.segment_live(SegmentSeq(s)), full->index.segment_live(SegmentSeq(s))) << s;
    }
    // Only the job is left; the segments of the delivered messages were reclaimed (all
    // but the job's, which its live recipients pin).
    EXPECT_EQ(live.message_count(), 2u) << "the job and `fresh`";
    EXPECT_GT(w.stats().segments_deleted, 0u);
  }
  settle();
  auto after = recover(spool_, 0);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->index.message_count(), 2u) << "the job and `fresh`";
  ASSERT_TRUE(after->index.contains(old_job));
  EXPECT_EQ(after->index.state(old_job, RecipientIndex(3)), RecipientState::Bounced);
}

// An id in both indexes (only possible when a mark went stale unnoticed) is reported; the
// live entry is kept and the other's recipients stay counted on their segment, which is
// then never reclaimed.
TEST(SpoolIndexAbsorb, AnIdInBothIsReportedAndItsSegmentKept) {
  SpoolIndex live, older;
  live.add_segment(SegmentSeq(5));
  live.add_message(MessageId(7), Location{SegmentSeq(5), 64, 100}, 1);
  older.add_segment(SegmentSeq(2));
  older.add_message(MessageId(7), Location{SegmentSeq(2), 64, 100}, 3);
  older.add_message(MessageId(3), Location{SegmentSeq(2), 164, 100}, 2);
  auto clashes = live.absorb(std::move(older));
  ASSERT_EQ(clashes.size(), 1u);
  EXPECT_EQ(clashes[0], MessageId(7));
  EXPECT_EQ(live.message_count(), 2u);
  EXPECT_EQ(live.live_recipients(), 3u);
  EXPECT_EQ(live.find(MessageId(7))->loc.segment, SegmentSeq(5));
  EXPECT_EQ(live.segment_live(SegmentSeq(2)), 5u);
  EXPECT_TRUE(live.reclaimable(SegmentSeq(5)).empty());
}

// absorb() merges the smaller tables into the bigger ones, whichever side is bigger; the
// newer entry of a clashing id wins either way, with its own recipient states (a message of
// more recipients than fit inline keeps them in a side table).
TEST(SpoolIndexAbsorb, TheNewerEntryWinsWhicheverSideIsBigger) {
  for (bool older_bigger : {false, true}) {
    SpoolIndex live, older;
    live.add_segment(SegmentSeq(5));
    older.add_segment(SegmentSeq(2));
    live.add_message(MessageId(7), Location{SegmentSeq(5), 64, 100}, 9);  // wide
    older.add_message(MessageId(7), Location{SegmentSeq(2), 64, 100}, 1);
    SpoolIndex& bigger = older_bigger ? older : live;
    const SegmentSeq seg = older_bigger ? SegmentSeq(2) : SegmentSeq(5);
    for (std::uint64_t i = 0; i < 5; ++i) {
      bigger.add_message(MessageId(100 + i), Location{seg, 1000 + 100 * i, 100}, 8);
    }
    auto clashes = live.absorb(std::move(older));
    ASSERT_EQ(clashes, std::vector<MessageId>{MessageId(7)}) << older_bigger;
    EXPECT_EQ(live.message_count(), 6u);
    EXPECT_EQ(live.live_recipients(), 9u + 5 * 8) << older_bigger;
    const auto e = live.find(MessageId(7));
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->loc.segment, SegmentSeq(5));
    EXPECT_EQ(e->state.size(), 9u) << older_bigger;
    EXPECT_EQ(e->live, 9u);
    for (std::uint64_t i = 0; i < 5; ++i) EXPECT_EQ(live.find(MessageId(100 + i))->live, 8u);
  }
}

// Stopping salvod stops the scan: before its next segment, and during the test seam's
// wait.
TEST_F(BackgroundRecoveryTest, ACancelledScanStopsPromptly) {
  {
    auto r = recover(spool_, 0);
    ASSERT_TRUE(r);
    SpoolWriter w(*engine_, clock_, options(), r->index, r->next_segment, r->next_id);
    message(w, 1);
  }
  settle();
  auto listing = list_spool(spool_, 0);
  ASSERT_TRUE(listing);
  ScanProgress progress;
  progress.test_delay_per_segment = 60s;
  std::thread stopper([&] {
    std::this_thread::sleep_for(50ms);
    progress.cancel = true;
  });
  const auto t0 = std::chrono::steady_clock::now();
  auto r = recover_segments(*listing, &progress);
  stopper.join();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::errc::operation_canceled);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_EQ(progress.segments_done.load(), 0u);
}

}  // namespace
}  // namespace salvo::spool::test
