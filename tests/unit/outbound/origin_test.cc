// SPDX-License-Identifier: Apache-2.0
// Origin's job window on real spool files with the io_uring engine: a committed job is a
// cursor, never more than job_window of its recipients are dispatched and not final, every
// recipient goes out exactly once as outcomes come back, deferred ones keep their place,
// bounce --id reaches the recipients not dispatched yet, and a recovered job resumes where
// it stood without dispatching its finals again.
#include "outbound/origin.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <salvo/base/clock.h>
#include <salvo/spool/recovery.h>
#include <salvo/spool/spool_index.h>
#include <salvo/spool/spool_reader.h>
#include <salvo/spool/spool_writer.h>

#include "unit/spool/spool_test_util.h"

namespace salvo::outbound {
namespace {

using spool::RecipientState;
using spool::test::run_until;

class OriginJobs : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_ = spool::test::make_uring();
    if (!engine_) GTEST_SKIP() << "io_uring unavailable";
    dir_ = tmp_.sub("shard-0");
    open_spool();
  }
  void TearDown() override { close_spool(); }

  void open_spool() {
    spool_ = spool::test::open_spool(*engine_, clock_, dir_);
    ASSERT_TRUE(spool_.rec);
    OriginDeps d;
    d.hostname = "mx.test";
    d.clock = &clock_;
    d.writer = spool_.writer.get();
    d.index = &spool_.rec->index;
    d.route = [this](Enqueue&& e) { sent_.push_back(std::move(e)); };
    d.first_retry = [] { return Duration(std::chrono::minutes(5)); };
    d.read = [this](spool::Location loc, spool::ReadWaiter* w) { spool_.reader->read(loc, w); };
    d.job_window = [this] { return window_; };
    origin_ = std::make_unique<Origin>(std::move(d), stats_);
  }
  void close_spool() {
    if (!engine_) return;
    if (origin_) {
      origin_->begin_stop();
      run_until(*engine_, [&] { return !origin_->reading(); });
      origin_->stop();
    }
    if (spool_.writer) {
      spool_.writer->flush();
      run_until(*engine_, [&] { return spool_.writer->idle(); });
    }
    origin_.reset();
    spool_.reader.reset();
    spool_.writer.reset();
    for (int i = 0; i < 5; ++i) engine_->run_once(std::chrono::milliseconds(1));
  }

  // A job of n recipients r<i>@d<i % 7>.example, in batches of `batch`, committed (as
  // intake writes one) and handed to the origin; returns its id.
  spool::MessageId make_job(std::uint32_t n, std::uint32_t batch) {
    spool::test::Waiter w;
    spool::JobTemplateRecord t;
    t.received_unix_ns = 1'000'000'000;
    t.source = spool::Source::Http;
    t.job = "j";
    t.from = "s@esp.example";
    t.content = "Subject: hi\r\n\r\nhello\r\n";
    auto id = spool_.writer->append_job_template(t, &w);
    EXPECT_TRUE(id);
    int records = 1;
    for (std::uint32_t first = 0; first < n; first += batch) {
      spool::JobRecipientsRecord b;
      b.job_id = *id;
      b.first_index = first;
      std::vector<std::string> addresses;
      for (std::uint32_t i = first; i < std::min(n, first + batch); ++i) {
        addresses.push_back(fmt::format("r{}@d{}.example", i, i % 7));
      }
      for (const std::string& a : addresses) b.recipients.push_back(spool::JobRecipient{a});
      EXPECT_TRUE(spool_.writer->append_job_recipients(b, &w));
      ++records;
    }
    spool_.writer->flush();
    EXPECT_TRUE(run_until(*engine_, [&] { return w.calls == records; }));
    spool::JobCommitRecord c;
    c.job_id = *id;
    c.recipient_count = n;
    EXPECT_TRUE(spool_.writer->append_job_commit(c, &w));
    spool_.writer->flush();
    EXPECT_TRUE(run_until(*engine_, [&] { return w.calls == records + 1; }));
    EXPECT_EQ(w.ok, w.calls);
    origin_->job_queued(*id, t.received_unix_ns);
    return *id;
  }

  // Runs the engine until the origin has no batch read out (it dispatched all it may).
  void settle() {
    ASSERT_TRUE(run_until(*engine_, [&] { return !origin_->reading(); }));
  }
  void answer(const Enqueue& e, RecipientState s, std::uint32_t attempts = 1,
              std::int64_t next = 0) {
    Outcomes o;
    o.message = e.message;
    o.recipients.push_back(RecipientOutcome{e.recipient, s, attempts, next});
    origin_->on_outcomes(std::move(o));
  }
  // Dispatched job recipients whose last answer was not final (what the window counts).
  std::size_t outstanding() const {
    std::size_t n = 0;
    for (const auto& [key, final] : open_) n += final ? 0 : 1;
    return n;
  }

