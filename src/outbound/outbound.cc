// SPDX-License-Identifier: Apache-2.0
// Outbound: the shard's delivery state. The origin role (routing committed recipients,
// making outcomes durable, queueing DSNs), the tick, start-up and stop.
#include <salvo/outbound/outbound.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include <fmt/format.h>

#include <salvo/accounting/accounting.h>
#include <salvo/base/log.h>
#include <salvo/io/engine.h>
#include <salvo/net/stack.h>
#include <salvo/spool/spool_reader.h>

#include "outbound/internal.h"

namespace salvo::outbound {

OutboundStats& OutboundStats::operator+=(const OutboundStats& o) noexcept {
  dispatched += o.dispatched;
  delivered += o.delivered;
  deferred += o.deferred;
  bounced += o.bounced;
  expired += o.expired;
  dsns += o.dsns;
  connections += o.connections;
  connect_failures += o.connect_failures;
  tls_sessions += o.tls_sessions;
  transactions += o.transactions;
  state_errors += o.state_errors;
  read_errors += o.read_errors;
  return *this;
}

std::uint32_t shard_for(std::string_view domain, std::uint32_t shards) noexcept {
  std::uint64_t h = 1469598103934665603ull;
  for (char c : domain) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return shards == 0 ? 0 : static_cast<std::uint32_t>(h % shards);
}

std::string domain_of(std::string_view address) {
  auto at = address.rfind('@');
  if (at == std::string_view::npos) return {};
  std::string d(address.substr(at + 1));
  for (char& c : d) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!d.empty() && d.back() == '.') d.pop_back();
  return d;
}

std::string from_domain(std::string_view message) {
  // The header section ends at the first empty line; From: may be folded.
  std::size_t pos = 0;
  while (pos < message.size()) {
    std::size_t eol = message.find("\r\n", pos);
    if (eol == std::string_view::npos) eol = message.size();
    std::string_view line = message.substr(pos, eol - pos);
    if (line.empty()) break;
    if (line.size() >= 5 && (line[0] == 'F' || line[0] == 'f') &&
        (line[1] == 'r' || line[1] == 'R') && (line[2] == 'o' || line[2] == 'O') &&
        (line[3] == 'm' || line[3] == 'M') && line[4] == ':') {
      std::string value(line.substr(5));
      std::size_t next = eol + 2;
      while (next < message.size() && (message[next] == ' ' || message[next] == '\t')) {
        std::size_t e2 = message.find("\r\n", next);
        if (e2 == std::string_view::npos) e2 = message.size();
        value.append(message.substr(next, e2 - next));
        next = e2 + 2;
      }
      // The address is inside <...> when there is a display name.
      std::size_t lt = value.rfind('<');
      std::string addr = value;
      if (lt != std::string::npos) {
        std::size_t gt = value.find('>', lt);
        addr = value.substr(lt + 1, gt == std::string::npos ? std::string::npos : gt - lt - 1);
      }
      std::size_t at = addr.rfind('@');
      if (at == std::string::npos) return {};
      std::string d;
      for (char c : addr.substr(at + 1)) {
        if (c == ' ' || c == '\t' || c == '>' || c == ')' || c == ',' || c == ';') break;
        d.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
      }
      return d;
    }
    pos = eol + 2;
  }
  return {};
}

namespace {



// Waits for a DSN's commit; then the recipient states that caused it are written (a final
// state is never durable before its DSN) and the DSN is dispatched. If the DSN cannot be
// queued, the recipients stay undelivered in the spool (written as deferred) so the DSN is
// made again after the next start, rather than lost.
class DsnCommit final : public spool::CommitWaiter {
 public:
  DsnCommit(Outbound::Impl& ob, std::uint64_t original, std::string to, std::int64_t received,
            std::vector<spool::StateUpdate> states)
      : ob_(ob), original_(original), to_(std::move(to)), received_(received),
        states_(std::move(states)) {}
  spool::MessageId id{};

