// SPDX-License-Identifier: Apache-2.0
// Mailbox addresses per RFC 5321 §4.1.2 (and RFC 6531 for UTF-8): parsing of
// "<[@route,...:]local@domain>" paths, the RFC 5321 §4.5.3.1 length limits, xtext
// (RFC 3461 §4) and strict UTF-8 (RFC 3629) checks. Pure functions; no allocation beyond
// the output strings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <salvo/base/strong_id.h>
#include <salvo/base/result.h>

namespace salvo::smtp {

inline constexpr std::size_t kMaxLocalPart = 64;
inline constexpr std::size_t kMaxDomain = 255;
inline constexpr std::size_t kMaxPath = 256;

using AllowUtf8 = BoolClass<struct AllowUtf8Tag>;

// A parsed mailbox. local_part keeps its wire form (quotes and backslashes included) so
// that what is stored is exactly what was received; domain is as sent (no case folding).
// The null reverse-path "<>" has both empty. "<Postmaster>" (RCPT only) has an empty
// domain and local_part "Postmaster".
struct Path {
  std::string local_part;
  std::string domain;
  bool non_ascii = false;  // some byte >= 0x80 in local part or domain

  bool is_null() const noexcept { return local_part.empty() && domain.empty(); }
  // "local@domain", "" for the null path, "Postmaster" for the special RCPT form.
  std::string mailbox() const;
  void append_mailbox(std::string& out) const;
  void clear() noexcept {
    local_part.clear();
    domain.clear();
    non_ascii = false;
  }
};

enum class PathKind : std::uint8_t { Reverse, Forward };

enum class PathError : std::uint8_t {
  None,
  Syntax,       // not a valid RFC 5321 path
  TooLong,      // local part > 64, domain > 255, path > 256
  NonAscii,     // UTF-8 present but not allowed (553 5.6.7)
  BadUtf8,      // invalid UTF-8 even though allowed
};

// Parses a path that starts with '<' in `in`; on success *consumed is the length up to and
// including '>'. Source routes are checked and dropped. `<>` only for PathKind::Reverse;
// `<Postmaster>` only for Forward. Non-ASCII is parsed and flagged: the caller decides
// (NonAscii is returned only when allow_utf8 is kNo).
PathError parse_path(std::string_view in, PathKind kind, AllowUtf8 allow_utf8, Path* out,
                     std::size_t* consumed);

// Parses a bare "local@domain" (no angle brackets), as in pickup files' X-Sender lines.
PathError parse_mailbox(std::string_view in, AllowUtf8 allow_utf8, Path* out);

// RFC 3629 strict: no overlong forms, no surrogates, nothing above U+10FFFF.
bool valid_utf8(std::string_view s) noexcept;

// xtext (RFC 3461 §4): printable ASCII 33..126 except '+' and '=', and "+XX" with upper
// case hex. xtext_valid checks; xtext_decode returns false on malformed input.
bool xtext_valid(std::string_view s) noexcept;
bool xtext_decode(std::string_view s, std::string* out);
void xtext_encode(std::string_view s, std::string* out);

// The routing form of a domain: ASCII lower case, without a final dot. Every place that
// names a recipient's domain (accounting lines, destinations, operator verbs) uses it, so
// "User@Example.COM." is "example.com" everywhere.
std::string normalize_domain(std::string_view domain);
// The normalized domain of a mailbox "local@domain"; "" when there is no '@'.
std::string domain_of(std::string_view mailbox);

}  // namespace salvo::smtp

namespace salvo::smtp {
// Result form of parse_mailbox for callers outside the protocol (pickup, HTTP intake).
[[nodiscard]] Result<Path> parse_address(std::string_view mailbox, AllowUtf8 allow_utf8);
}  // namespace salvo::smtp
