// SPDX-License-Identifier: Apache-2.0
// DSN builder: RFC 3464 delivery-status fields inside an RFC 6522 multipart/report, with the
// RFC 6533 "global" types for SMTPUTF8 messages. Every untrusted string (remote replies,
// ORCPT/ENVID, addresses, the returned message) passes through text.h before it is written.
#include <salvo/dsn/dsn.h>

#include <fmt/format.h>

#include <salvo/dsn/errc.h>
#include <salvo/smtp/address.h>

#include "dsn/text.h"

namespace salvo::dsn {
namespace {

using detail::append_field;
using detail::append_wrapped;
using detail::format_date;
using detail::sanitize_line;

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// RFC 3463 status-code = class "." subject "." detail, 1-3 digits each.
bool valid_status(std::string_view s) noexcept {
  if (s.size() < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.') return false;
  std::size_t i = 2;
  for (int part = 0; part < 2; ++part) {
    std::size_t n = 0;
    while (i < s.size() && is_digit(s[i])) {
      ++i;
      ++n;
    }
    if (n == 0 || n > 3) return false;
    if (part == 0) {
      if (i >= s.size() || s[i] != '.') return false;
      ++i;
    }
  }
  return i == s.size();
}

// The status written for a recipient: the class must agree with the action (RFC 3464
// §2.3.4: failed is 5.x.x, delayed 4.x.x, the others 2.x.x). An expiry arrives as 4.4.7 and
// is reported failed as 5.4.7; anything unusable becomes X.0.0.
std::string status_for(const RecipientReport& r) {
  char want = '2';
  if (r.action == Action::Failed) want = '5';
  if (r.action == Action::Delayed) want = '4';
  if (!valid_status(r.status)) return fmt::format("{}.0.0", want);
  std::string s = r.status;
  if (s[0] != want) {
    if (want == '2') return "2.0.0";
    s[0] = want;
  }
  return s;
}

// "smtp" when the text is an SMTP reply (RFC 3464 §2.3.6 diagnostic-type), else our own
// X- type (DNS failures, TLS policy, local errors).
std::string_view diagnostic_type(std::string_view d) noexcept {
  if (d.size() >= 3 && is_digit(d[0]) && is_digit(d[1]) && is_digit(d[2]) &&
      (d.size() == 3 || d[3] == ' ' || d[3] == '-')) {
    return "smtp";
  }
  return "X-Salvo";
}

std::string diagnostic_text(std::string_view raw, bool utf8) {
  std::string d = sanitize_line(raw, utf8);
  if (d.size() > kMaxDiagnosticBytes) {
    std::size_t cut = kMaxDiagnosticBytes;
    // Do not split a UTF-8 sequence.
    while (cut > 0 && (static_cast<unsigned char>(d[cut]) & 0xC0) == 0x80) --cut;
    d.resize(cut);
    d += " [...truncated]";
  }
  return d;
}

// Address-type for Final-Recipient (RFC 6533 §3: "utf-8" for non-ASCII mailboxes).
std::string address_field(std::string_view mailbox, bool utf8) {
  std::string m = sanitize_line(mailbox, utf8);
  const bool non_ascii = detail::has_8bit(m);
  return fmt::format("{}; {}", non_ascii ? "utf-8" : "rfc822", m);
}

// ORCPT "addr-type;xtext" -> "addr-type;decoded". Empty if unusable.
std::string original_recipient_field(std::string_view orcpt, bool utf8) {
  const std::size_t semi = orcpt.find(';');
  if (semi == std::string_view::npos || semi == 0) return {};
  std::string type = sanitize_line(orcpt.substr(0, semi), false);
  for (char c : type) {
    if (c == ' ' || c == ';' || c == ':') return {};
  }
  std::string addr = detail::xtext_for_field(orcpt.substr(semi + 1), utf8);
  if (type.empty() || addr.empty()) return {};
  return fmt::format("{}; {}", type, addr);
}

struct Summary {
  bool failed = false;
  bool delayed = false;
};

Summary summarize(const DsnInput& in) {
  Summary s;
  for (const auto& r : in.recipients) {
    if (r.action == Action::Failed) s.failed = true;
    if (r.action == Action::Delayed) s.delayed = true;
  }
  return s;
}

std::string human_part(const DsnInput& in, const Summary& sum, std::string_view host) {
  const bool utf8 = in.smtputf8;
  std::string t;
  t += fmt::format("This is the mail delivery system at {}.\r\n\r\n", host);
  if (sum.failed) {
    append_wrapped(t,
                   "Your message could not be delivered to one or more of its recipients. "
                   "The details are below; the message (or its header) is attached.",
                   0, 0, 76);
  } else if (sum.delayed) {
    append_wrapped(t,
                   "THIS IS A WARNING ONLY: you do not need to resend your message. Delivery "
                   "to the recipients below has been delayed; the system keeps trying.",
                   0, 0, 76);
  } else {
    append_wrapped(t,
                   "This is the delivery report you asked for: your message reached the "
                   "recipients listed below.",
                   0, 0, 76);
  }
  for (const auto& r : in.recipients) {
    t += "\r\n";
    const std::string who = sanitize_line(r.final_recipient, utf8);
    const std::string status = status_for(r);
    const std::string mx = detail::sanitize_host(r.remote_mta);
    std::string what;
    switch (r.action) {
      case Action::Failed:
        what = fmt::format("<{}>: delivery failed permanently (status {}).", who, status);
        break;
      case Action::Delayed:
        what = fmt::format("<{}>: delivery delayed (status {})", who, status);
        if (r.will_retry_until_unix > 0) {
          what += fmt::format("; retries continue until {}", format_date(r.will_retry_until_unix));
        }
        what += '.';
        break;
      case Action::Delivered:
        what = fmt::format("<{}>: delivered (status {}).", who, status);
        break;
      case Action::Relayed:
        what = fmt::format(
            "<{}>: relayed to a system that does not send delivery notifications "
            "(status {}).",
            who, status);
        break;
      case Action::Expanded:
        what = fmt::format("<{}>: delivered and expanded to further recipients (status {}).",
                           who, status);
        break;
    }
    append_wrapped(t, what, 0, 4, 76);
    if (!mx.empty()) append_wrapped(t, fmt::format("Remote host: {}", mx), 4, 8, 76);
    if (!r.diagnostic.empty()) {
      append_wrapped(t, fmt::format("It said: {}", diagnostic_text(r.diagnostic, utf8)), 4, 8,
                     76);
    }
  }
  if (sum.failed || sum.delayed) {
    t += "\r\n";
    append_wrapped(t,
                   fmt::format("If you need help, write to <postmaster@{}> and include this "
                               "report.",
                               host),
                   0, 0, 76);
  }
  return t;
}

std::string status_part(const DsnInput& in, std::string_view host) {
  const bool utf8 = in.smtputf8;
  std::string s;
  // Per-message fields (RFC 3464 §2.2), in the RFC's order.
  if (!in.envid_xtext.empty()) {
    const std::string envid = detail::xtext_for_field(in.envid_xtext, utf8);
    if (!envid.empty()) append_field(s, "Original-Envelope-Id", envid);
  }
  append_field(s, "Reporting-MTA", fmt::format("dns; {}", host));
  if (in.arrival_unix > 0) append_field(s, "Arrival-Date", format_date(in.arrival_unix));
  // Per-recipient fields (RFC 3464 §2.3), one blank-line separated group each.
  for (const auto& r : in.recipients) {
    s += "\r\n";
    if (!r.original_recipient_xtext.empty()) {
      const std::string orcpt = original_recipient_field(r.original_recipient_xtext, utf8);
      if (!orcpt.empty()) append_field(s, "Original-Recipient", orcpt);
    }
    append_field(s, "Final-Recipient", address_field(r.final_recipient, utf8));
    append_field(s, "Action", action_name(r.action));
    append_field(s, "Status", status_for(r));
    const std::string mx = detail::sanitize_host(r.remote_mta);
    if (!mx.empty()) append_field(s, "Remote-MTA", fmt::format("dns; {}", mx));
    if (!r.diagnostic.empty()) {
      const std::string d = diagnostic_text(r.diagnostic, utf8);
      if (!d.empty()) {
        append_field(s, "Diagnostic-Code", fmt::format("{}; {}", diagnostic_type(d), d));
      }
    }
    if (r.last_attempt_unix > 0) {
      append_field(s, "Last-Attempt-Date", format_date(r.last_attempt_unix));
    }
    if (r.action == Action::Delayed && r.will_retry_until_unix > 0) {
      append_field(s, "Will-Retry-Until", format_date(r.will_retry_until_unix));
    }
  }
  return s;
}

// The header section of the original (up to, not including, the empty line), cut at a line
// boundary to at most `cap` octets.
std::string_view original_headers(std::string_view msg, std::size_t cap) {
  std::string_view h = msg;
  if (h.starts_with("\r\n")) return {};
  const std::size_t end = h.find("\r\n\r\n");
  if (end != std::string_view::npos) h = h.substr(0, end + 2);
  if (h.size() > cap) {
    const std::size_t nl = h.rfind('\n', cap == 0 ? 0 : cap - 1);
    h = (nl == std::string_view::npos) ? std::string_view{} : h.substr(0, nl + 1);
  }
  return h;
}

struct Returned {
  std::string content_type;
  std::string description;
  std::string body;
};

Returned returned_part(const DsnInput& in, bool undelivered) {
  Returned r;
  const std::string_view msg = in.original_message;
  const bool full = in.ret == Ret::Full && msg.size() <= in.max_returned_bytes &&
                    detail::max_line_length(msg) <= detail::kHardLine;
  if (full) {
    r.content_type = in.smtputf8 ? "message/global" : "message/rfc822";
    r.description = undelivered ? "Undelivered Message" : "Message";
    detail::append_message_text(r.body, msg);
  } else {
    r.content_type = in.smtputf8 ? "message/global-headers" : "text/rfc822-headers";
    r.description = undelivered ? "Undelivered Message Headers" : "Message Headers";
    detail::append_message_text(r.body, original_headers(msg, in.max_returned_bytes));
  }
  return r;
}

void append_part_header(std::string& out, std::string_view boundary, std::string_view desc,
                        std::string_view type, bool eight_bit) {
  out += "\r\n--";
  out += boundary;
  out += "\r\n";
  append_field(out, "Content-Description", desc);
  append_field(out, "Content-Type", type);
  if (eight_bit) append_field(out, "Content-Transfer-Encoding", "8bit");
  out += "\r\n";
}

}  // namespace

std::string_view action_name(Action a) noexcept {
  switch (a) {
    case Action::Failed: return "failed";
    case Action::Delayed: return "delayed";
    case Action::Delivered: return "delivered";
    case Action::Expanded: return "expanded";
    case Action::Relayed: return "relayed";
  }
  return "failed";
}

bool wants_dsn(Action action, std::uint8_t notify, NullSender null_sender) noexcept {
  if (static_cast<bool>(null_sender)) return false;  // RFC 5321 §4.5.5: never to <>
  if ((notify & kNotifyNever) != 0) return false;
  switch (action) {
    case Action::Failed: return notify == 0 || (notify & kNotifyFailure) != 0;
    case Action::Delayed: return (notify & kNotifyDelay) != 0;
    case Action::Delivered:
    case Action::Expanded:
    case Action::Relayed: return (notify & kNotifySuccess) != 0;
  }
  return false;
}

Result<std::string> build_dsn(const DsnInput& in) {
  if (in.recipients.empty()) return fail(errc::no_recipients);
  if (in.original_sender.empty()) return fail(errc::null_sender);
  if (!detail::is_host_name(in.reporting_mta)) return fail(errc::bad_reporting_mta);
  const std::string_view host = in.reporting_mta;
  const bool utf8 = in.smtputf8;
  const Summary sum = summarize(in);

  const std::string human = human_part(in, sum, host);
  const std::string status = status_part(in, host);
  const Returned ret = returned_part(in, sum.failed || sum.delayed);

  // A boundary that occurs in no part (RFC 2046 §5.1.1): the returned message is the only
  // part not written by us, so a hostile original cannot end a part early.
  std::string boundary = fmt::format("=_salvo_{:016x}_{:x}", in.unique,
                                     static_cast<std::uint64_t>(in.now_unix));
  for (unsigned n = 1; ret.body.find(boundary) != std::string::npos ||
                       human.find(boundary) != std::string::npos ||
                       status.find(boundary) != std::string::npos;
       ++n) {
    boundary = fmt::format("=_salvo_{:016x}_{:x}_{}", in.unique,
                           static_cast<std::uint64_t>(in.now_unix), n);
  }

  const bool human_8bit = detail::has_8bit(human);
  const bool status_8bit = detail::has_8bit(status);
  const bool ret_8bit = detail::has_8bit(ret.body);

  std::string out;
  out.reserve(human.size() + status.size() + ret.body.size() + 1024);
  if (in.from_address.empty()) {
    append_field(out, "From", fmt::format("Mail Delivery System <MAILER-DAEMON@{}>", host));
  } else {
    append_field(out, "From", fmt::format("Mail Delivery System <{}>",
                                          sanitize_line(in.from_address, false)));
  }
  append_field(out, "To", fmt::format("<{}>", sanitize_line(in.original_sender, utf8)));
  std::string_view subject = "Successful Mail Delivery Report";
  if (sum.failed) {
    subject = "Undelivered Mail Returned to Sender";
  } else if (sum.delayed) {
    subject = "Delayed Mail (still being retried)";
  }
  append_field(out, "Subject", subject);
  append_field(out, "Date", format_date(in.now_unix));
  const std::string_view id_domain =
      detail::is_host_name(in.message_id_domain) ? std::string_view(in.message_id_domain) : host;
  append_field(out, "Message-ID",
               fmt::format("<{:x}.{:016x}.dsn@{}>", static_cast<std::uint64_t>(in.now_unix),
                           in.unique, id_domain));
  append_field(out, "Auto-Submitted", "auto-replied");  // RFC 3834 §5
  append_field(out, "MIME-Version", "1.0");
  append_field(out, "Content-Type",
               fmt::format("multipart/report; report-type={}; boundary=\"{}\"",
                           utf8 ? "global-delivery-status" : "delivery-status", boundary));
  if (human_8bit || status_8bit || ret_8bit) {
    append_field(out, "Content-Transfer-Encoding", "8bit");
  }
  out += "\r\nThis is a MIME-encapsulated message.\r\n";

  append_part_header(out, boundary, "Notification",
                     human_8bit ? "text/plain; charset=utf-8" : "text/plain; charset=us-ascii",
                     human_8bit);
  out += human;
  append_part_header(out, boundary, "Delivery report",
                     utf8 ? "message/global-delivery-status" : "message/delivery-status",
                     status_8bit);
  out += status;
  append_part_header(out, boundary, ret.description, ret.content_type, ret_8bit);
  out += ret.body;
  out += "\r\n--";
  out += boundary;
  out += "--\r\n";
  return out;
}

}  // namespace salvo::dsn
