// SPDX-License-Identifier: Apache-2.0
// Delivery end to end with real parts: salvod, Debian's unbound on a loopback port
// serving the test zones (MX, A, null MX, NXDOMAIN, SERVFAIL, the DKIM key), salvo-sink MX
// hosts on 127.0.0.x with scripted faults, real TLS, real spool files. Outcomes are read
// from what the sinks counted and kept (--maildir) and from salvod's accounting log.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "integration/delivery_env.h"
#include "support/cert_factory.h"
#include "support/eventually.h"
#include "support/raw_client.h"

namespace salvo::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

std::pair<int, std::string> run_process(const std::vector<std::string>& argv,
                                        const std::string& work) {
  Process p(argv, work);
  auto rc = p.wait(60s);
  return {rc.value_or(-1), p.stdout_text() + p.stderr_text()};
}

std::string dir_file_write(const TempDir& dir, const std::string& name,
                           const std::string& text) {
  std::string path = dir.file(name);
  std::ofstream(path) << text;
  return path;
}

TEST(Delivery, PreferredMxClosedFallsBackToTheNextOne) {
  Env env;
  Salvod d(env.dir, env.salvod());
  json b = blast_to(env.dir, d, 40, "pref.test");
  ASSERT_EQ(b["accepted"], 40);
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "delivered") == 40; }, 20s))
      << d.log();
  for (const auto& e : of_type(env.dir, "delivered")) {
    EXPECT_EQ(e["mx"], "mx2.pref.test");
    EXPECT_EQ(e["ip"], "127.0.0.3");
    EXPECT_EQ(e["code"], 250);
    EXPECT_EQ(e["domain"], "d0.pref.test");
  }
  // The closed host cost no recipient an attempt: nothing deferred or bounced.
  EXPECT_EQ(count_of(env.dir, "deferred"), 0);
  EXPECT_EQ(count_of(env.dir, "bounced"), 0);
  EXPECT_EQ(d.stop(), 0);
  EXPECT_EQ(env.mx->stop()["messages"], 40);
  EXPECT_GE(d.log_number("connect_failures"), 1);
}

TEST(Delivery, ImplicitMxUsesTheDomainsAddress) {
  Env env;
  Salvod d(env.dir, env.salvod());
  ASSERT_EQ(blast_to(env.dir, d, 10, "implicit.test")["accepted"], 10);
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "delivered") == 10; }, 20s)) << d.log();
  for (const auto& e : of_type(env.dir, "delivered")) EXPECT_EQ(e["mx"], "d0.implicit.test");
  EXPECT_EQ(d.stop(), 0);
}

TEST(Delivery, NullMxAndNxdomainBounceWithADsnToTheSender) {
  Env env;
  Salvod d(env.dir, env.salvod());
  ASSERT_EQ(blast_to(env.dir, d, 3, "nullmx.test")["accepted"], 3);
  ASSERT_EQ(blast_to(env.dir, d, 2, "nx.test")["accepted"], 2);
  ASSERT_TRUE(eventually([&] { return env.senders->progress_messages() == 5; }, 20s))
      << d.log();
  // Accounting lines are flushed every 100 ms: they may trail the DSNs a little.
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "bounced") == 5; }, 5s));
  auto bounced = of_type(env.dir, "bounced");
  for (const auto& e : bounced) {
    EXPECT_EQ(e["category"], "bad-domain") << e.dump();
    EXPECT_EQ(e["code"], 550);
  }
  auto dsns = maildir_messages(env.dir.file("sender-mail"));
  ASSERT_EQ(dsns.size(), 5u);
  int nullmx = 0;
  for (const auto& m : dsns) {
    EXPECT_NE(m.find("Return-Path: <>"), std::string::npos) << m.substr(0, 400);
    EXPECT_NE(m.find("multipart/report"), std::string::npos);
    EXPECT_NE(m.find("Action: failed"), std::string::npos);
    EXPECT_NE(m.find("Status: 5.1.2"), std::string::npos);
    if (m.find("@d0.nullmx.test") != std::string::npos) ++nullmx;
  }
  EXPECT_EQ(nullmx, 3);
  EXPECT_TRUE(eventually([&] { return count_of(env.dir, "dsn") == 5; }, 5s));
  EXPECT_EQ(d.stop(), 0);
}

TEST(Delivery, ServfailDefersThenDeliversOnceDnsIsFixed) {
  Env env;
  {
    Salvod d(env.dir, env.salvod());
    ASSERT_EQ(blast_to(env.dir, d, 4, "servfail.example")["accepted"], 4);
    // Deferred (temporary), retried every second, never bounced.
    ASSERT_TRUE(eventually([&] { return count_of(env.dir, "deferred") >= 8; }, 20s)) << d.log();
    EXPECT_EQ(count_of(env.dir, "bounced"), 0);
    for (const auto& e : of_type(env.dir, "deferred")) {
      EXPECT_EQ(e["code"], 451);
      EXPECT_NE(e["response"].get<std::string>().find("DNS"), std::string::npos) << e.dump();
    }
    EXPECT_EQ(d.stop(), 0);
  }
  // The DNS operator fixes the zone; salvod restarts on the same spool (deferred state kept).
  UnboundOptions fixed = zones({"d0.servfail.example. 300 IN MX 10 mx.ok.test."});
  fixed.servfail_zones.clear();
  fixed.static_zones.push_back("servfail.example.");
  env.start_dns(std::move(fixed));
  Salvod d(env.dir, env.salvod());
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "delivered") == 4; }, 20s)) << d.log();
  for (const auto& e : of_type(env.dir, "delivered")) EXPECT_GE(e["attempt"].get<int>(), 2);
  EXPECT_EQ(d.stop(), 0);
}

