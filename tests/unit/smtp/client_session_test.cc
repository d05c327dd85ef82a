// SPDX-License-Identifier: Apache-2.0
// ClientSession against scripted replies (docs/reliability.md table H) and against a real
// ServerSession in memory.
#include <salvo/smtp/client_session.h>

#include <gtest/gtest.h>

#include "server_harness.h"

namespace salvo::smtp {
namespace {

using testing::Harness;

// Drives a ClientSession from canned server bytes; collects what the client writes.
struct Scripted {
  explicit Scripted(ClientConfig c = {}) : client(std::move(c)) {}
  std::vector<ClientEvent> reply(std::string_view bytes) {
    in.append(bytes);
    std::vector<ClientEvent> evs;
    while (true) {
      ClientEvent ev = client.feed(in);
      if (ev.kind == ClientEventKind::None) break;
      evs.push_back(std::move(ev));
    }
    return evs;
  }
  std::string sent() {
    std::string s(client.output().view());
    client.output().clear();
    return s;
  }
  ClientSession client;
  ByteBuffer in;
};

const char kEhloFull[] =
    "250-mx\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-DSN\r\n250-CHUNKING\r\n"
    "250 STARTTLS\r\n";

Transaction txn(std::uint64_t cookie, std::string_view body,
                std::vector<std::string> rcpts = {"x@y.z"}) {
  Transaction t;
  t.cookie = cookie;
  t.reverse_path = "a@b.c";
  for (auto& r : rcpts) t.recipients.push_back({r, {}, ""});
  t.body = body;
  return t;
}

TEST(ClientSession, PipelinedTransaction) {
  Scripted s;
  EXPECT_TRUE(s.reply("220 mx ESMTP\r\n").empty());
  EXPECT_EQ(s.sent(), "EHLO localhost\r\n");
  auto evs = s.reply(kEhloFull);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].kind, ClientEventKind::Ready);
  s.client.submit(txn(7, "Subject: x\r\n\r\n.hi\r\n", {"x@y.z", "w@y.z"}));
  EXPECT_EQ(s.sent(), "MAIL FROM:<a@b.c> SIZE=19\r\nRCPT TO:<x@y.z>\r\nRCPT TO:<w@y.z>\r\nDATA\r\n");
  EXPECT_TRUE(s.reply("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 no\r\n354 go\r\n").empty());
  EXPECT_EQ(s.sent(), "Subject: x\r\n\r\n..hi\r\n.\r\n");
  evs = s.reply("250 2.0.0 queued\r\n");
  ASSERT_EQ(evs.size(), 1u);
  ASSERT_EQ(evs[0].kind, ClientEventKind::TransactionDone);
  const auto& r = evs[0].result;
  EXPECT_EQ(r.cookie, 7u);
  EXPECT_EQ(r.rcpt_replies.size(), 2u);
  EXPECT_EQ(r.rcpt_replies[1].code, 550);
  EXPECT_EQ(r.accepted_recipients(), 1u);
  EXPECT_TRUE(r.delivered());
  EXPECT_TRUE(s.client.idle());
  s.client.quit();
  EXPECT_EQ(s.sent(), "QUIT\r\n");
  evs = s.reply("221 bye\r\n");
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].kind, ClientEventKind::Closed);
}

TEST(ClientSession, EhloFallbackToHeloLockStep) {
  Scripted s;
  s.reply("220 old\r\n");
  s.sent();
  s.reply("502 what\r\n");
  EXPECT_EQ(s.sent(), "HELO localhost\r\n");
  s.client.submit(txn(1, "x\r\n", {"a@b", "c@d"}));
  auto evs = s.reply("250 old\r\n");
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].kind, ClientEventKind::Ready);
  EXPECT_EQ(s.sent(), "MAIL FROM:<a@b.c>\r\n");
  s.reply("250 ok\r\n");
  EXPECT_EQ(s.sent(), "RCPT TO:<a@b>\r\n");
  s.reply("550 no\r\n");
  EXPECT_EQ(s.sent(), "RCPT TO:<c@d>\r\n");
  s.reply("250 ok\r\n");
  EXPECT_EQ(s.sent(), "DATA\r\n");
  s.reply("354 go\r\n");
  EXPECT_EQ(s.sent(), "x\r\n.\r\n");
  evs = s.reply("250 ok\r\n");
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].result.final_reply.code, 250);
}

