// SPDX-License-Identifier: Apache-2.0
// The compact per-message forms of the spool index (issue 15): PackedLocation's bounds, and
// messages whose states sit inline (up to kInlineRecipients) or in a Wide record (more),
// and jobs, behaving alike.
#include <gtest/gtest.h>

#include <salvo/spool/packed_location.h>
#include <salvo/spool/spool_index.h>

namespace salvo::spool {
namespace {

constexpr std::uint32_t kInline = SpoolIndex::kInlineRecipients;

TEST(PackedLocation, KeepsEveryFieldUpToItsBound) {
  const Location cases[] = {
      {SegmentSeq(1), 0, 0},
      {SegmentSeq(7), 64ull << 20, 2200},
      // Past 32 bits: a segment number reached with 1 MB segments after years, and an
      // offset in a segment sized to fit a 4 GB message after a 4 GB segment's worth.
      {SegmentSeq((1ull << 32) + 5), (1ull << 32) + 17, 0xffffffffu},
      {SegmentSeq(PackedLocation::kMaxSegment), PackedLocation::kMaxOffset, 0xffffffffu},
  };
  for (const Location& l : cases) {
    const PackedLocation p(l);
    EXPECT_EQ(p.unpack(), l) << l.segment.value() << " " << l.offset;
    EXPECT_EQ(p.segment(), l.segment);
  }
  EXPECT_EQ(sizeof(PackedLocation), 16u);
}

TEST(PackedLocationDeathTest, ASegmentPastTheBoundIsACheckNotASilentWrap) {
  const Location big{SegmentSeq(PackedLocation::kMaxSegment + 1), 0, 1};
  EXPECT_DEATH({ (void)PackedLocation(big); }, "kMaxSegment");
  const Location far{SegmentSeq(1), PackedLocation::kMaxOffset + 1, 1};
  EXPECT_DEATH({ (void)PackedLocation(far); }, "kMaxOffset");
}

Location at(std::uint64_t seg, std::uint64_t off) { return {SegmentSeq(seg), off, 100}; }

StateUpdate update(std::uint64_t id, std::uint32_t r, RecipientState s) {
  StateUpdate u;
  u.message = MessageId(id);
  u.recipient = RecipientIndex(r);
  u.state = s;
  return u;
}

// A message of n recipients goes through deferral and finals; the index frees it with its
// last live recipient and its segment becomes reclaimable, whichever form it took.
void walk_message(std::uint32_t n) {
  SCOPED_TRACE(n);
  SpoolIndex idx;
  idx.add_segment(SegmentSeq(1));
  idx.add_segment(SegmentSeq(2));
  const Location loc{SegmentSeq(1), (1ull << 33) + 12, 4321};
  idx.add_message(MessageId(9), loc, n);
  auto e = idx.find(MessageId(9));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->loc, loc);
  EXPECT_EQ(e->state.size(), n);
  EXPECT_EQ(e->live, n);
  EXPECT_FALSE(e->is_job);
  EXPECT_TRUE(e->committed);
  EXPECT_EQ(idx.live_recipients(), n);
  EXPECT_EQ(idx.segment_live(SegmentSeq(1)), n);
  EXPECT_TRUE(idx.apply(update(9, n - 1, RecipientState::Deferred), SegmentSeq(2)));
  EXPECT_EQ(idx.state(MessageId(9), RecipientIndex(n - 1)), RecipientState::Deferred);
  EXPECT_FALSE(idx.apply(update(9, n, RecipientState::Delivered), SegmentSeq(2)))
      << "an index past the last recipient";
  for (std::uint32_t r = 0; r < n; ++r) {
    EXPECT_EQ(idx.find(MessageId(9))->live, n - r);
    EXPECT_EQ(idx.recipient(MessageId(9), RecipientIndex(r))->index_in_record, r);
    EXPECT_TRUE(idx.apply(update(9, r, RecipientState::Delivered), SegmentSeq(2)));
    EXPECT_FALSE(idx.apply(update(9, r, RecipientState::Bounced), SegmentSeq(2)))
        << "a final state is never changed";
  }
  EXPECT_FALSE(idx.contains(MessageId(9)));
  EXPECT_EQ(idx.live_recipients(), 0u);
  EXPECT_EQ(idx.segment_live(SegmentSeq(1)), 0u);
  EXPECT_EQ(idx.reclaimable(SegmentSeq(2)), std::vector<SegmentSeq>{SegmentSeq(1)});
}

TEST(SpoolIndexCompact, OneRecipientInline) { walk_message(1); }
TEST(SpoolIndexCompact, ExactlyTheInlineLimit) { walk_message(kInline); }
TEST(SpoolIndexCompact, OneMoreThanTheInlineLimit) { walk_message(kInline + 1); }
TEST(SpoolIndexCompact, ManyRecipients) { walk_message(5000); }

TEST(SpoolIndexCompact, DropAndAbsorbCarryEveryForm) {
  SpoolIndex older;
  older.add_segment(SegmentSeq(1));
  older.add_message(MessageId(1), at(1, 0), kInline);
  older.add_message(MessageId(2), at(1, 100), kInline + 1);
  older.add_job_template(MessageId(3), at(1, 200));
  ASSERT_TRUE(older.add_job_batch(MessageId(3), 0, 40, at(1, 300)));
  ASSERT_TRUE(older.commit_job(MessageId(3), at(1, 400)));
  EXPECT_TRUE(older.apply(update(2, 0, RecipientState::Delivered), SegmentSeq(1)));
  SpoolIndex live;
  live.add_segment(SegmentSeq(5));
  live.add_message(MessageId(100), at(5, 0), 1);
  EXPECT_TRUE(live.absorb(std::move(older)).empty());
  EXPECT_EQ(live.live_recipients(), 1u + kInline + kInline + 40u);
  EXPECT_EQ(live.find(MessageId(2))->live, kInline);
  EXPECT_EQ(live.state(MessageId(2), RecipientIndex(0)), RecipientState::Delivered);
  const auto job = live.find(MessageId(3));
  ASSERT_TRUE(job.has_value());
  EXPECT_TRUE(job->is_job);
  EXPECT_EQ(job->batches.size(), 1u);
  EXPECT_EQ(job->commit_loc, at(1, 400));
  EXPECT_EQ(live.recipient(MessageId(3), RecipientIndex(7))->job_template, at(1, 200));
  live.drop(MessageId(1));
  live.drop(MessageId(2));
  live.drop(MessageId(3));
  EXPECT_EQ(live.live_recipients(), 1u);
  EXPECT_EQ(live.segment_live(SegmentSeq(1)), 0u);
  EXPECT_EQ(live.reclaimable(SegmentSeq(5)), std::vector<SegmentSeq>{SegmentSeq(1)})
      << "no pin of the dropped job is left";
}

}  // namespace
}  // namespace salvo::spool
