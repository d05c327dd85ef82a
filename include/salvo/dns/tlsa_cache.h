// SPDX-License-Identifier: Apache-2.0
// TlsaCache: per-shard TLSA lookups for DANE (RFC 7672 §2.2): `_25._tcp.<mx-host>` asked of
// the resolver, the answer reduced to what the DANE decision needs (secure records, insecure,
// securely absent, failed) and cached for its TTL, so a destination does not cost a lookup
// per connection. Whether AD may be trusted ([dns] validating) is the caller's decision.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <salvo/base/clock.h>
#include <salvo/dns/resolver.h>
#include <salvo/net/dane.h>
#include <salvo/shard/owned_by.h>

namespace salvo::dns {

// Secure: AD set and TLSA records (usable or not: net::tlsa_usable decides). Insecure: an
// answer without AD (unsigned zone, or a resolver that does not validate). Absent: AD set
// and NXDOMAIN or NODATA (RFC 7672 §2.2.3: no DANE). Failed: SERVFAIL, another error rcode,
// a timeout or an undecodable answer (RFC 7672 §2.2.3: the host cannot be used securely).
enum class TlsaStatus : std::uint8_t { Secure, Insecure, Absent, Failed };

std::string_view to_string(TlsaStatus status) noexcept;

struct TlsaResult {
  TlsaStatus status = TlsaStatus::Failed;
  std::vector<net::Tlsa> records;  // Secure only
  std::string detail;              // Failed: one line ("_25._tcp.mx.example: SERVFAIL")
  TimePoint expires{};
};
using TlsaAnswer = std::shared_ptr<const TlsaResult>;

struct TlsaCacheOptions {
  Duration min_ttl = std::chrono::minutes(1);  // positive TTLs clamped to [min_ttl, max_ttl]
  Duration max_ttl = std::chrono::hours(24);
  Duration negative_ttl = std::chrono::minutes(5);  // cap on Absent/Insecure answers
  Duration failure_ttl = std::chrono::seconds(30);  // Failed answers (at most negative_ttl)
  std::size_t max_entries = 100000;                 // beyond: expired, then any, dropped
  std::uint16_t port = 25;                          // the `_25._tcp` of the query name
};

struct TlsaCacheStats {
  std::uint64_t lookups = 0;
  std::uint64_t hits = 0;
  std::uint64_t queries = 0;
  TlsaCacheStats& operator+=(const TlsaCacheStats& o) noexcept;
};

// Owner: one shard; every call and callback on its thread. Lookups of the same host while
// one is running join it. Destroying the cache drops pending callbacks (queries still in
// the Querier find it gone).
class TlsaCache {
 public:
  using Callback = std::function<void(TlsaAnswer)>;

  TlsaCache(Querier& querier, const Clock& clock, TlsaCacheOptions options);
  ~TlsaCache();
  TlsaCache(const TlsaCache&) = delete;
  TlsaCache& operator=(const TlsaCache&) = delete;

  // The cached, fresh answer for `host` (an MX host name, A-label) now; then `cb` is dropped.
  // Otherwise nullptr, and `cb` is called exactly once later, never from inside lookup().
  [[nodiscard]] TlsaAnswer lookup(std::string_view host, Callback cb);

  // Answers every lookup still waiting with Failed ("cancelled"), now: for shutdown, so a
  // waiter is not left behind when the resolver under the cache stops.
  void cancel();

  std::size_t size() const noexcept { return entries_.size(); }
  const TlsaCacheStats& stats() const noexcept { return stats_; }

  // The query name for `host`: "_25._tcp.<host>" (RFC 7672 §2.2.3, RFC 6698 §3).
  std::string query_name(std::string_view host) const;

 private:
  struct Alive {
    TlsaCache* cache;
  };
  void on_answer(const std::string& host, Result<Answer> result);
  void store(const std::string& host, TlsaAnswer answer);

  Querier& querier_;
  const Clock& clock_;
  TlsaCacheOptions options_;
  TlsaCacheStats stats_;
  std::unordered_map<std::string, TlsaAnswer> entries_;
  std::unordered_map<std::string, std::vector<Callback>> pending_;
  std::shared_ptr<Alive> alive_;
  shard::OwnedBy owner_;
};

}  // namespace salvo::dns
