// SPDX-License-Identifier: Apache-2.0
// KernelConnection on the FakeEngine: deterministic error injection,
// partial sends, -ENOBUFS, cancellation and timers on a TestClock, and the send_zc rules
// (buffers pinned until the notification, partial sends, refusals), with no kernel.
#include <salvo/net/stack.h>

#include <cerrno>
#include <cstring>
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
  void make(FakeMode mode = FakeMode::Auto, std::size_t zerocopy_threshold = 16 * 1024) {
    stack_.reset();  // before the engine it runs on
    engine_ = std::make_unique<FakeEngine>(clock_, mode);
    KernelStackOptions o;
    o.zerocopy_threshold = zerocopy_threshold;
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

// Sessions set the idle timeout at every command: a later deadline than the armed timer's
// costs no cancel (the timer finds it when it fires); a shorter one takes effect at once.
TEST_F(FakeStackTest, IdleTimeoutCancelsOnlyForAnEarlierDeadline) {
  accept_one();
  rec_.conn->set_idle_timeout(10s);
  const std::size_t cancels = engine_->cancels();
  for (int i = 0; i < 5; ++i) {
    clock_.advance(1s);
    rec_.conn->set_idle_timeout(10s);
    run();
  }
  EXPECT_EQ(engine_->cancels(), cancels);
  rec_.conn->set_idle_timeout(2s);
  EXPECT_EQ(engine_->cancels(), cancels + 1);
  run();
  clock_.advance(1s);
  run();
  EXPECT_EQ(rec_.closes, 0);
  clock_.advance(1s);
  run();
  EXPECT_EQ(rec_.closes, 1);
  EXPECT_EQ(rec_.why, std::errc::timed_out);
}

// A deadline is a point in time: input that keeps the idle timer alive does not move it.
TEST_F(FakeStackTest, DeadlineIsNotMovedByInput) {
  accept_one();
  rec_.conn->set_idle_timeout(10s);
  rec_.conn->set_deadline(clock_.now() + 5s);
  for (int i = 0; i < 4; ++i) {
    clock_.advance(1s);
    engine_->deliver(kFd, "x");
    run();
  }
  EXPECT_EQ(rec_.closes, 0);
  clock_.advance(1s);
  run();
  EXPECT_EQ(rec_.closes, 1);
  EXPECT_EQ(rec_.why, std::errc::timed_out);
}

// An earlier deadline than the armed timer's takes effect (the timer is re-armed); a
// later one, or clearing it, leaves the idle timer in charge.
TEST_F(FakeStackTest, DeadlineMovesBothWays) {
  accept_one();
  rec_.conn->set_idle_timeout(30s);
  rec_.conn->set_deadline(clock_.now() + 20s);
  rec_.conn->set_deadline(clock_.now() + 2s);
  clock_.advance(1s);
  run();
  rec_.conn->set_deadline(TimePoint::max());
  clock_.advance(2s);
  run();
  EXPECT_EQ(rec_.closes, 0);  // cleared before it expired
  rec_.conn->set_deadline(clock_.now() + 3s);
  clock_.advance(2s);
  run();
  EXPECT_EQ(rec_.closes, 0);
  clock_.advance(2s);
  run();
  EXPECT_EQ(rec_.closes, 1);
}

// The write timeout counts while the socket takes none of the output: each write it takes,
// even in part, starts it again; with nothing to send it never fires, and received bytes
// do not move it.
TEST_F(FakeStackTest, WriteTimeoutWhenThePeerTakesNothing) {
  make(FakeMode::Manual);
  accept_one();
  rec_.conn->set_write_timeout(3s);
  clock_.advance(10s);
  run();
  EXPECT_EQ(rec_.closes, 0);  // nothing to send
  rec_.conn->send(std::string(100, 'x'));
  run();
  clock_.advance(2s);
  run();
  ASSERT_TRUE(engine_->complete_next(OpKind::Send, 40));  // the peer took a part
  run();
  clock_.advance(2s);
  engine_->deliver(kFd, "input");
  run();
  EXPECT_EQ(rec_.closes, 0);  // 2 s since the socket last took bytes
  clock_.advance(1s);
  run();
  EXPECT_EQ(rec_.closes, 1);
  EXPECT_EQ(rec_.why, std::errc::timed_out);
  EXPECT_EQ(stack_->stats().idle_timeouts, 1u);
}

// A write timeout shorter than the armed timer's wait takes effect at once.
TEST_F(FakeStackTest, WriteTimeoutEarlierThanTheArmedTimer) {
  make(FakeMode::Manual);
  accept_one();
  rec_.conn->set_idle_timeout(60s);
  rec_.conn->set_write_timeout(2s);
  rec_.conn->send("stuck");
  run();
  clock_.advance(3s);
  run();
  EXPECT_EQ(rec_.closes, 1);
  EXPECT_EQ(rec_.why, std::errc::timed_out);
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

// The end of a stop's grace: a connection still draining to a peer that does not read
// goes at once instead of after the close linger.
TEST_F(FakeStackTest, AbortAllEndsADrainingConnection) {
  make(FakeMode::Manual);
  accept_one();
  rec_.conn->send("never acknowledged");
  rec_.conn->close();
  stack_->close_all();  // already closing: nothing changes
  run();
  EXPECT_EQ(rec_.closes, 0);
  stack_->abort_all();
  run();
  EXPECT_EQ(rec_.closes, 1);
  EXPECT_EQ(rec_.why, std::errc::connection_aborted);
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

// ---- zero-copy sends --------------------------------------------------------------------

// Everything the connection handed to send and send_zc, in order.
std::string all_sent(const FakeEngine& e) {
  std::string all;
  for (const auto& op : e.history()) {
    if (op.kind == OpKind::Send || op.kind == OpKind::SendZc) all += op.data;
  }
  return all;
}

std::size_t count_ops(const FakeEngine& e, OpKind kind) {
  std::size_t n = 0;
  for (const auto& op : e.history()) n += op.kind == kind ? 1 : 0;
  return n;
}

TEST_F(FakeStackTest, ZeroCopyBufferStaysPinnedUntilItsNotification) {
  make(FakeMode::Manual, 8);
  accept_one();
  const std::string first = "0123456789ABCDEF";  // 16 >= 8: send_zc
  rec_.conn->send(first);
  run();
  ASSERT_EQ(engine_->pending_count(OpKind::SendZc), 1u);
  const std::span<const char> pinned = engine_->pending().back().source;
  ASSERT_EQ(pinned.size(), first.size());
  ASSERT_TRUE(engine_->complete_next(OpKind::SendZc, 16, io::kMore));  // result first
  run();
  EXPECT_EQ(rec_.drained, 1);
  EXPECT_EQ(rec_.conn->pending_output(), 0u);
  // More writes go out meanwhile, from other buffers; the pinned one is left untouched.
  rec_.conn->send(std::string(32, 'x'));
  run();
  ASSERT_TRUE(engine_->complete_next(OpKind::SendZc, 32, io::kMore));
  run();
  rec_.conn->send("tail");  // 4 < 8: plain send
  run();
  ASSERT_TRUE(engine_->complete_next(OpKind::Send, 4));
  run();
  EXPECT_EQ(std::memcmp(pinned.data(), first.data(), first.size()), 0);
  EXPECT_EQ(all_sent(*engine_), first + std::string(32, 'x') + "tail");
  EXPECT_EQ(stack_->stats().zerocopy_sends, 2u);
  EXPECT_EQ(count_ops(*engine_, OpKind::Send), 1u);
  ASSERT_TRUE(engine_->complete_next(OpKind::SendZc, 0, io::kNotification));
  ASSERT_TRUE(engine_->complete_next(OpKind::SendZc, 0, io::kNotification));
  run();
  // Released buffers are reused: the next big write needs no new one, and still works.
  rec_.conn->send(std::string(20, 'y'));
  run();
  ASSERT_TRUE(engine_->complete_next(OpKind::SendZc, 20, 0));  // no kMore: no notification
  run();
  EXPECT_EQ(rec_.conn->pending_output(), 0u);
  EXPECT_EQ(stack_->stats().zerocopy_sends, 3u);
}

TEST_F(FakeStackTest, PartialZeroCopySendsContinueFromTheRightOffset) {
  make(FakeMode::Auto, 4);
  accept_one();
  engine_->script(OpKind::SendZc, 3);  // the fake adds kMore and the notification
  engine_->script(OpKind::SendZc, 4);
  rec_.conn->send("abcdefghij");
  run();
  EXPECT_EQ(engine_->sent(kFd), "abcdefghij");
  // 10 via zc (3 sent), 7 via zc (4 sent), then the 3-byte tail below the threshold: plain.
  EXPECT_EQ(stack_->stats().zerocopy_sends, 2u);
  ASSERT_EQ(count_ops(*engine_, OpKind::Send), 1u);
  EXPECT_EQ(engine_->history().back().data, "hij");
  EXPECT_EQ(rec_.drained, 1);
  EXPECT_EQ(rec_.conn->pending_output(), 0u);
  EXPECT_EQ(stack_->stats().bytes_sent, 10u);
}

TEST_F(FakeStackTest, ZeroCopyRefusalFallsBackToPlainSendForGood) {
  make(FakeMode::Auto, 8);
  accept_one();
  // As the kernel does for a socket without zero-copy: the error with kMore, then the
  // notification (held back here, so the buffer stays pinned meanwhile).
  engine_->script(OpKind::SendZc, -EOPNOTSUPP, io::kMore);
  const std::string big(100, 'b');
  rec_.conn->send(big);
  run();
  EXPECT_EQ(engine_->sent(kFd), big);  // the same bytes again, with plain send
  EXPECT_EQ(rec_.closes, 0);
  rec_.conn->send(std::string(64, 'c'));
  run();
  EXPECT_EQ(engine_->sent(kFd), big + std::string(64, 'c'));
  EXPECT_EQ(stack_->stats().zerocopy_sends, 1u);
  EXPECT_EQ(stack_->stats().zerocopy_fallbacks, 1u);
  EXPECT_EQ(count_ops(*engine_, OpKind::Send), 2u);
  // Closing does not wait for the notification; the connection is freed when it comes.
  rec_.conn->close();
  run();
  EXPECT_EQ(rec_.closes, 1);
  EXPECT_FALSE(rec_.why);
  EXPECT_EQ(stack_->connection_count(), 0u);
  ASSERT_TRUE(engine_->complete_next(OpKind::SendZc, 0, io::kNotification));
  run();
  EXPECT_EQ(engine_->pending_count(OpKind::SendZc), 0u);
}

TEST_F(FakeStackTest, ZeroCopyErrorClosesWithThatError) {
  make(FakeMode::Auto, 8);
  accept_one();
  engine_->script(OpKind::SendZc, -ECONNRESET, io::kMore);
  rec_.conn->send(std::string(100, 'e'));
  run();
  EXPECT_EQ(rec_.closes, 1);
  EXPECT_EQ(rec_.why, std::errc::connection_reset);
  EXPECT_EQ(stack_->stats().zerocopy_fallbacks, 0u);
  ASSERT_TRUE(engine_->complete_next(OpKind::SendZc, 0, io::kNotification));
  run();
}

TEST_F(FakeStackTest, AbortWithZeroCopyInFlight) {
  make(FakeMode::Manual, 8);
  accept_one();
  rec_.conn->send(std::string(50, 'a'));
  run();
  ASSERT_TRUE(engine_->complete_next(OpKind::SendZc, 50, io::kMore));  // notification due
  run();
  rec_.conn->send(std::string(60, 'b'));
  run();
  ASSERT_EQ(engine_->pending_count(OpKind::SendZc), 2u);
  rec_.conn->abort();
  run();  // the second is cancelled (no notification in the fake); the first cannot be
  EXPECT_EQ(rec_.closes, 1);
  EXPECT_EQ(rec_.why, std::errc::connection_aborted);
  EXPECT_EQ(stack_->connection_count(), 0u);
  ASSERT_EQ(engine_->pending_count(OpKind::SendZc), 1u);
  ASSERT_TRUE(engine_->complete_next(OpKind::SendZc, 0, io::kNotification));
  run();
}

TEST_F(FakeStackTest, ZeroCopyNeverBelowTheThresholdOrWhenOff) {
  make(FakeMode::Auto);  // default threshold: 16 KiB
  accept_one();
  for (int i = 0; i < 10; ++i) {
    rec_.conn->send(std::string(1024, 'm'));
    run();
  }
  rec_.conn->send(std::string(16 * 1024, 'M'));
  run();
  EXPECT_EQ(stack_->stats().zerocopy_sends, 1u);
  EXPECT_EQ(engine_->sent(kFd).size(), 10u * 1024 + 16 * 1024);

  make(FakeMode::Auto, 0);  // off
  rec_ = Recorder{};
  accept_one();
  rec_.conn->send(std::string(1 << 20, 'z'));
  run();
  EXPECT_EQ(stack_->stats().zerocopy_sends, 0u);
  EXPECT_EQ(count_ops(*engine_, OpKind::SendZc), 0u);
  EXPECT_EQ(engine_->sent(kFd).size(), 1u << 20);
}

}  // namespace
}  // namespace salvo::net
