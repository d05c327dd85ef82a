// SPDX-License-Identifier: Apache-2.0
// STARTTLS (B5-B7, B11, B17), AUTH (B12-B14) and BDAT (C15-C18) on ServerSession: rows of
// docs/reliability.md.
#include <gtest/gtest.h>

#include "server_harness.h"

namespace salvo::smtp {
namespace {

using testing::codes;
using testing::Harness;
using V = std::vector<std::string>;

ServerConfig tls_config() {
  auto c = testing::test_config();
  c.starttls_available = true;
  c.auth_mechanisms.add(AuthMechanism::Plain).add(AuthMechanism::Login);
  return c;
}

const char kPlainUser[] = "AHVzZXIAc2VjcmV0";   // "\0user\0secret"
const char kPlainWrong[] = "AHVzZXIAd3Jvbmc=";  // "\0user\0wrong"

TEST(ServerStartTls, AdvertisedThenResetAndAuthAdvertised) {
  Harness h(tls_config());
  h.auto_tls = false;
  std::string out = h.send("EHLO c\r\n");
  EXPECT_NE(out.find("250 STARTTLS\r\n"), std::string::npos);
  EXPECT_EQ(out.find("AUTH"), std::string::npos);  // B11: not before TLS
  EXPECT_EQ(h.send("AUTH PLAIN " + std::string(kPlainUser) + "\r\n"),
            "530 5.7.0 Must issue a STARTTLS command first\r\n");
  EXPECT_EQ(h.send("STARTTLS\r\n"), "220 2.0.0 Ready to start TLS\r\n");
  EXPECT_EQ(h.last, ServerEvent::StartTls);
  EXPECT_EQ(h.session.feed(h.in), ServerEvent::None);  // nothing processed until TLS is up
  h.session.tls_established();
  EXPECT_TRUE(h.session.tls_active());
  // B6: state reset: MAIL needs a new EHLO; STARTTLS gone, AUTH offered
  EXPECT_EQ(h.send("MAIL FROM:<a@b.c>\r\n"), "503 5.5.1 Error: send HELO/EHLO first\r\n");
  out = h.send("EHLO c\r\n");
  EXPECT_EQ(out.find("STARTTLS"), std::string::npos);
  EXPECT_NE(out.find("250 AUTH PLAIN LOGIN\r\n"), std::string::npos);
  EXPECT_EQ(h.send("STARTTLS\r\n"), "503 5.5.1 Error: TLS already active\r\n");
}

TEST(ServerStartTls, B5_InjectedCommandsDiscarded) {
  Harness h(tls_config());
  h.auto_tls = false;
  h.send("EHLO c\r\n");
  std::string out = h.send("STARTTLS\r\nRSET\r\nMAIL FROM:<evil@x.y>\r\n");
  EXPECT_EQ(out, "220 2.0.0 Ready to start TLS\r\n");
  EXPECT_TRUE(h.in.empty());
  EXPECT_EQ(h.session.stats().injected_octets, 28u);
  h.session.tls_established();
  EXPECT_EQ(h.send("EHLO c\r\nMAIL FROM:<a@b.c>\r\n").substr(0, 4), "250-");
}

TEST(ServerStartTls, B5_RejectPolicyCloses) {
  auto cfg = tls_config();
  cfg.starttls_injection = StarttlsInjection::Reject;
  Harness h(cfg);
  h.send("EHLO c\r\n");
  EXPECT_EQ(h.send("STARTTLS\r\nRSET\r\n"), "554 5.5.0 Error: SMTP protocol synchronization\r\n");
  EXPECT_EQ(h.last, ServerEvent::Close);
}

TEST(ServerStartTls, B7_ParameterAndUnavailable) {
  Harness h(tls_config());
  h.send("EHLO c\r\n");
  EXPECT_EQ(codes(h.send("STARTTLS now\r\n")), V{"501"});
  Harness plain;
  plain.send("EHLO c\r\n");
  EXPECT_EQ(codes(plain.send("STARTTLS\r\n")), V{"502"});
  Harness early(tls_config());
  EXPECT_EQ(codes(early.send("STARTTLS\r\n")), V{"503"});
}

struct AuthHarness : Harness {
  AuthHarness() : Harness(tls_config()) {
    send("EHLO c\r\nSTARTTLS\r\n");  // auto_tls completes the handshake
    send("EHLO c\r\n");
  }
};

TEST(ServerAuth, PlainInitialResponse) {
  AuthHarness h;
  EXPECT_EQ(h.send("AUTH PLAIN " + std::string(kPlainUser) + "\r\n"),
            "235 2.7.0 Authentication successful\r\n");
  EXPECT_TRUE(h.session.authenticated());
  EXPECT_EQ(h.session.authenticated_user(), "user");
  EXPECT_EQ(codes(h.send("AUTH PLAIN " + std::string(kPlainUser) + "\r\n")), V{"503"});  // B14
}

TEST(ServerAuth, PlainChallenge) {
  AuthHarness h;
  EXPECT_EQ(h.send("AUTH PLAIN\r\n"), "334 \r\n");
  EXPECT_EQ(h.send(std::string(kPlainWrong) + "\r\n"), "535 5.7.8 Error: authentication failed\r\n");
  EXPECT_FALSE(h.session.authenticated());
  EXPECT_EQ(h.send("AUTH PLAIN\r\n"), "334 \r\n");
  EXPECT_EQ(h.send(std::string(kPlainUser) + "\r\n"), "235 2.7.0 Authentication successful\r\n");
}

TEST(ServerAuth, Login) {
  AuthHarness h;
  EXPECT_EQ(h.send("AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
  EXPECT_EQ(h.send("dXNlcg==\r\n"), "334 UGFzc3dvcmQ6\r\n");
  EXPECT_EQ(h.send("c2VjcmV0\r\n"), "235 2.7.0 Authentication successful\r\n");
}

TEST(ServerAuth, LoginInitialResponse) {
  AuthHarness h;
  EXPECT_EQ(h.send("AUTH LOGIN dXNlcg==\r\n"), "334 UGFzc3dvcmQ6\r\n");
  EXPECT_EQ(h.send("c2VjcmV0\r\n"), "235 2.7.0 Authentication successful\r\n");
}

TEST(ServerAuth, B12_BadBase64AndMalformed) {
  AuthHarness h;
  EXPECT_EQ(h.send("AUTH PLAIN !!!!\r\n"), "501 5.5.2 Error: invalid base64 data\r\n");
  EXPECT_EQ(h.send("AUTH PLAIN dXNlcg=\r\n"), "501 5.5.2 Error: invalid base64 data\r\n");
  EXPECT_EQ(h.send("AUTH PLAIN dXNlcg==\r\n"), "501 5.5.2 Error: invalid authentication data\r\n");
  EXPECT_EQ(h.send("AUTH PLAIN =\r\n"), "501 5.5.2 Error: invalid authentication data\r\n");
  EXPECT_EQ(codes(h.send("AUTH CRAM-MD5\r\n")), V{"504"});
  EXPECT_EQ(h.send("NOOP\r\n"), "250 2.0.0 Ok\r\n");
}

TEST(ServerAuth, B14_CancelAndInTransaction) {
  AuthHarness h;
  h.send("AUTH LOGIN\r\n");
  EXPECT_EQ(h.send("*\r\n"), "501 5.7.0 Error: authentication aborted\r\n");
  h.send("MAIL FROM:<a@b.c>\r\n");
  EXPECT_EQ(codes(h.send("AUTH PLAIN " + std::string(kPlainUser) + "\r\n")), V{"503"});
}

// Three refused AUTH attempts, then 421 4.7.0 and close — also when twenty guesses arrive
// in one read: the policy sees three of them, the rest are never looked at.
TEST(ServerAuth, ThirdFailureClosesEvenWithPipelinedGuesses) {
  AuthHarness h;
  std::string guesses;
  for (int i = 0; i < 20; ++i) guesses += "AUTH PLAIN " + std::string(kPlainWrong) + "\r\n";
  const std::string out = h.send(guesses);
  EXPECT_EQ(codes(out), (V{"535", "535", "535", "421"})) << out;
  EXPECT_NE(out.find("421 4.7.0 mx.test Error: too many authentication failures"),
            std::string::npos)
      << out;
  EXPECT_EQ(h.last, ServerEvent::Close);
  EXPECT_FALSE(h.session.authenticated());
  // One at a time, the same: the third failure closes.
  AuthHarness slow;
  EXPECT_EQ(codes(slow.send("AUTH PLAIN " + std::string(kPlainWrong) + "\r\n")), V{"535"});
  EXPECT_EQ(codes(slow.send("AUTH PLAIN " + std::string(kPlainWrong) + "\r\n")), V{"535"});
  EXPECT_EQ(codes(slow.send("AUTH PLAIN " + std::string(kPlainWrong) + "\r\n")),
            (V{"535", "421"}));
  EXPECT_EQ(slow.last, ServerEvent::Close);
  // With the limit off, ten guesses get ten 535s (the hard error limit, 20, still holds).
  auto cfg = tls_config();
  cfg.max_auth_failures = 0;
  Harness off(cfg);
  off.send("EHLO c\r\nSTARTTLS\r\n");
  off.send("EHLO c\r\n");
  std::string ten;
  for (int i = 0; i < 10; ++i) ten += "AUTH PLAIN " + std::string(kPlainWrong) + "\r\n";
  EXPECT_EQ(codes(off.send(ten)), V(10, "535"));
  EXPECT_NE(off.last, ServerEvent::Close);
}

// pause_after_auth_failure (the injection listener's delay): feed() stops at each refusal
// with its reply queued and the rest of the input unread; the third still closes.
TEST(ServerAuth, PauseAfterEachFailureLeavesTheRestUnread) {
  auto cfg = tls_config();
  cfg.pause_after_auth_failure = true;
  Harness h(cfg);
  h.send("EHLO c\r\nSTARTTLS\r\n");
  h.send("EHLO c\r\n");
  const std::string guess = "AUTH PLAIN " + std::string(kPlainWrong) + "\r\n";
  EXPECT_EQ(codes(h.send(guess + guess + guess + "NOOP\r\n")), V{"535"});
  EXPECT_EQ(h.last, ServerEvent::AuthFailed);
  EXPECT_EQ(h.in.size(), 2 * guess.size() + 6) << "the rest waits for the driver";
  EXPECT_EQ(codes(h.pump()), V{"535"});
  EXPECT_EQ(h.last, ServerEvent::AuthFailed);
  EXPECT_EQ(codes(h.pump()), (V{"535", "421"}));
  EXPECT_EQ(h.last, ServerEvent::Close);
  // A success does not pause: after one refusal the right password gets in, and the
  // commands behind it run in the same feed.
  Harness ok(cfg);
  ok.send("EHLO c\r\nSTARTTLS\r\n");
  ok.send("EHLO c\r\n");
  EXPECT_EQ(codes(ok.send(guess + "AUTH PLAIN " + kPlainUser + "\r\nNOOP\r\n")), V{"535"});
  EXPECT_EQ(codes(ok.pump()), (V{"235", "250"}));
  EXPECT_EQ(ok.last, ServerEvent::None);
  EXPECT_TRUE(ok.session.authenticated());
}

TEST(ServerAuth, B13_LineLimit12288) {
  AuthHarness h;
  h.send("AUTH PLAIN\r\n");
  // 12288 octets of (valid) base64: accepted as a line, decodes to junk credentials.
  std::string ok(12288, 'A');
  EXPECT_EQ(codes(h.send(ok + "\r\n")), V{"501"});  // parsed: no NULs in the decoded data
  h.send("AUTH PLAIN\r\n");
  std::string too_long(12289, 'A');
  EXPECT_EQ(h.send(too_long + "\r\n"),
            "500 5.5.6 Error: authentication exchange line is too long\r\n");
  EXPECT_EQ(h.send("NOOP\r\n"), "250 2.0.0 Ok\r\n");
  EXPECT_EQ(codes(h.send("AUTH PLAIN " + std::string(12288, 'A') + "\r\n")), V{"501"});
  EXPECT_EQ(codes(h.send("AUTH PLAIN " + std::string(13000, 'A') + "\r\n")), V{"500"});
}

TEST(ServerAuth, B17_TlsResetsAuthRsetDoesNot) {
  auto cfg = tls_config();
  cfg.auth_requires_tls = false;
  Harness h(cfg);
  h.send("EHLO c\r\n");
  EXPECT_EQ(codes(h.send("AUTH PLAIN " + std::string(kPlainUser) + "\r\n")), V{"235"});
  h.send("RSET\r\n");
  EXPECT_TRUE(h.session.authenticated());
  h.send("STARTTLS\r\n");
  EXPECT_FALSE(h.session.authenticated());
}

TEST(ServerAuth, RelayAllowedAfterAuth) {
  AuthHarness h;
  h.policy.deny_domain = "gmail.com";
  h.send("MAIL FROM:<a@b.c>\r\n");
  EXPECT_EQ(codes(h.send("RCPT TO:<x@gmail.com>\r\n")), V{"554"});
  h.send("RSET\r\nAUTH PLAIN " + std::string(kPlainUser) + "\r\n");
  h.send("MAIL FROM:<a@b.c>\r\n");
  EXPECT_EQ(codes(h.send("RCPT TO:<x@gmail.com>\r\n")), V{"250"});
}

class ServerBdat : public ::testing::Test {
 protected:
  void SetUp() override {
    h.send("EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\n");
  }
  Harness h;
};

TEST_F(ServerBdat, ChunksAndLast) {
  EXPECT_EQ(h.send("BDAT 5\r\nab\r\n."), "250 2.0.0 5 octets received\r\n");
  EXPECT_EQ(h.send("BDAT 3 LAST\r\n\r\n"), "");
  EXPECT_EQ(h.send("x"), "250 2.0.0 Ok: queued\r\n");
  ASSERT_EQ(h.bodies.size(), 1u);
  EXPECT_EQ(h.bodies[0], "ab\r\n.\r\nx");
  EXPECT_TRUE(h.envelopes[0].via_bdat);
}

TEST_F(ServerBdat, C18_NoDotProcessingBareLfRefused) {
  EXPECT_EQ(h.send("BDAT 9 LAST\r\na\r\n.\r\nb\nc"), "550 5.5.2 Error: bare <LF> received\r\n");
  EXPECT_TRUE(h.bodies.empty());
}

TEST_F(ServerBdat, C18_DotLineKept) {
  EXPECT_EQ(h.send("BDAT 7 LAST\r\na\r\n.\r\nb"), "250 2.0.0 Ok: queued\r\n");
  ASSERT_EQ(h.bodies.size(), 1u);
  EXPECT_EQ(h.bodies[0], "a\r\n.\r\nb");
}

TEST_F(ServerBdat, C16_OverflowAndNegative) {
  EXPECT_EQ(h.send("BDAT 99999999999999999999\r\n"), "552 5.3.4 Message size exceeds fixed limit\r\n");
  EXPECT_EQ(h.last, ServerEvent::Close);
  Harness g;
  g.send("EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\n");
  EXPECT_EQ(g.send("BDAT -1\r\n"), "501 5.5.4 Syntax: BDAT count [LAST]\r\n");
  EXPECT_EQ(g.last, ServerEvent::Close);
}

TEST_F(ServerBdat, C16_DataAfterBdatAndBdatAfterData) {
  h.send("BDAT 2\r\nab");
  EXPECT_EQ(h.send("DATA\r\n"), "503 5.5.1 Error: DATA after BDAT\r\n");
  h.send("BDAT 0 LAST\r\n");
  ASSERT_EQ(h.bodies.size(), 1u);
  // BDAT after DATA finished: no MAIL, chunk bytes skipped, then 503
  h.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\n");
  h.send("hi\r\n.\r\n");
  EXPECT_EQ(h.send("BDAT 10 LAST\r\nMAIL FROM:"), "503 5.5.1 Error: need MAIL command\r\n");
  EXPECT_EQ(h.send("NOOP\r\n"), "250 2.0.0 Ok\r\n");
}

TEST_F(ServerBdat, C17_ZeroLast) {
  EXPECT_EQ(h.send("BDAT 0 LAST\r\n"), "250 2.0.0 Ok: queued\r\n");
  ASSERT_EQ(h.bodies.size(), 1u);
  EXPECT_EQ(h.bodies[0], "");
}

TEST_F(ServerBdat, C15_ShortChunkThenNothing) {
  EXPECT_EQ(h.send("BDAT 100\r\n" + std::string(50, 'x')), "");
  EXPECT_TRUE(h.bodies.empty());
}

TEST(ServerBdatLimits, CumulativeTooBigSkipsChunk) {
  auto cfg = testing::test_config();
  cfg.max_message_size = 10;
  Harness h(cfg);
  h.send("EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\n");
  EXPECT_EQ(codes(h.send("BDAT 8\r\n12345678")), V{"250"});
  EXPECT_EQ(h.send("BDAT 8 LAST\r\n12345678"), "552 5.3.4 Error: message file too big\r\n");
  EXPECT_EQ(h.send("NOOP\r\n"), "250 2.0.0 Ok\r\n");
  EXPECT_EQ(h.send("BDAT 11\r\n"), "552 5.3.4 Error: message file too big\r\n");
  EXPECT_EQ(h.last, ServerEvent::Close);
}

TEST(ServerBdatState, NoRcptSkipsChunk) {
  Harness h;
  h.send("EHLO c\r\nMAIL FROM:<a@b.c>\r\n");
  EXPECT_EQ(h.send("BDAT 19 LAST\r\nMAIL FROM:<e@v.il>\r\n"), "503 5.5.1 Error: need RCPT command\r\n");
}

}  // namespace
}  // namespace salvo::smtp