TEST(ClientSession, LockStepAllRcptsRejectedSendsRsetBeforeNext) {
  Scripted s;
  s.reply("220 x\r\n");
  s.reply("250 x\r\n");  // EHLO without PIPELINING
  s.sent();
  s.client.submit(txn(1, "a\r\n"));
  s.client.submit(txn(2, "b\r\n"));
  EXPECT_EQ(s.sent(), "MAIL FROM:<a@b.c>\r\n");
  s.reply("250 ok\r\n");
  EXPECT_EQ(s.sent(), "RCPT TO:<x@y.z>\r\n");
  auto evs = s.reply("550 no\r\n");
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].result.final_reply.code, 550);
  EXPECT_EQ(s.sent(), "RSET\r\n");
  s.reply("250 ok\r\n");
  EXPECT_EQ(s.sent(), "MAIL FROM:<a@b.c>\r\n");
}

TEST(ClientSession, LocalFailures) {
  Scripted s;
  s.reply("220 x\r\n");
  s.reply("250-mx\r\n250-PIPELINING\r\n250 SIZE 10\r\n");
  s.sent();
  s.client.submit(txn(1, "0123456789abc\r\n"));  // H17
  Transaction u = txn(2, "x\r\n");
  u.needs_smtputf8 = true;  // H16
  s.client.submit(std::move(u));
  s.client.submit(txn(3, "bare\nlf\r\n"));
  std::vector<ClientEvent> evs;
  while (true) {
    auto ev = s.client.feed(s.in);
    if (ev.kind == ClientEventKind::None) break;
    evs.push_back(std::move(ev));
  }
  ASSERT_EQ(evs.size(), 3u);
  EXPECT_EQ(evs[0].result.final_reply.status, (EnhancedStatus{5, 3, 4}));
  EXPECT_EQ(evs[1].result.final_reply.status, (EnhancedStatus{5, 6, 7}));
  EXPECT_EQ(evs[2].result.final_reply.status, (EnhancedStatus{5, 6, 0}));
  for (auto& e : evs) EXPECT_TRUE(e.result.local);
  EXPECT_EQ(s.sent(), "");
}

TEST(ClientSession, H11_ResponseInjectionAfterStartTls) {
  ClientConfig c;
  c.tls = TlsPolicy::Required;
  Scripted s(c);
  s.reply("220 x\r\n");
  s.sent();
  s.reply(kEhloFull);
  EXPECT_EQ(s.sent(), "STARTTLS\r\n");
  auto evs = s.reply("220 2.0.0 go\r\n250-injected\r\n250 PIPELINING\r\n");
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].kind, ClientEventKind::NeedTls);
  EXPECT_TRUE(s.in.empty());
  EXPECT_EQ(s.client.stats().injected_octets, 30u);
  s.client.tls_established();
  EXPECT_EQ(s.sent(), "EHLO localhost\r\n");
  evs = s.reply("250-mx\r\n250 SIZE 100\r\n");
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].kind, ClientEventKind::Ready);
  EXPECT_TRUE(s.client.tls_active());
  EXPECT_FALSE(s.client.capabilities().extensions.has(Extension::Pipelining));
}

TEST(ClientSession, H13_TlsRequiredNotOffered) {
  ClientConfig c;
  c.tls = TlsPolicy::Required;
  Scripted s(c);
  s.client.submit(txn(5, "x\r\n"));
  s.reply("220 x\r\n");
  auto evs = s.reply("250-mx\r\n250 PIPELINING\r\n");
  ASSERT_EQ(evs.size(), 2u);
  EXPECT_EQ(evs[0].kind, ClientEventKind::TransactionDone);
  EXPECT_TRUE(evs[0].result.final_reply.transient());
  EXPECT_EQ(evs[1].kind, ClientEventKind::Failed);
}

TEST(ClientSession, OpportunisticTlsRefusedContinues) {
  ClientConfig c;
  c.tls = TlsPolicy::Opportunistic;
  Scripted s(c);
  s.reply("220 x\r\n");
  s.reply(kEhloFull);
  s.sent();
  auto evs = s.reply("454 4.7.0 TLS not available\r\n");
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].kind, ClientEventKind::Ready);
}

TEST(ClientSession, H9_H10_ProtocolErrors) {
  {
    Scripted s;
    s.reply("220 x\r\n");
    s.reply("250 mx\r\n");
    auto evs = s.reply("250 extra\r\n");
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].kind, ClientEventKind::Failed);
    EXPECT_TRUE(evs[0].local);
  }
  {
    Scripted s;
    s.reply("220 x\r\n");
    auto evs = s.reply("250-mx\r\n550 broken\r\n");
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].kind, ClientEventKind::Failed);
    EXPECT_EQ(evs[0].reply.code, 451);
  }
  {
    Scripted s;
    auto evs = s.reply(std::string(1 << 20, 'x'));
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].kind, ClientEventKind::Failed);
  }
}

