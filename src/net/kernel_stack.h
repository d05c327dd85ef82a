// SPDX-License-Identifier: Apache-2.0
// KernelStack: net::Stack over io::Engine and the kernel's TCP. Owns the
// listeners, the connections and the pending connects of one shard, one provided-buffer
// ring shared by every connection's multishot receive, and a ready list of deferred work.
#pragma once

#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include <salvo/io/engine.h>
#include <salvo/net/stack.h>

#include "net/op.h"

namespace salvo::net {

class KernelConnection;
class KernelListener;
class PendingConnect;

// Owner: one shard; every method runs on that shard's thread. Destroy it before its engine
// and outside engine callbacks. On the thread that created it, the destructor cancels
// everything and runs the engine until the last completion arrived (bounded, 2 s; what is
// still in flight then is leaked rather than freed). On another thread (after the shard's
// loop ended) it frees everything without touching the engine. No handler is called.
class KernelStack final : public Stack {
 public:
  KernelStack(io::Engine& engine, const KernelStackOptions& options);
  ~KernelStack() override;

  [[nodiscard]] Result<Listener*> listen(const SocketAddress& addr, ReusePort reuse,
                                         AcceptHandler& handler) override;
  void connect(const SocketAddress& to, const SocketAddress* from, Duration timeout,
               ConnectHandler& handler) noexcept override;
  std::size_t connection_count() const noexcept override {
    return connections_.size() - parked_;
  }
  void close_all() noexcept override;
  void abort_all() noexcept override;
  Stats stats() const noexcept override { return stats_; }
  Stats& counters() noexcept { return stats_; }

  // For the parts (connections, listeners, connects).
  io::Engine& engine() noexcept { return engine_; }
  io::BufferRing* buffer_ring() noexcept { return ring_; }
  const KernelStackOptions& options() const noexcept { return options_; }
  bool destroying() const noexcept { return destroying_; }
  TimePoint now() const noexcept { return clock_->now(); }
  void op_started() noexcept { ++ops_; }
  void op_finished() noexcept { --ops_; }
  // Runs d->run_deferred() soon, from a completion of this stack's own timer.
  void schedule(Deferred* d) noexcept;
  // Wraps an accepted or connected socket; the stack owns the result.
  KernelConnection* adopt(int fd, const SocketAddress& peer) noexcept;
  // A closed connection (on_close delivered) that waits for send_zc notifications only:
  // no longer counted, freed by release() when they arrived.
  void park(KernelConnection* c) noexcept;
  // Frees a finished object (called from its own run_deferred only).
  void release(KernelConnection* c) noexcept;
  void release(PendingConnect* p) noexcept;

 private:
  void on_kick(std::int32_t res, std::uint32_t flags) noexcept;
  void free_all() noexcept;
  void ensure_ring() noexcept;
  void unqueue(Deferred* d) noexcept;

  io::Engine& engine_;
  KernelStackOptions options_;
  SystemClock system_clock_;
  const Clock* clock_;
  io::BufferRing* ring_ = nullptr;  // null: per-connection single-shot recv fallback
  bool ring_tried_ = false;
  std::vector<std::unique_ptr<KernelListener>> listeners_;
  std::vector<KernelConnection*> connections_;  // owned; index kept in the connection
  std::vector<PendingConnect*> connects_;       // owned
  std::vector<Deferred*> ready_;
  std::vector<Deferred*> running_;
  Op<KernelStack> kick_;
  std::thread::id owner_thread_;
  bool kick_armed_ = false;
  bool destroying_ = false;
  std::size_t ops_ = 0;  // completions still owed by the engine, over all objects
  std::size_t parked_ = 0;  // connections in connections_ that only wait to be freed
  std::uint64_t next_id_ = 1;
  Stats stats_;
};

}  // namespace salvo::net
