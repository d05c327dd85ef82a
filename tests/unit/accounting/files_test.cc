// SPDX-License-Identifier: Apache-2.0
// Files and Writer on the real io_uring engine and a real directory: rotation by size and
// by age (TestClock) with two writers, rotated names, and several threads appending while
// another rotates. Afterwards every line of every file parses and none is lost.
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <salvo/accounting/accounting.h>
#include <salvo/io/engine.h>

#include "accounting_test_util.h"
#include "support/process.h"
#include "support/test_clock.h"

namespace salvo::accounting {
namespace {

using namespace std::chrono_literals;
using test::list_files;
using test::read_ids;
using test::sample_event;

std::unique_ptr<io::Engine> make_engine() {
  std::string why;
  io::EngineOptions o;
  o.queue_depth = 64;
  auto e = io::create_engine("uring", o, &why);
  if (!e) return nullptr;
  return std::move(*e);
}

// flush() then run the engine until idle(), bounded in time.
bool settle(io::Engine& e, std::initializer_list<Writer*> writers) {
  for (Writer* w : writers) w->flush();
  auto deadline = std::chrono::steady_clock::now() + 5s;
  for (;;) {
    bool idle = true;
    for (Writer* w : writers) idle = idle && w->idle();
    if (idle) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    e.run_once(10ms);
  }
}

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_ = make_engine();
    if (!engine_) GTEST_SKIP() << "io_uring unavailable";
    dir_ = tmp_.path() + "/log";
  }
  std::unique_ptr<Files> open_files(RotateOptions o, const Clock& clock) {
    auto f = Files::open(dir_, o, clock);
    EXPECT_TRUE(f.has_value()) << (f ? "" : f.error().message());
    return f ? std::move(*f) : nullptr;
  }
  void append(Writer& w, int n, const std::string& prefix) {
    for (int i = 0; i < n; ++i) {
      std::string id = test::make_id(prefix, counter_++);
      expected_.insert(id);
      w.append(sample_event(id));
    }
  }
  void expect_all_lines_once() {
    std::vector<std::string> ids = read_ids(dir_);
    EXPECT_EQ(ids.size(), expected_.size());
    EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()), expected_);
  }

  salvo::test::TempDir tmp_;
  std::string dir_;
  std::unique_ptr<io::Engine> engine_;
  salvo::test::TestClock clock_;
  std::set<std::string> expected_;
  int counter_ = 0;
};

TEST_F(FilesTest, OpenCreatesDirectoryAndFile) {
  auto files = open_files({}, clock_);
  ASSERT_TRUE(files);
  EXPECT_EQ(files->dir(), dir_);
  EXPECT_EQ(files->current_path(), dir_ + "/accounting.jsonl");
  struct stat st{};
  EXPECT_EQ(::stat(files->current_path().c_str(), &st), 0);
  EXPECT_EQ(files->generation(), 0u);
}

TEST_F(FilesTest, OpenFailsOnUnusableDirectory) {
  std::string file = tmp_.path() + "/plain";
  {
    std::ofstream(file) << "x";
  }
  auto f = Files::open(file + "/log", {}, clock_);
  EXPECT_FALSE(f.has_value());
}

TEST_F(FilesTest, WriterOnUringWritesARealFile) {
  auto files = open_files({.max_bytes = 0, .max_age = 0s}, clock_);
  ASSERT_TRUE(files);
  {
    Writer w(*engine_, clock_, *files, {.buffer_bytes = 16 * 1024, .flush_interval = 100ms});
    for (int i = 0; i < 10; ++i) {
      append(w, 100, "u");  // a shard runs its engine between events
      engine_->run_once(0ms);
    }
    ASSERT_TRUE(settle(*engine_, {&w}));
    EXPECT_EQ(w.stats().events, 1000u);
    EXPECT_GT(w.stats().writes, 1u);
    EXPECT_LT(w.stats().writes, 1000u);  // lines batch up behind the write in flight
    EXPECT_EQ(w.stats().write_errors, 0u);
    EXPECT_EQ(w.stats().dropped, 0u);
    struct stat st{};
    ASSERT_EQ(::stat(files->current_path().c_str(), &st), 0);
    EXPECT_EQ(static_cast<std::uint64_t>(st.st_size), w.stats().bytes_written);
  }
  expect_all_lines_once();
}

TEST_F(FilesTest, RotatedNamesGetASuffixWhenTaken) {
  auto files = open_files({.max_bytes = 0, .max_age = 0s}, clock_);
  ASSERT_TRUE(files);
  Writer w(*engine_, clock_, *files, {});
  for (int i = 0; i < 3; ++i) {
    append(w, 1, "r");
    ASSERT_TRUE(settle(*engine_, {&w}));
    ASSERT_TRUE(files->rotate().has_value());  // the TestClock stands still: same second
  }
  EXPECT_EQ(files->generation(), 3u);
  EXPECT_EQ(list_files(dir_),
            (std::vector<std::string>{"accounting-20260101T000000-1.jsonl",
                                      "accounting-20260101T000000-2.jsonl",
                                      "accounting-20260101T000000.jsonl", "accounting.jsonl"}));
  expect_all_lines_once();
}

