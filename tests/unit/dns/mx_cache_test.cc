// SPDX-License-Identifier: Apache-2.0
// MxCache logic over a scripted Querier and a TestClock: ordering and shuffling, implicit
// and null MX, NXDOMAIN/SERVFAIL/timeout, TTL clamping, negative caching, coalescing,
// refresh-ahead, LRU, IDN.
#include <salvo/dns/mx_cache.h>

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <salvo/dns/errc.h>

#include "fake_querier.h"
#include "support/test_clock.h"

namespace salvo::dns::test {
namespace {

using namespace std::chrono_literals;
using salvo::test::TestClock;

Answer mx(std::vector<std::pair<int, std::string>> records, std::uint32_t ttl = 3600) {
  Answer a;
  for (auto& [pref, host] : records) {
    a.mx.push_back({static_cast<std::uint16_t>(pref), host, ttl});
  }
  return a;
}

Answer addr(std::vector<std::string> ips, std::uint32_t ttl = 3600) {
  Answer a;
  for (auto& ip : ips) a.addresses.push_back({*net::SocketAddress::parse(ip), ttl});
  return a;
}

Answer rcode(Rcode rc, std::optional<std::uint32_t> soa = std::nullopt) {
  Answer a;
  a.rcode = rc;
  a.negative_ttl = soa;
  return a;
}

Answer nodata(std::optional<std::uint32_t> soa = std::nullopt) {
  return rcode(Rcode::NoError, soa);
}

class MxCacheTest : public ::testing::Test {
 protected:
  MxCacheOptions opts() {
    MxCacheOptions o;
    o.shuffle_seed = 42;
    return o;
  }
  void host(const std::string& name, std::vector<std::string> v4, std::uint32_t ttl = 3600) {
    q_.zone[{name, RrType::A}] = addr(std::move(v4), ttl);
    q_.zone[{name, RrType::Aaaa}] = nodata();
  }
  // Looks up and, if it must wait, runs the querier; returns the answer either way.
  MxAnswer resolve(MxCache& c, const std::string& domain, bool* waited = nullptr) {
    MxAnswer got;
    auto now = c.lookup(domain, [&](MxAnswer a) { got = std::move(a); });
    if (waited != nullptr) *waited = now == nullptr;
    if (now) return now;
    q_.run();
    EXPECT_TRUE(got) << domain;
    return got;
  }

