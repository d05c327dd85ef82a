// SPDX-License-Identifier: Apache-2.0
// Private text helpers of the DSN builder: RFC 5322 dates, sanitising untrusted text (remote
// replies, decoded xtext) and folding/wrapping so no output line exceeds 998 octets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace salvo::dsn::detail {

inline constexpr std::size_t kSoftLine = 78;   // RFC 5322 §2.1.1 SHOULD
inline constexpr std::size_t kHardLine = 998;  // RFC 5322 §2.1.1 MUST

// "Sun, 22 Nov 2026 22:38:47 +0000" (RFC 5322 §3.3), always UTC.
std::string format_date(std::int64_t unix_seconds);

// Untrusted text to one safe line: every control character (CR, LF, NUL, TAB, DEL...) becomes
// a space, runs of spaces collapse, ends are trimmed. Octets >= 0x80 are kept only when
// allow_utf8 and the whole input is valid UTF-8; otherwise each becomes '?'.
std::string sanitize_line(std::string_view in, bool allow_utf8);

// Appends "Name: value" CRLF, folded (CRLF SP) at spaces to stay near 78 octets and hard-split
// so no line exceeds 998. `value` must come from sanitize_line (no CR/LF).
void append_field(std::string& out, std::string_view name, std::string_view value);

// Appends `text` (one sanitised line) word-wrapped at `width`, continuation lines indented
// by `indent` spaces, each line ending CRLF; over-long words are hard-split.
void append_wrapped(std::string& out, std::string_view text, std::size_t first_indent,
                    std::size_t indent, std::size_t width);

// Decodes an xtext value for a DSN field (RFC 3464 §2.2.1/§2.3.1 carry the decoded form).
// If it does not decode, or decodes to something unsafe for a header (control characters,
// or 8-bit without allow_utf8), the sanitised xtext itself is returned: still printable and
// still what the sender gave.
std::string xtext_for_field(std::string_view xtext, bool allow_utf8);

// Host name or address literal characters only (letters, digits, '-', '.', '_', and for
// literals '[', ']', ':'); anything else dropped.
std::string sanitize_host(std::string_view in);
bool is_host_name(std::string_view in) noexcept;

// Longest line (without its CRLF / LF) in `text`.
std::size_t max_line_length(std::string_view text) noexcept;
bool has_8bit(std::string_view text) noexcept;

// Copies message text, turning bare CR or LF into CRLF and NUL into a space; lines longer
// than 998 octets are hard-folded with CRLF SP (only reached for headers: a body with such
// lines is not returned in full). Ensures the copy ends with CRLF unless empty.
void append_message_text(std::string& out, std::string_view text);

}  // namespace salvo::dsn::detail