TEST(ClientSession, H20_DataAcceptedWithout354) {
  Scripted s;
  s.reply("220 x\r\n");
  s.reply("250-mx\r\n250 PIPELINING\r\n");
  s.client.submit(txn(1, "x\r\n"));
  auto evs = s.reply("250 ok\r\n250 ok\r\n250 ok\r\n");
  ASSERT_EQ(evs.size(), 2u);
  EXPECT_TRUE(evs[0].result.final_reply.transient());
  EXPECT_EQ(evs[1].kind, ClientEventKind::Failed);
}

TEST(ClientSession, H4_421ClosesEverything) {
  Scripted s;
  s.reply("220 x\r\n");
  s.reply("250-mx\r\n250 PIPELINING\r\n");
  s.client.submit(txn(1, "x\r\n"));
  s.client.submit(txn(2, "y\r\n"));
  auto evs = s.reply("421 4.7.0 go away\r\n");
  ASSERT_EQ(evs.size(), 3u);
  EXPECT_EQ(evs[0].result.cookie, 1u);
  EXPECT_EQ(evs[1].result.cookie, 2u);
  EXPECT_EQ(evs[0].result.final_reply.code, 421);
  EXPECT_EQ(evs[2].kind, ClientEventKind::Failed);
}

TEST(ClientSession, H7_ConnectionLost) {
  Scripted s;
  s.reply("220 x\r\n");
  s.reply("250-mx\r\n250 PIPELINING\r\n");
  s.client.submit(txn(1, "x\r\n"));
  s.client.connection_lost();
  auto evs = s.reply("");
  ASSERT_EQ(evs.size(), 2u);
  EXPECT_EQ(evs[0].result.final_reply.code, 451);
  EXPECT_TRUE(evs[0].result.local);
}

// A driver that gave up waiting says why; the transactions complete with its reply.
TEST(ClientSession, ConnectionLostWithTheDriversReason) {
  Scripted s;
  s.reply("220 x\r\n");
  s.reply("250-mx\r\n250 PIPELINING\r\n");
  s.client.submit(txn(1, "x\r\n"));
  s.client.connection_lost(Reply(451, {4, 4, 2}, "timed out waiting for the reply to MAIL"));
  auto evs = s.reply("");
  ASSERT_EQ(evs.size(), 2u);
  EXPECT_EQ(evs[0].result.final_reply.text, "timed out waiting for the reply to MAIL");
  EXPECT_TRUE(evs[0].result.local);
}

// replies() counts complete replies only: a multi-line reply arriving a byte at a time is
// one reply, counted when its last line is in; pipelined replies of one stage each count.
TEST(ClientSession, RepliesCountsCompleteRepliesOnly) {
  Scripted s;
  s.reply("220 x\r\n");
  EXPECT_EQ(s.client.replies(), 1u);
  EXPECT_EQ(s.client.awaiting(), Awaiting::Helo);
  const std::string ehlo = "250-mx\r\n250-PIPELINING\r\n250 8BITMIME\r\n";
  for (std::size_t i = 0; i + 1 < ehlo.size(); ++i) s.reply(ehlo.substr(i, 1));
  EXPECT_EQ(s.client.replies(), 1u);
  s.reply(ehlo.substr(ehlo.size() - 1));
  EXPECT_EQ(s.client.replies(), 2u);
  s.client.submit(txn(1, "x\r\n", {"a@y.z", "b@y.z"}));
  s.reply("250 ok\r\n250 ok\r\n");
  EXPECT_EQ(s.client.awaiting(), Awaiting::Rcpt);  // the second RCPT's reply
  EXPECT_EQ(s.client.replies(), 4u);
}

TEST(ClientSession, AuthPlainAndLogin) {
  ClientConfig c;
  c.auth = ClientCredentials{"", "user", "secret"};
  c.auth_requires_tls = false;
  Scripted s(c);
  s.reply("220 x\r\n");
  s.sent();
  s.reply("250-mx\r\n250 AUTH PLAIN LOGIN\r\n");
  EXPECT_EQ(s.sent(), "AUTH PLAIN AHVzZXIAc2VjcmV0\r\n");
  auto evs = s.reply("235 ok\r\n");
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].kind, ClientEventKind::Ready);

  Scripted l(c);
  l.reply("220 x\r\n");
  l.sent();
  l.reply("250-mx\r\n250 AUTH LOGIN\r\n");
  EXPECT_EQ(l.sent(), "AUTH LOGIN\r\n");
  l.reply("334 VXNlcm5hbWU6\r\n");
  EXPECT_EQ(l.sent(), "dXNlcg==\r\n");
  l.reply("334 UGFzc3dvcmQ6\r\n");
  EXPECT_EQ(l.sent(), "c2VjcmV0\r\n");
  evs = l.reply("535 5.7.8 no\r\n");
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].kind, ClientEventKind::Failed);
  EXPECT_EQ(evs[0].reply.code, 535);
}

