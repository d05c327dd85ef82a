// SPDX-License-Identifier: Apache-2.0
// DestinationSide: the destination role of one shard — the destinations whose key hashes
// here, which of them need a pump, the transactions alive, and the per-class counters and
// recent bounces the operator sees. Its dependencies come in through DeliveryEnv (the
// shard's clock, spool reads, MX lookups, connections, the mailbox, the accounting log),
// so unit tests run it on fakes; what is configured comes as a DeliveryContext, replaced
// whole by a reload.
//
// Owner: one shard. A destination is freed only by tick(), after kForgetAfter idle, and only
// when nothing holds a plain pointer to it: no slot (signing queue, connections), no
// connection in its pool, no MX or host lookup whose callback is to come, not on the
// active or dirty list. Anything else that keeps one must be counted in forgettable().
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <salvo/accounting/accounting.h>
#include <salvo/base/clock.h>
#include <salvo/config/config.h>
#include <salvo/dns/mx_cache.h>
#include <salvo/dns/tlsa_cache.h>
#include <salvo/outbound/messages.h>
#include <salvo/outbound/outbound.h>
#include <salvo/outbound/settings.h>
#include <salvo/queue/policy.h>
#include <salvo/spool/spool_reader.h>

#include "outbound/backlog.h"
#include "outbound/mta_sts.h"
#include "outbound/pool.h"
#include "outbound/signing_pace.h"

namespace salvo::outbound {

class Destination;

class DeliveryEnv {
 public:
  virtual ~DeliveryEnv() = default;
  virtual const Clock& clock() const noexcept = 0;
  // Runs fn after the current callback (batches pumps).
  virtual void defer(std::function<void()> fn) = 0;
  // Reads a committed record of `origin`'s spool; completes later, never inside read().
  virtual void read(std::uint32_t origin, spool::Location loc, spool::RecordWaiter* w) noexcept = 0;
  // As dns::MxCache::lookup / lookup_host.
  virtual dns::MxAnswer lookup_mx(std::string_view domain, dns::MxCache::Callback cb) = 0;
  virtual dns::MxAnswer lookup_host(std::string_view host, dns::MxCache::Callback cb) = 0;
  // As dns::TlsaCache::lookup: the TLSA records of an MX host (DANE).
  virtual dns::TlsaAnswer lookup_tlsa(std::string_view host, dns::TlsaCache::Callback cb) = 0;
  // A new connection of d's pool to h; it reports to d.
  virtual Channel* open(Destination& d, const Host& h, const Origination& o) = 0;
  // Outcomes to the message's own shard; a recipient to the shard that owns e.key.
  virtual void to_origin(std::uint32_t origin, Outcomes&& o) noexcept = 0;
  virtual void forward(Enqueue&& e) noexcept = 0;
  virtual void account(const accounting::Event& ev) noexcept = 0;
  // The MTA-STS policy of `domain` from the shard's cache (null: none); nullopt: being
  // looked up, and the destination is marked dirty once it is known. Default (unit-test
  // fakes): none.
  virtual std::optional<StsPolicyPtr> mta_sts(std::string_view) { return StsPolicyPtr(); }
  // Grows with every read of an intake connection on this shard (the signing pace's
  // sign of intake at work); 0 where there is none.
  virtual std::uint64_t intake_reads() const noexcept { return 0; }
};

// The configuration in force for every destination of the shard: the settings (held, so
// what they point to lives as long as this context uses it) and the policy made of them.
struct DeliveryContext {
  SettingsPtr settings;
  std::shared_ptr<const queue::DeliveryPolicy> policy;
  std::string hostname;     // EHLO default, Reporting-MTA of DSNs
  std::uint32_t window = 4; // transactions in flight per connection
  // This node's listeners, never connected to (OutboundShared's); null: none.
  const OwnListeners* own_listeners = nullptr;
};

// The policy of a configuration: its classifier, retry schedule, expiry and delay notices.
std::shared_ptr<const queue::DeliveryPolicy> make_policy(const config::Config& c,
                                                         const queue::Classifier& classifier);

class DestinationSide {
 public:
  // The signing stage's part of a loop turn: at most this many signatures, and no more
  // than the pace allows — up to kSignBudget when the rest of the loop is idle, and
  // kSignShare of the rest's time while it is busy or mail comes in (signing_pace.h).
  static constexpr int kSignBatch = 8;
  static constexpr Duration kSignBudget = std::chrono::microseconds(500);
  static constexpr double kSignShare = 0.25;
  static constexpr Duration kSignIdleGap = std::chrono::microseconds(30);
  // Intake counts as at work this long after its last read: in a burst, the turns between
  // two reads must not look idle either.
  static constexpr Duration kSignIntakeWindow = std::chrono::milliseconds(2);

  // spill_dir: where destinations put the queued recipients RAM does not hold (wiped
  // here); "" or a directory that cannot be made: everything stays in RAM.
  DestinationSide(DeliveryEnv& env, DeliveryContext context, std::string spill_dir = {});
  ~DestinationSide();

