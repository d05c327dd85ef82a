// SPDX-License-Identifier: Apache-2.0
// MTA-STS (RFC 8461) records, policies and MX patterns: what is accepted, and that bad
// input of every kind is a one-line error, never a crash.
#include "outbound/mta_sts.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace salvo::outbound {
namespace {

std::expected<std::string, std::string> record(std::vector<std::string> txt) {
  return parse_sts_record(txt);
}

TEST(MtaStsRecord, TheIdOfTheOneStsRecord) {
  EXPECT_EQ(record({"v=STSv1; id=20160831085700Z;"}).value(), "20160831085700Z");
  EXPECT_EQ(record({"v=STSv1;id=abc"}).value(), "abc");
  EXPECT_EQ(record({"v=STSv1 ; id=abc ; ext=whatever;"}).value(), "abc");
  // Other TXT records at the name are ignored (§3.1).
  EXPECT_EQ(record({"v=spf1 -all", "v=STSv1; id=1", "hello"}).value(), "1");
}

TEST(MtaStsRecord, BadOrAmbiguousRecordsMeanNoPolicy) {
  EXPECT_EQ(record({}).error(), "no v=STSv1 TXT record");
  EXPECT_EQ(record({"v=STSv10; id=1"}).error(), "no v=STSv1 TXT record");
  EXPECT_EQ(record({"v=STSv1; id=1", "v=STSv1; id=2"}).error(),
            "more than one v=STSv1 TXT record");
  EXPECT_EQ(record({"v=STSv1;"}).error(), "no id");
  EXPECT_EQ(record({"v=STSv1; id="}).error(), "bad id ''");
  EXPECT_EQ(record({"v=STSv1; id=has space"}).error(), "bad id 'has space'");
  EXPECT_EQ(record({"v=STSv1; id=" + std::string(33, 'a')}).error().substr(0, 6), "bad id");
  EXPECT_EQ(record({"v=STSv1; id=1; id=2"}).error(), "more than one id");
  EXPECT_EQ(record({"v=STSv1; junk"}).error(), "bad field 'junk'");
  EXPECT_FALSE(record({std::string("v=STSv1; id=\0", 13)}).has_value());
}

constexpr char kPolicy[] =
    "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\n"
    "mx: backupmx.example.com.\r\nmax_age: 604800\r\n";

TEST(MtaStsPolicy, ParsesTheRfcExample) {
  auto p = parse_sts_policy(kPolicy);
  ASSERT_TRUE(p) << p.error();
  EXPECT_EQ(p->mode, StsMode::Enforce);
  EXPECT_EQ(p->max_age, 604800u);
  EXPECT_EQ(p->mx, (std::vector<std::string>{"mail.example.com", "*.example.net",
                                             "backupmx.example.com"}));
}

TEST(MtaStsPolicy, LfLinesUnknownKeysAndModes) {
  auto p = parse_sts_policy("version: STSv1\nmode: testing\nmx: MX.A.test\nfoo: bar\n"
                            "max_age: 86400");
  ASSERT_TRUE(p) << p.error();
  EXPECT_EQ(p->mode, StsMode::Testing);
  EXPECT_EQ(p->mx, std::vector<std::string>{"mx.a.test"});
  auto none = parse_sts_policy("version: STSv1\nmode: none\nmax_age: 10\n");
  ASSERT_TRUE(none) << none.error();
  EXPECT_EQ(none->mode, StsMode::None);
  // max_age beyond a year is capped at a year.
  auto capped = parse_sts_policy("version: STSv1\nmode: none\nmax_age: 9999999999\n");
  ASSERT_TRUE(capped) << capped.error();
  EXPECT_EQ(capped->max_age, kMaxPolicyAge);
}

TEST(MtaStsPolicy, BadPoliciesAreClearErrors) {
  const std::string ok_tail = "mode: enforce\nmx: mx.a.test\nmax_age: 60\n";
  EXPECT_EQ(parse_sts_policy("").error(), "no version: STSv1");
  EXPECT_EQ(parse_sts_policy("version: STSv2\n" + ok_tail).error(), "unknown version 'STSv2'");
  EXPECT_EQ(parse_sts_policy("version: STSv1\nmode: enforce\nmax_age: 60\n").error(), "no mx");
  EXPECT_EQ(parse_sts_policy("version: STSv1\nmx: a.test\nmax_age: 60\n").error(), "no mode");
  EXPECT_EQ(parse_sts_policy("version: STSv1\nmode: enforce\nmx: a.test\n").error(),
            "no max_age");
  EXPECT_EQ(parse_sts_policy("version: STSv1\nmode: strict\n").error(), "unknown mode 'strict'");
  EXPECT_EQ(parse_sts_policy("version: STSv1\nmode: none\nmax_age: -1\n").error(),
            "bad max_age '-1'");
  EXPECT_EQ(parse_sts_policy("version: STSv1\nmode: none\nmax_age: 12x\n").error(),
            "bad max_age '12x'");
  EXPECT_EQ(parse_sts_policy("version: STSv1\nmode: enforce\nmx: a..test\nmax_age: 1\n").error(),
            "bad mx 'a..test'");
  EXPECT_EQ(parse_sts_policy("version: STSv1\nmode: enforce\nmx: *.\nmax_age: 1\n").error(),
            "bad mx '*.'");
  EXPECT_EQ(parse_sts_policy("version: STSv1\nmode: enforce\nmx: a.*.test\nmax_age: 1\n").error(),
            "bad mx 'a.*.test'");
  EXPECT_EQ(parse_sts_policy("version: STSv1\nno colon here\n").error(),
            "line 2: not 'key: value'");
  EXPECT_EQ(parse_sts_policy(std::string(kMaxPolicyBytes + 1, 'a')).error(),
            "policy larger than 64 KiB");
}

TEST(MtaStsPolicy, HostileBytesNeverCrash) {
  // Every byte value at every position of a valid policy: parsed or refused, nothing else.
  const std::string base = kPolicy;
  int refused = 0;
  for (std::size_t i = 0; i < base.size(); ++i) {
    for (int b = 0; b < 256; b += 7) {
      std::string s = base;
      s[i] = static_cast<char>(b);
      auto p = parse_sts_policy(s);
      if (!p) {
        ++refused;
        EXPECT_FALSE(p.error().empty());
      }
    }
    auto cut = parse_sts_policy(base.substr(0, i));
    if (!cut) {
      EXPECT_FALSE(cut.error().empty());
    }
  }
  EXPECT_GT(refused, 0);
}

TEST(MtaStsMx, ExactAndWildcardPatterns) {
  EXPECT_TRUE(mx_pattern_matches("mail.example.com", "mail.example.com"));
  EXPECT_TRUE(mx_pattern_matches("mail.example.com", "MAIL.Example.COM."));
  EXPECT_FALSE(mx_pattern_matches("mail.example.com", "mail2.example.com"));
  EXPECT_FALSE(mx_pattern_matches("mail.example.com", "example.com"));
  // §4.1: "*" is one leftmost label.
  EXPECT_TRUE(mx_pattern_matches("*.example.net", "mx1.example.net"));
  EXPECT_TRUE(mx_pattern_matches("*.example.net", "MX1.EXAMPLE.NET."));
  EXPECT_FALSE(mx_pattern_matches("*.example.net", "example.net"));
  EXPECT_FALSE(mx_pattern_matches("*.example.net", "a.b.example.net"));
  EXPECT_FALSE(mx_pattern_matches("*.example.net", ".example.net"));
  EXPECT_FALSE(mx_pattern_matches("*.example.net", "mx1.badexample.net"));
  EXPECT_FALSE(mx_pattern_matches("*.example.net", ""));
  EXPECT_FALSE(mx_pattern_matches("*.example.net", "."));
  auto p = parse_sts_policy(kPolicy);
  ASSERT_TRUE(p);
  EXPECT_TRUE(mx_allowed(*p, "backupmx.example.com"));
  EXPECT_TRUE(mx_allowed(*p, "smtp.example.net"));
  EXPECT_FALSE(mx_allowed(*p, "evil.example.org"));
}

}  // namespace
}  // namespace salvo::outbound