  spool::test::TempDir tmp_;
  std::string dir_;
  SystemClock clock_;
  std::unique_ptr<io::Engine> engine_;
  spool::test::OpenSpool spool_;
  OutboundStats stats_;
  std::unique_ptr<Origin> origin_;
  std::uint32_t window_ = 10;
  std::deque<Enqueue> sent_;
  std::map<std::uint32_t, bool> open_;  // recipient -> final
};

TEST_F(OriginJobs, AJobGoesOutThroughTheWindowAndEveryRecipientExactlyOnce) {
  const spool::MessageId id = make_job(1000, 100);
  std::map<std::uint32_t, int> dispatched;
  std::size_t peak = 0;
  std::uint32_t deferrals = 0;
  // Each turn: what was dispatched is answered, mostly delivered; every 13th deferred once
  // (it keeps its place) and delivered on a later turn.
  std::deque<Enqueue> deferred;
  for (int turn = 0; turn < 5000; ++turn) {
    settle();
    std::deque<Enqueue> now;
    now.swap(sent_);
    for (const Enqueue& e : now) {
      ASSERT_EQ(e.message, id.value());
      ASSERT_TRUE(e.is_job);
      ASSERT_EQ(e.domain, fmt::format("d{}.example", e.recipient % 7));
      ++dispatched[e.recipient];
      open_[e.recipient] = false;
    }
    peak = std::max(peak, outstanding());
    ASSERT_LE(outstanding(), 10u);
    if (now.empty() && deferred.empty()) break;
    if (!deferred.empty()) {
      open_[deferred.front().recipient] = true;
      answer(deferred.front(), RecipientState::Delivered);
      deferred.pop_front();
    }
    for (const Enqueue& e : now) {
      if (e.recipient % 13 == 0) {
        answer(e, RecipientState::Deferred, 1, 1);
        ++deferrals;
        deferred.push_back(e);
        continue;
      }
      open_[e.recipient] = true;
      answer(e, RecipientState::Delivered);
    }
  }
  EXPECT_EQ(peak, 10u);
  EXPECT_GT(deferrals, 50u);
  ASSERT_EQ(dispatched.size(), 1000u);
  for (const auto& [r, times] : dispatched) ASSERT_EQ(times, 1) << "recipient " << r;
  EXPECT_EQ(origin_->jobs_in_flight(), 0u);
  EXPECT_EQ(origin_->live_jobs(), 0u);
  EXPECT_EQ(stats_.dispatched, 1000u);
}

TEST_F(OriginJobs, DeferredRecipientsKeepTheirPlacesAndPlainMailIsNeverHeld) {
  make_job(1000, 100);
  settle();
  ASSERT_EQ(sent_.size(), 10u);
  std::vector<Enqueue> first(sent_.begin(), sent_.end());
  sent_.clear();
  for (const Enqueue& e : first) answer(e, RecipientState::Deferred, 1, 1);
  // Nothing more goes while all ten wait in their destinations.
  for (int i = 0; i < 20; ++i) engine_->run_once(std::chrono::milliseconds(5));
  EXPECT_TRUE(sent_.empty());
  // A plain message goes at once, window or not.
  spool::MessageRecord m;
  m.reverse_path = "s@esp.example";
  m.recipients.push_back(spool::Recipient{"u@plain.example", 0, {}});
  m.body = "Subject: x\r\n\r\nx\r\n";
  spool::test::Waiter w;
  auto mid = spool_.writer->append_message(m, &w);
  ASSERT_TRUE(mid);
  spool_.writer->flush();
  ASSERT_TRUE(run_until(*engine_, [&] { return w.calls == 1; }));
  std::string_view rcpt = "u@plain.example";
  origin_->queued(*mid, 1, 0, std::span<const std::string_view>(&rcpt, 1));
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_FALSE(sent_.front().is_job);
  sent_.clear();
  // Three finals free three places: exactly three more.
  for (int i = 0; i < 3; ++i) answer(first[static_cast<std::size_t>(i)], RecipientState::Bounced);
  settle();
  EXPECT_EQ(sent_.size(), 3u);
  EXPECT_EQ(origin_->jobs_in_flight(), 10u);
}

