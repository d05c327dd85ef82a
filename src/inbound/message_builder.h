// SPDX-License-Identifier: Apache-2.0
// What the listener stores for one accepted message: the Received: trace header (RFC 5321
// §4.4) in front of the body, and the spool MessageRecord built from the envelope. Pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <salvo/accounting/accounting.h>
#include <salvo/smtp/server_session.h>
#include <salvo/spool/records.h>

namespace salvo::inbound {

struct TraceInfo {
  std::string_view helo;         // as the client gave it (sanitised here)
  std::string_view client_ip;    // "192.0.2.1" / "2001:db8::1"
  std::string_view hostname;     // ours
  bool tls = false;              // ESMTPS (RFC 3848)
  bool authenticated = false;    // ESMTPA / ESMTPSA
  bool esmtp = true;             // false: HELO -> "SMTP"
  std::uint64_t id = 0;
  std::int64_t unix_seconds = 0;
};

// Appends "Received: from HELO ([IP]) by HOST with PROTO id ID; DATE\r\n" (folded) to out.
// Client-supplied text is reduced to printable ASCII without parentheses, so the header
// stays one well-formed field whatever the HELO argument was.
void append_received(const TraceInfo& t, std::string& out);

// "Received: by HOST (salvo VIA) id ID;\r\n\tDATE\r\n": mail that came in without SMTP
// (via "pickup", "http").
void append_local_received(std::string_view hostname, std::string_view via, std::uint64_t id,
                           std::int64_t unix_seconds, std::string& out);

using spool::format_id;  // "0000000000abcdef": replies, Received:, accounting

// "helo=NAME addr=IP tls=yes|no auth=USER|-" for the record's client_info.
std::string client_info(const TraceInfo& t, std::string_view auth_user);

// spool::MessageRecord / JobTemplateRecord flags.
std::uint8_t message_flags(bool smtputf8, bool eight_bit) noexcept;

// The accounting "received" event for one recipient: sets ev.rcpt and ev.domain, appends the line.
void account_received(accounting::Writer& log, accounting::Event& ev, std::string_view rcpt);

// Fills m from the session's envelope (views into env, which must outlive m's use).
void fill_record(const smtp::Envelope& env, spool::MessageRecord& m);

}  // namespace salvo::inbound