TEST(Delivery, TemporaryFailuresAreRetriedThenDelivered) {
  // Every second RCPT gets 451 4.3.0 (not a throttling reply: no back-off).
  Env env(zones(), {"defer-rate=0.5", "defer-status=4.3.0"});
  Salvod d(env.dir, env.salvod());
  ASSERT_EQ(blast_to(env.dir, d, 20, "ok.test")["accepted"], 20);
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "delivered") == 20; }, 20s)) << d.log();
  auto deferred = of_type(env.dir, "deferred");
  EXPECT_GE(deferred.size(), 10u);
  for (const auto& e : deferred) {
    EXPECT_EQ(e["code"], 451);
    EXPECT_EQ(e["enhanced"], "4.3.0");
  }
  std::set<std::pair<std::string, std::string>> retried;
  for (const auto& e : deferred) retried.insert({e["id"].get<std::string>(), e["rcpt"].get<std::string>()});
  int second_tries = 0;
  for (const auto& e : of_type(env.dir, "delivered")) {
    if (retried.contains({e["id"].get<std::string>(), e["rcpt"].get<std::string>()})) {
      EXPECT_GE(e["attempt"].get<int>(), 2);
      ++second_tries;
    }
  }
  EXPECT_EQ(second_tries, static_cast<int>(retried.size()));
  EXPECT_EQ(count_of(env.dir, "bounced"), 0);
  EXPECT_EQ(d.stop(), 0);
}

// RawClient transaction: returns the replies text.
std::string send_one(const Salvod& d, const std::string& mail_from, const std::string& rcpt,
                     const std::string& rcpt_params, const std::string& body) {
  RawClient c(d.socket_address());
  std::string out = c.read_reply();
  c.send("EHLO client.test\r\n");
  out += c.read_reply();
  c.send("MAIL FROM:<" + mail_from + ">" + (mail_from.empty() ? "" : " ENVID=env-42") + "\r\n");
  out += c.read_reply();
  c.send("RCPT TO:<" + rcpt + ">" + rcpt_params + "\r\n");
  out += c.read_reply();
  c.send("DATA\r\n");
  out += c.read_reply();
  c.send(body + ".\r\n");
  out += c.read_reply();
  c.send("QUIT\r\n");
  out += c.read_reply();
  return out;
}

TEST(Delivery, PermanentFailureBouncesWithADsnButNeverForTheNullSender) {
  Env env(zones(), {"reject-rate=1"});
  Salvod d(env.dir, env.salvod("", "dsn_from = \"bounce-handler@salvo.test\""));
  ASSERT_EQ(blast_to(env.dir, d, 5, "ok.test")["accepted"], 5);
  // A message from the null sender that bounces: no DSN (RFC 5321 §4.5.5).
  std::string r = send_one(d, "", "someone@d0.ok.test", "",
                           "From: <mailer-daemon@elsewhere.test>\r\nSubject: x\r\n\r\nbody\r\n");
  ASSERT_NE(r.find("250 2.0.0"), std::string::npos) << r;
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "bounced") == 6; }, 20s)) << d.log();
  ASSERT_TRUE(eventually([&] { return env.senders->progress_messages() == 5; }, 20s));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(env.senders->progress_messages(), 5);
  for (const auto& e : of_type(env.dir, "bounced")) {
    EXPECT_EQ(e["category"], "bad-mailbox");
    EXPECT_EQ(e["enhanced"], "5.1.1");
  }
  for (const auto& m : maildir_messages(env.dir.file("sender-mail"))) {
    EXPECT_NE(m.find("Delivered-To: shop@sender.test"), std::string::npos) << m.substr(0, 300);
    EXPECT_NE(m.find("From: Mail Delivery System <bounce-handler@salvo.test>"), std::string::npos)
        << "[delivery] dsn_from";
    EXPECT_NE(m.find("Diagnostic-Code: smtp; 550 5.1.1"), std::string::npos) << m;
    EXPECT_NE(m.find("Remote-MTA: dns; mx.ok.test"), std::string::npos) << m;
    EXPECT_NE(m.find("Subject: salvo-blast test message"), std::string::npos)
        << "the DSN returns the original headers";
  }
  EXPECT_EQ(d.stop(), 0);
}

// RFC 3461 §5.2: NOTIFY=SUCCESS. To a next hop without DSN, salvo confirms with "relayed"
// (the final delivery is out of its sight); to one with DSN it passes NOTIFY, ORCPT and
// ENVID on and sends nothing itself (that hop reports).
TEST(Delivery, NotifySuccessGetsAConfirmationFromWhoeverCanGiveIt) {
  Env env(zones(), {"--no-dsn"});
  Salvod d(env.dir, env.salvod());
  std::string r = send_one(d, "shop@sender.test", "anna@d0.ok.test",
                           " NOTIFY=SUCCESS ORCPT=rfc822;anna@d0.ok.test",
                           "From: Shop <shop@sender.test>\r\nSubject: order 7\r\n\r\nThanks\r\n");
  ASSERT_NE(r.find("354"), std::string::npos) << r;
  ASSERT_TRUE(eventually([&] { return env.senders->progress_messages() == 1; }, 20s)) << d.log();
  auto dsns = maildir_messages(env.dir.file("sender-mail"));
  ASSERT_EQ(dsns.size(), 1u);
  const std::string& m = dsns[0];
  EXPECT_NE(m.find("Action: relayed"), std::string::npos) << m;
  EXPECT_NE(m.find("Status: 2."), std::string::npos) << m;
  EXPECT_NE(m.find("Original-Envelope-Id: env-42"), std::string::npos) << m;
  EXPECT_NE(m.find("Original-Recipient: rfc822; anna@d0.ok.test"), std::string::npos) << m;
  EXPECT_NE(m.find("Final-Recipient: rfc822; anna@d0.ok.test"), std::string::npos) << m;
  // The message and the confirmation.
  EXPECT_TRUE(eventually([&] { return count_of(env.dir, "delivered") == 2; }, 5s));
  EXPECT_EQ(d.stop(), 0);
}

TEST(Delivery, NotifySuccessToADsnCapableHopIsLeftToIt) {
  Env env;  // the sink offers DSN
  Salvod d(env.dir, env.salvod());
  std::string r = send_one(d, "shop@sender.test", "anna@d0.ok.test", " NOTIFY=SUCCESS",
                           "From: Shop <shop@sender.test>\r\nSubject: order 8\r\n\r\nThanks\r\n");
  ASSERT_NE(r.find("354"), std::string::npos) << r;
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "delivered") == 1; }, 20s)) << d.log();
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(env.senders->progress_messages(), 0) << "no DSN of ours: the next hop reports";
  EXPECT_EQ(count_of(env.dir, "dsn"), 0);
  EXPECT_EQ(d.stop(), 0);
}

