// SPDX-License-Identifier: Apache-2.0
// The clean-stop checkpoint (docs/spool-format.md §10): written from a writer's live index,
// it reads back as exactly what a scan of the same spool gives (entries, states, deferred
// recipients with their attempts, segments' reclamation bookkeeping, next ids), over random
// spools; it is removed when taken; and anything that is not that spool's checkpoint (cut
// short at any length, any byte changed, another version or shard, a segment changed,
// added or removed, the id mark moved) is refused, so the scan runs and nothing is lost.
#include <algorithm>
#include <filesystem>
#include <functional>
#include <fstream>
#include <map>
#include <random>
#include <tuple>

#include <fcntl.h>
#include <sys/stat.h>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <salvo/base/clock.h>
#include <salvo/spool/checkpoint.h>
#include <salvo/spool/recovery.h>
#include <salvo/spool/spool_writer.h>

#include "spool/segment_file.h"
#include "spool_test_util.h"

namespace salvo::spool::test {
namespace {

namespace fs = std::filesystem;

// Everything of an index a restart depends on, comparable.
struct IndexView {
  using Batch = std::tuple<std::uint32_t, std::uint32_t, std::uint64_t, std::uint64_t,
                           std::uint32_t>;
  using EntryView = std::tuple<bool, std::uint64_t, std::uint64_t, std::uint32_t, std::uint64_t,
                               std::uint64_t, std::vector<std::uint8_t>, std::vector<Batch>>;
  std::map<std::uint64_t, EntryView> entries;
  std::map<std::uint64_t, std::pair<std::uint64_t, bool>> segments;  // live, quarantined
  std::uint64_t live = 0;
  std::vector<SegmentSeq> reclaimable;
  bool operator==(const IndexView&) const = default;
};

IndexView view_of(const SpoolIndex& index, SegmentSeq keep) {
  IndexView v;
  index.for_each([&](MessageId id, const SpoolIndex::Entry& e) {
    std::vector<IndexView::Batch> batches;
    for (const auto& b : e.batches) {
      batches.emplace_back(b.first, b.count, b.loc.segment.value(), b.loc.offset, b.loc.length);
    }
    v.entries[id.value()] = {e.is_job,
                             e.loc.segment.value(),
                             e.loc.offset,
                             e.loc.length,
                             e.is_job ? e.commit_loc.segment.value() : 0,
                             e.is_job ? e.commit_loc.offset : 0,
                             std::vector<std::uint8_t>(e.state.begin(), e.state.end()),
                             batches};
  });
  index.for_each_segment([&](const SpoolIndex::SegmentInfo& s) {
    v.segments[s.seq.value()] = {index.segment_live(s.seq), s.quarantined};
  });
  v.live = index.live_recipients();
  v.reclaimable = index.reclaimable(keep);
  return v;
}

std::vector<std::tuple<std::uint64_t, std::uint32_t, std::uint32_t, std::int64_t>> deferred_of(
    const std::vector<PendingRecipient>& d) {
  std::vector<std::tuple<std::uint64_t, std::uint32_t, std::uint32_t, std::int64_t>> out;
  for (const auto& p : d) {
    out.emplace_back(p.message.value(), p.recipient.value(), p.attempts, p.next_attempt_unix_ns);
  }
  return out;
}

class CheckpointTest : public UringSpoolTest {
 protected:
  WriterOptions options() const { return WriterOptions{.dir = spool_, .segment_size = 64 * 1024}; }

  void commit(SpoolWriter& w, Waiter& wt, int expected) {
    w.flush();
    ASSERT_TRUE(run_until(*engine_, [&] { return wt.calls == expected; }));
    ASSERT_EQ(wt.ok, expected);
  }

