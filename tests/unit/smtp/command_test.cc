// SPDX-License-Identifier: Apache-2.0
// parse_command, parse_path, xtext and UTF-8 checks.
#include <salvo/smtp/address.h>
#include <salvo/smtp/command.h>
#include <salvo/smtp/errc.h>

#include <gtest/gtest.h>

namespace salvo::smtp {
namespace {

struct Parsed {
  bool ok;
  Command cmd;
  CommandError err;
};

Parsed parse(std::string_view line, CommandOptions opts = {}) {
  Parsed p;
  p.ok = parse_command(line, opts, &p.cmd, &p.err);
  return p;
}

TEST(CommandParser, VerbsCaseInsensitive) {
  EXPECT_EQ(parse("ehlo x").cmd.verb, Verb::Ehlo);
  EXPECT_EQ(parse("EhLo x").cmd.verb, Verb::Ehlo);
  EXPECT_EQ(parse("QUIT").cmd.verb, Verb::Quit);
  EXPECT_EQ(parse("starttls").cmd.verb, Verb::StartTls);
  EXPECT_EQ(parse("NOOP anything").cmd.verb, Verb::Noop);
  auto p = parse("QUITX");
  EXPECT_FALSE(p.ok);
  EXPECT_EQ(p.err.code, 500);
  EXPECT_EQ(parse("").err.code, 500);
  EXPECT_EQ(parse("QUIT now").err.code, 501);
  EXPECT_EQ(parse("STARTTLS x").err.code, 501);  // reliability B7
  EXPECT_EQ(parse("DATA x").err.code, 501);
}

TEST(CommandParser, MailBasics) {
  auto p = parse("MAIL FROM:<user@example.com> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=abc+2Bd");
  ASSERT_TRUE(p.ok) << p.err.text;
  EXPECT_EQ(p.cmd.path.local_part, "user");
  EXPECT_EQ(p.cmd.path.domain, "example.com");
  EXPECT_TRUE(p.cmd.mail.has_size);
  EXPECT_EQ(p.cmd.mail.size, 1000u);
  EXPECT_EQ(p.cmd.mail.body, BodyType::EightBitMime);
  EXPECT_EQ(p.cmd.mail.ret, DsnRet::Hdrs);
  EXPECT_EQ(p.cmd.mail.envid, "abc+2Bd");
  EXPECT_TRUE(parse("MAIL FROM:<>").ok);
  EXPECT_TRUE(parse("mail from:<a@b>").ok);
  EXPECT_FALSE(parse("MAIL FROM:a@b").ok);
  EXPECT_FALSE(parse("MAIL FROM:<a@b").ok);
  EXPECT_FALSE(parse("MAIL FROM:<a@b>x").ok);
  EXPECT_FALSE(parse("MAIL TO:<a@b>").ok);
  EXPECT_FALSE(parse("RCPT TO:<>").ok);
}

TEST(CommandParser, ParamErrors) {
  EXPECT_EQ(parse("MAIL FROM:<a@b> FOO=1").err.code, 555);
  EXPECT_EQ(parse("MAIL FROM:<a@b> NOTIFY=NEVER").err.code, 555);  // RCPT-only
  EXPECT_EQ(parse("RCPT TO:<a@b> SIZE=1").err.code, 555);
  EXPECT_EQ(parse("MAIL FROM:<a@b> SIZE=1 size=2").err.code, 501);
  EXPECT_EQ(parse("MAIL FROM:<a@b> SMTPUTF8=yes").err.code, 501);
  EXPECT_EQ(parse("MAIL FROM:<a@b> BODY=BINARYMIME").err.code, 501);
  EXPECT_EQ(parse("MAIL FROM:<a@b> RET=ALL").err.code, 501);
  EXPECT_EQ(parse("MAIL FROM:<a@b> SIZE=").err.code, 501);
  EXPECT_EQ(parse("MAIL FROM:<a@b> =x").err.code, 501);
  CommandOptions limited;
  limited.max_message_size = 100;
  EXPECT_EQ(parse("MAIL FROM:<a@b> SIZE=101", limited).err.code, 552);
  EXPECT_TRUE(parse("MAIL FROM:<a@b> SIZE=100", limited).ok);
  CommandOptions none;
  none.extensions = ExtensionSet();
  EXPECT_EQ(parse("MAIL FROM:<a@b> SIZE=1", none).err.code, 555);
  CommandOptions auth;
  auth.extensions.add(Extension::Auth);
  EXPECT_TRUE(parse("MAIL FROM:<a@b> AUTH=<>", auth).ok);
  EXPECT_TRUE(parse("MAIL FROM:<a@b> AUTH=u+40x", auth).ok);
  EXPECT_EQ(parse("MAIL FROM:<a@b> AUTH=u+4", auth).err.code, 501);
}

TEST(CommandParser, RcptDsn) {
  auto p = parse("RCPT TO:<a@b> NOTIFY=success,DELAY ORCPT=rfc822;a+40b");
  ASSERT_TRUE(p.ok);
  EXPECT_TRUE(p.cmd.rcpt.notify.has(Notify::Success));
  EXPECT_TRUE(p.cmd.rcpt.notify.has(Notify::Delay));
  EXPECT_FALSE(p.cmd.rcpt.notify.has(Notify::Failure));
  EXPECT_EQ(p.cmd.rcpt.notify.to_string(), "SUCCESS,DELAY");
  EXPECT_EQ(p.cmd.rcpt.orcpt, "rfc822;a+40b");
  EXPECT_EQ(parse("RCPT TO:<a@b> NOTIFY=").err.code, 501);
  EXPECT_EQ(parse("RCPT TO:<a@b> NOTIFY=SUCCESS,SUCCESS").err.code, 501);
  EXPECT_EQ(parse("RCPT TO:<a@b> NOTIFY=FAILURE,NEVER").err.code, 501);
  EXPECT_EQ(parse("RCPT TO:<a@b> ORCPT=rfc822").err.code, 501);
  EXPECT_EQ(parse("RCPT TO:<a@b> ORCPT=;x").err.code, 501);
  EXPECT_EQ(parse("RCPT TO:<a@b> ORCPT=rfc822;a+zz").err.code, 501);
  EXPECT_TRUE(parse("RCPT TO:<Postmaster>").ok);
  EXPECT_TRUE(parse("RCPT TO:<postmaster>").ok);
  EXPECT_FALSE(parse("MAIL FROM:<postmaster>").ok);
}

TEST(CommandParser, Bdat) {
  auto p = parse("BDAT 100 LAST");
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.cmd.bdat_size, 100u);
  EXPECT_TRUE(p.cmd.bdat_last);
  p = parse("bdat 0");
  ASSERT_TRUE(p.ok);
  EXPECT_FALSE(p.cmd.bdat_last);
  p = parse("BDAT 99999999999999999999");
  EXPECT_EQ(p.err.code, 552);
  EXPECT_TRUE(p.err.fatal);
  p = parse("BDAT -1");
  EXPECT_EQ(p.err.code, 501);
  EXPECT_TRUE(p.err.fatal);
  EXPECT_EQ(parse("BDAT 10 FIRST").err.code, 501);
  EXPECT_EQ(parse("BDAT").err.code, 501);
}

TEST(CommandParser, NulAndBareEol) {
  EXPECT_EQ(parse(std::string_view("NOOP\0x", 6)).err.code, 501);
  EXPECT_EQ(parse("NOOP\nx").err.code, 500);
  auto p = parse("\x80\x81");
  EXPECT_EQ(p.err.code, 500);
  EXPECT_EQ(p.err.status, (EnhancedStatus{5, 5, 2}));
}

TEST(Address, PathGrammar) {
  Path p;
  std::size_t used = 0;
  auto ok = [&](std::string_view s, PathKind k = PathKind::Forward) {
    return parse_path(s, k, AllowUtf8::kNo, &p, &used) == PathError::None;
  };
  EXPECT_TRUE(ok("<a@b>"));
  EXPECT_TRUE(ok("<a.b+c@d-e.f>"));
  EXPECT_TRUE(ok("<\"a b\"@c>"));
  EXPECT_TRUE(ok("<\"\"@c>"));  // an empty quoted string is grammatical
  EXPECT_TRUE(ok("<a@[1.2.3.4]>"));
  EXPECT_TRUE(ok("<a@[IPv6:::1]>"));
  EXPECT_TRUE(ok("<a@[IPv6:2001:db8::1]>"));
  EXPECT_TRUE(ok("<a@[IPv6:1:2:3:4:5:6:7:8]>"));
  EXPECT_TRUE(ok("<a@[IPv6:::ffff:1.2.3.4]>"));
  EXPECT_FALSE(ok("<a@[IPv6:1:2:3:4:5:6:7:8:9]>"));
  EXPECT_FALSE(ok("<a@[IPv6:1::2::3]>"));
  EXPECT_FALSE(ok("<a@[256.1.1.1]>"));
  EXPECT_FALSE(ok("<a@[1.2.3]>"));
  EXPECT_TRUE(ok("<a@[x-tag:stuff]>"));
  EXPECT_TRUE(ok("<@r1,@r2.x:a@b>"));
  EXPECT_EQ(p.mailbox(), "a@b");
  EXPECT_FALSE(ok("<@r1:@r2:a@b>"));
  EXPECT_FALSE(ok("<.a@b>"));
  EXPECT_FALSE(ok("<a.@b>"));
  EXPECT_FALSE(ok("<a..b@c>"));
  EXPECT_FALSE(ok("<a@-b>"));
  EXPECT_FALSE(ok("<a@b->"));
  EXPECT_FALSE(ok("<a@b.>"));
  EXPECT_FALSE(ok("<a@.b>"));
  EXPECT_FALSE(ok("<a b@c>"));
  EXPECT_FALSE(ok("<a@b c>"));
  EXPECT_FALSE(ok("<>"));
  EXPECT_TRUE(ok("<>", PathKind::Reverse));
  EXPECT_FALSE(ok("<a@" + std::string(64, 'b') + ">"));  // label > 63
  EXPECT_EQ(parse_path("<\xC3\xA9@b>", PathKind::Forward, AllowUtf8::kNo, &p, &used),
            PathError::NonAscii);
  EXPECT_EQ(parse_path("<\xC3\xA9@b>", PathKind::Forward, AllowUtf8::kYes, &p, &used),
            PathError::None);
  EXPECT_TRUE(p.non_ascii);
  EXPECT_EQ(parse_path("<\xC0\x80@b>", PathKind::Forward, AllowUtf8::kYes, &p, &used),
            PathError::BadUtf8);
}

TEST(Address, Limits) {
  Path p;
  std::size_t used = 0;
  std::string d;
  while (d.size() < 250) d += "abcdefghi.";
  d += "com";  // > 255 with the dot labels
  EXPECT_EQ(parse_path("<a@" + d + ">", PathKind::Forward, AllowUtf8::kNo, &p, &used),
            PathError::TooLong);
  EXPECT_EQ(parse_path("<" + std::string(65, 'a') + "@b>", PathKind::Forward, AllowUtf8::kNo, &p,
                       &used),
            PathError::TooLong);
  EXPECT_EQ(parse_path("<" + std::string(64, 'a') + "@b>", PathKind::Forward, AllowUtf8::kNo, &p,
                       &used),
            PathError::None);
}

TEST(Address, ParseAddressResult) {
  auto r = parse_address("x@y.z", AllowUtf8::kNo);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->mailbox(), "x@y.z");
  auto bad = parse_address("x@", AllowUtf8::kNo);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error(), make_error_code(errc::bad_address));
  EXPECT_EQ(parse_address("\xC3\xA9@x", AllowUtf8::kNo).error(), make_error_code(errc::non_ascii_address));
}