  void write_states(bool dsn_queued) noexcept {
    if (!dsn_queued) {
      const auto retry = ob_.cfg().delivery.retry_schedule.front();
      const std::int64_t next =
          received_ + std::chrono::duration_cast<std::chrono::nanoseconds>(retry).count();
      for (auto& u : states_) {
        // A delivered recipient stays delivered (the server said 250); a bounce or
        // expiry waits for its DSN.
        if (u.state == spool::RecipientState::Bounced ||
            u.state == spool::RecipientState::Expired) {
          u.state = spool::RecipientState::Deferred;
          u.next_attempt_unix_ns = next;
        }
      }
    }
    if (auto st = ob_.writer.append_states(states_, nullptr); !st) {
      ++ob_.stats.state_errors;
      log::error("outbound: message {}: recipient states not written: {}", format_id(original_),
                 st.error().message());
    }
  }

  void on_committed(Status status) noexcept override {
    --ob_.dsn_commits;
    if (!ob_.stopped) write_states(static_cast<bool>(status));
    if (status && !ob_.stopped) {
      ++ob_.stats.dsns;
      if (ob_.accounting != nullptr) {
        std::string oid = format_id(original_);
        std::string did = format_id(id.value());
        accounting::Event ev;
        ev.type = accounting::EventType::Dsn;
        ev.ts_unix_ns = received_;
        ev.id = oid;
        ev.from = "";
        ev.rcpt = to_;
        ev.domain = "";
        ev.response = did;  // the DSN's own message id
        ev.source = "dsn";
        ob_.accounting->append(ev);
      }
      std::string_view rcpt = to_;
      ob_.self->queued(id, received_, 0, std::span<const std::string_view>(&rcpt, 1));
    } else if (!status) {
      log::warn("outbound: DSN for message {} not queued: {}", format_id(original_),
                status.error().message());
    }
    delete this;
  }

 private:
  Outbound::Impl& ob_;
  std::uint64_t original_;
  std::string to_;
  std::int64_t received_;
  std::vector<spool::StateUpdate> states_;
};

}  // namespace

Outbound::Impl::Impl(shard::Shard& s, OutboundShared& sh, Mailbox& mb, spool::SpoolWriter& w,
                     const spool::SpoolIndex& idx, net::Stack& st, accounting::Writer* acc)
    : shard(s),
      shared(sh),
      config(sh.config),
      classifier(sh.classifier),
      mailbox(mb),
      writer(w),
      index(idx),
      stack(st),
      accounting(acc),
      me(s.id().value()),
      retry(sh.config->delivery.retry_schedule, sh.config->delivery.expiry) {}

Destination& Outbound::Impl::destination(const std::string& domain) {
  auto it = destinations.find(domain);
  if (it == destinations.end()) {
    it = destinations.emplace(domain, std::make_unique<Destination>(*this, domain)).first;
  }
  return *it->second;
}

void Outbound::Impl::mark_dirty(Destination& d) {
  if (!d.listed_) {
    d.listed_ = true;
    active.push_back(&d);
  }
  if (!d.dirty_) {
    d.dirty_ = true;
    dirty.push_back(&d);
  }
  if (!pump_scheduled && !stopped) {
    pump_scheduled = true;
    shard.defer([this] { run_dirty(); });
  }
}

void Outbound::Impl::run_dirty() noexcept {
  pump_scheduled = false;
  std::vector<Destination*> now;
  now.swap(dirty);
  for (Destination* d : now) {
    d->dirty_ = false;
    d->pump();
  }
}

void Outbound::Impl::arm_timer() noexcept {
  if (stopped || timer == nullptr || timer->armed()) return;
  timer->arm();
  // Short while destinations have work (rates, back-off, retries come due), slow otherwise.
  Duration period = active.empty() ? Duration(std::chrono::milliseconds(500))
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
  const WallTime wall = shard.clock().wall_now();
  // Pumps may list more destinations (a rollup receiving forwards): they land in the
  // fresh `active` and are kept.
  std::vector<Destination*> current;
  current.swap(active);
  for (Destination* d : current) {
    if (d->queue_.ready() != 0 || !d->conns_.empty() || d->queue_.next_due() <= wall) {
      d->pump();
    }
  }
  std::vector<Destination*> keep;
  keep.reserve(current.size() + active.size());
  for (Destination* d : current) {
    if (d->active()) {
      keep.push_back(d);
    } else {
      d->listed_ = false;
    }
  }
  for (Destination* d : active) keep.push_back(d);
  active.swap(keep);
  arm_timer();
}

