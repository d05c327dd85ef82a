// SPDX-License-Identifier: Apache-2.0
// Shared fixtures for the dsn unit tests: a typical input, and small readers of the built
// message (line checks, MIME part split) that do not reuse the builder's own code.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include <salvo/dsn/dsn.h>

namespace salvo::dsn::fixture {

inline constexpr std::string_view kOriginal =
    "From: Sender <sender@example.org>\r\n"
    "To: nobody@example.net\r\n"
    "Subject: Hello there\r\n"
    "Message-ID: <m1@example.org>\r\n"
    "\r\n"
    "Body line 1\r\n"
    "Body line 2\r\n";

inline constexpr std::int64_t kArrival = 1795387127;  // Sun, 22 Nov 2026 22:38:47 +0000

inline RecipientReport failed_recipient() {
  RecipientReport r;
  r.final_recipient = "nobody@example.net";
  r.original_recipient_xtext = "rfc822;Nobody+2Bx@example.net";
  r.action = Action::Failed;
  r.status = "5.1.1";
  r.remote_mta = "mx.example.net";
  r.diagnostic = "550 5.1.1 <nobody@example.net>: No such user";
  r.last_attempt_unix = kArrival + 60;
  return r;
}

inline DsnInput base_input() {
  DsnInput in;
  in.reporting_mta = "mx1.salvo.test";
  in.original_sender = "sender@example.org";
  in.envid_xtext = "batch+2B42";  // "batch+42"
  in.arrival_unix = kArrival;
  in.now_unix = kArrival + 3600;
  in.message_id_domain = "salvo.test";
  in.unique = 0x1234;
  in.ret = Ret::Headers;
  in.original_message = kOriginal;
  in.recipients.push_back(failed_recipient());
  return in;
}

inline std::string build_ok(const DsnInput& in) {
  auto r = build_dsn(in);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
  return r ? *r : std::string();
}

// Every line ends in CRLF, no bare CR or LF, none longer than 998 octets, no NUL.
inline ::testing::AssertionResult wellformed_lines(std::string_view m) {
  if (m.empty() || !m.ends_with("\r\n")) return ::testing::AssertionFailure() << "no final CRLF";
  std::size_t line = 0, lineno = 1;
  for (std::size_t i = 0; i < m.size(); ++i) {
    const char c = m[i];
    if (c == '\0') return ::testing::AssertionFailure() << "NUL on line " << lineno;
    if (c == '\r') {
      if (i + 1 >= m.size() || m[i + 1] != '\n') {
        return ::testing::AssertionFailure() << "bare CR on line " << lineno;
      }
      if (line > 998) {
        return ::testing::AssertionFailure() << "line " << lineno << " has " << line << " octets";
      }
      line = 0;
      ++lineno;
      ++i;
      continue;
    }
    if (c == '\n') return ::testing::AssertionFailure() << "bare LF on line " << lineno;
    ++line;
  }
  return ::testing::AssertionSuccess();
}

// The top-level header section (up to the first empty line).
inline std::string_view header_section(std::string_view m) {
  const auto end = m.find("\r\n\r\n");
  return end == std::string_view::npos ? m : m.substr(0, end + 2);
}

// Value of the boundary= parameter of the top-level Content-Type.
inline std::string boundary_of(std::string_view m) {
  const std::string_view h = header_section(m);
  const auto at = h.find("boundary=\"");
  if (at == std::string_view::npos) return {};
  const auto start = at + 10;
  return std::string(h.substr(start, h.find('"', start) - start));
}

// Body parts between the boundaries (each with its own header section).
inline std::vector<std::string> parts_of(std::string_view m) {
  const std::string delim = "\r\n--" + boundary_of(m);
  std::vector<std::string> parts;
  std::size_t at = m.find(delim);
  while (at != std::string_view::npos) {
    std::size_t start = at + delim.size();
    if (m.substr(start, 2) == "--") break;  // close delimiter
    start += 2;                             // CRLF after the delimiter
    const std::size_t next = m.find(delim, start);
    if (next == std::string_view::npos) break;
    parts.emplace_back(m.substr(start, next - start));
    at = next;
  }
  return parts;
}

// A string literal with embedded NULs, whole.
template <std::size_t N>
std::string bytes(const char (&s)[N]) {
  return std::string(s, N - 1);
}

// RFC 5322 §2.2.3 unfolding: a CRLF followed by white space is removed.
inline std::string unfold(std::string_view m) {
  std::string out;
  for (std::size_t i = 0; i < m.size(); ++i) {
    if (m.substr(i, 2) == "\r\n" && i + 2 < m.size() && (m[i + 2] == ' ' || m[i + 2] == '\t')) {
      ++i;
      continue;
    }
    out += m[i];
  }
  return out;
}

inline bool contains(std::string_view hay, std::string_view needle) {
  return hay.find(needle) != std::string_view::npos;
}

}  // namespace salvo::dsn::fixture
