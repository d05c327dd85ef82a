// SPDX-License-Identifier: Apache-2.0
// ClientLimiter: the node-wide count of open injection connections per client IPv4 address
// or IPv6 /64, for [[listen]] max_connections_per_ip (docs/reliability.md B18). Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include <salvo/config/cidr.h>

namespace salvo::inbound {

// What a per-client limit counts by: an IPv4 address, or an IPv6 /64 (one subscriber or host
// gets a whole /64, and walking its 2^64 addresses must not walk around the limit).
// IPv4-mapped addresses are IPv4 already. A short binary string.
std::string client_key(const config::IpAddress& ip);

// One per [[listen]] entry, shared by every shard's InjectionListener of that entry.
// Touched twice per connection (accept, close) under one of kStripes mutexes chosen by the
// address hash, so shards rarely contend; nothing on the per-command path. A node-wide
// count, not ceil(limit / shards): the kernel's SO_REUSEPORT hash would otherwise let one
// client reach the cap on one shard while others are idle.
class ClientLimiter {
 public:
  // limit 0 = unlimited.
  explicit ClientLimiter(std::uint32_t limit) : limit_(limit) {}
  ClientLimiter(const ClientLimiter&) = delete;
  ClientLimiter& operator=(const ClientLimiter&) = delete;

  // True (and counted) when `ip` has fewer than limit open connections.
  [[nodiscard]] bool try_acquire(const config::IpAddress& ip);
  // Undoes one successful try_acquire.
  void release(const config::IpAddress& ip);
  std::uint32_t open(const config::IpAddress& ip);
  std::uint32_t limit() const noexcept { return limit_; }

 private:
  static constexpr std::size_t kStripes = 16;
  struct Stripe {
    std::mutex mu;
    std::unordered_map<std::string, std::uint32_t> open;
  };
  Stripe& stripe_for(const std::string& key);

  std::uint32_t limit_;
  std::array<Stripe, kStripes> stripes_;
};

// The node-wide cap on open injection connections ([node] max_connections), shared by every
// listener of every shard: one atomic count. Thread-safe.
class ConnectionBudget {
 public:
  // limit 0 = unlimited (connections are still counted).
  explicit ConnectionBudget(std::uint32_t limit) : limit_(limit) {}
  ConnectionBudget(const ConnectionBudget&) = delete;
  ConnectionBudget& operator=(const ConnectionBudget&) = delete;

  // True (and counted) while fewer than limit connections are open.
  [[nodiscard]] bool try_acquire() noexcept {
    std::uint32_t n = open_.load(std::memory_order_relaxed);
    do {
      if (limit_ != 0 && n >= limit_) return false;
    } while (!open_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
    return true;
  }
  // Undoes one successful try_acquire.
  void release() noexcept { open_.fetch_sub(1, std::memory_order_relaxed); }
  std::uint32_t open() const noexcept { return open_.load(std::memory_order_relaxed); }
  std::uint32_t limit() const noexcept { return limit_; }

 private:
  const std::uint32_t limit_;
  std::atomic<std::uint32_t> open_{0};
};

}  // namespace salvo::inbound
