// SPDX-License-Identifier: Apache-2.0
// DestinationQueue: the recipients waiting for one destination on its owner shard: a FIFO
// of recipients due now and a min-heap of deferred ones keyed by their next attempt time.
// Entries are small (16 bytes ready, 24 deferred): the message stays in the spool.
// Transactions take up to N due recipients of the same message together (one MAIL, many
// RCPT). Pure: time is passed in. Owner: the destination's shard.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <queue>
#include <vector>

#include <salvo/base/clock.h>

namespace salvo::queue {

struct QueuedRecipient {
  std::uint64_t message = 0;    // spool MessageId (a message or a job)
  std::uint32_t recipient = 0;  // index within it
  std::uint32_t attempts = 0;   // failed attempts so far
  WallTime next_attempt{};      // deferred only
  bool operator==(const QueuedRecipient& o) const noexcept {
    return message == o.message && recipient == o.recipient;
  }
};

class DestinationQueue {
 public:
  // Due now.
  void push_ready(QueuedRecipient r);
  // Due at r.next_attempt.
  void push_deferred(QueuedRecipient r);
  // Moves every deferred recipient due at `now` to the ready FIFO (in due order); returns
  // how many moved.
  std::size_t promote(WallTime now);
  // The earliest deferred time, or WallTime::max() when none is deferred.
  WallTime next_due() const noexcept;
  // Takes the oldest ready recipient and up to max_recipients - 1 more ready recipients of
  // the same message (a transaction's RCPT list). Empty when nothing is ready.
  std::vector<QueuedRecipient> take_transaction(std::size_t max_recipients);
  // The recipient take_transaction would start with, or nullopt when nothing is ready.
  std::optional<QueuedRecipient> peek_ready() noexcept;
  // Flush (salvoctl flush): every deferred recipient becomes ready now (its due time is
  // dropped: a ready recipient has none).
  std::size_t flush_deferred();
  // Empties the queue: the ready recipients in order, then the deferred ones in due order
  // with their due times (an MX rollup takes them over).
  std::vector<QueuedRecipient> take_all();
  // Removes every queued recipient (ready or deferred) of `message` and returns them
  // (salvoctl bounce --id). O(queue length).
  std::vector<QueuedRecipient> extract(std::uint64_t message);

  std::size_t ready() const noexcept { return ready_count_; }
  std::size_t deferred() const noexcept { return deferred_.size(); }
  std::size_t size() const noexcept { return ready() + deferred(); }
  bool empty() const noexcept { return size() == 0; }

 private:
  struct Later {
    bool operator()(const QueuedRecipient& a, const QueuedRecipient& b) const noexcept {
      return a.next_attempt > b.next_attempt;
    }
  };
  // A ready recipient in 16 bytes (a QueuedRecipient and a flag would take 32): it is due,
  // so it needs no time.
  struct Slot {
    explicit Slot(const QueuedRecipient& q) noexcept;
    QueuedRecipient get() const noexcept;
    std::uint64_t message = 0;
    std::uint32_t recipient = 0;
    std::uint32_t attempts : 31 = 0;  // saturates (an attempt takes minutes)
    std::uint32_t taken : 1 = 0;      // taken out of order by take_transaction
  };
  static_assert(sizeof(Slot) == 16);
  void compact_front() noexcept;

  std::deque<Slot> ready_;
  std::size_t ready_count_ = 0;
  std::priority_queue<QueuedRecipient, std::vector<QueuedRecipient>, Later> deferred_;
};

}  // namespace salvo::queue
