// SPDX-License-Identifier: Apache-2.0
// Command: one parsed SMTP command line (RFC 5321 §4.1) with its ESMTP parameters (SIZE,
// BODY, SMTPUTF8, RET, ENVID, AUTH on MAIL; NOTIFY, ORCPT on RCPT). parse_command is
// pure: it never allocates beyond the reused strings in Command, and every failure is a
// CommandError carrying the exact reply the server sends.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <salvo/smtp/address.h>
#include <salvo/smtp/extensions.h>
#include <salvo/smtp/reply.h>

namespace salvo::smtp {

enum class Verb : std::uint8_t {
  Unknown, Helo, Ehlo, Mail, Rcpt, Data, Bdat, Rset, Noop, Quit, Vrfy, Expn, Help,
  StartTls, Auth, Etrn, Turn
};
std::string_view verb_name(Verb v) noexcept;

inline constexpr std::size_t kMaxCommandLine = 512;  // incl. CRLF (RFC 5321 §4.5.3.1.4)
inline constexpr std::size_t kMaxAuthLine = 12288;   // RFC 4954 §4, excl. CRLF
inline constexpr std::size_t kMaxEnvid = 100;        // RFC 3461 §4.4
inline constexpr std::size_t kMaxOrcpt = 500;        // RFC 3461 §4.2

enum class BodyType : std::uint8_t { Unspecified, SevenBit, EightBitMime };
enum class DsnRet : std::uint8_t { Unspecified, Full, Hdrs };

// NOTIFY (RFC 3461 §4.1): empty = not given; Never is exclusive.
enum class Notify : std::uint8_t { Never = 1, Success = 2, Failure = 4, Delay = 8 };
class NotifyFlags {
 public:
  constexpr NotifyFlags() = default;
  constexpr explicit NotifyFlags(std::uint8_t b) : bits_(b) {}
  constexpr bool has(Notify n) const noexcept {
    return (bits_ & static_cast<std::uint8_t>(n)) != 0;
  }
  constexpr void add(Notify n) noexcept { bits_ |= static_cast<std::uint8_t>(n); }
  constexpr bool empty() const noexcept { return bits_ == 0; }
  constexpr std::uint8_t bits() const noexcept { return bits_; }
  constexpr bool operator==(const NotifyFlags&) const = default;
  // "NEVER" / "SUCCESS,FAILURE,DELAY" (subset); "" when empty.
  std::string to_string() const;

 private:
  std::uint8_t bits_ = 0;
};

struct MailParams {
  bool has_size = false;
  std::uint64_t size = 0;
  BodyType body = BodyType::Unspecified;
  bool smtputf8 = false;
  DsnRet ret = DsnRet::Unspecified;
  std::string envid;  // xtext as received (validated), "" if absent
  std::string auth;   // AUTH= value as received (validated xtext or "<>"), "" if absent
  void clear() noexcept;
};

struct RcptParams {
  NotifyFlags notify;
  std::string orcpt;  // "addr-type;xtext" as received (validated), "" if absent
  void clear() noexcept;
};

struct Command {
  Verb verb = Verb::Unknown;
  // Text after the verb and one space (EHLO name, VRFY argument, AUTH mechanism and
  // initial response). Points into the parsed line; valid until that buffer changes.
  std::string_view argument;
  Path path;        // MAIL / RCPT
  MailParams mail;  // MAIL
  RcptParams rcpt;  // RCPT
  std::uint64_t bdat_size = 0;
  bool bdat_last = false;
};

// A rejection: the reply code, enhanced status and text (static storage).
struct CommandError {
  std::uint16_t code = 0;
  EnhancedStatus status;
  std::string_view text;
  bool fatal = false;  // the connection cannot be resynchronised (e.g. unparsable BDAT)
};

struct CommandOptions {
  ExtensionSet extensions = ExtensionSet::server_default();  // what was advertised
  std::uint64_t max_message_size = 0;                         // 0 = unlimited
  bool transaction_smtputf8 = false;  // MAIL had SMTPUTF8 (for RCPT)
};

// Parses one line without its CRLF. Returns true and fills `out`, or false with `*err`.
// Verbs are case-insensitive; "MAIL FROM: <a@b>" (space after the colon) is tolerated.
bool parse_command(std::string_view line, const CommandOptions& opts, Command* out,
                   CommandError* err);

}  // namespace salvo::smtp
