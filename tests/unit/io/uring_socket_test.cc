// SPDX-License-Identifier: Apache-2.0
// UringEngine on real loopback sockets: probe, timers, cancel, multishot accept, connect,
// multishot recv over a buffer ring (incl. -ENOBUFS and recycle), send and send_zc.
#include <fcntl.h>

#include <cerrno>
#include <cstdio>
#include <chrono>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "io_test_util.h"

namespace salvo::io::test {
namespace {

using namespace std::chrono_literals;

class UringSocket : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_ = make_engine();
    if (!engine_) GTEST_SKIP() << "io_uring unavailable on this kernel";
  }
  std::unique_ptr<Engine> engine_;
};

TEST(UringProbe, DescribeAndUnknownBackend) {
  std::string why;
  auto e = create_engine("uring", EngineOptions{.queue_depth = 64}, &why);
  if (!e) GTEST_SKIP() << why;
  EXPECT_EQ((*e)->name(), "uring");
  EXPECT_FALSE((*e)->features().describe().empty());
  std::printf("features: %s\n", (*e)->features().describe().c_str());
  auto bad = create_engine("dpdk", EngineOptions{}, &why);
  ASSERT_FALSE(bad);
  EXPECT_NE(why.find("dpdk"), std::string::npos);
}

TEST(UringProbe, FallsBackWithoutTaskrunFlags) {
  auto e = make_engine(EngineOptions{.queue_depth = 64, .try_taskrun_flags = false});
  if (!e) GTEST_SKIP();
  EXPECT_FALSE(e->features().defer_taskrun);
  EXPECT_FALSE(e->features().single_issuer);
  Recorder t;
  e->timeout(1ms, &t);
  ASSERT_TRUE(run_until(*e, [&] { return !t.calls.empty(); }));
  EXPECT_EQ(t.calls[0].res, -ETIME);
}

TEST_F(UringSocket, TimerFires) {
  Recorder t;
  auto start = std::chrono::steady_clock::now();
  engine_->timeout(20ms, &t);
  ASSERT_TRUE(run_until(*engine_, [&] { return !t.calls.empty(); }));
  EXPECT_EQ(t.calls[0].res, -ETIME);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 15ms);
}

TEST_F(UringSocket, TimerCancelGivesEcanceled) {
  Recorder t;
  engine_->timeout(10s, &t);
  engine_->run_once(0ms);
  engine_->cancel(&t);
  ASSERT_TRUE(run_until(*engine_, [&] { return !t.calls.empty(); }, 2000ms));
  EXPECT_EQ(t.calls[0].res, -ECANCELED);
  EXPECT_EQ(to_error_code(t.calls[0].res), std::errc::operation_canceled);
}

TEST_F(UringSocket, WaitForeverReturnsOnCompletion) {
  Recorder t;
  engine_->timeout(5ms, &t);
  EXPECT_EQ(engine_->run_once(kWaitForever), 1);
  EXPECT_EQ(t.calls.size(), 1u);
}

TEST_F(UringSocket, MultishotAcceptSeveral) {
  if (!engine_->features().multishot_accept) GTEST_SKIP() << "no multishot accept";
  Listener l;
  Recorder acc;
  engine_->accept_multishot(l.fd, &acc);
  engine_->run_once(0ms);
  int c[3];
  for (int& fd : c) fd = blocking_connect(l);
  ASSERT_TRUE(run_until(*engine_, [&] { return acc.calls.size() >= 3; }));
  for (const auto& call : acc.calls) {
    EXPECT_GE(call.res, 0);
    EXPECT_NE(call.flags & kMore, 0u);
    ::close(call.res);
  }
  engine_->cancel(&acc);
  ASSERT_TRUE(run_until(*engine_, [&] { return (acc.calls.back().flags & kMore) == 0; }));
  EXPECT_EQ(acc.calls.back().res, -ECANCELED);
  for (int fd : c) ::close(fd);
}

