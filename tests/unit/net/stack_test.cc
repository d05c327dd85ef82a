// SPDX-License-Identifier: Apache-2.0
// KernelStack on real loopback sockets and the real io_uring engine, driven by run_once()
// in the test thread: echo, many connections, large transfers, connect errors, timeouts,
// pause/resume, graceful close, close_all, and STARTTLS with injected plaintext.
#include <salvo/net/stack.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <salvo/io/engine.h>

#include "loopback_fixture.h"
#include "support/cert_factory.h"

namespace salvo::net {
namespace {

using namespace std::chrono_literals;

SocketAddress addr(const char* text) {
  auto a = SocketAddress::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(SocketAddress{});
}

using testing::make_pattern;
using testing::pattern;

// A connection handler that records everything; optional hooks customize it.
struct Peer : ConnectHandler, ConnectionHandler {
  Connection* conn = nullptr;
  bool connect_reported = false;
  std::error_code connect_error;
  std::string received;
  std::size_t received_bytes = 0;
  std::size_t pattern_errors = 0;
  bool check_pattern = false;  // verify bytes against pattern() instead of storing them
  int closes = 0;
  std::error_code close_why;
  int drained = 0;
  bool tls_ready = false;
  std::string send_on_connect;
  std::function<void(Connection&, ByteBuffer&)> on_data_hook;
  std::function<void(Connection&)> on_tls_ready_hook;

  void on_connect(Connection* c, std::error_code why) noexcept override {
    connect_reported = true;
    connect_error = why;
    if (c == nullptr) return;
    conn = c;
    c->set_handler(this);
    if (!send_on_connect.empty()) c->send(send_on_connect);
  }
  void on_data(Connection& c, ByteBuffer& in) noexcept override {
    if (on_data_hook) {
      on_data_hook(c, in);
      return;
    }
    take(in);
  }
  void take(ByteBuffer& in) {
    if (check_pattern) {
      auto v = in.view();
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] != pattern(received_bytes + i)) ++pattern_errors;
      }
    } else {
      received.append(in.view());
    }
    received_bytes += in.size();
    in.consume(in.size());
  }
  void on_drained(Connection&) noexcept override { ++drained; }
  void on_tls_ready(Connection& c) noexcept override {
    tls_ready = true;
    if (on_tls_ready_hook) on_tls_ready_hook(c);
  }
  void on_close(Connection&, std::error_code why) noexcept override {
    ++closes;
    close_why = why;
    conn = nullptr;
  }
};

// Accepts connections, giving each a Peer made by `make` (echo by default).
struct Server : AcceptHandler {
  std::vector<std::unique_ptr<Peer>> peers;
  std::function<void(Peer&, Connection&)> setup;
  int accepted = 0;

  void on_accept(Listener&, Connection& c) noexcept override {
    ++accepted;
    peers.push_back(std::make_unique<Peer>());
    Peer& p = *peers.back();
    p.conn = &c;
    c.set_handler(&p);
    if (setup) {
      setup(p, c);
    } else {
      p.on_data_hook = [](Connection& conn, ByteBuffer& in) {  // echo
        conn.output().append(in.view());
        in.consume(in.size());
        conn.flush();
      };
    }
  }
  int closed() const {
    int n = 0;
    for (auto& p : peers) n += p->closes;
    return n;
  }
};

class StackTest : public testing::LoopbackFixture {
 protected:
  void SetUp() override {
    LoopbackFixture::SetUp();
    if (IsSkipped()) return;
    stack_ = make_kernel_stack(*engine_);
  }
  bool run_until(const std::function<bool()>& pred, Duration limit = 10s) {
    return LoopbackFixture::run_until(pred, limit);
  }

