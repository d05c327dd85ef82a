// SPDX-License-Identifier: Apache-2.0
// dns end to end: the real Resolver and MxCache on an io_uring engine against Debian's
// unbound on a free 127.0.0.1 port (tests/support/unbound_server.h). MX order, implicit and
// null MX, NXDOMAIN, SERVFAIL and REFUSED, truncation -> TCP, IDN, TTLs, timeouts.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <salvo/base/clock.h>
#include <salvo/dns/errc.h>
#include <salvo/dns/mx_cache.h>
#include <salvo/dns/resolver.h>
#include <salvo/io/engine.h>

#include "support/unbound_server.h"

namespace salvo::dns {
namespace {

using namespace std::chrono_literals;
using salvo::test::UnboundOptions;
using salvo::test::UnboundServer;

// Built by append: GCC 12 warns (-Wrestrict, PR 105651) on "literal" + std::string here.
std::string bulk_ip(int i) {
  std::string ip("127.0.2.");
  ip.append(std::to_string(i % 250 + 1));
  return ip;
}

UnboundOptions zones() {
  UnboundOptions o;
  o.static_zones = {"test."};
  o.local_data = {
      "pref.test. 300 IN MX 20 mx2.pref.test.",
      "pref.test. 300 IN MX 10 mx1.pref.test.",
      "pref.test. 300 IN MX 30 mx3.pref.test.",
      "mx1.pref.test. 300 IN A 127.0.0.2",
      "mx2.pref.test. 300 IN A 127.0.0.3",
      "mx3.pref.test. 300 IN A 127.0.0.4",
      "mx3.pref.test. 300 IN AAAA ::1",
      "tie.test. 300 IN MX 10 a.tie.test.",
      "tie.test. 300 IN MX 10 b.tie.test.",
      "a.tie.test. 300 IN A 127.0.0.7",
      "b.tie.test. 300 IN A 127.0.0.8",
      "implicit.test. 300 IN A 127.0.0.5",
      "nullmx.test. 300 IN MX 0 .",
      "ttl.test. 1234 IN MX 10 mx.ttl.test.",
      "mx.ttl.test. 4321 IN A 127.0.0.6",
      "big.test. 300 IN MX 10 many.big.test.",
      "xn--bcher-kva.test. 300 IN MX 10 mx1.pref.test.",
      "alias.test. 300 IN CNAME pref.test.",
  };
  // 100 A records: about 1.6 KB, more than the 1232-byte EDNS payload: TC over UDP.
  for (int i = 1; i <= 100; ++i) {
    o.local_data.push_back("many.big.test. 300 IN A 127.0.1." + std::to_string(i));
  }
  // 200 implicit-MX domains for the bulk test.
  for (int i = 0; i < 200; ++i) {
    std::string line("d");
    line.append(std::to_string(i)).append(".bulk.test. 300 IN A ").append(bulk_ip(i));
    o.local_data.push_back(std::move(line));
  }
  o.servfail_zones = {"servfail.example."};
  o.soa_minimum = 120;
  return o;
}

class DnsIntegration : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new UnboundServer(zones()); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(server_->started()) << server_->error();
    std::string why;
    auto e = io::create_engine("uring", io::EngineOptions{.queue_depth = 256}, &why);
    if (!e) GTEST_SKIP() << "io_uring unavailable: " << why;
    engine_ = std::move(*e);
    make(resolver_options());
  }

  void TearDown() override {
    cache_.reset();
    if (resolver_) {
      resolver_->stop();
      EXPECT_TRUE(run_until([&] { return resolver_->operations_pending() == 0; }, 3s));
      resolver_.reset();
    }
    engine_.reset();
  }

  ResolverOptions resolver_options() {
    ResolverOptions o;
    o.servers = {*net::SocketAddress::parse(server_->address())};
    o.timeout = 2s;
    o.attempts = 1;
    return o;
  }

  void make(ResolverOptions o, MxCacheOptions c = {}) {
    cache_.reset();
    if (resolver_) {
      resolver_->stop();
      run_until([&] { return resolver_->operations_pending() == 0; }, 3s);
    }
    resolver_ = std::make_unique<Resolver>(*engine_, std::move(o));
    c.min_ttl = 1s;
    cache_ = std::make_unique<MxCache>(*resolver_, clock_, c);
  }

  bool run_until(const std::function<bool()>& pred, Duration limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      engine_->run_once(10ms);
    }
    return true;
  }

  MxAnswer resolve(const std::string& domain, Duration limit = 10s) {
    MxAnswer got;
    auto now = cache_->lookup(domain, [&](MxAnswer a) { got = std::move(a); });
    if (now) return now;
    EXPECT_TRUE(run_until([&] { return got != nullptr; }, limit)) << domain;
    return got;
  }

  static UnboundServer* server_;
  SystemClock clock_;
  std::unique_ptr<io::Engine> engine_;
  std::unique_ptr<Resolver> resolver_;
  std::unique_ptr<MxCache> cache_;
};

