// SPDX-License-Identifier: Apache-2.0
// /metrics: a metrics snapshot in the Prometheus text exposition format 0.0.4, one HELP and
// TYPE per family, then its series; histograms (nanoseconds) in seconds with fixed bounds.
// Pure: the control thread gathers the answers, this only adds them up and formats them.
#pragma once

#include <string>
#include <vector>

#include <salvo/base/metrics.h>

#include <salvo/admin/control.h>

namespace salvo::admin {

// The node's series: every shard's added, plus those only the control thread knows (the
// spool's free space; each shard's blocked time, loop utilisation and whether it answered).
// utilisation: per shard, 0..1 over the last second, -1 when not known yet.
metrics::Snapshot node_metrics(const std::vector<ShardAnswer>& shards,
                               const std::vector<double>& utilisation,
                               std::uint64_t spool_free_bytes);

std::string render_prometheus(const metrics::Snapshot& s);

}  // namespace salvo::admin
