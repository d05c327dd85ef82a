// SPDX-License-Identifier: Apache-2.0
// MxCache: resolution jobs (MX, then A and AAAA of each target), the RFC 5321 §5.1 decision
// table, TTL clamping, negative caching, LRU and refresh-ahead.
#include <salvo/dns/mx_cache.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cstdlib>
#include <utility>

#include <idn2.h>

#include <salvo/dns/errc.h>

#include "dns/random.h"

namespace salvo::dns {

namespace {

using std::chrono::seconds;

bool is_ascii(std::string_view s) noexcept {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// RFC 5321 §5.1 / RFC 2181 §10.3: an MX target must be a host name, not an address literal.
bool is_ip_literal(const std::string& name) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, name.c_str(), buf) == 1 ||
         ::inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

MxResult failure(const std::string& domain, MxStatus status, std::error_code error,
                 std::string detail) {
  MxResult r;
  r.status = status;
  r.error = error;
  r.domain = domain;
  r.detail = domain + ": " + std::move(detail);
  return r;
}

}  // namespace

std::string_view to_string(MxStatus status) noexcept {
  switch (status) {
    case MxStatus::Ok:
      return "ok";
    case MxStatus::Temporary:
      return "temporary";
    case MxStatus::Permanent:
      return "permanent";
  }
  return "?";
}

MxCacheStats& MxCacheStats::operator+=(const MxCacheStats& o) noexcept {
  lookups += o.lookups;
  hits += o.hits;
  misses += o.misses;
  coalesced += o.coalesced;
  resolutions += o.resolutions;
  refreshes += o.refreshes;
  evictions += o.evictions;
  queries += o.queries;
  return *this;
}

struct MxCache::Entry {
  MxAnswer answer;         // hosts sorted by preference, ties in resolution order
  TimePoint refresh_at{};  // TimePoint::max(): never (negative or failed answers)
  bool used = false;       // looked up since it was resolved
  bool has_ties = false;   // equal preferences: shuffle per lookup
  std::list<std::string>::iterator lru;
};

struct MxCache::Job {
  struct Host {
    std::string name;
    std::uint16_t preference = 0;
    std::vector<net::SocketAddress> v4, v6;
    bool temporary = false;  // an address query failed for a reason that may pass
    std::string why;
    bool authenticated = true;  // every address answer had AD set
  };
  std::string domain;
  std::vector<Callback> waiters;
  bool refresh = false;
  bool prewarm = false;
  bool implicit = false;
  bool authenticated = true;  // the MX answer had AD set (or there was no MX query)
  int outstanding = 0;
  std::uint32_t ttl = 0xffffffffu;
  std::vector<Host> hosts;
};

MxCache::MxCache(Querier& querier, const Clock& clock, MxCacheOptions options)
    : querier_(querier),
      clock_(clock),
      options_(std::move(options)),
      rng_(options_.shuffle_seed != 0 ? options_.shuffle_seed : detail::random_u64()),
      alive_(std::make_shared<Alive>(Alive{this})) {
  options_.max_ttl = std::max(options_.max_ttl, options_.min_ttl);
  options_.negative_ttl = std::max<Duration>(options_.negative_ttl, seconds(1));
  options_.max_entries = std::max<std::size_t>(options_.max_entries, 1);
  options_.max_mx_hosts = std::max<std::size_t>(options_.max_mx_hosts, 1);
  options_.refresh_fraction = std::clamp(options_.refresh_fraction, 0.1, 1.0);
}

MxCache::~MxCache() { alive_->cache = nullptr; }

Result<std::string> MxCache::to_ascii(std::string_view domain, std::string* why) {
  std::string in(domain);
  if (!in.empty() && in.back() == '.') in.pop_back();
  if (in.empty() || in.find('\0') != std::string::npos) {
    if (why != nullptr) *why = "empty domain";
    return fail(errc::bad_name);
  }
  std::string out;
  if (is_ascii(in)) {
    out = normalize_name(in);
  } else {
    char* ascii = nullptr;
    const int rc = idn2_to_ascii_8z(in.c_str(), &ascii, IDN2_NONTRANSITIONAL);
    if (rc != IDN2_OK) {
      if (why != nullptr) *why = idn2_strerror(rc);
      idn2_free(ascii);
      return fail(errc::bad_idn);
    }
    out = normalize_name(ascii);
    idn2_free(ascii);
  }
  // RFC 5321 §4.1.2 / RFC 1123 §2.1: letters, digits and hyphens in labels of 1..63 octets
  // ('_' tolerated: it occurs in the wild). Anything else cannot be a mail domain.
  bool ok = !out.empty() && out.size() <= 253;
  std::size_t label = 0;
  for (char c : out) {
    if (c == '.') {
      ok = ok && label > 0;
      label = 0;
    } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
      ok = ok && ++label <= 63;
    } else {
      ok = false;
    }
  }
  if (!ok || label == 0) {
    if (why != nullptr) *why = "malformed domain name";
    return fail(errc::bad_name);
  }
  return out;
}

