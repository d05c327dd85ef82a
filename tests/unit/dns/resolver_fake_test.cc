// SPDX-License-Identifier: Apache-2.0
// Resolver over the FakeEngine: real (unused) sockets, scripted completions and a TestClock.
// Spoofed datagrams ignored, timeout then next server, SERVFAIL then next server, TC then
// TCP with 2-byte framing, FORMERR then no EDNS, bounded in-flight queries.
#include <salvo/dns/resolver.h>

#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <salvo/dns/errc.h>

#include "dns/ldns_include.h"
#include "dns_test_util.h"
#include "support/fake_engine.h"
#include "support/test_clock.h"

namespace salvo::dns::test {
namespace {

using namespace std::chrono_literals;
using salvo::test::FakeEngine;
using salvo::test::OpKind;
using salvo::test::TestClock;

class ResolverFake : public ::testing::Test {
 protected:
  ResolverOptions opts(int servers = 2) {
    ResolverOptions o;
    for (int i = 0; i < servers; ++i) {
      // Nothing listens there: the fake engine carries the bytes.
      o.servers.push_back(*net::SocketAddress::parse("127.0.0.1:" + std::to_string(1053 + i)));
    }
    o.timeout = 2s;
    o.attempts = 1;
    return o;
  }
  // The newest send: its fd and the query bytes.
  std::pair<int, std::string> last_send() {
    for (auto it = engine_.history().rbegin(); it != engine_.history().rend(); ++it) {
      if (it->kind == OpKind::Send) return {it->fd, it->data};
    }
    ADD_FAILURE() << "no send";
    return {-1, {}};
  }
  void pump() {
    for (int i = 0; i < 5; ++i) engine_.run_once(0ms);
  }
  std::string reply(const std::string& query, WireSpec spec) {
    spec.id = wire_id(query);
    return make_wire(spec);
  }
  void drain(Resolver& r) {
    r.stop();
    pump();
    EXPECT_EQ(r.operations_pending(), 0u);
  }

