// SPDX-License-Identifier: Apache-2.0
// ReplyParser against well-formed and hostile server replies (docs/reliability.md H9;
// CVE-2020-8794).
#include <salvo/smtp/extensions.h>
#include <salvo/smtp/reply.h>

#include <gtest/gtest.h>

#include <string>

namespace salvo::smtp {
namespace {

ReplyParser::Status parse_all(ReplyParser& p, std::string_view in, Reply* r, std::size_t* used) {
  return p.parse(in, used, r);
}

TEST(ReplyParser, SingleLine) {
  ReplyParser p;
  Reply r;
  std::size_t used = 0;
  EXPECT_EQ(parse_all(p, "250 2.1.0 Ok\r\nrest", &r, &used), ReplyParser::Status::Complete);
  EXPECT_EQ(used, 14u);
  EXPECT_EQ(r.code, 250);
  EXPECT_EQ(r.status, (EnhancedStatus{2, 1, 0}));
  EXPECT_EQ(r.text, "Ok");
  EXPECT_EQ(r.to_wire(), "250 2.1.0 Ok\r\n");
}

TEST(ReplyParser, MultiLineAndSplit) {
  const std::string wire = "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 CHUNKING\r\n";
  for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
    ReplyParser p;
    Reply r;
    ByteBuffer in;
    in.append(wire.substr(0, cut));
    auto st = p.parse(in, &r);
    if (st != ReplyParser::Status::Complete) {
      ASSERT_EQ(st, ReplyParser::Status::NeedMore);
      in.append(wire.substr(cut));
      st = p.parse(in, &r);
    }
    ASSERT_EQ(st, ReplyParser::Status::Complete) << cut;
    EXPECT_TRUE(in.empty());
    EXPECT_EQ(r.code, 250);
    EXPECT_EQ(r.text, "mx.example\nPIPELINING\nSIZE 1000\nCHUNKING");
    auto caps = parse_ehlo_reply(r);
    EXPECT_TRUE(caps.extensions.has(Extension::Pipelining));
    EXPECT_TRUE(caps.extensions.has(Extension::Chunking));
    EXPECT_EQ(caps.max_size, 1000u);
  }
}

TEST(ReplyParser, BareCodeAndStatusOnly) {
  ReplyParser p;
  Reply r;
  std::size_t used;
  EXPECT_EQ(parse_all(p, "250\r\n", &r, &used), ReplyParser::Status::Complete);
  EXPECT_EQ(r.code, 250);
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(parse_all(p, "550 5.1.1\r\n", &r, &used), ReplyParser::Status::Complete);
  EXPECT_EQ(r.status, (EnhancedStatus{5, 1, 1}));
  // a status whose class does not match the code is text
  EXPECT_EQ(parse_all(p, "250 5.1.1 x\r\n", &r, &used), ReplyParser::Status::Complete);
  EXPECT_FALSE(r.status.present());
  EXPECT_EQ(r.text, "5.1.1 x");
}

TEST(ReplyParser, H9_HostileInputs) {
  struct Case {
    std::string wire;
    ReplyParser::ErrorKind kind;
  };
  const Case cases[] = {
      {"250-a\r\n550 b\r\n", ReplyParser::ErrorKind::CodeMismatch},
      {"250 a\n", ReplyParser::ErrorKind::BareLineEnding},
      {"25\r\n", ReplyParser::ErrorKind::BadCode},
      {"abc def\r\n", ReplyParser::ErrorKind::BadCode},
      {"650 x\r\n", ReplyParser::ErrorKind::BadCode},
      {"250x\r\n", ReplyParser::ErrorKind::BadCode},
      {"250 a\rb\r\n", ReplyParser::ErrorKind::BareLineEnding},
      {std::string("250 a\0b\r\n", 9), ReplyParser::ErrorKind::NulByte},
      {std::string(1 << 20, 'x'), ReplyParser::ErrorKind::LineTooLong},
  };
  for (const auto& c : cases) {
    ReplyParser p;
    Reply r;
    std::size_t used;
    EXPECT_EQ(parse_all(p, c.wire, &r, &used), ReplyParser::Status::Error) << c.wire.substr(0, 20);
    EXPECT_EQ(p.error(), c.kind) << c.wire.substr(0, 20);
    EXPECT_EQ(parse_all(p, "250 ok\r\n", &r, &used), ReplyParser::Status::Error);  // sticky
  }
}

TEST(ReplyParser, TooManyLines) {
  std::string wire;
  for (int i = 0; i < 10000; ++i) wire += "250-x\r\n";
  ReplyParser p;
  Reply r;
  std::size_t used;
  EXPECT_EQ(parse_all(p, wire, &r, &used), ReplyParser::Status::Error);
  EXPECT_EQ(p.error(), ReplyParser::ErrorKind::TooManyLines);
  EXPECT_LE(r.text.size(), 128u * 2048u);
}

TEST(ReplyParser, LineLimitTolerantButBounded) {
  ReplyParser p;
  Reply r;
  std::size_t used;
  std::string ok = "250 " + std::string(1500, 'a') + "\r\n";
  EXPECT_EQ(parse_all(p, ok, &r, &used), ReplyParser::Status::Complete);
  std::string partial(2047, 'a');
  ReplyParser q;
  EXPECT_EQ(parse_all(q, partial, &r, &used), ReplyParser::Status::NeedMore);
  EXPECT_EQ(used, 0u);
  std::string too_long = "250 " + std::string(2100, 'a') + "\r\n";
  ReplyParser s;
  EXPECT_EQ(parse_all(s, too_long, &r, &used), ReplyParser::Status::Error);
}

TEST(Reply, WireFormatting) {
  Reply r(250, {2, 0, 0}, "first\nsecond");
  EXPECT_EQ(r.to_wire(), "250-2.0.0 first\r\n250 2.0.0 second\r\n");
  EXPECT_EQ(Reply(354, {}, "go").to_wire(), "354 go\r\n");
  EXPECT_EQ(make_reply(550, "5.7.1", "no").to_wire(), "550 5.7.1 no\r\n");
  EXPECT_EQ(r.lines().size(), 2u);
  EXPECT_EQ(parse_enhanced_status("4.4.7"), (EnhancedStatus{4, 4, 7}));
  EXPECT_FALSE(parse_enhanced_status("3.1.1").present());
  EXPECT_FALSE(parse_enhanced_status("5.1.1111").present());
  EXPECT_EQ((EnhancedStatus{5, 3, 4}).to_string(), "5.3.4");
}

TEST(Extensions, EhloParsing) {
  Reply r(250, {}, "mx\nsize 0\nAUTH LOGIN PLAIN\nSTARTTLS\nSMTPUTF8\n8BITMIME\nDSN\nXFOO");
  auto caps = parse_ehlo_reply(r);
  EXPECT_TRUE(caps.extensions.has(Extension::Size));
  EXPECT_EQ(caps.max_size, 0u);
  EXPECT_TRUE(caps.auth.has(AuthMechanism::Plain));
  EXPECT_TRUE(caps.auth.has(AuthMechanism::Login));
  EXPECT_TRUE(caps.extensions.has(Extension::StartTls));
  EXPECT_TRUE(caps.extensions.has(Extension::SmtpUtf8));
  EXPECT_FALSE(caps.extensions.has(Extension::Pipelining));
}

}  // namespace
}  // namespace salvo::smtp
