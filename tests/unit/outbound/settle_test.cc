// SPDX-License-Identifier: Apache-2.0
// settle(): the table of outcomes — what each kind of answer does to the recipients'
// states, the accounting lines, the DSN request, what stays queued and the counters.
#include "outbound/settle.h"

#include <gtest/gtest.h>

#include <salvo/dsn/dsn.h>

#include "outbound/destination_stats.h"

namespace salvo::outbound {
namespace {

using namespace std::chrono_literals;

class SettleTest : public ::testing::Test {
 protected:
  SettleTest() : classifier_(*queue::Classifier::create({})) {
    queue::PolicyOptions o;
    o.retry_schedule = {10min};
    o.expiry = 1h;
    o.delay_notice_after = 20min;
    policy_ = std::make_unique<queue::DeliveryPolicy>(classifier_, o);
    for (std::uint32_t i = 0; i < 2; ++i) {
      queue::QueuedRecipient q;
      q.message = 0x42;
      q.recipient = i;
      rcpts_.push_back(q);
    }
    data_.resize(2);
    data_[0].address = "a@Example.COM";
    data_[1].address = "b@example.com";
    f_.message = 0x42;
    f_.destination = "example.com";
    f_.rcpts = rcpts_;
    f_.rcpt_data = data_;
    f_.reverse_path = "sender@shop.example";
    f_.original = "From: x@shop.example\r\n\r\nhi\r\n";
    f_.received_unix_ns = 1'700'000'000'000'000'000;
    f_.now_unix_ns = f_.received_unix_ns + 60'000'000'000;
    f_.reporting_mta = "node.example";
    f_.over_connection = true;
    f_.mx = "mx1.example.com";
  }
  Settlement run(smtp::TransactionResult r) {
    result_ = std::move(r);
    f_.result = &result_;
    return settle(f_, *policy_);
  }
  static smtp::TransactionResult answered(smtp::Reply final_reply,
                                          std::vector<smtp::Reply> rcpt = {}) {
    smtp::TransactionResult r;
    r.mail_reply = smtp::Reply(250, {2, 1, 0}, "ok");
    r.rcpt_replies = rcpt.empty() ? std::vector<smtp::Reply>(2, smtp::Reply(250, {2, 1, 5}, "ok"))
                                  : rcpt;
    r.final_reply = std::move(final_reply);
    return r;
  }
  queue::Classifier classifier_;
  std::unique_ptr<queue::DeliveryPolicy> policy_;
  std::vector<queue::QueuedRecipient> rcpts_;
  std::vector<RcptData> data_;
  TransactionFacts f_;
  smtp::TransactionResult result_;
};

TEST_F(SettleTest, AllDeliveredNoDsnWithoutNotifySuccess) {
  auto s = run(answered(smtp::Reply(250, {2, 0, 0}, "queued")));
  ASSERT_EQ(s.outcomes.recipients.size(), 2u);
  for (const auto& o : s.outcomes.recipients) {
    EXPECT_EQ(o.state, spool::RecipientState::Delivered);
    EXPECT_EQ(o.attempts, 1u);
  }
  EXPECT_EQ(s.tally.delivered, 2u);
  EXPECT_FALSE(s.dsn);
  EXPECT_EQ(s.finished.size(), 2u);
  EXPECT_TRUE(s.deferred.empty());
  EXPECT_EQ(s.last_reply, "250 2.0.0 queued");
}

TEST_F(SettleTest, AccountingLinesNameTheRoutedDomainInLowerCase) {
  auto s = run(answered(smtp::Reply(250, {2, 0, 0}, "queued")));
  ASSERT_EQ(s.lines.size(), 2u);
  EXPECT_EQ(s.lines[0].rcpt, "a@Example.COM");
  EXPECT_EQ(s.lines[0].domain, "example.com");
  auto ev = to_event(s.lines[0], f_, "0000000000000042");
  EXPECT_EQ(ev.type, accounting::EventType::Delivered);
  EXPECT_EQ(ev.mx, "mx1.example.com");
  EXPECT_EQ(ev.attempt, 1u);
  EXPECT_DOUBLE_EQ(ev.queued_s, 60.0);
}

TEST_F(SettleTest, OneRecipientRefusedAtRcptBouncesAloneWithADsn) {
  auto s = run(answered(smtp::Reply(250, {2, 0, 0}, "queued"),
                        {smtp::Reply(550, {5, 1, 1}, "no such user"),
                         smtp::Reply(250, {2, 1, 5}, "ok")}));
  EXPECT_EQ(s.outcomes.recipients[0].state, spool::RecipientState::Bounced);
  EXPECT_EQ(s.outcomes.recipients[1].state, spool::RecipientState::Delivered);
  ASSERT_TRUE(s.dsn);
  ASSERT_EQ(s.dsn->recipients.size(), 1u);
  EXPECT_EQ(s.dsn->recipients[0].action, dsn::Action::Failed);
  EXPECT_EQ(s.dsn->recipients[0].status, "5.1.1");
  EXPECT_EQ(s.dsn->original_sender, "sender@shop.example");
  EXPECT_EQ(s.lines[0].category, "bad-mailbox");
  ASSERT_EQ(s.bounces.size(), 1u);
  EXPECT_EQ(s.bounces[0].category, "bad-mailbox");
}

TEST_F(SettleTest, NullSenderGetsNoDsn) {
  f_.reverse_path = "";
  auto s = run(answered(smtp::Reply(554, {5, 6, 0}, "rejected")));
  EXPECT_EQ(s.tally.bounced, 2u);
  EXPECT_FALSE(s.dsn);
}

TEST_F(SettleTest, NotifyNeverSuppressesTheBounceReport) {
  data_[0].notify = dsn::kNotifyNever;
  data_[1].notify = dsn::kNotifyNever;
  auto s = run(answered(smtp::Reply(554, {5, 6, 0}, "rejected")));
  EXPECT_FALSE(s.dsn);
}

TEST_F(SettleTest, NotifySuccessReportsRelayedOnlyWhenTheNextHopLacksDsn) {
  data_[0].notify = dsn::kNotifySuccess;
  auto s = run(answered(smtp::Reply(250, {2, 0, 0}, "queued")));
  ASSERT_TRUE(s.dsn);
  EXPECT_EQ(s.dsn->recipients[0].action, dsn::Action::Relayed);
  f_.remote_dsn = true;
  EXPECT_FALSE(run(answered(smtp::Reply(250, {2, 0, 0}, "queued"))).dsn)
      << "the next hop reports success itself";
}

TEST_F(SettleTest, TemporaryFailureDefersAndStaysQueued) {
  auto s = run(answered(smtp::Reply(451, {4, 3, 0}, "try later")));
  EXPECT_EQ(s.tally.deferred, 2u);
  ASSERT_EQ(s.deferred.size(), 2u);
  EXPECT_EQ(s.deferred[0].attempts, 1u);
  EXPECT_EQ(s.outcomes.recipients[0].state, spool::RecipientState::Deferred);
  EXPECT_EQ(s.outcomes.recipients[0].next_attempt_unix_ns, f_.now_unix_ns + 600'000'000'000);
  EXPECT_TRUE(s.finished.empty());
  EXPECT_FALSE(s.dsn);
}

TEST_F(SettleTest, DelayNoticeWhenNotifyDelayAsksAndTheThresholdPassed) {
  data_[0].notify = dsn::kNotifyDelay;
  f_.now_unix_ns = f_.received_unix_ns + 25LL * 60 * 1'000'000'000;
  auto s = run(answered(smtp::Reply(451, {4, 3, 0}, "try later")));
  ASSERT_TRUE(s.dsn);
  ASSERT_EQ(s.dsn->recipients.size(), 1u) << "only the recipient that asked";
  EXPECT_EQ(s.dsn->recipients[0].action, dsn::Action::Delayed);
  EXPECT_GT(s.dsn->recipients[0].will_retry_until_unix, 0);
}

TEST_F(SettleTest, ExpiryIsFinalWith447AndReported) {
  rcpts_[0].attempts = rcpts_[1].attempts = 4;
  f_.now_unix_ns = f_.received_unix_ns + 55LL * 60 * 1'000'000'000;
  auto s = run(answered(smtp::Reply(451, {4, 3, 0}, "try later")));
  EXPECT_EQ(s.tally.expired, 2u);
  EXPECT_EQ(s.outcomes.recipients[0].state, spool::RecipientState::Expired);
  EXPECT_EQ(s.lines[0].type, accounting::EventType::Expired);
  ASSERT_TRUE(s.dsn);
  EXPECT_EQ(s.dsn->recipients[0].status, "4.3.0") << "its own temporary status is kept";
  EXPECT_EQ(s.bounces[0].category, "expired");
}

TEST_F(SettleTest, ThrottlingReplyFromTheServerThrottles) {
  smtp::TransactionResult r;
  r.mail_reply = smtp::Reply(421, {4, 7, 0}, "too fast");
  EXPECT_TRUE(run(r).throttle);
}

TEST_F(SettleTest, LocalFailureAppliesToEveryRecipientAndNeverThrottles) {
  LocalFailure lf;
  lf.reply = smtp::Reply(421, {4, 7, 0}, "our TLS policy");
  f_.local = &lf;
  f_.over_connection = false;
  auto s = settle(f_, *policy_);
  EXPECT_FALSE(s.throttle);
  EXPECT_EQ(s.tally.deferred, 2u);
}

TEST_F(SettleTest, BadDestinationDomainBouncesEveryone) {
  LocalFailure lf;
  lf.stage = queue::Stage::Rcpt;
  lf.reply = smtp::Reply(550, {5, 1, 2}, "bad destination domain: NXDOMAIN");
  f_.local = &lf;
  auto s = settle(f_, *policy_);
  EXPECT_EQ(s.tally.bounced, 2u);
  EXPECT_EQ(s.lines[0].category, "bad-domain");
}

TEST_F(SettleTest, PlaintextFallbackRefusalAsksForTlsAndDefers) {
  f_.plaintext_fallback = true;
  smtp::TransactionResult r;
  r.mail_reply = smtp::Reply(530, {5, 7, 0}, "STARTTLS first");
  auto s = run(r);
  EXPECT_TRUE(s.tls_needed);
  EXPECT_EQ(s.tally.deferred, 2u);
  EXPECT_FALSE(s.throttle);
}

TEST_F(SettleTest, UnreadableRecordNamesRecipientsByIndex) {
  f_.rcpt_data = {};
  LocalFailure lf;
  lf.reply = smtp::Reply(451, {4, 3, 0}, "queue file read error");
  f_.local = &lf;
  auto s = settle(f_, *policy_);
  EXPECT_EQ(s.lines[1].rcpt, "#1");
  EXPECT_EQ(s.lines[1].domain, "example.com");
  EXPECT_FALSE(s.dsn) << "no address to report on";
}

TEST_F(SettleTest, NoFinalReplyDefers) {
  smtp::TransactionResult r = answered(smtp::Reply());
  auto s = run(r);
  EXPECT_EQ(s.tally.deferred, 2u);
  EXPECT_EQ(s.lines[0].enhanced, "4.4.2");
}

TEST(DestinationStats, CountsAndTheLastMinute) {
  DestinationStats st;
  const TimePoint t0(std::chrono::seconds(1000));
  st.add(Tally{3, 1, 1, 1}, t0, "250 ok");
  st.add(Tally{2, 0, 0, 0}, t0 + 1s, "");
  DestinationInfo d;
  st.fill(d, t0 + 2s);
  EXPECT_EQ(d.delivered, 5u);
  EXPECT_EQ(d.deferrals, 1u);
  EXPECT_EQ(d.bounced, 2u) << "expiries count with bounces";
  EXPECT_EQ(d.delivered_last_s, 2u);
  EXPECT_EQ(d.delivered_last_60s, 5u);
  EXPECT_EQ(d.last_reply, "250 ok") << "an empty reply does not replace the last one";
}

}  // namespace
}  // namespace salvo::outbound
