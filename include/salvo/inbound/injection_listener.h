// SPDX-License-Identifier: Apache-2.0
// InjectionListener: the ESMTP injection listener of one shard for one [[listen]]
// entry: smtp::ServerSession over net::Connection, relay / AUTH / size / per-IP policy, and
// the spool hand-off that answers 250 only after the group commit's fdatasync.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include <salvo/base/histogram.h>
#include <salvo/base/metrics.h>
#include <salvo/base/result.h>
#include <salvo/config/config.h>
#include <salvo/inbound/intake_budget.h>
#include <salvo/net/stack.h>
#include <salvo/shard/shard.h>
#include <salvo/smtp/server_session.h>

namespace salvo::spool {
class SpoolWriter;
class Dispatch;
}
namespace salvo::accounting {
class Writer;
}

namespace salvo::inbound {

class AuthBudget;
class AuthUsers;
class ClientLimiter;
class ConnectionBudget;
class InjectionSession;

// Node-wide settings of one [[listen]] entry, built by the daemon at start-up and shared
// read-only by every shard (the limiter and the AUTH budget are the thread-safe, mutable
// parts).
struct ListenerShared {
  const config::Listener* config = nullptr;
  std::string hostname;                  // greeting, EHLO and Received: "by"
  const net::TlsContext* tls = nullptr;  // server context; null = no STARTTLS
  const AuthUsers* users = nullptr;      // null or empty = AUTH off
  AuthBudget* auth_budget = nullptr;     // failed AUTH per client and user; null = no budget
  ClientLimiter* limiter = nullptr;      // null = no per-IP cap
  ConnectionBudget* node_budget = nullptr;  // [node] max_connections; null = no node cap
  std::uint32_t max_hops = 100;          // [delivery] max_hops: Received: lines that refuse
};

// Per-shard, per-listener counters; summed by the daemon after join().
struct InboundStats {
  std::uint64_t connections = 0;
  std::uint64_t refused_per_ip = 0;      // 421 4.7.0 at connect: per-IP cap reached
  std::uint64_t refused_node_cap = 0;    // 421 4.7.0 at connect: [node] max_connections
  std::uint64_t messages_queued = 0;     // 250 after a durable commit
  std::uint64_t recipients_queued = 0;
  std::uint64_t bytes_queued = 0;        // bodies as stored (Received: included)
  std::uint64_t commit_failures = 0;     // 451 4.3.0 / 452 4.3.1 at end of data
  std::uint64_t orphaned_commits = 0;    // client gone before the commit finished
  std::uint64_t relay_denied = 0;        // 554 5.7.1 at RCPT
  std::uint64_t hops_exceeded = 0;       // 554 5.4.6 at end of data: [delivery] max_hops
  std::uint64_t auth_ok = 0;
  std::uint64_t auth_failed = 0;
  // AUTH answered 454 4.7.0 unchecked: the client's, or the named user's, budget was spent.
  std::array<std::uint64_t, 2> auth_refused{};
  std::uint64_t low_space = 0;           // 452 4.3.1 at MAIL
  std::uint64_t tls_sessions = 0;
  std::uint64_t budget_pauses = 0;       // reading stopped: [node] max_pending_bytes reached
  // Sessions ended 421 4.4.2 by a timeout, by kind: a command line not complete in time,
  // a pause inside message text, text slower than min_data_rate, session_timeout.
  std::array<std::uint64_t, 4> timeouts{};
  // End of DATA (or the last BDAT chunk) to the reply (250 after the group commit, or the
  // 4xx of a failed one): what a client waits for durability (/metrics).
  LatencyHistogram end_of_data_reply_ns;
  smtp::ServerStats session;
  InboundStats& operator+=(const InboundStats& o) noexcept;
};

// Owner: one shard (all methods on its thread). Lifecycle: construct in the shard's init,
// start(), then begin_stop() from the shard's stop hook; destroy on the same shard once
// drained() (the daemon also waits for the writer to be idle). stack and writer must
// outlive the listener. Sessions are heap objects that delete themselves; a session whose
// client left while its commit was in flight lives on until on_committed (the message is
// queued all the same: RFC 1047 duplicate window).
class InjectionListener final : public net::AcceptHandler, public metrics::Source {
 public:
  // accounting may be null (no accounting log: tests).
  // budget: this shard's share of [node] max_pending_bytes (shared by its listeners);
  // null = no cap.
  InjectionListener(shard::Shard& shard, net::Stack& stack, spool::SpoolWriter& writer,
                    const ListenerShared& shared, accounting::Writer* accounting = nullptr,
                    IntakeBudget* budget = nullptr);
  ~InjectionListener() override;
  InjectionListener(const InjectionListener&) = delete;
  InjectionListener& operator=(const InjectionListener&) = delete;

  // Binds addr with SO_REUSEPORT (every shard joins the same port). Start-up only.
  [[nodiscard]] Status start(const net::SocketAddress& addr);
  const net::SocketAddress& address() const noexcept { return address_; }

  // Graceful stop: no new connections; idle sessions get 421 and close; a session waiting
  // for its commit answers it first, then 421.
  void begin_stop() noexcept;
  bool stopping() const noexcept { return stopping_; }
  // No session objects left (connections closed, commits answered).
  bool drained() const noexcept { return sessions_ == nullptr; }
  std::size_t session_count() const noexcept { return session_count_; }

  const InboundStats& stats() const noexcept { return stats_; }
  // received (source="smtp"), commit failures, relay and AUTH refusals, sessions open,
  // the end-of-data->reply histogram.
  void report(metrics::Snapshot& s) const override;
  // Told about every committed message (delivery); null = nobody (tests). Before start().
  void set_dispatch(spool::Dispatch* d) noexcept { dispatch_ = d; }

  void on_accept(net::Listener& l, net::Connection& c) noexcept override;

 private:
  friend class InjectionSession;
  // Connections refused at accept (per-IP cap, stopping): reply, then close.
  class Refused final : public net::ConnectionHandler {
   public:
    void on_data(net::Connection&, ByteBuffer& in) noexcept override { in.clear(); }
    void on_close(net::Connection&, std::error_code) noexcept override {}
  };

  void link(InjectionSession* s) noexcept;
  void unlink(InjectionSession* s) noexcept;
  // The store-time copy of Received: + body (one per shard listener, reused).
  std::string& record_scratch() noexcept { return scratch_; }

  shard::Shard& shard_;
  net::Stack& stack_;
  spool::SpoolWriter& writer_;
  const ListenerShared& shared_;
  IntakeBudget* budget_;
  accounting::Writer* accounting_;
  spool::Dispatch* dispatch_ = nullptr;
  smtp::ServerConfig session_config_;
  net::Listener* listener_ = nullptr;
  net::SocketAddress address_;
  Refused refused_;
  InjectionSession* sessions_ = nullptr;  // intrusive list of live sessions
  std::size_t session_count_ = 0;
  bool stopping_ = false;
  std::string scratch_;
  InboundStats stats_;
};

}  // namespace salvo::inbound