TEST_F(UringSocket, ConnectAndClose) {
  Listener l;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  Recorder conn;
  {
    sockaddr_in copy = l.addr;  // the engine copies the address: this may go away
    engine_->connect(fd, reinterpret_cast<sockaddr*>(&copy), sizeof(copy), &conn);
  }
  ASSERT_TRUE(run_until(*engine_, [&] { return !conn.calls.empty(); }));
  EXPECT_EQ(conn.calls[0].res, 0);
  Recorder closed;
  engine_->close(fd, &closed);
  ASSERT_TRUE(run_until(*engine_, [&] { return !closed.calls.empty(); }));
  EXPECT_EQ(closed.calls[0].res, 0);
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);
}

TEST_F(UringSocket, ConnectRefused) {
  Listener l;
  sockaddr_in addr = l.addr;
  ::close(l.fd);
  l.fd = -1;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  Recorder conn;
  engine_->connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr), &conn);
  ASSERT_TRUE(run_until(*engine_, [&] { return !conn.calls.empty(); }));
  EXPECT_EQ(to_error_code(conn.calls[0].res), std::errc::connection_refused);
  ::close(fd);
}

TEST_F(UringSocket, RecvMultishotEnobufsThenRecycle) {
  if (!engine_->features().multishot_recv) GTEST_SKIP() << "no multishot recv";
  auto ring = engine_->create_buffer_ring(4, 16);
  ASSERT_TRUE(ring) << ring.error().message();
  BufferRing& br = **ring;
  auto [c, s] = tcp_pair();
  std::string payload;
  for (int i = 0; i < 100; ++i) payload += static_cast<char>('a' + i % 26);
  ASSERT_EQ(::send(c, payload.data(), payload.size(), 0), 100);

  std::string got;
  std::vector<std::uint16_t> held;
  Recorder rx;
  rx.hook = [&](std::int32_t res, std::uint32_t flags) {
    if (res > 0) {
      ASSERT_NE(flags & kBufferSelected, 0u);
      auto b = br.buffer(buffer_id(flags));
      got.append(b.data(), static_cast<std::size_t>(res));
      held.push_back(buffer_id(flags));
    }
  };
  engine_->recv_multishot(s, br, &rx);
  // 4 buffers of 16 bytes: 64 bytes arrive, then the ring is empty and the op ends.
  ASSERT_TRUE(run_until(*engine_, [&] {
    return !rx.calls.empty() && (rx.calls.back().flags & kMore) == 0;
  }));
  EXPECT_EQ(rx.calls.back().res, -ENOBUFS);
  EXPECT_EQ(got.size(), 64u);
  // Contract: return buffers, then re-arm.
  for (auto id : held) br.recycle(id);
  held.clear();
  engine_->recv_multishot(s, br, &rx);
  ASSERT_TRUE(run_until(*engine_, [&] {
    if (got.size() == 100 && !held.empty()) {
      for (auto id : held) br.recycle(id);
      held.clear();
    }
    return got.size() == 100;
  }));
  EXPECT_EQ(got, payload);
  // EOF ends the multishot with res 0 and no kMore.
  ::close(c);
  ASSERT_TRUE(run_until(*engine_, [&] {
    return rx.calls.back().res == 0 && (rx.calls.back().flags & kMore) == 0;
  }));
  ::close(s);
}

TEST_F(UringSocket, RecvMultishotCancel) {
  if (!engine_->features().multishot_recv) GTEST_SKIP() << "no multishot recv";
  auto ring = engine_->create_buffer_ring(8, 64);
  ASSERT_TRUE(ring);
  auto [c, s] = tcp_pair();
  Recorder rx;
  engine_->recv_multishot(s, **ring, &rx);
  engine_->run_once(0ms);
  engine_->cancel(&rx);
  ASSERT_TRUE(run_until(*engine_, [&] { return !rx.calls.empty(); }));
  EXPECT_EQ(rx.calls.back().res, -ECANCELED);
  EXPECT_EQ(rx.calls.back().flags & kMore, 0u);
  ::close(c);
  ::close(s);
}

