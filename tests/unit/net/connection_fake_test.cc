// SPDX-License-Identifier: Apache-2.0
// KernelConnection on the FakeEngine (STYLE.md §5.7): deterministic error injection,
// partial sends, -ENOBUFS, cancellation and timers on a TestClock, with no kernel.
#include <salvo/net/stack.h>

#include <cerrno>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "support/fake_engine.h"
#include "support/test_clock.h"

namespace salvo::net {
namespace {

using namespace std::chrono_literals;
using test::FakeEngine;
using test::FakeMode;
using test::OpKind;

constexpr int kFd = 900;  // the accepted socket's number; never a real descriptor here

struct Recorder : AcceptHandler, ConnectionHandler {
  Connection* conn = nullptr;
  std::string data;
  int closes = 0;
  int drained = 0;
  std::error_code why;
  bool consume = true;

  void on_accept(Listener&, Connection& c) noexcept override {
    conn = &c;
    c.set_handler(this);
  }
  void on_data(Connection&, ByteBuffer& in) noexcept override {
    data.append(in.view());
    if (consume) in.consume(in.size());
  }
  void on_drained(Connection&) noexcept override { ++drained; }
  void on_close(Connection&, std::error_code w) noexcept override {
    ++closes;
    why = w;
    conn = nullptr;
  }
};

class FakeStackTest : public ::testing::Test {
 protected:
  void make(FakeMode mode = FakeMode::Auto) {
    engine_ = std::make_unique<FakeEngine>(clock_, mode);
    KernelStackOptions o;
    o.clock = &clock_;
    o.recv_buffers = 2;
    o.recv_buffer_size = 64;
    o.paused_input_limit = 256;
    o.close_linger = 5s;
    stack_ = make_kernel_stack(*engine_, o);
  }
  void SetUp() override { make(); }
  void TearDown() override {
    stack_.reset();
    engine_.reset();
  }
  void run() {
    for (int i = 0; i < 20; ++i) engine_->run_once(Duration::zero());
  }
  // A real listening socket whose multishot accept the fake engine completes with kFd.
  void accept_one() {
    auto l = stack_->listen(*SocketAddress::parse("127.0.0.1:0"), ReusePort::No, rec_);
    ASSERT_TRUE(l.has_value());
    int listen_fd = -1;
    for (const auto& op : engine_->pending()) {
      if (op.kind == OpKind::AcceptMultishot) listen_fd = op.fd;
    }
    ASSERT_GE(listen_fd, 0);
    ASSERT_TRUE(engine_->deliver_accept(listen_fd, kFd));
    run();
    ASSERT_NE(rec_.conn, nullptr);
    ASSERT_EQ(engine_->pending_count(OpKind::RecvMultishot), 1u);
  }

