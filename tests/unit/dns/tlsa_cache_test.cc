// SPDX-License-Identifier: Apache-2.0
// TlsaCache over a scripted Querier and a TestClock: the query name, the four statuses from
// AD and rcode, TTLs, coalescing, and callbacks never made from inside lookup().
#include <salvo/dns/tlsa_cache.h>

#include <string>

#include <gtest/gtest.h>

#include <salvo/dns/errc.h>

#include "fake_querier.h"
#include "support/test_clock.h"

namespace salvo::dns::test {
namespace {

using namespace std::chrono_literals;
using salvo::test::TestClock;

constexpr const char* kName = "_25._tcp.mx.example";

Answer tlsa(bool ad, std::uint32_t ttl = 600) {
  Answer a;
  a.authenticated = ad;
  a.tlsa.push_back({net::Tlsa{3, 1, 1, std::string(32, 'x')}, ttl});
  return a;
}

class TlsaCacheTest : public ::testing::Test {
 protected:
  TlsaAnswer resolve(const std::string& host, bool* waited = nullptr) {
    TlsaAnswer got;
    int calls = 0;
    auto now = cache_.lookup(host, [&](TlsaAnswer a) {
      got = std::move(a);
      ++calls;
    });
    if (waited != nullptr) *waited = now == nullptr;
    if (now) return now;
    EXPECT_EQ(calls, 0);  // never from inside lookup()
    q_.run();
    EXPECT_EQ(calls, 1);
    return got;
  }
  FakeQuerier q_;
  TestClock clock_;
  TlsaCache cache_{q_, clock_, TlsaCacheOptions{}};
};

TEST_F(TlsaCacheTest, AsksUnderscorePortTcpOfTheHost) {
  EXPECT_EQ(cache_.query_name("MX.Example."), kName);
  q_.zone[{kName, RrType::Tlsa}] = tlsa(true);
  auto a = resolve("MX.example");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, TlsaStatus::Secure);
  ASSERT_EQ(a->records.size(), 1u);
  EXPECT_EQ(a->records[0].usage, 3);
  EXPECT_EQ(q_.count(kName, RrType::Tlsa), 1);
}

TEST_F(TlsaCacheTest, StatusFollowsAdAndRcode) {
  q_.zone[{"_25._tcp.insecure.example", RrType::Tlsa}] = tlsa(false);
  EXPECT_EQ(resolve("insecure.example")->status, TlsaStatus::Insecure);

  Answer nodata;
  nodata.authenticated = true;
  q_.zone[{"_25._tcp.nodata.example", RrType::Tlsa}] = nodata;
  EXPECT_EQ(resolve("nodata.example")->status, TlsaStatus::Absent);

  Answer nx;
  nx.authenticated = true;
  nx.rcode = Rcode::NxDomain;
  q_.zone[{"_25._tcp.nx.example", RrType::Tlsa}] = nx;
  EXPECT_EQ(resolve("nx.example")->status, TlsaStatus::Absent);

  Answer unsigned_nx;
  unsigned_nx.rcode = Rcode::NxDomain;
  q_.zone[{"_25._tcp.unsigned.example", RrType::Tlsa}] = unsigned_nx;
  EXPECT_EQ(resolve("unsigned.example")->status, TlsaStatus::Insecure);

  Answer servfail;
  servfail.rcode = Rcode::ServFail;
  q_.zone[{"_25._tcp.bogus.example", RrType::Tlsa}] = servfail;
  auto f = resolve("bogus.example");
  EXPECT_EQ(f->status, TlsaStatus::Failed);
  EXPECT_EQ(f->detail, "_25._tcp.bogus.example: SERVFAIL");

  q_.zone[{"_25._tcp.slow.example", RrType::Tlsa}] =
      Result<Answer>(std::unexpected(make_error_code(errc::timeout)));
  EXPECT_EQ(resolve("slow.example")->status, TlsaStatus::Failed);
}

TEST_F(TlsaCacheTest, CachedForTheTtlThenAskedAgain) {
  q_.zone[{kName, RrType::Tlsa}] = tlsa(true, 120);
  bool waited = false;
  resolve("mx.example", &waited);
  EXPECT_TRUE(waited);
  clock_.advance(119s);
  auto again = resolve("mx.example", &waited);
  EXPECT_FALSE(waited);
  EXPECT_EQ(again->status, TlsaStatus::Secure);
  EXPECT_EQ(q_.count(kName, RrType::Tlsa), 1);
  EXPECT_EQ(cache_.stats().hits, 1u);
  clock_.advance(2s);
  resolve("mx.example", &waited);
  EXPECT_TRUE(waited);
  EXPECT_EQ(q_.count(kName, RrType::Tlsa), 2);
}

TEST_F(TlsaCacheTest, FailuresAreCachedBriefly) {
  Answer servfail;
  servfail.rcode = Rcode::ServFail;
  q_.zone[{kName, RrType::Tlsa}] = servfail;
  resolve("mx.example");
  clock_.advance(29s);
  bool waited = true;
  resolve("mx.example", &waited);
  EXPECT_FALSE(waited);
  clock_.advance(2s);
  resolve("mx.example", &waited);
  EXPECT_TRUE(waited);
}

TEST_F(TlsaCacheTest, ConcurrentLookupsShareOneQuery) {
  q_.zone[{kName, RrType::Tlsa}] = tlsa(true);
  int calls = 0;
  EXPECT_EQ(cache_.lookup("mx.example", [&](TlsaAnswer) { ++calls; }), nullptr);
  EXPECT_EQ(cache_.lookup("MX.EXAMPLE.", [&](TlsaAnswer) { ++calls; }), nullptr);
  q_.run();
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(q_.count(kName, RrType::Tlsa), 1);
}

TEST_F(TlsaCacheTest, DestroyedCacheIgnoresLateAnswers) {
  FakeQuerier q;
  int calls = 0;
  {
    TlsaCache c(q, clock_, TlsaCacheOptions{});
    EXPECT_EQ(c.lookup("mx.example", [&](TlsaAnswer) { ++calls; }), nullptr);
  }
  q.run();
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace salvo::dns::test
