// SPDX-License-Identifier: Apache-2.0
// BodyBudget and its Lease: the node-wide count of buffered request bodies never passes its
// limit, whatever threads reserve at once, and every lease gives its bytes back exactly
// once (reset, destruction, or through the lease it was moved into).
#include <salvo/admin/http_shared.h>

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <utility>
#include <vector>

namespace salvo::admin {
namespace {

TEST(BodyBudget, ReservesUpToTheLimitAndNoFurther) {
  BodyBudget b(1000);
  EXPECT_TRUE(b.try_reserve(600));
  EXPECT_FALSE(b.try_reserve(401));
  EXPECT_EQ(b.used(), 600u);
  EXPECT_TRUE(b.try_reserve(400));
  EXPECT_FALSE(b.try_reserve(1));
  b.release(1000);
  EXPECT_EQ(b.used(), 0u);
  // A request larger than what could ever be left does not wrap around.
  EXPECT_TRUE(b.try_reserve(1));
  EXPECT_FALSE(b.try_reserve(~0ull));
}

TEST(BodyBudget, LeaseGivesItsBytesBackOnceWhereverItMoved) {
  BodyBudget b(1000);
  {
    BodyBudget::Lease a(b);
    EXPECT_TRUE(a.grow(300));
    EXPECT_TRUE(a.grow(200));
    EXPECT_FALSE(a.grow(501));  // nothing more taken on failure
    EXPECT_EQ(a.bytes(), 500u);
    EXPECT_EQ(b.used(), 500u);
    BodyBudget::Lease moved(std::move(a));  // the body's new owner takes the bytes
    EXPECT_EQ(a.bytes(), 0u);
    EXPECT_EQ(b.used(), 500u);
    EXPECT_TRUE(a.grow(100));  // the moved-from lease is still bound, for the next request
    EXPECT_EQ(b.used(), 600u);
    a.reset();
    EXPECT_EQ(b.used(), 500u);
    BodyBudget::Lease other(b);
    EXPECT_TRUE(other.grow(50));
    other = std::move(moved);  // other's own 50 go back first
    EXPECT_EQ(b.used(), 500u);
  }
  EXPECT_EQ(b.used(), 0u);
  BodyBudget::Lease unbound;
  EXPECT_FALSE(unbound.grow(1));
}

TEST(BodyBudget, ThreadsTogetherNeverPassTheLimit) {
  constexpr std::uint64_t kLimit = 10'000;
  BodyBudget b(kLimit);
  std::atomic<bool> over{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20'000; ++i) {
        BodyBudget::Lease l(b);
        if (l.grow(static_cast<std::uint64_t>(1 + (i * 7 + t) % 3000)) && b.used() > kLimit) {
          over = true;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_FALSE(over.load());
  EXPECT_EQ(b.used(), 0u);
}

}  // namespace
}  // namespace salvo::admin
