// SPDX-License-Identifier: Apache-2.0
// RetrySchedule, TokenBucket, Backoff.
#include <salvo/queue/shaping.h>

#include <algorithm>
#include <cmath>

namespace salvo::queue {

RetrySchedule::RetrySchedule(std::vector<Duration> intervals, Duration expiry)
    : intervals_(std::move(intervals)), expiry_(expiry) {}

std::optional<WallTime> RetrySchedule::next_attempt(WallTime arrival, WallTime now,
                                                    std::uint32_t attempts) const noexcept {
  if (intervals_.empty()) return std::nullopt;  // no retries configured: expire now
  std::size_t i = attempts == 0 ? 0 : std::min<std::size_t>(attempts - 1, intervals_.size() - 1);
  WallTime next = now + std::chrono::duration_cast<WallTime::duration>(intervals_[i]);
  if (next >= arrival + std::chrono::duration_cast<WallTime::duration>(expiry_)) {
    return std::nullopt;
  }
  return next;
}

TokenBucket::TokenBucket(Rate rate, std::uint64_t burst) {
  double period_ns = static_cast<double>(std::max<std::int64_t>(rate.period.count(), 1));
  per_ns_ = static_cast<double>(rate.count) / period_ns;
  burst_ = static_cast<double>(burst != 0 ? burst : std::max<std::uint64_t>(rate.count, 1));
  tokens_ = burst_;
}

void TokenBucket::refill(TimePoint now) noexcept {
  if (!started_) {
    started_ = true;
    last_ = now;
    return;
  }
  if (now <= last_) return;
  double add = static_cast<double>((now - last_).count()) * per_ns_;
  tokens_ = std::min(burst_, tokens_ + add);
  last_ = now;
}

bool TokenBucket::try_take(TimePoint now) noexcept {
  refill(now);
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

TimePoint TokenBucket::next_token(TimePoint now) noexcept {
  refill(now);
  if (tokens_ >= 1.0 || per_ns_ <= 0) return now;
  auto wait = static_cast<std::int64_t>(std::ceil((1.0 - tokens_) / per_ns_));
  return now + Duration(wait);
}

double TokenBucket::tokens(TimePoint now) noexcept {
  refill(now);
  return tokens_;
}

Backoff::Backoff(std::uint32_t max_connections, BackoffOptions options)
    : max_(std::max<std::uint32_t>(max_connections, 1)), options_(options) {}

void Backoff::on_throttled(TimePoint now) noexcept {
  if (state_ == State::Normal) {
    pause_ = options_.first_pause;
  } else {
    pause_ = std::min(options_.max_pause, pause_ * 2);
  }
  state_ = State::Paused;
  paused_until_ = now + pause_;
  window_ = 1;
  good_ = 0;
}

void Backoff::on_delivered() noexcept {
  if (state_ != State::Recovering) return;
  if (++good_ < options_.reopen_after) return;
  good_ = 0;
  if (++window_ >= max_) {
    state_ = State::Normal;
    pause_ = Duration{};
  }
}

Backoff::State Backoff::state(TimePoint now) noexcept {
  if (state_ == State::Paused && now >= paused_until_) state_ = State::Recovering;
  return state_;
}

std::uint32_t Backoff::allowed_connections(TimePoint now) noexcept {
  switch (state(now)) {
    case State::Normal: return max_;
    case State::Paused: return 0;
    case State::Recovering: return std::min(window_, max_);
  }
  return max_;
}

void Backoff::set_max_connections(std::uint32_t n) noexcept {
  max_ = std::max<std::uint32_t>(n, 1);
  if (state_ == State::Recovering && window_ >= max_) {
    state_ = State::Normal;
    pause_ = Duration{};
  }
}

}  // namespace salvo::queue
