// SPDX-License-Identifier: Apache-2.0
// KernelStack zero-copy sends on real loopback sockets and the real io_uring engine:
// large transfers with send_zc forced on (threshold 1, local peers allowed) checked byte
// for byte, in plaintext and under TLS; small messages that must never use it at the
// default threshold; the default that keeps it off towards local peers; and a peer that
// stops reading, which must not keep an aborted connection (and its pinned buffers) alive.
#include <salvo/net/stack.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <salvo/io/engine.h>

#include "loopback_fixture.h"
#include "support/cert_factory.h"

namespace salvo::net {
namespace {

using namespace std::chrono_literals;

using testing::make_pattern;
using testing::pattern;

// Counts received bytes and checks them against pattern(); optionally echoes them.
struct Peer : ConnectHandler, ConnectionHandler {
  Connection* conn = nullptr;
  bool echo = false;
  std::size_t received = 0;
  std::size_t errors = 0;
  int closes = 0;
  std::error_code why;
  std::function<void(Connection&)> on_ready;  // after connect (or accept)

  void on_connect(Connection* c, std::error_code) noexcept override {
    if (c == nullptr) return;
    conn = c;
    c->set_handler(this);
    if (on_ready) on_ready(*c);
  }
  void on_data(Connection& c, ByteBuffer& in) noexcept override {
    auto v = in.view();
    for (std::size_t i = 0; i < v.size(); ++i) errors += v[i] != pattern(received + i) ? 1 : 0;
    received += v.size();
    if (echo) {
      c.output().append(v);
      c.flush();
    }
    in.consume(v.size());
  }
  void on_close(Connection&, std::error_code w) noexcept override {
    ++closes;
    why = w;
    conn = nullptr;
  }
};

struct Server : AcceptHandler {
  std::vector<std::unique_ptr<Peer>> peers;
  std::function<void(Peer&, Connection&)> setup;
  void on_accept(Listener&, Connection& c) noexcept override {
    peers.push_back(std::make_unique<Peer>());
    Peer& p = *peers.back();
    p.conn = &c;
    c.set_handler(&p);
    if (setup) setup(p, c);
  }
  int closed() const {
    int n = 0;
    for (auto& p : peers) n += p->closes;
    return n;
  }
};

class ZeroCopyTest : public testing::LoopbackFixture {
 protected:
  void SetUp() override {
    LoopbackFixture::SetUp();
    if (IsSkipped()) return;
    if (!engine_->features().send_zc) GTEST_SKIP() << "no IORING_OP_SEND_ZC";
  }
  void make(std::size_t threshold) {
    stack_.reset();
    KernelStackOptions o;
    o.zerocopy_threshold = threshold;
    o.zerocopy_to_local_peers = true;  // loopback is all a unit test has
    stack_ = make_kernel_stack(*engine_, o);
  }
  bool run_until(const std::function<bool()>& pred, Duration limit = 30s) {
    return LoopbackFixture::run_until(pred, limit);
  }