MxAnswer MxCache::lookup(std::string_view domain, Callback cb) {
  return lookup_name(domain, {}, "invalid domain: ", std::move(cb));
}

MxAnswer MxCache::lookup_host(std::string_view host, Callback cb) {
  return lookup_name(host, kHostKey, "invalid host name: ", std::move(cb));
}

MxAnswer MxCache::lookup_name(std::string_view name, std::string_view key_prefix,
                              std::string_view invalid, Callback cb) {
  owner_.check();
  ++stats_.lookups;
  std::string why;
  auto ascii = to_ascii(name, &why);
  if (!ascii) {
    // Not cached: the answer is computed without DNS.
    const bool idn = ascii.error() == errc::bad_idn && key_prefix.empty();
    auto r = failure(std::string(name), MxStatus::Permanent, ascii.error(),
                     std::string(idn ? "invalid IDN domain: " : invalid) + why);
    r.expires = clock_.now();
    return std::make_shared<const MxResult>(std::move(r));
  }
  return cached_or_start(std::string(key_prefix) + *ascii, std::move(cb));
}

MxAnswer MxCache::cached_or_start(const std::string& key, Callback cb) {
  const TimePoint now = clock_.now();
  auto it = entries_.find(key);
  if (it != entries_.end() && it->second.answer->expires > now) {
    Entry& e = it->second;
    ++stats_.hits;
    touch(e);
    e.used = true;
    if (now >= e.refresh_at && jobs_.find(key) == jobs_.end()) {
      ++stats_.refreshes;
      start_job(key).refresh = true;
    }
    return answer_for(e);
  }
  ++stats_.misses;
  auto job = jobs_.find(key);
  if (job != jobs_.end()) {
    ++stats_.coalesced;
    job->second->waiters.push_back(std::move(cb));
    return nullptr;
  }
  start_job(key).waiters.push_back(std::move(cb));
  return nullptr;
}

void MxCache::prewarm(std::span<const std::string> domains) {
  for (const auto& d : domains) {
    auto ascii = to_ascii(d);
    if (!ascii) continue;
    if (entries_.count(*ascii) != 0 || jobs_.count(*ascii) != 0) continue;
    start_job(*ascii).prewarm = true;
  }
}

void MxCache::tick() {
  owner_.check();
  const TimePoint now = clock_.now();
  while (!refresh_queue_.empty() && refresh_queue_.top().first <= now) {
    auto [when, domain] = refresh_queue_.top();
    refresh_queue_.pop();
    auto it = entries_.find(domain);
    // Stale queue items (entry replaced, evicted, or refreshed) are skipped.
    if (it == entries_.end() || it->second.refresh_at != when || !it->second.used) continue;
    if (it->second.answer->expires <= now || jobs_.count(domain) != 0) continue;
    ++stats_.refreshes;
    start_job(domain).refresh = true;
  }
}

MxAnswer MxCache::answer_for(const Entry& e) {
  if (!e.has_ties) return e.answer;
  // RFC 5321 §5.1: hosts of equal preference are tried in random order.
  auto copy = std::make_shared<MxResult>(*e.answer);
  auto& hosts = copy->hosts;
  for (std::size_t i = 0; i < hosts.size();) {
    std::size_t j = i + 1;
    while (j < hosts.size() && hosts[j].preference == hosts[i].preference) ++j;
    std::shuffle(hosts.begin() + static_cast<std::ptrdiff_t>(i),
                 hosts.begin() + static_cast<std::ptrdiff_t>(j), rng_);
    i = j;
  }
  return copy;
}

void MxCache::touch(Entry& e) { lru_.splice(lru_.begin(), lru_, e.lru); }

MxCache::Job& MxCache::start_job(const std::string& domain) {
  ++stats_.resolutions;
  auto job = std::make_unique<Job>();
  job->domain = domain;
  Job& ref = *job;
  jobs_.emplace(domain, std::move(job));
  if (domain.starts_with(kHostKey)) {
    // A host name: its own addresses, as an MX host's are resolved (no MX query).
    ref.implicit = true;
    ref.hosts.push_back({domain.substr(kHostKey.size()), 0, {}, {}, false, {}, true});
    resolve_hosts(ref);
    return ref;
  }
  ask(ref, domain, RrType::Mx, -1);
  return ref;
}

void MxCache::ask(Job& job, const std::string& name, RrType type, int host) {
  ++job.outstanding;
  ++stats_.queries;
  std::weak_ptr<Alive> alive = alive_;
  Job* j = &job;
  querier_.query(name, type, [alive, j, host, type](Result<Answer> result) {
    auto guard = alive.lock();
    if (!guard || guard->cache == nullptr) return;
    MxCache& self = *guard->cache;
    if (host < 0) {
      self.on_mx(*j, std::move(result));
    } else {
      self.on_address(*j, host, type, std::move(result));
    }
  });
}

