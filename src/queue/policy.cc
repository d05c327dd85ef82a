// SPDX-License-Identifier: Apache-2.0
// DeliveryPolicy: reply rewrites, verdicts, expiry, retry times and delay notices.
#include <salvo/queue/policy.h>

#include <algorithm>
#include <utility>

#include <fmt/format.h>

namespace salvo::queue {
namespace {

// RFC 3207 §4 / RFC 3463: the server wants STARTTLS (530, 5.7.0, 5.7.10, 5.7.11).
bool demands_tls(const smtp::Reply& r) noexcept {
  if (r.code == 530) return true;
  const auto& s = r.status;
  return s.klass == 5 && s.subject == 7 && (s.detail == 0 || s.detail == 10 || s.detail == 11);
}

}  // namespace

std::string_view to_string(Fate f) noexcept {
  switch (f) {
    case Fate::Delivered: return "delivered";
    case Fate::Deferred: return "deferred";
    case Fate::Bounced: return "bounced";
    case Fate::Expired: return "expired";
  }
  return "deferred";
}

DeliveryPolicy::DeliveryPolicy(const Classifier& classifier, PolicyOptions options)
    : classifier_(&classifier),
      options_(std::move(options)),
      retry_(options_.retry_schedule, options_.expiry) {}

AttemptDecision DeliveryPolicy::decide(const AttemptFacts& f) const {
  AttemptDecision out;
  out.reply = f.reply;
  bool local = f.local;
  if (f.plaintext_fallback && (f.stage == Stage::Mail || f.stage == Stage::Rcpt) &&
      demands_tls(f.reply)) {
    // We skipped STARTTLS after a failed handshake and the server insists on it: not the
    // recipient's fault. Retry, with TLS again.
    out.reply = smtp::Reply(451, {4, 7, 0},
                            "server requires STARTTLS (plaintext fallback refused): " +
                                f.reply.text);
    out.tls_needed = true;
    local = true;
  }
  out.status = out.reply.status.to_string();
  const Decision d = classifier_->classify(f.stage, out.reply);
  out.throttle = d.throttled && !local;
  out.category = d.category;
  switch (d.verdict) {
    case Verdict::Delivered: out.fate = Fate::Delivered; break;
    case Verdict::Bounced: out.fate = Fate::Bounced; break;
    case Verdict::Deferred: {
      const auto next = retry_.next_attempt(f.received, f.now, f.attempts + 1);
      if (!next) {
        // Out of time: an expiry reports 4.4.7 unless the last reply said something
        // temporary of its own (RFC 3463 §3.5).
        out.fate = Fate::Expired;
        if (out.status.empty() || out.status[0] != '4') out.status = "4.4.7";
        break;
      }
      out.fate = Fate::Deferred;
      out.next_attempt = *next;
      out.delay_notice = delay_notice_due(f);
      break;
    }
  }
  return out;
}

bool DeliveryPolicy::delay_notice_due(const AttemptFacts& f) const noexcept {
  // Once: at the attempt that finds the threshold passed since the previous attempt (the
  // previous wait is the schedule's step before this attempt).
  const Duration after = options_.delay_notice_after;
  if (after.count() <= 0) return false;
  const Duration waited = f.now - f.received;
  const auto& sched = options_.retry_schedule;
  Duration prev = waited;
  if (f.attempts != 0 && !sched.empty()) {
    prev = sched[std::min<std::size_t>(f.attempts - 1, sched.size() - 1)];
  }
  return waited >= after && waited - prev < after;
}

SessionFailure DeliveryPolicy::session_failed(const smtp::Reply& reply, bool before_ready,
                                              bool local, std::string_view host) const {
  SessionFailure out;
  const Decision d = classifier_->classify(before_ready ? Stage::Greeting : Stage::Mail, reply);
  out.throttle = d.throttled && !local;
  if (!before_ready && !d.next_mx) return out;
  out.try_next_host = true;
  const Duration first =
      options_.retry_schedule.empty() ? Duration(std::chrono::minutes(5)) : options_.retry_schedule.front();
  out.down_for = std::min<Duration>(first, std::chrono::minutes(5));
  // One host's 5xx before the session was ready says nothing about the recipients:
  // they are deferred, with what that host said.
  out.deferral = reply.code / 100 == 4
                     ? reply
                     : smtp::Reply(451, {4, 4, 0},
                                   fmt::format("{} said: {} {}", host, reply.code, reply.text));
  return out;
}

smtp::Reply DeliveryPolicy::expired_reply(bool destination_held) {
  return smtp::Reply(451, {4, 4, 7},
                     destination_held ? "message expired in the queue (destination held)"
                                      : "message expired in the queue");
}

}  // namespace salvo::queue
