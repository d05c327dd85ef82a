// SPDX-License-Identifier: Apache-2.0
// MtaStsCache: per-shard MTA-STS policies (see mta_sts_cache.h).
#include "outbound/mta_sts_cache.h"

#include <algorithm>
#include <utility>

#include <salvo/base/log.h>

namespace salvo::outbound {

MtaStsCache::MtaStsCache(const Clock& clock, MtaStsCacheOptions o, TxtQuery txt, Fetch fetch,
                         Known known)
    : clock_(clock),
      options_(o),
      txt_(std::move(txt)),
      fetch_(std::move(fetch)),
      known_(std::move(known)) {}

MtaStsCache::~MtaStsCache() = default;

bool MtaStsCache::usable(const Entry& e, TimePoint now) const noexcept {
  return e.policy && now < e.fetched + std::chrono::seconds(e.policy->max_age);
}

Duration MtaStsCache::clamp_ttl(std::uint32_t ttl) const noexcept {
  return std::clamp<Duration>(std::chrono::seconds(ttl), options_.min_ttl, options_.max_ttl);
}

std::optional<StsPolicyPtr> MtaStsCache::get(std::string_view domain) {
  const TimePoint now = clock_.now();
  auto it = entries_.find(domain);
  if (it == entries_.end()) it = entries_.emplace(std::string(domain), Entry{}).first;
  Entry& e = it->second;
  // An expired policy is never used (§5.1): until a new one comes, the caller waits.
  if (e.policy && !usable(e, now)) {
    e.policy.reset();
    e.known = false;
  }
  if (e.known) {
    ++stats_.hits;
    if (now >= e.recheck && !e.busy) refresh(it->first, e);
    if (!e.policy || e.policy->mode == StsMode::None) return StsPolicyPtr();
    return e.policy;
  }
  if (!e.waited) ++stats_.misses;  // one per wait, however often its pumps ask
  e.waited = true;
  if (!e.busy) refresh(it->first, e);
  return std::nullopt;
}

void MtaStsCache::refresh(const std::string& domain, Entry& e) {
  e.busy = true;
  ++stats_.txt_queries;
  std::weak_ptr<int> alive = alive_;
  txt_("_mta-sts." + domain, [this, alive, domain](Result<dns::Answer> a) {
    if (alive.expired()) return;
    on_txt(domain, std::move(a));
  });
}

void MtaStsCache::on_txt(const std::string& domain, Result<dns::Answer> a) {
  auto it = entries_.find(domain);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  const TimePoint now = clock_.now();
  if (!a || (a->rcode != dns::Rcode::NoError && a->rcode != dns::Rcode::NxDomain)) {
    // The lookup failed: what is cached stays; without it, none for a short while.
    log::debug("outbound: MTA-STS: TXT _mta-sts.{}: {}", domain,
               a ? std::string(dns::to_string(a->rcode)) : a.error().message());
    settle(domain, std::min<Duration>(options_.negative_ttl, std::chrono::minutes(1)));
    return;
  }
  std::vector<std::string> texts;
  std::uint32_t ttl = 0;
  for (const auto& t : a->txt) {
    texts.push_back(t.text);
    ttl = texts.size() == 1 ? t.ttl : std::min(ttl, t.ttl);
  }
  auto id = parse_sts_record(texts);
  if (!id) {
    // No (valid) record: the domain has no policy, but a cached one is kept until it
    // expires (§5.1). Negative answers are cached for the SOA's TTL, bounded.
    const Duration neg =
        a->negative_ttl ? std::min(clamp_ttl(*a->negative_ttl), options_.negative_ttl)
                        : options_.negative_ttl;
    if (!a->txt.empty()) log::debug("outbound: MTA-STS: _mta-sts.{}: {}", domain, id.error());
    settle(domain, texts.empty() ? neg : clamp_ttl(ttl));
    return;
  }
  const Duration recheck = clamp_ttl(ttl);
  if (usable(e, now) && e.policy->id == *id &&
      now < e.fetched + std::chrono::seconds(e.policy->max_age / 2)) {
    settle(domain, recheck);
    return;
  }
  ++stats_.fetches;
  std::weak_ptr<int> alive = alive_;
  fetch_(domain, [this, alive, domain, got = *id, recheck](StsFetchResult r) {
    if (alive.expired()) return;
    on_fetch(domain, got, recheck, std::move(r));
  });
}

void MtaStsCache::on_fetch(const std::string& domain, const std::string& id, Duration txt_ttl,
                           StsFetchResult r) {
  auto it = entries_.find(domain);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  const TimePoint now = clock_.now();
  std::expected<StsPolicy, std::string> p =
      r ? parse_sts_policy(*r) : std::unexpected(std::move(r.error()));
  // Counted as failed: no response, or one that is not a valid policy.
  if (!p) {
    ++stats_.fetch_failures;
    log::warn("outbound: MTA-STS policy of {} not fetched: {}{}", domain, p.error(),
              usable(e, now) ? " (the cached policy stays in force)" : "");
    settle(domain, std::min<Duration>(options_.negative_ttl, std::chrono::minutes(1)));
    return;
  }
  p->id = id;
  log::info("outbound: MTA-STS policy of {}: mode {}, {} mx pattern(s), max_age {}s, id {}",
            domain, to_string(p->mode), p->mx.size(), p->max_age, id);
  e.policy = std::make_shared<const StsPolicy>(std::move(*p));
  e.fetched = now;
  // Refetched at half its age at the latest; the TXT record is checked sooner when its
  // TTL is shorter.
  const Duration half = std::chrono::seconds(std::max<std::uint32_t>(e.policy->max_age / 2, 1));
  settle(domain, std::min(half, txt_ttl));
}

void MtaStsCache::settle(const std::string& domain, Duration recheck) {
  auto it = entries_.find(domain);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  e.busy = false;
  e.known = true;
  e.recheck = clock_.now() + recheck;
  if (e.policy && !usable(e, clock_.now())) e.policy.reset();
  if (e.waited) {
    e.waited = false;
    if (known_) known_(domain);
  }
}

}  // namespace salvo::outbound
