// SPDX-License-Identifier: Apache-2.0
// Shard: the loop on one core (one thread, pinned, one io::Engine). ShardSet starts, pins
// and stops them. Everything a shard owns is used on its thread only (STYLE.md §4).
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

namespace salvo::io {
class Engine;
}

namespace salvo::shard {

using ShardId = StrongId<struct ShardTag, std::uint32_t>;

// Something a shard calls on every loop iteration (inbox drains). poll() returns true when
// it did work (the loop then does not sleep).
class Poller {
 public:
  virtual bool poll() noexcept = 0;

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
};

// The shard running on the calling thread; null outside shard threads.
Shard* this_shard() noexcept;

struct ShardSetOptions {
  unsigned count = 0;              // 0 = one per CPU
  bool pin = true;                 // pin shard i to CPU i % ncpu
  std::string engine = "uring";    // io::create_engine backend name
  unsigned queue_depth = 4096;
  unsigned mailbox_capacity = 1024;  // per ordered pair of shards
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
