// SPDX-License-Identifier: Apache-2.0
// MtaStsCache: the MTA-STS policies (RFC 8461) of one shard's destinations. Shared-nothing:
// each shard keeps its own (a domain's mail is delivered by the shard that owns it, so the
// policy is fetched once per node in practice).
//
//   get(domain) ── known and fresh ──► the policy (or none), at once
//        │ unknown: start refresh, the caller waits (known(domain) once it is)
//        │ known, recheck due: start refresh, answer with what is cached meanwhile
//   refresh: TXT _mta-sts.<domain> ─► no valid record: keep an unexpired cached policy,
//            else none for the negative TTL
//          ─► id == cached id and the policy younger than half its max_age: keep it
//          ─► else A/AAAA mta-sts.<domain> ─► HTTPS GET (StsFetch) ─► parse ─► cache for
//             max_age; a failed fetch keeps an unexpired cached policy (§5.1), else none
//
// The TXT record is checked again when its TTL ([dns] min_ttl..max_ttl) runs out, and the
// policy refetched at half its max_age, so an id change or an expiry is seen by the next
// delivery after it. The DNS and HTTPS work goes through seams (the shard's resolver and
// stack in production).
//
// Owner: the shard. Callbacks run on its thread; none after destruction.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <salvo/base/clock.h>
#include <salvo/dns/message.h>
#include <salvo/dns/resolver.h>

#include "outbound/mta_sts.h"
#include "outbound/mta_sts_fetch.h"

namespace salvo::outbound {

struct MtaStsCacheOptions {
  Duration min_ttl = std::chrono::minutes(1);  // TXT rechecks: its TTL clamped to these
  Duration max_ttl = std::chrono::hours(24);
  Duration negative_ttl = std::chrono::minutes(5);  // no policy: asked again after this
};

struct MtaStsStats {
  std::uint64_t txt_queries = 0;
  std::uint64_t fetches = 0;
  std::uint64_t fetch_failures = 0;
  std::uint64_t hits = 0;    // get() answered from the cache
  std::uint64_t misses = 0;  // waits: get() found no answer yet (once per wait)
};

class MtaStsCache {
 public:
  // The seams: TXT queries, and the HTTPS fetch of mta-sts.<domain>'s policy (the host
  // lookup included).
  using TxtQuery = std::function<void(std::string_view name, dns::Querier::Callback cb)>;
  using Fetch = std::function<void(const std::string& domain, StsFetchCallback cb)>;
  // A domain whose get() had to wait is known now (called from a seam's callback).
  using Known = std::function<void(const std::string& domain)>;

  MtaStsCache(const Clock& clock, MtaStsCacheOptions o, TxtQuery txt, Fetch fetch,
              Known known);
  ~MtaStsCache();
  MtaStsCache(const MtaStsCache&) = delete;
  MtaStsCache& operator=(const MtaStsCache&) = delete;

  // The policy in force for `domain` (lower case): a policy, or null for none (mode none
  // counts as none). nullopt: not known yet; known(domain) follows. No allocation when
  // the domain is cached (it is asked on every pump of its destination).
  std::optional<StsPolicyPtr> get(std::string_view domain);
  void set_options(MtaStsCacheOptions o) { options_ = o; }
  const MtaStsStats& stats() const noexcept { return stats_; }

 private:
  struct Entry {
    StsPolicyPtr policy;          // the last good policy, or null
    TimePoint fetched{};          // when it was fetched
    TimePoint recheck{};          // the next TXT check
    bool known = false;           // answered at least once
    bool busy = false;            // a refresh is under way
    bool waited = false;          // a get() is waiting for the refresh
  };
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  void refresh(const std::string& domain, Entry& e);
  void on_txt(const std::string& domain, Result<dns::Answer> a);
  void on_fetch(const std::string& domain, const std::string& id, Duration txt_ttl,
                StsFetchResult r);
  // The refresh is over: what is cached stays in force until `recheck`.
  void settle(const std::string& domain, Duration recheck);
  bool usable(const Entry& e, TimePoint now) const noexcept;
  Duration clamp_ttl(std::uint32_t ttl) const noexcept;

  const Clock& clock_;
  MtaStsCacheOptions options_;
  TxtQuery txt_;
  Fetch fetch_;
  Known known_;
  MtaStsStats stats_;
  std::unordered_map<std::string, Entry, NameHash, std::equal_to<>> entries_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // callbacks check it
};

}  // namespace salvo::outbound