  // A recipient for one of this shard's destinations.
  void accept(Enqueue&& e) noexcept;
  // Pumps the destinations with work due (rates, back-off, retries); call often (10 ms
  // while any is active).
  // Also forgets destinations idle for kForgetAfter (see forget_idle).
  void tick() noexcept;
  bool idle() const noexcept { return active_.empty(); }
  // A destination with nothing queued, no connection, nothing an operator set and no
  // back-off is freed after this long idle: its next mail makes a fresh one (the MX answer
  // stays in the shard's MX cache). Only the per-destination counters of `salvoctl
  // domains` go with it.
  static constexpr Duration kForgetAfter = std::chrono::minutes(10);
  std::size_t destination_count() const noexcept { return destinations_.size(); }
  void reload(DeliveryContext context);
  void begin_stop() noexcept;
  bool stopping() const noexcept { return stopping_; }
  // No connection and no transaction alive.
  bool drained() const noexcept;
  // No more pumps (the engine is going away).
  void stop() noexcept { stopped_ = true; }

  // Operator verbs: the destination named `domain` (or every one when empty); the count.
  std::size_t pause(std::string_view domain, std::uint32_t me, std::uint32_t shards);
  std::size_t resume(std::string_view domain);
  std::size_t flush(std::string_view domain);
  std::size_t bounce(std::string_view domain);
  std::size_t bounce_message(std::uint64_t id);
  void fill(OutboundSnapshot& s) const;
  // Outcomes per destination class, recipients by state, destinations, connections out.
  void report(metrics::Snapshot& s) const;

  // For destinations.
  DeliveryEnv& env() noexcept { return env_; }
  const DeliveryContext& context() const noexcept { return ctx_; }
  const config::Config& config() const noexcept { return *ctx_.settings->config; }
  const queue::DeliveryPolicy& policy() const noexcept { return *ctx_.policy; }
  const SpillPolicy& spill_policy() const noexcept { return spill_; }
  const SpillStore* spill_store() const noexcept { return spill_store_.get(); }
  OutboundStats& stats() noexcept { return stats_; }
  const OutboundStats& stats() const noexcept { return stats_; }
  ClassCounters& class_counters(const config::Shaping& s);
  void note_bounce(BounceInfo b);
  void mark_dirty(Destination& d);
  std::uint64_t next_cookie() noexcept { return next_cookie_++; }
  // A composed transaction: to its connection now, or, when a DKIM key signs it, through
  // the signing stage — a few signatures per loop turn, so a burst of signed mail never
  // holds up the shard's IO.
  void send(Slot* s) noexcept;
  SigningCache& signing_cache() noexcept { return signing_cache_; }
  void slot_created() noexcept { ++slots_; }
  void slot_freed() noexcept { --slots_; }
  Destination& destination(const std::string& key);
  Destination* find(std::string_view key);

 private:
  template <class Fn>
  std::size_t for_each_named(std::string_view domain, Fn fn);
  void run_dirty() noexcept;
  void run_signing() noexcept;

  void set_spill_limits() noexcept;

  DeliveryEnv& env_;
  DeliveryContext ctx_;
  // Before destinations_: their backlogs give their chunks back as they go.
  std::unique_ptr<SpillStore> spill_store_;
  SpillPolicy spill_;
  std::unordered_map<std::string, std::unique_ptr<Destination>> destinations_;
  std::uint64_t forgotten_ = 0;  // destinations freed after kForgetAfter idle
  std::vector<Destination*> active_;  // destinations with work or connections
  std::vector<Destination*> dirty_;   // to pump after the current callback
  // Destinations as they went idle, oldest first; an entry is current only if it is the
  // destination's last one (Destination::idle_entries).
  std::deque<std::pair<Destination*, TimePoint>> idle_;
  void went_idle(Destination& d, TimePoint now);
  void forget_idle(TimePoint now) noexcept;
  bool pump_scheduled_ = false;
  std::deque<Slot*> signing_;  // waiting for their signatures, oldest first
  SigningCache signing_cache_;
  SigningPace pace_{{kSignShare, kSignBudget, kSignIdleGap}};
  std::uint64_t intake_reads_seen_ = 0;  // env_.intake_reads() at the last signing run
  TimePoint intake_at_{};                // when it last grew
  bool signing_scheduled_ = false;
  std::uint64_t next_cookie_ = 1;
  std::size_t slots_ = 0;
  bool stopping_ = false;
  bool stopped_ = false;
  OutboundStats stats_;
  // Per destination class (never erased: names come from configs, so the set is bounded
  // and counters stay monotonic across reloads). std::map: destinations keep pointers.
  std::map<std::string, ClassCounters, std::less<>> classes_;
  std::deque<BounceInfo> recent_bounces_;  // newest last, at most kRecentBounces
};

}  // namespace salvo::outbound
