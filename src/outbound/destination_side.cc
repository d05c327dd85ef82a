// SPDX-License-Identifier: Apache-2.0
// DestinationSide: the shard's destinations, their pumps and the operator's view of them.
#include "outbound/destination_side.h"

#include <fmt/format.h>

#include <salvo/base/log.h>

#include <salvo/net/metrics.h>
#include <salvo/smtp/address.h>

#include "outbound/destination.h"

namespace salvo::outbound {

std::shared_ptr<const queue::DeliveryPolicy> make_policy(const config::Config& c,
                                                         const queue::Classifier& classifier) {
  queue::PolicyOptions o;
  o.retry_schedule = c.delivery.retry_schedule;
  o.expiry = c.delivery.expiry;
  o.delay_notice_after = c.delivery.delay_dsn_after;
  return std::make_shared<const queue::DeliveryPolicy>(classifier, std::move(o));
}

DestinationSide::DestinationSide(DeliveryEnv& env, DeliveryContext context,
                                 std::string spill_dir)
    : env_(env), ctx_(std::move(context)) {
  if (!spill_dir.empty()) {
    auto store = SpillStore::open(spill_dir);
    if (store) {
      spill_store_ = std::move(*store);
    } else {
      log::error("outbound: spill directory {}: {}; every queued recipient stays in RAM",
                 spill_dir, store.error().message());
    }
  }
  spill_.store = spill_store_.get();
  set_spill_limits();
}

void DestinationSide::set_spill_limits() noexcept {
  spill_.in_memory = config().delivery.queue_in_memory;
  spill_.horizon = config().delivery.queue_horizon;
}

DestinationSide::~DestinationSide() = default;

Destination& DestinationSide::destination(const std::string& key) {
  auto it = destinations_.find(key);
  if (it == destinations_.end()) {
    it = destinations_.emplace(key, std::make_unique<Destination>(*this, key)).first;
  }
  return *it->second;
}

Destination* DestinationSide::find(std::string_view key) {
  auto it = destinations_.find(std::string(key));
  return it == destinations_.end() ? nullptr : it->second.get();
}

void DestinationSide::accept(Enqueue&& e) noexcept {
  destination(e.key.empty() ? e.domain : e.key).add(std::move(e));
}

void DestinationSide::mark_dirty(Destination& d) {
  if (!d.listed) {
    d.listed = true;
    active_.push_back(&d);
  }
  if (!d.dirty) {
    d.dirty = true;
    dirty_.push_back(&d);
  }
  if (!pump_scheduled_ && !stopped_) {
    pump_scheduled_ = true;
    env_.defer([this] { run_dirty(); });
  }
}

void DestinationSide::run_dirty() noexcept {
  pump_scheduled_ = false;
  std::vector<Destination*> now;
  now.swap(dirty_);
  for (Destination* d : now) {
    d->dirty = false;
    d->pump();
  }
}

void DestinationSide::send(Slot* s) noexcept {
  const Signers* signers = ctx_.settings->signers.get();
  if (signers == nullptr || !signers->signs(s->original)) {
    s->conn->submit(s);
    return;
  }
  signing_.push_back(s);
  if (!signing_scheduled_) {
    signing_scheduled_ = true;
    env_.defer([this] { run_signing(); });
  }
}

void DestinationSide::run_signing() noexcept {
  signing_scheduled_ = false;
  // At most kSignBatch signatures and what the pace allows: the IO of the shard keeps its
  // share of the core however many signatures wait (signing_pace.h).
  const TimePoint now = env_.clock().now();
  const std::uint64_t reads = env_.intake_reads();
  if (reads != intake_reads_seen_) {
    intake_reads_seen_ = reads;
    intake_at_ = now;
  }
  pace_.begin(now, now - intake_at_ < kSignIntakeWindow);
  for (int n = 0; n < kSignBatch && !signing_.empty() && pace_.may_sign(); ++n) {
    Slot* s = signing_.front();
    signing_.pop_front();
    static const Signers kNone;  // a reload took the keys away meanwhile: sent unsigned
    const Signers* signers = ctx_.settings->signers.get();
    s->dest->send_signed(s, signers != nullptr ? *signers : kNone);
    pace_.signed_at(env_.clock().now());
  }
  pace_.end(env_.clock().now());
  if (!signing_.empty() && !stopped_) {
    signing_scheduled_ = true;
    env_.defer([this] { run_signing(); });
  }
}

void DestinationSide::tick() noexcept {
  if (stopped_) return;
  const WallTime wall = env_.clock().wall_now();
  // Pumps may list more destinations (a rollup receiving forwards): they land in the
  // fresh active_ and are kept.
  std::vector<Destination*> current;
  current.swap(active_);
  for (Destination* d : current) {
    if (d->due(wall)) d->pump();
  }
  std::vector<Destination*> keep;
  keep.reserve(current.size() + active_.size());
  const TimePoint now = env_.clock().now();
  for (Destination* d : current) {
    if (d->active()) {
      keep.push_back(d);
    } else {
      d->listed = false;
      went_idle(*d, now);
    }
  }
  for (Destination* d : active_) keep.push_back(d);
  active_.swap(keep);
  forget_idle(now);
}

void DestinationSide::went_idle(Destination& d, TimePoint now) {
  ++d.idle_entries;
  idle_.emplace_back(&d, now);
}

// Walks only the idle list's expired front, so a shard with many destinations pays for
// those going away, not for all of them every tick. A destination's earlier entries come
// before its last one, so none is left pointing at a freed destination.
void DestinationSide::forget_idle(TimePoint now) noexcept {
  while (!idle_.empty() && now - idle_.front().second >= kForgetAfter) {
    Destination* d = idle_.front().first;
    idle_.pop_front();
    if (--d->idle_entries != 0 || d->listed) continue;  // a later entry, or busy again
    if (!d->forgettable()) {
      went_idle(*d, now);  // paused, backed off, a lookup out: look again later
      continue;
    }
    ++forgotten_;
    destinations_.erase(d->key());
  }
}

void DestinationSide::reload(DeliveryContext context) {
  ctx_ = std::move(context);
  set_spill_limits();
  for (auto& [name, d] : destinations_) d->reconfigure();
}

void DestinationSide::begin_stop() noexcept {
  stopping_ = true;
  for (auto& [name, d] : destinations_) d->quit_idle();
}

bool DestinationSide::drained() const noexcept {
  if (slots_ != 0) return false;
  for (const auto& [name, d] : destinations_) {
    if (!d->pool().empty()) return false;
  }
  return true;
}

ClassCounters& DestinationSide::class_counters(const config::Shaping& s) {
  std::string name = !s.mx_suffix.empty() ? fmt::format("{}{}", kRollupPrefix, s.mx_suffix)
                     : s.domain.empty()   ? std::string("*")
                                          : s.domain;
  auto it = classes_.find(name);
  if (it == classes_.end()) {
    it = classes_.emplace(name, ClassCounters{}).first;
    it->second.name = std::move(name);
  }
  return it->second;
}

void DestinationSide::note_bounce(BounceInfo b) {
  recent_bounces_.push_back(std::move(b));
  if (recent_bounces_.size() > OutboundSnapshot::kRecentBounces) recent_bounces_.pop_front();
}

template <class Fn>
std::size_t DestinationSide::for_each_named(std::string_view domain, Fn fn) {
  // The destinations named by an operator verb: the domain as routed, or every one.
  std::size_t n = 0;
  const std::string key = smtp::normalize_domain(domain);
  for (auto& [name, d] : destinations_) {
    if (!key.empty() && name != key) continue;
    fn(*d);
    mark_dirty(*d);
    ++n;
  }
  return n;
}

std::size_t DestinationSide::pause(std::string_view domain, std::uint32_t me,
                                   std::uint32_t shards) {
  // A domain not seen yet is paused ahead of its mail, on the shard that will own it.
  const std::string key = smtp::normalize_domain(domain);
  if (!key.empty() && find(key) == nullptr && shard_for(key, shards) == me) destination(key);
  return for_each_named(domain, [](Destination& d) { d.pause(); });
}

std::size_t DestinationSide::resume(std::string_view domain) {
  return for_each_named(domain, [](Destination& d) { d.resume(); });
}

std::size_t DestinationSide::flush(std::string_view domain) {
  return for_each_named(domain, [](Destination& d) { d.flush(); });
}

std::size_t DestinationSide::bounce(std::string_view domain) {
  if (domain.empty()) return 0;  // never all at once
  return for_each_named(domain, [](Destination& d) { d.bounce_all(); });
}

std::size_t DestinationSide::bounce_message(std::uint64_t id) {
  std::size_t n = 0;
  for (auto& [name, d] : destinations_) n += d->cancel(id);
  return n;
}

void DestinationSide::fill(OutboundSnapshot& s) const {
  s.destinations.reserve(destinations_.size());
  for (auto& [name, d] : destinations_) s.destinations.push_back(d->info());
  s.recent_bounces.assign(recent_bounces_.begin(), recent_bounces_.end());
}

namespace {

constexpr metrics::Family kOutcomes{
    "salvo_delivery_outcomes_total", metrics::Type::Counter,
    "Delivery attempt outcomes per recipient, by outcome and destination class (the "
    "[[shaping]] entry governing the destination: its domain, mx:<suffix>, or *)."};
constexpr metrics::Family kQueueRecipients{
    "salvo_queue_recipients", metrics::Type::Gauge,
    "Recipients queued for delivery, by state (ready: due now; deferred: waiting for the "
    "next attempt; in_flight: in a transaction)."};
constexpr metrics::Family kSpilled{
    "salvo_queue_spilled_recipients", metrics::Type::Gauge,
    "Queued recipients kept on disk rather than in RAM (ready ones beyond [delivery] "
    "queue_in_memory per destination, deferred ones due after queue_horizon); counted in "
    "salvo_queue_recipients too."};
constexpr metrics::Family kSpillBytes{"salvo_queue_spill_bytes", metrics::Type::Gauge,
                                      "Bytes of the spill files on disk."};
constexpr metrics::Family kSpillChunks{
    "salvo_queue_spill_chunks_total", metrics::Type::Counter,
    "Chunks of spilled recipients written to disk and read back."};
constexpr metrics::Family kSpillErrors{
    "salvo_queue_spill_errors_total", metrics::Type::Counter,
    "Spill writes that failed (the recipients stayed in RAM) and chunks that could not be "
    "read back (their recipients wait in the spool for the next start)."};
constexpr metrics::Family kDestinations{"salvo_destinations", metrics::Type::Gauge,
                                        "Destinations (domains and MX rollups) known."};
constexpr metrics::Family kDestinationsForgotten{
    "salvo_destinations_forgotten_total", metrics::Type::Counter,
    "Destinations freed after ten minutes with nothing queued, no connection, no pause and "
    "no back-off."};
constexpr metrics::Family kDkimSignatures{
    "salvo_dkim_signatures_total", metrics::Type::Counter,
    "DKIM signatures put on outgoing mail: signed (an RSA or Ed25519 operation) or reused "
    "(the same header data was signed before: a message's other transactions, a job whose "
    "signed fields do not vary)."};
constexpr metrics::Family kDkimBodyHashes{
    "salvo_dkim_body_hashes_total", metrics::Type::Counter,
    "DKIM body hashes: computed, or reused for a body already hashed (a message's other "
    "transactions, a job whose body has no per-recipient variables)."};

}  // namespace

void DestinationSide::report(metrics::Snapshot& s) const {
  for (const auto& [name, c] : classes_) {
    const std::string cls = metrics::label("class", name);
    s.add(kOutcomes, "outcome=\"delivered\"," + cls, c.delivered);
    s.add(kOutcomes, "outcome=\"deferred\"," + cls, c.deferred);
    s.add(kOutcomes, "outcome=\"bounced\"," + cls, c.bounced);
    s.add(kOutcomes, "outcome=\"expired\"," + cls, c.expired);
  }
  std::uint64_t ready = 0, deferred = 0, in_flight = 0, connections = 0;
  for (const auto& [name, d] : destinations_) {
    ready += d->backlog().queued_ready();
    deferred += d->backlog().queued_deferred();
    in_flight += d->slots();
    connections += d->pool().size();
  }
  s.add(kQueueRecipients, "state=\"ready\"", ready);
  s.add(kQueueRecipients, "state=\"deferred\"", deferred);
  s.add(kQueueRecipients, "state=\"in_flight\"", in_flight);
  if (spill_store_) {
    s.add(kSpilled, {}, spill_store_->recipients());
    s.add(kSpillBytes, {}, spill_store_->bytes());
    s.add(kSpillChunks, "op=\"written\"", spill_store_->chunks_written());
    s.add(kSpillChunks, "op=\"read\"", spill_store_->chunks_read());
    s.add(kSpillErrors, {}, spill_store_->errors());
  }
  s.add(kDestinations, {}, static_cast<std::uint64_t>(destinations_.size()));
  s.add(kDestinationsForgotten, {}, forgotten_);
  s.add(kDkimSignatures, "how=\"signed\"", signing_cache_.signatures.misses());
  s.add(kDkimSignatures, "how=\"reused\"", signing_cache_.signatures.hits());
  s.add(kDkimBodyHashes, "how=\"computed\"", signing_cache_.body_hashes_computed);
  s.add(kDkimBodyHashes, "how=\"reused\"", signing_cache_.body_hashes_reused);
  s.add(net::kConnectionsOpen, "direction=\"out\",protocol=\"smtp\"", connections);
}

}  // namespace salvo::outbound