UnboundServer* DnsIntegration::server_ = nullptr;

TEST_F(DnsIntegration, MxPreferenceOrderWithAddresses) {
  auto a = resolve("pref.test");
  ASSERT_TRUE(a);
  ASSERT_EQ(a->status, MxStatus::Ok) << a->detail;
  ASSERT_EQ(a->hosts.size(), 3u);
  EXPECT_EQ(a->hosts[0].name, "mx1.pref.test");
  EXPECT_EQ(a->hosts[0].preference, 10);
  EXPECT_EQ(a->hosts[1].name, "mx2.pref.test");
  EXPECT_EQ(a->hosts[2].name, "mx3.pref.test");
  ASSERT_EQ(a->hosts[0].addresses.size(), 1u);
  EXPECT_EQ(a->hosts[0].addresses[0].ip(), "127.0.0.2");
  ASSERT_EQ(a->hosts[2].addresses.size(), 2u);
  EXPECT_EQ(a->hosts[2].addresses[0].ip(), "127.0.0.4");
  EXPECT_EQ(a->hosts[2].addresses[1].ip(), "::1");
  EXPECT_EQ(resolver_->stats().timeouts, 0u);
  // Second lookup: from the cache, no query.
  const auto queries = resolver_->stats().queries;
  auto b = cache_->lookup("pref.test", [](MxAnswer) { FAIL(); });
  ASSERT_TRUE(b);
  EXPECT_EQ(resolver_->stats().queries, queries);
}

TEST_F(DnsIntegration, EqualPreferencesBothSeenFirst) {
  int a_first = 0;
  int b_first = 0;
  for (int i = 0; i < 100; ++i) {
    auto r = resolve("tie.test");
    ASSERT_EQ(r->status, MxStatus::Ok);
    ASSERT_EQ(r->hosts.size(), 2u);
    (r->hosts[0].name == "a.tie.test" ? a_first : b_first)++;
  }
  EXPECT_GT(a_first, 10);
  EXPECT_GT(b_first, 10);
}

TEST_F(DnsIntegration, ImplicitMx) {
  auto a = resolve("implicit.test");
  ASSERT_EQ(a->status, MxStatus::Ok) << a->detail;
  EXPECT_TRUE(a->implicit_mx);
  ASSERT_EQ(a->hosts.size(), 1u);
  EXPECT_EQ(a->hosts[0].name, "implicit.test");
  EXPECT_EQ(a->hosts[0].addresses[0].ip(), "127.0.0.5");
}

TEST_F(DnsIntegration, CnameToAnMxDomain) {
  auto a = resolve("alias.test");
  ASSERT_EQ(a->status, MxStatus::Ok) << a->detail;
  ASSERT_EQ(a->hosts.size(), 3u);
  EXPECT_EQ(a->hosts[0].name, "mx1.pref.test");
}

TEST_F(DnsIntegration, NullMxIsPermanent) {
  auto a = resolve("nullmx.test");
  EXPECT_EQ(a->status, MxStatus::Permanent);
  EXPECT_EQ(a->error, errc::null_mx);
}

TEST_F(DnsIntegration, NxDomainIsPermanentWithSoaTtl) {
  const auto before = clock_.now();
  auto a = resolve("nosuch.test");
  EXPECT_EQ(a->status, MxStatus::Permanent);
  EXPECT_EQ(a->error, errc::nxdomain);
  // Cached for the SOA minimum (120 s), below negative_ttl (5 min).
  EXPECT_GE(a->expires - before, 115s);
  EXPECT_LE(a->expires - before, 125s);
}

TEST_F(DnsIntegration, ServfailIsTemporary) {
  auto a = resolve("mail.servfail.example");
  EXPECT_EQ(a->status, MxStatus::Temporary) << a->detail;
  EXPECT_EQ(a->error, errc::server_failure);
  EXPECT_NE(a->detail.find("SERVFAIL"), std::string::npos) << a->detail;
}

TEST_F(DnsIntegration, RefusedIsTemporary) {
  auto a = resolve("outside.example");
  EXPECT_EQ(a->status, MxStatus::Temporary);
  EXPECT_NE(a->detail.find("REFUSED"), std::string::npos) << a->detail;
}

TEST_F(DnsIntegration, TruncatedAnswerRetriedOverTcp) {
  auto a = resolve("big.test");
  ASSERT_EQ(a->status, MxStatus::Ok) << a->detail;
  ASSERT_EQ(a->hosts.size(), 1u);
  EXPECT_EQ(a->hosts[0].addresses.size(), 100u);
  EXPECT_GE(resolver_->stats().tcp_tries, 1u);
}