TEST_F(UringSocket, SendAndRecv) {
  auto [c, s] = tcp_pair();
  const std::string msg = "EHLO salvo.example\r\n";
  Recorder tx;
  engine_->send(c, msg, &tx);
  ASSERT_TRUE(run_until(*engine_, [&] { return !tx.calls.empty(); }));
  EXPECT_EQ(tx.calls[0].res, static_cast<int>(msg.size()));
  char buf[64];
  Recorder rx;
  engine_->recv(s, buf, &rx);
  ASSERT_TRUE(run_until(*engine_, [&] { return !rx.calls.empty(); }));
  ASSERT_EQ(rx.calls[0].res, static_cast<int>(msg.size()));
  EXPECT_EQ(std::string(buf, msg.size()), msg);

  iovec iov[2] = {{const_cast<char*>("a"), 1}, {const_cast<char*>("bc"), 2}};
  msghdr mh{};
  mh.msg_iov = iov;
  mh.msg_iovlen = 2;
  Recorder txm;
  engine_->sendmsg(c, &mh, &txm);
  ASSERT_TRUE(run_until(*engine_, [&] { return !txm.calls.empty(); }));
  EXPECT_EQ(txm.calls[0].res, 3);
  ASSERT_EQ(::recv(s, buf, sizeof(buf), 0), 3);
  EXPECT_EQ(std::string(buf, 3), "abc");
  ::close(c);
  ::close(s);
}

TEST_F(UringSocket, SendToClosedPeerIsAnErrorNotSigpipe) {
  auto [c, s] = tcp_pair();
  ::close(s);
  std::string big(1 << 16, 'x');
  Recorder tx;
  int res = 0;
  for (int i = 0; i < 50 && res >= 0; ++i) {
    tx.calls.clear();
    engine_->send(c, big, &tx);
    ASSERT_TRUE(run_until(*engine_, [&] { return !tx.calls.empty(); }));
    res = tx.calls[0].res;
  }
  EXPECT_TRUE(res == -EPIPE || res == -ECONNRESET) << res;
  ::close(c);
}

TEST_F(UringSocket, SendZcDeliversResultThenNotification) {
  if (!engine_->features().send_zc) GTEST_SKIP() << "kernel lacks IORING_OP_SEND_ZC";
  auto [c, s] = tcp_pair();
  std::string msg(4096, 'z');
  Recorder tx;
  engine_->send_zc(c, msg, &tx);
  ASSERT_TRUE(run_until(*engine_, [&] {
    return !tx.calls.empty() && (tx.calls.back().flags & kNotification) != 0;
  }));
  ASSERT_EQ(tx.calls.size(), 2u);
  EXPECT_EQ(tx.calls[0].res, 4096);
  EXPECT_NE(tx.calls[0].flags & kMore, 0u);
  EXPECT_EQ(tx.calls[1].flags & kMore, 0u);
  std::string got(4096, '\0');
  std::size_t n = 0;
  while (n < got.size()) {
    ssize_t r = ::recv(s, got.data() + n, got.size() - n, 0);
    ASSERT_GT(r, 0);
    n += static_cast<std::size_t>(r);
  }
  EXPECT_EQ(got, msg);
  ::close(c);
  ::close(s);
}

TEST_F(UringSocket, SqFullSubmitsAndRetries) {
  auto small = make_engine(EngineOptions{.queue_depth = 8});
  ASSERT_TRUE(small);
  std::vector<Recorder> timers(100);
  for (auto& t : timers) small->timeout(1ms, &t);
  ASSERT_TRUE(run_until(*small, [&] {
    for (auto& t : timers)
      if (t.calls.empty()) return false;
    return true;
  }));
  for (auto& t : timers) EXPECT_EQ(t.calls[0].res, -ETIME);
}

}  // namespace
}  // namespace salvo::io::test
