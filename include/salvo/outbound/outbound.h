// SPDX-License-Identifier: Apache-2.0
// Outbound: delivery on one shard. A facade over the two roles every shard plays:
//  - Origin (src/outbound/origin.h): of the messages this shard spooled, routes each
//    committed recipient to the shard that owns its destination (spool::Dispatch), and
//    makes the outcomes that come back durable (recipient states, DSNs queued before the
//    finals that caused them);
//  - DestinationSide (src/outbound/destination_side.h): owner of the destinations that
//    hash to this shard: their queues, shaping, back-off, routes and connection pools are
//    plain fields there, so the configured limits hold for the node as a whole with no
//    locks (every mutable object has one owner shard).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <salvo/base/metrics.h>
#include <salvo/base/result.h>
#include <salvo/config/config.h>
#include <salvo/dns/mx_cache.h>
#include <salvo/outbound/messages.h>
#include <salvo/outbound/own_listeners.h>
#include <salvo/outbound/settings.h>
#include <salvo/outbound/signers.h>
#include <salvo/queue/verdict.h>
#include <salvo/shard/mailbox.h>
#include <salvo/spool/dispatch.h>
#include <salvo/spool/recovery.h>
#include <salvo/spool/spool_reader.h>

namespace salvo::net {
class Stack;
class TlsContext;
}  // namespace salvo::net
namespace salvo::spool {
class SpoolWriter;
class SpoolIndex;
}  // namespace salvo::spool
namespace salvo::accounting {
class Writer;
}