Duration MxCache::clamp_positive(std::uint32_t ttl) const {
  return std::clamp<Duration>(seconds(ttl), options_.min_ttl, options_.max_ttl);
}

// RFC 2308 §5: min(SOA TTL, SOA MINIMUM), capped by negative_ttl, at least a second.
Duration MxCache::clamp_negative(std::optional<std::uint32_t> soa_ttl) const {
  if (!soa_ttl) return options_.negative_ttl;
  return std::clamp<Duration>(seconds(*soa_ttl), seconds(1), options_.negative_ttl);
}

void MxCache::on_mx(Job& job, Result<Answer> result) {
  --job.outstanding;
  const Duration failure_ttl =
      std::clamp<Duration>(options_.failure_ttl, seconds(1), options_.negative_ttl);
  if (!result && result.error() == errc::bad_name) {
    finish(job, failure(job.domain, MxStatus::Permanent, result.error(), "invalid domain name"),
           clamp_negative(std::nullopt));
    return;
  }
  if (!result) {
    const std::error_code code = result.error();
    finish(job, failure(job.domain, MxStatus::Temporary, code, "MX lookup: " + code.message()),
           failure_ttl);
    return;
  }
  Answer& a = *result;
  job.authenticated = a.authenticated;
  if (a.rcode == Rcode::NxDomain) {
    finish(job,
           failure(job.domain, MxStatus::Permanent, make_error_code(errc::nxdomain), "NXDOMAIN"),
           clamp_negative(a.negative_ttl));
    return;
  }
  if (a.rcode != Rcode::NoError) {
    finish(job,
           failure(job.domain, MxStatus::Temporary, make_error_code(errc::server_failure),
                   "MX lookup: " + std::string(to_string(a.rcode))),
           failure_ttl);
    return;
  }
  if (a.mx.empty()) {
    // RFC 5321 §5.1: no MX records: the domain itself is the implicit MX, preference 0.
    job.implicit = true;
    job.hosts.push_back({job.domain, 0, {}, {}, false, {}, true});
    if (a.negative_ttl) job.ttl = std::min(job.ttl, *a.negative_ttl);
    resolve_hosts(job);
    return;
  }
  std::vector<MxRecord> mx = std::move(a.mx);
  for (const auto& r : mx) job.ttl = std::min(job.ttl, r.ttl);
  // RFC 7505 §3: a single MX of "." means the domain accepts no mail. A "." mixed with other
  // records is a misconfiguration; it is ignored and the others are used.
  const bool null_mx =
      std::all_of(mx.begin(), mx.end(), [](const MxRecord& r) { return r.exchange.empty(); });
  if (null_mx) {
    finish(job,
           failure(job.domain, MxStatus::Permanent, make_error_code(errc::null_mx),
                   "null MX (RFC 7505): the domain accepts no mail"),
           clamp_positive(job.ttl));
    return;
  }
  std::stable_sort(mx.begin(), mx.end(), [](const MxRecord& x, const MxRecord& y) {
    return x.preference < y.preference;
  });
  for (const auto& r : mx) {
    if (r.exchange.empty() || is_ip_literal(r.exchange)) continue;
    const bool dup = std::any_of(job.hosts.begin(), job.hosts.end(),
                                 [&](const Job::Host& h) { return h.name == r.exchange; });
    if (dup) continue;
    if (job.hosts.size() >= options_.max_mx_hosts) break;
    job.hosts.push_back({r.exchange, r.preference, {}, {}, false, {}, true});
  }
  if (job.hosts.empty()) {
    finish(job,
           failure(job.domain, MxStatus::Permanent, make_error_code(errc::no_usable_mx),
                   "MX records name no usable host"),
           clamp_negative(std::nullopt));
    return;
  }
  resolve_hosts(job);
}

void MxCache::resolve_hosts(Job& job) {
  for (std::size_t i = 0; i < job.hosts.size(); ++i) {
    const std::string name = job.hosts[i].name;
    ask(job, name, RrType::A, static_cast<int>(i));
    ask(job, name, RrType::Aaaa, static_cast<int>(i));
  }
}

void MxCache::on_address(Job& job, int host, RrType type, Result<Answer> result) {
  --job.outstanding;
  auto& h = job.hosts[static_cast<std::size_t>(host)];
  if (!result || !result->authenticated) h.authenticated = false;
  if (!result) {
    h.temporary = true;
    h.why = std::string(to_string(type)) + " lookup of " + h.name + ": " + result.error().message();
  } else if (result->rcode != Rcode::NoError && result->rcode != Rcode::NxDomain) {
    h.temporary = true;
    h.why = std::string(to_string(type)) + " lookup of " + h.name + ": " +
            std::string(to_string(result->rcode));
  } else {
    for (const auto& r : result->addresses) {
      (type == RrType::A ? h.v4 : h.v6).push_back(r.address);
      job.ttl = std::min(job.ttl, r.ttl);
    }
  }
  if (job.outstanding == 0) finish_addresses(job);
}

