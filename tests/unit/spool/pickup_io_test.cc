// SPDX-License-Identifier: Apache-2.0
// DirectoryWatch and FileRead on the real io_uring engine: names of files renamed in and
// files closed after writing, the periodic tick, chunked reads to end of file, and a
// stop + destroy that leaves nothing behind (ASan's leak check runs these too). DirectorySync
// on the fake engine: which changes each fsync covers, one fsync at a time, errors.
#include <salvo/spool/pickup_io.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <salvo/io/engine.h>

#include "spool_test_util.h"
#include "support/fake_engine.h"
#include "support/test_clock.h"

namespace salvo::spool::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

struct Recorder final : DirectoryWatch::Listener {
  std::vector<std::string> names;
  int overflows = 0, ticks = 0;
  void on_name(std::string_view n) noexcept override { names.emplace_back(n); }
  void on_overflow() noexcept override { ++overflows; }
  void on_tick() noexcept override { ++ticks; }
};

class PickupIo : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_ = make_uring();
    if (!engine_) GTEST_SKIP() << "io_uring unavailable";
    watched_ = dir_.sub("pickup");
    fs::create_directories(watched_ + "/tmp");
  }
  // Runs the engine until pred() or 5 s.
  bool run_until(const std::function<bool()>& pred) {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      engine_->run_once(10ms);
    }
    return true;
  }
  TempDir dir_;
  std::string watched_;
  std::unique_ptr<io::Engine> engine_;
};

TEST_F(PickupIo, ReportsRenamedAndClosedFilesAndTicks) {
  Recorder rec;
  auto watch = std::make_unique<DirectoryWatch>(*engine_, rec);
  ASSERT_TRUE(watch->start(watched_, 50ms));
  std::ofstream(watched_ + "/tmp/a.eml") << "x";
  fs::rename(watched_ + "/tmp/a.eml", watched_ + "/a.eml");
  std::ofstream(watched_ + "/b.json") << "{}";  // written in place, then closed
  ASSERT_TRUE(run_until([&] { return rec.names.size() >= 2 && rec.ticks >= 2; }))
      << rec.names.size() << " names, " << rec.ticks << " ticks";
  EXPECT_EQ(rec.names[0], "a.eml");
  EXPECT_EQ(rec.names[1], "b.json");
  EXPECT_EQ(rec.overflows, 0);
  watch->stop();
  int ticks = rec.ticks;
  std::size_t names = rec.names.size();
  watch.reset();
  std::ofstream(watched_ + "/c.eml") << "x";
  for (int i = 0; i < 10; ++i) engine_->run_once(20ms);
  EXPECT_EQ(rec.ticks, ticks);  // nothing after stop
  EXPECT_EQ(rec.names.size(), names);
}

TEST_F(PickupIo, StartFailsOnAMissingDirectory) {
  Recorder rec;
  DirectoryWatch watch(*engine_, rec);
  auto st = watch.start(dir_.sub("nope") + "/deeper", 1s);
  EXPECT_FALSE(st);
}

struct Chunks final : FileRead::Done {
  std::vector<std::int32_t> results;
  void on_read(std::int32_t res) noexcept override { results.push_back(res); }
};

TEST_F(PickupIo, FileReadReadsChunksToEndOfFile) {
  std::string path = watched_ + "/data.bin";
  std::string content(10000, '\0');
  for (std::size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>('a' + i % 26);
  std::ofstream(path, std::ios::binary) << content;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  Chunks done;
  FileRead reader(*engine_, done);
  std::string got;
  std::vector<char> buf(4096);
  std::uint64_t off = 0;
  for (;;) {
    reader.read(fd, std::span<char>(buf.data(), buf.size()), off);
    EXPECT_TRUE(reader.busy());
    std::size_t before = done.results.size();
    ASSERT_TRUE(run_until([&] { return done.results.size() > before; }));
    EXPECT_FALSE(reader.busy());
    std::int32_t n = done.results.back();
    ASSERT_GE(n, 0);
    if (n == 0) break;
    got.append(buf.data(), static_cast<std::size_t>(n));
    off += static_cast<std::uint64_t>(n);
  }
  ::close(fd);
  EXPECT_EQ(got, content);
  // A bad descriptor reports -EBADF through the same path.
  reader.read(-1, std::span<char>(buf.data(), buf.size()), 0);
  ASSERT_TRUE(run_until([&] { return !reader.busy(); }));
  EXPECT_EQ(done.results.back(), -EBADF);
}

struct Synced final : DirectorySync::Listener {
  std::vector<std::pair<std::uint64_t, bool>> calls;  // (upto, ok)
  void on_synced(std::uint64_t upto, Status st) noexcept override {
    calls.emplace_back(upto, st.has_value());
  }
};

TEST(DirectorySyncFake, EachFsyncCoversTheChangesMadeBeforeItStarted) {
  using salvo::test::OpKind;
  salvo::test::TestClock clock;
  salvo::test::FakeEngine engine(clock, salvo::test::FakeMode::Manual);
  Synced synced;
  auto sync = std::make_unique<DirectorySync>(engine, 7, synced);
  EXPECT_EQ(sync->changed(), 1u);
  EXPECT_EQ(sync->changed(), 2u);
  sync->sync();
  ASSERT_EQ(engine.pending_count(OpKind::Fsync), 1u);
  EXPECT_EQ(engine.pending().front().fd, 7);
  // Changes made while it runs wait for the next one; asking twice starts only one.
  EXPECT_EQ(sync->changed(), 3u);
  sync->sync();
  sync->sync();
  EXPECT_EQ(engine.pending_count(OpKind::Fsync), 1u);
  ASSERT_TRUE(engine.complete_next(OpKind::Fsync, 0));
  engine.run_once(0ms);
  EXPECT_EQ(synced.calls, (std::vector<std::pair<std::uint64_t, bool>>{{2, true}}));
  ASSERT_EQ(engine.pending_count(OpKind::Fsync), 1u);  // the one asked for meanwhile
  ASSERT_TRUE(engine.complete_next(OpKind::Fsync, -EIO));
  engine.run_once(0ms);
  EXPECT_EQ(synced.calls.back(), (std::pair<std::uint64_t, bool>{3, false}));
  EXPECT_EQ(engine.pending_count(OpKind::Fsync), 0u);  // nothing more asked
  // Destroyed mid-fsync: the op frees itself at its final call, the listener hears nothing.
  sync->changed();
  sync->sync();
  sync.reset();
  engine.run_once(0ms);
  EXPECT_EQ(synced.calls.size(), 2u);
}

}  // namespace
}  // namespace salvo::spool::test
