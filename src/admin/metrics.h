// SPDX-License-Identifier: Apache-2.0
// /metrics: every shard's answer rendered in the Prometheus text exposition format 0.0.4
// (counters per outcome and destination class, queue depth, connections, DNS cache, the
// fsync and end-of-data->reply latency histograms, per-shard loop utilisation). Pure: the
// control thread gathers the answers, this only formats them.
#pragma once

#include <string>
#include <vector>

#include <salvo/base/histogram.h>

#include <salvo/admin/control.h>

namespace salvo::admin {

struct MetricsExtras {
  std::vector<double> utilisation;  // per shard, 0..1 over the last second (-1: unknown)
  std::uint64_t spool_free_bytes = 0;
};

std::string render_metrics(const std::vector<ShardAnswer>& shards, const MetricsExtras& extras);

// A LatencyHistogram (nanoseconds) as a Prometheus histogram in seconds with fixed bounds.
// A value is counted under the first bound at or above its bucket's upper edge, so it may
// land one bound late when it lies within ~3% below a bound (the histogram's resolution).
void append_histogram(std::string& out, const std::string& name, const std::string& help,
                      const LatencyHistogram& h);

}  // namespace salvo::admin
