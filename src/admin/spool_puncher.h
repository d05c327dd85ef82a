// SPDX-License-Identifier: Apache-2.0
// SpoolPuncher: gives back the disk space of dead records in closed segments while they
// still hold live mail (docs/spool-format.md §7, "Punching dead records"). The shard picks
// the segments worth a look from its index (cheap counts, then one pass for their live
// records) and hands a snapshot of their live offsets to a thread of its own, which reads
// them and punches (spool::punch_segment). The snapshot is a superset of what is live when
// the thread runs: closed segments never gain a record, and mail only becomes final.
//
//   shard thread (every interval)               punch thread
//   pick segments, snapshot live offsets -----> punch_segment() each, disk_use()
//   poll(): done -> counters, what was seen <-- done flag + wake-up
//
// A segment is looked at when first seen closed and again each time its live recipients
// have halved since the last look; it is read only when its live records take at most half
// its size. Owner: one shard (everything but run() on its thread). Lifecycle: start() after
// the writer exists; stop() (or the destructor) cancels between segments and joins.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <salvo/base/clock.h>
#include <salvo/base/metrics.h>
#include <salvo/io/engine.h>
#include <salvo/shard/shard.h>
#include <salvo/spool/punch.h>
#include <salvo/spool/spool_index.h>
#include <salvo/spool/spool_writer.h>

namespace salvo::admin {

class SpoolPuncher final : public shard::Poller, public metrics::Source {
 public:
  struct Options {
    std::string dir;
    Duration interval = std::chrono::seconds(30);  // [node] spool_punch_interval; 0: off
    std::uint64_t segment_size = 64'000'000;       // a segment's usual size
    // Less newly dead than this in a segment: not worth a note (salvod: 1 MiB, or a 16th of
    // a smaller segment).
    std::uint64_t min_new_bytes = 1 << 20;
    std::size_t max_segments_per_round = 16;
  };
  SpoolPuncher(shard::Shard& shard, spool::SpoolWriter& writer, const spool::SpoolIndex& index,
               Options options);
  ~SpoolPuncher();
  SpoolPuncher(const SpoolPuncher&) = delete;
  SpoolPuncher& operator=(const SpoolPuncher&) = delete;

  void start();
  void stop() noexcept;

  bool poll() noexcept override;
  // salvo_spool_punched_bytes_total, salvo_spool_punched_segments_total,
  // salvo_spool_live_bytes, salvo_spool_allocated_bytes.
  void report(metrics::Snapshot& s) const override;

 private:
  struct Seen {
    std::uint64_t live = 0;  // live recipients at the last look
  };
  struct Job {
    spool::SegmentSeq seq;
    std::uint64_t live_recipients = 0;
    std::vector<std::uint64_t> offsets;
  };
  struct Done {
    std::uint64_t freed = 0;
    std::uint64_t segments = 0;
    std::uint64_t failures = 0;
    spool::SpoolDiskUse disk;
  };
  void begin_round();
  // Snapshots the live records of the due segments (seq -> live recipients) into jobs_.
  void pick(const std::map<std::uint64_t, std::uint64_t>& due);
  void run() noexcept;

  shard::Shard& shard_;
  spool::SpoolWriter& writer_;
  const spool::SpoolIndex& index_;
  Options options_;
  std::map<std::uint64_t, Seen> seen_;
  std::vector<Job> jobs_;  // the round in progress (the thread's until finished_)
  std::optional<std::thread> thread_;
  std::atomic<bool> finished_{false};
  std::atomic<bool> cancel_{false};
  Done done_;
  io::WakeTarget wake_{};
  TimePoint next_round_{};
  bool started_ = false;
  // Reported.
  std::uint64_t punched_bytes_ = 0;
  std::uint64_t punched_segments_ = 0;
  std::uint64_t live_bytes_ = 0;  // live records in closed segments, at the last round
  spool::SpoolDiskUse disk_;
};

}  // namespace salvo::admin