// ---- client against server, in memory ----

struct Loop {
  Loop(ClientConfig cc, ServerConfig sc) : server(std::move(sc)), client(std::move(cc)) {
    server.auto_complete = true;
  }
  // Shuttles bytes until neither side has anything to say. Returns client events.
  std::vector<ClientEvent> run() {
    std::vector<ClientEvent> evs;
    for (int guard = 0; guard < 10000; ++guard) {
      bool moved = false;
      if (!client.output().empty()) {
        server.in.append(client.output().view());
        client.output().clear();
        to_client.append(server.pump());
        moved = true;
      }
      if (!server.greeting.empty()) {
        to_client.append(server.greeting);
        server.greeting.clear();
      }
      while (true) {
        ClientEvent ev = client.feed(to_client);
        if (ev.kind == ClientEventKind::None) break;
        if (ev.kind == ClientEventKind::NeedTls) client.tls_established();
        evs.push_back(std::move(ev));
        moved = true;
      }
      if (!moved && client.output().empty()) break;
    }
    return evs;
  }
  Harness server;
  ClientSession client;
  ByteBuffer to_client;
};

std::vector<std::string> bodies_for_c6() {
  return {"Subject: dots\r\n\r\n.\r\n..\r\n...\r\n.x\r\n",
          "..\r\n",
          ".",
          "",
          "no trailing newline",
          std::string(998, 'a') + "\r\n.\r\n"};
}

void run_both_ways(bool pipelining, bool chunking, bool across) {
  ClientConfig cc;
  cc.use_pipelining = pipelining;
  cc.use_chunking = chunking;
  cc.pipeline_across_messages = across;
  auto sc = testing::test_config();
  Loop loop(cc, sc);
  auto bodies = bodies_for_c6();
  for (std::size_t i = 0; i < bodies.size(); ++i)
    loop.client.submit(txn(i, bodies[i], {"r1@y.z", "r2@y.z"}));
  loop.client.quit();
  auto evs = loop.run();
  std::size_t done = 0;
  for (auto& e : evs) {
    if (e.kind != ClientEventKind::TransactionDone) continue;
    EXPECT_TRUE(e.result.delivered()) << e.result.final_reply.to_wire();
    EXPECT_EQ(e.result.accepted_recipients(), 2u);
    ++done;
  }
  EXPECT_EQ(done, bodies.size());
  ASSERT_EQ(loop.server.bodies.size(), bodies.size());
  for (std::size_t i = 0; i < bodies.size(); ++i) {
    std::string expect = bodies[i];
    if (!expect.empty() && !expect.ends_with("\r\n")) expect += "\r\n";
    EXPECT_EQ(loop.server.bodies[i], expect) << i;
    EXPECT_EQ(loop.server.envelopes[i].via_bdat, chunking);
  }
  EXPECT_EQ(evs.back().kind, ClientEventKind::Closed);
}

TEST(ClientServer, LockStep) { run_both_ways(false, false, false); }
TEST(ClientServer, Pipelined) { run_both_ways(true, false, false); }
TEST(ClientServer, PipelinedAcrossMessages) { run_both_ways(true, false, true); }
TEST(ClientServer, Chunking) { run_both_ways(false, true, false); }
TEST(ClientServer, ChunkingPipelined) { run_both_ways(true, true, true); }

TEST(ClientServer, StartTlsAndAuth) {
  ClientConfig cc;
  cc.tls = TlsPolicy::Required;
  cc.auth = ClientCredentials{"", "user", "secret"};
  auto sc = testing::test_config();
  sc.starttls_available = true;
  sc.auth_mechanisms.add(AuthMechanism::Plain);
  Loop loop(cc, sc);
  loop.server.policy.deny_domain = "gmail.com";
  loop.client.submit(txn(1, "hi\r\n", {"x@gmail.com"}));
  loop.client.quit();
  auto evs = loop.run();
  ASSERT_GE(evs.size(), 3u);
  EXPECT_EQ(evs[0].kind, ClientEventKind::NeedTls);
  EXPECT_EQ(evs[1].kind, ClientEventKind::Ready);
  EXPECT_TRUE(loop.server.session.authenticated());
  EXPECT_TRUE(evs[2].result.delivered());
}