TEST(Delivery, NotifyDelayWarnsOnceWhenTheThresholdPasses) {
  Env env(zones(), {"defer-rate=1"});
  Salvod d(env.dir, env.salvod("", "delay_dsn_after = \"1s\""));
  std::string r = send_one(d, "shop@sender.test", "late@d0.ok.test", " NOTIFY=DELAY,FAILURE",
                           "From: Shop <shop@sender.test>\r\nSubject: slow\r\n\r\nx\r\n");
  ASSERT_NE(r.find("354"), std::string::npos) << r;
  ASSERT_TRUE(eventually([&] { return env.senders->progress_messages() == 1; }, 20s)) << d.log();
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "deferred") >= 4; }, 20s));
  EXPECT_EQ(env.senders->progress_messages(), 1) << "one warning, not one per attempt";
  auto dsns = maildir_messages(env.dir.file("sender-mail"));
  ASSERT_EQ(dsns.size(), 1u);
  EXPECT_NE(dsns[0].find("Action: delayed"), std::string::npos) << dsns[0];
  EXPECT_NE(dsns[0].find("Status: 4.7.1"), std::string::npos) << dsns[0];
  EXPECT_NE(dsns[0].find("Will-Retry-Until:"), std::string::npos) << dsns[0];
  EXPECT_EQ(count_of(env.dir, "bounced"), 0);
  EXPECT_EQ(d.stop(), 0);
}

TEST(Delivery, ThrottlingRepliesPutTheDestinationInBackOff) {
  // The sink answers MAIL with 421 4.7.0 after 3 messages on a connection.
  Env env(zones(), {"421-after=3"});
  Salvod d(env.dir, env.salvod("[[shaping]]\ndomain = \"*\"\nmax_connections = 1\n",
                               "backoff_pause = \"1s\""));
  ASSERT_EQ(blast_to(env.dir, d, 9, "ok.test")["accepted"], 9);
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "delivered") == 9; }, 30s)) << d.log();
  auto deferred = of_type(env.dir, "deferred");
  ASSERT_FALSE(deferred.empty());
  EXPECT_EQ(deferred.front()["code"], 421) << deferred.front().dump();
  // Each 421 pauses the destination (1 s, doubling): the deliveries come in bursts, one
  // per connection, with a pause of about a second or more between them. Measured between
  // deliveries, not from the 421's own line: under a loaded sanitizer run the outcome lines
  // can be written a few hundred milliseconds after the replies, all alike.
  auto ts = [](const json& e) {
    std::string t = e["ts"];  // 2026-11-23T00:39:36.167Z
    return std::stod(t.substr(17, 6)) + 60 * std::stod(t.substr(14, 2)) +
           3600 * std::stod(t.substr(11, 2));
  };
  std::vector<double> times;
  for (const auto& e : of_type(env.dir, "delivered")) times.push_back(ts(e));
  std::sort(times.begin(), times.end());
  int pauses = 0;
  for (std::size_t i = 1; i < times.size(); ++i) pauses += times[i] - times[i - 1] > 0.7 ? 1 : 0;
  // Nine messages, at most three a connection: at least two pauses between the bursts.
  EXPECT_GE(pauses, 2) << "delivered at " << ::testing::PrintToString(times);
  EXPECT_EQ(count_of(env.dir, "bounced"), 0);
  EXPECT_EQ(d.stop(), 0);
}

TEST(Delivery, TlsRequiredNeverSendsInTheClear) {
  Env env;  // the main sink offers no STARTTLS
  Salvod d(env.dir, env.salvod("[[shaping]]\ndomain = \"d0.ok.test\"\ntls = \"required\"\n"));
  ASSERT_EQ(blast_to(env.dir, d, 3, "ok.test")["accepted"], 3);
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "deferred") >= 3; }, 20s)) << d.log();
  for (const auto& e : of_type(env.dir, "deferred")) {
    std::string why = e["response"];
    EXPECT_NE(why.find("TLS"), std::string::npos) << e.dump();
  }
  EXPECT_EQ(count_of(env.dir, "delivered"), 0);
  EXPECT_EQ(count_of(env.dir, "bounced"), 0);
  EXPECT_EQ(d.stop(), 0);
  EXPECT_EQ(env.mx->stop()["messages"], 0);
}

TEST(Delivery, OpportunisticTlsIsUsedWhenOffered) {
  const auto& certs = CertFactory::shared();
  ASSERT_TRUE(certs.ok()) << certs.error();
  Env env(zones(), {"--tls-cert", certs.server_cert(), "--tls-key", certs.server_key()});
  Salvod d(env.dir, env.salvod());
  ASSERT_EQ(blast_to(env.dir, d, 5, "ok.test")["accepted"], 5);
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "delivered") == 5; }, 20s)) << d.log();
  for (const auto& e : of_type(env.dir, "delivered")) {
    EXPECT_TRUE(e["tls"] == "TLSv1.3" || e["tls"] == "TLSv1.2") << e.dump();
  }
  EXPECT_EQ(d.stop(), 0);
  EXPECT_GE(d.log_number("tls_sessions"), 1);
}

TEST(Delivery, ShapingLimitsHoldAtTheSink) {
  Env env;
  Salvod d(env.dir, env.salvod("[[shaping]]\ndomain = \"d0.ok.test\"\nmax_connections = 2\n"
                               "max_message_rate = \"100/s\"\n"
                               "max_messages_per_connection = 50\n"));
  ASSERT_EQ(blast_to(env.dir, d, 300, "ok.test")["accepted"], 300);
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "delivered") == 300; }, 30s)) << d.log();
  EXPECT_EQ(d.stop(), 0);
  json s = env.mx->stop();
  ASSERT_EQ(s["listeners"].size(), 1u);
  EXPECT_LE(s["listeners"][0]["peak_connections"].get<int>(), 2) << s.dump();
  EXPECT_LE(s["listeners"][0]["peak_msgs_per_s"].get<int>(), 110) << s.dump();
  EXPECT_GE(s["connections"].get<int>(), 6) << "50 messages per connection, then a new one";
}

