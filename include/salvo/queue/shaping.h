// SPDX-License-Identifier: Apache-2.0
// Per-destination delivery policy, pure and time-injected: the retry
// schedule, a token bucket for message and connection rates, and PowerMTA-style back-off
// that narrows a destination's connection window after throttling replies (421, 4.7.x) and
// reopens it slowly. Owner: the destination's shard (plain fields, no atomics).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include <salvo/base/clock.h>
#include <salvo/base/units.h>

namespace salvo::queue {

// When to try a deferred recipient again. intervals[i] is the wait after attempt i+1; the
// last one repeats. A recipient not delivered `expiry` after arrival is expired.
class RetrySchedule {
 public:
  RetrySchedule(std::vector<Duration> intervals, Duration expiry);
  // After `attempts` failed attempts (>= 1), the next attempt time, or nullopt when that
  // time would be at or past arrival + expiry (the recipient expires instead).
  std::optional<WallTime> next_attempt(WallTime arrival, WallTime now,
                                       std::uint32_t attempts) const noexcept;
  bool expired(WallTime arrival, WallTime now) const noexcept { return now - arrival >= expiry_; }
  Duration expiry() const noexcept { return expiry_; }

 private:
  std::vector<Duration> intervals_;
  Duration expiry_;
};

// A token bucket: `rate.count` tokens per `rate.period`, holding at most `burst` tokens
// (default: rate.count, at least 1). Starts full.
class TokenBucket {
 public:
  explicit TokenBucket(Rate rate, std::uint64_t burst = 0);
  // Takes one token if one is available at `now`.
  bool try_take(TimePoint now) noexcept;
  // When the next token is available (now if one is).
  TimePoint next_token(TimePoint now) noexcept;
  double tokens(TimePoint now) noexcept;

 private:
  void refill(TimePoint now) noexcept;
  double per_ns_;
  double burst_;
  double tokens_;
  TimePoint last_{};
  bool started_ = false;
};

struct BackoffOptions {
  Duration first_pause = std::chrono::minutes(1);  // after the first throttling reply
  Duration max_pause = std::chrono::minutes(30);   // doubling up to this
  // While recovering, one more connection is allowed after each `reopen_after` good
  // deliveries, until the configured maximum is reached again.
  std::uint32_t reopen_after = 20;
};

// PowerMTA's back-off mode for one destination. Normal: the configured connection limit.
// A throttling reply: paused until now + pause (no new connections, no new transactions),
// then one connection, widening by one per reopen_after deliveries. Another throttle while
// backed off doubles the pause. A full window leaves back-off and resets the pause.
class Backoff {
 public:
  enum class State : std::uint8_t { Normal, Paused, Recovering };

  Backoff(std::uint32_t max_connections, BackoffOptions options = {});

  void on_throttled(TimePoint now) noexcept;
  void on_delivered() noexcept;
  // Connections allowed now (0 while paused).
  std::uint32_t allowed_connections(TimePoint now) noexcept;
  State state(TimePoint now) noexcept;
  TimePoint paused_until() const noexcept { return paused_until_; }
  // The configured maximum changed (reload): keeps the state, clamps the window.
  void set_max_connections(std::uint32_t n) noexcept;
  // The configured pauses changed (reload): the next episode uses them; a pause running
  // now ends when it was going to.
  void set_options(BackoffOptions options) noexcept { options_ = options; }

 private:
  std::uint32_t max_;
  BackoffOptions options_;
  State state_ = State::Normal;
  TimePoint paused_until_{};
  Duration pause_{};
  std::uint32_t window_ = 0;
  std::uint32_t good_ = 0;
};

}  // namespace salvo::queue
