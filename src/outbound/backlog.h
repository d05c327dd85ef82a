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
// Spilling (with a SpillPolicy whose store is set): RAM holds at most `in_memory` ready
// recipients and the deferred ones due within `horizon`. The rest go to the shard's
// SpillStore as self-contained entries, so a message whose recipients are all on disk costs
// no Held here:
//   ready:    [RAM FIFO] [ready chunks on disk, in order] [tail buffer]
//   deferred: [heap: due within the horizon] [later chunks on disk] [later buffer]
// A buffer is written as a chunk when it holds chunk() entries. promote() reads back: ready
// chunks (then the tail) while the RAM FIFO is under low_water(), keeping arrival order;
// later chunks once their earliest due time is within the horizon (their entries still
// further out go to the later buffer again). This state lives in a Spilled made by the
// first spill and freed once empty: a destination that never spills pays 16 bytes (two
// pointers). A message cancelled (bounce --id) while some of its recipients are on disk
// is remembered until no chunk is left; its recipients read back go to take_cancelled()
// instead of the queue.
//
// Owner: the destination's shard. Growth: a later split by tenant or priority keeps this
// interface (add / take / release) and holds one DestinationQueue per class inside, taking
// from them by weight; callers do not change.
#pragma once

#include <cstddef>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

#include <salvo/outbound/messages.h>
#include <salvo/queue/destination_queue.h>
#include <salvo/spool/packed_location.h>

#include "outbound/spill_store.h"
#include "outbound/types.h"

namespace salvo::outbound {

// Recipients of one message taken together, and where that message's records are (for a
// job: only the batch that holds the first recipient).
struct Batch {
  std::vector<queue::QueuedRecipient> rcpts;
  MsgInfo info;
};

// How a shard's destinations spill (DestinationSide's, changed by a reload). No store, or
// in_memory 0: everything stays in RAM.
struct SpillPolicy {
  SpillStore* store = nullptr;
  std::size_t in_memory = 10'000;  // [delivery] queue_in_memory
  Duration horizon = std::chrono::minutes(5);  // [delivery] queue_horizon
  bool on() const noexcept { return store != nullptr && in_memory != 0; }
  // Entries per chunk: a quarter of the RAM share, so a read-back never overshoots it.
  std::size_t chunk() const noexcept {
    return std::clamp<std::size_t>(in_memory / 4, 1, SpillStore::kMaxChunk);
  }
  // The RAM FIFO is refilled from disk when it holds fewer ready recipients than this.
  std::size_t low_water() const noexcept { return in_memory / 2; }
};

class Backlog {
 public:
  explicit Backlog(const SpillPolicy* spill = nullptr) : spill_(spill) {}
  Backlog(const Backlog&) = delete;
  Backlog& operator=(const Backlog&) = delete;
  ~Backlog();

  // A recipient arrives: due now, or deferred until e.next_attempt_unix_ns.
  void add(const Enqueue& e, WallTime now);
  // Deferred recipients now due become ready; spilled ones come back from disk (a bounded
  // number of chunks per call: promote_wanted() says when more are to read).
  void promote(WallTime now);
  // Whether promote(now) has spilled recipients to read back.
  bool promote_wanted(WallTime now) const noexcept;
  // Recipients of cancelled messages read back from disk since the last call.
  std::vector<queue::QueuedRecipient> take_cancelled();
  // The next transaction: the oldest ready recipient and up to max_recipients - 1 more of
  // the same message (1 for a job). Empty when nothing is ready.
  Batch take(std::size_t max_recipients);
  // The message of the recipient take() would start with (without a job's batches); nullopt
  // when nothing is ready.
  std::optional<MsgInfo> peek() noexcept;
  // Recipients that were taken but never attempted go back, ready (no attempt used).
  void requeue(const std::vector<queue::QueuedRecipient>& rcpts);
  // A recipient after an attempt that leaves it queued here (due after the horizon: on
  // disk, its message released here).
  void defer(const queue::QueuedRecipient& r, WallTime now);
  // A recipient reached a final state (or left this destination): its message's info is
  // freed with its last recipient.
  void release(std::uint64_t message);
  // Everything queued for `message` in RAM (salvoctl bounce --id), ready or deferred; its
  // recipients on disk come out of take_cancelled() as they are read back.
  std::vector<queue::QueuedRecipient> extract(std::uint64_t message);
  // Every deferred recipient is due now (salvoctl flush, bounce, rollup forwarding); spilled
  // ones join the ready chunks. Returns how many were deferred.
  std::size_t flush_deferred();
  // Hands every queued recipient in RAM (deferred ones included) back as Enqueue messages,
  // for another destination (MX rollup); their infos are released here. Chunks on disk stay
  // and go the same way as promote() reads them back.
  std::vector<Enqueue> drain_to(std::string_view domain, std::string_view key, WallTime now);
  // Where a queued message's records are, for a job with the one batch that holds
  // `recipient`; nullopt when the message is unknown.
  std::optional<MsgInfo> info(std::uint64_t message, std::uint32_t recipient) const;

