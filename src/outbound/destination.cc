// SPDX-License-Identifier: Apache-2.0
// Destination: one routing domain's queue, shaping, back-off, route and connection pool on
// its owner shard, and the reads and composition of each transaction (verdicts.cc turns
// the answers into outcomes).
#include <algorithm>
#include <cctype>
#include <chrono>
#include <utility>

#include <fmt/format.h>

#include <salvo/base/log.h>
#include <salvo/spool/template.h>

#include "outbound/internal.h"

namespace salvo::outbound {
namespace {

using std::chrono::duration_cast;
using std::chrono::nanoseconds;

constexpr std::string_view kRollupPrefix = "mx:";

const config::Shaping* shaping_for(const config::Config& c, std::string_view key) {
  if (key.starts_with(kRollupPrefix)) {
    for (const auto& s : c.shaping) {
      if (!s.mx_suffix.empty() && s.mx_suffix == key.substr(kRollupPrefix.size())) return &s;
    }
    return &c.default_shaping;
  }
  if (const auto* s = c.find_shaping_for_domain(key)) return s;
  return &c.default_shaping;
}

queue::BackoffOptions backoff_options(const config::Delivery& d) {
  queue::BackoffOptions o;
  o.first_pause = d.backoff_pause;
  o.max_pause = std::max<Duration>(d.backoff_pause * 30, d.backoff_pause);
  return o;
}

// A tenth of a second's worth of tokens (at least one): a rate limit must hold over any
// second, so the bucket may not hold a whole period's worth ("20000/h" is not 20000 at once).
std::uint64_t burst_of(const Rate& r) {
  double per_tenth = r.per_second() / 10.0;
  return per_tenth < 1.0 ? 1 : static_cast<std::uint64_t>(per_tenth);
}

}  // namespace

void Slot::Part::on_record(Result<spool::RecordBytes> rec) noexcept {
  if (rec) {
    slot->bytes[which] = std::move(*rec);
  } else if (!slot->read_error) {
    slot->read_error = rec.error();
  }
  if (--slot->reads_pending == 0) slot->dest->slot_ready(slot);
}

Destination::Destination(Outbound::Impl& ob, std::string domain)
    : ob_(ob),
      domain_(std::move(domain)),
      shaping_(shaping_for(ob.cfg(), domain_)),
      class_(&ob.class_counters(*shaping_)),
      backoff_(std::max<std::uint32_t>(shaping_->max_connections, 1),
               backoff_options(ob.cfg().delivery)) {
  is_rollup_ = domain_.starts_with(kRollupPrefix);
  set_rates();
}

void Destination::set_rates() noexcept {
  msg_rate_.reset();
  conn_rate_.reset();
  if (shaping_->max_message_rate) msg_rate_.emplace(*shaping_->max_message_rate, burst_of(*shaping_->max_message_rate));
  if (shaping_->max_connection_rate) conn_rate_.emplace(*shaping_->max_connection_rate, burst_of(*shaping_->max_connection_rate));
}

bool Destination::active() const noexcept {
  return !queue_.empty() || !conns_.empty() || slots_ != 0;
}

bool Destination::paused() noexcept { return allowed_connections() == 0; }

void Destination::reconfigure() noexcept {
  shaping_ = shaping_for(ob_.cfg(), domain_);
  class_ = &ob_.class_counters(*shaping_);
  backoff_.set_max_connections(std::max<std::uint32_t>(shaping_->max_connections, 1));
  set_rates();
  // Routes, and which rollup a domain belongs to, may have changed: look them up again
  // (connections already open finish their work).
  route_ = RouteState::None;
  rollup_key_.clear();
  ob_.mark_dirty(*this);
}

void Destination::note_delivery() noexcept {
  const auto sec = std::chrono::duration_cast<std::chrono::seconds>(
                       ob_.shard.clock().now().time_since_epoch())
                       .count();
  const auto i = static_cast<std::size_t>(sec % 60);
  if (second_of_[i] != sec) {
    second_of_[i] = sec;
    per_second_[i] = 0;
  }
  ++per_second_[i];
}

DestinationInfo Destination::info() noexcept {
  DestinationInfo d;
  d.name = domain_;
  d.ready = queue_.ready();
  d.deferred = queue_.deferred();
  d.in_flight = slots_;
  d.connections = static_cast<std::uint32_t>(conns_.size());
  d.max_connections = shaping_->max_connections;
  const TimePoint now = ob_.shard.clock().now();
  if (operator_paused_) {
    d.state = "paused";
  } else if (shaping_->max_connections == 0) {
    d.state = "held";
  } else {
    switch (backoff_.state(now)) {
      case queue::Backoff::State::Paused: d.state = "backoff"; break;
      case queue::Backoff::State::Recovering: d.state = "recovering"; break;
      case queue::Backoff::State::Normal: d.state = active() ? "active" : "idle"; break;
    }
  }
  d.delivered = delivered_;
  d.deferrals = deferrals_;
  d.bounced = bounced_;
  const auto sec =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  for (std::size_t i = 0; i < 60; ++i) {
    const std::int64_t s = second_of_[i];
    if (s == sec - 1) d.delivered_last_s = per_second_[i];
    if (s >= sec - 60 && s < sec) d.delivered_last_60s += per_second_[i];
  }
  d.last_reply = last_reply_;
  return d;
}

std::uint32_t Destination::allowed_connections() noexcept {
  if (shaping_->max_connections == 0 || operator_paused_) return 0;  // held / paused
  return std::min(shaping_->max_connections, backoff_.allowed_connections(ob_.shard.clock().now()));
}

void Destination::add(Enqueue&& e) noexcept {
  MsgInfo& m = msgs_[e.message];
  if (m.refs == 0) {
    m.origin = e.origin;
    m.is_job = e.is_job;
    m.received_unix_ns = e.received_unix_ns;
    if (e.is_job) {
      m.job_template = e.job_template;
    } else {
      m.record = e.record;
    }
  }
  if (e.is_job) m.batches.emplace(e.recipient - e.index_in_record, e.record);
  ++m.refs;
  if (is_rollup_) {
    if (resolve_domain_.empty()) resolve_domain_ = e.domain;
    latest_domain_ = e.domain;
  }
  queue::QueuedRecipient q;
  q.message = e.message;
  q.recipient = e.recipient;
  q.attempts = e.attempts;
  q.next_attempt = from_ns(e.next_attempt_unix_ns);
  if (e.next_attempt_unix_ns != 0 && q.next_attempt > ob_.shard.clock().wall_now()) {
    queue_.push_deferred(q);
  } else {
    queue_.push_ready(q);
  }
  ob_.mark_dirty(*this);
}

void Destination::pump() noexcept {
  if (ob_.stopping) return;
  const TimePoint now = ob_.shard.clock().now();
  queue_.promote(ob_.shard.clock().wall_now());
  if (!cancelled_.empty()) fail_cancelled();
  if (bouncing_) {
    if (queue_.ready() == 0 && queue_.deferred() == 0) {
      bouncing_ = false;
    } else {
      queue_.flush_deferred();
      LocalFailure f;
      f.stage = queue::Stage::Rcpt;
      f.reply = smtp::Reply(550, {5, 0, 0}, "delivery cancelled by the operator");
      fail_ready(std::move(f));
      return;
    }
  }
  for (DeliveryConnection* c : std::vector<DeliveryConnection*>(conns_)) {
    if (c->ready()) c->fill();
  }
  if (queue_.ready() == 0) return;
  if (shaping_->max_connections == 0 || operator_paused_) {
    // Held or paused: queued, not sent; but what passes its expiry still bounces.
    const WallTime wall = ob_.shard.clock().wall_now();
    while (slots_ < 256) {
      const queue::QueuedRecipient* head = queue_.peek_ready();
      if (head == nullptr) break;
      auto it = msgs_.find(head->message);
      if (it == msgs_.end() || !ob_.retry.expired(from_ns(it->second.received_unix_ns), wall)) {
        break;
      }
      LocalFailure f;
      f.reply = smtp::Reply(451, {4, 4, 7}, "message expired in the queue (destination held)");
      start_slot(nullptr, std::move(f), false);
    }
    return;
  }
  if (route_ == RouteState::None || ((route_ == RouteState::Ok || route_ == RouteState::Failed) &&
                                     now >= route_expires_)) {
    resolve();
  }
  if (route_ == RouteState::Resolving) return;
  if (!rollup_key_.empty() && route_ == RouteState::Ok) {
    forward_to_rollup();
    return;
  }
  if (route_ == RouteState::Failed) {
    fail_ready(*route_failure_);
    return;
  }
  const std::uint32_t allowed = allowed_connections();
  std::size_t capacity = 0;
  for (DeliveryConnection* c : conns_) {
    std::size_t w = ob_.shared.window;
    capacity += c->connecting() ? w : (c->ready() && w > c->load() ? w - c->load() : 0);
  }
  while (connections_held() < allowed && queue_.ready() > capacity) {
    const Host* h = pick_host();
    if (h == nullptr) break;
    if (conn_rate_ && !conn_rate_->try_take(now)) break;
    open_connection(*h);
    capacity += ob_.shared.window;
  }
  if (conns_.empty() && allowed != 0 && pick_host() == nullptr) {
    // Every host failed recently: this attempt is over for what is ready.
    LocalFailure f;
    if (last_failure_) {
      f = *last_failure_;
    } else {
      f.reply = smtp::Reply(451, {4, 4, 1}, "no MX host of " + domain_ + " could be reached");
    }
    fail_ready(std::move(f));
  }
}

void Destination::forward_to_rollup() noexcept {
  queue_.flush_deferred();
  const WallTime wall = ob_.shard.clock().wall_now();
  for (;;) {
    auto batch = queue_.take_transaction(1000);
    if (batch.empty()) break;
    for (const auto& q : batch) {
      auto it = msgs_.find(q.message);
      if (it == msgs_.end()) {
        SALVO_BUG("outbound: a queued recipient without its message info");
        continue;  // it stays in the spool: the next start routes it
      }
      MsgInfo& m = it->second;
      Enqueue e;
      e.origin = m.origin;
      e.message = q.message;
      e.recipient = q.recipient;
      e.is_job = m.is_job;
      e.received_unix_ns = m.received_unix_ns;
      e.attempts = q.attempts;
      if (q.attempts != 0 && q.next_attempt > wall) e.next_attempt_unix_ns = to_ns(q.next_attempt);
      if (m.is_job) {
        e.job_template = m.job_template;
        auto b = m.batches.upper_bound(q.recipient);
        if (b == m.batches.begin()) {
          SALVO_BUG("outbound: a job recipient without its batch");
          if (--m.refs == 0) msgs_.erase(it);
          continue;  // it stays in the spool: the next start routes it
        }
        --b;
        e.record = b->second;
        e.index_in_record = q.recipient - b->first;
      } else {
        e.record = m.record;
        e.index_in_record = q.recipient;
      }
      e.domain = domain_;
      e.key = rollup_key_;
      if (--m.refs == 0) msgs_.erase(it);
      ob_.route(std::move(e));
    }
  }
}

void Destination::resolve() noexcept {
  const config::Config& c = ob_.cfg();
  if (!is_rollup_) {
    if (const auto* hops = c.find_route(domain_)) {
    hosts_.clear();
    for (const auto& hp : *hops) {
      auto a = net::SocketAddress::parse(hp.host, hp.port);
      if (!a) {
        // Route targets given by name are not resolved yet: say so in the deferral.
        LocalFailure f;
        f.reply = smtp::Reply(451, {4, 4, 3}, "route " + hp.to_string() +
                                                  ": host names in [routes] are not supported; "
                                                  "use an IP address");
        route_failure_ = f;
        route_ = RouteState::Failed;
        route_expires_ = ob_.shard.clock().now() + std::chrono::seconds(60);
        return;
      }
      a->set_port(hp.port);
      // Route hops are tried in their order: each its own preference.
      hosts_.push_back(Host{hp.host, *a, static_cast<std::uint16_t>(hosts_.size()), {}, {}});
    }
    route_ = RouteState::Ok;
    route_expires_ = TimePoint::max();
    return;
    }
  }
  route_ = RouteState::Resolving;
  const std::string& name = is_rollup_ ? resolve_domain_ : domain_;
  auto answer = ob_.mx->lookup(name, [this](dns::MxAnswer a) { on_mx(a); });
  if (answer) on_mx(answer);
}

void Destination::on_mx(const dns::MxAnswer& a) noexcept {
  route_expires_ = a->expires;
  if (is_rollup_) {
    // A rollup stands for many domains: one domain's DNS trouble (or move away from the
    // provider) must not bounce or defer the others. Take the hosts only from an answer
    // that still matches the suffix; otherwise try the latest domain next time, soon.
    const std::string_view suffix = std::string_view(domain_).substr(kRollupPrefix.size());
    const bool matches = a->status == dns::MxStatus::Ok && !a->hosts.empty() &&
                         a->hosts.front().name.ends_with(suffix);
    if (!matches) {
      if (!latest_domain_.empty()) resolve_domain_ = latest_domain_;
      route_expires_ = ob_.shard.clock().now() + std::chrono::seconds(5);
      if (!hosts_.empty()) {
        route_ = RouteState::Ok;  // keep serving the hosts we had
      } else {
        LocalFailure f;
        f.reply = smtp::Reply(451, {4, 4, 3}, "MX rollup " + domain_ + ": no host yet (" +
                                                  a->detail + ")");
        route_failure_ = f;
        route_ = RouteState::Failed;
      }
      ob_.mark_dirty(*this);
      return;
    }
  } else if (a->status == dns::MxStatus::Temporary && route_ == RouteState::Ok &&
             !hosts_.empty()) {
    // A failed refresh: keep delivering to the hosts we know (serve stale) and ask again
    // when the failure's cache time is up.
    ob_.mark_dirty(*this);
    return;
  }
  if (a->status == dns::MxStatus::Ok) {
    std::vector<Host> hosts;
    for (const auto& h : a->hosts) {
      for (const auto& addr : h.addresses) {
        Host host{h.name, addr, h.preference, {}, {}};
        host.address.set_port(ob_.cfg().delivery.smtp_port);
        // Keep a host's down mark across refreshes.
        for (const auto& old : hosts_) {
          if (old.address == host.address) {
            host.down_until = old.down_until;
            host.tls_failed_until = old.tls_failed_until;
          }
        }
        hosts.push_back(std::move(host));
      }
    }
    hosts_ = std::move(hosts);
    route_ = hosts_.empty() ? RouteState::Failed : RouteState::Ok;
    if (route_ == RouteState::Failed) {
      LocalFailure f;
      f.reply = smtp::Reply(550, {5, 1, 2}, domain_ + ": no usable MX host address");
      route_failure_ = f;
    } else if (!is_rollup_ && ob_.cfg().find_shaping_for_domain(domain_) == nullptr) {
      // MX rollup: an mx_suffix entry applies when the most preferred MX matches it; the
      // limit is the rollup destination's, on its shard, for every domain it covers.
      const std::string before = rollup_key_;
      rollup_key_.clear();
      if (const auto* s = ob_.cfg().find_shaping_for_mx(hosts_.front().name)) {
        rollup_key_ = std::string(kRollupPrefix) + s->mx_suffix;
      }
      if (!rollup_key_.empty() && before.empty()) {
        // From now on the rollup's pool carries this domain's mail: ours winds down.
        for (DeliveryConnection* c : std::vector<DeliveryConnection*>(conns_)) {
          if (c->ready() && c->load() == 0) c->quit();
        }
      }
    }
  } else {
    LocalFailure f;
    f.stage = queue::Stage::Connect;
    if (a->status == dns::MxStatus::Permanent) {
      // RFC 7505 null MX, NXDOMAIN, no address: the domain does not take mail.
      f.reply = smtp::Reply(550, {5, 1, 2}, "bad destination domain: " + a->detail);
      f.stage = queue::Stage::Rcpt;  // a verdict about the recipient's domain: bounce
    } else {
      f.reply = smtp::Reply(451, {4, 4, 3}, "DNS lookup failed: " + a->detail);
    }
    route_failure_ = f;
    route_ = RouteState::Failed;
  }
  ob_.mark_dirty(*this);
}

const Host* Destination::pick_host() noexcept {
  // The most preferred usable hosts, in turn (RFC 5321 §5.1: spread over equal preference).
  const TimePoint now = ob_.shard.clock().now();
  const Host* first = nullptr;
  std::size_t usable = 0;
  for (const Host& h : hosts_) {
    if (h.down_until > now) continue;
    if (first == nullptr) first = &h;
    if (h.preference != first->preference) break;
    ++usable;
  }
  if (first == nullptr) return nullptr;
  std::size_t k = next_host_++ % usable;
  for (const Host& h : hosts_) {
    if (h.down_until > now || h.preference != first->preference) continue;
    if (k-- == 0) return &h;
  }
  return first;
}

void Destination::throttle(TimePoint now) noexcept {
  if (now < backoff_.paused_until()) return;  // the same episode
  backoff_.on_throttled(now);
}

void Destination::tls_needed(const net::SocketAddress& a) noexcept {
  for (Host& h : hosts_) {
    if (h.address == a) h.tls_failed_until = {};
  }
}

void Destination::tls_failed(const net::SocketAddress& a) noexcept {
  const TimePoint until = ob_.shard.clock().now() + std::chrono::hours(1);
  for (Host& h : hosts_) {
    if (h.address == a) h.tls_failed_until = until;
  }
  log::info("outbound: {}: STARTTLS with {} failed; plaintext to that host for an hour",
            domain_, a.to_string());
  ob_.mark_dirty(*this);
}

void Destination::open_connection(const Host& h) noexcept {
  const config::Config& c = ob_.cfg();
  const net::SocketAddress* source = nullptr;
  net::SocketAddress src;
  std::string helo = ob_.shared.hostname;
  if (!shaping_->egress.empty()) {
    if (const auto* e = c.find_egress(shaping_->egress)) {
      const auto& ip = e->addresses[egress_next_++ % e->addresses.size()];
      if (auto a = net::SocketAddress::parse(ip.to_string(), 0)) {
        src = *a;
        source = &src;
      }
      if (!e->ehlo.empty()) helo = e->ehlo;
    }
  }
  auto* conn = new DeliveryConnection(*this, h, source, std::move(helo));
  conns_.push_back(conn);
  ++ob_.stats.connections;
  conn->start();
}

void Destination::on_ready(DeliveryConnection& c) noexcept {
  last_failure_.reset();
  c.fill();
}

Slot* Destination::take(DeliveryConnection* c) noexcept {
  return start_slot(c, std::nullopt, true);
}

Slot* Destination::start_slot(DeliveryConnection* c, std::optional<LocalFailure> local,
                              bool spend_rate) noexcept {
  const TimePoint now = ob_.shard.clock().now();
  const queue::QueuedRecipient* head = queue_.peek_ready();
  if (head == nullptr) return nullptr;
  auto it = msgs_.find(head->message);
  if (it == msgs_.end()) {
    SALVO_BUG("outbound: a queued recipient without its message info");
    (void)queue_.take_transaction(1);
    return nullptr;
  }
  if (spend_rate && msg_rate_ && !msg_rate_->try_take(now)) return nullptr;  // tick retries
  // A job's recipients each get their own expansion: one per transaction.
  std::size_t max = it->second.is_job ? 1 : ob_.cfg().delivery.max_recipients;
  return make_slot(c, std::move(local), queue_.take_transaction(max));
}

Slot* Destination::make_slot(DeliveryConnection* c, std::optional<LocalFailure> local,
                             std::vector<queue::QueuedRecipient> rcpts) noexcept {
  auto it = msgs_.find(rcpts.front().message);
  if (it == msgs_.end()) {
    SALVO_BUG("outbound: a queued recipient without its message info");
    return nullptr;
  }
  const MsgInfo& m = it->second;
  Slot* s = ob_.new_slot();
  s->dest = this;
  s->conn = c;
  s->local = std::move(local);
  s->message = rcpts.front().message;
  s->rcpts = std::move(rcpts);
  s->info.origin = m.origin;
  s->info.is_job = m.is_job;
  s->info.record = m.record;
  s->info.job_template = m.job_template;
  s->info.received_unix_ns = m.received_unix_ns;
  ++slots_;
  if (!s->local && ob_.retry.expired(from_ns(m.received_unix_ns), ob_.shard.clock().wall_now())) {
    LocalFailure f;
    f.reply = smtp::Reply(451, {4, 4, 7}, "message expired in the queue");
    s->local = std::move(f);
  }
  if (s->local) s->conn = nullptr;
  // Reads complete from the engine, never inside read(): s stays valid for the caller.
  spool::SpoolReader& reader = ob_.reader(m.origin);
  for (int i = 0; i < 2; ++i) {
    s->parts[i].slot = s;
    s->parts[i].which = i;
  }
  if (!m.is_job) {
    s->reads_pending = 1;
    reader.read(m.record, &s->parts[0]);
    return s;
  }
  const std::uint32_t r = s->rcpts.front().recipient;
  auto b = m.batches.upper_bound(r);
  if (b == m.batches.begin()) {
    s->read_error = make_error_code(std::errc::invalid_argument);
    s->reads_pending = 1;
    reader.read(m.job_template, &s->parts[1]);
    return s;
  }
  --b;
  s->info.batches.emplace(b->first, b->second);
  s->reads_pending = 2;
  reader.read(b->second, &s->parts[0]);
  reader.read(m.job_template, &s->parts[1]);
  return s;
}

void Destination::fail_cancelled() noexcept {
  constexpr std::size_t kMaxLocalSlots = 256;  // as fail_ready: the rest from the tick
  while (!cancelled_.empty() && slots_ < kMaxLocalSlots) {
    std::vector<queue::QueuedRecipient> rcpts;
    const std::uint64_t message = cancelled_.front().message;
    const auto it = msgs_.find(message);
    const std::size_t max = it != msgs_.end() && it->second.is_job
                                ? 1
                                : ob_.cfg().delivery.max_recipients;
    while (!cancelled_.empty() && rcpts.size() < max && cancelled_.front().message == message) {
      rcpts.push_back(cancelled_.front());
      cancelled_.pop_front();
    }
    LocalFailure f;
    f.stage = queue::Stage::Rcpt;
    f.reply = smtp::Reply(550, {5, 0, 0}, "delivery cancelled by the operator");
    if (make_slot(nullptr, std::move(f), std::move(rcpts)) == nullptr) break;
  }
}

void Destination::fail_ready(LocalFailure f) noexcept {
  // Bounded: each slot reads its message; the rest continues from the tick.
  constexpr std::size_t kMaxLocalSlots = 256;
  while (queue_.ready() != 0 && slots_ < kMaxLocalSlots) {
    if (start_slot(nullptr, f, false) == nullptr) break;
  }
}

void Destination::slot_ready(Slot* s) noexcept {
  if (!s->read_error) {
    if (!s->info.is_job) {
      auto m = spool::decode_message(s->bytes[0].raw.payload);
      if (!m) {
        s->read_error = m.error();
      } else {
        s->set_envelope(*m, m->reverse_path, m->body);
        for (const auto& q : s->rcpts) {
          Slot::Rcpt r;
          if (q.recipient < m->recipients.size()) {
            r.address = m->recipients[q.recipient].address;
            r.notify = m->recipients[q.recipient].notify;
            r.orcpt = m->recipients[q.recipient].orcpt;
          }
          s->rcpt_data.push_back(std::move(r));
        }
      }
    } else {
      auto b = spool::decode_job_recipients(s->bytes[0].raw.payload);
      auto t = spool::decode_job_template(s->bytes[1].raw.payload);
      if (!b || !t) {
        s->read_error = !b ? b.error() : t.error();
      } else {
        s->set_envelope(*t, t->from, t->content);
        for (const auto& q : s->rcpts) {
          Slot::Rcpt r;
          std::uint32_t k = q.recipient - b->first_index;
          if (q.recipient >= b->first_index && k < b->recipients.size()) {
            const auto& jr = b->recipients[k];
            r.address = jr.address;
            r.notify = jr.notify;
            r.orcpt = jr.orcpt;
            r.vars.assign(jr.vars.begin(), jr.vars.end());
          }
          s->rcpt_data.push_back(std::move(r));
        }
      }
    }
  }
  if (s->read_error) {
    ++ob_.stats.read_errors;
    log::error("outbound: message {} of shard {}: spool record unreadable: {}",
               format_id(s->message), s->info.origin, s->read_error.message());
    LocalFailure f;
    f.reply = smtp::Reply(451, {4, 3, 0}, "queue file read error");
    s->local = std::move(f);
  }
  if (s->local) {
    if (s->conn != nullptr) s->conn->slot_detached(s);
    finish(s, nullptr);
    return;
  }
  if (s->conn == nullptr || ob_.stopping) {
    if (s->conn != nullptr) s->conn->slot_detached(s);
    requeue(s);
    return;
  }
  // The message as it goes out: the job's template expanded for its recipient, then the
  // DKIM signature of the From: domain's key in front.
  std::string_view base = s->body_source;
  if (s->info.is_job) {
    auto tpl = spool::Template::parse(s->body_source);
    if (tpl.has_placeholders()) {
      tpl.expand(s->rcpt_data.front().vars, s->expanded);
      base = s->expanded;
    }
  }
  s->original = base;
  if (const dkim::Signer* signer = ob_.signer_for(from_domain(base))) {
    auto sig = signer->sign(base, std::chrono::duration_cast<std::chrono::seconds>(
                                      ob_.shard.clock().wall_now().time_since_epoch())
                                      .count());
    if (sig) {
      s->body.reserve(sig->size() + base.size());
      s->body = *sig;
      s->body.append(base);
      s->send = s->body;
    } else {
      log::warn("outbound: message {}: DKIM signing failed ({}); sent unsigned",
                format_id(s->message), sig.error().message());
      s->send = base;
    }
  } else {
    s->send = base;
  }
  s->conn->submit(s);
}

void Destination::requeue(Slot* s) noexcept {
  for (const auto& q : s->rcpts) queue_.push_ready(q);
  --slots_;
  ob_.free_slot(s);
  ob_.mark_dirty(*this);
}

void Destination::session_failed(DeliveryConnection& c, const smtp::Reply& reply,
                                 bool before_ready, bool local) noexcept {
  const TimePoint now = ob_.shard.clock().now();
  queue::Reply qr{reply.code, {}, reply.text};
  std::string enh = reply.status.to_string();
  qr.enhanced = enh;
  queue::Decision d = ob_.classifier->classify(
      before_ready ? queue::Stage::Greeting : queue::Stage::Mail, qr);
  // Only the server's word throttles; our own refusals (TLS policy) do not.
  if (d.throttled && !local) throttle(now);
  if (before_ready || d.next_mx) {
    Duration down = ob_.cfg().delivery.retry_schedule.front();
    down = std::min<Duration>(down, std::chrono::minutes(5));
    for (Host& h : hosts_) {
      if (h.address == c.host().address) h.down_until = now + down;
    }
    LocalFailure f;
    f.stage = queue::Stage::Connect;
    f.reply = reply.code / 100 == 4 ? reply
                                    : smtp::Reply(451, {4, 4, 0}, fmt::format("{} said: {} {}",
                                                                              c.host().name,
                                                                              reply.code,
                                                                              reply.text));
    f.mx = c.host().name;
    last_failure_ = std::move(f);
  }
}

void Destination::connection_gone(DeliveryConnection* c) noexcept {
  conns_.erase(std::remove(conns_.begin(), conns_.end(), c), conns_.end());
  // The server may still be closing its side when we see its FIN: the slot stays taken a
  // moment longer, so the receiver never counts more than max_connections from us.
  releasing_.push_back(ob_.shard.clock().now() + std::chrono::milliseconds(50));
  ob_.mark_dirty(*this);
}

std::size_t Destination::connections_held() noexcept {
  const TimePoint now = ob_.shard.clock().now();
  while (!releasing_.empty() && releasing_.front() <= now) releasing_.pop_front();
  return conns_.size() + releasing_.size();
}

}  // namespace salvo::outbound
