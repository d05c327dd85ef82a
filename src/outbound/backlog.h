// SPDX-License-Identifier: Apache-2.0
// Backlog: what one destination has waiting — the recipients (queue::DestinationQueue:
// ready FIFO + deferred heap) and, per message, where its records are (MsgInfo, shared by
// the message's recipients). It hands out transactions: up to N ready recipients of one
// message (one for a job: each recipient gets its own expansion).
//
// Memory: per queued message one 40-byte slot of an open-addressing table
// (id, received time, a PackedLocation, origin, refs); a job's template and batch locations
// sit in a second table only jobs use. MsgInfo, with its std::map of batches, is built for
// a transaction, never stored per message.
//
// Owner: the destination's shard. Growth: a later split by tenant or priority keeps this
// interface (add / take / release) and holds one DestinationQueue per class inside, taking
// from them by weight; callers do not change.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include <salvo/outbound/messages.h>
#include <salvo/queue/destination_queue.h>
#include <salvo/spool/packed_location.h>

#include "outbound/types.h"

namespace salvo::outbound {

// Recipients of one message taken together, and where that message's records are (for a
// job: only the batch that holds the first recipient).
struct Batch {
  std::vector<queue::QueuedRecipient> rcpts;
  MsgInfo info;
};

class Backlog {
 public:
  // A recipient arrives: due now, or deferred until e.next_attempt_unix_ns.
  void add(const Enqueue& e, WallTime now);
  // Deferred recipients now due become ready.
  void promote(WallTime now) { queue_.promote(now); }
  // The next transaction: the oldest ready recipient and up to max_recipients - 1 more of
  // the same message (1 for a job). Empty when nothing is ready.
  Batch take(std::size_t max_recipients);
  // The message of the recipient take() would start with (without a job's batches); nullopt
  // when nothing is ready.
  std::optional<MsgInfo> peek() noexcept;
  // Recipients that were taken but never attempted go back, ready (no attempt used).
  void requeue(const std::vector<queue::QueuedRecipient>& rcpts);
  // A recipient after an attempt that leaves it queued here.
  void defer(const queue::QueuedRecipient& r) { queue_.push_deferred(r); }
  // A recipient reached a final state (or left this destination): its message's info is
  // freed with its last recipient.
  void release(std::uint64_t message);
  // Everything queued for `message` (salvoctl bounce --id), ready or deferred.
  std::vector<queue::QueuedRecipient> extract(std::uint64_t message) {
    return queue_.extract(message);
  }
  // Every deferred recipient is due now (salvoctl flush, bounce, rollup forwarding).
  std::size_t flush_deferred() { return queue_.flush_deferred(); }
  // Hands every queued recipient (deferred ones included) back as Enqueue messages, for
  // another destination (MX rollup); their infos are released here.
  std::vector<Enqueue> drain_to(std::string_view domain, std::string_view key, WallTime now);
  // Where a queued message's records are, for a job with the one batch that holds
  // `recipient`; nullopt when the message is unknown.
  std::optional<MsgInfo> info(std::uint64_t message, std::uint32_t recipient) const;

  std::size_t ready() const noexcept { return queue_.ready(); }
  std::size_t deferred() const noexcept { return queue_.deferred(); }
  bool empty() const noexcept { return queue_.empty(); }
  WallTime next_due() const noexcept { return queue_.next_due(); }
  std::size_t messages() const noexcept { return msgs_.size(); }

 private:
  // What is kept per queued message: 32 bytes, 40 with its key in the table.
  struct Held {
    std::int64_t received_unix_ns = 0;
    spool::PackedLocation record;  // messages (a job's locations are in jobs_)
    std::uint32_t origin : 31 = 0;
    std::uint32_t is_job : 1 = 0;
    std::uint32_t refs = 0;  // recipients of this message queued or in flight here
  };
  static_assert(sizeof(Held) == 32);
  struct JobLocations {
    spool::Location job_template;
    std::map<std::uint32_t, spool::Location> batches;  // first index -> batch record
  };
  MsgInfo expand(std::uint64_t message, const Held& h) const;

  queue::DestinationQueue queue_;
  absl::flat_hash_map<std::uint64_t, Held> msgs_;
  absl::flat_hash_map<std::uint64_t, JobLocations> jobs_;
};

}  // namespace salvo::outbound
