// SPDX-License-Identifier: Apache-2.0
// DeliveryPolicy: rewrites, fates, expiry, retry times and delay notices.
#include <salvo/queue/policy.h>

#include <gtest/gtest.h>

namespace salvo::queue {
namespace {

using namespace std::chrono_literals;

class PolicyTest : public ::testing::Test {
 protected:
  PolicyTest() : classifier_(*Classifier::create({})), policy_(classifier_, options()) {}
  static PolicyOptions options() {
    PolicyOptions o;
    o.retry_schedule = {10min, 1h};
    o.expiry = 4h;
    o.delay_notice_after = 30min;
    return o;
  }
  AttemptFacts facts(Stage stage, smtp::Reply r, std::uint32_t attempts = 0,
                     Duration since = 1min) const {
    AttemptFacts f;
    f.stage = stage;
    f.reply = std::move(r);
    f.attempts = attempts;
    f.received = WallTime(std::chrono::seconds(1'700'000'000));
    f.now = f.received + std::chrono::duration_cast<WallTime::duration>(since);
    return f;
  }
  Classifier classifier_;
  DeliveryPolicy policy_;
};

TEST_F(PolicyTest, DeliveredAtEndOfData) {
  auto d = policy_.decide(facts(Stage::DataEnd, smtp::Reply(250, {2, 0, 0}, "ok")));
  EXPECT_EQ(d.fate, Fate::Delivered);
  EXPECT_FALSE(d.throttle);
}

TEST_F(PolicyTest, PermanentRcptReplyBouncesWithCategory) {
  auto d = policy_.decide(facts(Stage::Rcpt, smtp::Reply(550, {5, 1, 1}, "no such user")));
  EXPECT_EQ(d.fate, Fate::Bounced);
  EXPECT_EQ(d.category, "bad-mailbox");
  EXPECT_EQ(d.status, "5.1.1");
}

TEST_F(PolicyTest, TemporaryReplyDefersToTheScheduleStep) {
  auto f = facts(Stage::Rcpt, smtp::Reply(451, {4, 3, 0}, "later"));
  auto d = policy_.decide(f);
  EXPECT_EQ(d.fate, Fate::Deferred);
  EXPECT_EQ(d.next_attempt, f.now + std::chrono::duration_cast<WallTime::duration>(10min));
}

TEST_F(PolicyTest, LastScheduleStepRepeats) {
  auto f = facts(Stage::Rcpt, smtp::Reply(451, {4, 3, 0}, "later"), 5, 1h);
  auto d = policy_.decide(f);
  EXPECT_EQ(d.fate, Fate::Deferred);
  EXPECT_EQ(d.next_attempt, f.now + std::chrono::duration_cast<WallTime::duration>(1h));
}

TEST_F(PolicyTest, DeferralPastExpiryExpiresWith447) {
  auto d = policy_.decide(facts(Stage::Connect, smtp::Reply(550, {5, 7, 1}, "go away"), 3, 3h + 30min));
  EXPECT_EQ(d.fate, Fate::Expired) << "a 5xx at connect defers; out of time it expires";
  EXPECT_EQ(d.status, "4.4.7");
}

TEST_F(PolicyTest, ExpiryKeepsATemporaryStatusOfItsOwn) {
  auto d = policy_.decide(facts(Stage::Rcpt, smtp::Reply(452, {4, 2, 2}, "full"), 3, 3h + 30min));
  EXPECT_EQ(d.fate, Fate::Expired);
  EXPECT_EQ(d.status, "4.2.2");
}

TEST_F(PolicyTest, ThrottlingReplyThrottlesUnlessLocal) {
  auto f = facts(Stage::Mail, smtp::Reply(421, {4, 7, 0}, "slow down"));
  EXPECT_TRUE(policy_.decide(f).throttle);
  f.local = true;
  EXPECT_FALSE(policy_.decide(f).throttle) << "our own refusals never back off a destination";
}

TEST_F(PolicyTest, PlaintextFallbackRefusedBecomes451AndAsksForTls) {
  auto f = facts(Stage::Mail, smtp::Reply(530, {5, 7, 0}, "Must issue STARTTLS first"));
  f.plaintext_fallback = true;
  auto d = policy_.decide(f);
  EXPECT_EQ(d.fate, Fate::Deferred);
  EXPECT_EQ(d.reply.code, 451);
  EXPECT_EQ(d.status, "4.7.0");
  EXPECT_TRUE(d.tls_needed);
  EXPECT_FALSE(d.throttle) << "a 4.7.0 of our making must not back off";
}

TEST_F(PolicyTest, Same530WithoutFallbackBounces) {
  auto d = policy_.decide(facts(Stage::Mail, smtp::Reply(530, {5, 7, 0}, "Must issue STARTTLS first")));
  EXPECT_EQ(d.fate, Fate::Bounced);
  EXPECT_FALSE(d.tls_needed);
}

TEST_F(PolicyTest, DelayNoticeOnceWhenTheThresholdIsCrossed) {
  // Attempts at 0, +10 min, +70 min: the threshold (30 min) is crossed at the third.
  auto first = policy_.decide(facts(Stage::Rcpt, smtp::Reply(451, {4, 3, 0}, "x"), 0, 1min));
  auto second = policy_.decide(facts(Stage::Rcpt, smtp::Reply(451, {4, 3, 0}, "x"), 1, 11min));
  auto third = policy_.decide(facts(Stage::Rcpt, smtp::Reply(451, {4, 3, 0}, "x"), 2, 71min));
  auto fourth = policy_.decide(facts(Stage::Rcpt, smtp::Reply(451, {4, 3, 0}, "x"), 3, 131min));
  EXPECT_FALSE(first.delay_notice);
  EXPECT_FALSE(second.delay_notice);
  EXPECT_TRUE(third.delay_notice);
  EXPECT_FALSE(fourth.delay_notice);
}

TEST_F(PolicyTest, NoDelayNoticeWhenDisabled) {
  PolicyOptions o = options();
  o.delay_notice_after = Duration(0);
  DeliveryPolicy p(classifier_, o);
  EXPECT_FALSE(p.decide(facts(Stage::Rcpt, smtp::Reply(451, {4, 3, 0}, "x"), 2, 71min)).delay_notice);
}

TEST_F(PolicyTest, FivexxBeforeReadyDefersWithTheHostsWords) {
  auto sf = policy_.session_failed(smtp::Reply(554, {5, 7, 1}, "no service"), true, false, "mx1.example");
  EXPECT_TRUE(sf.try_next_host);
  EXPECT_EQ(sf.deferral.code, 451);
  EXPECT_EQ(sf.deferral.status.to_string(), "4.4.0");
  EXPECT_NE(sf.deferral.text.find("mx1.example said: 554"), std::string::npos);
  EXPECT_EQ(sf.down_for, Duration(5min)) << "at most five minutes, and the first retry step";
}

TEST_F(PolicyTest, FourxxBeforeReadyKeepsItsReply) {
  auto sf = policy_.session_failed(smtp::Reply(421, {4, 7, 0}, "busy"), true, false, "mx1");
  EXPECT_TRUE(sf.try_next_host);
  EXPECT_TRUE(sf.throttle);
  EXPECT_EQ(sf.deferral.code, 421);
}

TEST_F(PolicyTest, LocalSessionRefusalDoesNotThrottle) {
  auto sf = policy_.session_failed(smtp::Reply(421, {4, 7, 0}, "TLS required"), true, true, "mx1");
  EXPECT_FALSE(sf.throttle);
}

TEST_F(PolicyTest, MailStage5xxIsNotASessionFailure) {
  auto sf = policy_.session_failed(smtp::Reply(550, {5, 1, 0}, "sender refused"), false, false, "mx1");
  EXPECT_FALSE(sf.try_next_host);
}

TEST_F(PolicyTest, ExpiredBeforeAnAttempt) {
  const WallTime r(std::chrono::seconds(1'700'000'000));
  EXPECT_FALSE(policy_.expired(r, r + std::chrono::duration_cast<WallTime::duration>(3h)));
  EXPECT_TRUE(policy_.expired(r, r + std::chrono::duration_cast<WallTime::duration>(4h)));
  EXPECT_EQ(DeliveryPolicy::expired_reply(true).status.to_string(), "4.4.7");
}

}  // namespace
}  // namespace salvo::queue