TEST(Delivery, MxRollupLimitsEveryDomainOnThoseHostsTogether) {
  Env env(zones({"d0.g.test. 300 IN MX 10 mx.google.test.",
                 "d1.g.test. 300 IN MX 10 mx.google.test.",
                 "mx.google.test. 300 IN A 127.0.0.3"}));
  // Two domains, one MX: the mx_suffix entry's one connection is for both together.
  Salvod d(env.dir, env.salvod("[[shaping]]\nmx_suffix = \".google.test\"\nmax_connections = 1\n"
                               "max_messages_per_connection = 1000\n"));
  ASSERT_EQ(run_blast(env.dir, d.address(),
                      {"--connections", "2", "--messages", "200", "--from", "shop@sender.test",
                       "--domains", "2", "--domain-suffix", "g.test"})["accepted"],
            200);
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "delivered") == 200; }, 20s)) << d.log();
  std::map<std::string, int> per_domain;
  for (const auto& e : of_type(env.dir, "delivered")) ++per_domain[e["domain"]];
  EXPECT_EQ(per_domain["d0.g.test"], 100);
  EXPECT_EQ(per_domain["d1.g.test"], 100);
  EXPECT_EQ(d.stop(), 0);
  json s = env.mx->stop();
  EXPECT_EQ(s["listeners"][0]["peak_connections"], 1) << s.dump();
}

TEST(Delivery, IdlePooledConnectionsAreClosed) {
  Env env;
  Salvod d(env.dir, env.salvod("", "idle_timeout = \"300ms\""));
  ASSERT_EQ(blast_to(env.dir, d, 1, "ok.test")["accepted"], 1);
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "delivered") == 1; }, 10s));
  std::this_thread::sleep_for(1s);  // the pooled connection is closed meanwhile
  ASSERT_EQ(blast_to(env.dir, d, 1, "ok.test")["accepted"], 1);
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "delivered") == 2; }, 10s));
  EXPECT_EQ(d.stop(), 0);
  json s = env.mx->stop();
  EXPECT_EQ(s["connections"], 2) << "the first connection was not kept past idle_timeout";
}

// [[egress]]: connections leave from the pool's source address and say its EHLO name. The
// MX here is a second salvod (holding what it receives), whose Received: header records
// both.
TEST(Delivery, EgressPoolSetsTheSourceAddressAndEhlo) {
  Env env;
  TempDir mx_dir;
  SalvodOptions mo;
  mo.listener = false;
  mo.extra = fmt::format("[[listen]]\naddress = \"127.0.0.5:{}\"\n", env.port);
  Salvod mx(mx_dir, mo);
  Salvod d(env.dir, env.salvod("[[egress]]\nname = \"pool9\"\naddresses = [\"127.0.0.9\"]\n"
                               "ehlo = \"out9.sender.test\"\n"
                               "[[shaping]]\ndomain = \"d0.egress.test\"\negress = \"pool9\"\n"));
  ASSERT_EQ(blast_to(env.dir, d, 2, "egress.test")["accepted"], 2);
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "delivered") == 2; }, 20s)) << d.log();
  EXPECT_EQ(d.stop(), 0);
  EXPECT_EQ(mx.stop(), 0);
  auto items = read_spool_items(mx_dir.file("spool"));
  ASSERT_EQ(items.size(), 2u);
  for (const auto& it : items) {
    EXPECT_NE(it.body.find("Received: from out9.sender.test ([127.0.0.9])"), std::string::npos)
        << it.body.substr(0, 400);
  }
}

TEST(Delivery, KillDuringDeliveryLosesNothing) {
  Env env(zones(), {"latency=5ms"});
  const int n = 400;
  {
    Salvod d(env.dir, env.salvod("[[shaping]]\ndomain = \"*\"\nmax_connections = 2\n"));
    ASSERT_EQ(blast_to(env.dir, d, n, "ok.test")["accepted"], n);
    ASSERT_TRUE(eventually([&] { return env.mx->progress_messages() >= 50; }, 20s));
    d.kill();
  }
  ASSERT_LT(env.mx->progress_messages(), n) << "the kill came too late to test anything";
  Salvod d(env.dir, env.salvod());
  EXPECT_GT(d.log_number("recovered_messages"), 0);
  // Every accepted recipient (u<i>-0@d0.ok.test, i < n) reaches the MX: the sink's maildir
  // is the witness (accounting lines buffered at the kill may be gone; a crash between a
  // remote 250 and the spool update may deliver one twice; none may be missing).
  std::set<std::string> arrived;
  auto scan = [&] {
    arrived.clear();
    for (const auto& m : maildir_messages(env.dir.file("mx-mail"))) {
      auto p = m.find("Delivered-To: ");
      if (p == std::string::npos) continue;
      arrived.insert(m.substr(p + 14, m.find("\r\n", p) - p - 14));
    }
    return arrived.size() == static_cast<std::size_t>(n);
  };
  ASSERT_TRUE(eventually(scan, 30s)) << "arrived " << arrived.size() << "\n" << d.log();
  for (int i = 0; i < n; ++i) EXPECT_TRUE(arrived.contains(fmt::format("u{}-0@d0.ok.test", i)));
  EXPECT_EQ(d.stop(), 0);
  EXPECT_GE(env.mx->stop()["messages"].get<int>(), n);
  EXPECT_TRUE(read_spool_items(env.dir.file("spool")).empty())
      << "every recipient is final: nothing left in the spool";
}

// A DKIM key made with openssl: the PEM file and the TXT record that publishes it
// (split into 255-byte strings, as a long RSA key must be).
struct DkimKey {
  std::string file;
  std::string record;  // for zones(): "<selector>._domainkey.<domain>. 300 IN TXT ..."
};

