// SPDX-License-Identifier: Apache-2.0
// DeliveryPolicy: the one place where what happened in a delivery attempt becomes what
// salvo does about it. It rewrites replies that say more about our session than about the
// recipient (a server demanding STARTTLS from a plaintext fallback, a 5xx before the
// session was ready), classifies (Classifier), decides expiry and the next attempt time
// (RetrySchedule) and when a NOTIFY=DELAY notice is due. Pure: time is passed in; the
// outbound driver reports facts and applies the decision.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <salvo/base/clock.h>
#include <salvo/queue/shaping.h>
#include <salvo/queue/verdict.h>
#include <salvo/smtp/reply.h>

namespace salvo::queue {

// One recipient's attempt as the session (or the driver, for local failures) saw it.
struct AttemptFacts {
  Stage stage = Stage::DataEnd;
  smtp::Reply reply;               // code 0: no reply at all
  bool local = false;              // decided here, not said by a server
  bool plaintext_fallback = false; // STARTTLS was skipped after a failed handshake
  std::uint32_t attempts = 0;      // failed attempts before this one
  WallTime received{};             // when the message arrived
  WallTime now{};
};

enum class Fate : std::uint8_t { Delivered, Deferred, Bounced, Expired };
std::string_view to_string(Fate f) noexcept;

struct AttemptDecision {
  Fate fate = Fate::Deferred;
  smtp::Reply reply;         // what is reported (the server's, or the policy's rewrite)
  std::string status;        // enhanced status for reports: the reply's, "4.4.7" on expiry
  std::string category;      // bounces: a config::kBounceCategories entry
  WallTime next_attempt{};   // Deferred
  bool throttle = false;     // the server asked us to slow down: back off the destination
  bool tls_needed = false;   // the server refused a plaintext fallback: STARTTLS again
  bool delay_notice = false; // a NOTIFY=DELAY report is due with this deferral
};

// A session that failed as a whole (connect, greeting, EHLO, STARTTLS, or a reply that
// makes the next MX the better choice).
struct SessionFailure {
  bool try_next_host = false;  // mark the host down for `down_for` and use the next MX
  Duration down_for{};
  bool throttle = false;
  smtp::Reply deferral;        // what the recipients waiting for this host are told
};

struct PolicyOptions {
  std::vector<Duration> retry_schedule;
  Duration expiry{};
  Duration delay_notice_after{};  // 0: never
};

// Owner: one shard (a plain value, rebuilt on reload); the Classifier it points to is
// immutable and must outlive it.
class DeliveryPolicy {
 public:
  DeliveryPolicy(const Classifier& classifier, PolicyOptions options);

  AttemptDecision decide(const AttemptFacts& facts) const;
  // Session-level: `before_ready` when no transaction could start; `local` when the
  // refusal was ours (TLS policy), which never throttles.
  SessionFailure session_failed(const smtp::Reply& reply, bool before_ready, bool local,
                                std::string_view host) const;

  bool expired(WallTime received, WallTime now) const noexcept {
    return retry_.expired(received, now);
  }
  // The local reply for a recipient found expired before an attempt.
  static smtp::Reply expired_reply(bool destination_held);
  WallTime expires_at(WallTime received) const noexcept { return received + retry_.expiry(); }
  const Classifier& classifier() const noexcept { return *classifier_; }

 private:
  bool delay_notice_due(const AttemptFacts& f) const noexcept;

  const Classifier* classifier_;
  PolicyOptions options_;
  RetrySchedule retry_;
};

}  // namespace salvo::queue