Slot* Outbound::Impl::new_slot() {
  ++slots;
  return new Slot;
}

void Outbound::Impl::free_slot(Slot* s) noexcept {
  --slots;
  delete s;
}

const dkim::Signer* Outbound::Impl::signer_for(std::string_view from_domain) const noexcept {
  if (from_domain.empty()) return nullptr;
  for (const auto& s : signers) {
    if (s.domain() == from_domain) return &s;
  }
  return nullptr;
}

void Outbound::Impl::dispatch(std::uint64_t id, std::uint32_t recipient,
                              const spool::SpoolIndex::RecipientRef& ref,
                              std::int64_t received_unix_ns, std::string_view address,
                              std::uint32_t attempts, std::int64_t next_attempt_unix_ns) noexcept {
  Enqueue e;
  e.origin = me;
  e.message = id;
  e.recipient = recipient;
  e.record = ref.record;
  e.index_in_record = ref.index_in_record;
  if (ref.job_template) {
    e.is_job = true;
    e.job_template = *ref.job_template;
  }
  e.received_unix_ns = received_unix_ns;
  e.attempts = attempts;
  e.next_attempt_unix_ns = next_attempt_unix_ns;
  e.domain = domain_of(address);
  // A recipient without a domain (RCPT TO:<postmaster>) is this host's, as Postfix
  // appends $myorigin: it goes where [node] hostname routes.
  if (e.domain.empty()) e.domain = domain_of("@" + shared.hostname);
  ++stats.dispatched;
  route(std::move(e));
}

void Outbound::Impl::route(Enqueue&& e) noexcept {
  const std::uint32_t to = shard_for(e.key.empty() ? e.domain : e.key, shared.shards);
  if (to == me) {
    accept(std::move(e));
  } else {
    mailbox.send(shard::ShardId(me), shard::ShardId(to), Message(std::move(e)));
  }
}

void Outbound::Impl::accept(Enqueue&& e) noexcept {
  Destination& d = destination(e.key.empty() ? e.domain : e.key);
  d.add(std::move(e));
}

void Outbound::Impl::send_outcomes(std::uint32_t origin, Outcomes&& o) noexcept {
  if (origin == me) {
    on_outcomes(std::move(o));
    return;
  }
  shared.in_transit.fetch_add(1, std::memory_order_acq_rel);
  mailbox.send(shard::ShardId(me), shard::ShardId(origin), Message(std::move(o)));
}

void Outbound::Impl::on_outcomes(Outcomes&& o) noexcept {
  const std::int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  shard.clock().wall_now().time_since_epoch())
                                  .count();
  std::vector<spool::StateUpdate> updates;
  updates.reserve(o.recipients.size());
  for (const auto& r : o.recipients) {
    spool::StateUpdate u;
    u.message = spool::MessageId(o.message);
    u.recipient = spool::RecipientIndex(r.recipient);
    u.state = r.state;
    u.attempts = r.attempts;
    u.next_attempt_unix_ns = r.next_attempt_unix_ns;
    updates.push_back(u);
  }
  // The DSN is committed before the final states that caused it are written. A DSN about
  // non-final states only (a delay warning) does not hold them back: a later outcome of
  // the same recipient must never be overwritten by this one.
  const bool has_final = std::any_of(updates.begin(), updates.end(), [](const auto& u) {
    return spool::is_final(u.state);
  });
  if (!o.dsn.empty() && !o.dsn_to.empty() && !has_final) {
    if (auto st = writer.append_states(updates, nullptr); !st) {
      ++stats.state_errors;
      log::error("outbound: message {}: recipient states not written: {}", format_id(o.message),
                 st.error().message());
    }
    updates.clear();
  }
  if (!o.dsn.empty() && !o.dsn_to.empty()) {
    spool::MessageRecord m;
    m.received_unix_ns = now_ns;
    m.source = spool::Source::Dsn;
    m.flags = static_cast<std::uint8_t>((o.dsn_8bit ? spool::kFlag8BitMime : 0) |
                                        (o.dsn_smtputf8 ? spool::kFlagSmtpUtf8 : 0));
    m.reverse_path = "";
    m.recipients.push_back(spool::Recipient{o.dsn_to, 0, {}});
    m.body = o.dsn;
    auto* w = new DsnCommit(*this, o.message, o.dsn_to, now_ns, std::move(updates));
    auto id = writer.append_message(m, w);
    if (!id) {
      log::warn("outbound: DSN for message {} not queued: {}", format_id(o.message),
                id.error().message());
      w->write_states(false);
      delete w;
    } else {
      w->id = *id;
      ++dsn_commits;
    }
    return;
  }
  if (auto st = writer.append_states(updates, nullptr); !st) {
    ++stats.state_errors;
    log::error("outbound: message {}: recipient states not written: {}", format_id(o.message),
               st.error().message());
  }
}

