// SPDX-License-Identifier: Apache-2.0
// Cross-thread wakeups: MSG_RING into the target ring, the eventfd fallback (forced by
// EngineOptions::wake_mode), and the engine-free wake_from_any_thread().
#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "io_test_util.h"

namespace salvo::io::test {
namespace {

using namespace std::chrono_literals;

class CountWakes final : public Completion {
 public:
  void on_complete(std::int32_t, std::uint32_t) noexcept override { ++count; }
  int count = 0;
};

// Engine A sleeps in run_once(kWaitForever) on this thread; thread B wakes it.
void wake_from_engine_thread(WakeMode mode) {
  CountWakes wakes;
  auto a = make_engine(EngineOptions{.on_wake = &wakes, .wake_mode = mode});
  ASSERT_TRUE(a);
  if (mode == WakeMode::Auto && !a->features().msg_ring) GTEST_SKIP() << "no MSG_RING";
  a->run_once(0ms);  // enables the ring on this thread
  WakeTarget target = a->wake_target();
  EXPECT_EQ(target.via, mode == WakeMode::Auto ? WakeVia::MsgRing : WakeVia::EventFd);
  std::thread b([target] {
    auto eb = make_engine();
    ASSERT_TRUE(eb);
    std::this_thread::sleep_for(20ms);
    eb->wake(target);
    eb->run_once(0ms);  // the wake leaves with this submission
    eb->run_once(10ms);
  });
  auto start = std::chrono::steady_clock::now();
  while (wakes.count == 0 && std::chrono::steady_clock::now() - start < 5s) {
    a->run_once(kWaitForever);
  }
  b.join();
  EXPECT_EQ(wakes.count, 1);
}

TEST(UringWake, MsgRingFromAnotherThread) { wake_from_engine_thread(WakeMode::Auto); }

TEST(UringWake, EventFdFromAnotherThread) { wake_from_engine_thread(WakeMode::ForceEventFd); }

TEST(UringWake, AnyThreadWakeWithoutEngine) {
  CountWakes wakes;
  auto a = make_engine(EngineOptions{.on_wake = &wakes});
  ASSERT_TRUE(a);
  a->run_once(0ms);
  WakeTarget t = a->any_thread_wake_target();
  EXPECT_EQ(t.via, WakeVia::EventFd);
  // Several wakes before the engine looks fold into one or more calls, never zero.
  std::thread b([t] {
    for (int i = 0; i < 3; ++i) wake_from_any_thread(t);
  });
  b.join();
  ASSERT_TRUE(run_until(*a, [&] { return wakes.count >= 1; }));
  // And the eventfd read is re-armed: a second wake is seen too.
  int before = wakes.count;
  std::thread c([t] { wake_from_any_thread(t); });
  c.join();
  ASSERT_TRUE(run_until(*a, [&] { return wakes.count > before; }));
}

TEST(UringWake, ManyWakesAllDelivered) {
  CountWakes wakes;
  auto a = make_engine(EngineOptions{.on_wake = &wakes});
  ASSERT_TRUE(a);
  if (!a->features().msg_ring) GTEST_SKIP() << "no MSG_RING";
  a->run_once(0ms);
  WakeTarget target = a->wake_target();
  std::atomic<bool> done{false};
  std::thread b([&] {
    auto eb = make_engine();
    for (int i = 0; i < 1000; ++i) {
      eb->wake(target);
      if (i % 16 == 0) eb->run_once(0ms);
    }
    eb->run_once(0ms);
    eb->run_once(50ms);
    done = true;
  });
  ASSERT_TRUE(run_until(*a, [&] { return wakes.count == 1000; }, 10000ms)) << wakes.count;
  b.join();
}

}  // namespace
}  // namespace salvo::io::test
