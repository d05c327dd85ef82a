// SPDX-License-Identifier: Apache-2.0
// Per-shard spool counters: written by the owning shard only, summed with
// operator+=. The group-commit factor is messages / commits.
#pragma once

#include <cstdint>

#include <salvo/base/histogram.h>

namespace salvo::spool {

struct Stats {
  std::uint64_t commits = 0;         // successful write+fdatasync batches
  std::uint64_t records = 0;         // records committed
  std::uint64_t messages = 0;        // Message + JobCommit records committed
  std::uint64_t bytes = 0;           // bytes committed
  std::uint64_t failed_batches = 0;  // batches whose write or fdatasync failed
  std::uint64_t fsync_failures = 0;
  std::uint64_t write_failures = 0;
  std::uint64_t no_space = 0;      // ENOSPC from write or segment creation
  std::uint64_t short_writes = 0;  // short writes continued
  std::uint64_t id_mark_failures = 0;  // the next-id high-water mark could not be written
  std::uint64_t segments_created = 0;
  std::uint64_t segments_ahead = 0;    // of those, made before they were needed
  std::uint64_t spare_failures = 0;    // a segment made ahead failed (made at roll-over then)
  std::uint64_t segments_retired = 0;  // after an IO error (fsyncgate: never reused)
  std::uint64_t segments_deleted = 0;  // reclaimed
  std::uint64_t segments_quarantined = 0;  // reclaimable but damaged: renamed *.damaged
  LatencyHistogram fsync_latency_ns;
  LatencyHistogram messages_per_commit;  // value = messages in the batch

  Stats& operator+=(const Stats& o) noexcept {
    commits += o.commits;
    records += o.records;
    messages += o.messages;
    bytes += o.bytes;
    failed_batches += o.failed_batches;
    fsync_failures += o.fsync_failures;
    write_failures += o.write_failures;
    no_space += o.no_space;
    short_writes += o.short_writes;
    id_mark_failures += o.id_mark_failures;
    segments_created += o.segments_created;
    segments_ahead += o.segments_ahead;
    spare_failures += o.spare_failures;
    segments_retired += o.segments_retired;
    segments_deleted += o.segments_deleted;
    segments_quarantined += o.segments_quarantined;
    fsync_latency_ns.merge(o.fsync_latency_ns);
    messages_per_commit.merge(o.messages_per_commit);
    return *this;
  }
};

}  // namespace salvo::spool
