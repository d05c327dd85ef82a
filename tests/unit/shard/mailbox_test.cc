// SPDX-License-Identifier: Apache-2.0
// MessageMatrix: ping-pong between 2 and 4 shards with exact counts, the overflow path
// with a tiny ring, and FIFO order per pair. Bounded in count and time.
#include <salvo/shard/mailbox.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

namespace salvo::shard {
namespace {

using namespace std::chrono_literals;

struct Ping {
  std::uint64_t seq;
};
struct Pong {
  std::uint64_t seq;
};
using TestMsg = std::variant<Ping, Pong>;

ShardSetOptions opts(unsigned n) {
  ShardSetOptions o;
  o.count = n;
  o.queue_depth = 64;
  o.pin = false;
  return o;
}

bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Each shard i keeps one ping in flight to (i+1)%n; the peer answers with a pong; after
// kRounds pongs the shard stops pinging. Every count is checked exactly.
void ping_pong(unsigned n, std::uint64_t rounds) {
  ShardSet set(opts(n));
  std::vector<std::atomic<std::uint64_t>> pongs(n), pings(n);
  std::atomic<unsigned> finished{0};
  MessageMatrix<TestMsg>* mm = nullptr;
  MessageMatrix<TestMsg> matrix(set, [&](ShardId from, TestMsg&& m) {
    ShardId me = this_shard()->id();
    if (auto* p = std::get_if<Ping>(&m)) {
      ++pings[me.value()];
      mm->send(me, from, Pong{p->seq});
    } else {
      auto& pong = std::get<Pong>(m);
      std::uint64_t got = ++pongs[me.value()];
      EXPECT_EQ(pong.seq, got);
      if (got < rounds) {
        mm->send(me, ShardId((me.value() + 1) % n), Ping{got + 1});
      } else {
        ++finished;
      }
    }
  });
  mm = &matrix;
  set.start([&](Shard& s) {
    matrix.send(s.id(), ShardId((s.id().value() + 1) % n), Ping{1});
  });
  bool done = wait_for([&] { return finished.load() == n; }, 30000ms);
  set.request_stop();
  set.join();
  ASSERT_TRUE(done) << "ping-pong did not finish in time";
  Stats total;
  for (unsigned i = 0; i < n; ++i) {
    EXPECT_EQ(pongs[i].load(), rounds);
    EXPECT_EQ(pings[i].load(), rounds);
    total += set.shard(ShardId(i)).stats();
  }
  EXPECT_EQ(total.mailbox_sent, 2 * rounds * n);
  EXPECT_EQ(total.mailbox_received, 2 * rounds * n);
  EXPECT_EQ(total.mailbox_overflows, 0u);
}

TEST(MessageMatrix, PingPongTwoShards) { ping_pong(2, 20000); }

TEST(MessageMatrix, PingPongFourShards) { ping_pong(4, 5000); }

TEST(MessageMatrix, OverflowKeepsEverythingInOrder) {
  constexpr std::uint64_t kCount = 5000;
  ShardSet set(opts(2));
  std::atomic<std::uint64_t> received{0};
  std::atomic<bool> in_order{true};
  MessageMatrix<TestMsg> matrix(
      set,
      [&](ShardId from, TestMsg&& m) {
        EXPECT_EQ(from.value(), 0u);
        std::uint64_t seq = std::get<Ping>(m).seq;
        if (seq != received.load()) in_order = false;
        ++received;
      },
      4);
  std::atomic<std::size_t> parked_after_burst{0};
  set.start([&](Shard& s) {
    if (s.id().value() != 0) return;
    for (std::uint64_t i = 0; i < kCount; ++i) matrix.send(ShardId(0), ShardId(1), Ping{i});
    parked_after_burst = matrix.overflow_pending(ShardId(0));
  });
  bool done = wait_for([&] { return received.load() == kCount; }, 30000ms);
  set.request_stop();
  set.join();
  ASSERT_TRUE(done) << received.load();
  EXPECT_TRUE(in_order.load());
  EXPECT_GE(parked_after_burst.load(), kCount - 4);
  EXPECT_EQ(matrix.overflow_pending(ShardId(0)), 0u);
  EXPECT_GE(set.shard(ShardId(0)).stats().mailbox_overflows, kCount - 4);
  EXPECT_EQ(set.shard(ShardId(1)).stats().mailbox_received, kCount);
}

TEST(MessageMatrix, SendToSelf) {
  ShardSet set(opts(2));
  std::atomic<int> got{0};
  MessageMatrix<TestMsg> matrix(set, [&](ShardId from, TestMsg&&) {
    EXPECT_EQ(from, this_shard()->id());
    ++got;
  });
  set.start([&](Shard& s) { matrix.send(s.id(), Ping{0}); });
  bool done = wait_for([&] { return got.load() == 2; }, 5000ms);
  set.request_stop();
  set.join();
  EXPECT_TRUE(done);
}

// A sleeping shard is woken by a message sent from a timer callback on another shard.
TEST(MessageMatrix, WakesASleepingShard) {
  ShardSet set(opts(2));
  std::atomic<int> got{0};
  MessageMatrix<TestMsg> matrix(set, [&](ShardId, TestMsg&&) { ++got; });
  struct Later final : io::Completion {
    MessageMatrix<TestMsg>* m = nullptr;
    int left = 5;
    void on_complete(std::int32_t, std::uint32_t) noexcept override {
      m->send(ShardId(1), Ping{0});
      if (--left > 0) this_shard()->engine().timeout(20ms, this);
    }
  } later;
  later.m = &matrix;
  set.start([&](Shard& s) {
    if (s.id().value() == 0) s.engine().timeout(20ms, &later);
  });
  bool done = wait_for([&] { return got.load() == 5; }, 5000ms);
  set.request_stop();
  set.join();
  EXPECT_TRUE(done) << got.load();
  EXPECT_GE(set.shard(ShardId(0)).stats().mailbox_wakes_sent, 1u);
  EXPECT_GE(set.shard(ShardId(1)).stats().wakeups, 1u);
}

}  // namespace
}  // namespace salvo::shard
