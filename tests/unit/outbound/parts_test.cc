// SPDX-License-Identifier: Apache-2.0
// The destination's parts on their own: Backlog (order, grouping, jobs, release,
// rollup hand-over), Route (MX order, rotation, down marks, failures, rollup, [routes]
// by address and by name, next hops that are this node), Shaper (limits, rates, back-off,
// pause) and Pool (capacity, lingering places, egress rotation).
#include <gtest/gtest.h>

#include "outbound/backlog.h"
#include "outbound/pool.h"
#include "outbound/route.h"
#include "outbound/shaper.h"
#include "support/test_clock.h"

namespace salvo::outbound {
namespace {

using namespace std::chrono_literals;

Enqueue rcpt(std::uint64_t message, std::uint32_t index, bool job = false) {
  Enqueue e;
  e.message = message;
  e.recipient = index;
  e.is_job = job;
  e.index_in_record = job ? index % 10 : index;
  e.record = spool::Location{spool::SegmentSeq(1), static_cast<std::uint64_t>(100 + index / 10), 10};
  e.domain = "example.com";
  return e;
}

const WallTime kNow(std::chrono::seconds(1'700'000'000));

TEST(Backlog, TransactionsGroupOneMessagesRecipientsInArrivalOrder) {
  Backlog b;
  b.add(rcpt(1, 0), kNow);
  b.add(rcpt(2, 0), kNow);
  b.add(rcpt(1, 1), kNow);
  Batch t = b.take(100);
  ASSERT_EQ(t.rcpts.size(), 2u);
  EXPECT_EQ(t.rcpts[0].message, 1u);
  EXPECT_EQ(t.rcpts[1].recipient, 1u);
  EXPECT_EQ(b.take(100).rcpts.front().message, 2u);
  EXPECT_TRUE(b.take(100).rcpts.empty());
}

TEST(Backlog, MaxRecipientsSplitsAMessage) {
  Backlog b;
  for (std::uint32_t i = 0; i < 5; ++i) b.add(rcpt(1, i), kNow);
  EXPECT_EQ(b.take(2).rcpts.size(), 2u);
  EXPECT_EQ(b.take(2).rcpts.size(), 2u);
  EXPECT_EQ(b.take(2).rcpts.size(), 1u);
}

TEST(Backlog, AJobTakesOneRecipientWithItsBatch) {
  Backlog b;
  for (std::uint32_t i = 0; i < 12; ++i) b.add(rcpt(7, i, true), kNow);
  b.take(100);
  for (int i = 0; i < 10; ++i) b.take(100);
  Batch t = b.take(100);
  ASSERT_EQ(t.rcpts.size(), 1u);
  EXPECT_EQ(t.rcpts[0].recipient, 11u);
  ASSERT_EQ(t.info.batches.size(), 1u) << "only the batch holding the recipient";
  EXPECT_EQ(t.info.batches.begin()->first, 10u);
}

TEST(Backlog, DeferredRecipientsWaitForTheirTime) {
  Backlog b;
  Enqueue e = rcpt(1, 0);
  e.attempts = 1;
  e.next_attempt_unix_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               (kNow + 10min).time_since_epoch()).count();
  b.add(e, kNow);
  EXPECT_EQ(b.ready(), 0u);
  EXPECT_EQ(b.deferred(), 1u);
  b.promote(kNow + 10min);
  EXPECT_EQ(b.ready(), 1u);
}

TEST(Backlog, MessageInfoLivesUntilItsLastRecipientIsReleased) {
  Backlog b;
  b.add(rcpt(1, 0), kNow);
  b.add(rcpt(1, 1), kNow);
  b.take(100);
  b.release(1);
  EXPECT_TRUE(b.info(1, 0).has_value());
  b.release(1);
  EXPECT_FALSE(b.info(1, 0).has_value());
}

TEST(Backlog, RequeueUsesNoAttempt) {
  Backlog b;
  b.add(rcpt(1, 0), kNow);
  Batch t = b.take(100);
  b.requeue(t.rcpts);
  Batch again = b.take(100);
  ASSERT_EQ(again.rcpts.size(), 1u);
  EXPECT_EQ(again.rcpts[0].attempts, 0u);
}

TEST(Backlog, DrainToARollupHandsEverythingOverWithItsLocation) {
  Backlog b;
  b.add(rcpt(1, 0), kNow);
  b.add(rcpt(9, 13, true), kNow);
  Enqueue d = rcpt(2, 0);
  d.attempts = 2;
  d.next_attempt_unix_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               (kNow + 1h).time_since_epoch()).count();
  b.add(d, kNow);
  auto out = b.drain_to("example.com", "mx:.mail.example", kNow);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.messages(), 0u);
  for (const auto& e : out) EXPECT_EQ(e.key, "mx:.mail.example");
  const auto job = std::find_if(out.begin(), out.end(), [](const Enqueue& e) { return e.is_job; });
  ASSERT_NE(job, out.end());
  EXPECT_EQ(job->index_in_record, 3u);
  const auto later = std::find_if(out.begin(), out.end(), [](const Enqueue& e) { return e.message == 2; });
  EXPECT_EQ(later->attempts, 2u);
  EXPECT_NE(later->next_attempt_unix_ns, 0) << "a deferred recipient keeps its time";
}

TEST(Backlog, ExtractTakesEveryQueuedRecipientOfAMessage) {
  Backlog b;
  b.add(rcpt(1, 0), kNow);
  b.add(rcpt(2, 0), kNow);
  b.add(rcpt(1, 1), kNow);
  EXPECT_EQ(b.extract(1).size(), 2u);
  EXPECT_EQ(b.ready(), 1u);
}

dns::MxResult mx_answer(std::vector<std::pair<std::string, std::uint16_t>> hosts,
                        TimePoint expires, std::string ip_base = "127.0.0.") {
  dns::MxResult r;
  r.status = dns::MxStatus::Ok;
  r.expires = expires;
  int n = 2;
  for (auto& [name, pref] : hosts) {
    dns::MxHost h;
    h.name = name;
    h.preference = pref;
    h.addresses.push_back(*net::SocketAddress::parse(ip_base + std::to_string(n++), 0));
    r.hosts.push_back(std::move(h));
  }
  return r;
}

class RouteTest : public ::testing::Test {
 protected:
  config::Config cfg_;
  test::TestClock clock_;
  TimePoint now() const { return clock_.now(); }
};

TEST_F(RouteTest, StaleUntilResolvedAndAgainWhenTheAnswerExpires) {
  Route r("example.com");
  EXPECT_TRUE(r.stale(now()));
  r.begin_lookup();
  EXPECT_FALSE(r.stale(now()));
  r.apply_mx(mx_answer({{"mx1.example.com", 10}}, now() + 60s), cfg_, now());
  EXPECT_EQ(r.state(), Route::State::Ok);
  EXPECT_FALSE(r.stale(now() + 59s));
  EXPECT_TRUE(r.stale(now() + 60s));
}

TEST_F(RouteTest, MostPreferredHostsInTurnThenTheNextPreference) {
  Route r("example.com");
  r.apply_mx(mx_answer({{"a", 10}, {"b", 10}, {"c", 20}}, now() + 1h), cfg_, now());
  const Host* first = r.pick(now());
  const Host* second = r.pick(now());
  ASSERT_TRUE(first && second);
  EXPECT_NE(first->name, second->name) << "equal preferences share the load";
  EXPECT_NE(first->name, "c");
  r.mark_down(r.hosts()[0].address, now() + 5min);
  r.mark_down(r.hosts()[1].address, now() + 5min);
  EXPECT_EQ(r.pick(now())->name, "c") << "MX fallback when the best are down";
  r.mark_down(r.hosts()[2].address, now() + 5min);
  EXPECT_EQ(r.pick(now()), nullptr);
  EXPECT_NE(r.pick(now() + 5min), nullptr) << "down marks end";
}

TEST_F(RouteTest, SmtpPortAppliesToMxHosts) {
  cfg_.delivery.smtp_port = 2525;
  Route r("example.com");
  r.apply_mx(mx_answer({{"a", 10}}, now() + 1h), cfg_, now());
  EXPECT_EQ(r.hosts()[0].address.port(), 2525);
}

TEST_F(RouteTest, DownMarksSurviveARefresh) {
  Route r("example.com");
  r.apply_mx(mx_answer({{"a", 10}, {"b", 20}}, now() + 1h), cfg_, now());
  r.mark_down(r.hosts()[0].address, now() + 5min);
  r.apply_mx(mx_answer({{"a", 10}, {"b", 20}}, now() + 2h), cfg_, now());
  EXPECT_EQ(r.pick(now())->name, "b");
}

TEST_F(RouteTest, PermanentDnsFailureBouncesTemporaryDefers) {
  Route r("gone.example");
  dns::MxResult a;
  a.status = dns::MxStatus::Permanent;
  a.detail = "NXDOMAIN";
  a.expires = now() + 5min;
  r.apply_mx(a, cfg_, now());
  ASSERT_EQ(r.state(), Route::State::Failed);
  EXPECT_EQ(r.failure()->reply.code, 550);
  EXPECT_EQ(r.failure()->stage, queue::Stage::Rcpt);
  a.status = dns::MxStatus::Temporary;
  Route t("flaky.example");
  t.apply_mx(a, cfg_, now());
  EXPECT_EQ(t.failure()->reply.code, 451);
}

TEST_F(RouteTest, FailedRefreshKeepsTheKnownHosts) {
  Route r("example.com");
  r.apply_mx(mx_answer({{"a", 10}}, now() + 1h), cfg_, now());
  dns::MxResult a;
  a.status = dns::MxStatus::Temporary;
  a.expires = now() + 2h;
  r.apply_mx(a, cfg_, now());
  EXPECT_EQ(r.state(), Route::State::Ok);
  EXPECT_EQ(r.hosts().size(), 1u);
}

TEST_F(RouteTest, MxMatchingASuffixEntryJoinsTheRollup) {
  config::Shaping s;
  s.mx_suffix = ".mail.example";
  cfg_.shaping.push_back(s);
  Route r("customer.example");
  EXPECT_TRUE(r.apply_mx(mx_answer({{"in1.mail.example", 10}}, now() + 1h), cfg_, now()));
  EXPECT_EQ(r.rollup_key(), "mx:.mail.example");
  EXPECT_FALSE(r.apply_mx(mx_answer({{"in1.mail.example", 10}}, now() + 1h), cfg_, now()))
      << "only the first time says 'joined'";
}

TEST_F(RouteTest, ADomainWithItsOwnEntryStaysOutOfTheRollup) {
  config::Shaping s;
  s.mx_suffix = ".mail.example";
  cfg_.shaping.push_back(s);
  config::Shaping own;
  own.domain = "big.example";
  cfg_.shaping.push_back(own);
  Route r("big.example");
  EXPECT_FALSE(r.apply_mx(mx_answer({{"in1.mail.example", 10}}, now() + 1h), cfg_, now()));
  EXPECT_TRUE(r.rollup_key().empty());
}

TEST_F(RouteTest, RollupIgnoresADomainThatLeftTheProvider) {
  Route r("mx:.mail.example");
  r.note_domain("a.example");
  r.note_domain("b.example");
  EXPECT_EQ(r.lookup_name(), "a.example");
  r.apply_mx(mx_answer({{"in1.mail.example", 10}}, now() + 1h), cfg_, now());
  r.apply_mx(mx_answer({{"mx.elsewhere.example", 10}}, now() + 1h), cfg_, now());
  EXPECT_EQ(r.state(), Route::State::Ok);
  EXPECT_EQ(r.hosts()[0].name, "in1.mail.example") << "keeps serving the hosts it had";
  EXPECT_EQ(r.lookup_name(), "b.example") << "and asks with the latest domain next";
}

TEST_F(RouteTest, RollupWithoutHostsDefers) {
  Route r("mx:.mail.example");
  r.note_domain("a.example");
  dns::MxResult a;
  a.status = dns::MxStatus::Permanent;
  a.detail = "NXDOMAIN";
  r.apply_mx(a, cfg_, now());
  ASSERT_EQ(r.state(), Route::State::Failed);
  EXPECT_EQ(r.failure()->reply.code, 451) << "one domain's DNS never bounces the rollup";
}

TEST_F(RouteTest, RoutesByAddressAreTriedInOrder) {
  Route r("example.com");
  auto names = r.apply_routes({{"127.0.0.9", 2525}, {"127.0.0.8", 25}}, now());
  EXPECT_TRUE(names.empty());
  ASSERT_EQ(r.state(), Route::State::Ok);
  EXPECT_EQ(r.pick(now())->address.to_string(), "127.0.0.9:2525");
  r.mark_down(r.hosts()[0].address, now() + 1min);
  EXPECT_EQ(r.pick(now())->address.to_string(), "127.0.0.8:25");
}

TEST_F(RouteTest, RoutesByNameResolveBeforeUse) {
  Route r("example.com");
  auto names = r.apply_routes({{"relay.example.net", 2525}, {"127.0.0.8", 25}}, now());
  ASSERT_EQ(names.size(), 1u);
  EXPECT_EQ(r.state(), Route::State::Resolving);
  r.resolve_hop(names[0], mx_answer({{"relay.example.net", 0}}, now() + 1h, "127.0.0.1"), now());
  ASSERT_EQ(r.state(), Route::State::Ok);
  EXPECT_EQ(r.pick(now())->address.to_string(), "127.0.0.12:2525") << "the named hop first";
  EXPECT_TRUE(r.stale(now() + 1h)) << "and looked up again when its addresses expire";
}

TEST_F(RouteTest, RouteWhoseNamesDoNotResolveDefers) {
  Route r("example.com");
  auto names = r.apply_routes({{"nowhere.invalid", 25}}, now());
  dns::MxResult a;
  a.status = dns::MxStatus::Permanent;
  a.detail = "NXDOMAIN";
  a.expires = now() + 5min;
  r.resolve_hop(names[0], a, now());
  ASSERT_EQ(r.state(), Route::State::Failed);
  EXPECT_EQ(r.failure()->reply.code, 451);
  EXPECT_NE(r.failure()->reply.text.find("nowhere.invalid"), std::string::npos);
}

TEST_F(RouteTest, TlsMemoryPerHost) {
  Route r("example.com");
  r.apply_mx(mx_answer({{"a", 10}}, now() + 1h), cfg_, now());
  const auto addr = r.hosts()[0].address;
  r.tls_failed(addr, now() + 1h);
  EXPECT_EQ(r.hosts()[0].tls_failed_until, now() + 1h);
  r.tls_needed(addr);
  EXPECT_EQ(r.hosts()[0].tls_failed_until, TimePoint{});
}

// This node listening on 127.0.0.2:25, the address mx_answer gives its first host.
OwnListeners listening_on_first_host() {
  const std::vector<net::SocketAddress> l = {*net::SocketAddress::parse("127.0.0.2:25")};
  return OwnListeners(l, {});
}

TEST_F(RouteTest, HostsThatAreThisNodeAreLeftOut) {
  const OwnListeners own = listening_on_first_host();
  Route r("example.com", &own);
  r.apply_mx(mx_answer({{"self", 10}, {"other", 20}}, now() + 1h), cfg_, now());
  ASSERT_EQ(r.state(), Route::State::Ok);
  ASSERT_EQ(r.hosts().size(), 1u);
  EXPECT_EQ(r.hosts()[0].name, "other");
  EXPECT_EQ(r.pick(now())->name, "other") << "the preferred host is this node: skipped";
}

TEST_F(RouteTest, AnMxThatIsOnlyThisNodeFailsAsALoop) {
  const OwnListeners own = listening_on_first_host();
  Route r("example.com", &own);
  r.apply_mx(mx_answer({{"self", 10}}, now() + 1h), cfg_, now());
  ASSERT_EQ(r.state(), Route::State::Failed);
  const LocalFailure& f = *r.failure();
  EXPECT_EQ(f.reply.code, 554);
  EXPECT_EQ(f.reply.status.to_string(), "5.4.4");
  EXPECT_EQ(f.reply.text, "mail for example.com loops back to myself");
  EXPECT_EQ(f.stage, queue::Stage::Rcpt) << "a verdict on the destination: it bounces";
  EXPECT_TRUE(f.loop);
  EXPECT_TRUE(r.stale(now() + 1h)) << "asked again when the answer expires";
  // The same address on another port is another server.
  cfg_.delivery.smtp_port = 2525;
  Route t("example.com", &own);
  t.apply_mx(mx_answer({{"self", 10}}, now() + 1h), cfg_, now());
  EXPECT_EQ(t.state(), Route::State::Ok);
}

TEST_F(RouteTest, RoutesToThisNodeFailAsALoopOrAreSkipped) {
  const OwnListeners own = listening_on_first_host();
  Route only("example.com", &own);
  only.apply_routes({{"127.0.0.2", 25}}, now());
  ASSERT_EQ(only.state(), Route::State::Failed);
  EXPECT_EQ(only.failure()->reply.status.to_string(), "5.4.4");
  EXPECT_TRUE(only.failure()->loop);
  Route two("example.com", &own);
  two.apply_routes({{"127.0.0.2", 25}, {"127.0.0.8", 25}}, now());
  ASSERT_EQ(two.state(), Route::State::Ok);
  ASSERT_EQ(two.hosts().size(), 1u);
  EXPECT_EQ(two.pick(now())->address.to_string(), "127.0.0.8:25");
  // A hop by name whose address is this node.
  Route named("example.com", &own);
  auto names = named.apply_routes({{"relay.example.net", 25}}, now());
  ASSERT_EQ(names.size(), 1u);
  named.resolve_hop(names[0], mx_answer({{"relay.example.net", 0}}, now() + 1h), now());
  ASSERT_EQ(named.state(), Route::State::Failed);
  EXPECT_TRUE(named.failure()->loop);
}

TEST_F(RouteTest, ALoopNeedsEveryHopAnswered) {
  // One hop is this node, the other did not resolve (it may yet be another host): defer.
  const OwnListeners own = listening_on_first_host();
  Route r("example.com", &own);
  auto names = r.apply_routes({{"127.0.0.2", 25}, {"nowhere.invalid", 25}}, now());
  ASSERT_EQ(names.size(), 1u);
  dns::MxResult a;
  a.status = dns::MxStatus::Temporary;
  a.detail = "SERVFAIL";
  a.expires = now() + 1min;
  r.resolve_hop(names[0], a, now());
  ASSERT_EQ(r.state(), Route::State::Failed);
  EXPECT_EQ(r.failure()->reply.code, 451);
  EXPECT_FALSE(r.failure()->loop);
}

config::Shaping shaping(std::uint32_t max_connections) {
  config::Shaping s;
  s.max_connections = max_connections;
  return s;
}

TEST(Shaper, HeldDestinationAllowsNoConnection) {
  auto s = shaping(0);
  Shaper sh(s, 1min);
  test::TestClock c;
  EXPECT_EQ(sh.allowed_connections(c.now()), 0u);
  EXPECT_EQ(sh.state(c.now()), "held");
}

TEST(Shaper, PauseAndResume) {
  auto s = shaping(5);
  Shaper sh(s, 1min);
  test::TestClock c;
  sh.pause();
  EXPECT_EQ(sh.allowed_connections(c.now()), 0u);
  EXPECT_EQ(sh.state(c.now()), "paused");
  sh.resume();
  EXPECT_EQ(sh.allowed_connections(c.now()), 5u);
}

TEST(Shaper, ThrottleBacksOffThenReopensOneConnection) {
  auto s = shaping(8);
  Shaper sh(s, 1min);
  test::TestClock c;
  sh.throttle(c.now());
  EXPECT_EQ(sh.allowed_connections(c.now()), 0u);
  EXPECT_EQ(sh.state(c.now()), "backoff");
  c.advance(1min);
  EXPECT_EQ(sh.allowed_connections(c.now()), 1u);
  EXPECT_EQ(sh.state(c.now()), "recovering");
}

TEST(Shaper, OneThrottlingEpisodeBacksOffOnce) {
  auto s = shaping(8);
  Shaper sh(s, 1min);
  test::TestClock c;
  sh.throttle(c.now());
  c.advance(30s);
  sh.throttle(c.now());  // same episode: no doubling
  c.advance(30s);
  EXPECT_EQ(sh.allowed_connections(c.now()), 1u);
}

TEST(Shaper, BackoffExitsAfterGoodDeliveries) {
  auto s = shaping(2);
  Shaper sh(s, 1min);
  test::TestClock c;
  sh.throttle(c.now());
  c.advance(1min);
  ASSERT_EQ(sh.allowed_connections(c.now()), 1u) << "recovering: one connection";
  for (int i = 0; i < 100; ++i) sh.on_delivered();
  EXPECT_EQ(sh.allowed_connections(c.now()), 2u);
  EXPECT_EQ(sh.state(c.now()), "");
}

TEST(Shaper, MessageRateNeverExceededInASecond) {
  auto s = shaping(5);
  s.max_message_rate = Rate{100, std::chrono::seconds(1)};
  Shaper sh(s, 1min);
  test::TestClock c;
  int taken = 0;
  for (int step = 0; step < 1000; ++step) {  // one second in 1 ms steps
    while (sh.try_message(c.now())) ++taken;
    c.advance(1ms);
  }
  EXPECT_LE(taken, 100 + 10) << "a tenth of a second's burst at most above the rate";
  EXPECT_GE(taken, 95);
}

TEST(Shaper, ConnectionRateLimitsOpens) {
  auto s = shaping(50);
  s.max_connection_rate = Rate{10, std::chrono::seconds(1)};
  Shaper sh(s, 1min);
  test::TestClock c;
  int opened = 0;
  while (sh.try_connection(c.now())) ++opened;
  EXPECT_EQ(opened, 1) << "a tenth of a second's worth: one connection";
}

TEST(Shaper, ReconfigureTakesTheNewLimits) {
  auto a = shaping(5);
  auto b = shaping(0);
  Shaper sh(a, 1min);
  test::TestClock c;
  sh.reconfigure(b, 1min);
  EXPECT_EQ(sh.allowed_connections(c.now()), 0u);
}

struct FakeChannel final : Channel {
  bool is_ready = false;
  std::size_t taken = 0;
  int quits = 0;
  Host h;
  bool ready() const noexcept override { return is_ready; }
  bool connecting() const noexcept override { return !is_ready; }
  std::size_t load() const noexcept override { return taken; }
  const Host& host() const noexcept override { return h; }
  void fill() noexcept override {}
  void submit(Slot*) noexcept override {}
  void quit() noexcept override { ++quits; }
  void slot_detached(Slot*) noexcept override {}
  std::string tls_version() const override { return {}; }
  bool plaintext_fallback() const noexcept override { return false; }
  bool remote_dsn() const noexcept override { return false; }
};

TEST(Pool, CapacityCountsConnectingAsAWholeWindow) {
  Pool p;
  FakeChannel a, b;
  b.is_ready = true;
  b.taken = 3;
  p.add(&a);
  p.add(&b);
  EXPECT_EQ(p.capacity(4), 4u + 1u);
}

TEST(Pool, ClosedConnectionKeepsItsPlaceForTheLinger) {
  Pool p;
  FakeChannel a;
  test::TestClock c;
  p.add(&a);
  p.remove(&a, c.now());
  EXPECT_TRUE(p.empty());
  EXPECT_EQ(p.held(c.now()), 1u);
  c.advance(Pool::kLinger);
  EXPECT_EQ(p.held(c.now()), 0u);
}

TEST(Pool, QuitIdleLeavesBusyConnections) {
  Pool p;
  FakeChannel idle, busy, opening;
  idle.is_ready = busy.is_ready = true;
  busy.taken = 1;
  p.add(&idle);
  p.add(&busy);
  p.add(&opening);
  p.quit_idle();
  EXPECT_EQ(idle.quits, 1);
  EXPECT_EQ(busy.quits, 0);
  EXPECT_EQ(opening.quits, 0);
}

TEST(Pool, EgressAddressesInTurnWithTheirEhlo) {
  config::Config c;
  config::Egress e;
  e.name = "pool1";
  e.addresses = {*config::IpAddress::parse("127.0.0.5"), *config::IpAddress::parse("127.0.0.6")};
  e.ehlo = "out.example";
  c.egress.push_back(e);
  config::Shaping s;
  s.egress = "pool1";
  Pool p;
  auto o1 = p.next_origination(c, s, "node.example");
  auto o2 = p.next_origination(c, s, "node.example");
  EXPECT_TRUE(o1.has_source);
  EXPECT_NE(o1.source.ip(), o2.source.ip());
  EXPECT_EQ(o1.helo, "out.example");
  config::Shaping plain;
  EXPECT_FALSE(p.next_origination(c, plain, "node.example").has_source);
  EXPECT_EQ(p.next_origination(c, plain, "node.example").helo, "node.example");
}

}  // namespace
}  // namespace salvo::outbound
