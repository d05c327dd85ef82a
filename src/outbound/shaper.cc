// SPDX-License-Identifier: Apache-2.0
// Shaper: limits, rates, back-off and pause of one destination.
#include "outbound/shaper.h"

#include <algorithm>

namespace salvo::outbound {
namespace {

queue::BackoffOptions backoff_options(Duration pause) {
  queue::BackoffOptions o;
  o.first_pause = pause;
  o.max_pause = std::max<Duration>(pause * 30, pause);
  return o;
}

// A tenth of a second's worth of tokens (at least one): a rate limit must hold over any
// second, so the bucket may not hold a whole period's worth ("20000/h" is not 20000 at once).
std::uint64_t burst_of(const Rate& r) {
  const double per_tenth = r.per_second() / 10.0;
  return per_tenth < 1.0 ? 1 : static_cast<std::uint64_t>(per_tenth);
}

std::uint32_t window_of(const config::Shaping& s) { return std::max<std::uint32_t>(s.max_connections, 1); }

}  // namespace

Shaper::Shaper(const config::Shaping& shaping, Duration backoff_pause)
    : shaping_(&shaping), backoff_(window_of(shaping), backoff_options(backoff_pause)) {
  set_rates();
}

void Shaper::reconfigure(const config::Shaping& shaping, Duration backoff_pause) {
  shaping_ = &shaping;
  backoff_.set_max_connections(window_of(shaping));
  backoff_.set_options(backoff_options(backoff_pause));
  set_rates();
}

void Shaper::set_rates() {
  msg_rate_.reset();
  conn_rate_.reset();
  if (const auto& r = shaping_->max_message_rate) msg_rate_.emplace(*r, burst_of(*r));
  if (const auto& r = shaping_->max_connection_rate) conn_rate_.emplace(*r, burst_of(*r));
}

std::uint32_t Shaper::allowed_connections(TimePoint now) noexcept {
  if (sending_stopped()) return 0;
  return std::min(shaping_->max_connections, backoff_.allowed_connections(now));
}

void Shaper::throttle(TimePoint now) noexcept {
  if (now < backoff_.paused_until()) return;  // the same episode
  backoff_.on_throttled(now);
}

std::string_view Shaper::state(TimePoint now) noexcept {
  if (operator_paused_) return "paused";
  if (held()) return "held";
  switch (backoff_.state(now)) {
    case queue::Backoff::State::Paused: return "backoff";
    case queue::Backoff::State::Recovering: return "recovering";
    case queue::Backoff::State::Normal: break;
  }
  return "";
}

}  // namespace salvo::outbound