  // n clients each send `bytes` of pattern to an echo server and check what comes back.
  void echo_clients(int n, std::size_t bytes) {
    Server s;
    Listener* l = listen(s);
    ASSERT_NE(l, nullptr);
    std::vector<std::unique_ptr<Peer>> clients;
    for (int i = 0; i < n; ++i) {
      clients.push_back(std::make_unique<Peer>());
      clients.back()->check_pattern = true;
      clients.back()->send_on_connect = make_pattern(bytes);
      stack_->connect(l->address(), nullptr, 5s, *clients.back());
    }
    ASSERT_TRUE(run_until([&] {
      for (auto& c : clients) {
        if (c->received_bytes < bytes) return false;
      }
      return true;
    }, 60s));
    for (auto& c : clients) {
      EXPECT_EQ(c->received_bytes, bytes);
      EXPECT_EQ(c->pattern_errors, 0u);
    }
    EXPECT_EQ(s.accepted, n);
    for (auto& c : clients) c->conn->close();
    ASSERT_TRUE(run_until([&] { return stack_->connection_count() == 0; }));
    for (auto& c : clients) EXPECT_EQ(c->closes, 1);
    EXPECT_EQ(s.closed(), n);
  }

};

TEST_F(StackTest, ListensOnPortZeroAndOtherLoopbacks) {
  Server s;
  for (const char* where : {"127.0.0.1:0", "127.0.0.2:0", "127.0.0.3:0"}) {
    Listener* l = listen(s, where);
    ASSERT_NE(l, nullptr);
    EXPECT_NE(l->address().port(), 0);
    EXPECT_EQ(l->address().ip(), addr(where).ip());
    Peer client;
    client.send_on_connect = "ping";
    stack_->connect(l->address(), nullptr, 5s, client);
    ASSERT_TRUE(run_until([&] { return client.received == "ping"; })) << where;
    ASSERT_NE(client.conn, nullptr);
    EXPECT_TRUE(client.conn->peer() == l->address());
    EXPECT_EQ(s.peers.back()->conn->local().ip(), addr(where).ip());
    client.conn->close();
    ASSERT_TRUE(run_until([&] { return client.closes == 1; }));
  }
  // A second listener on a taken address fails at once, naming the cause.
  Server other;
  Listener* first = listen(s);
  ASSERT_NE(first, nullptr);
  auto again = stack_->listen(first->address(), ReusePort::No, other);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error(), std::errc::address_in_use);
  first->close();
  first->close();  // idempotent
  ASSERT_TRUE(run_until([&] { return stack_->connection_count() == 0; }));
}

TEST_F(StackTest, EchoAndOrderlyClose) {
  Server s;
  Listener* l = listen(s);
  ASSERT_NE(l, nullptr);
  Peer client;
  client.send_on_connect = "hello, salvo\r\n";
  stack_->connect(l->address(), nullptr, 5s, client);
  ASSERT_TRUE(run_until([&] { return client.received.size() == 14; }));
  EXPECT_EQ(client.received, "hello, salvo\r\n");
  EXPECT_FALSE(client.connect_error);
  EXPECT_GE(client.drained, 1);
  EXPECT_EQ(stack_->connection_count(), 2u);
  client.conn->close();
  ASSERT_TRUE(run_until([&] { return client.closes == 1 && s.closed() == 1; }));
  EXPECT_FALSE(client.close_why) << client.close_why.message();
  EXPECT_FALSE(s.peers[0]->close_why) << s.peers[0]->close_why.message();
  ASSERT_TRUE(run_until([&] { return stack_->connection_count() == 0; }));
  run_for(20ms);
  EXPECT_EQ(client.closes, 1);
  EXPECT_EQ(s.closed(), 1);
}


TEST_F(StackTest, HundredConcurrentConnections) {
  echo_clients(100, 64 * 1024);
}

TEST_F(StackTest, WorksWithoutABufferRing) {
  KernelStackOptions o;
  o.recv_buffers = 0;  // single-shot recv into a per-connection buffer
  stack_ = make_kernel_stack(*engine_, o);
  echo_clients(10, 1 << 20);
}

TEST_F(StackTest, TinyBufferRingRecoversFromEnobufs) {
  KernelStackOptions o;
  o.recv_buffers = 2;
  o.recv_buffer_size = 512;
  stack_ = make_kernel_stack(*engine_, o);
  echo_clients(20, 128 * 1024);
  Stats st = stack_->stats();
  EXPECT_GT(st.recv_enobufs, 0u);
  EXPECT_GT(st.recv_rearms, 0u);
  EXPECT_EQ(st.accepted, 20u);
  EXPECT_EQ(st.connects, 20u);
  EXPECT_EQ(st.closed, 40u);
  EXPECT_EQ(st.bytes_received, st.bytes_sent);
}

