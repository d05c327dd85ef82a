// SPDX-License-Identifier: Apache-2.0
// ServerSession against docs/reliability.md tables A, B and C (pure protocol rows).
#include <gtest/gtest.h>

#include "server_harness.h"

namespace salvo::smtp {
namespace {

using testing::codes;
using testing::Harness;
using V = std::vector<std::string>;

TEST(ServerSession, GreetingAndEhlo) {
  Harness h;
  EXPECT_EQ(h.greeting, "220 mx.test ESMTP salvo\r\n");
  std::string out = h.send("EHLO client.test\r\n");
  EXPECT_EQ(out,
            "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10485760\r\n250-8BITMIME\r\n"
            "250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250 CHUNKING\r\n");
}

TEST(ServerSession, HeloGetsPlainReplyAndNoEsmtpParams) {
  Harness h;
  EXPECT_EQ(h.send("HELO client.test\r\n"), "250 mx.test\r\n");
  EXPECT_EQ(h.send("MAIL FROM:<a@b.c> SIZE=10\r\n"), "555 5.5.4 Unsupported option\r\n");
  EXPECT_EQ(h.send("MAIL FROM:<a@b.c>\r\n"), "250 2.1.0 Ok\r\n");
}

TEST(ServerSession, SimpleTransaction) {
  Harness h;
  h.ehlo();
  EXPECT_EQ(h.send("MAIL FROM:<a@b.c>\r\n"), "250 2.1.0 Ok\r\n");
  EXPECT_EQ(h.send("RCPT TO:<x@y.z> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x@y.z\r\n"),
            "250 2.1.5 Ok\r\n");
  EXPECT_EQ(h.send("DATA\r\n"), "354 End data with <CR><LF>.<CR><LF>\r\n");
  EXPECT_EQ(h.send("Subject: hi\r\n\r\n..dot\r\nbody\r\n.\r\n"), "250 2.0.0 Ok: queued\r\n");
  ASSERT_EQ(h.bodies.size(), 1u);
  EXPECT_EQ(h.bodies[0], "Subject: hi\r\n\r\n.dot\r\nbody\r\n");
  const Envelope& e = h.envelopes[0];
  EXPECT_EQ(e.reverse_path, "a@b.c");
  ASSERT_EQ(e.recipients.size(), 1u);
  EXPECT_EQ(e.recipients[0].address, "x@y.z");
  EXPECT_EQ(e.recipients[0].orcpt, "rfc822;x@y.z");
  EXPECT_TRUE(e.recipients[0].notify.has(Notify::Success));
  EXPECT_EQ(h.send("QUIT\r\n"), "221 2.0.0 Bye\r\n");
  EXPECT_EQ(h.last, ServerEvent::Close);
}

TEST(ServerSession, A1_ExactlyMaxLineAccepted) {
  Harness h;
  h.ehlo();
  std::string line = "NOOP ";
  line.append(kMaxCommandLine - line.size() - 2, 'x');
  line += "\r\n";
  ASSERT_EQ(line.size(), 512u);
  EXPECT_EQ(h.send(line), "250 2.0.0 Ok\r\n");
}

TEST(ServerSession, A2_LongLinesRejected) {
  for (std::size_t len : {513u, 514u, 1000u, 4096u}) {
    Harness h;
    h.ehlo();
    std::string line = "NOOP ";
    line.append(len - line.size() - 2, 'x');
    line += "\r\n";
    EXPECT_EQ(h.send(line), "500 5.5.2 Error: line too long\r\n") << len;
    EXPECT_EQ(h.send("NOOP\r\n"), "250 2.0.0 Ok\r\n") << len;
  }
}

TEST(ServerSession, A3_TenMegabyteLineBoundedMemory) {
  Harness h;
  h.ehlo();
  std::string chunk(64 * 1024, 'a');
  std::string out;
  for (int i = 0; i < 160; ++i) {
    out += h.send(chunk);
    EXPECT_LE(h.in.size(), kMaxCommandLine);
  }
  out += h.send("\r\nNOOP\r\n");
  EXPECT_EQ(out, "500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n");
}

TEST(ServerSession, A3_LongLineCrLfSplitAcrossReads) {
  Harness h;
  h.ehlo();
  std::string out = h.send(std::string(600, 'a') + "\r");
  out += h.send("\nNOOP\r\n");
  EXPECT_EQ(out, "500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n");
}

TEST(ServerSession, A5_NulInCommand) {
  Harness h;
  h.ehlo();
  EXPECT_EQ(h.send(std::string("MAIL FROM:<a@b.c>\0junk\r\n", 24)),
            "501 5.5.2 Error: NUL character in command\r\n");
}

TEST(ServerSession, A6_NonUtf8Bytes) {
  Harness h;
  EXPECT_EQ(codes(h.send("\x80\x81\r\n")), V{"500"});
  EXPECT_EQ(h.send("NOOP\r\n"), "250 2.0.0 Ok\r\n");
}

TEST(ServerSession, A7_UnknownLowercaseSpaces) {
  Harness h;
  EXPECT_EQ(h.send("FOO\r\n"), "500 5.5.1 Error: command not recognized\r\n");
  EXPECT_EQ(codes(h.send("ehlo x\r\n")), V{"250"});
  EXPECT_EQ(h.send("mail from: <a@b.c>\r\n"), "250 2.1.0 Ok\r\n");
  EXPECT_EQ(h.send("rcpt to:<d@e.f>\r\n"), "250 2.1.5 Ok\r\n");
}

TEST(ServerSession, A8_HardErrorLimit) {
  Harness h;
  std::string out;
  for (int i = 0; i < 100 && h.last != ServerEvent::Close; ++i) out += h.send("garbage\r\n");
  auto c = codes(out);
  ASSERT_EQ(c.size(), 21u);
  EXPECT_EQ(c.back(), "421");
  EXPECT_NE(out.find("421 4.7.0 mx.test Error: too many errors\r\n"), std::string::npos);
  EXPECT_TRUE(h.session.closed());
}

TEST(ServerSession, A9_A10_A11_Ordering) {
  Harness h;
  EXPECT_EQ(h.send("MAIL FROM:<a@b.c>\r\n"), "503 5.5.1 Error: send HELO/EHLO first\r\n");
  h.ehlo();
  EXPECT_EQ(h.send("RCPT TO:<a@b.c>\r\n"), "503 5.5.1 Error: need MAIL command\r\n");
  EXPECT_EQ(h.send("DATA\r\n"), "503 5.5.1 Error: need MAIL command\r\n");
  EXPECT_EQ(h.send("MAIL FROM:<a@b.c>\r\n"), "250 2.1.0 Ok\r\n");
  EXPECT_EQ(h.send("MAIL FROM:<a@b.c>\r\n"), "503 5.5.1 Error: nested MAIL command\r\n");
  EXPECT_EQ(h.send("DATA\r\n"), "503 5.5.1 Error: need RCPT command\r\n");
  EXPECT_TRUE(h.bodies.empty());
}

TEST(ServerSession, A12_Ehlo) {
  Harness h;
  EXPECT_EQ(h.send("EHLO\r\n"), "501 5.5.4 Syntax: EHLO hostname\r\n");
  EXPECT_EQ(h.send("EHLO " + std::string(300, 'a') + "\r\n"),
            "501 5.5.4 Syntax: EHLO hostname\r\n");
  h.send("HELO a\r\n");
  h.send("MAIL FROM:<a@b.c>\r\n");
  EXPECT_EQ(codes(h.send("EHLO b\r\n")).back(), "250");
  EXPECT_EQ(h.send("MAIL FROM:<a@b.c>\r\n"), "250 2.1.0 Ok\r\n");  // EHLO reset the transaction
}

TEST(ServerSession, A13_Lengths) {
  Harness h;
  h.ehlo();
  EXPECT_EQ(codes(h.send("MAIL FROM:<" + std::string(65, 'a') + "@b.c>\r\n")), V{"501"});
  std::string dom;
  for (int i = 0; i < 5; ++i) dom += std::string(60, 'd') + ".";
  dom += "com";
  EXPECT_EQ(codes(h.send("MAIL FROM:<a@" + dom + ">\r\n")), V{"501"});
  EXPECT_EQ(h.send("MAIL FROM:<" + std::string(64, 'a') + "@b.c>\r\n"), "250 2.1.0 Ok\r\n");
  EXPECT_EQ(codes(h.send("RCPT TO:<" + std::string(65, 'a') + "@b.c>\r\n")), V{"501"});
}

TEST(ServerSession, A14_NullSender) {
  Harness h;
  h.ehlo();
  EXPECT_EQ(h.send("MAIL FROM:<>\r\n"), "250 2.1.0 Ok\r\n");
  h.send("RCPT TO:<x@y.z>\r\nDATA\r\n");
  h.send("hi\r\n.\r\n");
  ASSERT_EQ(h.envelopes.size(), 1u);
  EXPECT_EQ(h.envelopes[0].reverse_path, "");
}

TEST(ServerSession, A15_A16_Params) {
  Harness h;
  h.ehlo();
  EXPECT_EQ(h.send("MAIL FROM:<a@b.c> FOO=1\r\n"), "555 5.5.4 Unsupported option\r\n");
  EXPECT_EQ(h.send("MAIL FROM:<a@b.c> SIZE=1 SIZE=2\r\n"), "501 5.5.4 Duplicate parameter\r\n");
  EXPECT_EQ(h.send("MAIL FROM:<a@b.c> BODY=7BIT BODY=8BITMIME\r\n"),
            "501 5.5.4 Duplicate parameter\r\n");
  EXPECT_EQ(h.send("MAIL FROM:<a@b.c> SIZE=99999999999999999999999\r\n"),
            "552 5.3.4 Message size exceeds fixed limit\r\n");
  EXPECT_EQ(h.send("MAIL FROM:<a@b.c> SIZE=18446744073709551616\r\n"),
            "552 5.3.4 Message size exceeds fixed limit\r\n");
  EXPECT_EQ(h.send("MAIL FROM:<a@b.c> SIZE=-1\r\n"), "501 5.5.4 Bad SIZE syntax\r\n");
  EXPECT_EQ(h.send("MAIL FROM:<a@b.c> SIZE=10485761\r\n"),
            "552 5.3.4 Message size exceeds fixed limit\r\n");
  EXPECT_EQ(h.send("MAIL FROM:<a@b.c> SIZE=10485760 BODY=8BITMIME\r\n"), "250 2.1.0 Ok\r\n");
}

TEST(ServerSession, A17_SizeLiedDataTooBig) {
  auto cfg = testing::test_config();
  cfg.max_message_size = 1000;
  Harness h(cfg);
  h.ehlo();
  h.send("MAIL FROM:<a@b.c> SIZE=10\r\nRCPT TO:<x@y.z>\r\nDATA\r\n");
  std::string body;
  for (int i = 0; i < 20; ++i) body += std::string(98, 'x') + "\r\n";
  EXPECT_EQ(h.send(body + ".\r\n"), "552 5.3.4 Error: message file too big\r\n");
  EXPECT_TRUE(h.bodies.empty());
  EXPECT_EQ(h.send("NOOP\r\n"), "250 2.0.0 Ok\r\n");
}

TEST(ServerSession, A18_TooManyRecipients) {
  Harness h;  // limit 100
  h.ehlo();
  h.send("MAIL FROM:<a@b.c>\r\n");
  std::string group;
  for (int i = 0; i < 101; ++i) group += "RCPT TO:<r" + std::to_string(i) + "@y.z>\r\n";
  auto c = codes(h.send(group));
  ASSERT_EQ(c.size(), 101u);
  EXPECT_EQ(c[99], "250");
  EXPECT_EQ(c[100], "452");
  h.send("DATA\r\n");
  EXPECT_EQ(h.send("x\r\n.\r\n"), "250 2.0.0 Ok: queued\r\n");
  EXPECT_EQ(h.envelopes[0].recipients.size(), 100u);
}

TEST(ServerSession, A8_DeliveredMailResetsTheErrorCount) {
  Harness h;
  h.policy.deny_domain = "relay.test";
  h.ehlo();
  std::string out;
  for (int round = 0; round < 5; ++round) {
    // 15 rejected recipients per transaction, then one accepted message: 75 errors in all,
    // but never 20 without delivering mail.
    std::string t = "MAIL FROM:<a@b.c>\r\n";
    for (int i = 0; i < 15; ++i) t += "RCPT TO:<x@relay.test>\r\n";
    t += "RCPT TO:<ok@y.z>\r\nDATA\r\n";
    out += h.send(t);
    out += h.send("Subject: x\r\n\r\nbody\r\n.\r\n");
  }
  EXPECT_FALSE(h.session.closed());
  EXPECT_EQ(h.bodies.size(), 5u);
  EXPECT_EQ(out.find("421"), std::string::npos);
}

TEST(ServerSession, A19_ManyRcptsErrorLimitCloses) {
  auto cfg = testing::test_config();
  cfg.max_recipients = 5;
  Harness h(cfg);
  h.ehlo();
  h.send("MAIL FROM:<a@b.c>\r\n");
  std::string group;
  for (int i = 0; i < 10000; ++i) group += "RCPT TO:<r@y.z>\r\n";
  auto c = codes(h.send(group));
  EXPECT_EQ(c.back(), "421");
  EXPECT_TRUE(h.session.closed());
  EXPECT_TRUE(h.in.empty());
}

TEST(ServerSession, A20_A21_Utf8) {
  Harness h;
  h.ehlo();
  EXPECT_EQ(h.send("MAIL FROM:<j\xC3\xB6rg@b.c>\r\n"),
            "553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n");
  EXPECT_EQ(h.send("MAIL FROM:<j\xC3\xB6rg@b.c> SMTPUTF8\r\n"), "250 2.1.0 Ok\r\n");
  EXPECT_EQ(h.send("RCPT TO:<\xC3\xA9@b\xC3\xA9.c>\r\n"), "250 2.1.5 Ok\r\n");
  EXPECT_EQ(codes(h.send("RCPT TO:<a\xC0\x80@b.c>\r\n")), V{"501"});
  EXPECT_EQ(codes(h.send("RCPT TO:<a\xED\xA0\x80@b.c>\r\n")), V{"501"});
  EXPECT_EQ(codes(h.send("RCPT TO:<a\xE2\x82@b.c>\r\n")), V{"501"});
  h.send("RSET\r\nMAIL FROM:<a@b.c>\r\n");
  EXPECT_EQ(h.send("RCPT TO:<\xC3\xA9@b.c>\r\n"),
            "553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n");
}

TEST(ServerSession, A23_DsnParams) {
  Harness h;
  h.ehlo();
  EXPECT_EQ(h.send("MAIL FROM:<a@b.c> ENVID=+ZZ\r\n"), "501 5.5.4 Bad ENVID value\r\n");
  EXPECT_EQ(h.send("MAIL FROM:<a@b.c> ENVID=+\r\n"), "501 5.5.4 Bad ENVID value\r\n");
  EXPECT_EQ(h.send("MAIL FROM:<a@b.c> ENVID=" + std::string(101, 'a') + "\r\n"),
            "501 5.5.4 Bad ENVID value\r\n");
  EXPECT_EQ(h.send("MAIL FROM:<a@b.c> ENVID=" + std::string(100, 'a') + " RET=HDRS\r\n"),
            "250 2.1.0 Ok\r\n");
  EXPECT_EQ(h.send("RCPT TO:<x@y.z> ORCPT=rfc822;" + std::string(500, 'a') + "\r\n"),
            "501 5.5.4 Bad ORCPT value\r\n");
  EXPECT_EQ(h.send("RCPT TO:<x@y.z> NOTIFY=NEVER,SUCCESS\r\n"), "501 5.5.4 Bad NOTIFY value\r\n");
  EXPECT_EQ(h.send("RCPT TO:<x@y.z> NOTIFY=NEVER\r\n"), "250 2.1.5 Ok\r\n");
}

TEST(ServerSession, A24_QuotedLocalParts) {
  Harness h;
  h.ehlo();
  h.send("MAIL FROM:<>\r\n");
  EXPECT_EQ(h.send("RCPT TO:<\"a b\"@x.y>\r\n"), "250 2.1.5 Ok\r\n");
  EXPECT_EQ(h.send("RCPT TO:<\"a\\\"b\"@x.y>\r\n"), "250 2.1.5 Ok\r\n");
  EXPECT_EQ(h.send("RCPT TO:<\"a@b\"@x.y>\r\n"), "250 2.1.5 Ok\r\n");
  EXPECT_EQ(codes(h.send("RCPT TO:<\"a\rb\"@x.y>\r\n")), V{"500"});
  h.send("DATA\r\n");
  h.send(".\r\n");
  ASSERT_EQ(h.envelopes.size(), 1u);
  EXPECT_EQ(h.envelopes[0].recipients[1].address, "\"a\\\"b\"@x.y");
}

TEST(ServerSession, A25_VrfyExpn) {
  Harness h;
  h.ehlo();
  EXPECT_EQ(codes(h.send("VRFY root\r\n")), V{"252"});
  EXPECT_EQ(codes(h.send("EXPN staff\r\n")), V{"502"});
  EXPECT_EQ(codes(h.send("ETRN x\r\nTURN\r\n")), (V{"502", "502"}));
  EXPECT_EQ(codes(h.send("HELP\r\n")), V{"214"});
}

TEST(ServerSession, B1_PipelinedGroupBatched) {
  Harness h;
  std::string out = h.send("EHLO c\r\n");
  out = h.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nRCPT TO:<w@y.z>\r\nDATA\r\n");
  EXPECT_EQ(out, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
  EXPECT_EQ(h.send("hello\r\n.\r\nQUIT\r\n"), "250 2.0.0 Ok: queued\r\n221 2.0.0 Bye\r\n");
  EXPECT_EQ(h.bodies.size(), 1u);
}

TEST(ServerSession, B2_ContentBeforeDataReply) {
  Harness h;
  h.ehlo();
  std::string out = h.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n");
  EXPECT_EQ(out, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n554 5.5.0 Error: SMTP protocol synchronization\r\n");
  EXPECT_EQ(h.last, ServerEvent::Close);
  EXPECT_TRUE(h.bodies.empty());
  EXPECT_EQ(h.session.stats().sync_violations, 1u);
}

TEST(ServerSession, B4_AllRcptsRejectedPipelinedBody) {
  Harness h;
  h.policy.deny_domain = "gmail.com";
  h.ehlo();
  std::string out = h.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<x@gmail.com>\r\nDATA\r\n");
  EXPECT_EQ(codes(out), (V{"250", "554", "554"}));
  EXPECT_NE(out.find("554 5.5.1 Error: no valid recipients"), std::string::npos);
  std::string body;
  for (int i = 0; i < 30; ++i) body += "line " + std::to_string(i) + "\r\n";
  out = h.send(body + ".\r\n");
  EXPECT_EQ(codes(out).back(), "421");
  EXPECT_TRUE(h.bodies.empty());
}

TEST(ServerSession, B15_RelayDenied) {
  Harness h;
  h.policy.deny_domain = "gmail.com";
  h.ehlo();
  h.send("MAIL FROM:<a@b.c>\r\n");
  EXPECT_EQ(h.send("RCPT TO:<x@gmail.com>\r\n"), "554 5.7.1 Relay access denied\r\n");
  // B16: a source route is stripped; the final address is what the policy sees.
  EXPECT_EQ(h.send("RCPT TO:<@a.b,@c.d:x@gmail.com>\r\n"), "554 5.7.1 Relay access denied\r\n");
  EXPECT_EQ(codes(h.send("RCPT TO:<x@gmail.com.>\r\n")), V{"501"});
  EXPECT_EQ(codes(h.send("RCPT TO:<user%gmail.com@[127.0.0.1]>\r\n")), V{"250"});
}

TEST(ServerSession, C1_C2_BareLfAndCr) {
  for (std::string_view bad : {"a\nb\r\n", "a\rb\r\n", "abc\n", "x\r"}) {
    Harness h;
    h.ehlo();
    h.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\n");
    std::string out = h.send(std::string(bad) + "\r\n.\r\n");
    EXPECT_EQ(codes(out), V{"550"}) << bad;
    EXPECT_TRUE(h.bodies.empty());
    EXPECT_EQ(h.send("NOOP\r\n"), "250 2.0.0 Ok\r\n");
  }
}

TEST(ServerSession, C3_SmugglingOneRefusedTransaction) {
  Harness h;
  h.ehlo();
  h.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\n");
  std::string out = h.send(
      "Subject: hi\r\n\r\nhello\n.\nMAIL FROM:<ceo@bank.example>\r\nRCPT TO:<x@y.z>\r\n"
      "DATA\r\nspoofed\r\n.\r\n");
  EXPECT_EQ(out, "550 5.5.2 Error: bare <LF> received\r\n");
  EXPECT_TRUE(h.bodies.empty());
  EXPECT_EQ(h.session.stats().messages_refused, 1u);
}

TEST(ServerSession, C4_SmtpsmugVariants) {
  const std::string_view variants[] = {"\n.\n",   "\r.\r",     "\r.\n",   "\n.\r",
                                       "\n.\r\n", "\r\n.\n",   "\r.\r\n", "\r\n.\r",
                                       std::string_view("\r\n\0.\r\n", 6)};
  for (std::string_view v : variants) {
    Harness h;
    h.ehlo();
    h.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\n");
    std::string body = "hello" + std::string(v) + "MAIL FROM:<evil@x.y>\r\nNOOP\r\n";
    std::string out = h.send(body);
    EXPECT_EQ(out, "") << "variant must not end data";
    out = h.send("\r\n.\r\n");
    auto c = codes(out);
    ASSERT_EQ(c.size(), 1u);
    EXPECT_TRUE(c[0] == "550" || c[0] == "554") << c[0];
    EXPECT_TRUE(h.bodies.empty());
  }
}

TEST(ServerSession, C7_LineLength) {
  for (std::size_t n : {998u, 999u, 1024u * 1024u}) {
    Harness h;
    h.ehlo();
    h.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\n");
    std::string out = h.send(std::string(n, 'x') + "\r\n.\r\n");
    EXPECT_EQ(codes(out), V{n == 998 ? "250" : "500"}) << n;
  }
}

TEST(ServerSession, C8_NulInBody) {
  Harness h;
  h.ehlo();
  h.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\n");
  EXPECT_EQ(h.send(std::string("a\0b\r\n.\r\n", 8)), "554 5.6.0 Error: NUL character in message\r\n");
}

TEST(ServerSession, C10_EmptyMessage) {
  Harness h;
  h.ehlo();
  h.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\n");
  EXPECT_EQ(h.send(".\r\n"), "250 2.0.0 Ok: queued\r\n");
  ASSERT_EQ(h.bodies.size(), 1u);
  EXPECT_EQ(h.bodies[0], "");
}

TEST(ServerSession, C19_PipelinedMailAfterEndOfData) {
  Harness h;
  h.auto_complete = false;
  h.ehlo();
  h.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\n");
  std::string out = h.send("one\r\n.\r\nMAIL FROM:<d@e.f>\r\nRCPT TO:<g@h.i>\r\nDATA\r\n");
  EXPECT_EQ(out, "");
  EXPECT_EQ(h.last, ServerEvent::MessageReady);
  EXPECT_TRUE(h.session.awaiting_completion());
  EXPECT_EQ(h.session.feed(h.in), ServerEvent::None);  // nothing processed meanwhile
  h.session.complete_message(Reply(250, {2, 0, 0}, "Ok: queued as 1"));
  out = h.take() + h.pump();
  EXPECT_EQ(out, "250 2.0.0 Ok: queued as 1\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
}

TEST(ServerSession, KeepBodyOffCountsOnly) {
  auto cfg = testing::test_config();
  cfg.keep_body = false;
  Harness h(cfg);
  h.ehlo();
  h.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\n");
  h.auto_complete = false;
  h.send("abc\r\n.\r\n");
  EXPECT_EQ(h.session.body_size(), 5u);
  EXPECT_TRUE(h.session.body().empty());
}

TEST(ServerSession, RsetNoopQuit) {
  Harness h;
  h.ehlo();
  h.send("MAIL FROM:<a@b.c>\r\n");
  EXPECT_EQ(h.send("RSET\r\n"), "250 2.0.0 Ok\r\n");
  EXPECT_EQ(h.send("RCPT TO:<x@y.z>\r\n"), "503 5.5.1 Error: need MAIL command\r\n");
  EXPECT_EQ(h.send("NOOP hello\r\n"), "250 2.0.0 Ok\r\n");
  EXPECT_EQ(h.send("QUIT\r\nNOOP\r\n"), "221 2.0.0 Bye\r\n");
  EXPECT_TRUE(h.session.closed());
}

TEST(ServerSession, Shutdown) {
  Harness h;
  h.session.shutdown();
  EXPECT_EQ(h.take(), "421 4.4.2 mx.test Error: timeout exceeded\r\n");
  EXPECT_EQ(h.session.feed(h.in), ServerEvent::Close);
}

TEST(ServerSession, BareLfCommandNotTerminated) {
  Harness h;
  h.ehlo();
  EXPECT_EQ(h.send("NOOP\nNOOP\r\n"), "500 5.5.2 Error: bare <CR> or <LF> received\r\n");
}

}  // namespace
}  // namespace salvo::smtp

namespace salvo::smtp {
namespace {

// C5 at session level: the whole pipelined exchange split into two reads at every byte
// position gives exactly one message and the same replies.
TEST(ServerSessionSplit, C5_EveryBytePosition) {
  const std::string envelope = "MAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\n";
  const std::string data = "a\r\n..b\r\n.\r\nMAIL FROM:<d@e.f>\r\nQUIT\r\n";
  for (std::size_t cut = 0; cut <= data.size(); ++cut) {
    testing::Harness h;
    h.ehlo();
    h.send(envelope);
    std::string out = h.send(data.substr(0, cut));
    out += h.send(data.substr(cut));
    EXPECT_EQ(out, "250 2.0.0 Ok: queued\r\n250 2.1.0 Ok\r\n221 2.0.0 Bye\r\n") << cut;
    ASSERT_EQ(h.bodies.size(), 1u) << cut;
    EXPECT_EQ(h.bodies[0], "a\r\n.b\r\n");
  }
}

TEST(ServerSessionSplit, CommandsByteByByte) {
  testing::Harness h;
  std::string wire = "EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\n";
  std::string out;
  for (char c : wire) out += h.send(std::string(1, c));
  EXPECT_EQ(testing::codes(out), (std::vector<std::string>{"250", "250", "250", "354"}));
}

TEST(ServerSessionSplit, RecipientStringsRecycled) {
  testing::Harness h;
  h.ehlo();
  for (int i = 0; i < 3; ++i) {
    h.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<a-long-recipient-name@example.com>\r\n"
           "RCPT TO:<second-long-recipient@example.com>\r\nDATA\r\n");
    h.send("x\r\n.\r\n");
  }
  ASSERT_EQ(h.envelopes.size(), 3u);
  EXPECT_EQ(h.envelopes[2].recipients[0].address, "a-long-recipient-name@example.com");
  EXPECT_EQ(h.envelopes[2].recipients[1].address, "second-long-recipient@example.com");
}

}  // namespace
}  // namespace salvo::smtp

namespace salvo::smtp {
namespace {

class RejectingPolicy : public ServerPolicy {
 public:
  std::optional<Reply> on_helo(const ServerSession&, std::string_view name) override {
    if (name == "bad.example") return Reply(550, {5, 7, 1}, "go away");
    return std::nullopt;
  }
  std::optional<Reply> on_mail(const ServerSession&, const Path& p, const MailParams& m) override {
    seen_size = m.size;
    if (p.domain == "spam.example") return Reply(550, {5, 7, 1}, "sender rejected");
    if (p.is_null()) saw_null = true;
    return std::nullopt;
  }
  std::uint64_t seen_size = 0;
  bool saw_null = false;
};

TEST(ServerPolicyHooks, RejectionsKeepState) {
  ServerConfig cfg = testing::test_config();
  RejectingPolicy policy;
  ServerSession s(cfg, policy);
  ByteBuffer in;
  s.greet();
  s.output().clear();
  in.append("EHLO bad.example\r\nMAIL FROM:<a@b.c>\r\nEHLO good.example\r\n"
            "MAIL FROM:<x@spam.example> SIZE=42\r\nMAIL FROM:<> SIZE=7\r\n");
  EXPECT_EQ(s.feed(in), ServerEvent::None);
  auto c = testing::codes(s.output().view());
  EXPECT_EQ(c, (std::vector<std::string>{"550", "503", "250", "550", "250"}));
  EXPECT_EQ(policy.seen_size, 7u);
  EXPECT_TRUE(policy.saw_null);
  EXPECT_EQ(s.helo_name(), "good.example");
  EXPECT_TRUE(s.esmtp());
}

TEST(ServerPolicyHooks, DefaultAuthRefuses) {
  ServerConfig cfg = testing::test_config();
  cfg.auth_mechanisms.add(AuthMechanism::Plain);
  cfg.auth_requires_tls = false;
  ServerPolicy policy;  // defaults: accept mail, refuse credentials
  ServerSession s(cfg, policy);
  ByteBuffer in;
  s.greet();
  s.output().clear();
  in.append("EHLO c\r\nAUTH PLAIN AHVzZXIAc2VjcmV0\r\n");
  s.feed(in);
  EXPECT_NE(s.output().view().find("535 5.7.8"), std::string_view::npos);
  EXPECT_FALSE(s.authenticated());
}

}  // namespace
}  // namespace salvo::smtp
