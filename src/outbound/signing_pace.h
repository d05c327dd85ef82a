// SPDX-License-Identifier: Apache-2.0
// SigningPace: how much of a shard's time the DKIM signing stage may take, so that a
// backlog of signatures (RSA-2048: ~0.4 ms each) never slows accepting, reading and
// writing. Pure: time is passed in.
//
// The stage runs once per loop turn. The time since its last run is what the rest of the
// loop (IO, sessions, the spool) took. When that was short (under `idle_gap`: the loop
// came back with nothing to do) and no mail came in meanwhile, signing may use a whole
// `budget`. Otherwise the loop is busy, and signing earns `share` of that time as credit:
// under a steady load the IO keeps at least 1 / (1 + share) of the core, and signing the
// rest, so a burst is accepted at nearly full speed and signed (and delivered) as the
// load allows. Intake counts however short its turn: under a burst of many small reads
// most turns are short, and each used to give signing a whole budget. A signature is
// started while credit is left; one that overdraws it is paid back from the next turns'
// earnings.
//
// Owner: the shard's DestinationSide.
#pragma once

#include <algorithm>

#include <salvo/base/clock.h>

namespace salvo::outbound {

class SigningPace {
 public:
  struct Params {
    double share;        // credit earned per unit of busy loop time
    Duration budget;     // the most signing time of one turn (and the credit cap)
    Duration idle_gap;   // a gap below this is an idle loop: the full budget
  };

  explicit SigningPace(Params p) noexcept : p_(p) {}

  // The stage's run starts now: credit for the time since the last run ended. intake:
  // mail is coming in (the caller's judgement: DestinationSide counts a read of an intake
  // connection in the last kSignIntakeWindow).
  void begin(TimePoint now, bool intake = false) noexcept {
    const Duration gap = now - last_end_;
    if (!ran_ || (gap < p_.idle_gap && !intake)) {
      credit_ = p_.budget;
    } else {
      const auto earned = Duration(static_cast<Duration::rep>(
          static_cast<double>(gap.count()) * p_.share));
      credit_ = std::min(p_.budget, credit_ + earned);
    }
    ran_ = true;
    last_mark_ = now;
  }
  // Whether another signature may start now.
  bool may_sign() const noexcept { return credit_ > Duration::zero(); }
  // A signature finished at `now`: its time is spent. The debt is at most one budget (a
  // thread preempted in the middle of a signature must not stop signing for long).
  void signed_at(TimePoint now) noexcept {
    credit_ = std::max(credit_ - (now - last_mark_), -p_.budget);
    last_mark_ = now;
  }
  // The run ends at `now`.
  void end(TimePoint now) noexcept { last_end_ = now; }

  Duration credit() const noexcept { return credit_; }

 private:
  Params p_;
  Duration credit_{};
  TimePoint last_mark_{};
  TimePoint last_end_{};
  bool ran_ = false;
};

}  // namespace salvo::outbound