TEST_F(StackTest, EightMegabytesBothWays) {
  constexpr std::size_t kBytes = 8 << 20;
  Server s;
  s.setup = [&](Peer& p, Connection& c) {
    p.check_pattern = true;
    c.send(make_pattern(kBytes));
  };
  Listener* l = listen(s);
  ASSERT_NE(l, nullptr);
  Peer client;
  client.check_pattern = true;
  client.send_on_connect = make_pattern(kBytes);
  stack_->connect(l->address(), nullptr, 5s, client);
  ASSERT_TRUE(run_until([&] {
    return client.received_bytes == kBytes && !s.peers.empty() &&
           s.peers[0]->received_bytes == kBytes;
  }, 60s));
  EXPECT_EQ(client.pattern_errors, 0u);
  EXPECT_EQ(s.peers[0]->pattern_errors, 0u);
  EXPECT_EQ(client.conn->pending_output(), 0u);
}

TEST_F(StackTest, GracefulCloseFlushesPendingOutput) {
  constexpr std::size_t kBytes = 2 << 20;
  Server s;
  s.setup = [&](Peer&, Connection& c) {
    c.send(make_pattern(kBytes));
    c.close();
  };
  Listener* l = listen(s);
  ASSERT_NE(l, nullptr);
  Peer client;
  client.check_pattern = true;
  stack_->connect(l->address(), nullptr, 5s, client);
  ASSERT_TRUE(run_until([&] { return client.closes == 1; }, 30s));
  EXPECT_EQ(client.received_bytes, kBytes);
  EXPECT_EQ(client.pattern_errors, 0u);
  EXPECT_FALSE(client.close_why) << client.close_why.message();
  ASSERT_TRUE(run_until([&] { return s.closed() == 1; }));
  EXPECT_FALSE(s.peers[0]->close_why);
}

TEST_F(StackTest, ConnectRefused) {
  // A bound socket that does not listen: SYNs are answered with RST.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  SocketAddress a = addr("127.0.0.1:0");
  ASSERT_EQ(::bind(fd, a.sa(), a.len()), 0);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len), 0);
  SocketAddress target = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  Peer client;
  stack_->connect(target, nullptr, 5s, client);
  EXPECT_FALSE(client.connect_reported);  // never inside connect()
  ASSERT_TRUE(run_until([&] { return client.connect_reported; }));
  EXPECT_EQ(client.connect_error, std::errc::connection_refused) << client.connect_error.message();
  EXPECT_EQ(client.conn, nullptr);
  ::close(fd);
}

TEST_F(StackTest, ConnectErrorsBeforeTheNetwork) {
  Peer bad_source;
  SocketAddress from = addr("192.0.2.77:0");  // not a local address: bind fails
  stack_->connect(addr("127.0.0.1:9"), &from, 1s, bad_source);
  EXPECT_FALSE(bad_source.connect_reported);
  ASSERT_TRUE(run_until([&] { return bad_source.connect_reported; }));
  EXPECT_EQ(bad_source.connect_error, std::errc::address_not_available);
  Peer empty;
  stack_->connect(SocketAddress{}, nullptr, 1s, empty);
  ASSERT_TRUE(run_until([&] { return empty.connect_reported; }));
  EXPECT_EQ(empty.connect_error, std::errc::invalid_argument);
}

TEST_F(StackTest, ConnectTimeout) {
  // A listener that never accepts with a backlog of 0: once its queue is full the kernel
  // drops further SYNs, so those connects hang until our timeout.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  SocketAddress a = addr("127.0.0.1:0");
  ASSERT_EQ(::bind(fd, a.sa(), a.len()), 0);
  ASSERT_EQ(::listen(fd, 0), 0);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len), 0);
  SocketAddress target = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  std::vector<std::unique_ptr<Peer>> clients;
  for (int i = 0; i < 6; ++i) {
    clients.push_back(std::make_unique<Peer>());
    stack_->connect(target, nullptr, 300ms, *clients.back());
  }
  ASSERT_TRUE(run_until([&] {
    for (auto& c : clients) {
      if (!c->connect_reported) return false;
    }
    return true;
  }));
  int timed_out = 0;
  for (auto& c : clients) {
    if (c->connect_error == std::errc::timed_out) ++timed_out;
    if (c->conn) c->conn->abort();
  }
  ::close(fd);
  if (timed_out == 0) GTEST_SKIP() << "the kernel accepted every SYN; cannot provoke a timeout";
  EXPECT_GE(timed_out, 1);
  ASSERT_TRUE(run_until([&] { return stack_->connection_count() == 0; }));
}

