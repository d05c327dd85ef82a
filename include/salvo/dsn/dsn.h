// SPDX-License-Identifier: Apache-2.0
// Delivery status notifications (RFC 3464 multipart/report, RFC 6522; RFC 6533 for SMTPUTF8):
// the pure builder of the message sent from the null sender to a message's reverse path, and
// the RFC 3461 NOTIFY rule deciding which recipients get one. No IO, no clock: time is passed in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <salvo/base/result.h>
#include <salvo/base/strong_id.h>

namespace salvo::dsn {

// RFC 3464 §2.3.3 action-value.
enum class Action : std::uint8_t { Failed, Delayed, Delivered, Expanded, Relayed };

// "failed", "delayed", "delivered", "expanded", "relayed".
std::string_view action_name(Action a) noexcept;

// RFC 3461 §4.3 RET. Same values as spool::Ret (dsn may not include spool); Unspecified
// returns headers only, as Postfix and sendmail do.
enum class Ret : std::uint8_t { Unspecified = 0, Full = 1, Headers = 2 };

// RFC 3461 §4.1 NOTIFY bits, the same values as spool::kNotify*; 0 = NOTIFY not given.
inline constexpr std::uint8_t kNotifyNever = 1, kNotifySuccess = 2, kNotifyFailure = 4,
                              kNotifyDelay = 8;

inline constexpr std::size_t kDefaultMaxReturnedBytes = std::size_t{1} << 20;
// A remote reply longer than this is cut (with a note) before it is folded into the DSN.
inline constexpr std::size_t kMaxDiagnosticBytes = 4096;

using NullSender = BoolClass<struct NullSenderTag>;

// Whether a recipient whose outcome is `action` gets a DSN (RFC 3461 §4.1, RFC 5321 §4.5.5):
//  - never for a message from the null sender, never with NOTIFY=NEVER;
//  - NOTIFY not given (0) means FAILURE only: failures and expiry get a DSN, delays do not
//    (RFC 3461 leaves "FAILURE" or "FAILURE,DELAY" to the implementation; a bulk MTA that
//    warns on every slow domain floods senders, so salvo warns only when asked, as PowerMTA
//    and Postfix's default delay_warning_time=0 do);
//  - NOTIFY given: Failed needs FAILURE, Delayed needs DELAY, Delivered/Relayed/Expanded
//    need SUCCESS (an explicit NOTIFY=SUCCESS alone suppresses failure DSNs, as the RFC says).
bool wants_dsn(Action action, std::uint8_t notify_bits, NullSender null_sender) noexcept;

struct RecipientReport {
  std::string final_recipient;          // mailbox "local@domain", as queued
  std::string original_recipient_xtext; // ORCPT "addr-type;xtext" as stored; may be empty
  Action action = Action::Failed;
  std::string status;       // RFC 3463 "5.1.1"; malformed or empty -> X.0.0 from the action
  std::string remote_mta;   // MX host name; may be empty
  std::string diagnostic;   // the remote reply, e.g. "550 5.1.1 No such user"; may be empty
  std::int64_t last_attempt_unix = 0;      // 0 = no attempt made (field left out)
  std::int64_t will_retry_until_unix = 0;  // Delayed only; 0 = left out
};

struct DsnInput {
  std::string reporting_mta;     // our host name (Reporting-MTA, From: MAILER-DAEMON@...)
  // The From: address ([delivery] dsn_from); empty = MAILER-DAEMON@reporting_mta.
  std::string from_address;
  std::string original_sender;   // the reverse path; never empty (null sender: no DSN)
  std::string envid_xtext;       // ENVID as stored (xtext); may be empty
  std::int64_t arrival_unix = 0; // 0 = Arrival-Date left out
  std::int64_t now_unix = 0;     // Date:, Message-ID
  std::string message_id_domain; // right side of Message-ID; empty = reporting_mta
  std::uint64_t unique = 0;      // makes Message-ID and MIME boundary unique
  Ret ret = Ret::Unspecified;
  std::string_view original_message;  // CRLF; what was queued (headers + body)
  std::vector<RecipientReport> recipients;
  // A RET=FULL return larger than this (or with a line over 998 octets) is replaced by the
  // headers; the headers themselves are cut at a line boundary to this size.
  std::size_t max_returned_bytes = kDefaultMaxReturnedBytes;
  // The original needed SMTPUTF8: use message/global-delivery-status, message/global and
  // message/global-headers (RFC 6533 §6) and allow UTF-8 in addresses and diagnostics.
  bool smtputf8 = false;
};

// Builds the complete DSN (RFC 5322, CRLF line ends, every line <= 998 octets). The caller
// queues it with the null reverse path "<>" to input.original_sender. Remote replies, ORCPT
// and ENVID are sanitised (no control characters, no header injection); the returned
// original may carry 8-bit octets, in which case the part says Content-Transfer-Encoding:
// 8bit and the caller should relay it with BODY=8BITMIME.
// Diagnostics: errc::no_recipients, errc::null_sender (empty original_sender),
// errc::bad_reporting_mta (empty, or not a host name).
[[nodiscard]] Result<std::string> build_dsn(const DsnInput& in);

}  // namespace salvo::dsn
