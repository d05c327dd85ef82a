// SPDX-License-Identifier: Apache-2.0
// The builder's private text helpers: dates, sanitising, folding, xtext for fields.
#include <string>

#include <gtest/gtest.h>

#include "dsn/text.h"

namespace salvo::dsn::detail {
namespace {

TEST(FormatDate, KnownInstants) {
  EXPECT_EQ(format_date(0), "Thu, 1 Jan 1970 00:00:00 +0000");
  EXPECT_EQ(format_date(951782400), "Tue, 29 Feb 2000 00:00:00 +0000");
  EXPECT_EQ(format_date(1700000000), "Tue, 14 Nov 2023 22:13:20 +0000");
  EXPECT_EQ(format_date(1795387127), "Sun, 22 Nov 2026 22:38:47 +0000");
  EXPECT_EQ(format_date(-86401), "Tue, 30 Dec 1969 23:59:59 +0000");
}

TEST(SanitizeLine, ControlsBecomeSingleSpaces) {
  EXPECT_EQ(sanitize_line(std::string("  a\r\n\tb\0c\x7f  ", 13), false), "a b c");
  EXPECT_EQ(sanitize_line("caf\xc3\xa9", false), "caf??");
  EXPECT_EQ(sanitize_line("caf\xc3\xa9", true), "caf\xc3\xa9");
  EXPECT_EQ(sanitize_line("bad \xc3", true), "bad ?");  // invalid UTF-8: masked
}

TEST(AppendField, ShortValueOnOneLine) {
  std::string out;
  append_field(out, "Status", "5.1.1");
  EXPECT_EQ(out, "Status: 5.1.1\r\n");
}

TEST(AppendField, FoldsAtSpacesAndUnfoldsToTheSameText) {
  std::string value;
  for (int i = 0; i < 50; ++i) value += "word" + std::to_string(i) + " ";
  value.pop_back();
  std::string out;
  append_field(out, "Diagnostic-Code", value);
  std::size_t start = 0;
  while (start < out.size()) {
    const auto end = out.find("\r\n", start);
    ASSERT_NE(end, std::string::npos);
    EXPECT_LE(end - start, kSoftLine);
    start = end + 2;
  }
  // RFC 5322 §2.2.3 unfolding removes the CRLFs only.
  std::string unfolded;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out.compare(i, 2, "\r\n") == 0 && i + 2 < out.size()) {
      ++i;
      continue;
    }
    unfolded += out[i];
  }
  EXPECT_EQ(unfolded, "Diagnostic-Code: " + value + "\r\n");
}

TEST(AppendField, HugeWordIsSplitUnder998) {
  std::string out;
  append_field(out, "X", std::string(5000, 'a'));
  std::size_t start = 0;
  while (start < out.size()) {
    const auto end = out.find("\r\n", start);
    EXPECT_LE(end - start, kHardLine);
    start = end + 2;
  }
}

TEST(AppendWrapped, IndentsContinuationLines) {
  std::string out;
  append_wrapped(out, "aaa bbb ccc ddd", 2, 4, 10);
  EXPECT_EQ(out, "  aaa bbb\r\n    ccc\r\n    ddd\r\n");
  out.clear();
  append_wrapped(out, std::string(25, 'x'), 0, 2, 10);
  EXPECT_EQ(out, "xxxxxxxxxx\r\n  xxxxxxxx\r\n  xxxxxxx\r\n");
}

TEST(XtextForField, DecodesSafeValuesOnly) {
  EXPECT_EQ(xtext_for_field("a+2Bb", false), "a+b");
  EXPECT_EQ(xtext_for_field("a+0Db", false), "a+0Db");     // CR: keep xtext
  EXPECT_EQ(xtext_for_field("a+C3+A9", false), "a+C3+A9");  // 8-bit without SMTPUTF8
  EXPECT_EQ(xtext_for_field("a+C3+A9", true), "a\xc3\xa9");
  EXPECT_EQ(xtext_for_field("bad+zz", false), "bad+zz");  // undecodable: as given
}

TEST(Lines, MaxLineLengthAndMessageCopy) {
  EXPECT_EQ(max_line_length("ab\r\nabcd\r\nx"), 4u);
  EXPECT_EQ(max_line_length(""), 0u);
  std::string out;
  append_message_text(out, "a\nb\rc\r\nd");
  EXPECT_EQ(out, "a\r\nb\r\nc\r\nd\r\n");
  out.clear();
  append_message_text(out, std::string(1000, 'h') + "\r\n");
  EXPECT_EQ(out, std::string(998, 'h') + "\r\n hh\r\n");
}

TEST(Hosts, Validation) {
  EXPECT_TRUE(is_host_name("mx1.example.net"));
  EXPECT_FALSE(is_host_name(""));
  EXPECT_FALSE(is_host_name("a b"));
  EXPECT_EQ(sanitize_host("[192.0.2.1]"), "[192.0.2.1]");
  EXPECT_EQ(sanitize_host("mx\r\n;x"), "mxx");
}

}  // namespace
}  // namespace salvo::dsn::detail
