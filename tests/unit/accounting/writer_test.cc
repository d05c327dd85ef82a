// SPDX-License-Identifier: Apache-2.0
// Writer on the FakeEngine: flush by timer, size and flush(); short writes, errors,
// bounded memory, reopening after rotation, and destruction while a write is in flight.
#include <cerrno>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <salvo/accounting/accounting.h>

#include "accounting_test_util.h"
#include "support/fake_engine.h"
#include "support/process.h"
#include "support/test_clock.h"

namespace salvo::accounting {
namespace {

using namespace std::chrono_literals;
using salvo::test::FakeEngine;
using salvo::test::FakeMode;
using salvo::test::OpKind;
using test::sample_event;

constexpr std::uint64_t kAppendOffset = ~std::uint64_t{0};

std::size_t count_lines(const std::string& s) {
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

// Every line must be whole and parse; returns the ids in order.
std::vector<std::string> ids_of(const std::string& data) {
  std::vector<std::string> ids;
  if (!data.empty()) {
    EXPECT_EQ(data.back(), '\n');
  }
  std::size_t pos = 0;
  while (pos < data.size()) {
    std::size_t nl = data.find('\n', pos);
    if (nl == std::string::npos) nl = data.size();
    auto j = nlohmann::json::parse(data.substr(pos, nl - pos));
    ids.push_back(j.at("id").get<std::string>());
    pos = nl + 1;
  }
  return ids;
}

class WriterFake : public ::testing::Test {
 protected:
  void SetUp() override {
    auto f = Files::open(dir_.path() + "/log", RotateOptions{.max_bytes = 0, .max_age = 0s},
                         clock_);
    ASSERT_TRUE(f.has_value());
    files_ = std::move(*f);
  }

  void append(Writer& w, int n) {
    for (int i = 0; i < n; ++i) {
      std::string id = test::make_id("m", next_id_++);
      w.append(sample_event(id));
    }
  }
  static void drain(FakeEngine& e) {
    for (int i = 0; i < 8; ++i) e.run_once(0ms);
  }
  // What reached the "disk": the bytes the engine accepted, over every fd in order.
  static std::string written(const FakeEngine& e) {
    std::string out;
    std::set<int> seen;
    for (const auto& op : e.history()) {
      if (op.kind == OpKind::Write && seen.insert(op.fd).second) out += e.sent(op.fd);
    }
    return out;
  }
  // Manual mode: completes the oldest pending write in full; returns its bytes.
  static std::string complete_write(FakeEngine& e) {
    for (const auto& op : e.pending()) {
      if (op.kind == OpKind::Write) {
        std::string d = op.data;
        EXPECT_TRUE(e.complete_next(OpKind::Write, static_cast<std::int32_t>(d.size())));
        return d;
      }
    }
    ADD_FAILURE() << "no write pending";
    return {};
  }
  static std::size_t writes_submitted(const FakeEngine& e) {
    std::size_t n = 0;
    for (const auto& op : e.history()) n += op.kind == OpKind::Write ? 1 : 0;
    return n;
  }

  salvo::test::TestClock clock_;
  salvo::test::TempDir dir_;
  std::unique_ptr<Files> files_;
  int next_id_ = 0;
};

TEST_F(WriterFake, TimerFlushesAfterInterval) {
  FakeEngine eng(clock_);
  Writer w(eng, clock_, *files_, {.buffer_bytes = 1 << 20, .flush_interval = 100ms});
  append(w, 3);
  eng.run_once(0ms);
  EXPECT_EQ(writes_submitted(eng), 0u);
  EXPECT_EQ(eng.pending_count(OpKind::Timeout), 1u);
  EXPECT_FALSE(w.idle());
  clock_.advance(99ms);
  eng.run_once(0ms);
  EXPECT_EQ(writes_submitted(eng), 0u);
  clock_.advance(1ms);
  drain(eng);
  ASSERT_EQ(writes_submitted(eng), 1u);
  EXPECT_EQ(eng.history().back().offset, kAppendOffset);  // O_APPEND, "current position"
  EXPECT_EQ(ids_of(written(eng)), (std::vector<std::string>{"m0", "m1", "m2"}));
  EXPECT_EQ(w.stats().events, 3u);
  EXPECT_EQ(w.stats().writes, 1u);
  EXPECT_EQ(w.stats().bytes_written, written(eng).size());
  EXPECT_TRUE(w.idle());
}

TEST_F(WriterFake, SizeFlushesAtOnceAndKeepsWholeLines) {
  FakeEngine eng(clock_);
  Writer w(eng, clock_, *files_, {.buffer_bytes = 1000, .flush_interval = 1h});
  int n = 0;
  while (writes_submitted(eng) == 0) {
    append(w, 1);
    ++n;
    ASSERT_LT(n, 100);
  }
  const std::string& first = eng.history().back().data;
  EXPECT_GE(first.size(), 1000u);
  EXPECT_EQ(count_lines(first), static_cast<std::size_t>(n));
  EXPECT_EQ(first.back(), '\n');
  append(w, 1);  // waits for the timer (1h) or flush()
  drain(eng);
  EXPECT_EQ(writes_submitted(eng), 1u);
  EXPECT_FALSE(w.idle());
  w.flush();
  drain(eng);
  EXPECT_EQ(writes_submitted(eng), 2u);
  EXPECT_EQ(eng.cancels(), 1u);  // the 1h timer, so idle() need not wait for it
  EXPECT_TRUE(w.idle());
  EXPECT_EQ(ids_of(written(eng)).size(), static_cast<std::size_t>(n + 1));
}

TEST_F(WriterFake, LinesArrivingDuringAWriteGoOutAfterIt) {
  FakeEngine eng(clock_, FakeMode::Manual);
  Writer w(eng, clock_, *files_, {.buffer_bytes = 1 << 20, .flush_interval = 100ms});
  append(w, 2);
  w.flush();
  ASSERT_EQ(eng.pending_count(OpKind::Write), 1u);
  append(w, 3);
  w.flush();  // one write in flight: the second waits
  EXPECT_EQ(eng.pending_count(OpKind::Write), 1u);
  std::size_t n = eng.history().back().data.size();
  ASSERT_TRUE(eng.complete_next(OpKind::Write, static_cast<std::int32_t>(n)));
  eng.run_once(0ms);
  ASSERT_EQ(eng.pending_count(OpKind::Write), 1u);
  EXPECT_EQ(count_lines(eng.history().back().data), 3u);
  n = eng.history().back().data.size();
  ASSERT_TRUE(eng.complete_next(OpKind::Write, static_cast<std::int32_t>(n)));
  drain(eng);
  EXPECT_TRUE(w.idle());
  EXPECT_EQ(w.stats().writes, 2u);
}

TEST_F(WriterFake, ShortWriteContinuesWithTheRest) {
  FakeEngine eng(clock_);
  eng.script(OpKind::Write, 10);
  eng.script(OpKind::Write, 100);
  Writer w(eng, clock_, *files_, {.buffer_bytes = 1 << 20, .flush_interval = 100ms});
  append(w, 2);
  w.flush();
  drain(eng);
  ASSERT_EQ(writes_submitted(eng), 3u);
  const auto& h = eng.history();
  std::vector<std::string> data;
  for (const auto& op : h) {
    if (op.kind == OpKind::Write) data.push_back(op.data);
  }
  EXPECT_EQ(data[1], data[0].substr(10));
  EXPECT_EQ(data[2], data[0].substr(110));
  EXPECT_EQ(written(eng), data[0]);
  EXPECT_EQ(ids_of(written(eng)), (std::vector<std::string>{"m0", "m1"}));
  EXPECT_EQ(w.stats().writes, 3u);
  EXPECT_EQ(w.stats().bytes_written, data[0].size());
  EXPECT_EQ(w.stats().write_errors, 0u);
  EXPECT_TRUE(w.idle());
}

TEST_F(WriterFake, InterruptedWriteIsRetried) {
  FakeEngine eng(clock_);
  eng.script(OpKind::Write, -EINTR);
  Writer w(eng, clock_, *files_, {.buffer_bytes = 1 << 20, .flush_interval = 100ms});
  append(w, 2);
  w.flush();
  drain(eng);
  EXPECT_EQ(writes_submitted(eng), 2u);
  EXPECT_EQ(ids_of(written(eng)).size(), 2u);
  EXPECT_EQ(w.stats().write_errors, 0u);
}

TEST_F(WriterFake, WriteErrorDropsThatBufferCountsAndCarriesOn) {
  FakeEngine eng(clock_);
  eng.script(OpKind::Write, -EIO);
  Writer w(eng, clock_, *files_, {.buffer_bytes = 1 << 20, .flush_interval = 100ms});
  append(w, 2);
  w.flush();
  drain(eng);
  EXPECT_EQ(w.stats().write_errors, 2u);
  EXPECT_EQ(w.stats().writes, 0u);
  EXPECT_TRUE(w.idle());

  // A short write then an error: the partly written line counts as lost too.
  eng.script(OpKind::Write, 10);
  eng.script(OpKind::Write, -ENOSPC);
  append(w, 3);
  w.flush();
  drain(eng);
  EXPECT_EQ(w.stats().write_errors, 5u);

  append(w, 4);  // and the next buffer goes out normally (on a fresh descriptor)
  w.flush();
  drain(eng);
  EXPECT_EQ(w.stats().write_errors, 5u);
  std::string last = eng.history().back().data;
  EXPECT_EQ(ids_of(last), (std::vector<std::string>{"m5", "m6", "m7", "m8"}));
  EXPECT_TRUE(eng.sent(eng.history().back().fd).ends_with(last));  // fd numbers get reused
  EXPECT_TRUE(w.idle());
}

TEST_F(WriterFake, ZeroByteWriteIsAnError) {
  FakeEngine eng(clock_);
  eng.script(OpKind::Write, 0);
  Writer w(eng, clock_, *files_, {.buffer_bytes = 1 << 20, .flush_interval = 100ms});
  append(w, 1);
  w.flush();
  drain(eng);
  EXPECT_EQ(w.stats().write_errors, 1u);
  EXPECT_EQ(writes_submitted(eng), 1u);
  EXPECT_TRUE(w.idle());
}

TEST_F(WriterFake, SlowWriteBoundsMemoryAndDropsNewLines) {
  FakeEngine eng(clock_, FakeMode::Manual);
  constexpr std::size_t kBuf = 512;
  Writer w(eng, clock_, *files_, {.buffer_bytes = kBuf, .flush_interval = 100ms});
  append(w, 400);  // ~400 bytes each: far beyond 64 × 512 while the first write hangs
  EXPECT_EQ(eng.pending_count(OpKind::Write), 1u);
  const WriterStats& s = w.stats();
  EXPECT_GT(s.dropped, 0u);
  EXPECT_EQ(s.events + s.dropped, 400u);
  const std::size_t first_write = eng.history().back().data.size();

  // The disk comes back: everything accepted is written, whole.
  std::string all;
  for (int guard = 0; guard < 100 && !w.idle(); ++guard) {
    if (eng.pending_count(OpKind::Write) > 0) all += complete_write(eng);
    w.flush();
    eng.run_once(0ms);
  }
  EXPECT_TRUE(w.idle());
  EXPECT_EQ(ids_of(all).size(), s.events);
  EXPECT_EQ(s.write_errors, 0u);
  // What was held: the write in flight plus at most the bound and one line.
  EXPECT_LE(all.size(), first_write + 64 * kBuf + 1024);

  // Memory drained: new lines are accepted again.
  std::uint64_t dropped = s.dropped;
  append(w, 1);
  EXPECT_EQ(s.dropped, dropped);
  w.flush();
  complete_write(eng);
  drain(eng);
  EXPECT_TRUE(w.idle());
}

// A producer that can wait (a job's read-back) stops before the bound and is told, from a
// write's completion, once there is room: nothing is dropped.
TEST_F(WriterFake, ARoomWaiterIsToldFromACompletionAndNothingIsDropped) {
  FakeEngine eng(clock_, FakeMode::Manual);
  constexpr std::size_t kBuf = 512;
  Writer w(eng, clock_, *files_, {.buffer_bytes = kBuf, .flush_interval = 100ms});
  struct Told final : RoomWaiter {
    void on_room() noexcept override { ++n; }
    int n = 0;
  } told;
  int appended = 0;
  while (w.has_room(2048) && appended < 1000) {
    append(w, 1);
    ++appended;
  }
  ASSERT_FALSE(w.has_room(2048));
  ASSERT_GT(appended, 50);  // 64 x 512 bytes of ~400-byte lines, the first write hanging
  w.wait_for_room(&told);
  EXPECT_EQ(told.n, 0);  // never from inside the call
  eng.run_once(0ms);
  EXPECT_EQ(told.n, 0);  // the write still hangs
  std::string all;
  for (int guard = 0; guard < 100 && told.n == 0; ++guard) {
    if (eng.pending_count(OpKind::Write) > 0) all += complete_write(eng);
    eng.run_once(0ms);
  }
  EXPECT_EQ(told.n, 1);
  EXPECT_TRUE(w.has_room(2048));
  for (int guard = 0; guard < 100 && !w.idle(); ++guard) {
    if (eng.pending_count(OpKind::Write) > 0) all += complete_write(eng);
    w.flush();
    eng.run_once(0ms);
  }
  EXPECT_EQ(told.n, 1);  // once
  EXPECT_EQ(w.stats().dropped, 0u);
  EXPECT_EQ(ids_of(all).size(), static_cast<std::size_t>(appended));
}

TEST_F(WriterFake, ReopensAfterRotation) {
  FakeEngine eng(clock_);
  Writer w(eng, clock_, *files_, {.buffer_bytes = 1 << 20, .flush_interval = 100ms});
  append(w, 1);
  w.flush();
  drain(eng);
  int fd1 = eng.history().back().fd;
  ASSERT_TRUE(files_->rotate().has_value());
  append(w, 1);
  w.flush();
  drain(eng);
  int fd2 = eng.history().back().fd;
  EXPECT_NE(fd1, fd2);
  EXPECT_EQ(w.stats().reopened, 1u);
  EXPECT_EQ(ids_of(eng.sent(fd1)), std::vector<std::string>{"m0"});
  EXPECT_EQ(ids_of(eng.sent(fd2)), std::vector<std::string>{"m1"});
}

TEST_F(WriterFake, CancelledTimerIsRearmedForNewLines) {
  FakeEngine eng(clock_);
  Writer w(eng, clock_, *files_, {.buffer_bytes = 1 << 20, .flush_interval = 100ms});
  append(w, 1);
  w.flush();    // writes and cancels the timer
  append(w, 1);  // before the cancellation arrives
  drain(eng);
  EXPECT_EQ(eng.pending_count(OpKind::Timeout), 1u);  // armed again for the new line
  EXPECT_FALSE(w.idle());
  clock_.advance(100ms);
  drain(eng);
  EXPECT_TRUE(w.idle());
  EXPECT_EQ(ids_of(written(eng)).size(), 2u);
}

TEST_F(WriterFake, DestroyedWithWriteInFlightFinishesAndFrees) {
  FakeEngine eng(clock_, FakeMode::Manual);
  {
    Writer w(eng, clock_, *files_, {.buffer_bytes = 1 << 20, .flush_interval = 100ms});
    append(w, 2);
    w.flush();
    append(w, 1);  // buffered behind the write in flight
  }
  // The Writer is gone; its heap block still owns the write and the remaining line.
  std::string all;
  for (int guard = 0; guard < 10 && eng.pending_count(OpKind::Write) > 0; ++guard) {
    all += complete_write(eng);
    eng.run_once(0ms);
  }
  drain(eng);  // the timer's -ECANCELED: the block frees itself (ASan checks the leak)
  EXPECT_EQ(eng.pending().size(), 0u);
  EXPECT_EQ(ids_of(all), (std::vector<std::string>{"m0", "m1", "m2"}));
}

TEST_F(WriterFake, DestroyedIdleFreesAtOnce) {
  FakeEngine eng(clock_);
  auto w = std::make_unique<Writer>(eng, clock_, *files_, WriterOptions{});
  append(*w, 1);
  w->flush();
  drain(eng);
  ASSERT_TRUE(w->idle());
  w.reset();
  EXPECT_EQ(eng.pending().size(), 0u);
}

}  // namespace
}  // namespace salvo::accounting