TEST_F(OriginJobs, JobsShareTheWindowInTurn) {
  window_ = 4;
  const spool::MessageId a = make_job(100, 10);
  const spool::MessageId b = make_job(100, 10);
  settle();
  // Job a may have filled the window before b was committed; from then on they alternate.
  std::map<std::uint64_t, int> per_job;
  for (int round = 0; round < 10; ++round) {
    std::deque<Enqueue> now;
    now.swap(sent_);
    for (const Enqueue& e : now) answer(e, RecipientState::Delivered);
    settle();
    if (round >= 2) {
      for (const Enqueue& e : sent_) ++per_job[e.message];
    }
  }
  // 32 places in those rounds; in turn, each job had about half (a batch read can cost
  // a job a turn). First come, first served would have given them all to a.
  EXPECT_EQ(per_job[a.value()] + per_job[b.value()], 32);
  EXPECT_GE(per_job[a.value()], 12);
  EXPECT_GE(per_job[b.value()], 12);
}

TEST_F(OriginJobs, BounceOfAJobReachesItsRecipientsNotDispatchedYet) {
  const spool::MessageId id = make_job(1000, 100);
  settle();
  ASSERT_EQ(sent_.size(), 10u);
  for (const Enqueue& e : sent_) EXPECT_FALSE(e.cancelled);
  EXPECT_EQ(origin_->cancel_job(id.value()), 990u);
  EXPECT_EQ(origin_->cancel_job(0x777), 0u);  // not a job of this shard
  std::set<std::uint32_t> cancelled;
  for (int turn = 0; turn < 2000 && !sent_.empty(); ++turn) {
    std::deque<Enqueue> now;
    now.swap(sent_);
    for (const Enqueue& e : now) {
      if (e.cancelled) cancelled.insert(e.recipient);
      answer(e, RecipientState::Bounced);  // as the destination answers a cancel
    }
    settle();
  }
  EXPECT_EQ(cancelled.size(), 990u);
  EXPECT_EQ(*cancelled.begin(), 10u);
  EXPECT_EQ(*cancelled.rbegin(), 999u);
  EXPECT_EQ(origin_->live_jobs(), 0u);
}

TEST_F(OriginJobs, ARecoveredJobResumesWhereItStoodWithoutItsFinals) {
  const spool::MessageId id = make_job(100, 10);
  // Recipients 0..44 are delivered, 45 deferred (attempt 2, due at 12345), the rest are
  // dispatched or not: at the restart all of them are pending.
  std::set<std::uint32_t> done;
  for (int turn = 0; turn < 200 && done.size() < 46; ++turn) {
    settle();
    std::deque<Enqueue> now;
    now.swap(sent_);
    for (const Enqueue& e : now) {
      if (e.recipient < 45) {
        answer(e, RecipientState::Delivered);
      } else if (e.recipient == 45) {
        answer(e, RecipientState::Deferred, 2, 12345);
      } else {
        continue;
      }
      done.insert(e.recipient);
    }
  }
  ASSERT_EQ(done.size(), 46u);
  close_spool();
  sent_.clear();
  open_spool();
  RecoveryPlan plan = plan_recovery(*spool_.rec, dir_);
  EXPECT_EQ(plan.unreadable, 0u);
  EXPECT_TRUE(plan.recipients.empty());  // a job is not expanded
  ASSERT_EQ(plan.jobs.size(), 1u);
  EXPECT_EQ(plan.jobs[0].id, id.value());
  ASSERT_EQ(plan.jobs[0].deferred.size(), 1u);
  origin_->recover_jobs(std::move(plan.jobs));
  std::vector<std::uint32_t> got;
  for (int turn = 0; turn < 200; ++turn) {
    settle();
    if (sent_.empty()) break;
    std::deque<Enqueue> now;
    now.swap(sent_);
    for (const Enqueue& e : now) {
      if (e.recipient == 45) {
        EXPECT_EQ(e.attempts, 2u);
        EXPECT_EQ(e.next_attempt_unix_ns, 12345);
      } else {
        EXPECT_EQ(e.attempts, 0u);
      }
      got.push_back(e.recipient);
      answer(e, RecipientState::Delivered);
    }
  }
  std::vector<std::uint32_t> want;
  for (std::uint32_t r = 45; r < 100; ++r) want.push_back(r);
  EXPECT_EQ(got, want);
  EXPECT_EQ(origin_->live_jobs(), 0u);
}

// The read-back after a restart, in slices: every owed recipient of every message comes
// back exactly once, in disk order, with a deferred one's attempts; a slice never holds
// more than its messages; routing skips what the live index holds final or gives to other
// mail.
class RecoveryReadBack : public OriginJobs {
 protected:
  // n messages of three recipients each (r0..r2@d<i % 5>.example), committed.
  std::vector<spool::MessageId> make_messages(int n) {
    std::vector<spool::MessageId> ids;
    spool::test::Waiter w;
    std::vector<spool::test::MessageFixture> f(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      f[i].rcpts.clear();
      for (int r = 0; r < 3; ++r) f[i].rcpts.push_back(fmt::format("r{}@d{}.example", r, i % 5));
      spool::MessageRecord m = f[i].record();
      auto id = spool_.writer->append_message(m, &w);
      EXPECT_TRUE(id);
      if (id) ids.push_back(*id);
    }
    spool_.writer->flush();
    EXPECT_TRUE(run_until(*engine_, [&] { return w.calls == n; }));
    return ids;
  }
  void write_states(const std::vector<spool::StateUpdate>& updates) {
    spool::test::Waiter w;
    ASSERT_TRUE(spool_.writer->append_states(updates, &w));
    spool_.writer->flush();
    ASSERT_TRUE(run_until(*engine_, [&] { return w.calls == 1; }));
  }
};

