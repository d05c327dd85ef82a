// SPDX-License-Identifier: Apache-2.0
// ShardImpl: the one Shard implementation, private to the shard module. Owner: its own
// thread from ShardSet::start() until the thread exits; the main thread before and after.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include <salvo/io/engine.h>
#include <salvo/shard/shard.h>

namespace salvo::shard {

namespace detail {
// Sets what this_shard() returns on the calling thread (the shard thread's entry).
void set_this_shard(Shard* s) noexcept;
}  // namespace detail

class ShardImpl final : public Shard {
 public:
  ShardImpl(ShardId id, std::uint32_t count, const std::atomic<bool>* stop_requested,
            Duration idle_poll);
  ~ShardImpl() override;

  // Creates the engine; on failure *why says why in one line.
  bool init_engine(const std::string& backend, unsigned queue_depth, std::string* why);

  ShardId id() const noexcept override { return id_; }
  std::uint32_t count() const noexcept override { return count_; }
  io::Engine& engine() noexcept override { return *engine_; }
  const Clock& clock() const noexcept override { return clock_; }
  void defer(std::function<void()> fn) override;
  void add_poller(Poller* p) override;
  void remove_poller(Poller* p) override;
  void on_stop(std::function<void()> fn) override;
  void hold() noexcept override { ++holds_; }
  void release() noexcept override;
  bool stopping() const noexcept override;
  Stats& stats() noexcept override { return stats_; }

  // The loop; returns once a stop was requested, the hooks ran and no hold remains.
  void run() noexcept;

 private:
  class WakeCounter final : public io::Completion {
   public:
    explicit WakeCounter(Stats* stats) : stats_(stats) {}
    void on_complete(std::int32_t, std::uint32_t) noexcept override { ++stats_->wakeups; }

   private:
    Stats* stats_;
  };

  bool run_deferred() noexcept;
  bool run_pollers() noexcept;
  bool pollers_allow_sleep() noexcept;
  void begin_stop() noexcept;

  ShardId id_;
  std::uint32_t count_;
  const std::atomic<bool>* stop_requested_;
  Duration idle_poll_;
  SystemClock clock_;
  Stats stats_;
  WakeCounter wake_counter_{&stats_};
  std::unique_ptr<io::Engine> engine_;
  std::vector<std::function<void()>> deferred_;
  std::vector<std::function<void()>> running_;
  std::vector<Poller*> pollers_;
  bool pollers_dirty_ = false;  // a poller was removed during a poll pass
  std::vector<std::function<void()>> stop_hooks_;
  bool stop_begun_ = false;
  std::uint64_t holds_ = 0;
};

}  // namespace salvo::shard