  // A random spool written through a real writer: messages of 1 to 12 recipients (inline
  // and wide), jobs in batches, and random states (delivered, bounced, deferred with
  // attempts, deferred again, pending again), some written segments after their message;
  // then a checkpoint from the writer's live index.
  // small: one round of at most three messages and a job (a checkpoint of a few hundred
  // bytes, for the tests that try every byte of it).
  void write_random_spool(std::uint32_t seed, bool small = false) {
    std::mt19937 rng(seed);
    auto r = recover(spool_, 0);
    ASSERT_TRUE(r);
    live_ = std::make_unique<RecoveryResult>(std::move(*r));
    SpoolWriter w(*engine_, clock_, options(), live_->index, live_->next_segment,
                  live_->next_id);
    Waiter wt;
    int expected = 0;
    std::vector<std::pair<MessageId, std::uint32_t>> all;
    const int rounds = small ? 1 : 3 + static_cast<int>(rng() % 4);
    for (int round = 0; round < rounds; ++round) {
      const int messages = small ? 3 : 2 + static_cast<int>(rng() % 8);
      for (int i = 0; i < messages; ++i) {
        MessageFixture fx;
        fx.rcpts.clear();
        const std::uint32_t n = 1 + rng() % 12;
        for (std::uint32_t k = 0; k < n; ++k) fx.rcpts.push_back(fmt::format("r{}@x.test", k));
        fx.body = std::string(200 + rng() % 9000, 'b');
        MessageRecord m = fx.record();
        auto id = w.append_message(m, &wt);
        ASSERT_TRUE(id);
        ++expected;
        all.emplace_back(*id, n);
      }
      if (small || rng() % 2 == 0) {
        JobTemplateRecord t;
        t.job = "j";
        t.from = "shop@example.org";
        t.content = "Subject: {{ name }}\r\n\r\nhi\r\n";
        auto id = w.append_job_template(t, nullptr);
        ASSERT_TRUE(id);
        const std::uint32_t n = 1 + rng() % 9;
        for (std::uint32_t first = 0; first < n; first += 3) {
          JobRecipientsRecord b;
          b.job_id = *id;
          b.first_index = first;
          for (std::uint32_t k = first; k < std::min(n, first + 3); ++k) {
            b.recipients.push_back({"r@example.com", 0, {}, {}});
          }
          ASSERT_TRUE(w.append_job_recipients(b, nullptr));
        }
        ASSERT_TRUE(w.append_job_commit(JobCommitRecord{*id, n, std::nullopt}, &wt));
        ++expected;
        all.emplace_back(*id, n);
      }
      ASSERT_NO_FATAL_FAILURE(commit(w, wt, expected));
      std::vector<StateUpdate> u;
      const int changes = static_cast<int>(rng() % 30);
      for (int c = 0; c < changes; ++c) {
        const auto& [id, n] = all[rng() % all.size()];
        const RecipientIndex rcpt(rng() % n);
        static constexpr RecipientState kStates[] = {
            RecipientState::Delivered, RecipientState::Bounced, RecipientState::Deferred,
            RecipientState::Deferred, RecipientState::Pending};
        const RecipientState s = kStates[rng() % 5];
        const auto attempts = static_cast<std::uint32_t>(1 + rng() % 7);
        const auto next = s == RecipientState::Deferred
                              ? static_cast<std::int64_t>(1'800'000'000'000'000'000 + rng())
                              : std::int64_t{0};
        u.push_back({id, rcpt, s, attempts, next});
      }
      if (!u.empty()) {
        ASSERT_TRUE(w.append_states(u, &wt));
        ++expected;
        ASSERT_NO_FATAL_FAILURE(commit(w, wt, expected));
      }
    }
    ASSERT_TRUE(w.idle());
    deferred_ = w.deferred();
    next_id_ = w.next_id();
    ASSERT_TRUE(save_checkpoint(spool_, 0, live_->index, deferred_, next_id_));
    w.checkpoint_written();
  }

  CheckpointLoad take(std::uint32_t shard = 0) {
    auto l = list_spool(spool_, shard);
    EXPECT_TRUE(l);
    if (!l) return {};
    return take_checkpoint(*l, true);
  }