namespace {

// One dkim::Signer per [[dkim]] entry, for this shard.
Status load_signers(const config::Config& c, std::vector<dkim::Signer>* out, std::string* why) {
  std::vector<dkim::Signer> signers;
  for (const auto& k : c.dkim) {
    std::ifstream in(k.key_file);
    if (!in) {
      *why = "dkim " + k.domain + ": key_file " + k.key_file + ": cannot be read";
      return fail(std::errc::no_such_file_or_directory);
    }
    std::stringstream pem;
    pem << in.rdbuf();
    dkim::SignerOptions so;
    so.domain = k.domain;
    so.selector = k.selector;
    so.algorithm = k.algorithm == config::DkimAlgorithm::Ed25519Sha256
                       ? dkim::Algorithm::Ed25519Sha256
                       : dkim::Algorithm::RsaSha256;
    so.private_key_pem = pem.str();
    auto s = dkim::Signer::create(std::move(so));
    if (!s) {
      *why = "dkim " + k.domain + ": key_file " + k.key_file + ": " + s.error().message();
      return std::unexpected(s.error());
    }
    signers.push_back(std::move(*s));
  }
  *out = std::move(signers);
  return {};
}

}  // namespace

Status Outbound::reload(const config::Config& config, const queue::Classifier& classifier,
                        std::string* why) {
  Impl& ob = *impl_;
  std::vector<dkim::Signer> signers;
  if (auto st = load_signers(config, &signers, why); !st) return st;
  ob.signers = std::move(signers);
  ob.config = &config;
  ob.classifier = &classifier;
  ob.retry = queue::RetrySchedule(config.delivery.retry_schedule, config.delivery.expiry);
  for (auto& [name, d] : ob.destinations) d->reconfigure();
  return {};
}

Outbound::Outbound(shard::Shard& shard, OutboundShared& shared, Mailbox& mailbox,
                   spool::SpoolWriter& writer, const spool::SpoolIndex& index, net::Stack& stack,
                   accounting::Writer* accounting)
    : impl_(std::make_unique<Impl>(shard, shared, mailbox, writer, index, stack, accounting)) {
  impl_->self = this;
}

Outbound::~Outbound() { shutdown(); }

Status Outbound::start(std::string* why) {
  Impl& ob = *impl_;
  const config::Config& c = ob.cfg();
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
  for (const auto& dir : ob.shared.spool_dirs) {
    ob.readers.push_back(std::make_unique<spool::SpoolReader>(ob.shard.engine(), dir));
  }
  if (auto st = load_signers(c, &ob.signers, why); !st) return st;
  std::vector<std::string> mine;
  for (const auto& d : ob.shared.prewarm) {
    if (shard_for(d, ob.shared.shards) == ob.me && !c.find_route(d)) mine.push_back(d);
  }
  if (!mine.empty()) ob.mx->prewarm(mine);
  ob.timer = new Impl::Timer(&ob);
  ob.arm_timer();
  return {};
}

