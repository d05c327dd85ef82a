// SPDX-License-Identifier: Apache-2.0
// Destination::finish: the one place where a transaction's replies (or a local failure)
// become recipient states, accounting lines, back-off and DSN reports, sent back to the
// message's own shard as Outcomes.
#include <algorithm>
#include <chrono>
#include <string>

#include <fmt/format.h>

#include <salvo/base/log.h>
#include <salvo/dsn/dsn.h>

#include "outbound/internal.h"

namespace salvo::outbound {
namespace {

using std::chrono::duration_cast;
using std::chrono::nanoseconds;

std::string_view source_name(spool::Source s) { return spool::to_string(s); }

bool has_8bit(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
}

}  // namespace

void Destination::finish(Slot* s, const smtp::TransactionResult* result) noexcept {
  const TimePoint now = ob_.shard.clock().now();
  const WallTime wall = ob_.shard.clock().wall_now();
  const std::int64_t wall_ns = to_ns(wall);
  const std::string id = format_id(s->message);
  std::string mx, ip, tls;
  if (s->conn != nullptr) {
    mx = s->conn->host().name;
    ip = s->conn->ip();
    tls = s->conn->tls_version();
  } else if (s->local) {
    mx = s->local->mx;
  }
  const bool null_sender = s->reverse_path.empty();
  Outcomes out;
  out.message = s->message;
  std::vector<dsn::RecipientReport> reports;
  const double queued_s =
      static_cast<double>(wall_ns - s->info.received_unix_ns) / 1e9;
  ++ob_.stats.transactions;
  bool throttled = false;
  for (std::size_t i = 0; i < s->rcpts.size(); ++i) {
    const queue::QueuedRecipient& q = s->rcpts[i];
    const Slot::Rcpt* rd = i < s->rcpt_data.size() ? &s->rcpt_data[i] : nullptr;
    smtp::Reply reply;
    queue::Stage stage = queue::Stage::DataEnd;
    if (s->local || result == nullptr) {
      reply = s->local ? s->local->reply : smtp::Reply(451, {4, 3, 0}, "internal error");
      stage = s->local ? s->local->stage : queue::Stage::Connect;
    } else if (result->mail_reply.code != 0 && !result->mail_reply.positive()) {
      reply = result->mail_reply;
      stage = queue::Stage::Mail;
    } else if (i < result->rcpt_replies.size() && result->rcpt_replies[i].code != 0 &&
               !result->rcpt_replies[i].positive()) {
      reply = result->rcpt_replies[i];
      stage = queue::Stage::Rcpt;
    } else {
      reply = result->final_reply;
      if (reply.code == 0) reply = smtp::Reply(451, {4, 4, 2}, "no reply to the message");
    }
    std::string enh = reply.status.to_string();
    bool fallback_refused = false;
    if (s->conn != nullptr && s->conn->plaintext_fallback() &&
        (stage == queue::Stage::Mail || stage == queue::Stage::Rcpt) &&
        (reply.code == 530 || enh == "5.7.0" || enh == "5.7.10" || enh == "5.7.11")) {
      // RFC 3207 §4: the server wants STARTTLS, which we skipped after a failed handshake:
      // not the recipient's fault. Retry (with TLS again).
      tls_needed(s->conn->host().address);
      fallback_refused = true;
      reply = smtp::Reply(451, {4, 7, 0}, "server requires STARTTLS (plaintext fallback refused): " +
                                              reply.text);
      enh = "4.7.0";
    }
    queue::Reply qr{reply.code, enh, reply.text};
    queue::Decision d = ob_.classifier->classify(stage, qr);
    const bool local_reply = s->local || result == nullptr || fallback_refused ||
                             (stage == queue::Stage::DataEnd && result->local);
    throttled |= d.throttled && !local_reply;
    RecipientOutcome ro;
    ro.recipient = q.recipient;
    ro.attempts = q.attempts + 1;
    accounting::Event ev;
    dsn::Action action = dsn::Action::Failed;
    bool report = false;
    std::string status = enh;
    switch (d.verdict) {
      case queue::Verdict::Delivered:
        ro.state = spool::RecipientState::Delivered;
        ev.type = accounting::EventType::Delivered;
        ++ob_.stats.delivered;
        ++class_->delivered;
        ++delivered_;
        note_delivery();
        backoff_.on_delivered();
        // RFC 3461 §5.2: a next hop that offers DSN got the NOTIFY and reports success
        // itself; to one that does not, we report "relayed" (the final delivery is out of
        // our sight).
        action = dsn::Action::Relayed;
        report = s->conn == nullptr || !s->conn->remote_dsn();
        break;
      case queue::Verdict::Bounced:
        ro.state = spool::RecipientState::Bounced;
        ev.type = accounting::EventType::Bounced;
        ev.category = d.category;
        ++ob_.stats.bounced;
        ++class_->bounced;
        ++bounced_;
        report = true;
        break;
      case queue::Verdict::Deferred: {
        auto next = ob_.retry.next_attempt(from_ns(s->info.received_unix_ns), wall,
                                           q.attempts + 1);
        if (!next) {
          ro.state = spool::RecipientState::Expired;
          ev.type = accounting::EventType::Expired;
          ++ob_.stats.expired;
          ++class_->expired;
          ++bounced_;
          report = true;
          if (status.empty() || status[0] != '4') status = "4.4.7";
          break;
        }
        ro.state = spool::RecipientState::Deferred;
        ro.next_attempt_unix_ns = to_ns(*next);
        ev.type = accounting::EventType::Deferred;
        ++ob_.stats.deferred;
        ++class_->deferred;
        ++deferrals_;
        queue::QueuedRecipient again = q;
        again.attempts = q.attempts + 1;
        again.next_attempt = *next;
        queue_.push_deferred(again);
        // NOTIFY=DELAY: once, at the attempt that finds the threshold passed since the
        // previous one (the previous wait is the schedule's step before this attempt).
        const Duration after = ob_.cfg().delivery.delay_dsn_after;
        if (after.count() > 0) {
          const Duration waited = wall - from_ns(s->info.received_unix_ns);
          const auto& sched = ob_.cfg().delivery.retry_schedule;
          Duration prev = q.attempts == 0
                              ? waited
                              : sched[std::min<std::size_t>(q.attempts - 1, sched.size() - 1)];
          if (waited >= after && waited - prev < after) {
            action = dsn::Action::Delayed;
            report = true;
          }
        }
        break;
      }
    }
    // A recipient whose record could not be read is named by its index.
    const std::string unknown = rd != nullptr && !rd->address.empty()
                                    ? std::string()
                                    : fmt::format("#{}", q.recipient);
    if (i + 1 == s->rcpts.size()) {
      last_reply_ = fmt::format("{}{}{} {}", reply.code, enh.empty() ? "" : " ", enh,
                                std::string_view(reply.text).substr(0, 200));
    }
    const std::string_view rcpt = unknown.empty() ? rd->address : std::string_view(unknown);
    const std::string rcpt_domain = unknown.empty() ? domain_of(rcpt) : domain_;
    if (ro.state == spool::RecipientState::Bounced || ro.state == spool::RecipientState::Expired) {
      BounceInfo b;
      b.unix_ns = wall_ns;
      b.id = id;
      b.recipient = rcpt;
      b.domain = rcpt_domain;
      b.reply = fmt::format("{}{}{} {}", reply.code, enh.empty() ? "" : " ", enh,
                            std::string_view(reply.text).substr(0, 200));
      b.category = ro.state == spool::RecipientState::Expired ? "expired" : d.category;
      ob_.recent_bounces.push_back(std::move(b));
      if (ob_.recent_bounces.size() > OutboundSnapshot::kRecentBounces) {
        ob_.recent_bounces.pop_front();
      }
    }
    if (ob_.accounting != nullptr) {
      ev.ts_unix_ns = wall_ns;
      ev.id = id;
      ev.from = s->reverse_path;
      ev.rcpt = rcpt;
      ev.domain = rcpt_domain;
      ev.mx = mx;
      ev.ip = ip;
      ev.code = reply.code;
      ev.enhanced = enh;
      ev.response = reply.text;
      ev.attempt = q.attempts + 1;
      ev.tls = tls;
      ev.size = s->original.size();
      ev.queued_s = queued_s;
      ev.source = source_name(s->source);
      ev.job = s->job;
      ob_.accounting->append(ev);
    }
    if (unknown.empty()) {
      if (report &&
          dsn::wants_dsn(action, rd->notify, dsn::NullSender(null_sender))) {
        dsn::RecipientReport rr;
        rr.final_recipient = std::string(rd->address);
        rr.original_recipient_xtext = std::string(rd->orcpt);
        rr.action = action;
        rr.status = status;
        rr.remote_mta = mx;
        if (reply.code != 0) {
          rr.diagnostic = fmt::format("{}{}{} {}", reply.code, enh.empty() ? "" : " ", enh,
                                      reply.text);
        }
        rr.last_attempt_unix = wall_ns / 1'000'000'000;
        if (action == dsn::Action::Delayed) {
          rr.will_retry_until_unix =
              (s->info.received_unix_ns +
               duration_cast<nanoseconds>(ob_.cfg().delivery.expiry).count()) /
              1'000'000'000;
        }
        reports.push_back(std::move(rr));
      }
    }
    if (spool::is_final(ro.state)) {
      auto it = msgs_.find(q.message);
      if (it != msgs_.end() && --it->second.refs == 0) msgs_.erase(it);
    }
    out.recipients.push_back(ro);
  }
  if (!reports.empty()) {
    dsn::DsnInput in;
    in.reporting_mta = ob_.shared.hostname;
    in.from_address = ob_.cfg().delivery.dsn_from;
    in.original_sender = std::string(s->reverse_path);
    in.envid_xtext = std::string(s->envid);
    in.arrival_unix = s->info.received_unix_ns / 1'000'000'000;
    in.now_unix = wall_ns / 1'000'000'000;
    in.unique = s->message ^ (static_cast<std::uint64_t>(wall_ns) << 1) ^ s->cookie;
    in.ret = static_cast<dsn::Ret>(s->ret);
    in.original_message = s->original.empty() ? s->body_source : s->original;
    in.recipients = std::move(reports);
    in.smtputf8 = (s->flags & spool::kFlagSmtpUtf8) != 0;
    if (auto text = dsn::build_dsn(in)) {
      out.dsn = std::move(*text);
      out.dsn_to = std::string(s->reverse_path);
      out.dsn_8bit = has_8bit(out.dsn);
      out.dsn_smtputf8 = in.smtputf8;
    } else {
      log::warn("outbound: message {}: no DSN: {}", id, text.error().message());
    }
  }
  if (throttled) throttle(now);
  const std::uint32_t origin = s->info.origin;
  --slots_;
  ob_.free_slot(s);
  ob_.send_outcomes(origin, std::move(out));
  ob_.mark_dirty(*this);
}

}  // namespace salvo::outbound