  std::string checkpoint() const { return spool_ + "/checkpoint"; }
  std::string read_file(const std::string& p) const {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void write_file(const std::string& p, const std::string& bytes) const {
    std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
  }

  std::unique_ptr<RecoveryResult> live_;
  std::vector<PendingRecipient> deferred_;
  MessageId next_id_;
};

// The checkpoint taken equals the scan of the same spool, and the writer's live index and
// deferred list (what it is written from) equal the scan too.
TEST_F(CheckpointTest, ReadsBackAsTheScanOfTheSameSpoolOverRandomSpools) {
  std::uint64_t entries = 0, deferred = 0, jobs = 0, wide = 0, reclaims = 0;
  for (std::uint32_t seed = 1; seed <= 25; ++seed) {
    SCOPED_TRACE(seed);
    fs::remove_all(spool_);
    ASSERT_NO_FATAL_FAILURE(write_random_spool(seed));
    settle();
    auto scan = recover(spool_, 0);
    ASSERT_TRUE(scan);
    CheckpointLoad got = take();
    ASSERT_EQ(got.use, CheckpointUse::Used) << got.why;
    ASSERT_TRUE(got.result);
    EXPECT_FALSE(fs::exists(checkpoint())) << "taken once: removed";
    RecoveryResult& c = *got.result;
    const SegmentSeq keep = scan->next_segment;
    const IndexView want = view_of(scan->index, keep);
    EXPECT_TRUE(view_of(live_->index, keep) == want) << "the live index is the scan's";
    EXPECT_TRUE(view_of(c.index, keep) == want);
    EXPECT_EQ(deferred_of(deferred_), deferred_of(scan->deferred));
    EXPECT_EQ(deferred_of(c.deferred), deferred_of(scan->deferred));
    EXPECT_EQ(c.next_segment, scan->next_segment);
    EXPECT_EQ(c.next_id, scan->next_id);
    EXPECT_GE(c.next_id.value(), next_id_.value());
    EXPECT_EQ(c.report.segments, scan->report.segments);
    EXPECT_EQ(c.report.messages, scan->index.message_count());
    EXPECT_EQ(c.report.checkpoint, CheckpointUse::Used);
    // The segments' final-state bookkeeping (which segment holds final states for which):
    // as the messages are made final (in a newer segment), half of them first, the same
    // segments go, in the same order.
    for (std::uint64_t half : {0, 1, 2}) {
      for (SpoolIndex* index : {&scan->index, &c.index}) {
        index->add_segment(keep);
        // Collected first: apply() invalidates for_each's views.
        std::vector<StateUpdate> finals;
        index->for_each([&](MessageId id, const SpoolIndex::Entry& e) {
          if (half != 2 && id.value() % 2 != half) return;
          for (std::uint32_t i = 0; i < e.state.size(); ++i) {
            finals.push_back({id, RecipientIndex(i), RecipientState::Delivered, 1, 0});
          }
        });
        std::sort(finals.begin(), finals.end(), [](const StateUpdate& a, const StateUpdate& b) {
          return std::pair(a.message, a.recipient) < std::pair(b.message, b.recipient);
        });
        for (const StateUpdate& u : finals) index->apply(u, keep);
      }
      const auto gone = scan->index.reclaimable(SegmentSeq(keep.value() + 1));
      EXPECT_EQ(gone, c.index.reclaimable(SegmentSeq(keep.value() + 1))) << half;
      reclaims += gone.size();
    }
    entries += want.entries.size();
    deferred += scan->deferred.size();
    for (const auto& [id, e] : want.entries) {
      jobs += std::get<0>(e) ? 1 : 0;
      wide += std::get<6>(e).size() > SpoolIndex::kInlineRecipients ? 1 : 0;
    }
  }
  // The random spools did cover every shape.
  EXPECT_GT(entries, 200u);
  EXPECT_GT(deferred, 20u);
  EXPECT_GT(jobs, 10u);
  EXPECT_GT(wide, 20u);
  EXPECT_GT(reclaims, 25u);
}

// A segment that holds only final states for an older, live one must outlive it (or a
// restart would find those recipients pending again): the checkpoint keeps that, and its
// index does not offer the segment for reclamation either.
TEST_F(CheckpointTest, KeepsWhichSegmentHoldsFinalStatesForWhich) {
  auto r = recover(spool_, 0);
  ASSERT_TRUE(r);
  {
    SpoolWriter w(*engine_, clock_, options(), r->index, r->next_segment, r->next_id);
    Waiter wt;
    auto add = [&](std::size_t body, std::size_t rcpts) {
      MessageFixture fx;
      fx.body = std::string(body, 'x');
      fx.rcpts.resize(rcpts, "r@x.test");
      MessageRecord m = fx.record();
      auto id = w.append_message(m, &wt);
      EXPECT_TRUE(id);
      return id.value_or(MessageId{});
    };
    const MessageId m1 = add(1000, 2);
    add(50 * 1024, 1);                       // segment 1 nearly full
    const MessageId g = add(30 * 1024, 1);  // segment 2
    ASSERT_NO_FATAL_FAILURE(commit(w, wt, 3));
    const std::vector<StateUpdate> u{{m1, RecipientIndex(0), RecipientState::Delivered, 1, 0},
                                     {g, RecipientIndex(0), RecipientState::Delivered, 1, 0}};
    ASSERT_TRUE(w.append_states(u, &wt));
    ASSERT_NO_FATAL_FAILURE(commit(w, wt, 4));
    ASSERT_EQ(w.current_segment(), SegmentSeq(2));
    ASSERT_EQ(r->index.segment_live(SegmentSeq(2)), 0u);
    ASSERT_TRUE(save_checkpoint(spool_, 0, r->index, w.deferred(), w.next_id()));
  }
  settle();
  CheckpointLoad got = take();
  ASSERT_EQ(got.use, CheckpointUse::Used) << got.why;
  // Segment 2 has nothing live but holds m1's final state: kept while segment 1 is.
  EXPECT_TRUE(r->index.reclaimable(SegmentSeq(3)).empty());
  EXPECT_TRUE(got.result->index.reclaimable(SegmentSeq(3)).empty());
}

// A small spool's checkpoint cut short at every length is refused (and removed).
TEST_F(CheckpointTest, EveryTruncationIsRefused) {
  ASSERT_NO_FATAL_FAILURE(write_random_spool(7, true));
  settle();
  const std::string whole = read_file(checkpoint());
  ASSERT_GT(whole.size(), 100u);
  ASSERT_LT(whole.size(), 1000u) << "small: every length is tried";
  for (std::size_t n = 0; n < whole.size(); ++n) {
    write_file(checkpoint(), whole.substr(0, n));
    CheckpointLoad got = take();
    ASSERT_EQ(got.use, CheckpointUse::Bad) << n;
    ASSERT_FALSE(got.result);
    ASSERT_FALSE(fs::exists(checkpoint())) << n;
  }
  write_file(checkpoint(), whole);
  EXPECT_EQ(take().use, CheckpointUse::Used);
}

// Any byte changed is refused (the header's and the body's CRC).
TEST_F(CheckpointTest, EveryChangedByteIsRefused) {
  ASSERT_NO_FATAL_FAILURE(write_random_spool(8, true));
  settle();
  const std::string whole = read_file(checkpoint());
  for (std::size_t i = 0; i < whole.size(); ++i) {
    std::string bad = whole;
    bad[i] = static_cast<char>(bad[i] ^ (1 << (i % 8)));
    write_file(checkpoint(), bad);
    CheckpointLoad got = take();
    ASSERT_EQ(got.use, CheckpointUse::Bad) << i;
  }
}

// A body changed with both CRCs fixed up (a checkpoint written by a buggy salvod, say) is
// read without harm: refused, or, if it still describes a possible index, used; never a
// crash. This is what keeps restore()'s checks honest.
TEST_F(CheckpointTest, AChangedBodyWithValidCrcsIsReadWithoutHarm) {
  ASSERT_NO_FATAL_FAILURE(write_random_spool(9, true));
  settle();
  const std::string whole = read_file(checkpoint());
  constexpr std::size_t kHeader = 32;
  int refused = 0;
  for (std::size_t i = kHeader; i < whole.size(); ++i) {
    for (std::uint8_t x : {0x01, 0xff}) {
      std::string bad = whole;
      bad[i] = static_cast<char>(bad[i] ^ x);
      const std::uint32_t body_crc = crc32c(std::string_view(bad).substr(kHeader));
      for (int k = 0; k < 4; ++k) bad[24 + k] = static_cast<char>(body_crc >> (8 * k));
      const std::uint32_t head_crc = crc32c(std::string_view(bad).substr(0, 28));
      for (int k = 0; k < 4; ++k) bad[28 + k] = static_cast<char>(head_crc >> (8 * k));
      write_file(checkpoint(), bad);
      CheckpointLoad got = take();
      if (got.use != CheckpointUse::Used) ++refused;
      ASSERT_FALSE(fs::exists(checkpoint()));
    }
  }
  EXPECT_GT(refused, 0);
}

TEST_F(CheckpointTest, AnotherVersionOrShardIsRefused) {
  ASSERT_NO_FATAL_FAILURE(write_random_spool(10, true));
  settle();
  const std::string whole = read_file(checkpoint());
  {
    std::string v2 = whole;
    v2[8] = 2;  // version, then the header CRC made right again
    const std::uint32_t crc = crc32c(std::string_view(v2).substr(0, 28));
    for (int k = 0; k < 4; ++k) v2[28 + k] = static_cast<char>(crc >> (8 * k));
    write_file(checkpoint(), v2);
    CheckpointLoad got = take();
    EXPECT_EQ(got.use, CheckpointUse::Bad);
    EXPECT_NE(got.why.find("version 2"), std::string::npos) << got.why;
  }
  write_file(checkpoint(), whole);
  CheckpointLoad got = take(1);
  EXPECT_EQ(got.use, CheckpointUse::Bad);
  EXPECT_NE(got.why.find("shard 0"), std::string::npos) << got.why;
  EXPECT_FALSE(fs::exists(checkpoint()));
}

// The spool moved on or was touched behind salvod's back: stale, and the scan still finds
// everything the segments hold.
TEST_F(CheckpointTest, AChangedSegmentSetIsStale) {
  ASSERT_NO_FATAL_FAILURE(write_random_spool(11));
  settle();
  auto segs = list_spool(spool_, 0);
  ASSERT_TRUE(segs);
  ASSERT_GE(segs->segments.size(), 2u);
  const std::string first = detail::segment_path(spool_, segs->segments[0]);
  struct Case {
    const char* what;
    std::function<void()> change;
    std::function<void()> undo;
  };
  const std::string saved_first = read_file(first);
  const std::string mark = read_file(spool_ + "/next-id");
  const std::string extra = spool_ + "/seg-00000000000000ff.spool";
  const std::string note = first + ".punched";
  std::vector<Case> cases = {
      {"touched", [&] { ::utimensat(AT_FDCWD, first.c_str(), nullptr, 0); }, [] {}},
      {"rewritten with the same bytes", [&] { write_file(first, saved_first); }, [] {}},
      {"removed", [&] { fs::rename(first, first + ".away"); },
       [&] { fs::rename(first + ".away", first); }},
      {"one added", [&] { fs::copy_file(first, extra); }, [&] { fs::remove(extra); }},
      {"a punch note appeared", [&] { write_file(note, "x"); }, [&] { fs::remove(note); }},
      {"the id mark moved", [&] { ASSERT_TRUE(detail::write_id_mark(spool_, 1ull << 40)); },
       [&] { write_file(spool_ + "/next-id", mark); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    // Written afresh (an earlier case changed the files' times).
    ASSERT_TRUE(save_checkpoint(spool_, 0, live_->index, deferred_, next_id_));
    c.change();
    CheckpointLoad got = take();
    EXPECT_EQ(got.use, CheckpointUse::Stale) << got.why;
    EXPECT_FALSE(got.result);
    EXPECT_FALSE(fs::exists(checkpoint()));
    c.undo();
  }
  // The control: unchanged, it is used.
  ASSERT_TRUE(save_checkpoint(spool_, 0, live_->index, deferred_, next_id_));
  EXPECT_EQ(take().use, CheckpointUse::Used);
  // Nothing was lost: a scan finds what the live index had.
  auto scan = recover(spool_, 0);
  ASSERT_TRUE(scan);
  EXPECT_TRUE(view_of(scan->index, scan->next_segment) ==
              view_of(live_->index, scan->next_segment));
}

// [node] checkpoint = false at start: the file is removed, unused.
TEST_F(CheckpointTest, NotUsingItStillRemovesIt) {
  ASSERT_NO_FATAL_FAILURE(write_random_spool(12));
  settle();
  auto l = list_spool(spool_, 0);
  ASSERT_TRUE(l);
  CheckpointLoad got = take_checkpoint(*l, false);
  EXPECT_EQ(got.use, CheckpointUse::None);
  EXPECT_FALSE(fs::exists(checkpoint()));
  EXPECT_EQ(take().use, CheckpointUse::None) << "none left";
}

// An append after the checkpoint was written removes it first: it never describes a spool
// that holds more.
TEST_F(CheckpointTest, AnAppendAfterTheCheckpointRemovesIt) {
  auto r = recover(spool_, 0);
  ASSERT_TRUE(r);
  SpoolWriter w(*engine_, clock_, options(), r->index, r->next_segment, r->next_id);
  Waiter wt;
  MessageFixture fx;
  MessageRecord m = fx.record();
  ASSERT_TRUE(w.append_message(m, &wt));
  ASSERT_NO_FATAL_FAILURE(commit(w, wt, 1));
  ASSERT_TRUE(save_checkpoint(spool_, 0, r->index, w.deferred(), w.next_id()));
  w.checkpoint_written();
  ASSERT_TRUE(fs::exists(checkpoint()));
  MessageRecord m2 = fx.record();
  ASSERT_TRUE(w.append_message(m2, &wt));
  EXPECT_FALSE(fs::exists(checkpoint()));
  ASSERT_NO_FATAL_FAILURE(commit(w, wt, 2));
}

// SpoolIndex::restore() refuses entries no index could hold.
TEST(SpoolIndexRestore, RefusesImpossibleEntries) {
  SpoolIndex index;
  index.restore_segment(SegmentSeq(1), false, {});
  const std::vector<std::uint8_t> pending{0, 0};
  const std::vector<std::uint8_t> finals{1, 2};
  const std::vector<std::uint8_t> junk{0, 9};
  SpoolIndex::Entry e;
  e.committed = true;
  e.loc = Location{SegmentSeq(1), 100, 50};
  e.state = pending;
  EXPECT_TRUE(index.restore(MessageId(1), e));
  EXPECT_FALSE(index.restore(MessageId(1), e)) << "twice";
  e.state = finals;
  EXPECT_FALSE(index.restore(MessageId(2), e)) << "no live recipient";
  e.state = junk;
  EXPECT_FALSE(index.restore(MessageId(3), e)) << "no such state";
  e.state = pending;
  e.loc.segment = SegmentSeq(2);
  EXPECT_FALSE(index.restore(MessageId(4), e)) << "unknown segment";
  e.loc = Location{SegmentSeq(1), std::uint64_t{1} << 50, 1};
  EXPECT_FALSE(index.restore(MessageId(5), e)) << "offset beyond a packed location";
  e.loc = Location{SegmentSeq(1), 100, 50};
  e.committed = false;
  EXPECT_FALSE(index.restore(MessageId(6), e)) << "not committed";
  e.committed = true;
  e.is_job = true;
  e.commit_loc = Location{SegmentSeq(1), 300, 20};
  std::vector<SpoolIndex::JobBatch> batches{{0, 1, Location{SegmentSeq(1), 200, 10}}};
  e.batches = batches;
  EXPECT_FALSE(index.restore(MessageId(7), e)) << "a state after the last batch";
  batches = {{0, 2, Location{SegmentSeq(1), 200, 10}}, {1, 1, Location{SegmentSeq(1), 210, 10}}};
  e.batches = batches;
  EXPECT_FALSE(index.restore(MessageId(8), e)) << "overlapping batches";
  batches = {{1, 1, Location{SegmentSeq(1), 200, 10}}};
  e.batches = batches;
  EXPECT_FALSE(index.restore(MessageId(9), e)) << "a live recipient in no batch";
  batches = {{0, 2, Location{SegmentSeq(1), 200, 10}}};
  e.batches = batches;
  EXPECT_TRUE(index.restore(MessageId(10), e));
  EXPECT_EQ(index.message_count(), 2u);
  EXPECT_EQ(index.live_recipients(), 4u);
  EXPECT_EQ(index.segment_live(SegmentSeq(1)), 4u);
  EXPECT_TRUE(index.reclaimable(SegmentSeq(2)).empty());
}

}  // namespace
}  // namespace salvo::spool::test
