// SPDX-License-Identifier: Apache-2.0
// Spilling: the SpillStore on a temporary directory (chunks written and read back, files
// removed as they empty, damage refused), and a Backlog over it (ready overflow beyond
// queue_in_memory, deferred recipients beyond the horizon, flush, bounce --id, a rollup's
// drain, the RAM it keeps).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include <gtest/gtest.h>

#include "outbound/backlog.h"
#include "outbound/spill_store.h"
#include "support/process.h"

namespace salvo::outbound {
namespace {

using namespace std::chrono_literals;

const WallTime kNow(std::chrono::seconds(1'700'000'000));

std::int64_t ns(WallTime t) { return to_ns(t); }

Enqueue rcpt(std::uint64_t message, std::uint32_t index, WallTime due = WallTime{}) {
  Enqueue e;
  e.origin = 1;
  e.message = message;
  e.recipient = index;
  e.index_in_record = index;
  e.record = spool::Location{spool::SegmentSeq(3), 4096 * message, 2048};
  e.received_unix_ns = ns(kNow - 1h);
  e.domain = "example.com";
  if (due != WallTime{}) {
    e.attempts = 2;
    e.next_attempt_unix_ns = ns(due);
  }
  return e;
}

SpillEntry entry(std::uint64_t message) {
  SpillEntry e;
  e.message = message;
  e.recipient = static_cast<std::uint32_t>(message % 7);
  e.next_attempt_unix_ns = ns(kNow + std::chrono::minutes(message));
  e.record = spool::PackedLocation(spool::Location{spool::SegmentSeq(9), message * 10, 77});
  return e;
}

std::size_t files_in(const std::string& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& f : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

struct Spilling : ::testing::Test {
  test::TempDir tmp;
  std::unique_ptr<SpillStore> store = *SpillStore::open(tmp.file("spill"));
  SpillPolicy policy{store.get(), 100, 5min};  // chunks of 25, refilled under 50

  // Takes everything ready, refilling from disk as a pump would; the messages in order.
  std::vector<std::uint64_t> take_all(Backlog& b, WallTime now) {
    std::vector<std::uint64_t> out;
    for (int guard = 0; guard < 100'000; ++guard) {
      b.promote(now);
      Batch t = b.take(100);
      if (t.rcpts.empty()) break;
      for (const auto& q : t.rcpts) out.push_back(q.message);
      b.release(t.rcpts.front().message);
    }
    return out;
  }
};

TEST_F(Spilling, AChunkComesBackAsWrittenAndItsFileGoesWhenAllAreRead) {
  std::vector<SpillEntry> a, b;
  for (std::uint64_t i = 1; i <= 30; ++i) a.push_back(entry(i));
  for (std::uint64_t i = 31; i <= 40; ++i) b.push_back(entry(i));
  auto ca = store->write(a);
  auto cb = store->write(b);
  ASSERT_TRUE(ca && cb);
  EXPECT_EQ(ca->earliest, kNow + 1min);
  EXPECT_EQ(cb->earliest, kNow + 31min);
  EXPECT_EQ(store->recipients(), 40u);
  EXPECT_EQ(store->bytes(), 2 * 16 + 40 * sizeof(SpillEntry));
  auto rb = store->read(*cb);
  ASSERT_TRUE(rb);
  ASSERT_EQ(rb->size(), 10u);
  EXPECT_EQ((*rb)[9].message, 40u);
  EXPECT_EQ((*rb)[9].record, b[9].record);
  EXPECT_EQ(store->recipients(), 30u);
  auto ra = store->read(*ca);
  ASSERT_TRUE(ra);
  EXPECT_EQ((*ra)[0].next_attempt_unix_ns, a[0].next_attempt_unix_ns);
  EXPECT_EQ(store->recipients(), 0u);
  EXPECT_EQ(store->bytes(), 0u) << "the file being appended to is truncated when empty";
  EXPECT_EQ(store->chunks_written(), 2u);
  EXPECT_EQ(store->chunks_read(), 2u);
}

TEST_F(Spilling, ADamagedChunkIsRefusedNotQueued) {
  std::vector<SpillEntry> a{entry(1), entry(2)};
  auto c = store->write(a);
  ASSERT_TRUE(c);
  const int fd = ::open((store->dir() + "/spill-000000").c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  const char junk = 'x';
  ASSERT_EQ(::pwrite(fd, &junk, 1, 16 + 3), 1);
  ::close(fd);
  EXPECT_FALSE(store->read(*c));
  EXPECT_EQ(store->errors(), 1u);
  EXPECT_EQ(store->recipients(), 0u);
}

TEST_F(Spilling, OpeningWipesWhatAnEarlierRunLeftAndClosingRemovesTheFiles) {
  std::vector<SpillEntry> a{entry(1)};
  ASSERT_TRUE(store->write(a));
  EXPECT_EQ(files_in(store->dir()), 1u);
  auto again = SpillStore::open(store->dir());
  ASSERT_TRUE(again);
  EXPECT_EQ(files_in((*again)->dir()), 0u);
  ASSERT_TRUE((*again)->write(a));
  const std::string dir = (*again)->dir();
  again->reset();
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST_F(Spilling, ReadyBeyondTheCapGoesToDiskAndComesBackInOrder) {
  Backlog b(&policy);
  for (std::uint64_t m = 1; m <= 1000; ++m) b.add(rcpt(m, 0), kNow);
  EXPECT_EQ(b.ready(), 100u);
  EXPECT_EQ(b.queued_ready(), 1000u);
  EXPECT_EQ(b.spilled(), 900u);
  EXPECT_EQ(store->recipients(), 900u);
  EXPECT_EQ(b.messages(), 100u) << "a message all on disk holds nothing in RAM";
  EXPECT_FALSE(b.promote_wanted(kNow));
  std::vector<std::uint64_t> got = take_all(b, kNow);
  ASSERT_EQ(got.size(), 1000u);
  for (std::uint64_t m = 1; m <= 1000; ++m) ASSERT_EQ(got[m - 1], m) << "arrival order";
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.messages(), 0u);
  EXPECT_EQ(store->recipients(), 0u);
  EXPECT_EQ(store->chunks_read(), 36u);
}

TEST_F(Spilling, NewArrivalsQueueBehindWhatIsOnDisk) {
  Backlog b(&policy);
  for (std::uint64_t m = 1; m <= 300; ++m) b.add(rcpt(m, 0), kNow);
  std::vector<std::uint64_t> got;
  for (int i = 0; i < 60; ++i) {  // the RAM share drops under its low-water mark
    Batch t = b.take(100);
    got.push_back(t.rcpts.front().message);
    b.release(t.rcpts.front().message);
  }
  b.add(rcpt(301, 0), kNow);  // RAM has room, but older ones wait on disk
  std::vector<std::uint64_t> rest = take_all(b, kNow);
  got.insert(got.end(), rest.begin(), rest.end());
  ASSERT_EQ(got.size(), 301u);
  for (std::uint64_t m = 1; m <= 301; ++m) ASSERT_EQ(got[m - 1], m);
}

TEST_F(Spilling, DeferredFarOutWaitOnDiskAndComeBackAtTheirTime) {
  Backlog b(&policy);
  for (std::uint64_t m = 1; m <= 200; ++m) {
    b.add(rcpt(m, 0, kNow + 1h + std::chrono::seconds(m)), kNow);
  }
  b.add(rcpt(500, 0, kNow + 2min), kNow);  // within the horizon: in RAM
  EXPECT_EQ(b.deferred(), 1u);
  EXPECT_EQ(b.queued_deferred(), 201u);
  EXPECT_EQ(b.spilled(), 200u);
  EXPECT_EQ(b.messages(), 1u);
  EXPECT_EQ(b.next_due(), kNow + 2min);
  b.promote(kNow + 2min);
  EXPECT_EQ(take_all(b, kNow + 2min), std::vector<std::uint64_t>{500});
  EXPECT_EQ(b.next_due(), kNow + 1h + 1s - 5min) << "read back as it comes within the horizon";
  EXPECT_FALSE(b.promote_wanted(kNow + 50min));
  const WallTime soon = kNow + 1h;
  ASSERT_TRUE(b.promote_wanted(soon));
  for (int i = 0; i < 100 && b.promote_wanted(soon); ++i) b.promote(soon);
  EXPECT_EQ(b.spilled(), 0u);
  EXPECT_EQ(b.deferred(), 200u);
  EXPECT_EQ(b.ready(), 0u) << "back in RAM, not due yet";
  std::vector<std::uint64_t> got = take_all(b, kNow + 2h);
  ASSERT_EQ(got.size(), 200u);
  EXPECT_EQ(std::set<std::uint64_t>(got.begin(), got.end()).size(), 200u);
  EXPECT_EQ(store->recipients(), 0u);
}

TEST_F(Spilling, AChunkSpanningTheHorizonKeepsItsLaterEntriesOnDisk) {
  Backlog b(&policy);
  for (std::uint64_t m = 1; m <= 25; ++m) {  // one chunk: 1 due in 10 min, 24 in a day
    b.add(rcpt(m, 0, m == 1 ? kNow + 10min : kNow + 24h), kNow);
  }
  ASSERT_EQ(b.chunks(), 1u);
  for (int i = 0; i < 10 && b.promote_wanted(kNow + 6min); ++i) b.promote(kNow + 6min);
  EXPECT_EQ(b.deferred(), 1u);
  EXPECT_EQ(b.queued_deferred(), 25u);
  EXPECT_EQ(b.messages(), 1u);
  EXPECT_EQ(b.next_due(), kNow + 10min);
}

TEST_F(Spilling, FlushMakesSpilledDeferredRecipientsDueNow) {
  Backlog b(&policy);
  for (std::uint64_t m = 1; m <= 180; ++m) b.add(rcpt(m, 0, kNow + 3h), kNow);
  ASSERT_EQ(b.spilled(), 175u);
  EXPECT_EQ(b.flush_deferred(), 180u);
  EXPECT_EQ(b.queued_deferred(), 0u);
  EXPECT_EQ(b.queued_ready(), 180u);
  std::vector<std::uint64_t> got = take_all(b, kNow);
  EXPECT_EQ(got.size(), 180u);
  EXPECT_EQ(std::set<std::uint64_t>(got.begin(), got.end()).size(), 180u);
}

TEST_F(Spilling, ACancelledMessagesRecipientOnDiskIsNeverHandedOut) {
  Backlog b(&policy);
  for (std::uint64_t m = 1; m <= 400; ++m) {
    b.add(rcpt(m, 0), kNow);
    if (m == 250) b.add(rcpt(m, 1), kNow);  // both on disk
  }
  b.add(rcpt(250, 2, kNow + 9h), kNow);  // in the later buffer
  b.add(rcpt(77, 1, kNow + 9h), kNow);
  std::vector<queue::QueuedRecipient> now = b.extract(250);
  ASSERT_EQ(now.size(), 1u) << "the one in a RAM buffer comes out at once";
  EXPECT_EQ(now[0].recipient, 2u);
  b.release(250);
  std::vector<std::uint64_t> got = take_all(b, kNow);
  EXPECT_EQ(got.size(), 399u);
  EXPECT_EQ(std::count(got.begin(), got.end(), 250u), 0);
  std::vector<queue::QueuedRecipient> later = b.take_cancelled();
  ASSERT_EQ(later.size(), 2u) << "read back from disk, for the destination to fail";
  EXPECT_EQ(later[0].message, 250u);
  EXPECT_EQ(later[1].message, 250u);
  EXPECT_TRUE(b.info(250, 0).has_value()) << "held until they are failed";
  EXPECT_EQ(b.queued_deferred(), 1u) << "another message's deferred recipient stays";
}

TEST_F(Spilling, AFarDeferralAfterAnAttemptGoesToDiskAndFreesItsMessage) {
  Backlog b(&policy);
  b.add(rcpt(1, 0), kNow);
  Batch t = b.take(100);
  ASSERT_EQ(b.messages(), 1u);
  queue::QueuedRecipient q = t.rcpts[0];
  q.attempts = 1;
  q.next_attempt = kNow + 1h;
  b.defer(q, kNow);
  EXPECT_EQ(b.messages(), 0u);
  EXPECT_EQ(b.queued_deferred(), 1u);
  b.promote(kNow + 1h);
  Batch again = b.take(100);
  ASSERT_EQ(again.rcpts.size(), 1u);
  EXPECT_EQ(again.rcpts[0].attempts, 1u);
  EXPECT_EQ(again.info.record, (spool::Location{spool::SegmentSeq(3), 4096, 2048}));
  EXPECT_EQ(again.info.received_unix_ns, ns(kNow - 1h));
}

TEST_F(Spilling, ARollupTakesWhatIsInRamAndTheChunksAsTheyComeBack) {
  Backlog b(&policy);
  for (std::uint64_t m = 1; m <= 300; ++m) b.add(rcpt(m, 0), kNow);
  b.add(rcpt(900, 0, kNow + 1h), kNow);
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 100 && !b.empty(); ++i) {
    b.promote(kNow + 2h);
    for (const Enqueue& e : b.drain_to("example.com", "mx:example.net", kNow + 2h)) {
      EXPECT_TRUE(seen.insert(e.message).second) << e.message;
      EXPECT_EQ(e.key, "mx:example.net");
      EXPECT_EQ(e.record.offset, 4096 * e.message);
    }
  }
  EXPECT_EQ(seen.size(), 301u);
  EXPECT_EQ(b.messages(), 0u);
  EXPECT_EQ(store->recipients(), 0u);
}

TEST_F(Spilling, WithoutAStoreEverythingStaysInRam) {
  SpillPolicy none;
  Backlog b(&none);
  for (std::uint64_t m = 1; m <= 300; ++m) b.add(rcpt(m, 0, kNow + 2h), kNow);
  EXPECT_EQ(b.deferred(), 300u);
  EXPECT_EQ(b.spilled(), 0u);
}

}  // namespace
}  // namespace salvo::outbound