TEST(ClientServer, RejectedRecipientsThenNextMessage) {
  ClientConfig cc;
  cc.pipeline_across_messages = true;
  Loop loop(cc, testing::test_config());
  loop.server.policy.deny_domain = "gmail.com";
  loop.client.submit(txn(1, "a\r\n", {"x@gmail.com"}));
  loop.client.submit(txn(2, "b\r\n", {"x@ok.com"}));
  loop.client.quit();
  auto evs = loop.run();
  std::vector<std::uint16_t> finals;
  for (auto& e : evs)
    if (e.kind == ClientEventKind::TransactionDone) finals.push_back(e.result.final_reply.code);
  EXPECT_EQ(finals, (std::vector<std::uint16_t>{554, 250}));
  ASSERT_EQ(loop.server.bodies.size(), 1u);
  EXPECT_EQ(loop.server.bodies[0], "b\r\n");
}

}  // namespace
}  // namespace salvo::smtp

namespace salvo::smtp {
namespace {

TEST(ClientSessionAcross, NextEnvelopeFollowsEndOfData) {
  ClientConfig c;
  c.pipeline_across_messages = true;
  Scripted s(c);
  s.reply("220 x\r\n");
  s.reply("250-mx\r\n250 PIPELINING\r\n");
  s.sent();
  s.client.submit(txn(1, "one\r\n"));
  s.client.submit(txn(2, "two\r\n"));
  EXPECT_EQ(s.sent(), "MAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\n");
  s.reply("250 ok\r\n250 ok\r\n354 go\r\n");
  EXPECT_EQ(s.sent(), "one\r\n.\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\n");
  auto evs = s.reply("250 queued 1\r\n250 ok\r\n250 ok\r\n354 go\r\n");
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].result.cookie, 1u);
  EXPECT_EQ(s.sent(), "two\r\n.\r\n");
  evs = s.reply("250 queued 2\r\n");
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].result.cookie, 2u);
  EXPECT_TRUE(s.client.idle());
}

TEST(ClientSessionAcross, ChunkingWithDsnParams) {
  ClientConfig c;
  c.use_chunking = true;
  Scripted s(c);
  s.reply("220 x\r\n");
  s.reply("250-mx\r\n250-PIPELINING\r\n250-DSN\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n");
  s.sent();
  Transaction t = txn(9, "..x");
  t.recipients[0].notify = NotifyFlags(static_cast<std::uint8_t>(Notify::Success) |
                                       static_cast<std::uint8_t>(Notify::Failure));
  t.recipients[0].orcpt = "rfc822;x@y.z";
  t.envid = "ID+2B1";
  t.ret = DsnRet::Hdrs;
  t.needs_8bitmime = true;
  t.needs_smtputf8 = true;
  s.client.submit(std::move(t));
  EXPECT_EQ(s.sent(),
            "MAIL FROM:<a@b.c> BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=ID+2B1\r\n"
            "RCPT TO:<x@y.z> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x@y.z\r\n"
            "BDAT 5 LAST\r\n..x\r\n");
  auto evs = s.reply("250 ok\r\n250 ok\r\n250 2.0.0 queued\r\n");
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_TRUE(evs[0].result.delivered());
}

}  // namespace
}  // namespace salvo::smtp

namespace salvo::smtp {
namespace {

TEST(ClientSessionAcross, InFlightCountsUnfinishedOnly) {
  ClientConfig c;
  c.pipeline_across_messages = true;
  Scripted s(c);
  s.reply("220 x\r\n");
  s.reply("250-mx\r\n250-PIPELINING\r\n250 SIZE 100\r\n");
  s.client.submit(txn(1, "ok\r\n"));
  EXPECT_EQ(s.client.in_flight(), 1u);
  s.reply("250 ok\r\n250 ok\r\n354 go\r\n");  // body of 1 written; 2 may start now
  const std::string big(200, 'x');
  s.client.submit(txn(2, big));  // over SIZE: local failure
  auto evs = s.reply("");
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].result.cookie, 2u);
  EXPECT_EQ(s.client.in_flight(), 1u);
  s.client.quit();
  evs = s.reply("250 queued\r\n");
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(s.client.in_flight(), 0u);
  EXPECT_NE(s.sent().find("QUIT\r\n"), std::string::npos);
}

}  // namespace
}  // namespace salvo::smtp
