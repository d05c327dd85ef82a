// SPDX-License-Identifier: Apache-2.0
// IntakeBudget: one shard's share of [node] max_pending_bytes, the message text SMTP intake
// may hold in memory: bodies its sessions are receiving, plus what its spool writer holds
// appended and not yet durable. Beyond it sessions stop reading (the clients wait in TCP,
// not in salvod's heap) until commits make room: a stalled disk cannot turn many busy
// clients into an out-of-memory kill.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>

#include <salvo/shard/shard.h>

namespace salvo::inbound {

// Owner: the shard runtime (one per shard, shared by that shard's listeners, registered as
// the shard's poller); used on the shard's thread only. The share is exact per shard
// (limit / shards) rather than one node-wide count, so the bytes a commit frees and the
// sessions that wait for them are on the same thread: no cross-shard wake-up.
//
// Waiters wake one per loop turn, oldest first, while there is room; a woken session
// reads what it had buffered before the next check, so the cap is overshot by at most one
// session's buffered input. Not counted: input a paused connection holds (up to the net
// layer's paused_input_limit, 1 MiB, per connection) and the retained receive buffers.
//
// Liveness: when the budget is spent on bodies still being received and nothing is being
// committed (nothing will free bytes), the oldest waiter is let through alone to finish its
// message (overshoot: at most one message per shard); its commit then makes room.
class IntakeBudget final : public shard::Poller {
 public:
  class Waiter {
   public:
    // Reading may resume (the waiter is no longer queued).
    virtual void on_budget() noexcept = 0;

   protected:
    ~Waiter() = default;
  };

  // limit 0: no cap (over() is never true). committing: the bytes the spool writer holds
  // appended and not yet durable (SpoolWriter::buffered_bytes).
  IntakeBudget(std::uint64_t limit, std::function<std::uint64_t()> committing);
  IntakeBudget(const IntakeBudget&) = delete;
  IntakeBudget& operator=(const IntakeBudget&) = delete;

  // Sessions report the body bytes they hold (a change: + while receiving, - when the
  // message went to the writer or was dropped).
  void add(std::int64_t delta) noexcept;
  bool over() const noexcept;
  // May `w` go on reading now? False: it should pause and wait(w).
  bool may_read(const Waiter* w) const noexcept { return w == forced_ || !over(); }
  void wait(Waiter* w);
  // The waiter is gone or no longer needs room (closed; finished its message).
  void cancel(Waiter* w) noexcept;

  std::uint64_t limit() const noexcept { return limit_; }
  std::int64_t held() const noexcept { return held_; }
  std::uint64_t pauses() const noexcept { return pauses_; }
  // The most ever held (bodies + committing), as seen when sessions reported.
  std::int64_t peak() const noexcept { return peak_; }
  std::size_t waiting() const noexcept { return waiters_.size(); }

  bool poll() noexcept override;

 private:
  std::uint64_t limit_;
  std::function<std::uint64_t()> committing_;
  std::int64_t held_ = 0;
  std::deque<Waiter*> waiters_;
  const Waiter* forced_ = nullptr;  // let through past the budget to finish its message
  std::uint64_t pauses_ = 0;
  std::int64_t peak_ = 0;
};

}  // namespace salvo::inbound