  TestClock clock_;
  FakeEngine engine_{clock_};
};

TEST_F(ResolverFake, AnswersAndIgnoresSpoofedDatagrams) {
  Resolver r(engine_, opts());
  std::optional<Result<Answer>> got;
  r.query("Example.com", RrType::Mx, [&](Result<Answer> a) { got = std::move(a); });
  pump();
  auto [fd, query] = last_send();
  ASSERT_GE(fd, 0);
  WireSpec good{.qname = "example.com", .answer = {"example.com. 60 IN MX 10 mx.example.com."}};
  // Wrong id, then wrong name, then garbage: all ignored.
  WireSpec spoof = good;
  spoof.id = static_cast<std::uint16_t>(wire_id(query) + 1);
  ASSERT_GT(engine_.deliver(fd, make_wire(spoof)), 0u);
  pump();
  WireSpec other = good;
  other.qname = "example.org";
  ASSERT_GT(engine_.deliver(fd, reply(query, other)), 0u);
  pump();
  ASSERT_GT(engine_.deliver(fd, "garbage!garbage!"), 0u);
  pump();
  EXPECT_FALSE(got);
  EXPECT_EQ(r.stats().ignored, 3u);
  ASSERT_GT(engine_.deliver(fd, reply(query, good)), 0u);
  pump();
  ASSERT_TRUE(got);
  ASSERT_TRUE(*got);
  ASSERT_EQ((*got)->mx.size(), 1u);
  EXPECT_EQ((*got)->mx[0].exchange, "mx.example.com");
  drain(r);
}

TEST_F(ResolverFake, TimeoutMovesToTheNextServerWithANewSocketAndId) {
  Resolver r(engine_, opts());
  std::optional<Result<Answer>> got;
  r.query("example.com", RrType::A, [&](Result<Answer> a) { got = std::move(a); });
  pump();
  auto [fd1, q1] = last_send();
  clock_.advance(2s);
  pump();
  auto [fd2, q2] = last_send();
  EXPECT_NE(fd1, fd2);
  EXPECT_EQ(r.stats().timeouts, 1u);
  EXPECT_EQ(r.stats().udp_tries, 2u);
  clock_.advance(2s);
  pump();
  ASSERT_TRUE(got);
  ASSERT_FALSE(*got);
  EXPECT_EQ(got->error(), errc::timeout);
  drain(r);
}

TEST_F(ResolverFake, ServfailTriesTheNextServerAndIsReportedIfAllFail) {
  Resolver r(engine_, opts());
  std::optional<Result<Answer>> got;
  r.query("example.com", RrType::Mx, [&](Result<Answer> a) { got = std::move(a); });
  pump();
  auto [fd1, q1] = last_send();
  engine_.deliver(fd1, reply(q1, {.qname = "example.com", .rcode = Rcode::ServFail}));
  pump();
  EXPECT_FALSE(got);
  auto [fd2, q2] = last_send();
  ASSERT_NE(fd1, fd2);
  clock_.advance(2s);  // the second server times out: the SERVFAIL is what we report
  pump();
  ASSERT_TRUE(got);
  ASSERT_TRUE(*got);
  EXPECT_EQ((*got)->rcode, Rcode::ServFail);
  drain(r);
}

TEST_F(ResolverFake, TruncatedAnswerIsRetriedOverTcp) {
  Resolver r(engine_, opts());
  std::optional<Result<Answer>> got;
  r.query("big.example", RrType::A, [&](Result<Answer> a) { got = std::move(a); });
  pump();
  auto [ufd, uq] = last_send();
  engine_.deliver(ufd, reply(uq, {.qname = "big.example", .qtype = RrType::A, .tc = true}));
  pump();
  EXPECT_EQ(r.stats().tcp_tries, 1u);
  auto [tfd, framed] = last_send();
  ASSERT_NE(tfd, ufd);
  ASSERT_GT(framed.size(), 2u);
  const std::size_t len =
      (static_cast<unsigned char>(framed[0]) << 8) | static_cast<unsigned char>(framed[1]);
  EXPECT_EQ(len, framed.size() - 2);
  const std::string tq = framed.substr(2);
  WireSpec full{.qname = "big.example", .qtype = RrType::A};
  for (int i = 1; i <= 60; ++i)
    full.answer.push_back("big.example. 60 IN A 10.0.0." + std::to_string(i));
  std::string body = reply(tq, full);
  std::string frame;
  frame.push_back(static_cast<char>(body.size() >> 8));
  frame.push_back(static_cast<char>(body.size() & 0xff));
  frame += body;
  // In three pieces, as a stream may deliver it.
  engine_.deliver(tfd, frame.substr(0, 1));
  pump();
  engine_.deliver(tfd, frame.substr(1, 100));
  pump();
  EXPECT_FALSE(got);
  engine_.deliver(tfd, frame.substr(101));
  pump();
  ASSERT_TRUE(got);
  ASSERT_TRUE(*got) << got->error().message();
  EXPECT_EQ((*got)->addresses.size(), 60u);
  drain(r);
}

TEST_F(ResolverFake, FormerrRetriesWithoutEdns) {
  Resolver r(engine_, opts(1));
  std::optional<Result<Answer>> got;
  r.query("old.example", RrType::Mx, [&](Result<Answer> a) { got = std::move(a); });
  pump();
  auto [fd1, q1] = last_send();
  engine_.deliver(fd1, reply(q1, {.qname = "old.example", .rcode = Rcode::FormErr}));
  pump();
  auto [fd2, q2] = last_send();
  ASSERT_NE(fd1, fd2);
  ldns_pkt* p = nullptr;
  ASSERT_EQ(ldns_wire2pkt(&p, reinterpret_cast<const std::uint8_t*>(q2.data()), q2.size()),
            LDNS_STATUS_OK);
  EXPECT_FALSE(ldns_pkt_edns(p));
  ldns_pkt_free(p);
  engine_.deliver(fd2, reply(q2, {.qname = "old.example", .rcode = Rcode::NxDomain}));
  pump();
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->rcode, Rcode::NxDomain);
  EXPECT_EQ(r.stats().edns_fallbacks, 1u);
  drain(r);
}

TEST_F(ResolverFake, InFlightIsBoundedAndQueueOverflowFails) {
  auto o = opts(1);
  o.max_in_flight = 1;
  o.max_queued = 1;
  Resolver r(engine_, o);
  std::vector<std::string> order;
  std::optional<Result<Answer>> third;
  r.query("one.example", RrType::A, [&](Result<Answer>) { order.push_back("one"); });
  r.query("two.example", RrType::A, [&](Result<Answer>) { order.push_back("two"); });
  r.query("three.example", RrType::A, [&](Result<Answer> a) { third = std::move(a); });
  EXPECT_EQ(r.in_flight(), 1u);
  EXPECT_EQ(r.queued(), 1u);
  pump();
  ASSERT_TRUE(third);
  EXPECT_EQ(third->error(), errc::overloaded);
  auto [fd1, q1] = last_send();
  engine_.deliver(fd1, reply(q1, {.qname = "one.example", .qtype = RrType::A}));
  pump();
  auto [fd2, q2] = last_send();
  engine_.deliver(fd2, reply(q2, {.qname = "two.example", .qtype = RrType::A}));
  pump();
  EXPECT_EQ(order, (std::vector<std::string>{"one", "two"}));
  drain(r);
}

TEST_F(ResolverFake, BadNameAndNoServersFailLaterNotInline) {
  Resolver none(engine_, ResolverOptions{});
  Resolver r(engine_, opts(1));
  std::vector<std::error_code> errors;
  none.query("example.com", RrType::A, [&](Result<Answer> a) { errors.push_back(a.error()); });
  r.query("a..b", RrType::A, [&](Result<Answer> a) { errors.push_back(a.error()); });
  EXPECT_TRUE(errors.empty());
  pump();
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0], errc::no_servers);
  EXPECT_EQ(errors[1], errc::bad_name);
  drain(r);
  drain(none);
}

