// SPDX-License-Identifier: Apache-2.0
// DestinationQueue: ready FIFO (with out-of-order takes for same-message batching) and a
// deferred min-heap.
#include <salvo/queue/destination_queue.h>

#include <algorithm>

namespace salvo::queue {

namespace {
// How far past the head take_transaction looks for more recipients of the same message:
// recipients of one message arrive together, so a short window finds them without making
// a transaction O(queue length).
constexpr std::size_t kBatchWindow = 1024;
}  // namespace

DestinationQueue::Slot::Slot(const QueuedRecipient& q) noexcept
    : message(q.message),
      recipient(q.recipient),
      attempts(std::min<std::uint32_t>(q.attempts, (1u << 31) - 1)) {}

QueuedRecipient DestinationQueue::Slot::get() const noexcept {
  QueuedRecipient q;
  q.message = message;
  q.recipient = recipient;
  q.attempts = attempts;
  return q;
}

void DestinationQueue::push_ready(QueuedRecipient r) {
  ready_.emplace_back(r);
  ++ready_count_;
}

void DestinationQueue::push_deferred(QueuedRecipient r) { deferred_.push(r); }

std::size_t DestinationQueue::promote(WallTime now) {
  std::size_t n = 0;
  while (!deferred_.empty() && deferred_.top().next_attempt <= now) {
    push_ready(deferred_.top());
    deferred_.pop();
    ++n;
  }
  return n;
}

WallTime DestinationQueue::next_due() const noexcept {
  return deferred_.empty() ? WallTime::max() : deferred_.top().next_attempt;
}

void DestinationQueue::compact_front() noexcept {
  while (!ready_.empty() && ready_.front().taken) ready_.pop_front();
}

std::optional<QueuedRecipient> DestinationQueue::peek_ready() noexcept {
  compact_front();
  if (ready_.empty()) return std::nullopt;
  return ready_.front().get();
}

std::vector<QueuedRecipient> DestinationQueue::take_transaction(std::size_t max_recipients) {
  std::vector<QueuedRecipient> out;
  compact_front();
  if (ready_.empty() || max_recipients == 0) return out;
  Slot& head = ready_.front();
  out.push_back(head.get());
  head.taken = true;
  --ready_count_;
  const std::uint64_t message = head.message;
  std::size_t limit = std::min(ready_.size(), kBatchWindow);
  for (std::size_t i = 1; i < limit && out.size() < max_recipients; ++i) {
    Slot& s = ready_[i];
    if (s.taken || s.message != message) continue;
    out.push_back(s.get());
    s.taken = true;
    --ready_count_;
  }
  compact_front();
  return out;
}

std::vector<QueuedRecipient> DestinationQueue::extract(std::uint64_t message) {
  std::vector<QueuedRecipient> out;
  for (Slot& s : ready_) {
    if (s.taken || s.message != message) continue;
    out.push_back(s.get());
    s.taken = true;
    --ready_count_;
  }
  compact_front();
  std::vector<QueuedRecipient> keep;
  while (!deferred_.empty()) {
    const QueuedRecipient& r = deferred_.top();
    if (r.message == message) {
      out.push_back(r);
    } else {
      keep.push_back(r);
    }
    deferred_.pop();
  }
  for (auto& r : keep) deferred_.push(r);
  return out;
}

std::size_t DestinationQueue::flush_deferred() {
  std::size_t n = 0;
  while (!deferred_.empty()) {
    push_ready(deferred_.top());
    deferred_.pop();
    ++n;
  }
  return n;
}

std::vector<QueuedRecipient> DestinationQueue::take_all() {
  std::vector<QueuedRecipient> out;
  out.reserve(size());
  for (const Slot& s : ready_) {
    if (!s.taken) out.push_back(s.get());
  }
  ready_.clear();
  ready_count_ = 0;
  while (!deferred_.empty()) {
    out.push_back(deferred_.top());
    deferred_.pop();
  }
  return out;
}

}  // namespace salvo::queue
