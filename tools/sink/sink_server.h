// SPDX-License-Identifier: Apache-2.0
// SinkShard: salvo-sink's per-shard server. Each shard listens on every address
// (SO_REUSEPORT) and runs smtp::ServerSession over net::Connection, applying the
// listener's fault script. Counters are plain per-shard fields, merged by main after
// the shards have joined; the only node-wide state is the per-listener connection gauge
// (an atomic touched once per connection) that gives peak_connections.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <salvo/base/clock.h>
#include <salvo/base/result.h>
#include <salvo/net/stack.h>
#include <salvo/shard/shard.h>
#include <salvo/smtp/server_session.h>

#include "maildir.h"
#include "sink_options.h"

namespace salvo::sink {

// Node-wide open-connection gauge of one listener, and its peak.
struct ListenerGauge {
  std::atomic<std::uint32_t> open{0};
  std::atomic<std::uint32_t> peak{0};
  void opened() noexcept;
  void closed() noexcept { open.fetch_sub(1, std::memory_order_relaxed); }
};

// Per-shard, per-listener counters.
struct ListenerCounters {
  std::uint64_t connections = 0;
  std::uint64_t messages = 0;
  std::uint64_t recipients = 0;
  std::uint64_t bytes = 0;
  std::uint64_t deferred = 0;   // RCPT 451 by script
  std::uint64_t rejected = 0;   // RCPT 550 by script
  std::uint64_t dropped = 0;    // connection dropped before the end-of-data reply
  std::uint64_t throttled = 0;  // 421 after N messages
  std::uint64_t refused = 0;    // content refused by the protocol (bare LF, size, ...)
  std::uint64_t tls_sessions = 0;
  std::vector<std::uint32_t> per_second;  // messages accepted in second i since start

  void merge(const ListenerCounters& o);
  std::uint32_t peak_per_second() const noexcept;
};

// Running totals of one shard over all its listeners, for --progress-file: written only by
// the shard (relaxed load + store, no read-modify-write), read by main while shards run.
// `messages` is stored last with release, so a reader that loads it first with acquire sees
// recipients and bytes at least as far along.
struct ShardProgress {
  std::atomic<std::uint64_t> messages{0};
  std::atomic<std::uint64_t> recipients{0};
  std::atomic<std::uint64_t> bytes{0};

  void add(std::uint64_t rcpts, std::uint64_t size) noexcept {
    recipients.store(recipients.load(std::memory_order_relaxed) + rcpts,
                     std::memory_order_relaxed);
    bytes.store(bytes.load(std::memory_order_relaxed) + size, std::memory_order_relaxed);
    messages.store(messages.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }
};

// Deterministic fault selection: fires exactly floor(n * rate) times in n calls.
class RateAccumulator {
 public:
  bool hit(double rate) noexcept {
    if (rate <= 0) return false;
    acc_ += rate;
    if (acc_ >= 1.0 - 1e-9) {
      acc_ -= 1.0;
      return true;
    }
    return false;
  }

 private:
  double acc_ = 0;
};

struct SinkShared {
  const SinkOptions* options = nullptr;
  const net::TlsContext* tls = nullptr;  // null: no STARTTLS
  Maildir* maildir = nullptr;            // null: bodies are counted, not kept
  std::vector<ListenerGauge>* gauges = nullptr;
  TimePoint start;
  // Replies of at least this many bytes go out with send_zc (--zerocopy-threshold; 0 = off).
  // An explicit --zerocopy-threshold applies to clients on this host (loopback) too.
  std::size_t zerocopy_threshold = net::KernelStackOptions{}.zerocopy_threshold;
  bool zerocopy_to_local_peers = false;
};

class SinkConnection;

class SinkShard final : public net::AcceptHandler, public shard::Poller {
 public:
  struct Listener {
    const ListenerSpec* spec = nullptr;
    std::size_t index = 0;
    smtp::ServerConfig config;
    ListenerCounters counters;
    RateAccumulator defer_acc, reject_acc, drop_acc;
    net::Listener* net_listener = nullptr;
  };

  SinkShard(shard::Shard& shard, const SinkShared& shared);
  ~SinkShard() override;

  // Listens on every address. Start-up only; why names the address on failure.
  [[nodiscard]] Status start(std::string* why);
  // Graceful stop (on the shard's stop hook): stop accepting, close every connection, and
  // hold the shard until the last one has delivered its final completion.
  void begin_stop() noexcept;
  bool poll() noexcept override;
  std::size_t open_connections() const noexcept;

  const std::vector<std::unique_ptr<Listener>>& listeners() const noexcept { return listeners_; }
  smtp::ServerStats& session_stats() noexcept { return session_stats_; }
  ShardProgress& progress() noexcept { return progress_; }
  const ShardProgress& progress() const noexcept { return progress_; }
  shard::Shard& shard() noexcept { return shard_; }
  const SinkShared& shared() const noexcept { return shared_; }

  void on_accept(net::Listener& l, net::Connection& c) noexcept override;

 private:
  shard::Shard& shard_;
  const SinkShared& shared_;
  std::unique_ptr<net::Stack> stack_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  smtp::ServerStats session_stats_;
  ShardProgress progress_;
  bool draining_ = false;
};

}  // namespace salvo::sink
