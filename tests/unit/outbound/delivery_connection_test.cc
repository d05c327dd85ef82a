// SPDX-License-Identifier: Apache-2.0
// DeliveryConnection on the fake stack: a real DestinationSide and KernelStack over the
// FakeEngine, one TestClock for both. The test plays the MX host byte by byte and decides
// when the socket takes what delivery writes. Each test is one wait of RFC 5321 §4.5.3.2:
// a reply trickled in is given up on at its stage's deadline, however steadily the bytes
// come; a server that stops reading the message data at data_block_timeout.
#include "outbound/delivery_connection.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include <salvo/net/stack.h>

#include "support/fake_engine.h"
#include "unit/outbound/destination_fixture.h"

namespace salvo::outbound {
namespace {

using test::OpKind;

constexpr char kEhlo[] = "250-mx.a.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 1000000\r\n";

class DeliveryConnectionTest : public DestinationTest {
 protected:
  void SetUp() override {
    engine_ = std::make_unique<test::FakeEngine>(env_.clock_, test::FakeMode::Manual);
    net::KernelStackOptions o;
    o.clock = &env_.clock_;
    o.recv_buffers = 8;
    o.recv_buffer_size = 1024;
    o.zerocopy_threshold = 0;
    stack_ = net::make_kernel_stack(*engine_, o);
    env_.open_with = [this](Destination& d, const Host& h, const Origination& orig) {
      auto* c = new DeliveryConnection(d, h, orig, ClientTls{side_->context().settings});
      c->start(*stack_);
      return static_cast<Channel*>(c);
    };
  }
  void TearDown() override {
    // Connections report their close to their destination: both go before the stack.
    stack_->abort_all();
    settle();
    side_.reset();
    stack_.reset();
    engine_.reset();
  }

  // Until nothing moves: the destination side's work, then the engine's completions.
  // Connects succeed; the socket takes every write while the peer reads.
  void settle() {
    for (int i = 0; i < 50; ++i) {
      side_->tick();
      env_.run();
      while (engine_->complete_next(OpKind::Connect, 0)) {
      }
      while (engine_->complete_next(OpKind::Shutdown, 0)) {
      }
      if (peer_reads_) take_writes();
      engine_->run_once(Duration::zero());
    }
  }
  void take_writes() {
    for (;;) {
      auto it = std::find_if(engine_->pending().begin(), engine_->pending().end(),
                             [](const test::FakeOp& op) { return op.kind == OpKind::Send; });
      if (it == engine_->pending().end()) return;
      wire_ += it->data;
      ASSERT_TRUE(engine_->complete_next(OpKind::Send, static_cast<std::int32_t>(it->data.size())));
    }
  }
  // Time passes in steps, the loop turning in each.
  void advance(Duration d, Duration step = 100ms) {
    for (Duration t = 0s; t < d; t += step) {
      env_.clock_.advance(step);
      settle();
    }
  }
  // The connection's socket, as the stack receives on it; -1 once it is gone.
  int fd() const {
    for (const auto& op : engine_->pending()) {
      if (op.kind == OpKind::RecvMultishot) return op.fd;
    }
    return -1;
  }
  // The MX host says `bytes` (one read).
  void say(std::string_view bytes) {
    ASSERT_GE(fd(), 0);
    ASSERT_EQ(engine_->deliver(fd(), bytes), bytes.size());
    settle();
  }
  // The MX host says `bytes` (cyclically) one byte per `every`, the clock moving `every`
  // after each, for `for_at_most` or until the connection is gone.
  void trickle(std::string_view bytes, Duration every, Duration for_at_most) {
    Duration spent = 0s;
    for (std::size_t i = 0; spent < for_at_most && fd() >= 0; ++i, spent += every) {
      engine_->deliver(fd(), bytes.substr(i % bytes.size(), 1));
      advance(every);
    }
  }
  // Greeting and EHLO answered at once.
  void up() {
    say("220 mx.a.test ESMTP\r\n");
    ASSERT_NE(wire_.find("EHLO"), std::string::npos);
    say(kEhlo);
  }
  const Accounted* deferral() const {
    for (const auto& e : env_.events) {
      if (e.type == accounting::EventType::Deferred) return &e;
    }
    return nullptr;
  }