DkimKey make_dkim_key(const TempDir& dir, const std::string& selector, const std::string& domain,
                      bool rsa) {
  DkimKey k;
  k.file = dir.file(selector + ".pem");
  std::vector<std::string> gen = {"/usr/bin/openssl", "genpkey", "-algorithm",
                                  rsa ? "RSA" : "ed25519", "-out", k.file};
  if (rsa) {
    gen.insert(gen.end() - 2, {"-pkeyopt", "rsa_keygen_bits:2048"});
  }
  auto g = run_process(gen, dir.path());
  EXPECT_EQ(g.first, 0) << g.second;
  // RSA: the SubjectPublicKeyInfo; Ed25519: the raw 32-byte key (RFC 8463).
  auto pub = run_process({"/bin/sh", "-c",
                          "/usr/bin/openssl pkey -in " + k.file + " -pubout -outform DER" +
                              (rsa ? "" : " | tail -c 32") + " | base64 -w0"},
                         dir.path());
  EXPECT_EQ(pub.first, 0) << pub.second;
  std::string p = pub.second;
  while (!p.empty() && (p.back() == '\n' || p.back() == '\r')) p.pop_back();
  std::string txt = fmt::format("v=DKIM1; k={}; p={}", rsa ? "rsa" : "ed25519", p);
  k.record = selector + "._domainkey." + domain + ". 300 IN TXT";
  for (std::size_t i = 0; i < txt.size(); i += 255) k.record += " \"" + txt.substr(i, 255) + "\"";
  return k;
}

std::string dkim_table(const std::string& domain, const std::string& selector,
                       const DkimKey& k, bool rsa) {
  return fmt::format("[[dkim]]\ndomain = \"{}\"\nselector = \"{}\"\nkey_file = \"{}\"\n"
                     "algorithm = \"{}\"\n",
                     domain, selector, k.file, rsa ? "rsa-sha256" : "ed25519-sha256");
}

// python3-dkim verifies every DKIM-Signature of every message the main sink kept, fetching
// the keys from the test DNS server (dnspython). Prints "verified N" (signatures that
// verified) and a line for each that did not.
std::string verify_dkim(const Env& env) {
  std::string script = dir_file_write(
      env.dir, "verify.py",
      "import sys, dkim, dns.resolver\n"
      "r = dns.resolver.Resolver(configure=False)\n"
      "r.nameservers = ['127.0.0.1']\n"
      "r.port = int(sys.argv[1])\n"
      "def txt(name, timeout=5):\n"
      "    a = r.resolve(name.decode().rstrip('.'), 'TXT')\n"
      "    return b''.join(b''.join(x.strings) for x in a)\n"
      "ok = 0\n"
      "for path in sys.argv[2:]:\n"
      "    msg = open(path, 'rb').read()\n"
      "    while msg.startswith(b'Return-Path:') or msg.startswith(b'Delivered-To:'):\n"
      "        msg = msg.split(b'\\r\\n', 1)[1]\n"
      "    d = dkim.DKIM(msg)\n"
      "    n = sum(1 for line in msg.split(b'\\r\\n\\r\\n', 1)[0].split(b'\\r\\n')\n"
      "            if line.lower().startswith(b'dkim-signature:'))\n"
      "    for i in range(n):\n"
      "        try:\n"
      "            good = d.verify(idx=i, dnsfunc=txt)\n"
      "        except Exception as e:\n"
      "            good = False\n"
      "            print('error', repr(e))\n"
      "        if good: ok += 1\n"
      "        else: print('FAILED', path, i, msg[:300])\n"
      "print('verified', ok)\n");
  std::vector<std::string> argv = {"/usr/bin/python3", script, std::to_string(env.dns->port())};
  for (const auto& e : fs::recursive_directory_iterator(env.dir.file("mx-mail"))) {
    if (e.is_regular_file()) argv.push_back(e.path().string());
  }
  auto v = run_process(argv, env.dir.path());
  EXPECT_EQ(v.first, 0) << v.second;
  return v.second;
}

TEST(Delivery, DkimSignatureVerifiesAgainstTheKeyInDns) {
  TempDir keys;
  const DkimKey k = make_dkim_key(keys, "s1", "sender.test", false);
  Env env(zones({k.record}));
  Salvod d(env.dir, env.salvod(dkim_table("sender.test", "s1", k, false)));
  ASSERT_EQ(blast_to(env.dir, d, 3, "ok.test")["accepted"], 3);
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "delivered") == 3; }, 20s)) << d.log();
  EXPECT_EQ(d.stop(), 0);
  env.mx->stop();
  auto mail = maildir_messages(env.dir.file("mx-mail"));
  ASSERT_EQ(mail.size(), 3u);
  const std::string v = verify_dkim(env);
  EXPECT_NE(v.find("verified 3"), std::string::npos) << v;
  for (const auto& m : mail) {
    EXPECT_NE(m.find("DKIM-Signature: v=1; a=ed25519-sha256"), std::string::npos)
        << m.substr(0, 600);
  }
}

// Two keys for the From: domain (RSA for every receiver, Ed25519 for those that check it):
// each message carries both signatures, and both verify.
TEST(Delivery, TwoDkimKeysOfTheFromDomainBothSign) {
  TempDir keys;
  const DkimKey rsa = make_dkim_key(keys, "rsa1", "sender.test", true);
  const DkimKey ed = make_dkim_key(keys, "ed1", "sender.test", false);
  Env env(zones({rsa.record, ed.record}));
  Salvod d(env.dir, env.salvod(dkim_table("sender.test", "rsa1", rsa, true) +
                               dkim_table("sender.test", "ed1", ed, false)));
  ASSERT_EQ(blast_to(env.dir, d, 4, "ok.test")["accepted"], 4);
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "delivered") == 4; }, 20s)) << d.log();
  EXPECT_EQ(d.stop(), 0);
  env.mx->stop();
  auto mail = maildir_messages(env.dir.file("mx-mail"));
  ASSERT_EQ(mail.size(), 4u);
  for (const auto& m : mail) {
    const std::string head = m.substr(0, m.find("\r\n\r\n"));
    for (const char* tag : {"a=rsa-sha256;", "s=rsa1;", "a=ed25519-sha256;", "s=ed1;"}) {
      EXPECT_NE(head.find(tag), std::string::npos) << tag << " missing in\n" << head;
    }
  }
  const std::string v = verify_dkim(env);
  EXPECT_NE(v.find("verified 8"), std::string::npos) << v;
}

