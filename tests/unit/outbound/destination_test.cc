// SPDX-License-Identifier: Apache-2.0
// Destination and DestinationSide on fakes: a DeliveryEnv with a test clock, an in-memory
// spool, scripted MX answers and scripted connections (channels). Each test names one
// behaviour of the destination side — the order work is taken in, limits that must never
// be passed, back-off, MX fallback, rollups, expiry, operator verbs — and fails when it
// breaks. No sockets, no threads: the env runs deferred work and reads in order.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "unit/dkim/dkim_test_util.h"
#include "unit/outbound/destination_fixture.h"

namespace salvo::outbound {
namespace {

using namespace std::chrono_literals;

// --- pump and fill ----------------------------------------------------------------------

TEST_F(DestinationTest, NothingOpensBeforeTheMxAnswerArrives) {
  start();
  env_.hold_dns = true;
  message("a.test");
  env_.run();
  EXPECT_TRUE(env_.channels.empty());
  EXPECT_EQ(env_.mx_lookups, 1);
  env_.hold_dns = false;
  env_.answer_mx("a.test");
  env_.run();
  ASSERT_EQ(env_.channels.size(), 1u);
  EXPECT_EQ(env_.channels[0]->host().name, "mx.a.test");
  EXPECT_EQ(env_.channels[0]->host().address.ip(), "127.0.0.2");
  EXPECT_EQ(env_.channels[0]->host().address.port(), 25);
}

TEST_F(DestinationTest, OpensOnlyAsManyConnectionsAsTheReadyWorkNeeds) {
  start();
  queue(10);
  // window 4: a connection being opened counts for four transactions; 10 need three.
  EXPECT_EQ(env_.channels.size(), 3u);
  for (auto& c : env_.channels) c->up();
  env_.run();
  std::size_t taken = 0;
  for (auto& c : env_.channels) taken += c->taken;
  EXPECT_EQ(taken, 10u);
}

TEST_F(DestinationTest, NeverMoreConnectionsThanMaxConnections) {
  start("[[shaping]]\ndomain = \"a.test\"\nmax_connections = 2\n");
  queue(100);
  EXPECT_EQ(env_.channels.size(), 2u);
  tick_for(200ms);
  EXPECT_EQ(env_.channels.size(), 2u);
}

TEST_F(DestinationTest, AClosedConnectionsPlaceIsKeptForTheLinger) {
  start("[[shaping]]\ndomain = \"a.test\"\nmax_connections = 1\n");
  queue(10);
  ASSERT_EQ(env_.channels.size(), 1u);
  up(0);
  env_.channels[0]->answer_all(kOk);
  env_.channels[0]->close();
  env_.run();
  side_->tick();
  env_.run();
  EXPECT_EQ(env_.channels.size(), 1u) << "a new connection while the old one may still be closing";
  tick_for(Pool::kLinger + 10ms);
  EXPECT_EQ(env_.channels.size(), 2u);
}

TEST_F(DestinationTest, MessagesAreTakenInTheOrderTheyArrived) {
  env_.window = 8;
  start("[[shaping]]\ndomain = \"a.test\"\nmax_connections = 1\n");
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(message("a.test"));
  env_.run();
  up(0);
  EXPECT_EQ(env_.channels[0]->submitted_messages(), ids);
}

TEST_F(DestinationTest, AConnectionTakesNoMoreThanItsWindow) {
  start("[[shaping]]\ndomain = \"a.test\"\nmax_connections = 1\n");
  queue(9);
  auto& c = up(0);
  EXPECT_EQ(c.submitted.size(), 4u);
  c.answer(kOk);
  c.fill();
  env_.run();
  EXPECT_EQ(c.submitted.size(), 4u);
  EXPECT_EQ(c.taken, 5u);
}

TEST_F(DestinationTest, RecipientsOfOneMessageShareATransactionUpToMaxRecipients) {
  start("[delivery]\nmax_recipients = 2\n");
  const auto id = message("a.test", 5);
  env_.run();
  up(0);
  auto& c = *env_.channels[0];
  ASSERT_EQ(c.submitted.size(), 3u);
  EXPECT_EQ(c.submitted[0]->rcpts.size(), 2u);
  EXPECT_EQ(c.submitted[1]->rcpts.size(), 2u);
  EXPECT_EQ(c.submitted[2]->rcpts.size(), 1u);
  EXPECT_EQ(c.submitted[0]->rcpt_data[1].address, "u1@a.test");
  for (Slot* s : c.submitted) EXPECT_EQ(s->message(), id);
}

TEST_F(DestinationTest, TheMessageSentIsTheSpooledOne) {
  start();
  const auto id = message("a.test");
  env_.run();
  up(0);
  Slot* s = env_.channels[0]->submitted.at(0);
  EXPECT_EQ(s->reverse_path, "sender@shop.test");
  EXPECT_EQ(s->send, fmt::format("From: news@shop.test\r\nSubject: {}\r\n\r\nhello\r\n", id));
}

TEST_F(DestinationTest, SigningGoesAFewAtATimeBetweenLoopTurns) {
  dkim::SignerOptions o;
  o.domain = "shop.test";
  o.selector = "s1";
  o.algorithm = dkim::Algorithm::Ed25519Sha256;
  o.private_key_pem = dkim::test::keys().ed25519;
  auto signer = dkim::Signer::create(o);
  ASSERT_TRUE(signer.has_value());
  std::vector<dkim::Signer> list;
  list.push_back(std::move(*signer));
  env_.window = 40;
  start("[[shaping]]\ndomain = \"a.test\"\nmax_connections = 1\n",
        std::make_shared<const Signers>(std::move(list)));
  queue(40);
  auto& c = *env_.channels.at(0);
  c.up();  // takes 40 transactions: their reads are in flight
  env_.turn();  // reads done: 40 wait for signatures
  EXPECT_TRUE(c.submitted.empty());
  env_.turn();
  EXPECT_EQ(c.submitted.size(), static_cast<std::size_t>(DestinationSide::kSignBatch))
      << "the signing stage's share of one loop turn";
  env_.turn();
  EXPECT_EQ(c.submitted.size(), 2u * DestinationSide::kSignBatch);
  env_.run();
  ASSERT_EQ(c.submitted.size(), 40u);
  for (const Slot* s : c.submitted) {
    EXPECT_TRUE(s->send.starts_with("DKIM-Signature: v=1; a=ed25519-sha256;")) << s->send;
    EXPECT_TRUE(s->send.ends_with(s->original));
  }
}

// --- shaping --------------------------------------------------------------------------

TEST_F(DestinationTest, MessageRateIsNeverExceeded) {
  start("[[shaping]]\ndomain = \"a.test\"\nmax_message_rate = \"20/s\"\n");
  queue(200);
  for (auto& c : env_.channels) c->up();
  env_.run();
  // Answer everything as it is submitted, for two seconds of ticks.
  std::size_t sent = 0;
  for (int step = 0; step < 200; ++step) {
    env_.clock_.advance(10ms);
    side_->tick();
    env_.run();
    for (auto& c : env_.channels) {
      sent += c->submitted.size();
      c->answer_all(kOk);
    }
    env_.run();
  }
  // 20/s over 2 s, plus the burst of a tenth of a second (2) the bucket starts with.
  EXPECT_LE(sent, 42u);
  EXPECT_GE(sent, 38u);
}

TEST_F(DestinationTest, ConnectionRateIsNeverExceeded) {
  start("[[shaping]]\ndomain = \"a.test\"\nmax_connection_rate = \"10/s\"\n");
  queue(500);
  EXPECT_EQ(env_.channels.size(), 1u);  // burst of one
  tick_for(1s);
  EXPECT_GE(env_.channels.size(), 10u);
  EXPECT_LE(env_.channels.size(), 11u);
}

TEST_F(DestinationTest, HeldDestinationQueuesButOpensNothing) {
  start("[[shaping]]\ndomain = \"a.test\"\nmax_connections = 0\n");
  message("a.test", 3);
  env_.run();
  tick_for(100ms);
  EXPECT_TRUE(env_.channels.empty());
  EXPECT_TRUE(env_.outcomes.empty());
  EXPECT_EQ(dest("a.test").info().state, "held");
  EXPECT_EQ(dest("a.test").info().ready, 3u);
}

// --- back-off -------------------------------------------------------------------------

TEST_F(DestinationTest, AThrottlingReplyEntersBackOffAndNoConnectionOpensDuringIt) {
  start("[delivery]\nbackoff_pause = \"10s\"\n");
  queue(2);
  ASSERT_EQ(env_.channels.size(), 1u);
  up(0);
  env_.channels[0]->answer(kThrottle);
  env_.channels[0]->close();
  env_.run();
  EXPECT_EQ(dest("a.test").info().state, "backoff");
  tick_for(5s, 100ms);
  EXPECT_EQ(env_.channels.size(), 1u) << "a connection opened during the back-off pause";
  tick_for(6s, 100ms);
  EXPECT_GE(env_.channels.size(), 2u) << "the pause did not end";
  EXPECT_EQ(dest("a.test").info().state, "recovering");
}

TEST_F(DestinationTest, BackOffRecoveryAllowsOneConnectionThenGrowsWithDeliveries) {
  start("[delivery]\nbackoff_pause = \"1s\"\n[[shaping]]\ndomain = \"a.test\"\nmax_connections = 4\n");
  queue(200);
  ASSERT_EQ(env_.channels.size(), 4u);
  for (auto& c : env_.channels) {
    c->up();
    env_.run();
    c->answer(kThrottle);
    c->close();
  }
  env_.run();
  tick_for(1100ms, 100ms);
  ASSERT_EQ(open_channels().size(), 1u) << "recovery starts with one connection";
  ScriptedChannel* c = open_channels()[0];
  c->up();
  env_.run();
  for (int i = 0; i < 60 && !c->submitted.empty(); ++i) {
    c->answer_all(kOk);
    c->fill();
    env_.run();
  }
  tick_for(100ms);
  EXPECT_GT(open_channels().size(), 1u) << "deliveries did not widen the window";
  EXPECT_LE(open_channels().size(), 4u);
}

TEST_F(DestinationTest, TheSameThrottleEpisodeIsCountedOnce) {
  start("[delivery]\nbackoff_pause = \"10s\"\n[[shaping]]\ndomain = \"a.test\"\nmax_connections = 3\n");
  queue(30);
  ASSERT_EQ(env_.channels.size(), 3u);
  for (auto& c : env_.channels) {  // three at once: one episode
    c->up();
    env_.run();
    c->answer(kThrottle);
    c->close();
  }
  env_.run();
  tick_for(10s + 100ms, 100ms);
  EXPECT_EQ(dest("a.test").info().state, "recovering") << "the pause doubled";
}

// --- MX fallback ------------------------------------------------------------------------

TEST_F(DestinationTest, AHostThatFailsBeforeReadyIsSkippedForTheNextMx) {
  start();
  env_.mx["a.test"] =
      mx_answer("a.test", {{"mx1.a.test", "127.0.0.2"}, {"mx2.a.test", "127.0.0.3"}}, {10, 20});
  message("a.test");
  env_.run();
  ASSERT_EQ(env_.channels.size(), 1u);
  EXPECT_EQ(env_.channels[0]->host().name, "mx1.a.test");
  env_.channels[0]->fail(smtp::Reply(421, {4, 4, 1}, "connection refused"), /*local=*/true);
  env_.run();
  tick_for(100ms);
  ASSERT_EQ(env_.channels.size(), 2u);
  EXPECT_EQ(env_.channels[1]->host().name, "mx2.a.test");
  up(1);
  env_.channels[1]->answer(kOk);
  EXPECT_EQ(states_of(0x100), std::vector{spool::RecipientState::Delivered});
}

TEST_F(DestinationTest, EveryHostDownDefersWithWhatTheLastHostSaid) {
  start();
  env_.mx["a.test"] = mx_answer("a.test", {{"mx1.a.test", "127.0.0.2"}});
  const auto id = message("a.test", 2);
  env_.run();
  ASSERT_EQ(env_.channels.size(), 1u);
  env_.channels[0]->fail(smtp::Reply(554, {5, 7, 1}, "go away"));
  env_.run();
  tick_for(100ms);
  EXPECT_EQ(env_.channels.size(), 1u);
  EXPECT_EQ(states_of(id),
            (std::vector{spool::RecipientState::Deferred, spool::RecipientState::Deferred}));
  ASSERT_FALSE(env_.events.empty());
  EXPECT_EQ(env_.events.back().code, 451);
  EXPECT_EQ(env_.events.back().enhanced, "4.4.0");
  EXPECT_NE(env_.events.back().response.find("mx1.a.test said: 554 go away"), std::string::npos)
      << env_.events.back().response;
}

TEST_F(DestinationTest, EqualPreferenceHostsShareTheConnections) {
  start();
  env_.mx["a.test"] =
      mx_answer("a.test", {{"mx1.a.test", "127.0.0.2"}, {"mx2.a.test", "127.0.0.3"}}, {10, 10});
  queue(16);
  ASSERT_EQ(env_.channels.size(), 4u);
  int first = 0;
  for (auto& c : env_.channels) first += c->host().name == "mx1.a.test";
  EXPECT_EQ(first, 2);
}

TEST_F(DestinationTest, NxDomainBouncesAndServfailDefers) {
  start();
  env_.mx["gone.test"] = mx_failure("gone.test", dns::MxStatus::Permanent, "gone.test: NXDOMAIN");
  env_.mx["flaky.test"] = mx_failure("flaky.test", dns::MxStatus::Temporary, "flaky.test: SERVFAIL");
  const auto gone = message("gone.test");
  const auto flaky = message("flaky.test");
  env_.run();
  EXPECT_TRUE(env_.channels.empty());
  EXPECT_EQ(states_of(gone), std::vector{spool::RecipientState::Bounced});
  EXPECT_EQ(states_of(flaky), std::vector{spool::RecipientState::Deferred});
}

TEST_F(DestinationTest, AnMxThatIsThisNodeBouncesAsALoopWithoutConnecting) {
  const std::vector<net::SocketAddress> listening = {*net::SocketAddress::parse("127.0.0.2:25")};
  own_ = OwnListeners(listening, {});
  start();  // a.test's one MX host is 127.0.0.2
  env_.mx["b.test"] =
      mx_answer("b.test", {{"mx.a.test", "127.0.0.2"}, {"mx2.b.test", "127.0.0.3"}}, {10, 20});
  const auto looped = message("a.test", 2);
  const auto other = message("b.test");
  env_.run();
  EXPECT_EQ(states_of(looped),
            (std::vector{spool::RecipientState::Bounced, spool::RecipientState::Bounced}));
  ASSERT_EQ(env_.channels.size(), 1u) << "only b.test's other host";
  EXPECT_EQ(env_.channels[0]->host().name, "mx2.b.test");
  EXPECT_TRUE(states_of(other).empty()) << "still on its way";
  ASSERT_EQ(count_events(accounting::EventType::Bounced), 2u);
  for (const auto& e : env_.events) {
    EXPECT_EQ(e.code, 554);
    EXPECT_EQ(e.enhanced, "5.4.4");
    EXPECT_EQ(e.response, "mail for a.test loops back to myself");
  }
  const Outcomes& o = env_.outcomes.back().second;
  EXPECT_EQ(o.dsn_to, "sender@shop.test");
  EXPECT_NE(o.dsn.find("Status: 5.4.4"), std::string::npos);
  EXPECT_EQ(side_->stats().loops, 2u);
  EXPECT_EQ(side_->stats().bounced, 2u);
}

// --- [routes] -----------------------------------------------------------------------------

TEST_F(DestinationTest, RoutesByAddressSkipTheMxLookup) {
  start("[routes]\n\"a.test\" = [\"127.0.0.9:2525\"]\n");
  message("a.test");
  env_.run();
  EXPECT_EQ(env_.mx_lookups, 0);
  ASSERT_EQ(env_.channels.size(), 1u);
  EXPECT_EQ(env_.channels[0]->host().address.to_string(), "127.0.0.9:2525");
}

TEST_F(DestinationTest, RoutesByHostNameAreResolvedFirst) {
  start("[routes]\n\"a.test\" = [\"relay.test:2525\"]\n");
  env_.mx["relay.test"] = mx_answer("relay.test", {{"relay.test", "127.0.0.7"}});
  env_.hold_dns = true;
  message("a.test");
  env_.run();
  EXPECT_EQ(env_.host_lookups, 1);
  EXPECT_TRUE(env_.channels.empty());
  env_.hold_dns = false;
  env_.answer_mx("relay.test");
  env_.run();
  ASSERT_EQ(env_.channels.size(), 1u);
  EXPECT_EQ(env_.channels[0]->host().address.to_string(), "127.0.0.7:2525");
  EXPECT_EQ(env_.channels[0]->host().name, "relay.test");
}

// --- rollup ---------------------------------------------------------------------------

TEST_F(DestinationTest, ADomainWhoseMxMatchesARollupForwardsItsMailThere) {
  start("[[shaping]]\nmx_suffix = \".bigmail.test\"\nmax_connections = 3\n");
  env_.mx["a.test"] = mx_answer("a.test", {{"in1.bigmail.test", "127.0.0.2"}});
  env_.mx["b.test"] = mx_answer("b.test", {{"in2.bigmail.test", "127.0.0.2"}});
  for (int i = 0; i < 20; ++i) {
    message("a.test");
    message("b.test");
  }
  env_.run();
  EXPECT_TRUE(env_.channels.empty()) << "the domain opened its own connections";
  ASSERT_EQ(env_.forwarded.size(), 40u);
  for (auto& e : env_.forwarded) EXPECT_EQ(e.key, "mx:.bigmail.test");
  for (auto& e : std::exchange(env_.forwarded, {})) side_->accept(std::move(e));
  env_.run();
  // One limit for both domains.
  EXPECT_EQ(env_.channels.size(), 3u);
  tick_for(100ms);
  EXPECT_EQ(env_.channels.size(), 3u);
  EXPECT_EQ(dest("mx:.bigmail.test").info().ready, 40u);
  EXPECT_EQ(dest("a.test").info().ready, 0u);
}

TEST_F(DestinationTest, LaterMailOfARolledUpDomainIsForwardedToo) {
  start("[[shaping]]\nmx_suffix = \".bigmail.test\"\n");
  env_.mx["a.test"] = mx_answer("a.test", {{"in1.bigmail.test", "127.0.0.2"}});
  message("a.test");
  env_.run();
  ASSERT_EQ(env_.forwarded.size(), 1u);
  message("a.test");
  env_.run();
  EXPECT_EQ(env_.forwarded.size(), 2u);
  EXPECT_EQ(env_.mx_lookups, 1) << "the answer was not remembered";
}

// --- outcomes ---------------------------------------------------------------------------

TEST_F(DestinationTest, ADeliveryReportsDeliveredToTheOriginAndAccountsIt) {
  start();
  const auto id = message("a.test", 2);
  env_.run();
  up(0);
  env_.channels[0]->answer(kOk);
  env_.run();
  EXPECT_EQ(states_of(id),
            (std::vector{spool::RecipientState::Delivered, spool::RecipientState::Delivered}));
  EXPECT_EQ(count_events(accounting::EventType::Delivered), 2u);
  EXPECT_EQ(env_.events[0].mx, "mx.a.test");
  EXPECT_EQ(side_->stats().delivered, 2u);
  EXPECT_EQ(dest("a.test").backlog().messages(), 0u) << "the message info was not released";
}

TEST_F(DestinationTest, ATemporaryFailureIsRetriedOnTheSchedule) {
  start("[delivery]\nretry_schedule = [\"10s\", \"1m\"]\n");
  const auto id = message("a.test");
  env_.run();
  auto& c = up(0);
  c.answer(kTempFail);
  env_.run();
  ASSERT_EQ(states_of(id), std::vector{spool::RecipientState::Deferred});
  EXPECT_EQ(env_.outcomes[0].second.recipients[0].attempts, 1u);
  EXPECT_EQ(env_.outcomes[0].second.recipients[0].next_attempt_unix_ns,
            to_ns(env_.clock_.wall_now() + 10s));
  EXPECT_EQ(dest("a.test").info().deferred, 1u);
  tick_for(9s, 500ms);
  EXPECT_TRUE(c.submitted.empty());
  tick_for(1500ms, 500ms);
  c.fill();
  env_.run();
  ASSERT_EQ(c.submitted.size(), 1u) << "not retried when due";
  c.answer(kOk);
  EXPECT_EQ(states_of(id).back(), spool::RecipientState::Delivered);
  EXPECT_EQ(env_.outcomes.back().second.recipients[0].attempts, 2u);
}

TEST_F(DestinationTest, APermanentFailureBouncesWithADsnToTheSender) {
  start();
  const auto id = message("a.test");
  env_.run();
  up(0);
  env_.channels[0]->answer(kBounce);
  ASSERT_EQ(states_of(id), std::vector{spool::RecipientState::Bounced});
  const Outcomes& o = env_.outcomes.back().second;
  EXPECT_EQ(o.dsn_to, "sender@shop.test");
  EXPECT_NE(o.dsn.find("Status: 5.1.1"), std::string::npos);
  EXPECT_NE(o.dsn.find("Reporting-MTA: dns; node.test"), std::string::npos);
  EXPECT_EQ(side_->stats().bounced, 1u);
}

TEST_F(DestinationTest, AnUnreadableRecordDefersWithoutAConnectionAttemptUsed) {
  start();
  const auto id = message("a.test");
  env_.corrupt(0, locations_[id]);
  env_.run();
  up(0);
  EXPECT_TRUE(env_.channels[0]->submitted.empty());
  EXPECT_EQ(states_of(id), std::vector{spool::RecipientState::Deferred});
  EXPECT_EQ(env_.events.back().enhanced, "4.3.0");
  EXPECT_EQ(side_->stats().read_errors, 1u);
}

TEST_F(DestinationTest, RecipientsOfAClosedConnectionGoBackToTheQueue) {
  start("[[shaping]]\ndomain = \"a.test\"\nmax_connections = 1\n");
  queue(3);
  up(0);
  ASSERT_EQ(env_.channels[0]->submitted.size(), 3u);
  env_.channels[0]->close();
  env_.run();
  EXPECT_TRUE(env_.outcomes.empty()) << "an attempt was counted";
  EXPECT_EQ(dest("a.test").info().ready, 3u);
  tick_for(Pool::kLinger + 10ms);
  ASSERT_EQ(env_.channels.size(), 2u);
  up(1);
  EXPECT_EQ(env_.channels[1]->submitted.size(), 3u);
}

// --- expiry -----------------------------------------------------------------------------

TEST_F(DestinationTest, AMessagePastItsExpiryExpiresWithoutBeingSent) {
  start("[delivery]\nexpiry = \"1h\"\n");
  const auto old = message("a.test", 1, 2h);
  const auto fresh = message("a.test");
  env_.run();
  up(0);
  EXPECT_EQ(env_.channels[0]->submitted_messages(), std::vector{fresh});
  EXPECT_EQ(states_of(old), std::vector{spool::RecipientState::Expired});
  EXPECT_EQ(count_events(accounting::EventType::Expired), 1u);
  EXPECT_EQ(env_.events.back().enhanced, "4.4.7");
}

TEST_F(DestinationTest, AHeldDestinationStillExpiresWhatIsTooOld) {
  start("[delivery]\nexpiry = \"1h\"\n[[shaping]]\ndomain = \"a.test\"\nmax_connections = 0\n");
  const auto id = message("a.test", 1, 30min);
  env_.run();
  EXPECT_TRUE(states_of(id).empty());
  env_.clock_.advance(31min);
  side_->tick();
  env_.run();
  EXPECT_TRUE(env_.channels.empty());
  EXPECT_EQ(states_of(id), std::vector{spool::RecipientState::Expired});
  EXPECT_NE(env_.events.back().response.find("destination held"), std::string::npos);
}

TEST_F(DestinationTest, ADeferredRecipientPastExpiryExpiresAtItsNextAttempt) {
  start("[delivery]\nexpiry = \"1h\"\nretry_schedule = [\"50m\"]\n");
  const auto id = message("a.test", 1, 30min);
  env_.run();
  auto& c = up(0);
  c.answer(kTempFail);
  env_.run();
  env_.clock_.advance(51min);
  side_->tick();
  env_.run();
  c.fill();
  env_.run();
  EXPECT_TRUE(c.submitted.empty());
  EXPECT_EQ(states_of(id).back(), spool::RecipientState::Expired);
}

// --- operator verbs ---------------------------------------------------------------------

TEST_F(DestinationTest, PauseQuitsIdleConnectionsAndResumeOpensAgain) {
  start();
  message("a.test");
  env_.run();
  auto& c = up(0);
  c.answer(kOk);
  env_.run();
  EXPECT_EQ(side_->pause("a.test", 0, 1), 1u);
  EXPECT_EQ(c.quits, 1);
  c.close();
  message("a.test");
  tick_for(200ms);
  EXPECT_EQ(env_.channels.size(), 1u);
  EXPECT_EQ(dest("a.test").info().state, "paused");
  EXPECT_EQ(side_->resume("a.test"), 1u);
  tick_for(20ms);
  EXPECT_EQ(env_.channels.size(), 2u);
}

TEST_F(DestinationTest, FlushRetriesDeferredRecipientsNow) {
  start("[delivery]\nretry_schedule = [\"1h\"]\n");
  message("a.test");
  env_.run();
  auto& c = up(0);
  c.answer(kTempFail);
  env_.run();
  EXPECT_EQ(dest("a.test").info().deferred, 1u);
  EXPECT_EQ(side_->flush("a.test"), 1u);
  tick_for(20ms);
  c.fill();
  env_.run();
  EXPECT_EQ(c.submitted.size(), 1u);
}

TEST_F(DestinationTest, BounceFailsEverythingQueuedForTheDestination) {
  start("[[shaping]]\ndomain = \"a.test\"\nmax_connections = 0\n");
  const auto a = message("a.test", 2);
  const auto b = message("a.test");
  env_.run();
  EXPECT_EQ(side_->bounce("a.test"), 1u);
  tick_for(20ms);
  EXPECT_EQ(states_of(a), (std::vector{spool::RecipientState::Bounced, spool::RecipientState::Bounced}));
  EXPECT_EQ(states_of(b), std::vector{spool::RecipientState::Bounced});
  EXPECT_EQ(env_.events.back().response, "delivery cancelled by the operator");
  // Mail that arrives afterwards is not bounced.
  const auto c = message("a.test");
  tick_for(20ms);
  EXPECT_TRUE(states_of(c).empty());
}

TEST_F(DestinationTest, BounceOfOneMessageLeavesTheOthersQueued) {
  start("[[shaping]]\ndomain = \"a.test\"\nmax_connections = 0\n");
  const auto a = message("a.test", 3);
  const auto b = message("a.test");
  env_.run();
  EXPECT_EQ(side_->bounce_message(a), 3u);
  tick_for(20ms);
  EXPECT_EQ(states_of(a).size(), 3u);
  EXPECT_TRUE(states_of(b).empty());
  EXPECT_EQ(dest("a.test").info().ready, 1u);
}

TEST_F(DestinationTest, RecipientsThatArriveCancelledFailAtOnceEvenWhenHeld) {
  start("[[shaping]]\ndomain = \"a.test\"\nmax_connections = 0\n");
  const auto a = message("a.test", 2, 0s, true);
  const auto b = message("a.test");
  tick_for(20ms);
  EXPECT_EQ(states_of(a),
            (std::vector{spool::RecipientState::Bounced, spool::RecipientState::Bounced}));
  EXPECT_EQ(env_.events.back().response, "delivery cancelled by the operator");
  EXPECT_TRUE(states_of(b).empty());
  EXPECT_EQ(dest("a.test").info().ready, 1u);
}

// --- forgetting idle destinations ---------------------------------------------------------

TEST_F(DestinationTest, AnIdleDestinationIsForgottenAfterTenMinutesAndMadeAgainByNewMail) {
  start();
  message("a.test");
  env_.run();
  auto& c = up(0);
  c.answer(kOk);
  c.close();
  env_.run();
  tick_for(9min, 1s);
  EXPECT_NE(side_->find("a.test"), nullptr);
  tick_for(2min, 1s);
  EXPECT_EQ(side_->find("a.test"), nullptr);
  EXPECT_EQ(side_->destination_count(), 0u);
  const auto id = message("a.test");
  env_.run();
  ASSERT_EQ(env_.channels.size(), 2u);
  up(1).answer(kOk);
  EXPECT_EQ(states_of(id), std::vector{spool::RecipientState::Delivered});
}

TEST_F(DestinationTest, APausedDestinationIsKeptUntilResumed) {
  start();
  EXPECT_EQ(side_->pause("b.test", 0, 1), 1u);  // ahead of its mail
  tick_for(11min, 1s);
  ASSERT_NE(side_->find("b.test"), nullptr);
  EXPECT_EQ(dest("b.test").info().state, "paused");
  EXPECT_EQ(side_->resume("b.test"), 1u);
  tick_for(11min, 1s);
  EXPECT_EQ(side_->find("b.test"), nullptr);
}

TEST_F(DestinationTest, ABackedOffDestinationIsKeptWhileItLasts) {
  start("[delivery]\nbackoff_pause = \"30m\"\nretry_schedule = [\"1m\"]\n");
  const auto id = message("a.test");
  env_.run();
  auto& c = up(0);
  c.answer(kThrottle);
  c.close();
  env_.run();
  ASSERT_EQ(dest("a.test").info().state, "backoff");
  EXPECT_EQ(side_->bounce_message(id), 1u);  // nothing queued any more
  tick_for(20min, 1s);
  ASSERT_NE(side_->find("a.test"), nullptr);
  tick_for(25min, 1s);  // the back-off ends, then ten idle minutes
  EXPECT_EQ(side_->find("a.test"), nullptr);
}

TEST_F(DestinationTest, ADestinationWaitingForAnMxAnswerIsKept) {
  start();
  env_.hold_dns = true;
  const auto id = message("a.test");
  env_.run();
  EXPECT_EQ(side_->bounce_message(id), 1u);
  tick_for(11min, 1s);
  // Its lookup's callback would find it gone.
  ASSERT_NE(side_->find("a.test"), nullptr);
  EXPECT_FALSE(dest("a.test").active());
  env_.hold_dns = false;
  env_.answer_mx("a.test");
  env_.run();
  tick_for(11min, 1s);
  EXPECT_EQ(side_->find("a.test"), nullptr);
}

// --- reload and stop --------------------------------------------------------------------

TEST_F(DestinationTest, ReloadAppliesNewLimitsToQueuedMail) {
  start("[[shaping]]\ndomain = \"a.test\"\nmax_connections = 0\n");
  queue(10);
  EXPECT_TRUE(env_.channels.empty());
  auto c = config::load_string(
      "[dns]\nresolvers = [\"127.0.0.1\"]\n[[shaping]]\ndomain = \"a.test\"\nmax_connections = 2\n",
      "test.toml", config::LoadOptions{.resolv_conf = "/nonexistent", .hostname = "node.test"});
  ASSERT_TRUE(c.has_value());
  side_->reload(context(*c, 4));
  env_.run();
  tick_for(20ms);
  EXPECT_EQ(env_.channels.size(), 2u);
}

TEST_F(DestinationTest, ReloadAppliesANewBackOffPause) {
  start("[delivery]\nbackoff_pause = \"1h\"\n");
  queue(2);
  auto c = config::load_string(
      "[dns]\nresolvers = [\"127.0.0.1\"]\n[delivery]\nbackoff_pause = \"2s\"\n", "test.toml",
      config::LoadOptions{.resolv_conf = "/nonexistent", .hostname = "node.test"});
  ASSERT_TRUE(c.has_value());
  side_->reload(context(*c, 4));
  env_.run();
  ASSERT_EQ(env_.channels.size(), 1u);
  up(0).answer(kThrottle);
  env_.channels[0]->close();
  env_.run();
  EXPECT_EQ(dest("a.test").info().state, "backoff");
  tick_for(2100ms, 100ms);
  EXPECT_EQ(env_.channels.size(), 2u) << "the pause was not the reloaded one";
}

TEST_F(DestinationTest, StoppingSendsNothingNewAndRequeuesWhatWasBeingRead) {
  start();
  queue(3);
  auto& c = *env_.channels.at(0);
  c.is_ready = true;
  c.fill();             // reads start
  side_->begin_stop();  // ... and the shard begins to stop before they complete
  env_.run();
  EXPECT_TRUE(c.submitted.empty());
  EXPECT_TRUE(env_.outcomes.empty());
  EXPECT_EQ(dest("a.test").info().in_flight, 0u);
  EXPECT_EQ(dest("a.test").info().ready, 3u) << "what was being read is not queued again";
}

}  // namespace
}  // namespace salvo::outbound