  TestClock clock_;
  FakeQuerier q_;
};

TEST_F(MxCacheTest, SortsByPreferenceAndResolvesEachHost) {
  q_.zone[{"example.com", RrType::Mx}] =
      mx({{30, "mx3.example.com"}, {10, "mx1.example.com"}, {20, "mx2.example.com"}});
  host("mx1.example.com", {"192.0.2.1"});
  host("mx2.example.com", {"192.0.2.2"});
  q_.zone[{"mx3.example.com", RrType::A}] = addr({"192.0.2.3"});
  q_.zone[{"mx3.example.com", RrType::Aaaa}] = addr({"2001:db8::3"});
  MxCache c(q_, clock_, opts());
  auto a = resolve(c, "example.com");
  ASSERT_EQ(a->status, MxStatus::Ok) << a->detail;
  EXPECT_FALSE(a->implicit_mx);
  ASSERT_EQ(a->hosts.size(), 3u);
  EXPECT_EQ(a->hosts[0].name, "mx1.example.com");
  EXPECT_EQ(a->hosts[1].name, "mx2.example.com");
  EXPECT_EQ(a->hosts[2].name, "mx3.example.com");
  EXPECT_EQ(a->hosts[0].addresses[0].ip(), "192.0.2.1");
  ASSERT_EQ(a->hosts[2].addresses.size(), 2u);
  EXPECT_EQ(a->hosts[2].addresses[0].ip(), "192.0.2.3");  // IPv4 first
  EXPECT_EQ(a->hosts[2].addresses[1].ip(), "2001:db8::3");
  // Cached now: answered at once, no new query.
  const auto asked = q_.asked.size();
  bool waited = true;
  auto again = resolve(c, "EXAMPLE.com.", &waited);
  EXPECT_FALSE(waited);
  EXPECT_EQ(q_.asked.size(), asked);
  EXPECT_EQ(again->hosts.size(), 3u);
  EXPECT_EQ(c.stats().hits, 1u);
}

TEST_F(MxCacheTest, ShufflesEqualPreferencesPerLookup) {
  q_.zone[{"tie.example", RrType::Mx}] = mx(
      {{10, "a.tie.example"}, {10, "b.tie.example"}, {10, "c.tie.example"}, {5, "p.tie.example"}});
  for (auto h : {"a", "b", "c", "p"}) host(std::string(h) + ".tie.example", {"192.0.2.9"});
  MxCache c(q_, clock_, opts());
  std::map<std::string, int> first_of_tie;
  std::set<std::string> orders;
  for (int i = 0; i < 300; ++i) {
    auto a = resolve(c, "tie.example");
    ASSERT_EQ(a->hosts.size(), 4u);
    EXPECT_EQ(a->hosts[0].name, "p.tie.example");
    for (std::size_t k = 1; k < 4; ++k) EXPECT_EQ(a->hosts[k].preference, 10);
    ++first_of_tie[a->hosts[1].name];
    orders.insert(a->hosts[1].name + a->hosts[2].name + a->hosts[3].name);
  }
  EXPECT_EQ(q_.count("tie.example", RrType::Mx), 1);
  EXPECT_EQ(orders.size(), 6u);                                   // all permutations seen
  for (auto& [name, n] : first_of_tie) EXPECT_GT(n, 50) << name;  // roughly uniform
}

TEST_F(MxCacheTest, ManyMxRecordsAreCappedAndDeduplicated) {
  Answer big;
  for (int i = 0; i < 500; ++i) {
    big.mx.push_back(
        {static_cast<std::uint16_t>(i % 7), "mx" + std::to_string(i % 50) + ".big.example", 300});
  }
  q_.zone[{"big.example", RrType::Mx}] = big;
  for (int i = 0; i < 50; ++i) host("mx" + std::to_string(i) + ".big.example", {"192.0.2.1"});
  auto o = opts();
  o.max_mx_hosts = 5;
  MxCache c(q_, clock_, o);
  auto a = resolve(c, "big.example");
  ASSERT_EQ(a->status, MxStatus::Ok);
  ASSERT_EQ(a->hosts.size(), 5u);
  std::set<std::string> names;
  for (const auto& h : a->hosts) {
    names.insert(h.name);
    EXPECT_EQ(h.preference, 0);  // the most preferred ones
  }
  EXPECT_EQ(names.size(), 5u);
  EXPECT_EQ(q_.asked.size(), 1u + 2 * 5);
}

TEST_F(MxCacheTest, NullMxMixedWithRealRecordsIsIgnored) {
  q_.zone[{"mixed.example", RrType::Mx}] = mx({{0, ""}, {10, "mx.mixed.example"}});
  host("mx.mixed.example", {"192.0.2.110"});
  MxCache c(q_, clock_, opts());
  auto a = resolve(c, "mixed.example");
  ASSERT_EQ(a->status, MxStatus::Ok);
  ASSERT_EQ(a->hosts.size(), 1u);
  EXPECT_EQ(a->hosts[0].name, "mx.mixed.example");
}

TEST_F(MxCacheTest, ImplicitMxFromAddresses) {
  q_.zone[{"plain.example", RrType::Mx}] = nodata(300);
  q_.zone[{"plain.example", RrType::A}] = addr({"192.0.2.10"});
  q_.zone[{"plain.example", RrType::Aaaa}] = addr({"2001:db8::10"});
  MxCache c(q_, clock_, opts());
  auto a = resolve(c, "plain.example");
  ASSERT_EQ(a->status, MxStatus::Ok);
  EXPECT_TRUE(a->implicit_mx);
  ASSERT_EQ(a->hosts.size(), 1u);
  EXPECT_EQ(a->hosts[0].name, "plain.example");
  EXPECT_EQ(a->hosts[0].preference, 0);
  EXPECT_EQ(a->hosts[0].addresses.size(), 2u);
}

// RFC 7672 §2.2: a host is authenticated only when its MX answer and both of its address
// answers carried AD.
TEST_F(MxCacheTest, HostAuthenticatedOnlyWhenMxAndAddressesAre) {
  auto secure = [](Answer a) {
    a.authenticated = true;
    return a;
  };
  q_.zone[{"signed.example", RrType::Mx}] =
      secure(mx({{10, "mx1.signed.example"}, {20, "mx2.signed.example"}}));
  q_.zone[{"mx1.signed.example", RrType::A}] = secure(addr({"192.0.2.1"}));
  q_.zone[{"mx1.signed.example", RrType::Aaaa}] = secure(nodata());
  q_.zone[{"mx2.signed.example", RrType::A}] = secure(addr({"192.0.2.2"}));
  q_.zone[{"mx2.signed.example", RrType::Aaaa}] = nodata();  // not AD
  q_.zone[{"unsigned.example", RrType::Mx}] = mx({{10, "mx1.signed.example"}});
  MxCache c(q_, clock_, opts());
  auto a = resolve(c, "signed.example");
  ASSERT_EQ(a->hosts.size(), 2u);
  EXPECT_TRUE(a->hosts[0].authenticated);
  EXPECT_FALSE(a->hosts[1].authenticated);
  auto b = resolve(c, "unsigned.example");
  ASSERT_EQ(b->hosts.size(), 1u);
  EXPECT_FALSE(b->hosts[0].authenticated);  // the MX name itself cannot be trusted
}

TEST_F(MxCacheTest, NoMxNoAddressIsPermanent) {
  q_.zone[{"empty.example", RrType::Mx}] = nodata(60);
  q_.zone[{"empty.example", RrType::A}] = nodata(60);
  q_.zone[{"empty.example", RrType::Aaaa}] = nodata(60);
  MxCache c(q_, clock_, opts());
  auto a = resolve(c, "empty.example");
  EXPECT_EQ(a->status, MxStatus::Permanent);
  EXPECT_EQ(a->error, errc::no_data);
}

TEST_F(MxCacheTest, NullMxIsPermanentWithoutAddressLookups) {
  q_.zone[{"nomail.example", RrType::Mx}] = mx({{0, ""}});
  MxCache c(q_, clock_, opts());
  auto a = resolve(c, "nomail.example");
  EXPECT_EQ(a->status, MxStatus::Permanent);
  EXPECT_EQ(a->error, errc::null_mx);
  EXPECT_NE(a->detail.find("null MX"), std::string::npos);
  EXPECT_EQ(q_.asked.size(), 1u);
}

TEST_F(MxCacheTest, NxDomainIsPermanentAndCachedPerSoa) {
  q_.zone[{"gone.example", RrType::Mx}] = rcode(Rcode::NxDomain, 120);
  MxCache c(q_, clock_, opts());
  auto a = resolve(c, "gone.example");
  EXPECT_EQ(a->status, MxStatus::Permanent);
  EXPECT_EQ(a->error, errc::nxdomain);
  EXPECT_EQ(a->detail, "gone.example: NXDOMAIN");
  EXPECT_EQ(a->expires, clock_.now() + 120s);
  clock_.advance(119s);
  bool waited = true;
  resolve(c, "gone.example", &waited);
  EXPECT_FALSE(waited);
  clock_.advance(2s);
  resolve(c, "gone.example", &waited);
  EXPECT_TRUE(waited);
  EXPECT_EQ(q_.count("gone.example", RrType::Mx), 2);
}

TEST_F(MxCacheTest, NegativeTtlCappedByOption) {
  q_.zone[{"gone.example", RrType::Mx}] = rcode(Rcode::NxDomain, 86400);
  auto o = opts();
  o.negative_ttl = 10min;
  MxCache c(q_, clock_, o);
  EXPECT_EQ(resolve(c, "gone.example")->expires, clock_.now() + 10min);
}

TEST_F(MxCacheTest, ServfailAndTimeoutAreTemporaryAndBrieflyCached) {
  q_.zone[{"broken.example", RrType::Mx}] = rcode(Rcode::ServFail);
  q_.zone[{"slow.example", RrType::Mx}] = Result<Answer>(fail(errc::timeout));
  auto o = opts();
  o.failure_ttl = 20s;
  MxCache c(q_, clock_, o);
  auto a = resolve(c, "broken.example");
  EXPECT_EQ(a->status, MxStatus::Temporary);
  EXPECT_EQ(a->error, errc::server_failure);
  EXPECT_NE(a->detail.find("SERVFAIL"), std::string::npos);
  EXPECT_EQ(a->expires, clock_.now() + 20s);
  auto t = resolve(c, "slow.example");
  EXPECT_EQ(t->status, MxStatus::Temporary);
  EXPECT_EQ(t->error, errc::timeout);
  clock_.advance(21s);
  bool waited = false;
  resolve(c, "broken.example", &waited);
  EXPECT_TRUE(waited);
}

TEST_F(MxCacheTest, PartialHostFailureUsesTheOthers) {
  q_.zone[{"part.example", RrType::Mx}] = mx({{10, "bad.part.example"}, {20, "good.part.example"}});
  q_.zone[{"bad.part.example", RrType::A}] = rcode(Rcode::ServFail);
  q_.zone[{"bad.part.example", RrType::Aaaa}] = rcode(Rcode::ServFail);
  host("good.part.example", {"192.0.2.20"});
  MxCache c(q_, clock_, opts());
  auto a = resolve(c, "part.example");
  ASSERT_EQ(a->status, MxStatus::Ok);
  ASSERT_EQ(a->hosts.size(), 1u);
  EXPECT_EQ(a->hosts[0].name, "good.part.example");
}

TEST_F(MxCacheTest, AllHostsTemporaryIsTemporaryAllNxIsPermanent) {
  q_.zone[{"t.example", RrType::Mx}] = mx({{10, "x.t.example"}});
  q_.zone[{"x.t.example", RrType::A}] = Result<Answer>(fail(errc::timeout));
  q_.zone[{"x.t.example", RrType::Aaaa}] = nodata();
  q_.zone[{"p.example", RrType::Mx}] = mx({{10, "missing.p.example"}, {20, "1.2.3.4"}});
  MxCache c(q_, clock_, opts());
  auto t = resolve(c, "t.example");
  EXPECT_EQ(t->status, MxStatus::Temporary);
  auto p = resolve(c, "p.example");
  EXPECT_EQ(p->status, MxStatus::Permanent);
  EXPECT_EQ(p->error, errc::no_usable_mx);
  EXPECT_EQ(q_.count("1.2.3.4", RrType::A), 0);  // an IP literal is not a host name
}

TEST_F(MxCacheTest, TtlClampedToMinAndMax) {
  q_.zone[{"short.example", RrType::Mx}] = mx({{10, "mx.short.example"}}, 5);
  host("mx.short.example", {"192.0.2.30"}, 5);
  q_.zone[{"long.example", RrType::Mx}] = mx({{10, "mx.long.example"}}, 30 * 86400);
  host("mx.long.example", {"192.0.2.31"}, 30 * 86400);
  q_.zone[{"mid.example", RrType::Mx}] = mx({{10, "mx.mid.example"}}, 900);
  host("mx.mid.example", {"192.0.2.32"}, 300);  // the smallest TTL on the path wins
  auto o = opts();
  o.min_ttl = 60s;
  o.max_ttl = 1h;
  MxCache c(q_, clock_, o);
  EXPECT_EQ(resolve(c, "short.example")->expires, clock_.now() + 60s);
  EXPECT_EQ(resolve(c, "long.example")->expires, clock_.now() + 1h);
  EXPECT_EQ(resolve(c, "mid.example")->expires, clock_.now() + 300s);
}

TEST_F(MxCacheTest, ConcurrentLookupsCoalesce) {
  q_.zone[{"busy.example", RrType::Mx}] = mx({{10, "mx.busy.example"}});
  host("mx.busy.example", {"192.0.2.40"});
  MxCache c(q_, clock_, opts());
  int calls = 0;
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(c.lookup("busy.example",
                       [&](MxAnswer a) {
                         ++calls;
                         EXPECT_EQ(a->status, MxStatus::Ok);
                       }),
              nullptr);
  }
  EXPECT_EQ(calls, 0);  // never called from inside lookup()
  EXPECT_EQ(c.resolving(), 1u);
  q_.run();
  EXPECT_EQ(calls, 5);
  EXPECT_EQ(q_.count("busy.example", RrType::Mx), 1);
  EXPECT_EQ(c.stats().coalesced, 4u);
}

TEST_F(MxCacheTest, RefreshAheadKeepsUsedEntriesWarm) {
  q_.zone[{"hot.example", RrType::Mx}] = mx({{10, "mx1.hot.example"}}, 100);
  host("mx1.hot.example", {"192.0.2.50"}, 100);
  auto o = opts();
  o.min_ttl = 10s;
  o.refresh_fraction = 0.8;
  MxCache c(q_, clock_, o);
  resolve(c, "hot.example");
  clock_.advance(50s);
  bool waited = true;
  resolve(c, "hot.example", &waited);  // a use: the entry is now "hot"
  EXPECT_FALSE(waited);
  clock_.advance(25s);  // 75 s: not yet due
  c.tick();
  EXPECT_TRUE(q_.pending.empty());
  // The zone changes; the refresh at 80 s picks it up before the entry expires at 100 s.
  q_.zone[{"hot.example", RrType::Mx}] = mx({{10, "mx2.hot.example"}}, 100);
  host("mx2.hot.example", {"192.0.2.51"}, 100);
  clock_.advance(6s);
  c.tick();
  EXPECT_EQ(q_.pending.size(), 1u);
  q_.run();
  EXPECT_EQ(c.stats().refreshes, 1u);
  clock_.advance(30s);  // past the first answer's expiry
  auto a = resolve(c, "hot.example", &waited);
  EXPECT_FALSE(waited);  // never waited for a known domain
  EXPECT_EQ(a->hosts[0].name, "mx2.hot.example");
}

TEST_F(MxCacheTest, UnusedEntriesAreNotRefreshed) {
  q_.zone[{"cold.example", RrType::Mx}] = mx({{10, "mx.cold.example"}}, 100);
  host("mx.cold.example", {"192.0.2.60"}, 100);
  auto o = opts();
  o.min_ttl = 10s;
  MxCache c(q_, clock_, o);
  resolve(c, "cold.example");
  clock_.advance(90s);
  c.tick();
  EXPECT_TRUE(q_.pending.empty());
}

TEST_F(MxCacheTest, LookupPastRefreshPointStartsRefreshAndAnswersNow) {
  q_.zone[{"hot.example", RrType::Mx}] = mx({{10, "mx.hot.example"}}, 100);
  host("mx.hot.example", {"192.0.2.70"}, 100);
  auto o = opts();
  o.min_ttl = 10s;
  MxCache c(q_, clock_, o);
  resolve(c, "hot.example");
  clock_.advance(85s);
  MxAnswer now = c.lookup("hot.example", [](MxAnswer) { FAIL() << "must not wait"; });
  ASSERT_TRUE(now);
  EXPECT_EQ(q_.pending.size(), 1u);  // the refresh
  q_.run();
  EXPECT_EQ(c.stats().refreshes, 1u);
}

TEST_F(MxCacheTest, FailedRefreshKeepsServingTheValidAnswer) {
  q_.zone[{"hot.example", RrType::Mx}] = mx({{10, "mx.hot.example"}}, 100);
  host("mx.hot.example", {"192.0.2.80"}, 100);
  auto o = opts();
  o.min_ttl = 10s;
  MxCache c(q_, clock_, o);
  resolve(c, "hot.example");
  clock_.advance(85s);
  q_.zone[{"hot.example", RrType::Mx}] = rcode(Rcode::ServFail);
  ASSERT_TRUE(c.lookup("hot.example", nullptr));
  q_.run();
  bool waited = true;
  auto a = resolve(c, "hot.example", &waited);
  EXPECT_FALSE(waited);
  EXPECT_EQ(a->status, MxStatus::Ok);
}

TEST_F(MxCacheTest, PrewarmFillsTheCache) {
  q_.zone[{"a.example", RrType::Mx}] = mx({{10, "mx.a.example"}});
  host("mx.a.example", {"192.0.2.90"});
  q_.zone[{"b.example", RrType::Mx}] = rcode(Rcode::NxDomain);
  MxCache c(q_, clock_, opts());
  std::vector<std::string> list = {"a.example", "B.example", "a.example"};
  c.prewarm(list);
  EXPECT_EQ(c.resolving(), 2u);
  q_.run();
  EXPECT_EQ(c.size(), 2u);
  bool waited = true;
  EXPECT_EQ(resolve(c, "a.example", &waited)->status, MxStatus::Ok);
  EXPECT_FALSE(waited);
  EXPECT_EQ(resolve(c, "b.example", &waited)->status, MxStatus::Permanent);
  EXPECT_FALSE(waited);
}

TEST_F(MxCacheTest, LruEvictsTheLeastRecentlyUsed) {
  for (auto d : {"1.example", "2.example", "3.example"}) {
    q_.zone[{d, RrType::Mx}] = rcode(Rcode::NxDomain, 300);
  }
  auto o = opts();
  o.max_entries = 2;
  MxCache c(q_, clock_, o);
  resolve(c, "1.example");
  resolve(c, "2.example");
  resolve(c, "1.example");  // 1 is now more recent than 2
  resolve(c, "3.example");  // evicts 2
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(c.stats().evictions, 1u);
  bool waited = false;
  resolve(c, "1.example", &waited);
  EXPECT_FALSE(waited);
  resolve(c, "2.example", &waited);
  EXPECT_TRUE(waited);
}

TEST_F(MxCacheTest, IdnDomainsAreAskedAsALabels) {
  q_.zone[{"xn--bcher-kva.example", RrType::Mx}] = mx({{10, "mx.xn--bcher-kva.example"}});
  host("mx.xn--bcher-kva.example", {"192.0.2.100"});
  MxCache c(q_, clock_, opts());
  auto a = resolve(c,
                   "B\xc3\xbc"
                   "cher.example");  // "Bücher.example"
  ASSERT_EQ(a->status, MxStatus::Ok) << a->detail;
  EXPECT_EQ(a->domain, "xn--bcher-kva.example");
  EXPECT_EQ(q_.count("xn--bcher-kva.example", RrType::Mx), 1);
}

TEST_F(MxCacheTest, InvalidIdnIsPermanentAtOnce) {
  MxCache c(q_, clock_, opts());
  // U+0080 (a C1 control) and invalid UTF-8 are not valid in a domain label.
  for (std::string bad : {std::string("a\xc2\x80"
                                      "b.example"),
                          std::string("\xff\xfe.example")}) {
    auto a = c.lookup(bad, [](MxAnswer) { FAIL(); });
    ASSERT_TRUE(a);
    EXPECT_EQ(a->status, MxStatus::Permanent);
    EXPECT_EQ(a->error, errc::bad_idn);
    EXPECT_NE(a->detail.find("invalid IDN"), std::string::npos) << a->detail;
  }
  EXPECT_TRUE(q_.asked.empty());
  auto a = c.lookup("bad\"name.example", [](MxAnswer) { FAIL(); });
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, MxStatus::Permanent);
  EXPECT_EQ(a->error, errc::bad_name);
}

