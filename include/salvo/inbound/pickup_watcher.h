// SPDX-License-Identifier: Apache-2.0
// PickupWatcher: the pickup directory on one shard. Every shard watches the same
// directory (inotify, plus a periodic rescan as a safety net) and takes only the files whose
// name hashes to it, so no shard talks to another. A file is claimed first: renamed into
// the shard's own .work/shard-N/ under a name no other file ever had. It is then read
// through the shard's io::Engine, parsed (pickup_format.h), queued whole through the shard's
// SpoolWriter with its claim in the commit record, and unlinked only after the commit is
// durable; a malformed one moves to failed/ with NAME.error beside it
// (docs/spool-format.md §8).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

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
// Where shard N keeps the files it claimed: DIR/.work/shard-N.
std::string pickup_work_dir(const std::string& dir, std::uint32_t shard);
// The claim of the file `name` under the id `id`: 16 hex digits, '-', the name (its last
// 238 bytes when longer, so that a claim fits in a file name).
std::string pickup_claim(spool::MessageId id, std::string_view name);
// The file name inside a claim; nullopt for a name that is not a claim.
std::optional<std::string_view> pickup_claimed_name(std::string_view claim) noexcept;

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
// Stop: files being read are given up (a job is abandoned; the file stays claimed and is
// taken again after the restart); files whose commit is in flight finish. The shard's work
// directory has no other writer: one salvod per pickup directory.
class PickupWatcher final : public spool::DirectoryWatch::Listener,
                            public spool::DirectorySync::Listener,
                            public metrics::Source {
 public:
  PickupWatcher(shard::Shard& shard, spool::SpoolWriter& writer, const spool::SpoolIndex& index,
                std::string spool_dir, const PickupShared& shared, accounting::Writer* accounting);
  ~PickupWatcher();
  PickupWatcher(const PickupWatcher&) = delete;
  PickupWatcher& operator=(const PickupWatcher&) = delete;

  // Creates tmp/, failed/ and the work directory; settles the files this shard claimed
  // before a restart: those whose claim is in queued_claims (the shard's
  // RecoveryResult::pickup_claims, sorted) were queued and are removed, the others are
  // taken again. Then starts inotify and scans once. Start-up only. Diagnostics: a
  // directory cannot be made, opened or written, or a queued claim cannot be removed
  // (logged with its name): salvod must not start and queue it again later.
  [[nodiscard]] Status start(std::vector<std::string> queued_claims);
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

  // A file to take: its name in pickup/, and its claim once renamed into the work
  // directory (empty before).
  struct Work {
    std::string name;
    std::string claim;
  };

  void on_name(std::string_view name) noexcept override;
  void on_overflow() noexcept override;
  void on_tick() noexcept override;
  void on_synced(std::uint64_t upto, Status status) noexcept override;
  [[nodiscard]] Status settle(const std::vector<std::string>& queued_claims);
  void rescan(bool initial) noexcept;
  void consider(std::string_view name, bool from_rescan) noexcept;
  void pump() noexcept;
  [[nodiscard]] bool claim(int from_fd, const std::string& from, Work& work) noexcept;
  void finished(Intake* intake) noexcept;
  void retry_later(Work work) noexcept;
  void move_to_failed(const Work& work, const PickupError& error) noexcept;

  shard::Shard& shard_;
  spool::SpoolWriter& writer_;
  const spool::SpoolIndex& index_;
  std::string spool_dir_;
  const PickupShared& shared_;
  accounting::Writer* accounting_;
  spool::Dispatch* dispatch_ = nullptr;
  std::unique_ptr<spool::SpoolReader> reader_;
  std::uint32_t me_ = 0;
  std::string work_dir_;  // for log lines
  int dir_fd_ = -1;
  int failed_fd_ = -1;
  int work_fd_ = -1;
  std::unique_ptr<spool::DirectoryWatch> watch_;
  std::unique_ptr<spool::DirectorySync> claims_;  // the work directory's fsync
  std::deque<Work> queue_;
  std::unordered_set<std::string> known_;  // names waiting in queue_ or retries_, unclaimed
  std::deque<std::pair<TimePoint, Work>> retries_;  // due time order (one retry_delay)
  Intake* intakes_ = nullptr;  // intrusive list
  std::uint32_t in_flight_ = 0;
  std::uint32_t jobs_in_flight_ = 0;
  std::uint64_t bytes_in_flight_ = 0;
  bool stopping_ = false;
  PickupStats stats_;
};

}  // namespace salvo::inbound
