// SPDX-License-Identifier: Apache-2.0
// The pure delivery policy: retry schedule and expiry, token buckets, back-off, and the
// verdict classifier with its category table.
#include <salvo/queue/shaping.h>
#include <salvo/queue/verdict.h>

#include <gtest/gtest.h>

namespace salvo::queue {
namespace {

using namespace std::chrono_literals;

WallTime t0() { return WallTime(std::chrono::seconds(1'800'000'000)); }

TEST(RetrySchedule, IntervalsThenTheLastRepeatsUntilExpiry) {
  RetrySchedule s({5min, 10min, 30min}, 2h);
  WallTime arrival = t0();
  EXPECT_EQ(s.next_attempt(arrival, arrival, 1), arrival + 5min);
  EXPECT_EQ(s.next_attempt(arrival, arrival + 5min, 2), arrival + 15min);
  EXPECT_EQ(s.next_attempt(arrival, arrival + 15min, 3), arrival + 45min);
  EXPECT_EQ(s.next_attempt(arrival, arrival + 45min, 4), arrival + 75min);   // 30 min again
  EXPECT_EQ(s.next_attempt(arrival, arrival + 75min, 5), arrival + 105min);
  EXPECT_EQ(s.next_attempt(arrival, arrival + 105min, 6), std::nullopt);    // 135 > 120
  EXPECT_FALSE(s.expired(arrival, arrival + 119min));
  EXPECT_TRUE(s.expired(arrival, arrival + 2h));
  RetrySchedule none({}, 1h);
  EXPECT_EQ(none.next_attempt(arrival, arrival, 1), std::nullopt);
}

TEST(TokenBucket, RateAndBurst) {
  TimePoint now{};
  TokenBucket b(Rate{10, 1s});  // 10 per second, burst 10
  int taken = 0;
  while (b.try_take(now)) ++taken;
  EXPECT_EQ(taken, 10);
  EXPECT_EQ(b.next_token(now), now + 100ms);
  EXPECT_FALSE(b.try_take(now + 99ms));
  EXPECT_TRUE(b.try_take(now + 100ms));
  // A long idle period refills to the burst only.
  now += 1h;
  taken = 0;
  while (b.try_take(now)) ++taken;
  EXPECT_EQ(taken, 10);
  // Over a simulated minute the rate holds exactly.
  taken = 0;
  for (auto t = now; t < now + 60s; t += 1ms) taken += b.try_take(t) ? 1 : 0;
  EXPECT_NEAR(taken, 600, 1);
}

TEST(TokenBucket, SlowRatesAndExplicitBurst) {
  TimePoint now{};
  TokenBucket b(Rate{100, 1h}, 1);  // 100/h, one at a time
  EXPECT_TRUE(b.try_take(now));
  EXPECT_FALSE(b.try_take(now));
  EXPECT_EQ(b.next_token(now), now + 36s);
  EXPECT_TRUE(b.try_take(now + 36s));
}

TEST(Backoff, ThrottlePausesThenReopensSlowly) {
  BackoffOptions o;
  o.first_pause = 1min;
  o.max_pause = 4min;
  o.reopen_after = 3;
  Backoff b(5, o);
  TimePoint now{};
  EXPECT_EQ(b.allowed_connections(now), 5u);
  b.on_throttled(now);
  EXPECT_EQ(b.state(now), Backoff::State::Paused);
  EXPECT_EQ(b.allowed_connections(now + 59s), 0u);
  EXPECT_EQ(b.allowed_connections(now + 1min), 1u);
  EXPECT_EQ(b.state(now + 1min), Backoff::State::Recovering);
  for (int i = 0; i < 3; ++i) b.on_delivered();
  EXPECT_EQ(b.allowed_connections(now + 1min), 2u);
  for (int i = 0; i < 9; ++i) b.on_delivered();
  EXPECT_EQ(b.allowed_connections(now + 1min), 5u);
  EXPECT_EQ(b.state(now + 1min), Backoff::State::Normal);
}

TEST(Backoff, RepeatedThrottlesDoubleThePauseUpToTheMaximum) {
  BackoffOptions o;
  o.first_pause = 1min;
  o.max_pause = 3min;
  Backoff b(10, o);
  TimePoint now{};
  b.on_throttled(now);
  EXPECT_EQ(b.paused_until(), now + 1min);
  now += 1min;
  b.on_throttled(now);  // while recovering
  EXPECT_EQ(b.paused_until(), now + 2min);
  now += 2min;
  b.on_throttled(now);
  EXPECT_EQ(b.paused_until(), now + 3min);  // capped
  b.set_max_connections(1);
  now += 3min;
  EXPECT_EQ(b.allowed_connections(now), 1u);
  b.on_delivered();  // window already at the (new) maximum: back to normal soon
  EXPECT_EQ(b.allowed_connections(now), 1u);
}

Classifier builtin() {
  auto c = Classifier::create({});
  EXPECT_TRUE(c);
  return std::move(*c);
}

TEST(Classifier, VerdictsByCodeAndStage) {
  Classifier c = builtin();
  auto d = c.classify(Stage::DataEnd, smtp::Reply(250, {2, 0, 0}, "Ok: queued"));
  EXPECT_EQ(d.verdict, Verdict::Delivered);
  d = c.classify(Stage::Rcpt, smtp::Reply(450, {4, 2, 0}, "Mailbox busy"));
  EXPECT_EQ(d.verdict, Verdict::Deferred);
  EXPECT_FALSE(d.throttled);
  EXPECT_FALSE(d.next_mx);
  d = c.classify(Stage::Mail, smtp::Reply(421, {4, 7, 0}, "Too many connections, slow down"));
  EXPECT_EQ(d.verdict, Verdict::Deferred);
  EXPECT_TRUE(d.throttled);
  EXPECT_TRUE(d.next_mx);
  d = c.classify(Stage::Rcpt, smtp::Reply(451, {4, 7, 1}, "Try again later (greylisted)"));
  EXPECT_TRUE(d.throttled);
  d = c.classify(Stage::Rcpt, smtp::Reply(550, {5, 1, 1}, "No such user"));
  EXPECT_EQ(d.verdict, Verdict::Bounced);
  EXPECT_EQ(d.category, "bad-mailbox");
  d = c.classify(Stage::Greeting, smtp::Reply(554, {5, 7, 1}, "No SMTP service here"));
  EXPECT_EQ(d.verdict, Verdict::Deferred);
  EXPECT_TRUE(d.next_mx);
  d = c.classify(Stage::DataEnd, smtp::Reply(354, {}, "go on"));
  EXPECT_EQ(d.verdict, Verdict::Deferred);
  EXPECT_EQ(d.category, "protocol");
  d = c.transport_failure();
  EXPECT_EQ(d.verdict, Verdict::Deferred);
  EXPECT_TRUE(d.next_mx);
}

TEST(Classifier, BuiltInCategories) {
  Classifier c = builtin();
  struct Case {
    std::uint16_t code;
    const char* enh;
    const char* text;
    const char* category;
  };
  const Case cases[] = {
      {550, "5.1.1", "<a@b>: Recipient address rejected: User unknown", "bad-mailbox"},
      {550, "", "Requested action not taken: mailbox unavailable", "bad-mailbox"},
      {550, "5.1.2", "Host or domain name not found", "bad-domain"},
      {552, "5.2.2", "Mailbox full", "quota"},
      {552, "", "user is over quota", "quota"},
      {554, "5.7.1", "Service unavailable; client host blocked using Spamhaus", "spam-block"},
      {550, "5.7.1", "Message rejected as spam", "spam-block"},
      {550, "5.7.26", "Unauthenticated email is not accepted (DMARC policy)", "policy"},
      {554, "5.7.1", "Relay access denied", "policy"},
      {554, "5.4.6", "Hop count exceeded - possible mail loop", "routing"},
      {500, "5.5.2", "Syntax error", "protocol"},
      {552, "5.3.4", "Message size exceeds fixed limit", "other"},
  };
  for (const auto& k : cases) {
    const smtp::Reply r(k.code, smtp::parse_enhanced_status(k.enh), k.text);
    EXPECT_EQ(c.category_of(r), k.category) << k.code << " " << k.text;
  }
}

TEST(Classifier, OperatorRulesComeFirstAndBadPatternsAreRefused) {
  auto c = Classifier::create({{"^550 .*mailbox unavailable", "quota"}});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->category_of(smtp::Reply(550, {}, "Requested action not taken: mailbox unavailable")), "quota");
  EXPECT_EQ(c->category_of(smtp::Reply(550, {5, 1, 1}, "No such user")), "bad-mailbox");
  EXPECT_FALSE(Classifier::create({{"([unclosed", "quota"}}));
}

}  // namespace
}  // namespace salvo::queue