  std::unique_ptr<test::FakeEngine> engine_;
  std::unique_ptr<net::Stack> stack_;
  std::string wire_;  // what the socket took
  bool peer_reads_ = true;
};

// A tarpit's greeting: "220-" continuation lines, one byte a second. Before, each byte
// restarted the timer and the connection (and its recipients) stayed forever.
TEST_F(DeliveryConnectionTest, TrickledGreetingIsGivenUpAtGreetingTimeout) {
  start("[delivery]\ngreeting_timeout = \"10s\"\n");
  message("a.test");
  settle();
  ASSERT_GE(fd(), 0);
  trickle("220-tarpit\r\n", 1s, 9s);
  EXPECT_GE(fd(), 0);  // bytes kept coming: still open
  EXPECT_EQ(deferral(), nullptr);
  trickle("220-tarpit\r\n", 1s, 2s);
  EXPECT_LT(fd(), 0);
  const Accounted* e = deferral();
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->code, 451);
  EXPECT_EQ(e->enhanced, "4.4.2");
  EXPECT_NE(e->response.find("timed out while waiting for the greeting (greeting_timeout 10s)"),
            std::string::npos)
      << e->response;
  EXPECT_EQ(e->mx, "mx.a.test");
}

// A multi-line EHLO reply trickled in: helo_timeout counts from the EHLO, not from the
// last byte.
TEST_F(DeliveryConnectionTest, TrickledEhloReplyIsGivenUpAtHeloTimeout) {
  start("[delivery]\nhelo_timeout = \"5s\"\n");
  message("a.test");
  settle();
  say("220 mx.a.test ESMTP\r\n");
  ASSERT_NE(wire_.find("EHLO"), std::string::npos);
  trickle("250-PIPELINING\r\n", 500ms, 4500ms);
  EXPECT_GE(fd(), 0);
  trickle("250-PIPELINING\r\n", 500ms, 1s);
  EXPECT_LT(fd(), 0);
  const Accounted* e = deferral();
  ASSERT_NE(e, nullptr);
  EXPECT_NE(e->response.find("waiting for the reply to EHLO/HELO (helo_timeout 5s)"),
            std::string::npos)
      << e->response;
}

// Pipelined replies each get their stage's time from the reply before: the RCPT reply
// trickled in is given up on rcpt_timeout after the MAIL reply, and the transaction is
// deferred with that reason.
TEST_F(DeliveryConnectionTest, TrickledRcptReplyDefersTheTransaction) {
  start("[delivery]\nrcpt_timeout = \"3s\"\n");
  message("a.test");
  settle();
  up();
  ASSERT_NE(wire_.find("RCPT TO:<u0@a.test>"), std::string::npos);
  say("250 2.1.0 ok\r\n");
  trickle("250-", 200ms, 2800ms);
  EXPECT_GE(fd(), 0);
  trickle("250-", 200ms, 1s);
  EXPECT_LT(fd(), 0);
  const Accounted* e = deferral();
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->code, 451);
  EXPECT_NE(e->response.find("waiting for the reply to RCPT TO (rcpt_timeout 3s)"),
            std::string::npos)
      << e->response;
}

// The final reply's time starts when the socket has taken the end of the data
// (§4.5.3.2.6), not when the data was queued: a slow link spends none of it.
TEST_F(DeliveryConnectionTest, FinalReplyIsTimedFromTheEndOfDataSent) {
  start("[delivery]\ndata_done_timeout = \"5s\"\ndata_block_timeout = \"1m\"\n");
  message("a.test");
  settle();
  up();
  say("250 2.1.0 ok\r\n250 2.1.5 ok\r\n");
  peer_reads_ = false;
  say("354 go ahead\r\n");
  advance(4s);  // the message data waits for the socket
  EXPECT_EQ(wire_.find("\r\n.\r\n"), std::string::npos);
  peer_reads_ = true;
  settle();
  ASSERT_NE(wire_.find("\r\n.\r\n"), std::string::npos);
  trickle("250-", 1s, 4s);
  EXPECT_GE(fd(), 0);  // 8 s since the data was queued, 4 s since it left
  trickle("250-", 1s, 1s);
  EXPECT_LT(fd(), 0);
  const Accounted* e = deferral();
  ASSERT_NE(e, nullptr);
  EXPECT_NE(e->response.find("waiting for the reply to the end of the message data "
                             "(data_done_timeout 5s)"),
            std::string::npos)
      << e->response;
}

// A server that stops reading the message data (its TCP window stays shut): each write
// may wait data_block_timeout; a write it takes part of starts it again.
TEST_F(DeliveryConnectionTest, AServerThatStopsReadingTheDataTimesOut) {
  start("[delivery]\ndata_block_timeout = \"3s\"\n");
  message("a.test");
  settle();
  up();
  say("250 2.1.0 ok\r\n250 2.1.5 ok\r\n");
  peer_reads_ = false;
  say("354 go ahead\r\n");
  advance(2s);
  // The socket takes a little, then nothing more.
  auto send = std::find_if(engine_->pending().begin(), engine_->pending().end(),
                           [](const test::FakeOp& op) { return op.kind == OpKind::Send; });
  ASSERT_NE(send, engine_->pending().end());
  ASSERT_GT(send->data.size(), 10u);
  ASSERT_TRUE(engine_->complete_next(OpKind::Send, 10));
  advance(2s);
  EXPECT_GE(fd(), 0);
  EXPECT_EQ(deferral(), nullptr);
  advance(1500ms);
  EXPECT_LT(fd(), 0);
  const Accounted* e = deferral();
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->code, 451);
  EXPECT_NE(e->response.find("timed out while sending message data (data_block_timeout 3s)"),
            std::string::npos)
      << e->response;
}

