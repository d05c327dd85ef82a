// SPDX-License-Identifier: Apache-2.0
// Received: header, id formatting and envelope -> spool::MessageRecord.
#include "inbound/message_builder.h"

#include <cstdio>
#include <ctime>

#include <fmt/format.h>

#include <salvo/smtp/address.h>

namespace salvo::inbound {
namespace {

void append_sanitised(std::string_view s, std::string& out) {
  if (s.empty()) {
    out += "unknown";
    return;
  }
  for (char c : s.substr(0, 255)) {
    auto u = static_cast<unsigned char>(c);
    out.push_back(u > 0x20 && u < 0x7f && c != '(' && c != ')' && c != '\\' ? c : '?');
  }
}

}  // namespace

static void append_date(std::int64_t unix_seconds, std::string& out) {
  char date[64];
  std::time_t secs = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  // RFC 5322 §3.3 date-time; C locale day and month names.
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::snprintf(date, sizeof date, "%s, %d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday % 7],
                tm.tm_mday, kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  out += date;
}

void append_local_received(std::string_view hostname, std::string_view via, std::uint64_t id,
                           std::int64_t unix_seconds, std::string& out) {
  out += "Received: by ";
  append_sanitised(hostname, out);
  out += " (salvo ";
  out += via;
  out += ") id ";
  out += format_id(id);
  out += ";\r\n\t";
  append_date(unix_seconds, out);
  out += "\r\n";
}

void append_received(const TraceInfo& t, std::string& out) {
  // RFC 5321 §4.4 Time-stamp-line; "with" per RFC 3848 (ESMTP, ESMTPS, ESMTPA, ESMTPSA).
  std::string_view proto = !t.esmtp                          ? "SMTP"
                           : t.tls && t.authenticated        ? "ESMTPSA"
                           : t.tls                           ? "ESMTPS"
                           : t.authenticated                 ? "ESMTPA"
                                                             : "ESMTP";
  out += "Received: from ";
  append_sanitised(t.helo, out);
  out += " ([";
  out += t.client_ip;
  out += "])\r\n\tby ";
  append_sanitised(t.hostname, out);
  out += " (salvo) with ";
  out += proto;
  out += " id ";
  out += format_id(t.id);
  out += ";\r\n\t";
  append_date(t.unix_seconds, out);
  out += "\r\n";
}

std::string client_info(const TraceInfo& t, std::string_view auth_user) {
  std::string s = "helo=";
  append_sanitised(t.helo, s);
  s += " addr=";
  s += t.client_ip;
  s += t.tls ? " tls=yes auth=" : " tls=no auth=";
  if (auth_user.empty()) {
    s += "-";
  } else {
    append_sanitised(auth_user, s);
  }
  return s;
}

std::uint8_t message_flags(bool smtputf8, bool eight_bit) noexcept {
  return static_cast<std::uint8_t>((smtputf8 ? spool::kFlagSmtpUtf8 : 0) |
                                   (eight_bit ? spool::kFlag8BitMime : 0));
}

void account_received(accounting::Writer& log, accounting::Event& ev, std::string_view rcpt) {
  ev.type = accounting::EventType::Received;
  ev.rcpt = rcpt;
  const std::string domain = smtp::domain_of(rcpt);  // as the delivery lines name it
  ev.domain = domain;
  log.append(ev);
  ev.domain = {};
}

void fill_record(const smtp::Envelope& env, spool::MessageRecord& m) {
  m.source = spool::Source::Smtp;
  m.flags = message_flags(env.smtputf8, env.body_type == smtp::BodyType::EightBitMime);
  switch (env.ret) {
    case smtp::DsnRet::Full:
      m.ret = spool::Ret::Full;
      break;
    case smtp::DsnRet::Hdrs:
      m.ret = spool::Ret::Headers;
      break;
    case smtp::DsnRet::Unspecified:
      m.ret = spool::Ret::Unspecified;
      break;
  }
  m.reverse_path = env.reverse_path;
  m.envid = env.envid;
  m.recipients.clear();
  m.recipients.reserve(env.recipients.size());
  for (const auto& r : env.recipients) {
    // NOTIFY bits share their values between smtp::Notify and the spool (1, 2, 4, 8).
    m.recipients.push_back(spool::Recipient{r.address, r.notify.bits(), r.orcpt});
  }
}

}  // namespace salvo::inbound
