// SPDX-License-Identifier: Apache-2.0
// TlsaCache: one TLSA query per host and TTL, the answer reduced to a TlsaStatus.
#include <salvo/dns/tlsa_cache.h>

#include <algorithm>
#include <utility>

#include <salvo/dns/errc.h>

namespace salvo::dns {
namespace {

using std::chrono::seconds;

}  // namespace

std::string_view to_string(TlsaStatus status) noexcept {
  switch (status) {
    case TlsaStatus::Secure:
      return "secure";
    case TlsaStatus::Insecure:
      return "insecure";
    case TlsaStatus::Absent:
      return "absent";
    case TlsaStatus::Failed:
      return "failed";
  }
  return "?";
}

TlsaCacheStats& TlsaCacheStats::operator+=(const TlsaCacheStats& o) noexcept {
  lookups += o.lookups;
  hits += o.hits;
  queries += o.queries;
  return *this;
}

TlsaCache::TlsaCache(Querier& querier, const Clock& clock, TlsaCacheOptions options)
    : querier_(querier),
      clock_(clock),
      options_(std::move(options)),
      alive_(std::make_shared<Alive>(Alive{this})) {
  options_.max_ttl = std::max(options_.max_ttl, options_.min_ttl);
  options_.negative_ttl = std::max<Duration>(options_.negative_ttl, seconds(1));
  options_.failure_ttl = std::clamp<Duration>(options_.failure_ttl, seconds(1),
                                              options_.negative_ttl);
  options_.max_entries = std::max<std::size_t>(options_.max_entries, 1);
}

TlsaCache::~TlsaCache() { alive_->cache = nullptr; }

std::string TlsaCache::query_name(std::string_view host) const {
  std::string name = "_";
  name += std::to_string(options_.port);
  name += "._tcp.";
  name += normalize_name(host);
  return name;
}

TlsaAnswer TlsaCache::lookup(std::string_view host, Callback cb) {
  owner_.check();
  ++stats_.lookups;
  const std::string key = normalize_name(host);
  if (auto it = entries_.find(key); it != entries_.end()) {
    if (clock_.now() < it->second->expires) {
      ++stats_.hits;
      return it->second;
    }
    entries_.erase(it);
  }
  auto [it, fresh] = pending_.try_emplace(key);
  it->second.push_back(std::move(cb));
  if (!fresh) return nullptr;
  ++stats_.queries;
  std::weak_ptr<Alive> alive = alive_;
  querier_.query(query_name(key), RrType::Tlsa, [alive, key](Result<Answer> result) {
    auto guard = alive.lock();
    if (!guard || guard->cache == nullptr) return;
    guard->cache->on_answer(key, std::move(result));
  });
  return nullptr;
}

void TlsaCache::on_answer(const std::string& host, Result<Answer> result) {
  auto r = std::make_shared<TlsaResult>();
  Duration ttl = options_.failure_ttl;
  const std::string name = query_name(host);
  if (!result) {
    r->status = TlsaStatus::Failed;
    r->detail = name + ": " + result.error().message();
  } else if (result->rcode != Rcode::NoError && result->rcode != Rcode::NxDomain) {
    r->status = TlsaStatus::Failed;
    r->detail = name + ": " + std::string(to_string(result->rcode));
  } else if (result->truncated) {
    // The resolver retries truncated answers over TCP; one that stays truncated is not
    // a complete RRset to decide on.
    r->status = TlsaStatus::Failed;
    r->detail = name + ": truncated answer";
  } else if (!result->authenticated) {
    r->status = TlsaStatus::Insecure;
    ttl = options_.negative_ttl;
    if (!result->tlsa.empty()) {
      std::uint32_t t = 0xffffffffu;
      for (const auto& rec : result->tlsa) t = std::min(t, rec.ttl);
      ttl = std::clamp<Duration>(seconds(t), seconds(1), options_.negative_ttl);
    } else if (result->negative_ttl) {
      ttl = std::clamp<Duration>(seconds(*result->negative_ttl), seconds(1),
                                 options_.negative_ttl);
    }
  } else if (result->tlsa.empty()) {
    r->status = TlsaStatus::Absent;
    ttl = result->negative_ttl ? std::clamp<Duration>(seconds(*result->negative_ttl),
                                                      seconds(1), options_.negative_ttl)
                               : options_.negative_ttl;
  } else {
    r->status = TlsaStatus::Secure;
    std::uint32_t t = 0xffffffffu;
    for (auto& rec : result->tlsa) {
      t = std::min(t, rec.ttl);
      r->records.push_back(std::move(rec.tlsa));
    }
    ttl = std::clamp<Duration>(seconds(t), options_.min_ttl, options_.max_ttl);
  }
  r->expires = clock_.now() + ttl;
  TlsaAnswer answer = std::move(r);
  store(host, answer);
  auto it = pending_.find(host);
  if (it == pending_.end()) return;
  std::vector<Callback> waiters = std::move(it->second);
  pending_.erase(it);
  for (auto& cb : waiters) {
    if (cb) cb(answer);
  }
}

void TlsaCache::cancel() {
  owner_.check();
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [host, waiters] : pending) {
    auto r = std::make_shared<TlsaResult>();
    r->status = TlsaStatus::Failed;
    r->detail = query_name(host) + ": cancelled";
    r->expires = clock_.now();
    for (auto& cb : waiters) {
      if (cb) cb(r);
    }
  }
}

void TlsaCache::store(const std::string& host, TlsaAnswer answer) {
  if (entries_.size() >= options_.max_entries && !entries_.contains(host)) {
    const TimePoint now = clock_.now();
    std::erase_if(entries_, [&](const auto& e) { return e.second->expires <= now; });
    if (entries_.size() >= options_.max_entries) entries_.erase(entries_.begin());
  }
  entries_[host] = std::move(answer);
}

}  // namespace salvo::dns
