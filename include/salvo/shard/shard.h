// SPDX-License-Identifier: Apache-2.0
// Shard: the loop on one core (one thread, pinned, one io::Engine). ShardSet starts, pins
// and stops them. Everything a shard owns is used on its thread only (docs/architecture.md §2).
//
//   main thread            shard 0 thread          shard 1 thread
//   ShardSet::start ---->  init(shard) ; loop      init(shard) ; loop
//   request_stop()  ---->  stop hooks, drain, exit stop hooks, drain, exit
//   join()          <----
//
// The loop: run deferred tasks, drain cross-shard inboxes (pollers), then
// engine.run_once(wait) — waiting only when there is nothing else to do.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <salvo/base/clock.h>
#include <salvo/base/strong_id.h>
#include <salvo/shard/stats.h>

namespace salvo::io {
class Engine;
}

namespace salvo::shard {

// Something a shard calls on every loop iteration (inbox drains). poll() returns true when
// it did work (the loop then does not sleep). A poller that sends cross-shard messages or
// defers tasks must return true in that iteration, so that nothing it queued waits behind
// a sleeping run_once().
class Poller {
 public:
  virtual bool poll() noexcept = 0;
  // Called when the loop is about to block in run_once(); return false when work arrived
  // meanwhile (the loop then does not block). Producers that skip wake-ups while their
  // consumer is awake publish "asleep" here (see MessageMatrix).
  virtual bool prepare_to_sleep() noexcept { return true; }

 protected:
  ~Poller() = default;
};

class Shard {
 public:
  virtual ~Shard() = default;
  virtual ShardId id() const noexcept = 0;
  virtual std::uint32_t count() const noexcept = 0;  // shards in the set
  virtual io::Engine& engine() noexcept = 0;
  virtual const Clock& clock() const noexcept = 0;

  // Runs fn on this shard's loop after the current callback returns (same thread only).
  virtual void defer(std::function<void()> fn) = 0;
  virtual void add_poller(Poller* p) = 0;
  virtual void remove_poller(Poller* p) = 0;
  // Called once on this thread when a stop is requested (close listeners, drain).
  virtual void on_stop(std::function<void()> fn) = 0;
  // After stop: the loop exits once the hooks ran and hold() counts are released.
  virtual void hold() noexcept = 0;
  virtual void release() noexcept = 0;
  virtual bool stopping() const noexcept = 0;
  // This shard's counters; read and written on this thread (or after join()).
  virtual Stats& stats() noexcept = 0;
};

// The shard running on the calling thread; null outside shard threads.
Shard* this_shard() noexcept;

struct ShardSetOptions {
  unsigned count = 0;              // 0 = one per CPU
  bool pin = true;                 // pin shard i to CPU i % ncpu
  std::string engine = "uring";    // io::create_engine backend name
  unsigned queue_depth = 4096;
  unsigned mailbox_capacity = 1024;  // per ordered pair of shards
  // After its last piece of work a shard keeps polling (run_once without waiting) this
  // long before it blocks: cross-shard round trips then skip the wake-up (Seastar's
  // idle-poll-time). 0 = block as soon as idle.
  Duration idle_poll = std::chrono::microseconds(20);
};

class ShardSet {
 public:
  // Creates every shard's engine up front; throws std::runtime_error with a one-line
  // reason (for example "io_uring unavailable: ...") so main can print it and exit 2.
  explicit ShardSet(const ShardSetOptions& options);
  ~ShardSet();
  ShardSet(const ShardSet&) = delete;
  ShardSet& operator=(const ShardSet&) = delete;

  std::uint32_t size() const noexcept;
  // ShardSetOptions::mailbox_capacity: the default ring size of a MessageMatrix.
  std::uint32_t mailbox_capacity() const noexcept;
  // Starts the threads; init runs first on each shard's own thread.
  void start(std::function<void(Shard&)> init);
  // Thread-safe and async-signal-tolerant (sets a flag, wakes the shards).
  void request_stop() noexcept;
  // Waits for every shard thread to exit. Objects owned by shards may be read afterwards.
  void join();
  Shard& shard(ShardId id) noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace salvo::shard