// Outside a reply the idle timer still rules: a connection without work says QUIT after
// [delivery] idle_timeout, and the QUIT reply has its own deadline.
TEST_F(DeliveryConnectionTest, AnIdleConnectionQuitsAfterIdleTimeout) {
  start("[delivery]\nidle_timeout = \"5s\"\n");
  message("a.test");
  settle();
  up();
  say("250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n");
  say("250 2.0.0 queued\r\n");
  ASSERT_EQ(env_.events.size(), 1u);
  EXPECT_EQ(env_.events[0].type, accounting::EventType::Delivered);
  advance(4900ms);
  EXPECT_EQ(wire_.find("QUIT"), std::string::npos);
  advance(200ms);
  EXPECT_NE(wire_.find("QUIT"), std::string::npos);
}

// DANE (RFC 7672) decisions, before and around the connection. The TLS handshake and the
// chain match itself are in unit/net/dane_test.cc and integration/dane_test.cc.
class DaneConnectionTest : public DeliveryConnectionTest {
 protected:
  // a.test's one MX host, its MX and addresses DNSSEC-validated (or not).
  void authenticated_mx(bool authenticated) {
    auto r = std::make_shared<dns::MxResult>(*env_.mx["a.test"]);
    for (auto& h : r->hosts) h.authenticated = authenticated;
    env_.mx["a.test"] = r;
  }
  void tlsa(dns::TlsaStatus status, std::vector<net::Tlsa> records = {}) {
    auto r = std::make_shared<dns::TlsaResult>();
    r->status = status;
    r->records = std::move(records);
    r->detail = "_25._tcp.mx.a.test: SERVFAIL";
    env_.tlsa["mx.a.test"] = r;
  }
  static net::Tlsa usable() { return {3, 1, 1, std::string(32, 'x')}; }
};

TEST_F(DaneConnectionTest, FailedTlsaLookupDefersWithoutConnecting) {
  start("validating = true\n");
  authenticated_mx(true);
  tlsa(dns::TlsaStatus::Failed);
  message("a.test");
  settle();
  EXPECT_EQ(env_.tlsa_lookups, 1);
  EXPECT_LT(fd(), 0);  // no connection was made
  EXPECT_TRUE(wire_.empty());
  const Accounted* e = deferral();
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->code, 451);
  EXPECT_EQ(e->enhanced, "4.7.5");
  EXPECT_NE(e->response.find("TLSA lookup for mx.a.test failed (DANE)"), std::string::npos)
      << e->response;
}

// Usable TLSA records make STARTTLS mandatory: a server that does not offer it gets nothing.
TEST_F(DaneConnectionTest, UsableTlsaMakesStartTlsMandatory) {
  start("validating = true\n");
  authenticated_mx(true);
  tlsa(dns::TlsaStatus::Secure, {usable()});
  message("a.test");
  settle();
  up();  // EHLO without STARTTLS
  EXPECT_EQ(wire_.find("MAIL FROM"), std::string::npos) << wire_;
  const Accounted* e = deferral();
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->code / 100, 4);
  EXPECT_TRUE(std::none_of(env_.events.begin(), env_.events.end(), [](const Accounted& a) {
    return a.type == accounting::EventType::Delivered;
  }));
}

// Only PKIX usages (RFC 7672 §3.1.3: unusable for SMTP): no DANE, plaintext is allowed.
TEST_F(DaneConnectionTest, OnlyUnusableRecordsLeaveTheOtherPolicy) {
  start("validating = true\n");
  authenticated_mx(true);
  tlsa(dns::TlsaStatus::Secure, {{1, 1, 1, std::string(32, 'x')}, {0, 0, 1, std::string(32, 'y')}});
  message("a.test");
  settle();
  up();
  EXPECT_NE(wire_.find("MAIL FROM"), std::string::npos) << wire_;
}

// RFC 7672 §2.2: no TLSA lookup for a host whose MX or addresses did not validate, nor
// when the resolvers are not marked validating, nor with tls = "off" or dane = false.
TEST_F(DaneConnectionTest, NoLookupUnlessEverythingAllowsIt) {
  const char* configs[] = {
      "validating = true\n",   // the host is not authenticated
      "validating = false\n",  // authenticated, but AD is not believed
      "validating = true\n[[shaping]]\ndomain = \"a.test\"\ndane = false\n",
      "validating = true\n[[shaping]]\ndomain = \"a.test\"\ntls = \"off\"\n",
  };
  for (int i = 0; i < 4; ++i) {
    SCOPED_TRACE(configs[i]);
    if (i > 0) {  // a fresh stack and destination side for each
      TearDown();
      SetUp();
    }
    env_.tlsa_lookups = 0;
    start(configs[i]);
    authenticated_mx(i != 0);
    tlsa(dns::TlsaStatus::Failed);  // would defer, were it asked
    message("a.test");
    settle();
    EXPECT_EQ(env_.tlsa_lookups, 0);
    EXPECT_GE(fd(), 0);  // connected
  }
}

}  // namespace
}  // namespace salvo::outbound
