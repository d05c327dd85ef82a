// SPDX-License-Identifier: Apache-2.0
// Untrusted input reaching the DSN: remote replies with CR/LF/NUL/8-bit and 100 KB length
// (docs/reliability.md I3), odd addresses and host names. Nothing may add a header line.
#include <string>

#include <gtest/gtest.h>

#include <salvo/dsn/dsn.h>

#include "dsn_test_util.h"

namespace salvo::dsn {
namespace {

using fixture::base_input;
using fixture::build_ok;
using fixture::contains;
using fixture::parts_of;
using fixture::wellformed_lines;

// No line in the delivery-status part may start a field we did not write.
void expect_no_injected_fields(std::string_view m) {
  for (const char* bad : {"\r\nX-Injected", "\r\nBcc:", "\r\nContent-Type: text/html",
                          "\r\nAction: delivered", "\r\nFinal-Recipient: rfc822; victim"}) {
    EXPECT_FALSE(contains(m, bad)) << bad;
  }
}

TEST(HostileInput, CrLfNulInRemoteReplyAreSanitised) {
  DsnInput in = base_input();
  in.recipients[0].diagnostic = fixture::bytes(
      "550-5.1.1 first line\r\n550 5.1.1 second\r\nX-Injected: yes\r\n\r\n"
      "Final-Recipient: rfc822; victim@example.com\rAction: delivered\n"
      "Bcc: a@b\0tail\x7f\x1b");
  const std::string m = build_ok(in);
  ASSERT_TRUE(wellformed_lines(m));
  expect_no_injected_fields(m);
  const std::string flat = fixture::unfold(m);
  EXPECT_TRUE(contains(flat, "Diagnostic-Code: smtp; 550-5.1.1 first line 550 5.1.1 second"));
  EXPECT_TRUE(contains(flat, "X-Injected: yes Final-Recipient: rfc822;"));
  EXPECT_EQ(parts_of(m).size(), 3u);
}

TEST(HostileInput, HundredKilobyteReplyIsBoundedAndFolded) {
  DsnInput in = base_input();
  std::string reply = "550 5.7.1 ";
  while (reply.size() < 100 * 1024) reply += "blocked-because-of-reasons ";
  reply += std::string(5000, 'z');  // one huge "word"
  in.recipients[0].diagnostic = reply;
  const std::string m = build_ok(in);
  ASSERT_TRUE(wellformed_lines(m));
  EXPECT_LT(m.size(), 3 * kMaxDiagnosticBytes + 4096);
  EXPECT_TRUE(contains(m, "[...truncated]"));
}

TEST(HostileInput, SingleHugeWordIsHardSplit) {
  DsnInput in = base_input();
  in.recipients[0].diagnostic = "550 " + std::string(3000, 'q');
  in.recipients[0].final_recipient = std::string(1200, 'a') + "@example.net";
  const std::string m = build_ok(in);
  ASSERT_TRUE(wellformed_lines(m));
}

TEST(HostileInput, HostNamesAndAddressesCannotBreakLines) {
  DsnInput in = base_input();
  in.recipients[0].remote_mta = "mx.example.net\r\nX-Injected: 1";
  in.recipients[0].final_recipient = "a@b\r\nX-Injected: 2";
  in.original_sender = "s@x\r\nX-Injected: 3";
  in.recipients[0].original_recipient_xtext = "rfc822\r\nX-Injected: 4;a@b";
  const std::string m = build_ok(in);
  ASSERT_TRUE(wellformed_lines(m));
  expect_no_injected_fields(m);
  EXPECT_TRUE(contains(m, "Remote-MTA: dns; mx.example.netX-Injected:1\r\n"));
  EXPECT_FALSE(contains(m, "Original-Recipient"));  // addr-type with spaces: dropped
}

TEST(HostileInput, HostileOriginalMessageCannotEndTheReportEarly) {
  DsnInput in = base_input();
  in.ret = Ret::Full;
  std::string msg(fixture::kOriginal);
  msg += fixture::bytes("evil\0bytes\r\n");
  msg += "--" + fixture::boundary_of(build_ok(in)) + "--\r\n.\r\n";
  in.original_message = msg;
  const std::string m = build_ok(in);
  ASSERT_TRUE(wellformed_lines(m));
  EXPECT_EQ(parts_of(m).size(), 3u);
}

}  // namespace
}  // namespace salvo::dsn
