// SPDX-License-Identifier: Apache-2.0
// The views of the node the control thread renders from one set of shard answers: salvoctl
// status, salvoctl domains, the dashboard's JSON (/api/v1/status) and salvoctl trace. Pure
// but for trace, which reads the accounting log: the answers, the samples and the spool's
// size are passed in.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <salvo/admin/control.h>

#include "admin/sampler.h"

namespace salvo::admin {

// The spool directory and its file system, measured by the control thread.
struct SpoolFacts {
  std::string dir;
  std::uint64_t bytes = 0;       // every file under the spool directory
  std::uint64_t free_bytes = 0;  // for unprivileged users
  std::uint64_t allocated_bytes = 0;  // the disk space `bytes` take (st_blocks: punched holes)
};

// salvoctl status --json: queue, intake and delivery totals with their rates, connections,
// the spool, one row per shard, and every counter ("metrics": {"name{labels}": value}).
nlohmann::json status_json(const std::vector<ShardAnswer>& answers, const Sampler& sampler,
                           const SpoolFacts& spool);
// salvoctl domains: one row per destination, sorted by `sort` (queued, rate, connections,
// delivered, bounced, domain), the first `top` (0: all).
nlohmann::json domains_json(const std::vector<ShardAnswer>& answers, const std::string& sort,
                            std::size_t top);
// /api/v1/status: the status, the 15 busiest destinations, the 20 latest bounces and the
// last minute of samples.
nlohmann::json dashboard_json(const std::vector<ShardAnswer>& answers, const Sampler& sampler,
                              const SpoolFacts& spool);
// salvoctl trace: what the spools said of the message (answers to request::Trace) and its
// lines in the accounting log (current file and rotated ones, at most 1000).
nlohmann::json trace_json(std::uint64_t id, const std::vector<ShardAnswer>& answers,
                          const std::string& log_dir);
// An operator verb (pause, resume, flush, bounce; bounce with "id" names one message) as
// the request every shard gets, or the one-line error salvoctl shows.
std::expected<ShardRequest, std::string> parse_verb(const nlohmann::json& request);

// Every series of a snapshot: {"name": v} or {"name{labels}": v}; histograms as
// {"count", "mean_seconds", "p99_seconds"}.
nlohmann::json metrics_json(const metrics::Snapshot& s);

}  // namespace salvo::admin
