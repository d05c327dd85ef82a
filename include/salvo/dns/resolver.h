// SPDX-License-Identifier: Apache-2.0
// Resolver: an asynchronous stub resolver over io::Engine. UDP with random ids and a fresh
// connected socket (random source port) per try, TCP when the answer is truncated, per-try
// timeout, several servers tried in turn (RFC 1035 §4.2, RFC 5452, RFC 7766, RFC 6891).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <salvo/base/clock.h>
#include <salvo/base/result.h>
#include <salvo/dns/message.h>
#include <salvo/io/detachable_op.h>
#include <salvo/io/engine.h>
#include <salvo/net/socket_address.h>
#include <salvo/shard/owned_by.h>

namespace salvo::dns {

// The query seam: Resolver in production, a scripted fake in MxCache unit tests.
class Querier {
 public:
  // Called exactly once with the decoded answer (any rcode) or an error: errc::timeout,
  // errc::overloaded, errc::bad_name, errc::no_servers, errc::malformed, a system error
  // (ECONNREFUSED...). Never called from inside query() itself.
  using Callback = std::function<void(Result<Answer>)>;
  virtual void query(std::string_view name, RrType type, Callback cb) = 0;

 protected:
  ~Querier() = default;
};

struct ResolverOptions {
  std::vector<net::SocketAddress> servers;     // port 0 means 53
  Duration timeout = std::chrono::seconds(2);  // per try (one server, UDP or TCP)
  unsigned attempts = 2;                       // rounds over the server list (resolv.conf attempts)
  std::size_t max_in_flight = 128;             // queries on the wire at once
  std::size_t max_queued = 4096;               // beyond in-flight; more fail with errc::overloaded
  std::uint16_t edns_payload = kEdnsPayload;   // 0: no EDNS, plain 512-byte UDP answers
};

// Per-shard counters.
struct ResolverStats {
  std::uint64_t queries = 0;  // query() calls
  std::uint64_t udp_tries = 0;
  std::uint64_t tcp_tries = 0;       // after TC=1
  std::uint64_t timeouts = 0;        // tries that timed out
  std::uint64_t ignored = 0;         // datagrams dropped: wrong id/question, or undecodable
  std::uint64_t server_errors = 0;   // SERVFAIL/REFUSED/... answers (next server tried)
  std::uint64_t edns_fallbacks = 0;  // FORMERR with EDNS: retried without
  std::uint64_t overloaded = 0;
  ResolverStats& operator+=(const ResolverStats& o) noexcept;
};

// Owner: one shard; every call and callback on that shard's thread, callbacks only from
// engine completions. Lifecycle: construct, query() any number of times, stop() (pending
// queries are dropped without their callbacks), then keep running the engine until
// operations_pending() == 0 before destroying the engine. Destroying the Resolver with
// queries pending is allowed: their kernel operations are cancelled and clean up after
// themselves when the engine delivers the cancellations. Never destroy it from inside one
// of its own callbacks.
//
//   query() ─► queue ─► try 1: UDP to server[0] ── TC ──► TCP to server[0]
//                          │ timeout / SERVFAIL / refused
//                          ▼
//                       try 2: server[1] ... (servers × attempts tries in all)
class Resolver final : public Querier {
 public:
  Resolver(io::Engine& engine, ResolverOptions options);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  void query(std::string_view name, RrType type, Callback cb) override;
  void stop() noexcept;

  std::size_t in_flight() const noexcept { return active_.size(); }
  std::size_t queued() const noexcept { return waiting_.size(); }
  std::size_t operations_pending() const noexcept;
  const ResolverStats& stats() const noexcept { return stats_; }
  const ResolverOptions& options() const noexcept { return options_; }

 private:
  struct Query;
  class Attempt;
  enum class Transport : std::uint8_t { Udp, Tcp };

  void start(Query& q);
  void start_try(Query& q, Transport transport);
  void on_answer(Attempt& a, Answer answer);
  void on_try_failed(Attempt& a, std::error_code error);
  void next_try(Query& q);
  void complete(Query& q, Result<Answer> result);
  void pump();
  void fail_later(Callback cb, std::error_code error);
  void run_kicked(std::int32_t res) noexcept;
  using Kicker = io::DetachableOp<Resolver, &Resolver::run_kicked>;

  io::Engine& engine_;
  ResolverOptions options_;
  ResolverStats stats_;
  std::unordered_map<Query*, std::unique_ptr<Query>> active_;
  std::deque<std::unique_ptr<Query>> waiting_;
  std::unordered_set<Attempt*> attempts_;  // every live Attempt, finished ones included
  Kicker* kicker_;
  std::vector<std::pair<Callback, std::error_code>> kicked_;
  bool stopped_ = false;
  int in_query_ = 0;  // query() is on the stack: failures are delivered later
  shard::OwnedBy owner_;
};

}  // namespace salvo::dns