  // Ready in the RAM FIFO: what take() can hand out now.
  std::size_t ready() const noexcept { return queue_.ready(); }
  // Deferred in RAM (due within the horizon).
  std::size_t deferred() const noexcept { return queue_.deferred(); }
  // Queued in all: in RAM, in buffers and on disk.
  std::size_t queued_ready() const noexcept {
    return queue_.ready() + (sp_ ? sp_->tail.size() + sp_->ready_on_disk : 0);
  }
  std::size_t queued_deferred() const noexcept {
    return queue_.deferred() + (sp_ ? sp_->later.size() + sp_->later_on_disk : 0);
  }
  std::size_t spilled() const noexcept {
    return sp_ ? sp_->ready_on_disk + sp_->later_on_disk : 0;
  }
  std::size_t chunks() const noexcept {
    return sp_ ? sp_->ready_chunks.size() + sp_->later_chunks.size() : 0;
  }
  bool empty() const noexcept { return queued_ready() == 0 && queued_deferred() == 0; }
  // When the earliest deferred recipient is due; one on disk or in the later buffer counts
  // from when it comes within the horizon (promote() then reads it back).
  WallTime next_due() const noexcept;
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
  // Holds e's message here and returns its queue entry (the common part of add and of a
  // read-back).
  queue::QueuedRecipient hold(const SpillEntry& e);
  // A queued recipient with its message's fields, to go to disk.
  std::optional<SpillEntry> entry_of(const queue::QueuedRecipient& q) const;
  Enqueue enqueue_of(const SpillEntry& e) const;
  void push_ready_entry(const SpillEntry& e);
  void push_later(const SpillEntry& e);
  // Queues e in RAM as due now (`ready`) or by its time, or hands it to take_cancelled().
  void bring_back(const SpillEntry& e, bool ready);
  // Writes a buffer as one chunk; on failure its entries stay in RAM.
  void spill_tail();
  void spill_later();
  void read_ready_chunk();
  // Reads back the deferred chunk due first if it is due by `edge`; false when none is.
  bool read_later_chunk(WallTime edge);
  void refresh_later_min() noexcept;

  // What a destination has spilled, made by its first spill and freed once nothing is left
  // (most destinations never spill: they pay one pointer).
  struct Spilled {
    std::deque<SpillChunk> ready_chunks;  // oldest first
    std::vector<SpillEntry> tail;         // ready, after the chunks
    std::size_t ready_on_disk = 0;
    std::vector<SpillChunk> later_chunks;
    std::vector<SpillEntry> later;  // deferred past the horizon, not written yet
    std::size_t later_on_disk = 0;
    WallTime later_min = WallTime::max();  // the earliest due in later_chunks and later
    absl::flat_hash_set<std::uint64_t> cancelled;  // messages cancelled with chunks on disk
    std::vector<queue::QueuedRecipient> cancelled_back;
    bool has_chunks() const noexcept { return !ready_chunks.empty() || !later_chunks.empty(); }
    bool empty() const noexcept {
      return !has_chunks() && tail.empty() && later.empty() && cancelled_back.empty();
    }
  };
  Spilled& spilled_state();

  const SpillPolicy* spill_;
  queue::DestinationQueue queue_;
  std::unique_ptr<Spilled> sp_;
  absl::flat_hash_map<std::uint64_t, Held> msgs_;
  absl::flat_hash_map<std::uint64_t, JobLocations> jobs_;
};

}  // namespace salvo::outbound
