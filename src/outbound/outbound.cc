// SPDX-License-Identifier: Apache-2.0
// Outbound: wires a shard's Origin and DestinationSide to the shard — the DeliveryEnv over
// the shard's engine (resolver, MX cache, spool readers, connections, mailbox), the tick,
// start-up, reload and stop.
#include <salvo/outbound/outbound.h>

#include <algorithm>

#include <fmt/format.h>

#include <salvo/accounting/accounting.h>
#include <salvo/base/hash.h>
#include <salvo/base/log.h>
#include <salvo/dns/resolver.h>
#include <salvo/dns/tlsa_cache.h>
#include <salvo/io/detachable_op.h>
#include <salvo/io/engine.h>
#include <salvo/net/stack.h>
#include <salvo/spool/spool_reader.h>

#include "outbound/delivery_connection.h"
#include "outbound/destination.h"
#include "outbound/destination_side.h"
#include "outbound/mta_sts_cache.h"
#include "outbound/mta_sts_fetch.h"
#include "outbound/origin.h"

namespace salvo::outbound {

OutboundStats& OutboundStats::operator+=(const OutboundStats& o) noexcept {
  dispatched += o.dispatched;
  delivered += o.delivered;
  deferred += o.deferred;
  bounced += o.bounced;
  expired += o.expired;
  loops += o.loops;
  dsns += o.dsns;
  connections += o.connections;
  connect_failures += o.connect_failures;
  tls_sessions += o.tls_sessions;
  for (std::size_t i = 0; i < kTlsOutcomes; ++i) tls_outcomes[i] += o.tls_outcomes[i];
  transactions += o.transactions;
  state_errors += o.state_errors;
  read_errors += o.read_errors;
  return *this;
}

std::uint32_t shard_for(std::string_view domain, std::uint32_t shards) noexcept {
  return shard_of_name(domain, shards);
}

namespace {

MtaStsCacheOptions sts_options(const config::Config& c) {
  MtaStsCacheOptions o;
  o.min_ttl = c.dns.min_ttl;
  o.max_ttl = c.dns.max_ttl;
  o.negative_ttl = c.dns.negative_ttl;
  return o;
}

}  // namespace

// The DeliveryEnv of a running shard.
struct Outbound::Impl final : DeliveryEnv {
  Impl(shard::Shard& s, OutboundShared& sh, Mailbox& mb, spool::SpoolWriter& w,
       const spool::SpoolIndex& idx, net::Stack& st, accounting::Writer* acc);

  const Clock& clock() const noexcept override { return shard.clock(); }
  void defer(std::function<void()> fn) override { shard.defer(std::move(fn)); }
  void read(std::uint32_t from, spool::Location loc, spool::RecordWaiter* w) noexcept override {
    readers[from]->read(loc, w);
  }
  dns::MxAnswer lookup_mx(std::string_view domain, dns::MxCache::Callback cb) override {
    return mx->lookup(domain, std::move(cb));
  }
  dns::MxAnswer lookup_host(std::string_view host, dns::MxCache::Callback cb) override {
    return mx->lookup_host(host, std::move(cb));
  }
  dns::TlsaAnswer lookup_tlsa(std::string_view host, dns::TlsaCache::Callback cb) override {
    return tlsa->lookup(host, std::move(cb));
  }
  Channel* open(Destination& d, const Host& h, const Origination& o) override {
    auto* c = new DeliveryConnection(d, h, o, ClientTls{destinations.context().settings});
    c->start(stack);
    return c;
  }
  void to_origin(std::uint32_t to, Outcomes&& o) noexcept override {
    if (to == me) {
      origin.on_outcomes(std::move(o));
      return;
    }
    shared.in_transit.fetch_add(1, std::memory_order_acq_rel);
    mailbox.send(shard::ShardId(me), shard::ShardId(to), Message(std::move(o)));
  }
  void forward(Enqueue&& e) noexcept override { route(std::move(e)); }
  void account(const accounting::Event& ev) noexcept override {
    if (accounting != nullptr) accounting->append(ev);
  }
  std::uint64_t intake_reads() const noexcept override { return shard.stats().intake_reads; }
  std::optional<StsPolicyPtr> mta_sts(std::string_view domain) override {
    if (!sts) return StsPolicyPtr();
    return sts->get(domain);
  }
  // The HTTPS fetch of mta-sts.<domain>'s policy: its first address, the configuration in
  // force (port, [dns] timeout for the whole exchange, the verifying TLS context).
  void fetch_policy(const std::string& domain, StsFetchCallback done) {
    const std::string host = "mta-sts." + domain;
    auto go = [this, host, done](const dns::MxResult& a) {
      if (a.status != dns::MxStatus::Ok || a.hosts.empty() || a.hosts[0].addresses.empty()) {
        const std::string why = a.detail.empty() ? std::string("no address") : a.detail;
        defer([done, host, why] { done(std::unexpected(host + ": " + why)); });
        return;
      }
      const config::Config& c = destinations.config();
      StsFetchRequest r;
      r.host = host;
      r.address = a.hosts[0].addresses[0];
      r.address.set_port(c.delivery.mta_sts_port);
      r.settings = destinations.context().settings;
      r.timeout = c.dns.timeout;
      r.clock = &shard.clock();
      start_sts_fetch(stack, std::move(r), done);
    };
    auto answer = mx->lookup_host(host, [go](dns::MxAnswer a) { go(*a); });
    if (answer) go(*answer);
  }