TEST_F(StackTest, ConnectFromASourceAddress) {
  Server s;
  Listener* l = listen(s);
  ASSERT_NE(l, nullptr);
  Peer client;
  client.send_on_connect = "x";
  SocketAddress from = addr("127.0.0.2:0");
  stack_->connect(l->address(), &from, 5s, client);
  ASSERT_TRUE(run_until([&] { return client.received == "x"; }));
  EXPECT_EQ(client.conn->local().ip(), "127.0.0.2");
  EXPECT_EQ(s.peers[0]->conn->peer().ip(), "127.0.0.2");
}

TEST_F(StackTest, IdleTimeout) {
  Server s;
  s.setup = [](Peer&, Connection& c) { c.set_idle_timeout(150ms); };
  Listener* l = listen(s);
  ASSERT_NE(l, nullptr);
  Peer client;
  stack_->connect(l->address(), nullptr, 5s, client);
  auto start = MonoClock::now();
  ASSERT_TRUE(run_until([&] { return s.closed() == 1; }));
  EXPECT_GE(MonoClock::now() - start, 140ms);
  EXPECT_EQ(s.peers[0]->close_why, std::errc::timed_out);
  ASSERT_TRUE(run_until([&] { return client.closes == 1; }));
}

TEST_F(StackTest, IdleTimeoutLastWordsReachThePeer) {
  struct Polite : Peer {
    bool on_idle_timeout(Connection& c) noexcept override {
      c.send("421 4.4.2 timeout\r\n");
      return true;
    }
  };
  Server s;
  s.setup = [](Peer&, Connection& c) { c.set_idle_timeout(100ms); };
  Listener* l = listen(s);
  ASSERT_NE(l, nullptr);
  Peer client;
  stack_->connect(l->address(), nullptr, 5s, client);
  ASSERT_TRUE(run_until([&] { return s.peers.size() == 1; }));
  // Swap in a handler that says goodbye on the idle timer.
  auto polite = std::make_unique<Polite>();
  polite->conn = s.peers[0]->conn;
  s.peers[0]->conn->set_handler(polite.get());
  ASSERT_TRUE(run_until([&] { return polite->closes == 1 && client.closes == 1; }));
  EXPECT_EQ(polite->close_why, std::errc::timed_out);
  EXPECT_EQ(client.received, "421 4.4.2 timeout\r\n");
}

TEST_F(StackTest, IdleTimerIsResetByTraffic) {
  Server s;
  s.setup = [](Peer& p, Connection& c) {
    c.set_idle_timeout(600ms);
    p.on_data_hook = [&p](Connection&, ByteBuffer& in) { p.take(in); };
  };
  Listener* l = listen(s);
  ASSERT_NE(l, nullptr);
  Peer client;
  stack_->connect(l->address(), nullptr, 5s, client);
  ASSERT_TRUE(run_until([&] { return client.conn != nullptr; }));
  for (int i = 0; i < 6; ++i) {  // 600 ms of traffic every 100 ms
    run_for(100ms);
    client.conn->send("k");
  }
  EXPECT_EQ(s.closed(), 0);
  ASSERT_TRUE(run_until([&] { return s.closed() == 1; }));
  EXPECT_EQ(s.peers[0]->received, "kkkkkk");
}

TEST_F(StackTest, PeerCloseAndAbort) {
  Server s;
  Listener* l = listen(s);
  ASSERT_NE(l, nullptr);
  Peer a, b;
  stack_->connect(l->address(), nullptr, 5s, a);
  stack_->connect(l->address(), nullptr, 5s, b);
  ASSERT_TRUE(run_until([&] { return a.conn && b.conn && s.accepted == 2; }));
  a.conn->close();
  b.conn->abort();
  ASSERT_TRUE(run_until([&] { return s.closed() == 2 && a.closes == 1 && b.closes == 1; }));
  EXPECT_FALSE(a.close_why);
  EXPECT_EQ(b.close_why, std::errc::connection_aborted);
  ASSERT_TRUE(run_until([&] { return stack_->connection_count() == 0; }));
}

