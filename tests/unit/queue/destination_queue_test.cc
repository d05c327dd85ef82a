// SPDX-License-Identifier: Apache-2.0
// DestinationQueue: FIFO order, same-message batching up to the limit, deferred promotion
// in due order, flush, extract (bounce --id), and counts that always add up.
#include <salvo/queue/destination_queue.h>

#include <random>

#include <gtest/gtest.h>

namespace salvo::queue {
namespace {

using namespace std::chrono_literals;

WallTime at(int minutes) { return WallTime(std::chrono::minutes(minutes)); }

TEST(DestinationQueue, TransactionsGroupRecipientsOfOneMessage) {
  DestinationQueue q;
  for (std::uint32_t i = 0; i < 5; ++i) q.push_ready({7, i});
  q.push_ready({8, 0});
  for (std::uint32_t i = 5; i < 8; ++i) q.push_ready({7, i});
  EXPECT_EQ(q.ready(), 9u);
  auto t1 = q.take_transaction(4);
  ASSERT_EQ(t1.size(), 4u);
  for (std::uint32_t i = 0; i < 4; ++i) EXPECT_EQ(t1[i], (QueuedRecipient{7, i}));
  auto t2 = q.take_transaction(100);  // the rest of message 7 skips over message 8
  ASSERT_EQ(t2.size(), 4u);
  EXPECT_EQ(t2[0], (QueuedRecipient{7, 4}));
  EXPECT_EQ(t2[3], (QueuedRecipient{7, 7}));
  auto t3 = q.take_transaction(100);
  ASSERT_EQ(t3.size(), 1u);
  EXPECT_EQ(t3[0], (QueuedRecipient{8, 0}));
  EXPECT_TRUE(q.take_transaction(100).empty());
  EXPECT_TRUE(q.empty());
}

TEST(DestinationQueue, DeferredComeBackInDueOrder) {
  DestinationQueue q;
  q.push_deferred({1, 0, 1, at(30)});
  q.push_deferred({2, 0, 1, at(10)});
  q.push_deferred({3, 0, 2, at(20)});
  EXPECT_EQ(q.next_due(), at(10));
  EXPECT_EQ(q.promote(at(5)), 0u);
  EXPECT_EQ(q.promote(at(20)), 2u);
  EXPECT_EQ(q.take_transaction(10)[0].message, 2u);
  EXPECT_EQ(q.take_transaction(10)[0].message, 3u);
  EXPECT_EQ(q.next_due(), at(30));
  EXPECT_EQ(q.flush_deferred(), 1u);
  EXPECT_EQ(q.next_due(), WallTime::max());
  auto t = q.take_transaction(10);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].attempts, 1u);
}

// The ready FIFO keeps entries in 16 bytes: attempts survive (saturating), a due time
// does not; take_all() hands deferred recipients over with theirs (a rollup's drain).
TEST(DestinationQueue, TakeAllKeepsDueTimesAndAttempts) {
  DestinationQueue q;
  const WallTime due = at(90) + 123ns;
  q.push_deferred({(1ull << 63) + 5, 0xfffffffeu, 3, due});
  q.push_ready({9, 1, 0xffffffffu, at(1)});
  q.push_ready({9, 2, 1, at(1)});
  ASSERT_EQ(q.peek_ready()->message, 9u);
  ASSERT_EQ(q.take_transaction(1).size(), 1u);  // recipient 1
  auto all = q.take_all();
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.peek_ready().has_value());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0], (QueuedRecipient{9, 2}));
  EXPECT_EQ(all[0].attempts, 1u);
  EXPECT_EQ(all[1].message, (1ull << 63) + 5);
  EXPECT_EQ(all[1].recipient, 0xfffffffeu);
  EXPECT_EQ(all[1].attempts, 3u);
  EXPECT_EQ(all[1].next_attempt, due);
  q.push_ready({9, 1, 0xffffffffu, at(1)});
  EXPECT_EQ(q.take_transaction(1).front().attempts, (1u << 31) - 1)
      << "saturated, not wrapped to zero";
}

TEST(DestinationQueue, ExtractTakesOneMessagesReadyAndDeferredRecipients) {
  DestinationQueue q;
  q.push_ready({7, 0});
  q.push_ready({8, 0});
  q.push_ready({7, 1});
  q.push_deferred({7, 2, 1, at(10)});
  q.push_deferred({9, 0, 1, at(5)});
  auto out = q.extract(7);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0], (QueuedRecipient{7, 0}));
  EXPECT_EQ(out[1], (QueuedRecipient{7, 1}));
  EXPECT_EQ(out[2], (QueuedRecipient{7, 2}));
  EXPECT_EQ(q.ready(), 1u);
  EXPECT_EQ(q.deferred(), 1u);
  EXPECT_EQ(q.next_due(), at(5));
  EXPECT_TRUE(q.extract(7).empty());
  EXPECT_EQ(q.take_transaction(10)[0], (QueuedRecipient{8, 0}));
  EXPECT_EQ(q.promote(at(5)), 1u);
  EXPECT_EQ(q.take_transaction(10)[0], (QueuedRecipient{9, 0}));
  EXPECT_TRUE(q.empty());
}

// Random operations against a simple model: nothing lost, nothing duplicated.
TEST(DestinationQueue, RandomOperationsKeepEveryRecipientExactlyOnce) {
  std::mt19937 rng(42);
  DestinationQueue q;
  std::size_t pushed = 0, taken = 0;
  std::vector<int> seen(20000, 0);
  std::uint32_t next = 0;
  for (int step = 0; step < 20000; ++step) {
    int op = static_cast<int>(rng() % 4);
    if (op <= 1 && next < 20000) {
      std::uint64_t msg = next / 3;  // three recipients per message
      QueuedRecipient r{msg, next % 3, 0, at(static_cast<int>(rng() % 100))};
      if (op == 0) q.push_ready(r);
      else q.push_deferred(r);
      ++next;
      ++pushed;
    } else if (op == 2) {
      q.promote(at(static_cast<int>(rng() % 100)));
    } else {
      for (const auto& r : q.take_transaction(1 + rng() % 3)) {
        ++seen[r.message * 3 + r.recipient];
        ++taken;
      }
    }
    ASSERT_EQ(q.size(), pushed - taken);
  }
  q.flush_deferred();
  while (!q.empty()) {
    for (const auto& r : q.take_transaction(5)) {
      ++seen[r.message * 3 + r.recipient];
      ++taken;
    }
  }
  EXPECT_EQ(taken, pushed);
  for (std::size_t i = 0; i < next; ++i) ASSERT_EQ(seen[i], 1) << i;
}

}  // namespace
}  // namespace salvo::queue
