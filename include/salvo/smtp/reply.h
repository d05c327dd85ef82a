// SPDX-License-Identifier: Apache-2.0
// Reply: an SMTP reply (RFC 5321 §4.2) with its RFC 3463 enhanced status, and ReplyParser,
// the incremental parser the client side runs over bytes from remote servers.
//
// Contract: ReplyParser never trusts its input. Every line must end in CRLF; a line may be
// up to ReplyLimits::max_line octets (512 is the RFC limit, we tolerate more but stay
// bounded) and a reply at most ReplyLimits::max_lines lines. Anything else is an error that
// the caller turns into a temporary protocol failure. Memory used is O(max_line*max_lines).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <salvo/base/byte_buffer.h>

namespace salvo::smtp {

// class.subject.detail (RFC 3463); klass == 0 means "absent".
struct EnhancedStatus {
  std::uint8_t klass = 0;
  std::uint16_t subject = 0;
  std::uint16_t detail = 0;

  constexpr bool present() const noexcept { return klass != 0; }
  constexpr bool operator==(const EnhancedStatus&) const = default;
  std::string to_string() const;  // "5.1.1", or "" when absent
};

// Parses "X.Y.Z" (X in 2/4/5, Y and Z 0..999); returns an absent status on failure.
EnhancedStatus parse_enhanced_status(std::string_view s) noexcept;

struct Reply {
  std::uint16_t code = 0;  // 200..599
  EnhancedStatus status;   // absent when the server did not send one
  // Text of all lines without the code and enhanced status, joined with '\n'.
  std::string text;

  Reply() = default;
  Reply(std::uint16_t c, EnhancedStatus s, std::string_view t) : code(c), status(s), text(t) {}

  bool positive() const noexcept { return code >= 200 && code < 400; }
  bool transient() const noexcept { return code >= 400 && code < 500; }
  bool permanent() const noexcept { return code >= 500; }
  std::vector<std::string_view> lines() const;

  // Wire form: "250-first\r\n250 2.1.0 last\r\n" (the status is repeated on each line).
  void append_to(ByteBuffer& out) const;
  std::string to_wire() const;

  bool operator==(const Reply&) const = default;
};

struct ReplyLimits {
  std::size_t max_line = 2048;  // incl. CRLF
  std::size_t max_lines = 128;
};

class ReplyParser {
 public:
  enum class Status : std::uint8_t { NeedMore, Complete, Error };
  enum class ErrorKind : std::uint8_t {
    None, LineTooLong, TooManyLines, BadCode, CodeMismatch, BareLineEnding, NulByte
  };

  explicit ReplyParser(ReplyLimits limits = {}) : limits_(limits) {}

  // Parses from in[0..]; *consumed is set to the bytes used. On Complete `out` holds the
  // reply (its string capacity is reused). On Error the parser stays in error until
  // reset(). On NeedMore all complete lines were consumed and a partial line is left.
  Status parse(std::string_view in, std::size_t* consumed, Reply* out);
  // Convenience: consumes from a ByteBuffer.
  Status parse(ByteBuffer& in, Reply* out);

  ErrorKind error() const noexcept { return error_; }
  void reset() noexcept;

 private:
  ReplyLimits limits_;
  std::uint16_t code_ = 0;
  std::size_t lines_ = 0;
  ErrorKind error_ = ErrorKind::None;
};

// A Reply from its parts (the server's fixed texts are inline in src/smtp/server_session.cc,
// server_auth.cc and command.cc).
Reply make_reply(std::uint16_t code, std::string_view status, std::string_view text);

}  // namespace salvo::smtp
