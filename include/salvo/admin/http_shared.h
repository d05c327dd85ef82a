// SPDX-License-Identifier: Apache-2.0
// What every shard's admin HTTP server shares: the address, the access checks, the TLS
// context ([http] tls) and the node's budget for request bodies being buffered ([http]
// max_pending_body_bytes). Built once before the shards start; outlives them.
#pragma once

#include <atomic>
#include <cstdint>
#include <utility>

#include <salvo/net/socket_address.h>

namespace salvo::net {
class TlsContext;
}

namespace salvo::admin {

class HttpAccess;

// The bytes of request bodies that the HTTP servers of every shard hold together, capped
// at a limit: one atomic count, as inbound::ConnectionBudget counts connections. Thread-safe.
class BodyBudget {
 public:
  explicit BodyBudget(std::uint64_t limit) : limit_(limit) {}
  BodyBudget(const BodyBudget&) = delete;
  BodyBudget& operator=(const BodyBudget&) = delete;

  // True (and counted) when n more bytes fit under the limit.
  [[nodiscard]] bool try_reserve(std::uint64_t n) noexcept {
    std::uint64_t used = used_.load(std::memory_order_relaxed);
    do {
      if (n > limit_ - used) return false;
    } while (!used_.compare_exchange_weak(used, used + n, std::memory_order_relaxed));
    return true;
  }
  // Gives back bytes of a successful try_reserve.
  void release(std::uint64_t n) noexcept { used_.fetch_sub(n, std::memory_order_relaxed); }
  std::uint64_t used() const noexcept { return used_.load(std::memory_order_relaxed); }
  std::uint64_t limit() const noexcept { return limit_; }

  // Bytes reserved for one request's body, given back when the lease is reset or
  // destroyed. A move hands the bytes over (the lease travels with the body it covers);
  // the moved-from lease keeps its budget, empty. Owned by one shard at a time.
  class Lease {
   public:
    Lease() = default;
    explicit Lease(BodyBudget& budget) : budget_(&budget) {}
    ~Lease() { reset(); }
    Lease(Lease&& o) noexcept : budget_(o.budget_), bytes_(std::exchange(o.bytes_, 0)) {}
    Lease& operator=(Lease&& o) noexcept {
      if (this != &o) {
        reset();
        budget_ = o.budget_;
        bytes_ = std::exchange(o.bytes_, 0);
      }
      return *this;
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

    // n more bytes; false (nothing more reserved) when they do not fit, or without a budget.
    [[nodiscard]] bool grow(std::uint64_t n) noexcept {
      if (budget_ == nullptr || !budget_->try_reserve(n)) return false;
      bytes_ += n;
      return true;
    }
    // Gives every byte back; the lease stays bound to its budget.
    void reset() noexcept {
      if (budget_ != nullptr && bytes_ != 0) budget_->release(bytes_);
      bytes_ = 0;
    }
    std::uint64_t bytes() const noexcept { return bytes_; }

   private:
    BodyBudget* budget_ = nullptr;
    std::uint64_t bytes_ = 0;
  };

 private:
  const std::uint64_t limit_;
  std::atomic<std::uint64_t> used_{0};
};

// [http] as every shard's server uses it. The pointers are never null (tls: only with
// [http] tls = true).
struct HttpShared {
  net::SocketAddress address;            // port fixed
  const HttpAccess* access = nullptr;    // tokens, Host/Origin/Content-Type checks
  const net::TlsContext* tls = nullptr;  // HTTPS from the first byte; null = plain HTTP
  BodyBudget* bodies = nullptr;          // max_pending_body_bytes
};

}  // namespace salvo::admin
