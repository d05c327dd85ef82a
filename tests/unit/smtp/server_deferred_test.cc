// SPDX-License-Identifier: Apache-2.0
// Deferred completions: a pipelining client keeps several messages in flight while their
// commits run; replies leave strictly in order, held behind the oldest pending answer;
// STARTTLS, QUIT and the in-flight cap wait unread; the hard error limit still counts.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "server_harness.h"

namespace salvo::smtp::testing {
namespace {

ServerConfig deferred_config(std::uint32_t max) {
  ServerConfig c = test_config();
  c.max_deferred_completions = max;
  c.starttls_available = true;
  return c;
}

// Feeds bytes, deferring every message; returns the output released so far.
struct Deferring {
  explicit Deferring(std::uint32_t max) : Deferring(deferred_config(max)) {}
  explicit Deferring(ServerConfig c) : h(std::move(c)) { h.ehlo(); }
  std::string send(std::string_view bytes) {
    h.in.append(bytes);
    return pump();
  }
  std::string pump() {
    std::string out;
    for (;;) {
      ServerEvent ev = h.session.feed(h.in);
      out += h.take();
      if (ev == ServerEvent::MessageReady) {
        bodies.emplace_back(h.session.body().view());
        h.session.defer_completion();
        continue;
      }
      last = ev;
      return out;
    }
  }
  std::string complete(std::string_view id) {
    h.session.complete_deferred(250, {2, 0, 0}, std::string("Ok: queued as ") + std::string(id));
    std::string out = h.take();
    return out + pump();  // what was blocked may run now
  }
  Harness h;
  std::vector<std::string> bodies;
  ServerEvent last = ServerEvent::None;
};

std::string bdat_message(int i) {
  std::string body = "Subject: m" + std::to_string(i) + "\r\n\r\nbody\r\n";
  return "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nBDAT " + std::to_string(body.size()) +
         " LAST\r\n" + body;
}

TEST(ServerDeferred, RepliesStayInOrderBehindThePendingCommit) {
  Deferring d(8);
  // Three messages in one write: every command is read, no reply leaves yet except the
  // first transaction's MAIL/RCPT (they precede the first deferred answer).
  std::string out = d.send(bdat_message(1) + bdat_message(2) + bdat_message(3));
  EXPECT_EQ(out, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
  ASSERT_EQ(d.bodies.size(), 3u);
  EXPECT_EQ(d.h.session.deferred(), 3u);
  EXPECT_EQ(d.complete("A"), "250 2.0.0 Ok: queued as A\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
  EXPECT_EQ(d.complete("B"), "250 2.0.0 Ok: queued as B\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
  EXPECT_EQ(d.complete("C"), "250 2.0.0 Ok: queued as C\r\n");
  EXPECT_EQ(d.h.session.deferred(), 0u);
  EXPECT_EQ(d.bodies[2], "Subject: m3\r\n\r\nbody\r\n");
}

TEST(ServerDeferred, DataWaitsForItsOwn354InOrder) {
  Deferring d(8);
  std::string out = d.send(
      "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n");
  EXPECT_EQ(out, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
  // End of data and the next transaction's commands, pipelined (RFC 2920).
  out = d.send("hello\r\n.\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\n");
  EXPECT_EQ(out, "");  // all held behind the first answer
  out = d.complete("A");
  EXPECT_EQ(out, "250 2.0.0 Ok: queued as A\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
                 "354 End data with <CR><LF>.<CR><LF>\r\n");
}

TEST(ServerDeferred, StartTlsAndQuitWaitUntilEverythingIsAnswered) {
  Deferring d(8);
  d.send(bdat_message(1) + "STARTTLS\r\n");
  EXPECT_TRUE(d.h.session.blocked());
  EXPECT_FALSE(d.h.in.empty()) << "STARTTLS stays unread";
  std::string out = d.complete("A");
  EXPECT_EQ(out, "250 2.0.0 Ok: queued as A\r\n220 2.0.0 Ready to start TLS\r\n");
  EXPECT_EQ(d.last, ServerEvent::StartTls);

  Deferring q(8);
  q.send(bdat_message(1) + "QUIT\r\n");
  EXPECT_TRUE(q.h.session.blocked());
  out = q.complete("A");
  EXPECT_EQ(out, "250 2.0.0 Ok: queued as A\r\n221 2.0.0 Bye\r\n");
  EXPECT_EQ(q.last, ServerEvent::Close);
}

// A driver that may hold an AUTH refusal (pause_after_auth_failure) must owe nothing
// meanwhile: AUTH waits unread until every deferred answer is out, then runs.
TEST(ServerDeferred, AuthWaitsWhenItsRefusalMayBeHeld) {
  ServerConfig c = deferred_config(8);
  c.auth_mechanisms.add(AuthMechanism::Plain);
  c.auth_requires_tls = false;
  c.pause_after_auth_failure = true;
  Deferring d(c);
  EXPECT_EQ(d.send(bdat_message(1) + "AUTH PLAIN AHVzZXIAd3Jvbmc=\r\n"),  // "\0user\0wrong"
            "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
  EXPECT_TRUE(d.h.session.blocked());
  EXPECT_FALSE(d.h.in.empty()) << "AUTH stays unread";
  EXPECT_EQ(d.complete("A"),
            "250 2.0.0 Ok: queued as A\r\n535 5.7.8 Error: authentication failed\r\n");
  EXPECT_EQ(d.last, ServerEvent::AuthFailed);
  EXPECT_EQ(d.h.session.deferred(), 0u);
  // Without the flag AUTH is an ordinary pipelined command.
  ServerConfig plain = c;
  plain.pause_after_auth_failure = false;
  Deferring p(plain);
  EXPECT_EQ(p.send(bdat_message(1) + "AUTH PLAIN AHVzZXIAd3Jvbmc=\r\n"),
            "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
  EXPECT_FALSE(p.h.session.blocked());
  EXPECT_EQ(p.complete("A"),
            "250 2.0.0 Ok: queued as A\r\n535 5.7.8 Error: authentication failed\r\n");
}

TEST(ServerDeferred, TheCapStopsReadingUntilAnAnswerLeaves) {
  Deferring d(2);
  d.send(bdat_message(1) + bdat_message(2) + bdat_message(3));
  EXPECT_EQ(d.bodies.size(), 2u);
  EXPECT_TRUE(d.h.session.blocked());
  d.complete("A");
  EXPECT_EQ(d.bodies.size(), 3u);
  d.complete("B");
  d.complete("C");
  EXPECT_EQ(d.h.session.deferred(), 0u);
}

TEST(ServerDeferred, WithoutDeferralTheSessionStillWaits) {
  Harness h(test_config());  // max_deferred_completions = 0
  h.auto_complete = false;
  h.ehlo();
  h.send(bdat_message(1) + bdat_message(2));
  EXPECT_EQ(h.last, ServerEvent::MessageReady);
  EXPECT_TRUE(h.session.awaiting_completion());
  EXPECT_FALSE(h.in.empty()) << "the second message waits unread";
}

}  // namespace
}  // namespace salvo::smtp::testing