// What the signing counters say (salvoctl status --json, one shard).
struct SigningCounts {
  double signed_ = 0, reused = 0, hashed = 0, hash_reused = 0;
};
SigningCounts signing_counts(const Env& env, const Salvod& d) {
  const json m = salvoctl(env.dir, d.config_path(), {"status", "--json"}).j["metrics"];
  auto v = [&](const char* key) { return m.contains(key) ? m[key].get<double>() : -1.0; };
  return {v("salvo_dkim_signatures_total{how=\"signed\"}"),
          v("salvo_dkim_signatures_total{how=\"reused\"}"),
          v("salvo_dkim_body_hashes_total{how=\"computed\"}"),
          v("salvo_dkim_body_hashes_total{how=\"reused\"}")};
}

// A job of `n` recipients at d0.ok.test; `to_var`: a To: field per recipient; `body_var`:
// a per-recipient variable in the body too.
std::string signed_job(int n, bool to_var, bool body_var) {
  json j;
  j["from"] = "shop@sender.test";
  j["job"] = "signed";
  std::string content = "From: Shop <shop@sender.test>\n";
  if (to_var) content += "To: <{{to}}>\n";
  content += "Subject: Autumn offers\n\nThe same text for everyone.\n";
  if (body_var) content += "Your code: {{code}}\n";
  j["content"] = content;
  json rs = json::array();
  for (int i = 0; i < n; ++i) {
    const std::string to = fmt::format("u{}@d0.ok.test", i);
    rs.push_back({{"email", to}, {"vars", {{"to", to}, {"code", fmt::format("C{}", i)}}}});
  }
  j["recipients"] = rs;
  return j.dump();
}

void drop_job(const std::string& pickup, const std::string& text) {
  fs::create_directories(pickup + "/tmp");
  std::ofstream(pickup + "/tmp/job.json") << text;
  fs::rename(pickup + "/tmp/job.json", pickup + "/job.json");
}

// One message to five recipients, max_recipients 2: three transactions, one body hash and
// one RSA signature (t= is when it was queued, so the signed data is the same each time);
// every copy verifies.
TEST(Delivery, AMessageToManyRecipientsIsSignedOnce) {
  TempDir keys;
  const DkimKey k = make_dkim_key(keys, "rsa1", "sender.test", true);
  Env env(zones({k.record}));
  SalvodOptions o = env.salvod(dkim_table("sender.test", "rsa1", k, true), "max_recipients = 2");
  o.cores = 1;
  Salvod d(env.dir, o);
  ASSERT_EQ(blast_to(env.dir, d, 1, "ok.test", {"--rcpts", "5"})["accepted"], 1);
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "delivered") == 5; }, 20s)) << d.log();
  const SigningCounts c = signing_counts(env, d);
  EXPECT_EQ(c.signed_, 1);
  EXPECT_EQ(c.reused, 2);
  EXPECT_EQ(c.hashed, 1);
  EXPECT_EQ(c.hash_reused, 2);
  EXPECT_EQ(d.stop(), 0);
  env.mx->stop();
  ASSERT_EQ(maildir_messages(env.dir.file("mx-mail")).size(), 3u);
  const std::string v = verify_dkim(env);
  EXPECT_NE(v.find("verified 3"), std::string::npos) << v;
}

// A job whose per-recipient variables are only in its header section: one body hash for
// the whole job; To: differs, so each recipient still gets its own signature. With a body
// variable, every recipient's body is hashed.
TEST(Delivery, AJobsBodyIsHashedOnceUnlessItVariesPerRecipient) {
  for (const bool body_var : {false, true}) {
    TempDir keys;
    const DkimKey k = make_dkim_key(keys, "rsa1", "sender.test", true);
    Env env(zones({k.record}));
    SalvodOptions o = env.salvod(dkim_table("sender.test", "rsa1", k, true));
    o.cores = 1;
    o.node_keys += "pickup = \"" + env.dir.file("pickup") + "\"\n";
    Salvod d(env.dir, o);
    drop_job(env.dir.file("pickup"), signed_job(6, true, body_var));
    ASSERT_TRUE(eventually([&] { return count_of(env.dir, "delivered") == 6; }, 20s)) << d.log();
    const SigningCounts c = signing_counts(env, d);
    EXPECT_EQ(c.signed_, 6) << "body_var " << body_var;
    EXPECT_EQ(c.hashed, body_var ? 6 : 1) << "body_var " << body_var;
    EXPECT_EQ(c.hash_reused, body_var ? 0 : 5) << "body_var " << body_var;
    EXPECT_EQ(d.stop(), 0);
    env.mx->stop();
    const std::string v = verify_dkim(env);
    EXPECT_NE(v.find("verified 6"), std::string::npos) << v;
  }
}

// [[dkim]] headers without To: the signed data of a job without per-recipient variables
// in its body or signed fields is the same for every recipient: one RSA operation.
TEST(Delivery, AJobWhoseSignedFieldsDoNotVaryCarriesOneSignature) {
  TempDir keys;
  const DkimKey k = make_dkim_key(keys, "rsa1", "sender.test", true);
  Env env(zones({k.record}));
  SalvodOptions o = env.salvod(dkim_table("sender.test", "rsa1", k, true) +
                               "headers = [\"from\", \"subject\"]\n");
  o.cores = 1;
  o.node_keys += "pickup = \"" + env.dir.file("pickup") + "\"\n";
  Salvod d(env.dir, o);
  drop_job(env.dir.file("pickup"), signed_job(6, true, false));
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "delivered") == 6; }, 20s)) << d.log();
  const SigningCounts c = signing_counts(env, d);
  EXPECT_EQ(c.signed_, 1);
  EXPECT_EQ(c.reused, 5);
  EXPECT_EQ(d.stop(), 0);
  env.mx->stop();
  const auto mail = maildir_messages(env.dir.file("mx-mail"));
  ASSERT_EQ(mail.size(), 6u);
  for (const auto& m : mail) {
    const std::string head = m.substr(0, m.find("\r\n\r\n"));
    EXPECT_NE(head.find("h=from:from:subject;"), std::string::npos) << head;
  }
  const std::string v = verify_dkim(env);
  EXPECT_NE(v.find("verified 6"), std::string::npos) << v;
}