  void route(Enqueue&& e) noexcept {
    const std::uint32_t to = shard_for(e.key.empty() ? e.domain : e.key, shared.shards);
    if (to == me) {
      destinations.accept(std::move(e));
    } else {
      mailbox.send(shard::ShardId(me), shard::ShardId(to), Message(std::move(e)));
    }
  }
  DeliveryContext context_of(SettingsPtr settings) const {
    DeliveryContext ctx;
    ctx.policy = make_policy(*settings->config, *settings->classifier);
    ctx.settings = std::move(settings);
    ctx.hostname = shared.hostname;
    ctx.window = shared.window;
    ctx.own_listeners = &shared.own_listeners;
    return ctx;
  }
  void on_tick(std::int32_t res) noexcept;
  void arm_timer() noexcept;

  shard::Shard& shard;
  OutboundShared& shared;
  Mailbox& mailbox;
  net::Stack& stack;
  accounting::Writer* accounting;
  std::uint32_t me;
  std::unique_ptr<dns::Resolver> resolver;
  std::unique_ptr<dns::MxCache> mx;
  std::unique_ptr<dns::TlsaCache> tlsa;  // DANE; built whether or not [dns] validating
  std::unique_ptr<MtaStsCache> sts;
  std::vector<std::unique_ptr<spool::SpoolReader>> readers;  // per origin shard
  OutboundStats origin_stats;
  OutboundStats total;  // origin_stats + the destination side's, as of stats()
  Origin origin;
  DestinationSide destinations;
  using Timer = io::DetachableOp<Impl, &Impl::on_tick>;
  Timer* timer = nullptr;
  TimePoint last_dns_tick{};
  bool stopped = false;
};

Outbound::Impl::Impl(shard::Shard& s, OutboundShared& sh, Mailbox& mb, spool::SpoolWriter& w,
                     const spool::SpoolIndex& idx, net::Stack& st, accounting::Writer* acc)
    : shard(s),
      shared(sh),
      mailbox(mb),
      stack(st),
      accounting(acc),
      me(s.id().value()),
      origin(OriginDeps{me, sh.hostname, &s.clock(), &w, &idx, acc,
                        [this](Enqueue&& e) { route(std::move(e)); },
                        [this] { return destinations.config().delivery.retry_schedule.front(); },
                        [this](spool::Location loc, spool::ReadWaiter* waiter) {
                          readers[me]->read(loc, waiter);
                        },
                        [this] { return destinations.config().delivery.job_window; }},
             origin_stats),
      destinations(*this, context_of(sh.settings),
                   sh.spill_dir.empty() ? std::string()
                                        : fmt::format("{}/shard-{}", sh.spill_dir, me)) {}

void Outbound::Impl::arm_timer() noexcept {
  if (stopped || timer == nullptr || timer->armed()) return;
  timer->arm();
  // Short while destinations have work (rates, back-off, retries come due), slow otherwise.
  const Duration period = destinations.idle() ? Duration(std::chrono::milliseconds(500))
                                              : Duration(std::chrono::milliseconds(10));
  shard.engine().timeout(period, timer);
}

void Outbound::Impl::on_tick(std::int32_t) noexcept {
  if (stopped) return;
  const TimePoint now = shard.clock().now();
  if (now - last_dns_tick >= std::chrono::seconds(1)) {
    last_dns_tick = now;
    if (mx) mx->tick();
    // Segments reclaimed by their origin are freed only once no reader holds them open.
    for (auto& r : readers) r->close_idle();
  }
  destinations.tick();
  arm_timer();
}

Outbound::Outbound(shard::Shard& shard, OutboundShared& shared, Mailbox& mailbox,
                   spool::SpoolWriter& writer, const spool::SpoolIndex& index, net::Stack& stack,
                   accounting::Writer* accounting)
    : impl_(std::make_unique<Impl>(shard, shared, mailbox, writer, index, stack, accounting)) {}

Outbound::~Outbound() { shutdown(); }

Status Outbound::start(std::string* why) {
  Impl& ob = *impl_;
  const config::Config& c = *ob.shared.settings->config;
  dns::ResolverOptions ro;
  for (const auto& hp : c.dns.resolvers) {
    auto a = net::SocketAddress::parse(hp.host, hp.port);
    if (!a) {
      *why = "dns resolver " + hp.to_string() + ": not an IP address";
      return fail(std::errc::invalid_argument);
    }
    a->set_port(hp.port);
    ro.servers.push_back(*a);
  }
  ro.timeout = c.dns.timeout;
  ob.resolver = std::make_unique<dns::Resolver>(ob.shard.engine(), ro);
  dns::MxCacheOptions mo;
  mo.min_ttl = c.dns.min_ttl;
  mo.max_ttl = c.dns.max_ttl;
  mo.negative_ttl = c.dns.negative_ttl;
  mo.failure_ttl = std::min<Duration>(mo.failure_ttl, c.dns.negative_ttl);
  ob.mx = std::make_unique<dns::MxCache>(*ob.resolver, ob.shard.clock(), mo);
  ob.sts = std::make_unique<MtaStsCache>(
      ob.shard.clock(), sts_options(c),
      [&ob](std::string_view name, dns::Querier::Callback cb) {
        ob.resolver->query(name, dns::RrType::Txt, std::move(cb));
      },
      [&ob](const std::string& domain, StsFetchCallback cb) {
        ob.fetch_policy(domain, std::move(cb));
      },
      [&ob](const std::string& domain) {
        if (Destination* d = ob.destinations.find(domain)) ob.destinations.mark_dirty(*d);
      });
  dns::TlsaCacheOptions to;
  to.min_ttl = mo.min_ttl;
  to.max_ttl = mo.max_ttl;
  to.negative_ttl = mo.negative_ttl;
  to.failure_ttl = mo.failure_ttl;
  ob.tlsa = std::make_unique<dns::TlsaCache>(*ob.resolver, ob.shard.clock(), to);
  for (const auto& dir : ob.shared.spool_dirs) {
    ob.readers.push_back(std::make_unique<spool::SpoolReader>(ob.shard.engine(), dir));
  }
  std::vector<std::string> mine;
  for (const auto& d : ob.shared.prewarm) {
    if (shard_for(d, ob.shared.shards) == ob.me && !c.find_route(d)) mine.push_back(d);
  }
  if (!mine.empty()) ob.mx->prewarm(mine);
  ob.timer = new Impl::Timer(&ob);
  ob.arm_timer();
  return {};
}

bool Outbound::recover(const RecoveredRecipient& r) noexcept {
  return impl_->origin.recover(r);
}

void Outbound::recover_jobs(std::vector<RecoveredJob>&& jobs) noexcept {
  impl_->origin.recover_jobs(std::move(jobs));
}

void Outbound::recovery_unreadable(std::uint64_t records, const std::string& spool_dir) noexcept {
  impl_->origin.recovery_unreadable(records, spool_dir);
}

void Outbound::queued(spool::MessageId id, std::int64_t received_unix_ns, std::uint32_t first,
                      std::span<const std::string_view> addresses) noexcept {
  impl_->origin.queued(id, received_unix_ns, first, addresses);
}

void Outbound::job_queued(spool::MessageId id, std::int64_t received_unix_ns) noexcept {
  impl_->origin.job_queued(id, received_unix_ns);
}

void Outbound::on_message(shard::ShardId, Message&& m) noexcept {
  Impl& ob = *impl_;
  if (auto* e = std::get_if<Enqueue>(&m)) {
    ob.destinations.accept(std::move(*e));
  } else if (auto* o = std::get_if<Outcomes>(&m)) {
    ob.origin.on_outcomes(std::move(*o));
    ob.shared.in_transit.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void Outbound::reload(SettingsPtr settings) {
  if (impl_->sts) impl_->sts->set_options(sts_options(*settings->config));
  impl_->destinations.reload(impl_->context_of(std::move(settings)));
}

void Outbound::begin_stop() noexcept {
  impl_->origin.begin_stop();
  impl_->destinations.begin_stop();
}

bool Outbound::drained() const noexcept {
  return impl_->origin.pending_dsns() == 0 && !impl_->origin.reading() &&
         impl_->destinations.drained();
}

void Outbound::shutdown() noexcept {
  if (!impl_ || impl_->stopped) return;
  Impl& ob = *impl_;
  ob.stopped = true;
  ob.origin.stop();
  ob.destinations.stop();
  if (ob.timer != nullptr) {
    ob.timer->release(ob.shard.engine());
    ob.timer = nullptr;
  }
  ob.sts.reset();
  ob.mx.reset();
  if (ob.tlsa) ob.tlsa->cancel();
  ob.tlsa.reset();
  if (ob.resolver) ob.resolver->stop();
  ob.resolver.reset();
  ob.readers.clear();
}

const OutboundStats& Outbound::stats() const noexcept {
  impl_->total = impl_->origin_stats;
  impl_->total += impl_->destinations.stats();
  return impl_->total;
}

OutboundSnapshot Outbound::snapshot() const {
  OutboundSnapshot s;
  impl_->destinations.fill(s);
  return s;
}

namespace {

constexpr metrics::Family kDsns{"salvo_dsns_total", metrics::Type::Counter,
                                "Delivery status notifications queued."};
constexpr metrics::Family kLoops{
    "salvo_delivery_loops_total", metrics::Type::Counter,
    "Recipients bounced 554 5.4.4: every next hop of their destination is one of this node's "
    "own listeners (a mail loop)."};
constexpr metrics::Family kTransactions{"salvo_delivery_transactions_total",
                                        metrics::Type::Counter, "SMTP transactions attempted."};
constexpr metrics::Family kOpened{"salvo_delivery_connections_opened_total",
                                  metrics::Type::Counter, "Outbound SMTP connections opened."};
constexpr metrics::Family kConnectFailures{
    "salvo_delivery_connect_failures_total", metrics::Type::Counter,
    "Outbound connections that failed before the session was ready."};
constexpr metrics::Family kTlsSessions{"salvo_delivery_tls_sessions_total",
                                       metrics::Type::Counter,
                                       "Outbound sessions that used STARTTLS."};
constexpr metrics::Family kTlsPolicy{
    "salvo_delivery_tls_policy_total", metrics::Type::Counter,
    "Outbound sessions by what their TLS policy came to (failed: nothing sent; "
    "mta-sts-testing-failed: an MTA-STS testing policy not met, sent all the same)."};
constexpr metrics::Family kReadErrors{"salvo_delivery_read_errors_total", metrics::Type::Counter,
                                      "Spool records that could not be read back for delivery."};
constexpr metrics::Family kMxLookups{
    "salvo_dns_mx_cache_lookups_total", metrics::Type::Counter,
    "MX cache lookups by result (miss: the lookup had to wait for DNS)."};
constexpr metrics::Family kMxResolutions{
    "salvo_dns_mx_resolutions_total", metrics::Type::Counter,
    "MX resolutions started (misses, prewarm and refresh-ahead)."};
constexpr metrics::Family kStsLookups{
    "salvo_mta_sts_lookups_total", metrics::Type::Counter,
    "MTA-STS policy cache lookups by result (miss: the delivery waited for DNS and HTTPS)."};
constexpr metrics::Family kStsFetches{
    "salvo_mta_sts_fetches_total", metrics::Type::Counter,
    "MTA-STS policy fetches (HTTPS GET of mta-sts.<domain>) by result."};
constexpr metrics::Family kJobWindow{
    "salvo_job_window_recipients", metrics::Type::Gauge,
    "Recipients of bulk jobs dispatched by their origin shard and not final yet (at most "
    "[delivery] job_window per shard; the rest of each job waits in the spool)."};
constexpr metrics::Family kJobsLive{"salvo_jobs_dispatching", metrics::Type::Gauge,
                                    "Bulk jobs whose recipients are being dispatched."};
constexpr metrics::Family kDnsQueries{"salvo_dns_queries_total", metrics::Type::Counter,
                                      "DNS queries sent."};

}  // namespace

void Outbound::report(metrics::Snapshot& s) const {
  const OutboundStats& st = stats();
  s.add(kDsns, {}, st.dsns);
  s.add(kLoops, {}, st.loops);
  s.add(kTransactions, {}, st.transactions);
  s.add(kOpened, {}, st.connections);
  s.add(kConnectFailures, {}, st.connect_failures);
  s.add(kTlsSessions, {}, st.tls_sessions);
  for (std::size_t i = 0; i < kTlsOutcomes; ++i) {
    s.add(kTlsPolicy, fmt::format("outcome=\"{}\"", to_string(static_cast<TlsOutcome>(i))),
          st.tls_outcomes[i]);
  }
  s.add(kReadErrors, {}, st.read_errors);
  s.add(kJobWindow, {}, static_cast<std::uint64_t>(impl_->origin.jobs_in_flight()));
  s.add(kJobsLive, {}, static_cast<std::uint64_t>(impl_->origin.live_jobs()));
  impl_->destinations.report(s);
  const dns::MxCacheStats mx = impl_->mx ? impl_->mx->stats() : dns::MxCacheStats{};
  s.add(kMxLookups, "result=\"hit\"", mx.hits);
  s.add(kMxLookups, "result=\"miss\"", mx.misses);
  s.add(kMxResolutions, {}, mx.resolutions);
  s.add(kDnsQueries, {}, mx.queries);
  const MtaStsStats sts = impl_->sts ? impl_->sts->stats() : MtaStsStats{};
  s.add(kStsLookups, "result=\"hit\"", sts.hits);
  s.add(kStsLookups, "result=\"miss\"", sts.misses);
  s.add(kStsFetches, "result=\"ok\"", sts.fetches - sts.fetch_failures);
  s.add(kStsFetches, "result=\"failed\"", sts.fetch_failures);
}

std::size_t Outbound::pause(std::string_view domain) noexcept {
  return impl_->destinations.pause(domain, impl_->me, impl_->shared.shards);
}
std::size_t Outbound::resume(std::string_view domain) noexcept {
  return impl_->destinations.resume(domain);
}
std::size_t Outbound::flush(std::string_view domain) noexcept {
  return impl_->destinations.flush(domain);
}
std::size_t Outbound::bounce(std::string_view domain) noexcept {
  return impl_->destinations.bounce(domain);
}
std::size_t Outbound::bounce_message(std::uint64_t id) noexcept {
  return impl_->destinations.bounce_message(id) + impl_->origin.cancel_job(id);
}

}  // namespace salvo::outbound
