// SPDX-License-Identifier: Apache-2.0
// Destination: pumping, routing and transactions of one destination (see destination.h).
#include "outbound/destination.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include <salvo/base/log.h>

#include "outbound/destination_side.h"
#include "outbound/settle.h"

namespace salvo::outbound {
namespace {

// Local failures are resolved a bounded number of slots at a time (each reads its
// message); the rest continues from the tick.
constexpr std::size_t kMaxLocalSlots = 256;

const config::Shaping& shaping_for(const config::Config& c, std::string_view key) {
  if (key.starts_with(kRollupPrefix)) {
    for (const auto& s : c.shaping) {
      if (!s.mx_suffix.empty() && s.mx_suffix == key.substr(kRollupPrefix.size())) return s;
    }
    return c.default_shaping;
  }
  if (const auto* s = c.find_shaping_for_domain(key)) return *s;
  return c.default_shaping;
}

LocalFailure cancelled_by_operator() {
  LocalFailure f;
  f.stage = queue::Stage::Rcpt;
  f.reply = smtp::Reply(550, {5, 0, 0}, "delivery cancelled by the operator");
  return f;
}

}  // namespace

Destination::Destination(DestinationSide& side, std::string key)
    : side_(side),
      key_(std::move(key)),
      shaper_(shaping_for(side.config(), key_), side.config().delivery.backoff_pause),
      class_(&side.class_counters(shaper_.shaping())),
      backlog_(&side.spill_policy()),
      route_(key_, side.context().own_listeners),
      mta_sts_(mta_sts_applies()) {}

// MTA-STS is for recipient domains whose MX comes from DNS: never [routes] destinations or
// MX rollups, nor with [[shaping]] mta_sts = false. Decided per configuration.
bool Destination::mta_sts_applies() const {
  return shaping().mta_sts && !key_.starts_with(kRollupPrefix) &&
         side_.config().find_route(key_) == nullptr;
}

TimePoint Destination::now() const noexcept { return side_.env().clock().now(); }
WallTime Destination::wall() const noexcept { return side_.env().clock().wall_now(); }

bool Destination::active() const noexcept {
  return !backlog_.empty() || !pool_.empty() || slots_ != 0;
}

bool Destination::forgettable() noexcept {
  return !active() && !listed && !dirty && lookups_ == 0 && !bouncing_ && cancelled_.empty() &&
         cancel_on_pump_.empty() && shaper_.at_rest(now());
}

bool Destination::due(WallTime w) const noexcept {
  return backlog_.ready() != 0 || !pool_.empty() || backlog_.next_due() <= w ||
         backlog_.promote_wanted(w);
}

bool Destination::sending() noexcept { return shaper_.allowed_connections(now()) != 0; }

void Destination::reconfigure() noexcept {
  shaper_.reconfigure(shaping_for(side_.config(), key_), side_.config().delivery.backoff_pause);
  mta_sts_ = mta_sts_applies();
  class_ = &side_.class_counters(shaper_.shaping());
  // Routes, and which rollup a domain belongs to, may have changed: look them up again.
  // Connections already open finish their work and take no more (DeliveryConnection:
  // outdated), so new TLS settings apply to the next mail; idle ones go now.
  route_.reset();
  pool_.quit_idle();
  side_.mark_dirty(*this);
}

void Destination::pause() noexcept {
  shaper_.pause();
  pool_.quit_idle();
}

std::size_t Destination::cancel(std::uint64_t message) noexcept {
  auto taken = backlog_.extract(message);
  cancelled_.insert(cancelled_.end(), taken.begin(), taken.end());
  if (!taken.empty()) side_.mark_dirty(*this);
  return taken.size();
}

DestinationInfo Destination::info() noexcept {
  DestinationInfo d;
  d.name = key_;
  d.ready = backlog_.queued_ready();
  d.deferred = backlog_.queued_deferred();
  d.in_flight = slots_;
  d.connections = static_cast<std::uint32_t>(pool_.size());
  d.max_connections = shaping().max_connections;
  const std::string_view state = shaper_.state(now());
  d.state = !state.empty() ? std::string(state) : active() ? "active" : "idle";
  stats_.fill(d, now());
  return d;
}

void Destination::add(Enqueue&& e) noexcept {
  route_.note_domain(e.domain);
  backlog_.add(e, wall());
  // A job's recipient dispatched after salvoctl bounce --id: failed on the next pump with
  // whatever of its job is queued here (one extract per job and pump, not per recipient).
  if (e.cancelled && (cancel_on_pump_.empty() || cancel_on_pump_.back() != e.message)) {
    cancel_on_pump_.push_back(e.message);
  }
  side_.mark_dirty(*this);
}

void Destination::pump() noexcept {
  if (side_.stopping()) return;
  backlog_.promote(wall());
  for (const queue::QueuedRecipient& q : backlog_.take_cancelled()) cancelled_.push_back(q);
  for (std::uint64_t m : cancel_on_pump_) cancel(m);
  cancel_on_pump_.clear();
  if (!cancelled_.empty()) fail_cancelled();
  if (pump_bouncing()) return;
  // The MTA-STS policy before anything is sent: from the cache at once (a due refresh runs
  // meanwhile), or, while it is being looked up, nothing goes — not even over a connection
  // already open (the policy it was opened under may have expired).
  const bool sts_known =
      backlog_.ready() == 0 || shaper_.sending_stopped() || mta_sts_known();
  if (sts_known) {
    for (Channel* c : std::vector<Channel*>(pool_.channels())) {
      if (c->ready()) c->fill();
    }
  }
  if (backlog_.ready() == 0) return;
  if (pump_stopped()) return;
  if (route_.stale(now())) resolve();
  switch (route_.state()) {
    case Route::State::None:
    case Route::State::Resolving: return;
    case Route::State::Failed: fail_ready(*route_.failure()); return;
    case Route::State::Ok: break;
  }
  if (!route_.rollup_key().empty()) {
    forward_to_rollup();
    return;
  }
  if (!sts_known) return;
  open_connections();
}

bool Destination::pump_bouncing() noexcept {
  if (!bouncing_) return false;
  if (backlog_.empty()) {
    bouncing_ = false;
    return false;
  }
  backlog_.flush_deferred();
  fail_ready(cancelled_by_operator());
  return true;
}

bool Destination::pump_stopped() noexcept {
  if (!shaper_.sending_stopped()) return false;
  // Held or paused: queued, not sent; but what passes its expiry still bounces.
  while (slots_ < kMaxLocalSlots) {
    const std::optional<MsgInfo> m = backlog_.peek();
    if (!m || !side_.policy().expired(from_ns(m->received_unix_ns), wall())) break;
    LocalFailure f;
    f.reply = queue::DeliveryPolicy::expired_reply(shaper_.held());
    start_slot(nullptr, std::move(f), false);
  }
  return true;
}

void Destination::open_connections() noexcept {
  const TimePoint t = now();
  const std::uint32_t allowed = shaper_.allowed_connections(t);
  const std::size_t window = side_.context().window;
  std::size_t capacity = pool_.capacity(window);
  while (pool_.held(t) < allowed && backlog_.ready() > capacity) {
    const Host* h = route_.pick(t);
    if (h == nullptr) break;
    if (sts_refuses(*h)) continue;
    if (!shaper_.try_connection(t)) break;
    Channel* c = side_.env().open(
        *this, *h, pool_.next_origination(side_.config(), shaping(), side_.context().hostname));
    pool_.add(c);
    ++side_.stats().connections;
    capacity += window;
  }
  if (pool_.empty() && allowed != 0 && route_.pick(t) == nullptr) {
    // Every host failed recently: this attempt is over for what is ready.
    LocalFailure f;
    if (last_failure_) {
      f = *last_failure_;
    } else {
      f.reply = smtp::Reply(451, {4, 4, 1}, "no MX host of " + key_ + " could be reached");
    }
    fail_ready(f);
  }
}

void Destination::forward_to_rollup() noexcept {
  for (auto& e : backlog_.drain_to(key_, route_.rollup_key(), wall())) {
    side_.env().forward(std::move(e));
  }
}

void Destination::resolve() noexcept {
  if (!route_.is_rollup()) {
    if (const auto* hops = side_.config().find_route(key_)) {
      resolve_routes(*hops);
      return;
    }
  }
  route_.begin_lookup();
  auto answer = side_.env().lookup_mx(route_.lookup_name(), [this](dns::MxAnswer a) {
    --lookups_;
    on_mx(*a);
  });
  if (answer) {
    on_mx(*answer);
  } else {
    ++lookups_;
  }
}

void Destination::resolve_routes(const std::vector<config::HostPort>& hops) noexcept {
  const auto named = route_.apply_routes(hops, now());
  for (std::size_t i : named) {
    auto answer = side_.env().lookup_host(hops[i].host, [this, i](dns::MxAnswer a) {
      --lookups_;
      route_.resolve_hop(i, *a, now());
      side_.mark_dirty(*this);
    });
    if (answer) {
      route_.resolve_hop(i, *answer, now());
    } else {
      ++lookups_;
    }
  }
}

void Destination::on_mx(const dns::MxResult& a) noexcept {
  if (route_.apply_mx(a, side_.config(), now())) {
    // From now on the rollup's pool carries this domain's mail: ours winds down.
    pool_.quit_idle();
  }
  side_.mark_dirty(*this);
}

void Destination::on_ready(Channel& c) noexcept {
  last_failure_.reset();
  c.fill();
}

Slot* Destination::take(Channel* c) noexcept {
  return start_slot(c, std::nullopt, true);
}

Slot* Destination::start_slot(Channel* c, std::optional<LocalFailure> local,
                              bool spend_rate) noexcept {
  if (!backlog_.peek()) return nullptr;
  if (spend_rate && !shaper_.try_message(now())) return nullptr;  // the tick retries
  Batch b = backlog_.take(side_.config().delivery.max_recipients);
  if (b.rcpts.empty()) return nullptr;
  return make_slot(c, std::move(local), std::move(b));
}

Slot* Destination::make_slot(Channel* c, std::optional<LocalFailure> local, Batch b) noexcept {
  auto* s = new Slot(*this, c, std::move(b.rcpts), std::move(b.info));
  side_.slot_created();
  ++slots_;
  s->local = std::move(local);
  if (!s->local && side_.policy().expired(from_ns(s->info.received_unix_ns), wall())) {
    LocalFailure f;
    f.reply = queue::DeliveryPolicy::expired_reply(false);
    s->local = std::move(f);
  }
  if (s->local) s->conn = nullptr;
  start_reads(s);
  return s;
}

void Destination::start_reads(Slot* s) noexcept {
  // Reads complete from the engine, never inside read(): s stays valid for the caller.
  for (int i = 0; i < 2; ++i) {
    s->parts[i].slot = s;
    s->parts[i].which = i;
  }
  DeliveryEnv& env = side_.env();
  const MsgInfo& m = s->info;
  if (!m.is_job) {
    s->reads_pending = 1;
    env.read(m.origin, m.record, &s->parts[0]);
    return;
  }
  if (m.batches.empty()) {
    s->read_error = make_error_code(std::errc::invalid_argument);
    s->reads_pending = 1;
    env.read(m.origin, m.job_template, &s->parts[1]);
    return;
  }
  s->reads_pending = 2;
  env.read(m.origin, m.batches.begin()->second, &s->parts[0]);
  env.read(m.origin, m.job_template, &s->parts[1]);
}

void Destination::fail_cancelled() noexcept {
  while (!cancelled_.empty() && slots_ < kMaxLocalSlots) {
    Batch b;
    const std::uint64_t message = cancelled_.front().message;
    std::optional<MsgInfo> m = backlog_.info(message, cancelled_.front().recipient);
    if (!m) {
      SALVO_BUG("outbound: a cancelled recipient without its message info");
      cancelled_.pop_front();
      continue;
    }
    const std::size_t max = m->is_job ? 1 : side_.config().delivery.max_recipients;
    while (!cancelled_.empty() && b.rcpts.size() < max && cancelled_.front().message == message) {
      b.rcpts.push_back(cancelled_.front());
      cancelled_.pop_front();
    }
    b.info = std::move(*m);
    make_slot(nullptr, cancelled_by_operator(), std::move(b));
  }
}

void Destination::fail_ready(const LocalFailure& f) noexcept {
  while (backlog_.ready() != 0 && slots_ < kMaxLocalSlots) {
    if (start_slot(nullptr, f, false) == nullptr) break;
  }
}

void Destination::slot_ready(Slot* s) noexcept {
  s->decode();
  if (s->read_error) {
    ++side_.stats().read_errors;
    log::error("outbound: message {} of shard {}: spool record unreadable: {}",
               spool::format_id(s->message()), s->info.origin, s->read_error.message());
    LocalFailure f;
    f.reply = smtp::Reply(451, {4, 3, 0}, "queue file read error");
    s->local = std::move(f);
  }
  if (s->local) {
    if (s->conn != nullptr) s->conn->slot_detached(s);
    finish(s, nullptr);
    return;
  }
  if (s->conn == nullptr || side_.stopping()) {
    if (s->conn != nullptr) s->conn->slot_detached(s);
    requeue(s);
    return;
  }
  s->compose();
  side_.send(s);
}

void Destination::send_signed(Slot* s, const Signers& signers) noexcept {
  if (s->conn == nullptr || side_.stopping()) {  // the connection went while it waited
    if (s->conn != nullptr) s->conn->slot_detached(s);
    requeue(s);
    return;
  }
  s->sign(signers, side_.signing_cache());
  s->conn->submit(s);
}

void Destination::requeue(Slot* s) noexcept {
  backlog_.requeue(s->rcpts);
  --slots_;
  side_.slot_freed();
  delete s;
  side_.mark_dirty(*this);
}

void Destination::finish(Slot* s, const smtp::TransactionResult* result) noexcept {
  TransactionFacts f;
  f.message = s->message();
  f.destination = key_;
  f.rcpts = s->rcpts;
  f.rcpt_data = s->rcpt_data;
  f.local = s->local ? &*s->local : nullptr;
  f.result = result;
  std::string ip, tls, tls_policy;
  if (s->conn != nullptr) {
    f.over_connection = true;
    f.mx = s->conn->host().name;
    ip = s->conn->host().address.ip();
    tls = s->conn->tls_version();
    tls_policy = s->conn->tls_policy();
    f.plaintext_fallback = s->conn->plaintext_fallback();
    f.remote_dsn = s->conn->remote_dsn();
  } else if (s->local) {
    f.mx = s->local->mx;
    tls_policy = s->local->tls_policy;
  }
  f.ip = ip;
  f.tls = tls;
  f.tls_policy = tls_policy;
  f.reverse_path = s->reverse_path;
  f.envid = s->envid;
  f.job = s->job;
  f.source = s->source;
  f.ret = s->ret;
  f.flags = s->flags;
  f.original = s->original;
  f.received_unix_ns = s->info.received_unix_ns;
  f.now_unix_ns = to_ns(wall());
  f.unique = s->message() ^ (static_cast<std::uint64_t>(f.now_unix_ns) << 1) ^ s->cookie;
  f.reporting_mta = side_.context().hostname;
  f.dsn_from = side_.config().delivery.dsn_from;
  apply(s, settle(f, side_.policy()), f);
}

void Destination::apply(Slot* s, Settlement&& st, const TransactionFacts& f) noexcept {
  OutboundStats& stats = side_.stats();
  ++stats.transactions;
  stats.delivered += st.tally.delivered;
  stats.deferred += st.tally.deferred;
  stats.bounced += st.tally.bounced;
  stats.expired += st.tally.expired;
  if (f.local != nullptr && f.local->loop) stats.loops += st.tally.bounced;
  class_->delivered += st.tally.delivered;
  class_->deferred += st.tally.deferred;
  class_->bounced += st.tally.bounced;
  class_->expired += st.tally.expired;
  for (std::uint64_t i = 0; i < st.tally.delivered; ++i) shaper_.on_delivered();
  stats_.add(st.tally, now(), std::move(st.last_reply));
  for (auto& b : st.bounces) side_.note_bounce(std::move(b));
  const std::string id = spool::format_id(f.message);
  for (const auto& line : st.lines) side_.env().account(to_event(line, f, id));
  for (const auto& q : st.deferred) backlog_.defer(q, wall());
  for (std::uint64_t m : st.finished) backlog_.release(m);
  if (st.tls_needed && s->conn != nullptr) route_.tls_needed(s->conn->host().address);
  if (st.dsn) {
    if (auto text = dsn::build_dsn(*st.dsn)) {
      Outcomes& out = st.outcomes;
      out.dsn = std::move(*text);
      out.dsn_to = st.dsn->original_sender;
      out.dsn_8bit = std::any_of(out.dsn.begin(), out.dsn.end(),
                                 [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
      out.dsn_smtputf8 = st.dsn->smtputf8;
    } else {
      log::warn("outbound: message {}: no DSN: {}", id, text.error().message());
    }
  }
  if (st.throttle) shaper_.throttle(now());
  const std::uint32_t origin = s->info.origin;
  --slots_;
  side_.slot_freed();
  delete s;
  side_.env().to_origin(origin, std::move(st.outcomes));
  side_.mark_dirty(*this);
}

void Destination::session_failed(Channel& c, const smtp::Reply& reply, bool before_ready,
                                 bool local) noexcept {
  const queue::SessionFailure sf =
      side_.policy().session_failed(reply, before_ready, local, c.host().name);
  if (sf.throttle) shaper_.throttle(now());
  if (!sf.try_next_host) return;
  route_.mark_down(c.host().address, now() + sf.down_for);
  LocalFailure f;
  f.stage = queue::Stage::Connect;
  f.reply = sf.deferral;
  f.mx = c.host().name;
  f.tls_policy = c.tls_policy();
  last_failure_ = std::move(f);
}

// The MTA-STS policy (RFC 8461) before sending, where it applies: from the shard's cache at
// once, or a wait for its lookup (the pump runs again when it is known).
bool Destination::mta_sts_known() noexcept {
  if (!mta_sts_) {
    sts_.reset();
    return true;
  }
  auto p = side_.env().mta_sts(key_);
  if (!p) return false;
  if (*p != sts_) {
    // A new policy (or none any more): idle connections made under the old one go.
    if (sts_ || *p) pool_.quit_idle();
    sts_ = std::move(*p);
    ++tls_epoch_;
  }
  return true;
}

// Under an enforced policy only the MX hosts it lists are used (§4.1, §5): another one is
// skipped (marked down a minute), and when none is left the attempt is deferred saying so.
bool Destination::sts_refuses(const Host& h) noexcept {
  if (!sts_ || sts_->mode != StsMode::Enforce || mx_allowed(*sts_, h.name)) return false;
  route_.mark_down(h.address, now() + std::chrono::minutes(1));
  LocalFailure f;
  f.stage = queue::Stage::Connect;
  f.reply = smtp::Reply(451, {4, 7, 5},
                        fmt::format("MX {} is not listed in the MTA-STS policy of {} (mode "
                                    "enforce)", h.name, key_));
  f.mx = h.name;
  f.tls_policy = "mx-mismatch: " + h.name;
  log::info("outbound: {}: {}", key_, f.reply.text);
  last_failure_ = std::move(f);
  return true;
}

TlsDemand Destination::tls_demand(const Host& h) const {
  TlsDemand d = configured_demand(side_.config(), shaping());
  if (sts_ && sts_->mode == StsMode::Enforce) {
    // §5: TLS required, the certificate verified against the MX host name.
    d.starttls = smtp::TlsPolicy::Required;
    d.verify = true;
    d.authority = TlsAuthority::MtaSts;
  } else if (sts_ && sts_->mode == StsMode::Testing) {
    // §5: delivered as without a policy ([[shaping]] tls as it is); what enforce would
    // have refused is reported.
    d.sts_testing = true;
    if (!mx_allowed(*sts_, h.name)) d.testing_failure = "mx-mismatch: " + h.name;
  }
  // DANE goes here (RFC 8461 §2): a usable TLSA record of h overrides the above with
  // starttls Required, verify by TLSA, authority Dane.
  return d;
}

void Destination::connection_gone(Channel* c) noexcept {
  pool_.remove(c, now());
  side_.mark_dirty(*this);
}

void Destination::tls_failed(const net::SocketAddress& a) noexcept {
  route_.tls_failed(a, now() + std::chrono::hours(1));
  log::info("outbound: {}: STARTTLS with {} failed; plaintext to that host for an hour", key_,
            a.to_string());
  side_.mark_dirty(*this);
}

}  // namespace salvo::outbound
