// SPDX-License-Identifier: Apache-2.0
// IntakeBudget (see intake_budget.h): the cap check and the wake-ups.
#include <salvo/inbound/intake_budget.h>

#include <algorithm>
#include <utility>

namespace salvo::inbound {

IntakeBudget::IntakeBudget(std::uint64_t limit, std::function<std::uint64_t()> committing)
    : limit_(limit), committing_(std::move(committing)) {}

bool IntakeBudget::over() const noexcept {
  if (limit_ == 0) return false;
  const std::int64_t used = held_ + static_cast<std::int64_t>(committing_());
  return used >= static_cast<std::int64_t>(limit_);
}

void IntakeBudget::wait(Waiter* w) {
  if (std::find(waiters_.begin(), waiters_.end(), w) != waiters_.end()) return;
  waiters_.push_back(w);
  ++pauses_;
}

void IntakeBudget::cancel(Waiter* w) noexcept {
  if (forced_ == w) forced_ = nullptr;
  auto it = std::find(waiters_.begin(), waiters_.end(), w);
  if (it != waiters_.end()) waiters_.erase(it);
}

// Every loop turn (commits complete as io completions on this shard, and a loop turn
// follows each): wake the oldest waiter when there is room. One per turn: a woken session
// consumes its buffered input (up to the net layer's paused-input limit) in this turn's
// io, so the next check sees what it took; waking all at once would let every one of
// them overshoot the cap.
bool IntakeBudget::poll() noexcept {
  if (waiters_.empty()) return false;
  if (over()) {
    // Spent on partial bodies with nothing committing: only finishing a message frees
    // room. Let the oldest through alone.
    if (forced_ != nullptr || committing_() != 0) return false;
    forced_ = waiters_.front();
  }
  Waiter* w = waiters_.front();
  waiters_.pop_front();
  w->on_budget();
  return true;
}

void IntakeBudget::add(std::int64_t delta) noexcept {
  held_ += delta;
  const std::int64_t used = held_ + static_cast<std::int64_t>(committing_());
  if (used > peak_) peak_ = used;
}

}  // namespace salvo::inbound