namespace salvo::outbound {

using Mailbox = shard::MessageMatrix<Message>;

// The shard that owns a destination: FNV-1a of the routing domain (or rollup key).
std::uint32_t shard_for(std::string_view domain, std::uint32_t shards) noexcept;

// Node-wide, built by the daemon before the shards start; read-only afterwards except for
// the atomics, which coordinate a graceful stop.
struct OutboundShared {
  SettingsPtr settings;  // at start-up (reloads reach each shard's Outbound::reload)
  std::uint32_t shards = 1;
  std::vector<std::string> spool_dirs;  // per shard: where each origin's records are
  // Where each shard spills the queued recipients its destinations do not hold in RAM
  // (<spill_dir>/shard-N, wiped at start); "": nowhere, everything stays in RAM.
  std::string spill_dir;
  std::string hostname;                 // EHLO default, Reporting-MTA of DSNs
  std::vector<std::string> prewarm;               // domains resolved at start
  // Transactions kept in flight per connection (PIPELINING across messages).
  std::uint32_t window = 4;
  // The [[listen]] addresses as bound: a next hop there is a mail loop (5.4.4).
  OwnListeners own_listeners;
  // Stop: shards whose deliveries have not finished, and cross-shard messages not yet
  // handled. A shard may tear its spool down only when both are zero.
  std::atomic<std::uint32_t> delivering{0};
  std::atomic<std::int64_t> in_transit{0};
};

// The outcomes a session's TLS is counted by (TlsOutcome, src/outbound/tls_policy.h).
inline constexpr std::size_t kTlsOutcomes = 7;

// Per-shard counters, summed over shards on demand.
struct OutboundStats {
  std::uint64_t dispatched = 0;     // recipients routed from this shard's spool
  std::uint64_t delivered = 0;      // outcomes decided on this shard (as destination owner)
  std::uint64_t deferred = 0;
  std::uint64_t bounced = 0;
  std::uint64_t expired = 0;
  std::uint64_t loops = 0;          // of the bounced: every next hop was this node (5.4.4)
  std::uint64_t dsns = 0;           // DSNs queued (as origin)
  std::uint64_t connections = 0;    // opened
  std::uint64_t connect_failures = 0;
  std::uint64_t tls_sessions = 0;
  std::array<std::uint64_t, kTlsOutcomes> tls_outcomes{};  // sessions by TLS policy outcome
  std::uint64_t transactions = 0;
  std::uint64_t state_errors = 0;   // outcome states the spool refused (logged)
  std::uint64_t read_errors = 0;    // records that could not be read back (logged)
  OutboundStats& operator+=(const OutboundStats& o) noexcept;
};

// One destination as the operator sees it (salvoctl domains), read on its shard.
struct DestinationInfo {
  std::string name;              // the domain, or "mx:<suffix>" for an MX rollup
  std::uint64_t ready = 0;       // recipients due now
  std::uint64_t deferred = 0;    // waiting for their next attempt
  std::uint64_t in_flight = 0;   // transactions being read or sent
  std::uint32_t connections = 0;
  std::uint32_t max_connections = 0;
  std::string state;             // "active", "held" (max_connections = 0), "paused"
                                 // (salvoctl pause), "backoff", "recovering", "idle"
  std::uint64_t delivered = 0;   // since start
  std::uint64_t deferrals = 0;
  std::uint64_t bounced = 0;
  std::uint64_t delivered_last_s = 0;   // in the last whole second
  std::uint64_t delivered_last_60s = 0; // in the last 60 whole seconds
  std::string last_reply;        // "250 2.0.0 Ok" (the last attempt's reply)
};

// Outcomes per destination class: the [[shaping]] entry that governs the destination (its
// domain, "mx:<suffix>" for an MX rollup entry, "*" for the default). Bounded by the
// config, so fit for metric labels where per-domain counters would not be.
struct ClassCounters {
  std::string name;
  std::uint64_t delivered = 0;
  std::uint64_t deferred = 0;
  std::uint64_t bounced = 0;
  std::uint64_t expired = 0;
};

// One recent permanent failure (bounce or expiry), for the dashboard.
struct BounceInfo {
  std::int64_t unix_ns = 0;
  std::string id;         // the message (or job) id, 16 hex digits
  std::string recipient;
  std::string domain;
  std::string reply;      // "550 5.1.1 no such user" (first 200 bytes of the text)
  std::string category;   // the bounce category, or "expired"
};

// One shard's delivery state (for salvoctl status / domains, metrics and the dashboard).
// What the operator's views list (salvoctl domains, the dashboard); the counters are in
// report().
struct OutboundSnapshot {
  std::vector<DestinationInfo> destinations;
  std::vector<BounceInfo> recent_bounces;  // newest last; at most kRecentBounces
  static constexpr std::size_t kRecentBounces = 50;
};

// One recipient the spool still owes, as start-up recovery read it from its records: what
// delivery needs to queue it (docs/spool-format.md §7).
// 80 bytes: a restart over ten million queued messages holds one per recipient until it
// is routed (a deque, freed as routing goes on).
struct RecoveredRecipient {
  std::uint64_t message = 0;
  spool::PackedLocation record;  // the Message record (the recipient's index in it: recipient)
  std::int64_t received_unix_ns = 0;
  std::int64_t next_attempt_unix_ns = 0;
  std::uint32_t recipient = 0;
  std::uint32_t attempts = 0;
  std::string domain;  // smtp::domain_of(address): empty for RCPT TO:<postmaster>
};
// A committed job the spool still owes recipients of: it is not expanded; its origin reads
// its batches a window at a time (Origin), skipping the recipients already final. Only the
// deferred ones carry their attempts here.
struct RecoveredJob {
  struct Deferred {
    std::uint32_t recipient = 0;
    std::uint32_t attempts = 0;
    std::int64_t next_attempt_unix_ns = 0;
  };
  std::uint64_t id = 0;
  std::int64_t received_unix_ns = 0;
  std::vector<Deferred> deferred;
};
struct RecoveryPlan {
  std::deque<RecoveredRecipient> recipients;  // of messages
  std::vector<RecoveredJob> jobs;
  std::uint64_t unreadable = 0;  // records that could not be read back or decoded
};
// The read-back of what a recovered spool owes, a slice at a time, so a restart over a big
// spool never holds a recipient list of it (docs/spool-format.md §7). Built from a
// RecoveryResult before its index joins the live one, it keeps only the locations of the
// messages with a recipient pending, per segment in disk order (16 bytes a message, given
// back a segment at a time), the deferred recipients' attempts, and the jobs. next() reads
// message records and gives every recipient of each: which are still owed is for the live
// index to say when they are routed (Origin::recover), since the spool may have moved on
// by then. Touches files only: it may run on a thread of its own. Owner: one thread at a
// time.
class RecoveryPlanner {
 public:
  RecoveryPlanner(const spool::RecoveryResult& recovered, std::string spool_dir);
  // The jobs still owed (their templates are read here; jobs are not expanded).
  std::vector<RecoveredJob> take_jobs() noexcept { return std::move(jobs_); }
  // Appends the recipients of up to max_messages more messages to out; false once no
  // message was left to read.
  bool next(std::size_t max_messages, std::vector<RecoveredRecipient>& out);
  std::uint64_t messages_left() const noexcept { return messages_left_; }
  // Records (message or job template) that could not be read back or decoded so far.
  std::uint64_t unreadable() const noexcept { return unreadable_; }

