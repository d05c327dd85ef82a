// SPDX-License-Identifier: Apache-2.0
// UringEngine on files and pipes: positional read/write, writev, fdatasync (the spool's
// group commit path), fsync of a directory (pickup claims).
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "io_test_util.h"

namespace salvo::io::test {
namespace {

using namespace std::chrono_literals;

class UringFile : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_ = make_engine();
    if (!engine_) GTEST_SKIP() << "io_uring unavailable";
    char path[] = "/tmp/salvo_io_test_XXXXXX";
    fd_ = ::mkstemp(path);
    ASSERT_GE(fd_, 0);
    ::unlink(path);
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
  }
  int wait_one(Recorder& r) {
    EXPECT_TRUE(run_until(*engine_, [&] { return !r.calls.empty(); }));
    return r.calls.empty() ? -9999 : r.calls.back().res;
  }
  std::unique_ptr<Engine> engine_;
  int fd_ = -1;
};

TEST_F(UringFile, WriteReadAtOffsets) {
  Recorder w1, w2, r;
  engine_->write(fd_, std::string_view("hello"), 0, &w1);
  engine_->write(fd_, std::string_view("world"), 100, &w2);
  EXPECT_EQ(wait_one(w1), 5);
  EXPECT_EQ(wait_one(w2), 5);
  char buf[8] = {};
  engine_->read(fd_, std::span<char>(buf, 5), 100, &r);
  EXPECT_EQ(wait_one(r), 5);
  EXPECT_EQ(std::string(buf, 5), "world");
  Recorder r2;
  engine_->read(fd_, std::span<char>(buf, 8), 103, &r2);
  EXPECT_EQ(wait_one(r2), 2);  // short read at end of file
}

TEST_F(UringFile, WritevAndFdatasync) {
  iovec iov[3] = {{const_cast<char*>("MAIL "), 5},
                  {const_cast<char*>("FROM:"), 5},
                  {const_cast<char*>("<a@b>"), 5}};
  Recorder wv, sync;
  engine_->writev(fd_, std::span<const iovec>(iov, 3), 10, &wv);
  EXPECT_EQ(wait_one(wv), 15);
  engine_->fdatasync(fd_, &sync);
  EXPECT_EQ(wait_one(sync), 0);
  char buf[15];
  ASSERT_EQ(::pread(fd_, buf, 15, 10), 15);
  EXPECT_EQ(std::string(buf, 15), "MAIL FROM:<a@b>");
}

TEST_F(UringFile, FsyncOfADirectory) {
  int dir = ::open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(dir, 0);
  Recorder sync;
  engine_->fsync(dir, &sync);
  EXPECT_EQ(wait_one(sync), 0);
  ::close(dir);
}

TEST_F(UringFile, BadFdGivesEbadf) {
  Recorder r;
  char buf[4];
  engine_->read(-1, std::span<char>(buf, 4), 0, &r);
  EXPECT_EQ(to_error_code(wait_one(r)), std::errc::bad_file_descriptor);
}

TEST_F(UringFile, PipeReadCompletesWhenWritten) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  char buf[16];
  Recorder r;
  engine_->read(p[0], std::span<char>(buf, sizeof(buf)), 0, &r);
  engine_->run_once(1ms);
  EXPECT_TRUE(r.calls.empty());
  ASSERT_EQ(::write(p[1], "ping", 4), 4);
  EXPECT_EQ(wait_one(r), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
  ::close(p[0]);
  ::close(p[1]);
}

}  // namespace
}  // namespace salvo::io::test
