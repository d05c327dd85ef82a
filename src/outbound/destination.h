// SPDX-License-Identifier: Apache-2.0
// Destination: one routing domain (or MX rollup) on its owner shard, composed of its parts
// — Backlog (what waits), Route (where it goes), Shaper (how fast), Pool (connections) and
// DestinationStats (what the operator sees) — and the transactions (Slots) between them.
//
//   add ─► Backlog ─► pump: Route resolved? ─ no ─► lookup (MX cache / [routes])
//                        │ Shaper allows, Backlog ready > Pool capacity ─► open Channel
//                        ▼
//   Channel ready ─► fill ─► take: Slot (reads) ─► slot_ready ─► compose ─► submit
//   transaction done / local failure ─► finish ─► settle() ─► apply: outcomes, lines, DSN
//
// Owner: the shard that owns the key (shard_for); every call on its thread.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include <salvo/outbound/outbound.h>
#include <salvo/smtp/client_session.h>

#include "outbound/backlog.h"
#include "outbound/destination_stats.h"
#include "outbound/mta_sts.h"
#include "outbound/pool.h"
#include "outbound/route.h"
#include "outbound/shaper.h"
#include "outbound/slot.h"
#include "outbound/tls_policy.h"

namespace salvo::outbound {

class DestinationSide;
struct Settlement;
struct TransactionFacts;

class Destination {
 public:
  Destination(DestinationSide& side, std::string key);
  Destination(const Destination&) = delete;
  Destination& operator=(const Destination&) = delete;

  void add(Enqueue&& e) noexcept;
  // Opens connections, feeds ready ones, resolves the route, fails what cannot go.
  void pump() noexcept;
  // Work queued, connections open or transactions alive.
  bool active() const noexcept;
  // Nothing would be lost by freeing it now: not active, not listed, no lookup whose
  // callback would find it, nothing an operator set (pause, bounce) and no back-off.
  bool forgettable() noexcept;
  // Due for a pump on the tick: ready work, connections, a deferred recipient now due, or
  // spilled recipients to read back.
  bool due(WallTime now) const noexcept;

  // From its channels.
  void on_ready(Channel& c) noexcept;
  // Up to max recipients of one message, within the message rate; null when none. The
  // slot is the channel's only if s->conn == c (an expired one resolves locally).
  Slot* take(Channel* c) noexcept;
  // Whether channels may take transactions now (not paused, held or backed off).
  bool sending() noexcept;
  void slot_ready(Slot* s) noexcept;  // reads done (or failed)
  // From the signing stage: sign s with `signers` and hand it to its connection (or back
  // to the queue if the connection went meanwhile).
  void send_signed(Slot* s, const Signers& signers) noexcept;
  // The transaction is over: result is the session's answer, or null for a local failure.
  void finish(Slot* s, const smtp::TransactionResult* result) noexcept;
  void session_failed(Channel& c, const smtp::Reply& reply, bool before_ready,
                      bool local) noexcept;
  void connection_gone(Channel* c) noexcept;
  // What TLS a connection to `h` must use: [[shaping]], then the MTA-STS policy, then
  // (DANE, to come) a usable TLSA record of h, which overrides both.
  TlsDemand tls_demand(const Host& h) const;
  // Changes with the MTA-STS policy in force: a connection opened before takes no more.
  std::uint32_t tls_epoch() const noexcept { return tls_epoch_; }
  // An opportunistic TLS handshake with this host failed: plaintext for a while.
  void tls_failed(const net::SocketAddress& a) noexcept;
  // The recipients of a slot that was never sent go back to the queue (no attempt used).
  void requeue(Slot* s) noexcept;

  // Operator verbs and reload.
  void pause() noexcept;
  void resume() noexcept { shaper_.resume(); }
  void flush() noexcept { backlog_.flush_deferred(); }
  void bounce_all() noexcept { bouncing_ = true; }
  std::size_t cancel(std::uint64_t message) noexcept;
  void reconfigure() noexcept;
  void quit_idle() noexcept { pool_.quit_idle(); }
  DestinationInfo info() noexcept;

  const config::Shaping& shaping() const noexcept { return shaper_.shaping(); }
  const std::string& key() const noexcept { return key_; }
  DestinationSide& side() noexcept { return side_; }
  const Pool& pool() const noexcept { return pool_; }
  const Route& route() const noexcept { return route_; }
  const Backlog& backlog() const noexcept { return backlog_; }
  std::size_t slots() const noexcept { return slots_; }

  // Bookkeeping of DestinationSide's active, dirty and idle lists.
  bool listed = false;
  bool dirty = false;
  std::uint32_t idle_entries = 0;  // entries in DestinationSide's idle list

 private:
  TimePoint now() const noexcept;
  WallTime wall() const noexcept;
  bool pump_stopped() noexcept;     // held or paused: only expiries go
  bool pump_bouncing() noexcept;    // salvoctl bounce: everything queued fails
  void resolve() noexcept;
  void resolve_routes(const std::vector<config::HostPort>& hops) noexcept;
  void on_mx(const dns::MxResult& a) noexcept;
  void open_connections() noexcept;
  bool mta_sts_applies() const;
  bool mta_sts_known() noexcept;
  bool sts_refuses(const Host& h) noexcept;
  void forward_to_rollup() noexcept;
  void fail_ready(const LocalFailure& f) noexcept;
  void fail_cancelled() noexcept;
  Slot* start_slot(Channel* c, std::optional<LocalFailure> local, bool spend_rate) noexcept;
  Slot* make_slot(Channel* c, std::optional<LocalFailure> local, Batch batch) noexcept;
  void start_reads(Slot* s) noexcept;
  void apply(Slot* s, Settlement&& st, const TransactionFacts& f) noexcept;

  DestinationSide& side_;
  std::string key_;
  Shaper shaper_;
  ClassCounters* class_;
  Backlog backlog_;
  Route route_;
  Pool pool_;
  DestinationStats stats_;
  std::optional<LocalFailure> last_failure_;  // the last connection-level failure
  StsPolicyPtr sts_;  // the MTA-STS policy in force (enforce or testing), or null
  std::uint32_t tls_epoch_ = 0;
  bool mta_sts_ = false;  // MTA-STS applies to this destination (mta_sts_applies)
  std::size_t slots_ = 0;  // slots of this destination alive
  std::uint32_t lookups_ = 0;  // MX / host lookups whose callbacks are still to come
  bool bouncing_ = false;  // salvoctl bounce: what is queued bounces until the queue empties
  std::deque<queue::QueuedRecipient> cancelled_;  // salvoctl bounce --id, still to fail
  std::vector<std::uint64_t> cancel_on_pump_;  // jobs whose recipients came cancelled
};

}  // namespace salvo::outbound
