// SPDX-License-Identifier: Apache-2.0
// MessageMatrix<Msg>: typed cross-shard messages over an N x N matrix of SpscRings, one
// per ordered pair of shards (docs/architecture.md §4). Msg is a value type, typically a
// std::variant of small structs declared by the module that owns the protocol.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include <salvo/base/assert.h>
#include <salvo/io/engine.h>
#include <salvo/shard/shard.h>
#include <salvo/shard/spsc_ring.h>

namespace salvo::shard {

// Lifecycle: construct on the main thread after the ShardSet and before start(); destroy
// after join(). It registers one Poller per shard, which on every loop iteration
//   1. drains the inbound rings in batches and calls the handler for each message,
//   2. retries messages parked in the local overflow lists (ring was full),
//   3. sends at most one wake per target shard that got messages and may be asleep.
// send() never blocks and never drops: a full ring parks the message in the sender's
// overflow list for that target (order kept; counted in Stats::mailbox_overflows).
//
// Lost-wakeup freedom: a receiver about to block (Poller::prepare_to_sleep) sets its
// `sleeping` flag, fences, and re-checks its rings; a sender fences after publishing and wakes only targets whose flag
// is set. One of the two always sees the other (Dekker with seq_cst fences).
//
// Owner: each shard uses its own row (sending) and column (receiving) from its thread.
template <class Msg>
class MessageMatrix {
 public:
  // Runs on the destination shard's thread, once per message.
  using Handler = std::function<void(ShardId from, Msg&& msg)>;

  // capacity: slots per ordered pair (rounded up to a power of two); 0 = the set's
  // ShardSetOptions::mailbox_capacity.
  MessageMatrix(ShardSet& set, Handler handler, std::uint32_t capacity = 0)
      : n_(set.size()) {
    if (capacity == 0) capacity = set.mailbox_capacity();
    rings_.reserve(static_cast<std::size_t>(n_) * n_);
    for (std::size_t i = 0; i < static_cast<std::size_t>(n_) * n_; ++i) {
      rings_.push_back(std::make_unique<SpscRing<Msg>>(capacity));
    }
    for (std::uint32_t i = 0; i < n_; ++i) {
      Shard& s = set.shard(ShardId(i));
      endpoints_.push_back(std::make_unique<Endpoint>(this, &s, i, handler));
      targets_.push_back(s.engine().wake_target());
    }
    for (auto& e : endpoints_) e->shard->add_poller(e.get());
  }
  ~MessageMatrix() {
    for (auto& e : endpoints_) e->shard->remove_poller(e.get());
  }
  MessageMatrix(const MessageMatrix&) = delete;
  MessageMatrix& operator=(const MessageMatrix&) = delete;

  // Replaces shard `to`'s handler; before start() or on that shard's thread.
  void set_handler(ShardId to, Handler handler) {
    endpoints_[to.value()]->handler = std::move(handler);
  }

  // Called on shard `from`'s thread. The receiver is woken by the next poll of `from`,
  // i.e. before `from` goes to sleep (at most one wake per target per iteration).
  void send(ShardId from, ShardId to, Msg&& msg) {
    SALVO_ASSERT(this_shard() != nullptr && this_shard()->id() == from);
    SALVO_ASSERT(to.value() < n_);
    Endpoint& e = *endpoints_[from.value()];
    ++e.shard->stats().mailbox_sent;
    auto& parked = e.overflow[to.value()];
    if (parked.empty() && ring(from.value(), to.value()).try_push(msg)) {
      e.mark_wake(to.value());
      return;
    }
    ++e.shard->stats().mailbox_overflows;
    parked.push_back(std::move(msg));
    ++e.overflow_count;
  }
  void send(ShardId to, Msg&& msg) { send(this_shard()->id(), to, std::move(msg)); }

  // Messages parked because a ring was full, for the calling shard (tests, stats).
  std::size_t overflow_pending(ShardId from) const noexcept {
    return endpoints_[from.value()]->overflow_count;
  }