TEST_F(StackTest, AcceptWithoutAHandlerDropsTheConnection) {
  Server s;
  s.setup = [](Peer&, Connection& c) { c.set_handler(nullptr); };
  Listener* l = listen(s);
  ASSERT_NE(l, nullptr);
  Peer client;
  client.send_on_connect = "hello?";
  stack_->connect(l->address(), nullptr, 5s, client);
  ASSERT_TRUE(run_until([&] { return client.closes == 1; }));
  EXPECT_EQ(s.closed(), 0);  // nobody to tell
  ASSERT_TRUE(run_until([&] { return stack_->connection_count() == 0; }));
}

TEST_F(StackTest, PauseAndResume) {
  Server s;
  Peer* server_peer = nullptr;
  int calls = 0;
  s.setup = [&](Peer& p, Connection&) {
    server_peer = &p;
    p.on_data_hook = [&](Connection& c, ByteBuffer& in) {
      ++calls;
      p.take(in);
      if (calls == 1) c.pause_reading();
    };
  };
  Listener* l = listen(s);
  ASSERT_NE(l, nullptr);
  Peer client;
  client.send_on_connect = "first";
  stack_->connect(l->address(), nullptr, 5s, client);
  ASSERT_TRUE(run_until([&] { return calls == 1; }));
  client.conn->send("second");
  run_for(100ms);
  EXPECT_EQ(calls, 1);  // paused: no on_data
  server_peer->conn->resume_reading();
  EXPECT_EQ(calls, 1);  // not from inside resume_reading()
  ASSERT_TRUE(run_until([&] { return calls == 2; }));
  EXPECT_EQ(server_peer->received, "firstsecond");
}

TEST_F(StackTest, PausedInputIsBounded) {
  constexpr std::size_t kBytes = 8 << 20;
  Server s;
  Peer* server_peer = nullptr;
  std::size_t largest = 0;
  bool paused = false;
  s.setup = [&](Peer& p, Connection&) {
    server_peer = &p;
    p.check_pattern = true;
    p.on_data_hook = [&](Connection& c, ByteBuffer& in) {
      largest = std::max(largest, in.size());
      p.take(in);
      if (!paused && p.received_bytes > 0 && p.received_bytes < kBytes / 2) {
        paused = true;
        c.pause_reading();
      }
    };
  };
  Listener* l = listen(s);
  ASSERT_NE(l, nullptr);
  Peer client;
  client.send_on_connect = make_pattern(kBytes);
  stack_->connect(l->address(), nullptr, 5s, client);
  ASSERT_TRUE(run_until([&] { return paused; }));
  run_for(300ms);
  // The server stopped reading: the client cannot get rid of everything.
  EXPECT_GT(client.conn->pending_output(), 0u);
  largest = 0;
  server_peer->conn->resume_reading();
  ASSERT_TRUE(run_until([&] { return server_peer->received_bytes == kBytes; }, 30s));
  EXPECT_EQ(server_peer->pattern_errors, 0u);
  // What piled up while paused stayed near the limit (1 MiB plus one receive batch).
  EXPECT_LE(largest, (1u << 20) + (512u << 10));
  EXPECT_GE(stack_->stats().paused_overflows, 1u);
}

TEST_F(StackTest, CloseAllStopsListenersAndConnections) {
  auto server_stack = make_kernel_stack(*engine_);
  Server s;
  Listener* l = listen(s, "127.0.0.1:0", server_stack.get());
  ASSERT_NE(l, nullptr);
  std::vector<std::unique_ptr<Peer>> clients;
  for (int i = 0; i < 10; ++i) {
    clients.push_back(std::make_unique<Peer>());
    stack_->connect(l->address(), nullptr, 5s, *clients.back());
  }
  ASSERT_TRUE(run_until([&] { return s.accepted == 10; }));
  server_stack->close_all();
  ASSERT_TRUE(run_until([&] { return server_stack->connection_count() == 0; }));
  ASSERT_TRUE(run_until([&] { return stack_->connection_count() == 0; }));
  for (auto& c : clients) EXPECT_EQ(c->closes, 1);
  // The listener is gone: new connects are refused.
  Peer late;
  stack_->connect(l->address(), nullptr, 5s, late);
  ASSERT_TRUE(run_until([&] { return late.connect_reported; }));
  EXPECT_EQ(late.connect_error, std::errc::connection_refused);
  server_stack.reset();
}