TEST_F(FilesTest, RotatesBySizeWithTwoWriters) {
  auto files = open_files({.max_bytes = 16 * 1024, .max_age = 0s}, clock_);
  ASSERT_TRUE(files);
  Writer a(*engine_, clock_, *files, {.buffer_bytes = 2048, .flush_interval = 50ms});
  Writer b(*engine_, clock_, *files, {.buffer_bytes = 2048, .flush_interval = 50ms});
  EXPECT_FALSE(files->maybe_rotate());  // nothing due (and checked at most once a second)
  for (int round = 0; round < 20; ++round) {
    append(a, 30, "a");
    append(b, 30, "b");
    ASSERT_TRUE(settle(*engine_, {&a, &b}));
    clock_.advance(1s);
  }
  // ~25 KiB per round against a 16 KiB limit, checked once a second: about one rotation
  // per round, each noticed by both writers at their next write.
  EXPECT_GE(files->generation(), 8u);
  EXPECT_EQ(list_files(dir_).size(), files->generation() + 1);
  EXPECT_GE(a.stats().reopened, files->generation() - 1);
  EXPECT_GE(b.stats().reopened, files->generation() - 1);
  EXPECT_EQ(a.stats().write_errors + b.stats().write_errors, 0u);
  expect_all_lines_once();
}

TEST_F(FilesTest, RotatesByAge) {
  auto files = open_files({.max_bytes = 0, .max_age = 1h}, clock_);
  ASSERT_TRUE(files);
  Writer a(*engine_, clock_, *files, {});
  Writer b(*engine_, clock_, *files, {});
  append(a, 5, "a");
  append(b, 5, "b");
  ASSERT_TRUE(settle(*engine_, {&a, &b}));
  clock_.advance(59min);
  append(a, 5, "a");
  ASSERT_TRUE(settle(*engine_, {&a, &b}));
  EXPECT_EQ(files->generation(), 0u);
  clock_.advance(1min);
  append(b, 5, "b");  // b's write rotates first, then writes to the new file
  ASSERT_TRUE(settle(*engine_, {&a, &b}));
  EXPECT_EQ(files->generation(), 1u);
  EXPECT_EQ(list_files(dir_), (std::vector<std::string>{"accounting-20260101T010000.jsonl",
                                                        "accounting.jsonl"}));
  EXPECT_EQ(read_ids(dir_).size(), 20u);
  append(a, 5, "a");
  ASSERT_TRUE(settle(*engine_, {&a, &b}));
  EXPECT_EQ(a.stats().reopened, 1u);
  EXPECT_EQ(b.stats().reopened, 1u);
  expect_all_lines_once();
  // The new file holds exactly the lines written after the rotation.
  std::string current = test::slurp(files->current_path());
  EXPECT_EQ(std::count(current.begin(), current.end(), '\n'), 10);
}

TEST_F(FilesTest, EmptyFileIsNotRotatedByAge) {
  auto files = open_files({.max_bytes = 0, .max_age = 1h}, clock_);
  ASSERT_TRUE(files);
  clock_.advance(2h);
  EXPECT_FALSE(files->maybe_rotate());
  Writer w(*engine_, clock_, *files, {});
  append(w, 1, "e");
  ASSERT_TRUE(settle(*engine_, {&w}));
  clock_.advance(2s);
  EXPECT_FALSE(files->maybe_rotate());  // the age restarted when the empty file was seen
  EXPECT_EQ(files->generation(), 0u);
}

// Two shard-like threads, each with its own engine and Writer, append 50k events each to
// one Files while a third thread rotates over and over.
TEST_F(FilesTest, ThreadsAppendWhileAnotherRotates) {
  SystemClock clock;
  auto files = open_files({.max_bytes = 0, .max_age = 0s}, clock);
  ASSERT_TRUE(files);
  constexpr int kPerThread = 50000;
  std::atomic<int> running{2};
  std::atomic<bool> failed{false};
  std::vector<WriterStats> stats(2);

  auto shard = [&](int index) {
    auto engine = make_engine();
    if (!engine) {
      failed = true;
      --running;
      return;
    }
    engine->bind_to_current_thread();
    {
      Writer w(*engine, clock, *files, {.buffer_bytes = 64 * 1024, .flush_interval = 5ms});
      std::string prefix = test::make_id("t", index) + "-";
      for (int i = 0; i < kPerThread; ++i) {
        std::string id = test::make_id(prefix, i);
        w.append(sample_event(id));
        if (i % 16 == 0) engine->run_once(0ms);
        // A shard's loop runs between events; here the thread also waits now and then so
        // a slow io-wq write cannot make the bounded buffer drop lines.
        if (i % 1000 == 999 && !settle(*engine, {&w})) failed = true;
      }
      if (!settle(*engine, {&w})) failed = true;
      stats[static_cast<std::size_t>(index)] = w.stats();
    }
    --running;
  };

  std::thread t0(shard, 0), t1(shard, 1);
  int rotations = 0;
  std::thread rotator([&] {
    while (running.load() > 0) {
      if (files->rotate().has_value()) ++rotations;
      std::this_thread::sleep_for(1ms);
    }
  });
  t0.join();
  t1.join();
  rotator.join();
  ASSERT_FALSE(failed.load());

  for (const WriterStats& s : stats) {
    EXPECT_EQ(s.events, static_cast<std::uint64_t>(kPerThread));
    EXPECT_EQ(s.dropped, 0u);
    EXPECT_EQ(s.write_errors, 0u);
  }
  EXPECT_GT(rotations, 0);
  EXPECT_EQ(files->generation(), static_cast<std::uint64_t>(rotations));
  std::vector<std::string> ids = read_ids(dir_);
  EXPECT_EQ(ids.size(), 2u * kPerThread);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 2u * kPerThread);
  EXPECT_EQ(list_files(dir_).size(), static_cast<std::size_t>(rotations) + 1);
}

}  // namespace
}  // namespace salvo::accounting
