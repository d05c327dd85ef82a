// SPDX-License-Identifier: Apache-2.0
// MxCache hit path (delivery never waits on DNS for a known domain): lookups/s for a warm cache of
// many domains, with and without equal-preference shuffling, the TlsaCache hit (DANE, per
// connection), and the codec's decode cost.
#include <salvo/dns/mx_cache.h>

#include <cstdlib>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include <salvo/base/clock.h>
#include <salvo/dns/message.h>
#include <salvo/dns/tlsa_cache.h>

#include "dns/ldns_include.h"

namespace {

using namespace salvo;
using namespace salvo::dns;

// Answers synchronously-later: queued and delivered by run().
class InstantQuerier final : public Querier {
 public:
  bool ties = false;
  void query(std::string_view name, RrType type, Callback cb) override {
    Answer a;
    if (type == RrType::Mx) {
      a.mx.push_back({10, "mx1." + std::string(name), 3600});
      a.mx.push_back(
          {ties ? std::uint16_t{10} : std::uint16_t{20}, "mx2." + std::string(name), 3600});
    } else if (type == RrType::A) {
      a.addresses.push_back({*net::SocketAddress::parse("192.0.2.1"), 3600});
    } else if (type == RrType::Tlsa) {
      a.authenticated = true;
      a.tlsa.push_back({net::Tlsa{3, 1, 1, std::string(32, 'x')}, 3600});
    }
    pending.emplace_back(std::move(cb), std::move(a));
  }
  void run() {
    while (!pending.empty()) {
      auto batch = std::move(pending);
      pending.clear();
      for (auto& [cb, a] : batch) cb(a);
    }
  }
  std::vector<std::pair<Callback, Answer>> pending;
};

// The timed part of a cache-hit benchmark: each name in turn, warm.
template <class Cache>
void lookup_in_turn(benchmark::State& state, Cache& cache, const std::vector<std::string>& names) {
  std::size_t i = 0;
  for (auto _ : state) {
    auto a = cache.lookup(names[i], nullptr);
    benchmark::DoNotOptimize(a);
    if (++i == names.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_MxCacheHit(benchmark::State& state) {
  InstantQuerier q;
  q.ties = state.range(1) != 0;
  SystemClock clock;
  MxCache cache(q, clock, MxCacheOptions{.shuffle_seed = 1});
  const int domains = static_cast<int>(state.range(0));
  std::vector<std::string> names;
  for (int i = 0; i < domains; ++i) names.push_back("domain" + std::to_string(i) + ".example");
  cache.prewarm(names);
  q.run();
  lookup_in_turn(state, cache, names);
}
BENCHMARK(BM_MxCacheHit)->Args({100, 0})->Args({100, 1})->Args({100000, 0})->Args({100000, 1});

// DANE: the per-connection TLSA lookup of a known MX host ([dns] validating), a cache hit.
void BM_TlsaCacheHit(benchmark::State& state) {
  InstantQuerier q;
  SystemClock clock;
  TlsaCache cache(q, clock, TlsaCacheOptions{});
  const int hosts = static_cast<int>(state.range(0));
  std::vector<std::string> names;
  for (int i = 0; i < hosts; ++i) names.push_back("mx" + std::to_string(i) + ".example");
  for (const auto& n : names) (void)cache.lookup(n, nullptr);
  q.run();
  lookup_in_turn(state, cache, names);
}
BENCHMARK(BM_TlsaCacheHit)->Arg(100)->Arg(100000);

void BM_DecodeMxAnswer(benchmark::State& state) {
  ldns_pkt* p = ldns_pkt_query_new(ldns_dname_new_frm_str("example.com."), LDNS_RR_TYPE_MX,
                                   LDNS_RR_CLASS_IN, LDNS_RD);
  ldns_pkt_set_id(p, 7);
  ldns_pkt_set_qr(p, true);
  for (const char* line : {"example.com. 300 IN MX 10 mx1.example.com.",
                           "example.com. 300 IN MX 20 mx2.example.com."}) {
    ldns_rr* rr = nullptr;
    ldns_rr_new_frm_str(&rr, line, 300, nullptr, nullptr);
    ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr);
  }
  std::uint8_t* wire = nullptr;
  std::size_t size = 0;
  ldns_pkt2wire(&wire, p, &size);
  std::string w(reinterpret_cast<char*>(wire), size);
  std::free(wire);
  ldns_pkt_free(p);
  const Question q{"example.com", RrType::Mx, 7};
  for (auto _ : state) {
    auto a = decode_response(w, q);
    benchmark::DoNotOptimize(a);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeMxAnswer);

}  // namespace