TEST_F(StackTest, DestroyingTheStackWithLiveConnectionsIsSafe) {
  Server s;
  Listener* l = listen(s);
  ASSERT_NE(l, nullptr);
  Peer a, b;
  stack_->connect(l->address(), nullptr, 5s, a);
  ASSERT_TRUE(run_until([&] { return a.conn != nullptr && s.accepted == 1; }));
  a.conn->send(make_pattern(1 << 20));
  stack_->connect(l->address(), nullptr, 5s, b);  // still pending
  stack_.reset();  // no handler is called from the destructor
  EXPECT_EQ(a.closes, 0);
  EXPECT_EQ(s.closed(), 0);
  EXPECT_FALSE(b.connect_reported);
}

TEST_F(StackTest, DestroyingTheStackOnAnotherThreadAfterTheLoopIsSafe) {
  // As after ShardSet::join(): the loop is over, the owner's objects die on main.
  Server s;
  Listener* l = listen(s);
  ASSERT_NE(l, nullptr);
  Peer a;
  stack_->connect(l->address(), nullptr, 5s, a);
  ASSERT_TRUE(run_until([&] { return a.conn != nullptr && s.accepted == 1; }));
  a.conn->set_idle_timeout(10s);
  std::thread([&] { stack_.reset(); }).join();
  EXPECT_EQ(a.closes, 0);
  EXPECT_EQ(s.closed(), 0);
}

// ---- STARTTLS -------------------------------------------------------------------------

class StackTlsTest : public StackTest {
 protected:
  void SetUp() override {
    if (!test::CertFactory::shared().ok()) {
      GTEST_SKIP() << "cannot make certificates: " << test::CertFactory::shared().error();
    }
    StackTest::SetUp();
    if (!engine_) return;
    auto t = testing::make_tls_contexts();
    server_ctx_ = std::move(t.server);
    client_ctx_ = std::move(t.client);
    wrong_ctx_ = std::move(t.wrong);
  }
  std::unique_ptr<TlsContext> server_ctx_, client_ctx_, wrong_ctx_;
};

// Splits complete CRLF lines off `in`.
std::vector<std::string> lines(ByteBuffer& in) {
  std::vector<std::string> out;
  for (;;) {
    auto v = in.view();
    auto pos = v.find("\r\n");
    if (pos == std::string_view::npos) return out;
    out.emplace_back(v.substr(0, pos));
    in.consume(pos + 2);
  }
}

TEST_F(StackTlsTest, StartTlsMidStreamDiscardsInjectedPlaintext) {
  std::vector<std::string> server_plain, server_tls, client_plain, client_tls;
  Server s;
  s.setup = [&](Peer& p, Connection&) {
    p.on_data_hook = [&](Connection& c, ByteBuffer& in) {
      // One line at a time, as an SMTP server would parse.
      auto v = in.view();
      while (v.find("\r\n") != std::string_view::npos) {
        auto pos = v.find("\r\n");
        std::string line(v.substr(0, pos));
        in.consume(pos + 2);
        if (c.tls() == nullptr) {
          server_plain.push_back(line);
          if (line == "STARTTLS") {
            // A malicious server-side injection: the client must drop "250 injected".
            c.output().append("220 go ahead\r\n250 injected\r\n");
            c.flush();
            c.start_tls(*server_ctx_, "");
            return;  // the rest of `in` is gone (RFC 3207 §4.2)
          }
          c.send("500 plaintext\r\n");
        } else {
          server_tls.push_back(line);
          c.send("250 tls " + line + "\r\n");
        }
        v = in.view();
      }
    };
  };
  Listener* l = listen(s);
  ASSERT_NE(l, nullptr);

  Peer client;
  client.send_on_connect = "STARTTLS\r\nRSET\r\n";  // one write: RSET rides along
  client.on_data_hook = [&](Connection& c, ByteBuffer& in) {
    for (auto& line : lines(in)) {
      if (c.tls() == nullptr) {
        client_plain.push_back(line);
        if (line.starts_with("220")) {
          c.start_tls(*client_ctx_, "localhost");
          return;
        }
      } else {
        client_tls.push_back(line);
        if (line == "250 tls EHLO secure") c.close();
      }
    }
  };
  client.on_tls_ready_hook = [](Connection& c) { c.send("EHLO secure\r\n"); };
  stack_->connect(l->address(), nullptr, 5s, client);
  ASSERT_TRUE(run_until([&] { return client.closes == 1 && s.closed() == 1; }));

  EXPECT_TRUE(client.tls_ready);
  EXPECT_FALSE(client.close_why) << client.close_why.message();
  EXPECT_EQ(server_plain, std::vector<std::string>{"STARTTLS"});  // never RSET
  EXPECT_EQ(server_tls, std::vector<std::string>{"EHLO secure"});
  EXPECT_EQ(client_plain, std::vector<std::string>{"220 go ahead"});  // never "250 injected"
  EXPECT_EQ(client_tls, std::vector<std::string>{"250 tls EHLO secure"});
  EXPECT_TRUE(s.peers[0]->tls_ready);
}