TEST_F(DnsIntegration, TruncatedWithoutEdnsToo) {
  auto o = resolver_options();
  o.edns_payload = 0;  // plain 512-byte UDP
  make(o);
  std::optional<Result<Answer>> got;
  resolver_->query("mx3.pref.test", RrType::A, [&](Result<Answer> r) { got = std::move(r); });
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  ASSERT_TRUE(*got);
  EXPECT_EQ(resolver_->stats().tcp_tries, 0u);
  got.reset();
  resolver_->query("many.big.test", RrType::A, [&](Result<Answer> r) { got = std::move(r); });
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  ASSERT_TRUE(*got) << got->error().message();
  EXPECT_EQ((*got)->addresses.size(), 100u);
  EXPECT_EQ(resolver_->stats().tcp_tries, 1u);
}

TEST_F(DnsIntegration, IdnDomain) {
  auto a = resolve(
      "B\xc3\xbc"
      "cher.test");  // Bücher.test -> xn--bcher-kva.test
  ASSERT_EQ(a->status, MxStatus::Ok) << a->detail;
  EXPECT_EQ(a->domain, "xn--bcher-kva.test");
  EXPECT_EQ(a->hosts[0].name, "mx1.pref.test");
}

TEST_F(DnsIntegration, TtlFromTheServer) {
  const auto before = clock_.now();
  auto a = resolve("ttl.test");
  ASSERT_EQ(a->status, MxStatus::Ok) << a->detail;
  // min(MX 1234 s, A 4321 s), within [1 s, 24 h].
  EXPECT_GE(a->expires - before, 1229s);
  EXPECT_LE(a->expires - before, 1235s);
}

TEST_F(DnsIntegration, CoalescedLookupsOneQuery) {
  int calls = 0;
  for (int i = 0; i < 10; ++i) {
    EXPECT_FALSE(cache_->lookup("implicit.test", [&](MxAnswer) { ++calls; }));
  }
  ASSERT_TRUE(run_until([&] { return calls == 10; }));
  EXPECT_EQ(resolver_->stats().queries, 3u);  // MX, A, AAAA
}

TEST_F(DnsIntegration, TimeoutWhenNothingAnswers) {
  // A bound UDP socket that never reads: no ICMP unreachable, just silence.
  int silent = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(silent, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  socklen_t len = sizeof(sin);
  ::getsockname(silent, reinterpret_cast<sockaddr*>(&sin), &len);
  ResolverOptions o;
  o.servers = {net::SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&sin), len)};
  o.timeout = 200ms;
  o.attempts = 2;
  make(o);
  const auto start = std::chrono::steady_clock::now();
  auto a = resolve("pref.test", 5s);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, MxStatus::Temporary);
  EXPECT_EQ(a->error, errc::timeout);
  EXPECT_EQ(resolver_->stats().timeouts, 2u);
  EXPECT_GE(took, 390ms);
  EXPECT_LT(took, 3s);
  ::close(silent);
}

TEST_F(DnsIntegration, SecondServerAnswersWhenTheFirstIsClosed) {
  ResolverOptions o = resolver_options();
  // A closed port first: ECONNREFUSED (ICMP port unreachable) moves on at once.
  o.servers.insert(
      o.servers.begin(),
      *net::SocketAddress::parse("127.0.0.1:" + std::to_string(salvo::test::free_loopback_port())));
  make(o);
  auto a = resolve("pref.test");
  ASSERT_EQ(a->status, MxStatus::Ok) << a->detail;
  EXPECT_EQ(a->hosts.size(), 3u);
}

TEST_F(DnsIntegration, PrewarmThenHit) {
  std::vector<std::string> list = {"pref.test", "implicit.test", "nosuch.test"};
  cache_->prewarm(list);
  ASSERT_TRUE(run_until([&] { return cache_->resolving() == 0; }));
  for (const auto& d : list) {
    EXPECT_TRUE(cache_->lookup(d, [](MxAnswer) { FAIL(); })) << d;
  }
}

TEST_F(DnsIntegration, ManyDomainsThroughABoundedResolver) {
  auto o = resolver_options();
  o.max_in_flight = 8;  // 600 queries (MX, A, AAAA x 200) through 8 slots
  make(o);
  int ok = 0;
  int done = 0;
  for (int i = 0; i < 200; ++i) {
    std::string d("d");
    d.append(std::to_string(i)).append(".bulk.test");
    EXPECT_FALSE(cache_->lookup(d, [&, i](MxAnswer a) {
      ++done;
      if (a->status == MxStatus::Ok && a->hosts.size() == 1 &&
          a->hosts[0].addresses[0].ip() == bulk_ip(i)) {
        ++ok;
      }
    }));
  }
  EXPECT_LE(resolver_->in_flight(), 8u);
  ASSERT_TRUE(run_until([&] { return done == 200; }, 20s));
  EXPECT_EQ(ok, 200);
  EXPECT_EQ(resolver_->stats().queries, 600u);
  EXPECT_EQ(resolver_->stats().timeouts, 0u);
}

}  // namespace
}  // namespace salvo::dns
