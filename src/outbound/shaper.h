// SPDX-License-Identifier: Apache-2.0
// Shaper: how fast one destination may go — its [[shaping]] entry (max connections,
// messages per connection), message and connection rate buckets, PowerMTA-style back-off
// after throttling replies, and the operator's pause. Pure: time is passed in.
//
// Owner: the destination's shard. Growth: per-tenant or per-pool limits become further
// buckets consulted here; the Destination keeps asking the same three questions.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include <salvo/base/clock.h>
#include <salvo/config/config.h>
#include <salvo/queue/shaping.h>

namespace salvo::outbound {

class Shaper {
 public:
  Shaper(const config::Shaping& shaping, Duration backoff_pause);

  // After a reload: the new entry; back-off state is kept, its window clamped.
  // A reload: the destination's entry and [delivery] backoff_pause.
  void reconfigure(const config::Shaping& shaping, Duration backoff_pause);
  const config::Shaping& shaping() const noexcept { return *shaping_; }

  // Connections allowed now: 0 when held (max_connections = 0), paused by the operator or
  // backed off.
  std::uint32_t allowed_connections(TimePoint now) noexcept;
  bool held() const noexcept { return shaping_->max_connections == 0; }
  bool sending_stopped() const noexcept { return held() || operator_paused_; }
  // One token of the message / connection rate, if one is there.
  bool try_message(TimePoint now) noexcept { return !msg_rate_ || msg_rate_->try_take(now); }
  bool try_connection(TimePoint now) noexcept { return !conn_rate_ || conn_rate_->try_take(now); }

  // One throttling episode: back off (once; ignored while already paused).
  void throttle(TimePoint now) noexcept;
  void on_delivered() noexcept { backoff_.on_delivered(); }

  void pause() noexcept { operator_paused_ = true; }
  void resume() noexcept { operator_paused_ = false; }
  bool paused() const noexcept { return operator_paused_; }
  // Neither paused by the operator nor in a back-off pause: nothing to remember (a ramp
  // back up after a pause means nothing once the destination has been idle a while).
  bool at_rest(TimePoint now) noexcept {
    return !operator_paused_ && backoff_.state(now) != queue::Backoff::State::Paused;
  }
  // "paused", "held", "backoff", "recovering", or "" (normal: the caller says active/idle).
  std::string_view state(TimePoint now) noexcept;

 private:
  void set_rates();

  const config::Shaping* shaping_;
  std::optional<queue::TokenBucket> msg_rate_;
  std::optional<queue::TokenBucket> conn_rate_;
  queue::Backoff backoff_;
  bool operator_paused_ = false;
};

}  // namespace salvo::outbound
