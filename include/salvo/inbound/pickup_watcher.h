// SPDX-License-Identifier: Apache-2.0
// PickupWatcher: the pickup directory on one shard. Every shard watches the same
// directory (inotify, plus a periodic rescan as a safety net) and takes only the files whose
// name hashes to it, so no file is claimed twice and no shard talks to another. A file is
// read through the shard's io::Engine, parsed (pickup_format.h), queued whole through the
// shard's SpoolWriter with its identity in the commit record, and unlinked only after the
// commit is durable; a malformed one moves to failed/ with NAME.error beside it.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <salvo/base/clock.h>
#include <salvo/base/metrics.h>
#include <salvo/base/result.h>
#include <salvo/inbound/pickup_format.h>
#include <salvo/shard/shard.h>
#include <salvo/spool/pickup_io.h>
#include <salvo/spool/records.h>

namespace salvo::spool {
class SpoolWriter;
class SpoolIndex;
class SpoolReader;
class Dispatch;
}  // namespace salvo::spool

namespace salvo::accounting {
class Writer;
}

namespace salvo::inbound {

// Node-wide pickup settings, built by the daemon and shared read-only by the shards.
struct PickupShared {
  std::string dir;       // the pickup directory; tmp/ and failed/ are made inside it
  std::string hostname;  // Received: "by"
  std::uint32_t shards = 1;
  PickupLimits limits;
  Duration rescan_interval = std::chrono::seconds(1);
  // A file found by a periodic rescan (not announced by inotify) is taken once its mtime
  // is this old: it may be a file still being written in place rather than renamed in.
  // Files present at start-up are taken at once.
  Duration quiet_period = std::chrono::seconds(1);
  // After a spool error (disk full, fsync failure) a file waits this long before a retry.
  Duration retry_delay = std::chrono::seconds(10);
  std::uint32_t max_files_in_flight = 512;  // per shard; group commit wants many
  std::uint32_t max_jobs_in_flight = 2;     // .json jobs per shard
  // .eml bytes held at once per shard (a file larger than this still goes, alone).
  std::uint64_t max_bytes_in_flight = 256ull << 20;
  std::uint32_t job_batch_recipients = 1000;
};

// The shard that takes the file `name` (FNV-1a of the name).
std::uint32_t pickup_shard(std::string_view name, std::uint32_t shards) noexcept;
// True for names the watcher considers: "*.eml" / "*.json", not hidden.
bool pickup_candidate(std::string_view name) noexcept;
// Reads a file's identity (O_NOFOLLOW): what the commit record stores.
[[nodiscard]] Result<spool::PickupIdentity> pickup_identity(int dir_fd, const std::string& name);

struct PickupStats {
  std::uint64_t files_queued = 0;
  std::uint64_t jobs_queued = 0;         // of which .json
  std::uint64_t messages_queued = 0;     // messages + jobs
  std::uint64_t recipients_queued = 0;
  std::uint64_t bytes_read = 0;
  std::uint64_t files_failed = 0;        // moved to failed/
  std::uint64_t spool_retries = 0;       // left in place after a spool error
  std::uint64_t rescans = 0;
  std::uint64_t inotify_overflows = 0;
  PickupStats& operator+=(const PickupStats& o) noexcept;
};

// Owner: one shard (all methods on its thread). Lifecycle: construct in the shard's init
// after the SpoolWriter, start(), begin_stop() from the stop hook, destroy once drained()
// on the same shard (then let the engine run a few times: cancelled ops free themselves).
// Stop: files being read are given up (a job is abandoned, its file stays in pickup/ and
// is read again after the restart); files whose commit is in flight finish.
class PickupWatcher final : public spool::DirectoryWatch::Listener, public metrics::Source {
 public:
  PickupWatcher(shard::Shard& shard, spool::SpoolWriter& writer, const spool::SpoolIndex& index,
                std::string spool_dir, const PickupShared& shared, accounting::Writer* accounting);
  ~PickupWatcher();
  PickupWatcher(const PickupWatcher&) = delete;
  PickupWatcher& operator=(const PickupWatcher&) = delete;

  // Creates tmp/ and failed/, starts inotify, scans once. Start-up only.
  [[nodiscard]] Status start();
  void begin_stop() noexcept;
  bool drained() const noexcept;
  const PickupStats& stats() const noexcept { return stats_; }
  // received (source="pickup"), files failed.
  void report(metrics::Snapshot& s) const override;
  // Told about every queued message and job batch (delivery); null = nobody. Before start().
  void set_dispatch(spool::Dispatch* d) noexcept { dispatch_ = d; }

 private:
  class Intake;
  friend class Intake;

  void on_name(std::string_view name) noexcept override;
  void on_overflow() noexcept override;
  void on_tick() noexcept override;
  void rescan(bool initial) noexcept;
  void consider(std::string_view name, bool from_rescan) noexcept;
  void pump() noexcept;
  void finished(Intake* intake) noexcept;
  void retry_later(const std::string& name) noexcept;
  void move_to_failed(const std::string& name, const PickupError& error) noexcept;

  shard::Shard& shard_;
  spool::SpoolWriter& writer_;
  const spool::SpoolIndex& index_;
  std::string spool_dir_;
  const PickupShared& shared_;
  accounting::Writer* accounting_;
  spool::Dispatch* dispatch_ = nullptr;
  std::unique_ptr<spool::SpoolReader> reader_;
  std::uint32_t me_ = 0;
  int dir_fd_ = -1;
  int failed_fd_ = -1;
  std::unique_ptr<spool::DirectoryWatch> watch_;
  std::deque<std::string> queue_;
  std::unordered_set<std::string> known_;  // queued or in progress
  std::unordered_map<std::string, TimePoint> retry_at_;
  // Queued but not removable (unlink failed): (dev, inode), never queued again.
  std::unordered_map<std::string, std::pair<std::uint64_t, std::uint64_t>> unremovable_;
  Intake* intakes_ = nullptr;  // intrusive list
  std::uint32_t in_flight_ = 0;
  std::uint32_t jobs_in_flight_ = 0;
  std::uint64_t bytes_in_flight_ = 0;
  bool stopping_ = false;
  PickupStats stats_;
};

}  // namespace salvo::inbound
