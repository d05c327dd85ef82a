// SPDX-License-Identifier: Apache-2.0
// ShardSet: this_shard() on every thread, deferred tasks, graceful stop with on_stop
// hooks and holds, request_stop from another thread, and the OwnedBy guard.
#include <salvo/shard/owned_by.h>
#include <salvo/shard/shard.h>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include <salvo/io/engine.h>

namespace salvo::shard {
namespace {

using namespace std::chrono_literals;

ShardSetOptions small(unsigned n) {
  ShardSetOptions o;
  o.count = n;
  o.queue_depth = 64;
  o.pin = false;
  o.idle_poll = Duration::zero();  // block as soon as idle: iteration counts stay small
  return o;
}

class Timer final : public io::Completion {
 public:
  explicit Timer(std::function<void()> fn) : fn_(std::move(fn)) {}
  void on_complete(std::int32_t, std::uint32_t) noexcept override { fn_(); }

 private:
  std::function<void()> fn_;
};

TEST(ShardSet, ThisShardOnEveryThread) {
  EXPECT_EQ(this_shard(), nullptr);
  ShardSet set(small(3));
  ASSERT_EQ(set.size(), 3u);
  std::mutex mu;
  std::set<std::uint32_t> seen;
  std::atomic<int> ok{0};
  set.start([&](Shard& s) {
    EXPECT_EQ(this_shard(), &s);
    EXPECT_EQ(s.count(), 3u);
    std::lock_guard lock(mu);
    seen.insert(s.id().value());
    ++ok;
  });
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (ok.load() < 3 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  set.request_stop();
  set.join();
  EXPECT_EQ(seen, (std::set<std::uint32_t>{0, 1, 2}));
}

TEST(ShardSet, DeferRunsOnTheLoop) {
  ShardSet set(small(1));
  std::atomic<int> order{0};
  int first = -1, second = -1;
  set.start([&](Shard& s) {
    s.defer([&] {
      first = order++;
      this_shard()->defer([&] {
        second = order++;
        this_shard()->stats();
      });
    });
  });
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (order.load() < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  set.request_stop();
  set.join();
  EXPECT_EQ(first, 0);
  EXPECT_EQ(second, 1);
  EXPECT_GE(set.shard(ShardId(0)).stats().deferred_tasks, 2u);
}

// A stop waits for holds: each shard holds at start, its on_stop hook arms a 30 ms timer
// that releases the hold, and only then does the loop exit.
TEST(ShardSet, GracefulStopWaitsForHolds) {
  ShardSet set(small(2));
  std::atomic<int> hooks{0}, released{0};
  std::vector<std::unique_ptr<Timer>> timers(2);
  set.start([&](Shard& s) {
    s.hold();
    auto* t = new Timer([&released] {
      ++released;
      this_shard()->release();
    });
    timers[s.id().value()].reset(t);
    s.on_stop([&hooks, t] {
      ++hooks;
      EXPECT_TRUE(this_shard()->stopping());
      this_shard()->engine().timeout(30ms, t);
    });
  });
  std::this_thread::sleep_for(10ms);
  auto start = std::chrono::steady_clock::now();
  std::thread stopper([&] { set.request_stop(); });
  stopper.join();
  set.join();
  EXPECT_GE(std::chrono::steady_clock::now() - start, 25ms);
  EXPECT_EQ(hooks.load(), 2);
  EXPECT_EQ(released.load(), 2);
}

TEST(ShardSet, StopBeforeAnyWorkAndIdleShardsSleep) {
  ShardSet set(small(2));
  set.start([](Shard&) {});
  std::this_thread::sleep_for(50ms);
  set.request_stop();
  set.request_stop();  // idempotent
  set.join();
  for (std::uint32_t i = 0; i < 2; ++i) {
    // Idle shards block in run_once instead of spinning.
    EXPECT_LT(set.shard(ShardId(i)).stats().loop_iterations, 20u);
  }
}

ShardSet* g_signal_set = nullptr;
extern "C" void on_test_signal(int) { g_signal_set->request_stop(); }

// What salvod does on SIGTERM: request_stop() straight from the signal handler.
TEST(ShardSet, StopFromSignalHandler) {
  ShardSet set(small(2));
  std::atomic<int> hooks{0};
  set.start([&](Shard& s) { s.on_stop([&] { ++hooks; }); });
  g_signal_set = &set;
  struct sigaction sa {};
  sa.sa_handler = on_test_signal;
  struct sigaction old {};
  ASSERT_EQ(::sigaction(SIGUSR1, &sa, &old), 0);
  ::raise(SIGUSR1);
  set.join();
  ::sigaction(SIGUSR1, &old, nullptr);
  g_signal_set = nullptr;
  EXPECT_EQ(hooks.load(), 2);
}

TEST(ShardSet, UnknownEngineThrowsOneLine) {
  ShardSetOptions o = small(1);
  o.engine = "nope";
  try {
    ShardSet set(o);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos);
  }
}

TEST(ShardSet, DefaultCountIsOnePerCpu) {
  ShardSetOptions o = small(0);
  ShardSet set(o);
  EXPECT_GE(set.size(), 1u);
}

struct Owned {
  OwnedBy owner;
  void mutate() { owner.check(); }
};

TEST(OwnedBy, SameShardPassesOtherShardDies) {
  Owned outside;
  outside.mutate();  // built and used outside any shard
#ifndef NDEBUG
  ShardSet set(small(1));
  std::atomic<bool> done{false};
  set.start([&](Shard&) {
    Owned inside;
    inside.mutate();
    done = true;
  });
  while (!done) std::this_thread::sleep_for(1ms);
  set.request_stop();
  set.join();
  EXPECT_DEATH(
      {
        ShardSet s2(small(1));
        s2.start([&](Shard&) { outside.mutate(); });
        s2.join();
      },
      "");
#endif
}

}  // namespace
}  // namespace salvo::shard