// A [routes] target given by name is resolved (A record) like an MX host; a target that
// does not resolve defers (the operator's to fix), never bounces.
TEST(Delivery, RoutesByHostNameAreResolved) {
  Env env(zones({"relay.route.test. 300 IN A 127.0.0.3"}));
  Salvod d(env.dir, env.salvod(fmt::format("[routes]\n\"d0.routed.test\" = [\"relay.route.test:{}\"]\n"
                                           "\"d0.lost.test\" = [\"nowhere.route.test:{}\"]\n",
                                           env.port, env.port)));
  ASSERT_EQ(blast_to(env.dir, d, 5, "routed.test")["accepted"], 5);
  ASSERT_EQ(blast_to(env.dir, d, 2, "lost.test")["accepted"], 2);
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "delivered") == 5; }, 20s)) << d.log();
  for (const auto& e : of_type(env.dir, "delivered")) {
    EXPECT_EQ(e["mx"], "relay.route.test");
    EXPECT_EQ(e["ip"], "127.0.0.3");
  }
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "deferred") >= 2; }, 20s)) << d.log();
  for (const auto& e : of_type(env.dir, "deferred")) {
    EXPECT_EQ(e["domain"], "d0.lost.test");
    EXPECT_EQ(e["enhanced"], "4.4.3");
    EXPECT_NE(e["response"].get<std::string>().find("nowhere.route.test"), std::string::npos)
        << e.dump();
  }
  EXPECT_EQ(count_of(env.dir, "bounced"), 0);
  EXPECT_EQ(d.stop(), 0);
}

// --- Mail loops: a next hop that is salvod itself (SPEC §12) ---------------------------
// Each salvod here listens on 127.0.0.1; before the loop check it relayed to itself (its own
// address is in the default relay networks) and spooled a new copy at every hop, until
// [delivery] max_hops refused the hundredth.

// A value of salvoctl status --json's "metrics" object; -1 when it is not there.
double status_metric(const Env& env, const Salvod& d, const std::string& name) {
  Ctl s = salvoctl(env.dir, d.config_path(), {"status", "--json"});
  return s.rc == 0 ? s.j["metrics"].value(name, -1.0) : -1.0;
}

// salvod listening on 127.0.0.1 at the MX hosts' port ([delivery] smtp_port), so an MX
// host at 127.0.0.1 is salvod itself.
SalvodOptions on_the_mx_port(const Env& env, const std::string& more = "") {
  SalvodOptions o = env.salvod(more + fmt::format("[[listen]]\naddress = \"127.0.0.1:{}\"\n",
                                                  env.port));
  o.listener = false;
  return o;
}

// One bounce of anna@<domain> as a loop: its accounting line, and the DSN the sender's MX
// (127.0.0.4) kept.
void expect_loop_bounce(const Env& env, const std::string& domain) {
  auto bounced = of_type(env.dir, "bounced");
  ASSERT_EQ(bounced.size(), 1u);
  EXPECT_EQ(bounced[0]["rcpt"], "anna@" + domain);
  EXPECT_EQ(bounced[0]["code"], 554);
  EXPECT_EQ(bounced[0]["enhanced"], "5.4.4");
  EXPECT_EQ(bounced[0]["category"], "routing");
  EXPECT_EQ(bounced[0]["response"], "mail for " + domain + " loops back to myself");
  // The only delivery is the DSN's, to the sender's MX.
  auto delivered = of_type(env.dir, "delivered");
  ASSERT_EQ(delivered.size(), 1u);
  EXPECT_EQ(delivered[0]["rcpt"], "shop@sender.test");
  EXPECT_EQ(delivered[0]["source"], "dsn");
  auto dsns = maildir_messages(env.dir.file("sender-mail"));
  ASSERT_EQ(dsns.size(), 1u);
  EXPECT_NE(dsns[0].find("Action: failed"), std::string::npos) << dsns[0];
  EXPECT_NE(dsns[0].find("Status: 5.4.4"), std::string::npos) << dsns[0];
  EXPECT_NE(dsns[0].find("554 5.4.4 mail for " + domain + " loops back to myself"),
            std::string::npos)
      << dsns[0];
}

constexpr const char* kLoopMessage = "From: shop@sender.test\r\nSubject: loop\r\n\r\nx\r\n";

// A [routes] entry pointing a domain at salvod's own listener — bound on port 0, so the
// route is added by a reload once the port is known — bounces 554 5.4.4 before any
// connection, with a DSN to the sender; salvod's listener takes only the one message sent.
TEST(Delivery, RouteToOwnListenerBouncesAsALoop) {
  Env env;
  Salvod d(env.dir, env.salvod());
  std::ofstream(d.config_path(), std::ios::app)
      << fmt::format("\n[routes]\n\"d0.self.test\" = [\"{}\"]\n", d.address());
  Ctl reload = salvoctl(env.dir, d.config_path(), {"reload"});
  ASSERT_EQ(reload.rc, 0) << reload.err << reload.out;
  const std::string r = send_one(d, "shop@sender.test", "anna@d0.self.test", "", kLoopMessage);
  ASSERT_NE(r.find("250 2.0.0"), std::string::npos) << r;
  ASSERT_TRUE(eventually([&] { return env.senders->progress_messages() >= 1; }, 10s))
      << d.log();
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "bounced") >= 1; }, 5s));
  std::this_thread::sleep_for(300ms);  // a loop would go on meanwhile
  expect_loop_bounce(env, "d0.self.test");
  EXPECT_EQ(count_of(env.dir, "received"), 1) << "nothing came back into salvod";
  EXPECT_EQ(status_metric(env, d, "salvo_delivery_loops_total"), 1.0);
  EXPECT_EQ(d.stop(), 0);
  EXPECT_EQ(d.log_number("messages_queued"), 1) << d.log();
}

// An MX record whose host is salvod's address, on the port delivery uses: the same.
TEST(Delivery, AnMxThatIsThisNodeBouncesAsALoop) {
  Env env(zones({"d0.self.test. 300 IN MX 10 mx.self.test.",
                 "mx.self.test. 300 IN A 127.0.0.1"}));
  Salvod d(env.dir, on_the_mx_port(env));
  const std::string r = send_one(d, "shop@sender.test", "anna@d0.self.test", "", kLoopMessage);
  ASSERT_NE(r.find("250 2.0.0"), std::string::npos) << r;
  ASSERT_TRUE(eventually([&] { return env.senders->progress_messages() >= 1; }, 10s))
      << d.log();
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "bounced") >= 1; }, 5s));
  std::this_thread::sleep_for(300ms);
  expect_loop_bounce(env, "d0.self.test");
  EXPECT_EQ(count_of(env.dir, "received"), 1) << "nothing came back into salvod";
  EXPECT_EQ(status_metric(env, d, "salvo_delivery_loops_total"), 1.0);
  EXPECT_EQ(d.stop(), 0);
  EXPECT_EQ(d.log_number("messages_queued"), 1) << d.log();
}

