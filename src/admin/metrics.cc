// SPDX-License-Identifier: Apache-2.0
// Prometheus text format rendering (see metrics.h).
#include "admin/metrics.h"

#include <array>
#include <set>

#include <fmt/format.h>

namespace salvo::admin {
namespace {

constexpr metrics::Family kSpoolFree{"salvo_spool_free_bytes", metrics::Type::Gauge,
                                     "Free space on the spool's file system (for unprivileged "
                                     "users)."};
constexpr metrics::Family kBlocked{"salvo_shard_blocked_seconds_total", metrics::Type::Counter,
                                   "Time each shard's loop spent blocked waiting for IO (idle)."};
constexpr metrics::Family kUtilisation{
    "salvo_shard_loop_utilisation", metrics::Type::Gauge,
    "Fraction of the last second each shard's loop was not blocked waiting for IO."};
constexpr metrics::Family kUp{"salvo_shard_up", metrics::Type::Gauge,
                              "1 when the shard answered this scrape."};

constexpr std::array<double, 17> kBounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                            0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                            1,      2.5,     5,      10,    30};

void series(std::string& out, std::string_view name, std::string_view labels, double v) {
  if (labels.empty()) {
    out += fmt::format("{} {}\n", name, v);
  } else {
    out += fmt::format("{}{{{}}} {}\n", name, labels, v);
  }
}

std::string with(std::string_view labels, std::string_view more) {
  if (labels.empty()) return std::string(more);
  return fmt::format("{},{}", labels, more);
}

// A value is counted under the first bound at or above its bucket's upper edge, so it may
// land one bound late when it lies within ~3% below a bound (the histogram's resolution).
void histogram(std::string& out, std::string_view name, std::string_view labels,
               const LatencyHistogram& h) {
  std::array<std::uint64_t, kBounds.size()> counts{};
  for (unsigned b = 0; b < LatencyHistogram::kBuckets; ++b) {
    const std::uint64_t n = h.bucket_count(b);
    if (n == 0) continue;
    const double upper_s = static_cast<double>(LatencyHistogram::upper_bound(b)) / 1e9;
    for (std::size_t i = 0; i < kBounds.size(); ++i) {
      if (upper_s <= kBounds[i]) {
        counts[i] += n;
        break;
      }
    }
  }
  const std::string bucket = fmt::format("{}_bucket", name);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += counts[i];
    series(out, bucket, with(labels, fmt::format("le=\"{}\"", kBounds[i])),
           static_cast<double>(cumulative));
  }
  series(out, bucket, with(labels, "le=\"+Inf\""), static_cast<double>(h.count()));
  series(out, fmt::format("{}_sum", name), labels,
         h.mean() * static_cast<double>(h.count()) / 1e9);
  series(out, fmt::format("{}_count", name), labels, static_cast<double>(h.count()));
}

}  // namespace

metrics::Snapshot node_metrics(const std::vector<ShardAnswer>& shards,
                               const std::vector<double>& utilisation,
                               std::uint64_t spool_free_bytes) {
  metrics::Snapshot node;
  for (const auto& a : shards) node += a.metrics;
  node.add(kSpoolFree, {}, spool_free_bytes);
  for (std::size_t i = 0; i < shards.size(); ++i) {
    const std::string shard = metrics::label("shard", std::to_string(i));
    node.add(kBlocked, shard, static_cast<double>(shards[i].blocked_ns) / 1e9);
    // Not known yet (fewer than two samples): left out rather than reported as 0.
    if (i < utilisation.size() && utilisation[i] >= 0) {
      node.add(kUtilisation, shard, utilisation[i]);
    }
    node.add(kUp, shard, shards[i].answered ? 1.0 : 0.0);
  }
  return node;
}

std::string render_prometheus(const metrics::Snapshot& s) {
  std::string out;
  out.reserve(16 * 1024);
  std::set<std::string_view> done;
  const auto& all = s.samples();
  for (std::size_t i = 0; i < all.size(); ++i) {
    const metrics::Family& f = *all[i].family;
    if (!done.insert(f.name).second) continue;
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", f.name, f.help, f.name,
                       metrics::to_string(f.type));
    for (std::size_t j = i; j < all.size(); ++j) {
      const metrics::Sample& m = all[j];
      if (m.family->name != f.name) continue;
      if (f.type == metrics::Type::Histogram) {
        histogram(out, f.name, m.labels, m.histogram ? *m.histogram : LatencyHistogram{});
      } else {
        series(out, f.name, m.labels, m.value);
      }
    }
  }
  return out;
}

}  // namespace salvo::admin
