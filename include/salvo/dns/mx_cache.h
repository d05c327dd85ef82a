// SPDX-License-Identifier: Apache-2.0
// MxCache: per-shard MX resolution with caching (RFC 5321 §5.1). A domain becomes
// an ordered list of MX hosts with their addresses, or a permanent or temporary failure.
// TTLs clamped, negative answers cached (RFC 2308), lookups coalesced, entries in use
// refreshed ahead of expiry, IDN domains converted to A-labels (libidn2).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

#include <salvo/base/clock.h>
#include <salvo/base/result.h>
#include <salvo/dns/resolver.h>
#include <salvo/net/socket_address.h>
#include <salvo/shard/owned_by.h>

namespace salvo::dns {

// Ok: deliver to `hosts`. Permanent: bounce (NXDOMAIN, null MX, no MX and no address, no
// usable MX host, invalid IDN). Temporary: defer (SERVFAIL, REFUSED, timeout).
enum class MxStatus : std::uint8_t { Ok, Temporary, Permanent };

std::string_view to_string(MxStatus status) noexcept;

struct MxHost {
  std::string name;  // A-label host name (the domain itself for an implicit MX)
  std::uint16_t preference = 0;
  std::vector<net::SocketAddress> addresses;  // port 0; IPv4 (A) first, then IPv6 (AAAA)
  // The MX answer (or NODATA, for an implicit MX) and both address answers of this host had
  // AD set (RFC 7672 §2.2: only then may its TLSA records be looked up). Meaningful only
  // from a validating resolver ([dns] validating).
  bool authenticated = false;
};

struct MxResult {
  MxStatus status = MxStatus::Temporary;
  std::error_code error;     // dns::errc (or a system error) when status != Ok
  std::string detail;        // one line for logs and DSNs: "example.com: NXDOMAIN"
  std::string domain;        // the A-label domain looked up
  bool implicit_mx = false;  // RFC 5321 §5.1: no MX, the domain's own A/AAAA at preference 0
  // Ascending preference; hosts of equal preference in random order (shuffled per lookup).
  std::vector<MxHost> hosts;
  TimePoint expires{};
};
using MxAnswer = std::shared_ptr<const MxResult>;

struct MxCacheOptions {
  Duration min_ttl = std::chrono::minutes(1);  // positive TTLs clamped to [min_ttl, max_ttl]
  Duration max_ttl = std::chrono::hours(24);
  Duration negative_ttl = std::chrono::minutes(5);  // cap on NXDOMAIN/NODATA (SOA) TTLs
  // SERVFAIL/timeout results are cached this long (RFC 2308 §7.1: at most 5 minutes; RFC
  // 9520: at least a second), capped by negative_ttl.
  Duration failure_ttl = std::chrono::seconds(30);
  // An entry used since it was resolved is re-resolved when this fraction of its TTL passed.
  double refresh_fraction = 0.8;
  std::size_t max_entries = 100000;  // LRU beyond
  std::size_t max_mx_hosts = 10;     // MX targets resolved per domain, most preferred first
  std::uint64_t shuffle_seed = 0;    // 0: seeded from getrandom(2); tests pass a fixed seed
};

// Per-shard counters.
struct MxCacheStats {
  std::uint64_t lookups = 0;
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;       // lookups that had to wait
  std::uint64_t coalesced = 0;    // misses that joined a resolution already running
  std::uint64_t resolutions = 0;  // resolutions started (misses, prewarm, refresh)
  std::uint64_t refreshes = 0;    // of those, refresh-ahead
  std::uint64_t evictions = 0;
  std::uint64_t queries = 0;  // DNS queries asked of the Querier
  MxCacheStats& operator+=(const MxCacheStats& o) noexcept;
};

// Owner: the shard that owns the destinations (shard_for(domain)); every call and callback on
// that shard's thread. Lifecycle: construct over a Querier that outlives it, prewarm(), then
// lookup() and tick() (about once a second) from the shard loop. Destroying it drops pending
// callbacks; queries still running in the Querier find it gone and do nothing.
//
//   lookup(d) ─ fresh entry ──────────────────────────► answer now (refresh started if due)
//             └ miss/expired ─► job(d) ─► MX ─┬► A+AAAA of each MX host ─► cache ─► callbacks
//                 (joins a running job)       └► NODATA: A+AAAA of d (implicit MX)
class MxCache {
 public:
  using Callback = std::function<void(MxAnswer)>;

  MxCache(Querier& querier, const Clock& clock, MxCacheOptions options);
  ~MxCache();
  MxCache(const MxCache&) = delete;
  MxCache& operator=(const MxCache&) = delete;

  // The answer now when it is cached and fresh (or the domain is an invalid IDN); then `cb`
  // is dropped. Otherwise nullptr, and `cb` is called exactly once later from a Querier
  // callback, never from inside lookup().
  [[nodiscard]] MxAnswer lookup(std::string_view domain, Callback cb);
  // The same for a host name given directly (a [routes] target): its A/AAAA records, as
  // one host at preference 0, cached beside the domains' answers.
  [[nodiscard]] MxAnswer lookup_host(std::string_view host, Callback cb);
  // Starts resolving each domain not cached yet ([dns] prewarm); no callbacks.
  void prewarm(std::span<const std::string> domains);
  // Starts the refresh-ahead resolutions that are due. Call about once a second.
  void tick();

  std::size_t size() const noexcept { return entries_.size(); }
  std::size_t resolving() const noexcept { return jobs_.size(); }
  const MxCacheStats& stats() const noexcept { return stats_; }
  const MxCacheOptions& options() const noexcept { return options_; }

  // U-labels to A-labels (IDNA2008 with UTS #46 non-transitional mapping), lower case, no
  // final dot. Diagnostics: errc::bad_idn (with libidn2's reason in *why when given),
  // errc::bad_name for an empty or over-long name.
  [[nodiscard]] static Result<std::string> to_ascii(std::string_view domain,
                                                    std::string* why = nullptr);

 private:
  struct Entry;
  struct Job;
  struct Alive {
    MxCache* cache;
  };

  // Host-name entries are keyed by this prefix, which no domain can start with.
  static constexpr std::string_view kHostKey = "=";
  MxAnswer lookup_name(std::string_view name, std::string_view key_prefix,
                       std::string_view invalid, Callback cb);
  MxAnswer cached_or_start(const std::string& key, Callback cb);
  MxAnswer answer_for(const Entry& e);
  Job& start_job(const std::string& domain);
  void ask(Job& job, const std::string& name, RrType type, int host);
  void on_mx(Job& job, Result<Answer> result);
  void on_address(Job& job, int host, RrType type, Result<Answer> result);
  void resolve_hosts(Job& job);
  void finish(Job& job, MxResult result, Duration ttl);
  void finish_addresses(Job& job);
  Duration clamp_positive(std::uint32_t ttl) const;
  Duration clamp_negative(std::optional<std::uint32_t> soa_ttl) const;
  void store(const std::string& domain, MxAnswer answer, TimePoint refresh_at, bool used);
  void touch(Entry& e);

  Querier& querier_;
  const Clock& clock_;
  MxCacheOptions options_;
  MxCacheStats stats_;
  std::mt19937_64 rng_;
  std::list<std::string> lru_;  // most recently used first
  std::unordered_map<std::string, Entry> entries_;
  std::unordered_map<std::string, std::unique_ptr<Job>> jobs_;
  using Due = std::pair<TimePoint, std::string>;
  std::priority_queue<Due, std::vector<Due>, std::greater<>> refresh_queue_;
  std::shared_ptr<Alive> alive_;
  shard::OwnedBy owner_;
};

}  // namespace salvo::dns