// Two MX hosts: the preferred one is salvod itself, the other a real server. The one that
// is salvod is skipped and the message goes to the other; nothing bounces.
TEST(Delivery, MxHostsThatAreThisNodeAreSkipped) {
  Env env(zones({"d0.half.test. 300 IN MX 10 mx.self.test.",
                 "d0.half.test. 300 IN MX 20 mx.ok.test.",
                 "mx.self.test. 300 IN A 127.0.0.1"}));
  Salvod d(env.dir, on_the_mx_port(env));
  const std::string r = send_one(d, "shop@sender.test", "anna@d0.half.test", "", kLoopMessage);
  ASSERT_NE(r.find("250 2.0.0"), std::string::npos) << r;
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "delivered") >= 1; }, 10s)) << d.log();
  ASSERT_TRUE(env.mx->wait_messages(1, 5s));
  std::this_thread::sleep_for(300ms);
  auto delivered = of_type(env.dir, "delivered");
  ASSERT_EQ(delivered.size(), 1u);
  EXPECT_EQ(delivered[0]["mx"], "mx.ok.test");
  EXPECT_EQ(delivered[0]["ip"], "127.0.0.3");
  EXPECT_EQ(count_of(env.dir, "bounced"), 0);
  EXPECT_EQ(count_of(env.dir, "received"), 1);
  EXPECT_EQ(status_metric(env, d, "salvo_delivery_loops_total"), 0.0);
  EXPECT_EQ(d.stop(), 0);
  EXPECT_EQ(d.log_number("messages_queued"), 1) << d.log();
  EXPECT_EQ(env.mx->stop()["messages"], 1);
}

// The sender's domain loops too (its MX is salvod): the message bounces 5.4.4, its DSN
// (from the null sender) bounces 5.4.4 in turn and is only recorded — no DSN of a DSN
// (RFC 5321 §4.5.5) — so the loop ends with two messages spooled, none left to deliver.
TEST(Delivery, ADsnToADomainThatLoopsIsDroppedAndTheLoopEnds) {
  Env env(zones({"loop-sender.test. 300 IN MX 10 mx.self.test.",
                 "mx.self.test. 300 IN A 127.0.0.1"}));
  Salvod d(env.dir, on_the_mx_port(env, fmt::format("[routes]\n\"d0.self.test\" = "
                                                    "[\"127.0.0.1:{}\"]\n", env.port)));
  const std::string r = send_one(d, "shop@loop-sender.test", "anna@d0.self.test", "",
                                 "From: shop@loop-sender.test\r\nSubject: loop\r\n\r\nx\r\n");
  ASSERT_NE(r.find("250 2.0.0"), std::string::npos) << r;
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "bounced") >= 2; }, 10s)) << d.log();
  std::this_thread::sleep_for(500ms);  // a loop would go on meanwhile
  // Shards write their lines in turns: the two need not be in the file in this order.
  std::map<std::string, json> bounced;
  for (const auto& e : of_type(env.dir, "bounced")) bounced[e["rcpt"].get<std::string>()] = e;
  ASSERT_EQ(bounced.size(), 2u);
  const json& message = bounced["anna@d0.self.test"];
  const json& dsn = bounced["shop@loop-sender.test"];
  EXPECT_EQ(message["from"], "shop@loop-sender.test") << message.dump();
  EXPECT_EQ(dsn["from"], "") << "the DSN, from the null sender: " << dsn.dump();
  EXPECT_EQ(dsn["source"], "dsn") << dsn.dump();
  for (const json* e : {&message, &dsn}) {
    EXPECT_EQ((*e)["enhanced"], "5.4.4") << e->dump();
    EXPECT_EQ((*e)["category"], "routing") << e->dump();
  }
  EXPECT_EQ(count_of(env.dir, "dsn"), 1) << "a DSN for the message, none for the DSN";
  EXPECT_EQ(count_of(env.dir, "received"), 1);
  EXPECT_EQ(count_of(env.dir, "delivered"), 0);
  EXPECT_EQ(status_metric(env, d, "salvo_delivery_loops_total"), 2.0);
  EXPECT_EQ(d.stop(), 0);
  EXPECT_EQ(d.log_number("messages_queued"), 1) << d.log();
  EXPECT_EQ(d.log_number("dsns"), 1) << d.log();
  EXPECT_TRUE(read_spool_items(env.dir.file("spool")).empty())
      << "both messages are final: nothing left to deliver";
  EXPECT_EQ(env.senders->stop()["messages"], 0);
}

// A recipient domain written in capitals is one destination, named in lower case in every
// line: the received line and the delivery line agree.
TEST(Delivery, RecipientDomainIsLowerCaseInEveryLine) {
  Env env;
  Salvod d(env.dir, env.salvod());
  const std::string replies =
      send_one(d, "shop@sender.test", "User@D0.OK.Test", "",
               "From: shop@sender.test\r\nSubject: case\r\n\r\nhello\r\n");
  ASSERT_NE(replies.find("250 2.0.0"), std::string::npos) << replies;
  // Each shard writes its own accounting lines: the intake shard's "received" can reach
  // the file after the delivering shard's "delivered".
  ASSERT_TRUE(eventually(
      [&] {
        return count_of(env.dir, "delivered") == 1 && count_of(env.dir, "received") == 1;
      },
      20s))
      << d.log();
  auto received = of_type(env.dir, "received");
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0]["domain"], "d0.ok.test");
  EXPECT_EQ(received[0]["rcpt"], "User@D0.OK.Test");
  auto delivered = of_type(env.dir, "delivered");
  EXPECT_EQ(delivered[0]["domain"], "d0.ok.test");
  EXPECT_EQ(delivered[0]["rcpt"], "User@D0.OK.Test");
  EXPECT_EQ(d.stop(), 0);
}

}  // namespace
}  // namespace salvo::test