TEST(Utf8, Strict) {
  EXPECT_TRUE(valid_utf8("abc"));
  EXPECT_TRUE(valid_utf8("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"));
  EXPECT_FALSE(valid_utf8("\xC0\x80"));          // overlong
  EXPECT_FALSE(valid_utf8("\xE0\x80\x80"));      // overlong
  EXPECT_FALSE(valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(valid_utf8("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(valid_utf8("\xE2\x82"));          // truncated
  EXPECT_FALSE(valid_utf8("\x80"));
}

TEST(Xtext, DecodeEncode) {
  std::string out;
  EXPECT_TRUE(xtext_decode("a+2Bb+3D", &out));
  EXPECT_EQ(out, "a+b=");
  EXPECT_FALSE(xtext_decode("+ZZ", &out));
  EXPECT_FALSE(xtext_decode("+", &out));
  EXPECT_FALSE(xtext_decode("+2", &out));
  EXPECT_FALSE(xtext_decode("+2b", &out));  // lower-case hex is not xtext
  EXPECT_FALSE(xtext_decode("a=b", &out));
  EXPECT_FALSE(xtext_decode("a b", &out));
  xtext_encode("a+b= c", &out);
  EXPECT_EQ(out, "a+2Bb+3D+20c");
}

}  // namespace
}  // namespace salvo::smtp