void Outbound::recover(const spool::RecoveryResult& recovered, const std::string& spool_dir) {
  Impl& ob = *impl_;
  std::unordered_map<std::uint64_t, std::unordered_map<std::uint32_t, const spool::PendingRecipient*>>
      deferred;
  for (const auto& p : recovered.deferred) deferred[p.message.value()][p.recipient.value()] = &p;
  auto make = [&](std::uint64_t id, std::uint32_t r, spool::Location rec, std::uint32_t in_rec,
                  std::optional<spool::Location> tpl, std::int64_t received,
                  std::string_view address) {
    spool::SpoolIndex::RecipientRef ref{rec, in_rec, tpl};
    std::uint32_t attempts = 0;
    std::int64_t next = 0;
    if (auto m = deferred.find(id); m != deferred.end()) {
      if (auto p = m->second.find(r); p != m->second.end()) {
        attempts = p->second->attempts;
        next = p->second->next_attempt_unix_ns;
      }
    }
    ob.dispatch(id, r, ref, received, address, attempts, next);
  };
  std::uint64_t unreadable = 0;
  ob.index.for_each([&](spool::MessageId id, const spool::SpoolIndex::Entry& entry) {
    if (entry.is_job && !entry.committed) return;
    if (!entry.is_job) {
      auto rec = spool::read_record(spool_dir, entry.loc);
      auto m = rec ? spool::decode_message(rec->raw.payload) : Result<spool::MessageRecord>(
                                                                    std::unexpected(rec.error()));
      if (!m) {
        ++unreadable;
        return;
      }
      for (std::uint32_t r = 0; r < m->recipients.size() && r < entry.state.size(); ++r) {
        if (spool::is_final(static_cast<spool::RecipientState>(entry.state[r]))) continue;
        make(id.value(), r, entry.loc, r, std::nullopt, m->received_unix_ns,
             m->recipients[r].address);
      }
      return;
    }
    auto trec = spool::read_record(spool_dir, entry.loc);
    auto t = trec ? spool::decode_job_template(trec->raw.payload)
                  : Result<spool::JobTemplateRecord>(std::unexpected(trec.error()));
    if (!t) {
      ++unreadable;
      return;
    }
    for (const auto& b : entry.batches) {
      auto brec = spool::read_record(spool_dir, b.loc);
      auto batch = brec ? spool::decode_job_recipients(brec->raw.payload)
                        : Result<spool::JobRecipientsRecord>(std::unexpected(brec.error()));
      if (!batch) {
        ++unreadable;
        continue;
      }
      for (std::uint32_t k = 0; k < batch->recipients.size(); ++k) {
        std::uint32_t r = batch->first_index + k;
        if (r >= entry.state.size()) break;
        if (spool::is_final(static_cast<spool::RecipientState>(entry.state[r]))) continue;
        make(id.value(), r, b.loc, k, entry.loc, t->received_unix_ns,
             batch->recipients[k].address);
      }
    }
  });
  if (unreadable != 0) {
    ob.stats.read_errors += unreadable;
    log::error("outbound: {}: {} spool records could not be read back; their recipients "
               "wait for the next start", spool_dir, unreadable);
  }
}

void Outbound::queued(spool::MessageId id, std::int64_t received_unix_ns, std::uint32_t first,
                      std::span<const std::string_view> addresses) noexcept {
  Impl& ob = *impl_;
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    const auto r = static_cast<std::uint32_t>(first + i);
    auto ref = ob.index.recipient(id, spool::RecipientIndex(r));
    if (!ref) {
      SALVO_BUG("outbound: a queued recipient the spool index does not know");
      continue;
    }
    ob.dispatch(id.value(), r, *ref, received_unix_ns, addresses[i], 0, 0);
  }
}