 private:
  static constexpr std::size_t kDrainBatch = 256;

  struct Endpoint final : Poller {
    Endpoint(MessageMatrix* m, Shard* s, std::uint32_t i, Handler h)
        : matrix(m), shard(s), id(i), handler(std::move(h)), overflow(m->n_),
          wake_pending(m->n_, 0) {}
    bool poll() noexcept override { return matrix->poll(*this); }
    bool prepare_to_sleep() noexcept override { return matrix->prepare_to_sleep(*this); }
    void mark_wake(std::uint32_t to) noexcept {
      if (to == id) return;  // self-sends are drained in this loop before any sleep
      if (wake_pending[to] == 0) {
        wake_pending[to] = 1;
        ++wakes_pending;
      }
    }

    MessageMatrix* matrix;
    Shard* shard;
    std::uint32_t id;
    Handler handler;
    std::vector<std::deque<Msg>> overflow;  // per target, sender side
    std::size_t overflow_count = 0;
    std::vector<std::uint8_t> wake_pending;  // per target, sender side
    std::uint32_t wakes_pending = 0;
    alignas(kCacheLine) std::atomic<bool> sleeping{false};  // written by this shard only
  };

  SpscRing<Msg>& ring(std::uint32_t from, std::uint32_t to) noexcept {
    return *rings_[static_cast<std::size_t>(from) * n_ + to];
  }

  bool drain_inbound(Endpoint& e) noexcept {
    std::size_t handled = 0;
    for (std::uint32_t from = 0; from < n_; ++from) {
      handled += ring(from, e.id).drain(
          [&](Msg&& m) { e.handler(ShardId(from), std::move(m)); }, kDrainBatch);
    }
    e.shard->stats().mailbox_received += handled;
    return handled != 0;
  }

  bool retry_overflow(Endpoint& e) noexcept {
    if (e.overflow_count == 0) return false;
    for (std::uint32_t to = 0; to < n_; ++to) {
      auto& parked = e.overflow[to];
      auto& r = ring(e.id, to);
      bool moved = false;
      while (!parked.empty() && r.try_push(parked.front())) {
        parked.pop_front();
        --e.overflow_count;
        moved = true;
      }
      if (moved) e.mark_wake(to);
    }
    return true;
  }

  void flush_wakes(Endpoint& e) noexcept {
    if (e.wakes_pending == 0) return;
    // Pairs with the receiver's fence in poll(): publish, then look at `sleeping`.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    for (std::uint32_t to = 0; to < n_ && e.wakes_pending != 0; ++to) {
      if (e.wake_pending[to] == 0) continue;
      e.wake_pending[to] = 0;
      --e.wakes_pending;
      if (endpoints_[to]->sleeping.load(std::memory_order_relaxed)) {
        e.shard->engine().wake(targets_[to]);
        ++e.shard->stats().mailbox_wakes_sent;
      } else {
        ++e.shard->stats().mailbox_wakes_skipped;
      }
    }
  }

  bool poll(Endpoint& e) noexcept {
    e.sleeping.store(false, std::memory_order_relaxed);
    bool busy = drain_inbound(e);
    // Parked messages keep the loop spinning (run_once(0)) until the receiver makes room.
    busy |= retry_overflow(e);
    flush_wakes(e);
    return busy;
  }

  // The receiver half of the Dekker pair: announce "asleep", fence, then look again.
  bool prepare_to_sleep(Endpoint& e) noexcept {
    e.sleeping.store(true, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    for (std::uint32_t from = 0; from < n_; ++from) {
      if (!ring(from, e.id).empty()) {
        e.sleeping.store(false, std::memory_order_relaxed);
        return false;
      }
    }
    return true;
  }

  std::uint32_t n_;
  std::vector<std::unique_ptr<SpscRing<Msg>>> rings_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  std::vector<io::WakeTarget> targets_;
};

}  // namespace salvo::shard
