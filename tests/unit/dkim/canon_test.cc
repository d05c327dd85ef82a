// SPDX-License-Identifier: Apache-2.0
// Relaxed canonicalization (RFC 6376 §3.4.2, §3.4.4), the header-section scan and base64.
#include "dkim/canon.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "dkim/base64.h"

namespace salvo::dkim::detail {
namespace {

std::string body(std::string_view in) {
  std::string out;
  StringSink sink{out};
  canon_body_relaxed(in, sink);
  return out;
}

std::string header(std::string_view raw, WithCrlf crlf = WithCrlf::Yes) {
  std::string out;
  StringSink sink{out};
  canon_header_relaxed(raw, sink, crlf);
  return out;
}

std::vector<HeaderField> fields_of(std::string_view header_section) {
  std::vector<HeaderField> out;
  EXPECT_TRUE(parse_header_fields(header_section, out).has_value());
  return out;
}

// RFC 6376 §3.4.5, the example, relaxed/relaxed.
TEST(Canon, Rfc6376Example) {
  const std::string_view msg =
      "A: X\r\n"
      "B : Y\t\r\n"
      "\tZ  \r\n"
      "\r\n"
      " C \r\n"
      "D \t E\r\n"
      "\r\n"
      "\r\n";
  const MessageParts parts = split_message(msg);
  const auto fields = fields_of(parts.header);
  ASSERT_EQ(fields.size(), 2u);
  EXPECT_EQ(fields[0].name, "A");
  EXPECT_EQ(fields[1].name, "B");
  EXPECT_EQ(header(fields[0].raw), "a:X\r\n");
  EXPECT_EQ(header(fields[1].raw), "b:Y Z\r\n");
  EXPECT_EQ(body(parts.body), " C\r\nD E\r\n");
}

TEST(Canon, HeaderWhitespace) {
  EXPECT_EQ(header("Subject:   hello    world   \r\n"), "subject:hello world\r\n");
  EXPECT_EQ(header("SUBJECT:\thello\t\tworld\r\n"), "subject:hello world\r\n");
  EXPECT_EQ(header("To: a@example.com,\r\n  b@example.com,\r\n\tc@example.com\r\n"),
            "to:a@example.com, b@example.com, c@example.com\r\n");
  // A value that starts on the next line: the fold and the WSP before the text go.
  EXPECT_EQ(header("Subject:\r\n \tfolded\r\n"), "subject:folded\r\n");
  EXPECT_EQ(header("X-Empty:\r\n"), "x-empty:\r\n");
  EXPECT_EQ(header("X-Empty:   \r\n"), "x-empty:\r\n");
  EXPECT_EQ(header("Name \t: v\r\n"), "name:v\r\n");
  // No CRLF at the end of the input (the signature field itself) and none asked for.
  EXPECT_EQ(header("DKIM-Signature: v=1;\r\n\tb=", WithCrlf::No), "dkim-signature:v=1; b=");
  // 8-bit bytes and a bare LF inside a value are content.
  EXPECT_EQ(header("Subject: caf\xc3\xa9  ol\xe9\r\n"), "subject:caf\xc3\xa9 ol\xe9\r\n");
}

TEST(Canon, BodyWhitespace) {
  EXPECT_EQ(body("a  b\t\tc \t \r\n"), "a b c\r\n");
  EXPECT_EQ(body("  lead\r\n"), " lead\r\n");
  EXPECT_EQ(body("x\r\n \t \r\ny\r\n"), "x\r\n\r\ny\r\n");  // a WSP-only line is empty
  EXPECT_EQ(body("a\rb \r\n"), "a\rb\r\n");                 // bare CR is content
  EXPECT_EQ(body("a\nb \n\r\n"), "a\nb \n\r\n");            // bare LF too (WSP before it stays)
  EXPECT_EQ(body("8bit caf\xc3\xa9\r\n"), "8bit caf\xc3\xa9\r\n");
  EXPECT_EQ(body("a b  c d\te f \r\n"), "a b c d e f\r\n");
  EXPECT_EQ(body("a b c"), "a b c\r\n");
  EXPECT_EQ(body("a b \rc\r\n"), "a b \rc\r\n");
  EXPECT_EQ(body("x \ty z  \r\n  \t\r\n"), "x y z\r\n");
}

// Straight from the RFC text, line by line: the one-pass canonicalizer must agree with it.
std::string reference_body(std::string_view in) {
  std::vector<std::string> lines;
  std::size_t pos = 0;
  for (;;) {
    const std::size_t crlf = in.find("\r\n", pos);
    if (crlf == std::string_view::npos) {
      if (pos < in.size()) lines.emplace_back(in.substr(pos));  // last line without CRLF
      break;
    }
    lines.emplace_back(in.substr(pos, crlf - pos));
    pos = crlf + 2;
  }
  for (std::string& l : lines) {
    while (!l.empty() && is_wsp(l.back())) l.pop_back();  // WSP at line end
    std::string c;
    for (std::size_t i = 0; i < l.size(); ++i) {  // WSP runs to one SP
      if (!is_wsp(l[i])) {
        c += l[i];
      } else if (i == 0 || !is_wsp(l[i - 1])) {
        c += ' ';
      }
    }
    l = c;
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();  // empty lines at end
  std::string out;
  for (const std::string& l : lines) {
    out += l;
    out += "\r\n";
  }
  return out;
}

std::string reference_header(std::string_view raw) {
  const std::size_t colon = raw.find(':');
  std::string name(raw.substr(0, colon));
  while (!name.empty() && is_wsp(name.back())) name.pop_back();
  for (char& ch : name) ch = ascii_lower(ch);
  std::string value;
  const std::string_view v = raw.substr(colon + 1);
  for (std::size_t i = 0; i < v.size(); ++i) {  // unfold
    if (v[i] == '\r' && i + 1 < v.size() && v[i + 1] == '\n') {
      ++i;
      continue;
    }
    value += v[i];
  }
  std::string c;
  for (std::size_t i = 0; i < value.size(); ++i) {  // WSP runs to one SP
    if (is_wsp(value[i])) {
      if (i == 0 || !is_wsp(value[i - 1])) c += ' ';
    } else {
      c += value[i];
    }
  }
  while (!c.empty() && c.front() == ' ') c.erase(0, 1);
  while (!c.empty() && c.back() == ' ') c.pop_back();
  return name + ":" + c + "\r\n";
}

TEST(Canon, AgreesWithReferenceOnRandomInput) {
  std::mt19937 rng(20240607);  // seeded: deterministic
  const char alphabet[] = {'a', 'b', ' ', ' ', '\t', '\r', '\n', '\r', '\n', '\xe9'};
  for (int round = 0; round < 20000; ++round) {
    std::string in;
    const std::size_t len = rng() % 40;
    for (std::size_t i = 0; i < len; ++i) in += alphabet[rng() % sizeof alphabet];
    ASSERT_EQ(body(in), reference_body(in)) << "body input: " << ::testing::PrintToString(in);
    std::string raw = "X-N";
    raw.append(rng() % 2, ' ');
    raw += ':';
    raw += in;
    ASSERT_EQ(header(raw), reference_header(raw)) << "header: " << ::testing::PrintToString(raw);
  }
}

// Long runs of content with sparse whitespace and line ends: the body scan takes sixteen
// bytes a step, so every special byte must be found at every position of a step, on a
// step's last byte (where the byte after it belongs to the next step) and at the very end.
TEST(Canon, AgreesWithReferenceOnLongRuns) {
  std::mt19937 rng(20261205);  // seeded: deterministic
  const char specials[] = {' ', ' ', '\t', '\r', '\n'};
  for (int round = 0; round < 20000; ++round) {
    std::string in;
    const std::size_t len = rng() % 300;
    const unsigned density = 2 + rng() % 40;  // one special in `density` bytes, on average
    for (std::size_t i = 0; i < len; ++i) {
      if (rng() % density == 0) {
        in += specials[rng() % sizeof specials];
      } else if (rng() % 8 == 0) {
        in += "\r\n";
      } else {
        in += static_cast<char>('a' + rng() % 26);
      }
    }
    ASSERT_EQ(body(in), reference_body(in)) << "body input: " << ::testing::PrintToString(in);
  }
}

TEST(Canon, BodyEnds) {
  EXPECT_EQ(body(""), "");                     // empty body: nothing at all
  EXPECT_EQ(body("\r\n"), "");                 // only empty lines: nothing
  EXPECT_EQ(body("\r\n\r\n \r\n\t\r\n"), "");  // WSP-only lines are empty lines
  EXPECT_EQ(body("text\r\n\r\n\r\n\r\n"), "text\r\n");
  EXPECT_EQ(body("text"), "text\r\n");    // a CRLF is added to a last line lacking it
  EXPECT_EQ(body("text  "), "text\r\n");  // trailing WSP of that line goes too
  EXPECT_EQ(body("a\r\n\r\nb\r\n\r\n"), "a\r\n\r\nb\r\n");  // inner empty lines stay
  // Many pending empty lines (more than the canonicalizer writes at once).
  std::string in = "a\r\n";
  for (int i = 0; i < 50; ++i) in += "\r\n";
  in += "b\r\n";
  std::string want = "a\r\n";
  for (int i = 0; i < 50; ++i) want += "\r\n";
  want += "b\r\n";
  EXPECT_EQ(body(in + "\r\n\r\n"), want);
}

TEST(Canon, SplitMessage) {
  auto p = split_message("From: a\r\n\r\nbody\r\n");
  EXPECT_EQ(p.header, "From: a\r\n");
  EXPECT_EQ(p.body, "body\r\n");
  p = split_message("From: a\r\nTo: b\r\n");  // no empty line: no body
  EXPECT_EQ(p.header, "From: a\r\nTo: b\r\n");
  EXPECT_EQ(p.body, "");
  p = split_message("From: a\r\n\r\n");
  EXPECT_EQ(p.header, "From: a\r\n");
  EXPECT_EQ(p.body, "");
  p = split_message("\r\nbody only\r\n");
  EXPECT_EQ(p.header, "");
  EXPECT_EQ(p.body, "body only\r\n");
  p = split_message("From: a\r\n\r\n\r\nsecond\r\n");  // only the first empty line splits
  EXPECT_EQ(p.body, "\r\nsecond\r\n");
}

TEST(Canon, HeaderFields) {
  const auto f = fields_of(
      "Received: from a\r\n\tby b\r\n"
      "not a field line\r\n"
      " continuation of nothing\r\n"
      "From: x@example.com\r\n"
      ": empty name\r\n"
      "Subject: last, no CRLF");
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[0].name, "Received");
  EXPECT_EQ(f[0].raw, "Received: from a\r\n\tby b\r\n");
  EXPECT_EQ(f[1].name, "From");
  EXPECT_EQ(f[1].raw, "From: x@example.com\r\n");
  EXPECT_EQ(f[2].name, "Subject");
  EXPECT_EQ(f[2].raw, "Subject: last, no CRLF");
  EXPECT_EQ(header(f[2].raw), "subject:last, no CRLF\r\n");
}

TEST(Canon, BareLfInHeaderIsAnError) {
  std::vector<HeaderField> out;
  EXPECT_FALSE(parse_header_fields("From: a\nTo: b\n", out).has_value());
  out.clear();
  EXPECT_FALSE(parse_header_fields("From: a\r\nTo: b\n", out).has_value());
  out.clear();
  EXPECT_FALSE(parse_header_fields("\n", out).has_value());
}

TEST(Canon, IequalsIsAsciiCaseInsensitive) {
  EXPECT_TRUE(iequals("Message-ID", "message-id"));
  EXPECT_FALSE(iequals("from", "from "));
  EXPECT_FALSE(iequals("\xc3", "\xe3"));
}

TEST(Base64, Rfc4648Vectors) {
  const std::pair<std::string_view, std::string_view> cases[] = {{"", ""},
                                                                 {"f", "Zg=="},
                                                                 {"fo", "Zm8="},
                                                                 {"foo", "Zm9v"},
                                                                 {"foob", "Zm9vYg=="},
                                                                 {"fooba", "Zm9vYmE="},
                                                                 {"foobar", "Zm9vYmFy"}};
  for (const auto& [in, want] : cases) {
    std::string out = "x";
    base64_append({reinterpret_cast<const std::uint8_t*>(in.data()), in.size()}, out);
    EXPECT_EQ(out.substr(1), want) << in;
    EXPECT_EQ(base64_size(in.size()), want.size());
  }
  const std::uint8_t high[] = {0xfb, 0xff, 0xbf};
  std::string out;
  base64_append(high, out);
  EXPECT_EQ(out, "+/+/");
}

}  // namespace
}  // namespace salvo::dkim::detail
