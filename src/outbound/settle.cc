// SPDX-License-Identifier: Apache-2.0
// settle(): a transaction's replies become outcomes, accounting lines and a DSN request.
#include "outbound/settle.h"

#include <fmt/format.h>

#include <salvo/smtp/address.h>
#include <salvo/spool/spool_writer.h>

namespace salvo::outbound {
namespace {

// The reply a recipient got, and at which stage.
struct Answer {
  smtp::Reply reply;
  queue::Stage stage = queue::Stage::DataEnd;
  bool local = false;
};

Answer answer_for(const TransactionFacts& f, std::size_t i) {
  if (f.local != nullptr) return {f.local->reply, f.local->stage, true};
  if (f.result == nullptr) return {smtp::Reply(451, {4, 3, 0}, "internal error"), queue::Stage::Connect, true};
  const smtp::TransactionResult& r = *f.result;
  if (r.mail_reply.code != 0 && !r.mail_reply.positive()) return {r.mail_reply, queue::Stage::Mail};
  if (i < r.rcpt_replies.size() && r.rcpt_replies[i].code != 0 && !r.rcpt_replies[i].positive()) {
    return {r.rcpt_replies[i], queue::Stage::Rcpt};
  }
  if (r.final_reply.code == 0) {
    return {smtp::Reply(451, {4, 4, 2}, "no reply to the message"), queue::Stage::DataEnd, true};
  }
  return {r.final_reply, queue::Stage::DataEnd, r.local};
}

std::string reply_line(const smtp::Reply& reply, std::string_view enhanced, std::size_t max_text) {
  return fmt::format("{}{}{} {}", reply.code, enhanced.empty() ? "" : " ", enhanced,
                     std::string_view(reply.text).substr(0, max_text));
}

RecipientOutcome outcome_of(const queue::QueuedRecipient& q, const queue::AttemptDecision& d) {
  RecipientOutcome ro;
  ro.recipient = q.recipient;
  ro.attempts = q.attempts + 1;
  switch (d.fate) {
    case queue::Fate::Delivered: ro.state = spool::RecipientState::Delivered; break;
    case queue::Fate::Bounced: ro.state = spool::RecipientState::Bounced; break;
    case queue::Fate::Expired: ro.state = spool::RecipientState::Expired; break;
    case queue::Fate::Deferred:
      ro.state = spool::RecipientState::Deferred;
      ro.next_attempt_unix_ns = to_ns(d.next_attempt);
      break;
  }
  return ro;
}

accounting::EventType event_of(queue::Fate f) {
  switch (f) {
    case queue::Fate::Delivered: return accounting::EventType::Delivered;
    case queue::Fate::Bounced: return accounting::EventType::Bounced;
    case queue::Fate::Expired: return accounting::EventType::Expired;
    case queue::Fate::Deferred: break;
  }
  return accounting::EventType::Deferred;
}

// Which DSN action, if any, this decision reports (the sender's NOTIFY decides later).
std::optional<dsn::Action> report_of(const queue::AttemptDecision& d, const TransactionFacts& f) {
  switch (d.fate) {
    case queue::Fate::Delivered:
      // RFC 3461 §5.2: a next hop that offers DSN got the NOTIFY and reports success
      // itself; to one that does not, we report "relayed" (the final delivery is out of
      // our sight).
      if (f.over_connection && f.remote_dsn) return std::nullopt;
      return dsn::Action::Relayed;
    case queue::Fate::Bounced:
    case queue::Fate::Expired: return dsn::Action::Failed;
    case queue::Fate::Deferred:
      if (d.delay_notice) return dsn::Action::Delayed;
      return std::nullopt;
  }
  return std::nullopt;
}

void count(Tally& t, queue::Fate f) {
  switch (f) {
    case queue::Fate::Delivered: ++t.delivered; break;
    case queue::Fate::Deferred: ++t.deferred; break;
    case queue::Fate::Bounced: ++t.bounced; break;
    case queue::Fate::Expired: ++t.expired; break;
  }
}

dsn::RecipientReport make_report(const RcptData& rd, dsn::Action action,
                                 const queue::AttemptDecision& d, const TransactionFacts& f,
                                 const queue::DeliveryPolicy& policy) {
  dsn::RecipientReport rr;
  rr.final_recipient = std::string(rd.address);
  rr.original_recipient_xtext = std::string(rd.orcpt);
  rr.action = action;
  rr.status = d.status;
  rr.remote_mta = std::string(f.mx);
  const std::string enh = d.reply.status.to_string();
  if (d.reply.code != 0) rr.diagnostic = reply_line(d.reply, enh, std::string::npos);
  rr.last_attempt_unix = f.now_unix_ns / 1'000'000'000;
  if (action == dsn::Action::Delayed) {
    rr.will_retry_until_unix =
        to_ns(policy.expires_at(from_ns(f.received_unix_ns))) / 1'000'000'000;
  }
  return rr;
}

dsn::DsnInput dsn_request(const TransactionFacts& f, std::vector<dsn::RecipientReport> reports) {
  dsn::DsnInput in;
  in.reporting_mta = std::string(f.reporting_mta);
  in.from_address = std::string(f.dsn_from);
  in.original_sender = std::string(f.reverse_path);
  in.envid_xtext = std::string(f.envid);
  in.arrival_unix = f.received_unix_ns / 1'000'000'000;
  in.now_unix = f.now_unix_ns / 1'000'000'000;
  in.unique = f.unique;
  in.ret = static_cast<dsn::Ret>(f.ret);
  in.original_message = f.original;
  in.recipients = std::move(reports);
  in.smtputf8 = (f.flags & spool::kFlagSmtpUtf8) != 0;
  return in;
}

}  // namespace

Settlement settle(const TransactionFacts& f, const queue::DeliveryPolicy& policy) {
  Settlement s;
  s.outcomes.message = f.message;
  std::vector<dsn::RecipientReport> reports;
  const bool null_sender = f.reverse_path.empty();
  for (std::size_t i = 0; i < f.rcpts.size(); ++i) {
    const queue::QueuedRecipient& q = f.rcpts[i];
    const RcptData* rd = i < f.rcpt_data.size() && !f.rcpt_data[i].address.empty()
                             ? &f.rcpt_data[i] : nullptr;
    const Answer a = answer_for(f, i);
    queue::AttemptFacts af;
    af.stage = a.stage;
    af.reply = a.reply;
    af.local = a.local;
    af.plaintext_fallback = f.over_connection && f.plaintext_fallback;
    af.attempts = q.attempts;
    af.received = from_ns(f.received_unix_ns);
    af.now = from_ns(f.now_unix_ns);
    const queue::AttemptDecision d = policy.decide(af);
    s.throttle |= d.throttle;
    s.tls_needed |= d.tls_needed;
    count(s.tally, d.fate);
    const RecipientOutcome ro = outcome_of(q, d);
    s.outcomes.recipients.push_back(ro);
    if (d.fate == queue::Fate::Deferred) {
      queue::QueuedRecipient again = q;
      again.attempts = q.attempts + 1;
      again.next_attempt = d.next_attempt;
      s.deferred.push_back(again);
    } else if (spool::is_final(ro.state)) {
      s.finished.push_back(q.message);
    }
    // A recipient whose record could not be read is named by its index.
    AttemptLine line;
    line.type = event_of(d.fate);
    line.rcpt = rd != nullptr ? std::string(rd->address) : fmt::format("#{}", q.recipient);
    line.domain = rd != nullptr ? smtp::domain_of(rd->address) : std::string(f.destination);
    line.enhanced = d.reply.status.to_string();
    line.response = d.reply.text;
    line.code = d.reply.code;
    line.attempt = q.attempts + 1;
    if (d.fate == queue::Fate::Bounced) line.category = d.category;
    const std::string shown = reply_line(d.reply, line.enhanced, 200);
    if (i + 1 == f.rcpts.size()) s.last_reply = shown;
    if (d.fate == queue::Fate::Bounced || d.fate == queue::Fate::Expired) {
      s.bounces.push_back(BounceInfo{f.now_unix_ns, spool::format_id(f.message), line.rcpt,
                                     line.domain, shown,
                                     d.fate == queue::Fate::Expired ? "expired" : d.category});
    }
    s.lines.push_back(std::move(line));
    const auto action = report_of(d, f);
    if (rd != nullptr && action &&
        dsn::wants_dsn(*action, rd->notify, dsn::NullSender(null_sender))) {
      reports.push_back(make_report(*rd, *action, d, f, policy));
    }
  }
  if (!reports.empty()) s.dsn = dsn_request(f, std::move(reports));
  return s;
}

accounting::Event to_event(const AttemptLine& line, const TransactionFacts& f,
                           std::string_view id) {
  accounting::Event ev;
  ev.type = line.type;
  ev.ts_unix_ns = f.now_unix_ns;
  ev.id = id;
  ev.from = f.reverse_path;
  ev.rcpt = line.rcpt;
  ev.domain = line.domain;
  ev.mx = f.mx;
  ev.ip = f.ip;
  ev.code = line.code;
  ev.enhanced = line.enhanced;
  ev.response = line.response;
  ev.attempt = line.attempt;
  ev.tls = f.tls;
  ev.tls_policy = f.tls_policy;
  ev.size = f.original.size();
  ev.queued_s = static_cast<double>(f.now_unix_ns - f.received_unix_ns) / 1e9;
  ev.source = spool::to_string(f.source);
  ev.job = f.job;
  ev.category = line.category;
  return ev;
}

}  // namespace salvo::outbound
