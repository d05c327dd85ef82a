// SPDX-License-Identifier: Apache-2.0
// build_dsn: message structure, each action, ENVID/ORCPT, RET handling, refusals.
#include <string>

#include <gtest/gtest.h>

#include <salvo/dsn/dsn.h>
#include <salvo/dsn/errc.h>

#include "dsn_test_util.h"

namespace salvo::dsn {
namespace {

using fixture::base_input;
using fixture::build_ok;
using fixture::contains;
using fixture::header_section;
using fixture::parts_of;
using fixture::wellformed_lines;

TEST(BuildDsn, TopLevelHeadersAndThreeParts) {
  const std::string m = build_ok(base_input());
  ASSERT_TRUE(wellformed_lines(m));
  const std::string_view h = header_section(m);
  EXPECT_TRUE(contains(h, "From: Mail Delivery System <MAILER-DAEMON@mx1.salvo.test>\r\n"));
  EXPECT_TRUE(contains(h, "To: <sender@example.org>\r\n"));
  EXPECT_TRUE(contains(h, "Subject: Undelivered Mail Returned to Sender\r\n"));
  EXPECT_TRUE(contains(h, "Date: Sun, 22 Nov 2026 23:38:47 +0000\r\n"));
  EXPECT_TRUE(contains(h, "Message-ID: <"));
  EXPECT_TRUE(contains(h, "@salvo.test>\r\n"));
  EXPECT_TRUE(contains(h, "Auto-Submitted: auto-replied\r\n"));
  EXPECT_TRUE(contains(h, "MIME-Version: 1.0\r\n"));
  EXPECT_TRUE(contains(h, "multipart/report; report-type=delivery-status;"));
  EXPECT_FALSE(contains(h, "Content-Transfer-Encoding"));  // all 7-bit here
  EXPECT_TRUE(m.ends_with("--" + fixture::boundary_of(m) + "--\r\n"));

  const auto parts = parts_of(m);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_TRUE(contains(parts[0], "Content-Type: text/plain; charset=us-ascii\r\n"));
  EXPECT_TRUE(contains(parts[0], "<nobody@example.net>: delivery failed permanently"));
  EXPECT_TRUE(contains(parts[0], "Remote host: mx.example.net"));
  EXPECT_TRUE(contains(parts[0], "It said: 550 5.1.1 <nobody@example.net>: No such user"));
  EXPECT_TRUE(contains(parts[1], "Content-Type: message/delivery-status\r\n\r\n"));
  EXPECT_TRUE(contains(parts[2], "Content-Type: text/rfc822-headers\r\n"));
}

TEST(BuildDsn, FromAddressIsConfigurable) {
  DsnInput in = base_input();
  in.from_address = "bounces@esp.example";
  const std::string m = build_ok(in);
  EXPECT_TRUE(contains(header_section(m), "From: Mail Delivery System <bounces@esp.example>\r\n"));
  // A hostile value cannot add a header line.
  in.from_address = "x@y.example>\r\nBcc: victim@example.org";
  const std::string h = build_ok(in);
  ASSERT_TRUE(wellformed_lines(h));
  EXPECT_FALSE(contains(header_section(h), "\r\nBcc:"));
}

TEST(BuildDsn, DeliveryStatusFields) {
  const std::string m = build_ok(base_input());
  const auto parts = parts_of(m);
  ASSERT_EQ(parts.size(), 3u);
  const std::string& s = parts[1];
  // Per-message group, then an empty line, then the recipient group.
  EXPECT_TRUE(contains(s, "\r\n\r\nOriginal-Envelope-Id: batch+42\r\n"
                          "Reporting-MTA: dns; mx1.salvo.test\r\n"
                          "Arrival-Date: Sun, 22 Nov 2026 22:38:47 +0000\r\n"
                          "\r\n"
                          "Original-Recipient: rfc822; Nobody+x@example.net\r\n"
                          "Final-Recipient: rfc822; nobody@example.net\r\n"
                          "Action: failed\r\n"
                          "Status: 5.1.1\r\n"
                          "Remote-MTA: dns; mx.example.net\r\n"
                          "Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.net>: No such user\r\n"
                          "Last-Attempt-Date: Sun, 22 Nov 2026 22:39:47 +0000\r\n"))
      << s;
  EXPECT_FALSE(contains(s, "Will-Retry-Until"));
}

TEST(BuildDsn, DelayedAction) {
  DsnInput in = base_input();
  in.recipients[0].action = Action::Delayed;
  in.recipients[0].status = "4.4.1";
  in.recipients[0].diagnostic = "451 4.4.1 try later";
  in.recipients[0].will_retry_until_unix = fixture::kArrival + 5 * 86400;
  const std::string m = build_ok(in);
  ASSERT_TRUE(wellformed_lines(m));
  EXPECT_TRUE(contains(header_section(m), "Subject: Delayed Mail (still being retried)\r\n"));
  const auto parts = parts_of(m);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_TRUE(contains(parts[0], "WARNING ONLY"));
  EXPECT_TRUE(contains(parts[0], "delivery delayed (status 4.4.1)"));
  EXPECT_TRUE(contains(parts[1], "Action: delayed\r\nStatus: 4.4.1\r\n"));
  EXPECT_TRUE(contains(parts[1], "Will-Retry-Until: Fri, 27 Nov 2026 22:38:47 +0000\r\n"));
}

TEST(BuildDsn, DeliveredAction) {
  DsnInput in = base_input();
  in.recipients[0].action = Action::Delivered;
  in.recipients[0].status = "2.0.0";
  in.recipients[0].diagnostic = "250 2.0.0 Ok: queued as ABC";
  in.recipients[0].will_retry_until_unix = fixture::kArrival + 99;  // ignored: not delayed
  const std::string m = build_ok(in);
  ASSERT_TRUE(wellformed_lines(m));
  EXPECT_TRUE(contains(header_section(m), "Subject: Successful Mail Delivery Report\r\n"));
  const auto parts = parts_of(m);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_TRUE(contains(parts[0], "<nobody@example.net>: delivered (status 2.0.0)."));
  EXPECT_TRUE(contains(parts[1], "Action: delivered\r\nStatus: 2.0.0\r\n"));
  EXPECT_TRUE(contains(parts[1], "Diagnostic-Code: smtp; 250 2.0.0 Ok: queued as ABC\r\n"));
  EXPECT_FALSE(contains(parts[1], "Will-Retry-Until"));
  EXPECT_TRUE(contains(parts[2], "Content-Description: Message Headers\r\n"));
}

TEST(BuildDsn, RelayedAndExpandedActions) {
  for (Action a : {Action::Relayed, Action::Expanded}) {
    DsnInput in = base_input();
    in.recipients[0].action = a;
    in.recipients[0].status = "2.0.0";
    const std::string m = build_ok(in);
    ASSERT_TRUE(wellformed_lines(m));
    EXPECT_TRUE(contains(header_section(m), "Subject: Successful Mail Delivery Report"));
    EXPECT_TRUE(contains(m, "Action: " + std::string(action_name(a)) + "\r\n"));
  }
}

TEST(BuildDsn, MixedRecipientsSubjectFollowsWorstOutcome) {
  DsnInput in = base_input();
  RecipientReport ok = fixture::failed_recipient();
  ok.final_recipient = "someone@example.com";
  ok.original_recipient_xtext.clear();
  ok.action = Action::Delivered;
  ok.status = "2.0.0";
  in.recipients.push_back(ok);
  const std::string m = build_ok(in);
  EXPECT_TRUE(contains(header_section(m), "Subject: Undelivered Mail Returned to Sender"));
  const auto parts = parts_of(m);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_TRUE(contains(parts[1], "Final-Recipient: rfc822; nobody@example.net\r\n"));
  EXPECT_TRUE(contains(parts[1], "\r\n\r\nFinal-Recipient: rfc822; someone@example.com\r\n"
                                 "Action: delivered\r\n"));
}

TEST(BuildDsn, StatusClassFollowsAction) {
  DsnInput in = base_input();
  in.recipients[0].status = "4.4.7";  // expiry: reported failed as 5.4.7
  EXPECT_TRUE(contains(build_ok(in), "Status: 5.4.7\r\n"));
  in.recipients[0].status = "garbage";
  EXPECT_TRUE(contains(build_ok(in), "Status: 5.0.0\r\n"));
  in.recipients[0].status = "";
  in.recipients[0].action = Action::Delayed;
  EXPECT_TRUE(contains(build_ok(in), "Status: 4.0.0\r\n"));
  in.recipients[0].status = "5.1.1";
  in.recipients[0].action = Action::Delivered;
  EXPECT_TRUE(contains(build_ok(in), "Status: 2.0.0\r\n"));
  in.recipients[0].status = "2.1.5";
  EXPECT_TRUE(contains(build_ok(in), "Status: 2.1.5\r\n"));
}

TEST(BuildDsn, OptionalFieldsLeftOut) {
  DsnInput in = base_input();
  in.envid_xtext.clear();
  in.arrival_unix = 0;
  in.recipients[0].original_recipient_xtext.clear();
  in.recipients[0].remote_mta.clear();
  in.recipients[0].diagnostic.clear();
  in.recipients[0].last_attempt_unix = 0;
  const std::string m = build_ok(in);
  ASSERT_TRUE(wellformed_lines(m));
  for (const char* f : {"Original-Envelope-Id", "Arrival-Date", "Original-Recipient",
                        "Remote-MTA", "Diagnostic-Code", "Last-Attempt-Date", "It said"}) {
    EXPECT_FALSE(contains(m, f)) << f;
  }
}

TEST(BuildDsn, NonSmtpDiagnosticGetsOwnType) {
  DsnInput in = base_input();
  in.recipients[0].diagnostic = "Host or domain name not found (NXDOMAIN)";
  in.recipients[0].remote_mta.clear();
  EXPECT_TRUE(contains(build_ok(in),
                       "Diagnostic-Code: X-Salvo; Host or domain name not found (NXDOMAIN)\r\n"));
}

TEST(BuildDsn, EnvidAndOrcptDecodedFromXtext) {
  DsnInput in = base_input();
  in.envid_xtext = "id+3Dx+2By";
  in.recipients[0].original_recipient_xtext = "rfc822;a+2Bb+3Dc@example.net";
  const std::string m = build_ok(in);
  EXPECT_TRUE(contains(m, "Original-Envelope-Id: id=x+y\r\n"));
  EXPECT_TRUE(contains(m, "Original-Recipient: rfc822; a+b=c@example.net\r\n"));
}

TEST(BuildDsn, XtextThatDecodesToControlsStaysEncoded) {
  DsnInput in = base_input();
  in.envid_xtext = "evil+0D+0AX-Injected:+20yes";
  in.recipients[0].original_recipient_xtext = "rfc822;a+0D+0Ab@example.net";
  const std::string m = build_ok(in);
  ASSERT_TRUE(wellformed_lines(m));
  EXPECT_FALSE(contains(m, "\r\nX-Injected"));
  EXPECT_TRUE(contains(m, "Original-Envelope-Id: evil+0D+0AX-Injected:+20yes\r\n"));
  EXPECT_TRUE(contains(m, "Original-Recipient: rfc822; a+0D+0Ab@example.net\r\n"));
}

TEST(BuildDsn, MalformedOrcptIsLeftOut) {
  DsnInput in = base_input();
  in.recipients[0].original_recipient_xtext = "no-semicolon";
  EXPECT_FALSE(contains(build_ok(in), "Original-Recipient"));
  in.recipients[0].original_recipient_xtext = ";x@y";
  EXPECT_FALSE(contains(build_ok(in), "Original-Recipient"));
}

TEST(BuildDsn, RetHeadersReturnsOnlyTheHeaderSection) {
  for (Ret ret : {Ret::Headers, Ret::Unspecified}) {
    DsnInput in = base_input();
    in.ret = ret;
    const auto parts = parts_of(build_ok(in));
    ASSERT_EQ(parts.size(), 3u);
    EXPECT_TRUE(contains(parts[2], "Content-Type: text/rfc822-headers\r\n"));
    EXPECT_TRUE(contains(parts[2], "Subject: Hello there\r\n"));
    EXPECT_FALSE(contains(parts[2], "Body line"));
  }
}

TEST(BuildDsn, RetFullReturnsTheWholeMessage) {
  DsnInput in = base_input();
  in.ret = Ret::Full;
  const auto parts = parts_of(build_ok(in));
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_TRUE(contains(parts[2], "Content-Description: Undelivered Message\r\n"));
  EXPECT_TRUE(contains(parts[2], "Content-Type: message/rfc822\r\n\r\n" +
                                     std::string(fixture::kOriginal)));
}

TEST(BuildDsn, RetFullOverTheCapFallsBackToHeaders) {
  DsnInput in = base_input();
  in.ret = Ret::Full;
  std::string big(fixture::kOriginal);
  for (int i = 0; i < 2000; ++i) big += "0123456789012345678901234567890123456789\r\n";
  in.original_message = big;
  in.max_returned_bytes = 10000;
  const std::string m = build_ok(in);
  ASSERT_TRUE(wellformed_lines(m));
  EXPECT_LT(m.size(), 8000u);
  const auto parts = parts_of(m);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_TRUE(contains(parts[2], "Content-Type: text/rfc822-headers\r\n"));
  EXPECT_TRUE(contains(parts[2], "Subject: Hello there\r\n"));
  EXPECT_FALSE(contains(parts[2], "0123456789"));
}

TEST(BuildDsn, RetFullWithOverlongLineFallsBackToHeaders) {
  DsnInput in = base_input();
  in.ret = Ret::Full;
  std::string msg(fixture::kOriginal);
  msg += std::string(1500, 'x') + "\r\n";
  in.original_message = msg;
  const std::string m = build_ok(in);
  ASSERT_TRUE(wellformed_lines(m));
  EXPECT_TRUE(contains(m, "Content-Type: text/rfc822-headers\r\n"));
}

TEST(BuildDsn, HugeHeaderSectionIsCutAtALineBoundary) {
  DsnInput in = base_input();
  std::string msg;
  for (int i = 0; i < 1000; ++i) msg += "X-Filler: " + std::to_string(i) + " abcdefghij\r\n";
  msg += "\r\nbody\r\n";
  in.original_message = msg;
  in.max_returned_bytes = 4096;
  const std::string m = build_ok(in);
  ASSERT_TRUE(wellformed_lines(m));
  const auto parts = parts_of(m);
  ASSERT_EQ(parts.size(), 3u);
  const auto body = parts[2].substr(parts[2].find("\r\n\r\n") + 4);
  EXPECT_LE(body.size(), 4096u);
  EXPECT_TRUE(body.ends_with("abcdefghij\r\n"));
}

TEST(BuildDsn, OriginalWithoutBodyOrWithBareLineEnds) {
  DsnInput in = base_input();
  in.original_message = "Subject: only headers\nX-A: b\r";  // no empty line; bare LF and CR
  const std::string m = build_ok(in);
  ASSERT_TRUE(wellformed_lines(m));
  EXPECT_TRUE(contains(m, "Subject: only headers\r\nX-A: b\r\n"));
  in.original_message = "";
  ASSERT_TRUE(wellformed_lines(build_ok(in)));
}

TEST(BuildDsn, BoundaryAvoidsTextInTheReturnedMessage) {
  DsnInput in = base_input();
  in.ret = Ret::Full;
  const std::string first = fixture::boundary_of(build_ok(in));
  ASSERT_FALSE(first.empty());
  std::string msg(fixture::kOriginal);
  msg += "--" + first + "--\r\n";  // a guessed boundary inside the original
  in.original_message = msg;
  const std::string m = build_ok(in);
  const std::string second = fixture::boundary_of(m);
  EXPECT_NE(first, second);
  EXPECT_EQ(parts_of(m).size(), 3u);
}

TEST(BuildDsn, EightBitOriginalIsMarked) {
  DsnInput in = base_input();
  in.ret = Ret::Full;
  std::string msg(fixture::kOriginal);
  msg += "Gr\xc3\xbc\xc3\x9f" "e\r\n";
  in.original_message = msg;
  const std::string m = build_ok(in);
  EXPECT_TRUE(contains(header_section(m), "Content-Transfer-Encoding: 8bit\r\n"));
  EXPECT_TRUE(contains(m, "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n"));
}

TEST(BuildDsn, Smtputf8UsesGlobalTypes) {
  DsnInput in = base_input();
  in.smtputf8 = true;
  in.original_sender = "j\xc3\xbcrgen@example.org";
  in.recipients[0].final_recipient = "\xe5\xae\xa2\xe6\x88\xb7@example.net";
  in.recipients[0].diagnostic =
      "550 5.1.1 \xe7\x94\xa8\xe6\x88\xb7\xe4\xb8\x8d\xe5\xad\x98\xe5\x9c\xa8";
  const std::string m = build_ok(in);
  ASSERT_TRUE(wellformed_lines(m));
  EXPECT_TRUE(contains(header_section(m), "report-type=global-delivery-status;"));
  EXPECT_TRUE(contains(m, "Content-Type: message/global-delivery-status\r\n"));
  EXPECT_TRUE(contains(m, "Content-Type: message/global-headers\r\n"));
  EXPECT_TRUE(contains(m, "Final-Recipient: utf-8; \xe5\xae\xa2\xe6\x88\xb7@example.net\r\n"));
  EXPECT_TRUE(contains(m, "Content-Type: text/plain; charset=utf-8\r\n"));
  EXPECT_TRUE(contains(m, "Diagnostic-Code: smtp; " + in.recipients[0].diagnostic + "\r\n"));
  in.ret = Ret::Full;
  EXPECT_TRUE(contains(build_ok(in), "Content-Type: message/global\r\n"));
}

TEST(BuildDsn, NonAsciiWithoutSmtputf8IsMasked) {
  DsnInput in = base_input();
  in.recipients[0].diagnostic = "550 5.1.1 caf\xc3\xa9 \xff";
  const std::string m = build_ok(in);
  EXPECT_TRUE(contains(m, "Diagnostic-Code: smtp; 550 5.1.1 caf?? ?\r\n"));
  EXPECT_FALSE(contains(header_section(m), "8bit"));
}

TEST(BuildDsn, MessageIdFallsBackToReportingMta) {
  DsnInput in = base_input();
  in.message_id_domain.clear();
  EXPECT_TRUE(contains(header_section(build_ok(in)), "@mx1.salvo.test>\r\n"));
}

TEST(BuildDsn, DifferentUniqueGivesDifferentIds) {
  DsnInput a = base_input();
  DsnInput b = base_input();
  b.unique = 0x1235;
  const std::string ma = build_ok(a), mb = build_ok(b);
  EXPECT_NE(fixture::boundary_of(ma), fixture::boundary_of(mb));
  const auto id = [](std::string_view m) {
    const auto at = m.find("Message-ID: ");
    return std::string(m.substr(at, m.find("\r\n", at) - at));
  };
  EXPECT_NE(id(ma), id(mb));
}

TEST(BuildDsn, Refusals) {
  DsnInput in = base_input();
  in.recipients.clear();
  EXPECT_EQ(build_dsn(in).error(), make_error_code(errc::no_recipients));
  in = base_input();
  in.original_sender.clear();
  EXPECT_EQ(build_dsn(in).error(), make_error_code(errc::null_sender));
  in = base_input();
  in.reporting_mta.clear();
  EXPECT_EQ(build_dsn(in).error(), make_error_code(errc::bad_reporting_mta));
  in.reporting_mta = "host\r\nX-Evil: 1";
  EXPECT_EQ(build_dsn(in).error(), make_error_code(errc::bad_reporting_mta));
  EXPECT_STREQ(error_category().name(), "dsn");
  EXPECT_FALSE(make_error_code(errc::null_sender).message().empty());
}

}  // namespace
}  // namespace salvo::dsn