  test::TestClock clock_;
  std::unique_ptr<FakeEngine> engine_;
  std::unique_ptr<Stack> stack_;
  Recorder rec_;
};

TEST_F(FakeStackTest, DataInAndOut) {
  accept_one();
  EXPECT_EQ(engine_->deliver(kFd, "hello"), 5u);
  run();
  EXPECT_EQ(rec_.data, "hello");
  rec_.conn->send("250 ok\r\n");
  run();
  EXPECT_EQ(engine_->sent(kFd), "250 ok\r\n");
  EXPECT_EQ(rec_.drained, 1);
  EXPECT_EQ(stack_->stats().bytes_received, 5u);
}

TEST_F(FakeStackTest, SendErrorClosesOnceWithThatError) {
  accept_one();
  engine_->script(OpKind::Send, -ECONNRESET);
  rec_.conn->send("x");
  rec_.conn->send("y");  // appended while the first send is in flight
  run();
  EXPECT_EQ(rec_.closes, 1);
  EXPECT_EQ(rec_.why, std::errc::connection_reset);
  EXPECT_EQ(stack_->connection_count(), 0u);
  EXPECT_EQ(engine_->pending_count(OpKind::RecvMultishot), 0u);  // cancelled
}

TEST_F(FakeStackTest, PartialSendsAreResumed) {
  accept_one();
  engine_->script(OpKind::Send, 3);
  engine_->script(OpKind::Send, 1);
  rec_.conn->send("abcdefghij");
  run();
  EXPECT_EQ(engine_->sent(kFd), "abcdefghij");
  EXPECT_EQ(rec_.drained, 1);
  EXPECT_EQ(rec_.conn->pending_output(), 0u);
}

TEST_F(FakeStackTest, OneSendInFlightAndAppendsDuringIt) {
  make(FakeMode::Manual);
  accept_one();
  rec_.conn->send("first ");
  run();
  EXPECT_EQ(engine_->pending_count(OpKind::Send), 1u);
  rec_.conn->send("second ");
  rec_.conn->send("third");
  run();
  EXPECT_EQ(engine_->pending_count(OpKind::Send), 1u);  // still one
  EXPECT_EQ(rec_.conn->pending_output(), 18u);
  ASSERT_TRUE(engine_->complete_next(OpKind::Send, 6));
  run();
  ASSERT_EQ(engine_->pending_count(OpKind::Send), 1u);
  ASSERT_TRUE(engine_->complete_next(OpKind::Send, 12));
  run();
  EXPECT_EQ(rec_.conn->pending_output(), 0u);
  EXPECT_EQ(rec_.drained, 1);
  std::string all;
  for (const auto& op : engine_->history()) {
    if (op.kind == OpKind::Send) all += op.data;
  }
  EXPECT_EQ(all, "first second third");
}

TEST_F(FakeStackTest, EnobufsRearmsAndKeepsReceiving) {
  accept_one();
  EXPECT_EQ(engine_->deliver(kFd, "aa"), 2u);
  EXPECT_EQ(engine_->deliver(kFd, "bb"), 2u);
  EXPECT_EQ(engine_->deliver(kFd, "cc"), 0u);  // both buffers taken: -ENOBUFS
  run();
  EXPECT_EQ(rec_.data, "aabb");
  EXPECT_EQ(stack_->stats().recv_enobufs, 1u);
  ASSERT_EQ(engine_->pending_count(OpKind::RecvMultishot), 1u);  // re-armed
  EXPECT_EQ(engine_->deliver(kFd, "cc"), 2u);
  run();
  EXPECT_EQ(rec_.data, "aabbcc");
}

TEST_F(FakeStackTest, RecvErrorAndEof) {
  accept_one();
  engine_->deliver(kFd, "QUIT\r\n");
  ASSERT_TRUE(engine_->deliver_eof(kFd));
  run();
  EXPECT_EQ(rec_.data, "QUIT\r\n");
  EXPECT_EQ(rec_.closes, 1);
  EXPECT_FALSE(rec_.why);
  EXPECT_EQ(engine_->pending_count(OpKind::Shutdown), 0u);

  rec_ = Recorder{};
  accept_one();
  ASSERT_TRUE(engine_->complete_next(OpKind::RecvMultishot, -ECONNRESET));
  run();
  EXPECT_EQ(rec_.closes, 1);
  EXPECT_EQ(rec_.why, std::errc::connection_reset);
}

TEST_F(FakeStackTest, IdleTimeoutOnTheTestClock) {
  accept_one();
  rec_.conn->set_idle_timeout(5s);
  clock_.advance(4s);
  run();
  engine_->deliver(kFd, "x");  // activity pushes the deadline to now + 5 s
  run();
  clock_.advance(4s);
  run();
  EXPECT_EQ(rec_.closes, 0);
  clock_.advance(2s);
  run();
  EXPECT_EQ(rec_.closes, 1);
  EXPECT_EQ(rec_.why, std::errc::timed_out);
  EXPECT_EQ(stack_->stats().idle_timeouts, 1u);
}

TEST_F(FakeStackTest, CloseThatCannotDrainTimesOut) {
  make(FakeMode::Manual);
  accept_one();
  rec_.conn->send("never acknowledged");
  rec_.conn->close();
  run();
  EXPECT_EQ(rec_.closes, 0);
  clock_.advance(6s);  // close_linger is 5 s
  run();
  EXPECT_EQ(rec_.closes, 1);
  EXPECT_EQ(rec_.why, std::errc::timed_out);
  EXPECT_EQ(stack_->connection_count(), 0u);
}

TEST_F(FakeStackTest, AbortWithEverythingInFlight) {
  make(FakeMode::Manual);
  accept_one();
  rec_.conn->set_idle_timeout(30s);
  rec_.conn->send("pending");
  run();
  rec_.conn->abort();
  rec_.conn->abort();  // idempotent
  EXPECT_EQ(rec_.closes, 0);  // never from inside the call
  run();
  EXPECT_EQ(rec_.closes, 1);
  EXPECT_EQ(rec_.why, std::errc::connection_aborted);
  EXPECT_EQ(engine_->pending_count(OpKind::Send), 0u);
  EXPECT_EQ(engine_->pending_count(OpKind::Timeout), 0u);
  EXPECT_EQ(engine_->pending_count(OpKind::RecvMultishot), 0u);
}

TEST_F(FakeStackTest, PausedInputLimitCancelsTheReceive) {
  accept_one();
  rec_.consume = false;
  engine_->deliver(kFd, "first");
  run();
  rec_.conn->pause_reading();
  rec_.data.clear();
  for (int i = 0; i < 8; ++i) {
    engine_->deliver(kFd, std::string(60, 'a' + static_cast<char>(i)));
    run();
  }
  EXPECT_TRUE(rec_.data.empty());  // paused: no on_data
  EXPECT_EQ(engine_->pending_count(OpKind::RecvMultishot), 0u);  // limit (256) reached
  EXPECT_EQ(stack_->stats().paused_overflows, 1u);
  rec_.consume = true;
  rec_.conn->resume_reading();
  EXPECT_TRUE(rec_.data.empty());  // deferred
  run();
  EXPECT_EQ(rec_.data.size(), 5u + 5 * 60);  // everything before the stop, nothing lost
  EXPECT_EQ(engine_->pending_count(OpKind::RecvMultishot), 1u);  // re-armed
}

struct ConnectRecorder : ConnectHandler {
  int calls = 0;
  Connection* conn = nullptr;
  std::error_code why;
  Recorder handler;
  void on_connect(Connection* c, std::error_code w) noexcept override {
    ++calls;
    conn = c;
    why = w;
    if (c != nullptr) c->set_handler(&handler);
  }
};

TEST_F(FakeStackTest, ConnectTimesOutOnTheTestClock) {
  make(FakeMode::Manual);
  ConnectRecorder cr;
  stack_->connect(*SocketAddress::parse("192.0.2.1:25"), nullptr, 10s, cr);
  run();
  EXPECT_EQ(engine_->pending_count(OpKind::Connect), 1u);
  clock_.advance(9s);
  run();
  EXPECT_EQ(cr.calls, 0);
  clock_.advance(2s);
  run();
  EXPECT_EQ(cr.calls, 1);
  EXPECT_EQ(cr.conn, nullptr);
  EXPECT_EQ(cr.why, std::errc::timed_out);
  EXPECT_EQ(stack_->stats().connect_failures, 1u);
}

TEST_F(FakeStackTest, ConnectSuccessThenCloseAllReportsOnce) {
  ConnectRecorder ok;
  stack_->connect(*SocketAddress::parse("192.0.2.1:25"), nullptr, 10s, ok);
  run();
  ASSERT_EQ(ok.calls, 1);
  ASSERT_NE(ok.conn, nullptr);
  EXPECT_FALSE(ok.why);
  EXPECT_EQ(engine_->pending_count(OpKind::Timeout), 0u);  // connect timer cancelled
  stack_->close_all();
  run();
  EXPECT_EQ(ok.handler.closes, 1);
  EXPECT_EQ(stack_->connection_count(), 0u);
  clock_.advance(20s);
  run();
  EXPECT_EQ(ok.calls, 1);
}

}  // namespace
}  // namespace salvo::net
