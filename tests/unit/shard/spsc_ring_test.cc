// SPDX-License-Identifier: Apache-2.0
// SpscRing: capacity, full/empty, wraparound, batch drain, destruction of queued values,
// and a two-thread producer/consumer run checked element by element.
#include <salvo/shard/spsc_ring.h>

#include <chrono>
#include <memory>
#include <thread>

#include <gtest/gtest.h>

namespace salvo::shard {
namespace {

TEST(SpscRing, RoundsCapacityAndReportsFull) {
  SpscRing<int> r(5);
  EXPECT_EQ(r.capacity(), 8u);
  EXPECT_TRUE(r.empty());
  for (int i = 0; i < 8; ++i) {
    int v = i;
    EXPECT_TRUE(r.try_push(v));
  }
  int extra = 99;
  EXPECT_FALSE(r.try_push(extra));
  EXPECT_EQ(extra, 99);  // untouched on failure
  EXPECT_EQ(r.try_pop().value(), 0);
  EXPECT_TRUE(r.try_push(extra));
}

TEST(SpscRing, WrapsAroundManyTimes) {
  SpscRing<int> r(4);
  int next_in = 0, next_out = 0;
  for (int round = 0; round < 1000; ++round) {
    for (int k = 0; k < 3; ++k) {
      int v = next_in;
      ASSERT_TRUE(r.try_push(v));
      ++next_in;
    }
    std::size_t n = r.drain([&](int&& v) { EXPECT_EQ(v, next_out++); }, 2);
    EXPECT_EQ(n, 2u);
    n = r.drain([&](int&& v) { EXPECT_EQ(v, next_out++); }, 100);
    EXPECT_EQ(n, 1u);
  }
  EXPECT_EQ(next_out, 3000);
  EXPECT_TRUE(r.empty());
}

TEST(SpscRing, MoveOnlyValuesAndDestructionOfLeftovers) {
  auto counter = std::make_shared<int>(0);
  {
    SpscRing<std::shared_ptr<int>> r(4);
    for (int i = 0; i < 3; ++i) {
      auto v = counter;
      ASSERT_TRUE(r.try_push(v));
      EXPECT_EQ(v, nullptr);  // moved from
    }
    EXPECT_EQ(counter.use_count(), 4);
    auto one = r.try_pop();
    ASSERT_TRUE(one.has_value());
    one.reset();
    EXPECT_EQ(counter.use_count(), 3);
  }
  EXPECT_EQ(counter.use_count(), 1);

  SpscRing<std::unique_ptr<int>> u(2);
  auto p = std::make_unique<int>(7);
  ASSERT_TRUE(u.try_push(p));
  EXPECT_EQ(**u.try_pop(), 7);
}

TEST(SpscRing, TwoThreadsInOrder) {
  constexpr std::uint64_t kCount = 2'000'000;
  SpscRing<std::uint64_t> r(64);
  std::thread producer([&] {
    for (std::uint64_t i = 0; i < kCount;) {
      std::uint64_t v = i;
      if (r.try_push(v)) {
        ++i;
      } else {
        std::this_thread::yield();
      }
    }
  });
  std::uint64_t expect = 0;
  bool in_order = true;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (expect < kCount && std::chrono::steady_clock::now() < deadline) {
    std::size_t n = r.drain(
        [&](std::uint64_t&& v) {
          in_order = in_order && v == expect;
          ++expect;
        },
        32);
    if (n == 0) std::this_thread::yield();
  }
  producer.join();
  EXPECT_TRUE(in_order);
  EXPECT_EQ(expect, kCount);
}

}  // namespace
}  // namespace salvo::shard