 private:
  void read_message(const spool::SegmentRecords& seg, spool::PackedLocation loc,
                    std::vector<RecoveredRecipient>& out);
  std::string dir_;
  // Message locations by segment, each sorted by offset; a segment leaves once read.
  std::map<std::uint64_t, std::vector<spool::PackedLocation>> todo_;
  std::optional<spool::SegmentRecords> open_;  // the segment being read
  std::size_t pos_ = 0;                        // in todo_.begin()->second
  std::vector<spool::PendingRecipient> deferred_;  // of messages, by (message, recipient)
  std::vector<RecoveredJob> jobs_;
  std::uint64_t messages_left_ = 0;
  std::uint64_t unreadable_ = 0;
};
// The whole plan at once, only the recipients `recovered` holds not final (tests:
// salvod routes from a RecoveryPlanner). cancel: stops early (the plan is then incomplete).
RecoveryPlan plan_recovery(const spool::RecoveryResult& recovered, const std::string& spool_dir,
                           const std::atomic<bool>* cancel = nullptr);

// Owner: one shard; every call on its thread. Lifecycle: construct in the shard's init
// after the SpoolWriter, start(), recover() once, then intake calls queued() and the mailbox
// handler calls on_message(); begin_stop() from the stop hook; destroy once drained() and
// the node-wide counters say every shard is done (ShardRuntime does this).
class Outbound final : public spool::Dispatch, public metrics::Source {
 public:
  // accounting may be null (no accounting log: tests).
  Outbound(shard::Shard& shard, OutboundShared& shared, Mailbox& mailbox,
           spool::SpoolWriter& writer, const spool::SpoolIndex& index, net::Stack& stack,
           accounting::Writer* accounting);
  ~Outbound();
  Outbound(const Outbound&) = delete;
  Outbound& operator=(const Outbound&) = delete;

  // Resolver, MX cache, spool readers, the tick. why: one line on failure (start-up only).
  [[nodiscard]] Status start(std::string* why);
  // Routes one recipient read back by a RecoveryPlanner if the index still holds it owed
  // (the message's entry is that record's and its state is not final); whether it did.
  bool recover(const RecoveredRecipient& r) noexcept;
  void recover_jobs(std::vector<RecoveredJob>&& jobs) noexcept;
  void recovery_unreadable(std::uint64_t records, const std::string& spool_dir) noexcept;

  void queued(spool::MessageId id, std::int64_t received_unix_ns, std::uint32_t first,
              std::span<const std::string_view> addresses) noexcept override;
  void job_queued(spool::MessageId id, std::int64_t received_unix_ns) noexcept override;
  void on_message(shard::ShardId from, Message&& m) noexcept;

  // No new connections or transactions; connections QUIT once their transactions finish.
  void begin_stop() noexcept;
  // No connection, no read or transaction in flight, nothing waiting to be sent.
  bool drained() const noexcept;
  // Frees engine-bound parts (resolver, timers) on the shard thread before the engine goes.
  void shutdown() noexcept;

  const OutboundStats& stats() const noexcept;

  // Operator verbs (salvoctl), for the destinations on this shard; each returns how many
  // destinations it touched. pause: no new connections or transactions until resume;
  // flush: every deferred recipient (of `domain`, or of all when empty) is due now;
  // bounce: every queued recipient of `domain` bounces now (5.0.0, with DSNs).
  OutboundSnapshot snapshot() const;
  // Outcomes per destination class, DSNs, transactions, connections, queue depth,
  // destinations, the MX cache.
  void report(metrics::Snapshot& s) const override;
  std::size_t pause(std::string_view domain) noexcept;
  std::size_t resume(std::string_view domain) noexcept;
  std::size_t flush(std::string_view domain) noexcept;
  std::size_t bounce(std::string_view domain) noexcept;
  // bounce --id: every recipient of the message (or job) queued on this shard's
  // destinations bounces now (5.0.0, with DSNs); returns how many. Recipients inside a
  // transaction at that moment finish it. A job this shard spooled also has its recipients
  // not dispatched yet bounce as its window reaches them (counted in the return).
  std::size_t bounce_message(std::uint64_t id) noexcept;

  // Hot reload (SIGHUP, salvoctl reload): shaping, routes, DKIM keys, egress pools, the
  // retry policy, bounce rules and client TLS of `settings` apply from now on; open
  // connections finish with what they started with, queued mail stays.
  void reload(SettingsPtr settings);

  struct Impl;  // src/outbound/outbound.cc

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace salvo::outbound