  // n clients each send `bytes` of pattern to an echo server and get every byte back.
  void echo(int n, std::size_t bytes) {
    Server s;
    s.setup = [](Peer& p, Connection&) { p.echo = true; };
    Listener* l = listen(s);
    ASSERT_NE(l, nullptr);
    std::vector<std::unique_ptr<Peer>> clients;
    for (int i = 0; i < n; ++i) {
      clients.push_back(std::make_unique<Peer>());
      clients.back()->on_ready = [bytes](Connection& c) { c.send(make_pattern(bytes)); };
      stack_->connect(l->address(), nullptr, 5s, *clients.back());
    }
    ASSERT_TRUE(run_until([&] {
      for (auto& c : clients) {
        if (c->received < bytes) return false;
      }
      return true;
    }, 60s));
    for (auto& c : clients) {
      EXPECT_EQ(c->received, bytes);
      EXPECT_EQ(c->errors, 0u);
      EXPECT_EQ(c->conn->pending_output(), 0u);
      c->conn->close();
    }
    ASSERT_TRUE(run_until([&] { return stack_->connection_count() == 0; }));
    for (auto& c : clients) {
      EXPECT_EQ(c->closes, 1);
      EXPECT_FALSE(c->why) << c->why.message();
    }
    for (auto& p : s.peers) {
      EXPECT_EQ(p->received, bytes);
      EXPECT_EQ(p->errors, 0u);
    }
    Stats st = stack_->stats();
    EXPECT_EQ(st.bytes_sent, 2 * static_cast<std::uint64_t>(n) * bytes);
    EXPECT_EQ(st.bytes_received, st.bytes_sent);
  }

};

TEST_F(ZeroCopyTest, EightMegabytesEchoedWithZeroCopyForcedOn) {
  make(1);
  echo(1, 8 << 20);
  EXPECT_GT(stack_->stats().zerocopy_sends, 0u);
  EXPECT_EQ(stack_->stats().zerocopy_fallbacks, 0u);
}

TEST_F(ZeroCopyTest, TwentyConnectionsWithZeroCopyForcedOn) {
  make(1);
  echo(20, 256 * 1024 + 17);  // odd size: the last write is short
  EXPECT_GT(stack_->stats().zerocopy_sends, 20u);
}

TEST_F(ZeroCopyTest, GracefulCloseFlushesZeroCopyOutput) {
  make(1);
  constexpr std::size_t kBytes = 4 << 20;
  Server s;
  s.setup = [&](Peer&, Connection& c) {
    c.send(make_pattern(kBytes));
    c.close();  // on_close comes after the data, without waiting for notifications
  };
  Listener* l = listen(s);
  ASSERT_NE(l, nullptr);
  Peer client;
  stack_->connect(l->address(), nullptr, 5s, client);
  ASSERT_TRUE(run_until([&] { return client.closes == 1 && s.closed() == 1; }));
  EXPECT_EQ(client.received, kBytes);
  EXPECT_EQ(client.errors, 0u);
  EXPECT_FALSE(client.why) << client.why.message();
  EXPECT_FALSE(s.peers[0]->why) << s.peers[0]->why.message();
  EXPECT_GT(stack_->stats().zerocopy_sends, 0u);
}

TEST_F(ZeroCopyTest, LocalPeersGetPlainSendByDefault) {
  KernelStackOptions o;
  o.zerocopy_threshold = 1;  // zerocopy_to_local_peers stays false
  stack_ = make_kernel_stack(*engine_, o);
  echo(2, 1 << 20);
  EXPECT_EQ(stack_->stats().zerocopy_sends, 0u);
}

TEST_F(ZeroCopyTest, OneKilobyteMessagesNeverUseZeroCopyAtTheDefault) {
  make(KernelStackOptions{}.zerocopy_threshold);  // the default threshold, local allowed
  constexpr int kRounds = 200;
  constexpr std::size_t kSize = 1024;
  Server s;
  s.setup = [](Peer& p, Connection&) { p.echo = true; };
  Listener* l = listen(s);
  ASSERT_NE(l, nullptr);
  Peer client;
  std::size_t sent = 0;
  auto next = [&](Connection& c) {
    c.send(make_pattern(kSize, sent));
    sent += kSize;
  };
  client.on_ready = next;
  stack_->connect(l->address(), nullptr, 5s, client);
  for (int i = 1; i <= kRounds; ++i) {  // ping-pong: one 1 KiB message in flight
    ASSERT_TRUE(run_until([&] { return client.received == i * kSize; })) << i;
    if (i < kRounds) next(*client.conn);
  }
  EXPECT_EQ(client.errors, 0u);
  Stats st = stack_->stats();
  EXPECT_EQ(st.zerocopy_sends, 0u);
  EXPECT_EQ(st.bytes_sent, 2u * kRounds * kSize);
  client.conn->close();
  ASSERT_TRUE(run_until([&] { return stack_->connection_count() == 0; }));
}

TEST_F(ZeroCopyTest, AbortWhilePeerDoesNotReadFreesPromptly) {
  make(1);
  Server s;
  s.setup = [](Peer&, Connection& c) { c.send(make_pattern(16 << 20)); };
  Listener* l = listen(s);
  ASSERT_NE(l, nullptr);
  // A plain client that connects and never reads: the server's data piles up in the
  // socket buffers, so its zero-copy notifications cannot arrive by themselves.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::connect(fd, l->address().sa(), l->address().len()), 0);
  ASSERT_TRUE(run_until([&] { return !s.peers.empty(); }));
  ASSERT_TRUE(run_until([&] { return stack_->stats().zerocopy_sends > 0; }));
  auto settle = MonoClock::now() + 100ms;
  run_until([&] { return MonoClock::now() > settle; });
  ASSERT_NE(s.peers[0]->conn, nullptr);
  s.peers[0]->conn->abort();
  ASSERT_TRUE(run_until([&] { return s.closed() == 1; }, 5s));
  EXPECT_EQ(s.peers[0]->why, std::errc::connection_aborted);
  // SO_LINGER 0 reset the stream: the queued data is dropped and every notification
  // arrives, so the stack is destroyed without its 2 s drain timing out.
  auto t0 = MonoClock::now();
  stack_.reset();
  EXPECT_LT(MonoClock::now() - t0, 1s);
  ::close(fd);
}

// ---- TLS: the ciphertext buffer is what send_zc sends --------------------------------

class ZeroCopyTlsTest : public ZeroCopyTest {
 protected:
  void SetUp() override {
    if (!test::CertFactory::shared().ok()) {
      GTEST_SKIP() << "cannot make certificates: " << test::CertFactory::shared().error();
    }
    ZeroCopyTest::SetUp();
    if (IsSkipped()) return;
    auto t = testing::make_tls_contexts();
    server_ctx_ = std::move(t.server);
    client_ctx_ = std::move(t.client);
  }
  std::unique_ptr<TlsContext> server_ctx_, client_ctx_;
};

TEST_F(ZeroCopyTlsTest, FourMegabytesEchoedOverTlsWithZeroCopy) {
  make(1);
  constexpr std::size_t kBytes = 4 << 20;
  Server s;
  s.setup = [&](Peer& p, Connection& c) {
    p.echo = true;
    c.start_tls(*server_ctx_, "");
  };
  Listener* l = listen(s);
  ASSERT_NE(l, nullptr);
  struct TlsClient : Peer {
    const TlsContext* ctx = nullptr;
    void on_tls_ready(Connection& c) noexcept override { c.send(make_pattern(4 << 20)); }
  } client;
  client.ctx = client_ctx_.get();
  client.on_ready = [&](Connection& c) { c.start_tls(*client.ctx, "localhost"); };
  stack_->connect(l->address(), nullptr, 5s, client);
  ASSERT_TRUE(run_until([&] { return client.received == kBytes; }, 60s));
  EXPECT_EQ(client.errors, 0u);
  EXPECT_EQ(s.peers[0]->received, kBytes);
  EXPECT_EQ(s.peers[0]->errors, 0u);
  ASSERT_NE(client.conn->tls(), nullptr);
  client.conn->close();
  ASSERT_TRUE(run_until([&] { return client.closes == 1 && s.closed() == 1; }));
  EXPECT_FALSE(client.why) << client.why.message();
  EXPECT_FALSE(s.peers[0]->why) << s.peers[0]->why.message();
  Stats st = stack_->stats();
  EXPECT_GT(st.zerocopy_sends, 0u);
  EXPECT_GT(st.bytes_sent, 2 * kBytes);  // ciphertext: records add overhead
  EXPECT_EQ(st.bytes_received, st.bytes_sent);
}

}  // namespace
}  // namespace salvo::net
