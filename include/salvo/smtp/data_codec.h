// SPDX-License-Identifier: Apache-2.0
// Message content framing. Server side: DataDecoder (DATA: dot-unstuffing, the only
// end-of-data is CRLF "." CRLF, RFC 5321 §4.1.1.4 and §4.5.2) and BdatDecoder (CHUNKING:
// exact byte counts, no dot processing, RFC 3030). Both enforce the same content policy:
// a bare CR or bare LF anywhere (SMTP smuggling, CVE-2023-51764), a NUL byte, a text line
// over 1000 octets incl. CRLF, or more than max_size decoded octets make the message fail
// at its end (the decoder keeps reading to the real end so the session stays in sync).
// Memory is bounded: nothing is buffered except, optionally, the decoded body up to
// max_size. Client side: dot_stuff() and find_bare_line_ending().
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <salvo/base/byte_buffer.h>
#include <salvo/base/strong_id.h>

namespace salvo::smtp {

inline constexpr std::size_t kMaxTextLine = 1000;  // incl. CRLF (RFC 5321 §4.5.3.1.6)

// Why a message is refused at its end; the first problem found wins.
enum class ContentError : std::uint8_t { None, BareCr, BareLf, Nul, LineTooLong, TooBig };

struct ContentLimits {
  std::uint64_t max_size = 0;            // decoded octets; 0 = unlimited
  std::size_t max_line = kMaxTextLine;   // incl. CRLF
};

using KeepBody = BoolClass<struct KeepBodyTag>;

// Tracks CRLF discipline, NUL, line length and size over a byte stream in any split.
class ContentChecker {
 public:
  explicit ContentChecker(ContentLimits limits = {}) : limits_(limits) {}
  void reset() noexcept;
  void update(std::string_view bytes) noexcept;
  // Ends the stream: a trailing lone CR is a bare CR.
  void finish() noexcept;
  ContentError error() const noexcept { return error_; }
  std::uint64_t size() const noexcept { return size_; }
  const ContentLimits& limits() const noexcept { return limits_; }

  // Internal helpers shared with DataDecoder.
  void note(ContentError e) noexcept {
    if (error_ == ContentError::None) error_ = e;
  }

 private:
  ContentLimits limits_;
  std::uint64_t size_ = 0;
  std::size_t line_ = 0;
  bool cr_ = false;
  ContentError error_ = ContentError::None;
};

class DataDecoder {
 public:
  enum class Status : std::uint8_t { NeedMore, Done };

  explicit DataDecoder(ContentLimits limits = {}) : limits_(limits) {}
  void set_limits(ContentLimits limits) noexcept { limits_ = limits; }
  void reset() noexcept;

  // Decodes from `in`; *consumed is set to the bytes used (on Done: up to and including
  // the final CRLF "." CRLF). Decoded content (CRLF line ends kept, the terminating CRLF
  // of the last line included) is appended to *body when body != nullptr, but never more
  // than max_size octets.
  Status decode(std::string_view in, std::size_t* consumed, ByteBuffer* body);

  ContentError error() const noexcept { return error_; }
  std::uint64_t size() const noexcept { return size_; }

 private:
  enum class State : std::uint8_t { LineStart, Mid, Cr, Dot, DotCr };
  void emit(const char* p, std::size_t n, ByteBuffer* body);
  void note(ContentError e) noexcept {
    if (error_ == ContentError::None) error_ = e;
  }

  ContentLimits limits_;
  State state_ = State::LineStart;
  std::size_t line_ = 0;
  std::uint64_t size_ = 0;
  ContentError error_ = ContentError::None;
};

// Receives BDAT chunks (RFC 3030): the session tells it how many octets the chunk has.
class BdatDecoder {
 public:
  explicit BdatDecoder(ContentLimits limits = {}) : checker_(limits) {}
  void set_limits(ContentLimits limits) noexcept { checker_ = ContentChecker(limits); }
  void reset() noexcept { checker_.reset(); }
  // Takes up to `remaining` octets of chunk data from `in`; returns how many were used.
  std::size_t take(std::string_view in, std::uint64_t remaining, ByteBuffer* body);
  void finish() noexcept { checker_.finish(); }
  ContentError error() const noexcept { return checker_.error(); }
  std::uint64_t size() const noexcept { return checker_.size(); }

 private:
  ContentChecker checker_;
};

// Client side. Appends `body` (RFC 5322 text with CRLF line ends) dot-stuffed, plus a CRLF
// if the body does not end in one, plus ".\r\n". Returns the octets appended.
std::size_t dot_stuff(std::string_view body, ByteBuffer& out);
// Size of dot_stuff(body) output without producing it.
std::size_t dot_stuffed_size(std::string_view body) noexcept;

// Offset of the first bare CR or bare LF in `body`, or npos. Outgoing content must have
// none: salvo never emits a bare CR or LF (a receiver could read it as end of data).
std::size_t find_bare_line_ending(std::string_view body) noexcept;

// The Received: fields in a message's header section (up to its first empty line), counting
// no further than `limit`: the hops it has made (RFC 5321 §6.3: a loop is detected by
// counting them). Folded continuation lines belong to their field.
std::size_t count_received(std::string_view message, std::size_t limit) noexcept;

}  // namespace salvo::smtp