void MxCache::finish_addresses(Job& job) {
  MxResult r;
  r.status = MxStatus::Ok;
  r.domain = job.domain;
  r.implicit_mx = job.implicit;
  bool temporary = false;
  std::string why;
  for (auto& h : job.hosts) {
    if (h.v4.empty() && h.v6.empty()) {
      // Hosts that do not resolve are skipped if others do (docs/reliability.md G16).
      if (h.temporary) {
        temporary = true;
        if (why.empty()) why = h.why;
      }
      continue;
    }
    MxHost out;
    out.name = h.name;
    out.preference = h.preference;
    out.authenticated = job.authenticated && h.authenticated;
    out.addresses = std::move(h.v4);
    out.addresses.insert(out.addresses.end(), h.v6.begin(), h.v6.end());
    r.hosts.push_back(std::move(out));
  }
  const Duration failure_ttl =
      std::clamp<Duration>(options_.failure_ttl, seconds(1), options_.negative_ttl);
  if (!r.hosts.empty()) {
    finish(job, std::move(r), clamp_positive(job.ttl));
  } else if (temporary) {
    finish(job,
           failure(job.domain, MxStatus::Temporary, make_error_code(errc::server_failure), why),
           failure_ttl);
  } else if (job.implicit) {
    // NODATA for MX, A and AAAA -> permanent (RFC 5321 §5.1).
    finish(job,
           failure(job.domain, MxStatus::Permanent, make_error_code(errc::no_data),
                   "no MX and no A/AAAA records"),
           clamp_negative(job.ttl == 0xffffffffu ? std::nullopt
                                                 : std::optional<std::uint32_t>(job.ttl)));
  } else {
    finish(job,
           failure(job.domain, MxStatus::Permanent, make_error_code(errc::no_usable_mx),
                   "no MX host has an address"),
           clamp_negative(std::nullopt));
  }
}

void MxCache::finish(Job& job, MxResult result, Duration ttl) {
  const TimePoint now = clock_.now();
  result.expires = now + ttl;
  const bool positive = result.status == MxStatus::Ok;
  auto owned = std::move(jobs_.at(job.domain));  // keeps `job` alive to the end
  jobs_.erase(job.domain);
  auto answer = std::make_shared<const MxResult>(std::move(result));

  auto it = entries_.find(job.domain);
  const bool keep_old = job.refresh && !positive && it != entries_.end() &&
                        it->second.answer->status == MxStatus::Ok &&
                        it->second.answer->expires > now;
  if (keep_old) {
    // A refresh that failed temporarily: keep serving the still-valid positive answer until
    // it expires (a step toward RFC 8767 serve-stale); callers were not waiting on it.
    it->second.refresh_at = TimePoint::max();
  } else {
    TimePoint refresh_at = TimePoint::max();
    if (positive) {
      refresh_at = now + std::chrono::duration_cast<Duration>(ttl * options_.refresh_fraction);
    }
    // A prewarmed domain counts as in use for its first TTL; others must be looked up again
    // after this resolution to be refreshed ahead of expiry.
    store(job.domain, answer, refresh_at, job.prewarm);
  }
  for (auto& cb : job.waiters) {
    if (!cb) continue;
    auto e = entries_.find(job.domain);
    cb(e != entries_.end() && e->second.answer == answer ? answer_for(e->second) : answer);
  }
}

void MxCache::store(const std::string& domain, MxAnswer answer, TimePoint refresh_at, bool used) {
  auto it = entries_.find(domain);
  if (it == entries_.end()) {
    lru_.push_front(domain);
    Entry e;
    e.lru = lru_.begin();
    it = entries_.emplace(domain, std::move(e)).first;
    while (entries_.size() > options_.max_entries) {
      const std::string victim = lru_.back();
      lru_.pop_back();
      entries_.erase(victim);
      ++stats_.evictions;
    }
    it = entries_.find(domain);
  } else {
    touch(it->second);
  }
  Entry& e = it->second;
  e.answer = std::move(answer);
  e.refresh_at = refresh_at;
  e.used = used;
  e.has_ties = false;
  for (std::size_t i = 1; i < e.answer->hosts.size(); ++i) {
    if (e.answer->hosts[i].preference == e.answer->hosts[i - 1].preference) e.has_ties = true;
  }
  if (refresh_at != TimePoint::max()) refresh_queue_.emplace(refresh_at, domain);
}

}  // namespace salvo::dns