TEST_F(RecoveryReadBack, EveryOwedRecipientOnceInSlicesWithItsAttempts) {
  const std::vector<spool::MessageId> ids = make_messages(500);
  // Message 0 is done; message 1's recipient 2 is delivered; message 2's recipient 1 is
  // deferred (attempt 3).
  write_states({{ids[0], spool::RecipientIndex(0), RecipientState::Delivered},
                {ids[0], spool::RecipientIndex(1), RecipientState::Delivered},
                {ids[0], spool::RecipientIndex(2), RecipientState::Bounced},
                {ids[1], spool::RecipientIndex(2), RecipientState::Delivered},
                {ids[2], spool::RecipientIndex(1), RecipientState::Deferred, 3, 777}});
  close_spool();
  open_spool();
  RecoveryPlanner planner(*spool_.rec, dir_);
  EXPECT_TRUE(planner.take_jobs().empty());
  EXPECT_EQ(planner.messages_left(), 499u);  // message 0 owes nothing: not read back
  std::map<std::pair<std::uint64_t, std::uint32_t>, int> seen;
  std::uint64_t last_offset = 0;
  int slices = 0;
  std::vector<RecoveredRecipient> slice;
  while (planner.next(64, slice)) {
    ++slices;
    EXPECT_LE(slice.size(), 64u * 3);
    for (const RecoveredRecipient& r : slice) {
      EXPECT_GE(r.record.unpack().offset, last_offset);  // disk order (one segment here)
      last_offset = r.record.unpack().offset;
      ++seen[{r.message, r.recipient}];
      const std::size_t i = static_cast<std::size_t>(
          std::find(ids.begin(), ids.end(), spool::MessageId(r.message)) - ids.begin());
      ASSERT_LT(i, ids.size());
      EXPECT_EQ(r.domain, fmt::format("d{}.example", i % 5));
      const bool deferred = i == 2 && r.recipient == 1;
      EXPECT_EQ(r.attempts, deferred ? 3u : 0u);
      EXPECT_EQ(r.next_attempt_unix_ns, deferred ? 777 : 0);
    }
    slice.clear();
  }
  EXPECT_EQ(slices, 8);  // 499 messages, 64 a slice
  EXPECT_EQ(planner.messages_left(), 0u);
  EXPECT_EQ(planner.unreadable(), 0u);
  EXPECT_EQ(seen.size(), 499u * 3);  // every recipient of an owing message, final or not
  for (const auto& [key, n] : seen) EXPECT_EQ(n, 1);

  // Routing asks the live index: message 1's delivered recipient is not routed, and
  // neither is a recipient whose record is not the one the index holds for its id.
  RecoveryPlanner again(*spool_.rec, dir_);
  std::vector<RecoveredRecipient> all;
  while (again.next(1000, all)) {
  }
  int routed = 0;
  for (const RecoveredRecipient& r : all) routed += origin_->recover(r) ? 1 : 0;
  EXPECT_EQ(routed, 499 * 3 - 1);
  EXPECT_EQ(sent_.size(), static_cast<std::size_t>(routed));
  RecoveredRecipient foreign = all.front();
  foreign.record = all.back().record;  // another message's record
  EXPECT_FALSE(origin_->recover(foreign));
  // plan_recovery, the whole plan at once, leaves the final one out itself.
  EXPECT_EQ(plan_recovery(*spool_.rec, dir_).recipients.size(), 499u * 3 - 1);
}

TEST_F(RecoveryReadBack, AMissingSegmentIsCountedUnreadable) {
  make_messages(10);
  close_spool();
  open_spool();
  RecoveryPlanner planner(*spool_.rec, dir_);
  ASSERT_EQ(planner.messages_left(), 10u);
  close_spool();
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    if (e.path().extension() == ".spool") std::filesystem::remove(e.path());
  }
  std::vector<RecoveredRecipient> out;
  EXPECT_TRUE(planner.next(100, out));
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(planner.unreadable(), 10u);
  EXPECT_FALSE(planner.next(100, out));
  open_spool();
}

}  // namespace
}  // namespace salvo::outbound