TEST_F(ResolverFake, IncompleteCnameChainIsFollowed) {
  Resolver r(engine_, opts(1));
  std::optional<Result<Answer>> got;
  r.query("alias.example", RrType::Mx, [&](Result<Answer> a) { got = std::move(a); });
  pump();
  auto [fd1, q1] = last_send();
  engine_.deliver(fd1, reply(q1, {.qname = "alias.example",
                                  .answer = {"alias.example. 60 IN CNAME real.example."}}));
  pump();
  EXPECT_FALSE(got);
  auto [fd2, q2] = last_send();
  ASSERT_NE(fd1, fd2);
  engine_.deliver(fd2, reply(q2, {.qname = "real.example",
                                  .answer = {"real.example. 60 IN MX 5 mx.real.example."}}));
  pump();
  ASSERT_TRUE(got && *got);
  ASSERT_EQ((*got)->mx.size(), 1u);
  EXPECT_EQ((*got)->mx[0].exchange, "mx.real.example");
  EXPECT_EQ((*got)->canonical_name, "real.example");
  drain(r);
}

TEST_F(ResolverFake, DestroyWithQueriesPendingCleansUp) {
  auto r = std::make_unique<Resolver>(engine_, opts());
  r->query("example.com", RrType::A, [](Result<Answer>) { FAIL(); });
  pump();
  r.reset();
  pump();  // the cancelled operations come back and free their attempt
  clock_.advance(10s);
  pump();
}

}  // namespace
}  // namespace salvo::dns::test

namespace salvo::dns::test {
namespace {

// A server that cannot even be addressed (connect() to the broadcast address fails at
// once): every try fails synchronously, yet the callback never runs inside query() — the
// MxCache relies on that (a synchronous call once freed its lookup under its feet).
TEST_F(ResolverFake, SynchronousFailuresAreDeliveredLater) {
  ResolverOptions o;
  o.servers.push_back(*net::SocketAddress::parse("255.255.255.255:53"));
  o.attempts = 2;
  Resolver r(engine_, o);
  int calls = 0;
  std::optional<Result<Answer>> got;
  r.query("example.com", RrType::Mx, [&](Result<Answer> a) {
    ++calls;
    got = std::move(a);
  });
  EXPECT_EQ(calls, 0) << "called from inside query()";
  pump();
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(got.has_value());
  EXPECT_FALSE(got->has_value());
  drain(r);
}

}  // namespace
}  // namespace salvo::dns::test