TEST_F(StackTlsTest, TlsFromTheStartWithOneMegabyteEcho) {
  constexpr std::size_t kBytes = 1 << 20;
  Server s;
  s.setup = [&](Peer& p, Connection& c) {
    c.start_tls(*server_ctx_, "");
    p.on_data_hook = [](Connection& conn, ByteBuffer& in) {
      conn.output().append(in.view());
      in.consume(in.size());
      conn.flush();
    };
  };
  Listener* l = listen(s);
  ASSERT_NE(l, nullptr);
  Peer client;
  client.check_pattern = true;
  client.on_tls_ready_hook = [&](Connection& c) { c.send(make_pattern(kBytes)); };
  struct Starter : ConnectHandler {
    Peer* peer;
    const TlsContext* ctx;
    void on_connect(Connection* c, std::error_code why) noexcept override {
      peer->on_connect(c, why);
      if (c != nullptr) c->start_tls(*ctx, "localhost");
    }
  } starter;
  starter.peer = &client;
  starter.ctx = client_ctx_.get();
  stack_->connect(l->address(), nullptr, 5s, starter);
  ASSERT_TRUE(run_until([&] { return client.received_bytes == kBytes; }, 30s));
  EXPECT_EQ(client.pattern_errors, 0u);
  ASSERT_NE(client.conn->tls(), nullptr);
  EXPECT_EQ(client.conn->tls()->version(), "TLSv1.3");
  client.conn->close();  // close_notify, then FIN
  ASSERT_TRUE(run_until([&] { return client.closes == 1 && s.closed() == 1; }));
  EXPECT_FALSE(client.close_why) << client.close_why.message();
  EXPECT_FALSE(s.peers[0]->close_why) << s.peers[0]->close_why.message();
}

TEST_F(StackTlsTest, WrongCaClosesWithEproto) {
  Server s;
  s.setup = [&](Peer&, Connection& c) { c.start_tls(*server_ctx_, ""); };
  Listener* l = listen(s);
  ASSERT_NE(l, nullptr);
  struct Starter : Peer {
    const TlsContext* ctx;
    void on_connect(Connection* c, std::error_code why) noexcept override {
      Peer::on_connect(c, why);
      if (c != nullptr) c->start_tls(*ctx, "localhost");
    }
  } client;
  client.ctx = wrong_ctx_.get();
  stack_->connect(l->address(), nullptr, 5s, client);
  ASSERT_TRUE(run_until([&] { return client.closes == 1 && s.closed() == 1; }));
  EXPECT_FALSE(client.tls_ready);
  EXPECT_EQ(client.close_why, std::errc::protocol_error) << client.close_why.message();
  EXPECT_TRUE(s.peers[0]->close_why) << "server should see the failure";
}

TEST_F(StackTlsTest, GarbageHandshakeClosesCleanly) {
  Server s;
  s.setup = [&](Peer&, Connection& c) { c.start_tls(*server_ctx_, ""); };
  Listener* l = listen(s);
  ASSERT_NE(l, nullptr);
  Peer client;
  client.send_on_connect = "EHLO this is not a ClientHello\r\n";
  stack_->connect(l->address(), nullptr, 5s, client);
  ASSERT_TRUE(run_until([&] { return s.closed() == 1 && client.closes == 1; }));
  EXPECT_EQ(s.peers[0]->close_why, std::errc::protocol_error);
}

}  // namespace
}  // namespace salvo::net