void Outbound::on_message(shard::ShardId, Message&& m) noexcept {
  Impl& ob = *impl_;
  if (auto* e = std::get_if<Enqueue>(&m)) {
    ob.accept(std::move(*e));
  } else if (auto* o = std::get_if<Outcomes>(&m)) {
    ob.on_outcomes(std::move(*o));
    ob.shared.in_transit.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void Outbound::begin_stop() noexcept {
  Impl& ob = *impl_;
  ob.stopping = true;
  for (auto& [name, d] : ob.destinations) {
    for (DeliveryConnection* c : std::vector<DeliveryConnection*>(d->conns_)) {
      if (c->ready() && c->load() == 0) c->quit();
    }
  }
}

bool Outbound::drained() const noexcept {
  const Impl& ob = *impl_;
  if (ob.slots != 0 || ob.dsn_commits != 0) return false;
  for (const auto& [name, d] : ob.destinations) {
    if (!d->conns_.empty()) return false;
  }
  return true;
}

void Outbound::shutdown() noexcept {
  if (!impl_ || impl_->stopped) return;
  Impl& ob = *impl_;
  ob.stopped = true;
  if (ob.timer != nullptr) {
    ob.timer->release(ob.shard.engine());
    ob.timer = nullptr;
  }
  ob.mx.reset();
  if (ob.resolver) ob.resolver->stop();
  ob.resolver.reset();
  ob.readers.clear();
}

const OutboundStats& Outbound::stats() const noexcept { return impl_->stats; }

OutboundSnapshot Outbound::snapshot() const {
  OutboundSnapshot s;
  s.stats = impl_->stats;
  s.destinations.reserve(impl_->destinations.size());
  for (auto& [name, d] : impl_->destinations) s.destinations.push_back(d->info());
  for (const auto& [name, c] : impl_->classes) s.classes.push_back(c);
  s.recent_bounces.assign(impl_->recent_bounces.begin(), impl_->recent_bounces.end());
  if (impl_->mx) s.mx_cache = impl_->mx->stats();
  return s;
}

ClassCounters& Outbound::Impl::class_counters(const config::Shaping& s) {
  std::string name = !s.mx_suffix.empty() ? fmt::format("mx:{}", s.mx_suffix)
                     : s.domain.empty()   ? std::string("*")
                                          : s.domain;
  auto it = classes.find(name);
  if (it == classes.end()) {
    it = classes.emplace(name, ClassCounters{}).first;
    it->second.name = std::move(name);
  }
  return it->second;
}

namespace {

// The destinations named by an operator verb: the domain (as routed: lower case), or
// every one when `domain` is empty.
template <class Fn>
std::size_t for_destinations(Outbound::Impl& ob, std::string_view domain, Fn fn) {
  std::size_t n = 0;
  std::string key = domain_of(fmt::format("@{}", domain));
  for (auto& [name, d] : ob.destinations) {
    if (!key.empty() && name != key) continue;
    fn(*d);
    ob.mark_dirty(*d);
    ++n;
  }
  return n;
}

}  // namespace

std::size_t Outbound::pause(std::string_view domain) noexcept {
  // A domain not seen yet is paused ahead of its mail, on the shard that will own it.
  const std::string key = domain_of(fmt::format("@{}", domain));
  if (!key.empty() && !impl_->destinations.contains(key) &&
      shard_for(key, impl_->shared.shards) == impl_->me) {
    impl_->destination(key);
  }
  return for_destinations(*impl_, domain, [](Destination& d) {
    d.operator_paused_ = true;
    for (DeliveryConnection* c : std::vector<DeliveryConnection*>(d.conns_)) {
      if (c->ready() && c->load() == 0) c->quit();
    }
  });
}

std::size_t Outbound::resume(std::string_view domain) noexcept {
  return for_destinations(*impl_, domain, [](Destination& d) { d.operator_paused_ = false; });
}

std::size_t Outbound::flush(std::string_view domain) noexcept {
  return for_destinations(*impl_, domain, [](Destination& d) { d.queue_.flush_deferred(); });
}

std::size_t Outbound::bounce_message(std::uint64_t id) noexcept {
  std::size_t n = 0;
  for (auto& [name, d] : impl_->destinations) {
    auto taken = d->queue_.extract(id);
    if (taken.empty()) continue;
    n += taken.size();
    d->cancelled_.insert(d->cancelled_.end(), taken.begin(), taken.end());
    impl_->mark_dirty(*d);
  }
  return n;
}

std::size_t Outbound::bounce(std::string_view domain) noexcept {
  if (domain.empty()) return 0;  // never all at once
  return for_destinations(*impl_, domain, [](Destination& d) { d.bouncing_ = true; });
}

}  // namespace salvo::outbound