TEST(MxCacheToAscii, Forms) {
  EXPECT_EQ(*MxCache::to_ascii("Example.COM."), "example.com");
  EXPECT_EQ(*MxCache::to_ascii("\xe4\xbe\x8b\xe5\xad\x90.test"), "xn--fsqu00a.test");
  EXPECT_EQ(MxCache::to_ascii("").error(), errc::bad_name);
  EXPECT_EQ(MxCache::to_ascii("a..b").error(), errc::bad_name);
  EXPECT_EQ(MxCache::to_ascii("a b.example").error(), errc::bad_name);
  EXPECT_EQ(MxCache::to_ascii(".example").error(), errc::bad_name);
  EXPECT_EQ(MxCache::to_ascii(std::string(64, 'a') + ".example").error(), errc::bad_name);
  EXPECT_EQ(*MxCache::to_ascii("Under_score-1.example"), "under_score-1.example");
}

TEST_F(MxCacheTest, DestroyedCacheIgnoresLateAnswers) {
  q_.zone[{"late.example", RrType::Mx}] = mx({{10, "mx.late.example"}});
  {
    MxCache c(q_, clock_, opts());
    (void)c.lookup("late.example", [](MxAnswer) { FAIL(); });
  }
  q_.run();  // must not touch the destroyed cache
}

}  // namespace
}  // namespace salvo::dns::test
