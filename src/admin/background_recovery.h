// SPDX-License-Identifier: Apache-2.0
// BackgroundRecovery: the start-up scan and the read-back of what it found, on a thread of
// its own, while the shard already takes new mail (docs/spool-format.md §7, "Background
// recovery"). The thread runs spool::recover_segments() — which reads files only — and
// hands the result over whole; the shard merges it into its live index. Then the thread
// reads the owed messages' records back (outbound::RecoveryPlanner) and hands their
// recipients over a slice per loop turn, at most two slices ahead, so a restart over ten
// million messages never holds a list of them; the shard routes each slice
// (ShardRuntime). A scan-first start, which scanned on the shard thread, uses the read-back
// half alone (start_read_back).
//
//   shard thread                         thread
//   start(listing) ----------------->    recover_segments(), RecoveryPlanner
//   poll(): on_scanned(result)     <--   done + wake-up
//   poll(): on_recipients(slice)   <--   planner.next() ... (waits while two are unread)
//   poll(): on_finished(unreadable) <--  all read
//
// Owner: one shard (start, poll, stop and the destructor on its thread; the progress
// counters may be read from any thread). Lifecycle: start() or start_read_back() once;
// stop() cancels and joins (also done by the destructor): the scan stops before its next
// segment, the read-back before its next slice.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <salvo/base/clock.h>
#include <salvo/base/metrics.h>
#include <salvo/base/result.h>
#include <salvo/io/engine.h>
#include <salvo/outbound/outbound.h>
#include <salvo/shard/shard.h>
#include <salvo/spool/recovery.h>

namespace salvo::admin {

class BackgroundRecovery final : public shard::Poller, public metrics::Source {
 public:
  struct Done {
    Result<spool::RecoveryResult> recovered;
    std::vector<outbound::RecoveredJob> jobs;  // owed jobs (not expanded)
    Duration took{};  // from start() to the end of the scan
  };
  // Each runs on the shard thread, from poll(), never after stop(). on_scanned once (not
  // for start_read_back), before any on_recipients; on_finished once, last.
  struct Hooks {
    std::function<void(Done&&)> on_scanned;
    std::function<void(std::vector<outbound::RecoveredRecipient>&&)> on_recipients;
    std::function<void(std::uint64_t unreadable)> on_finished;
  };
  BackgroundRecovery(shard::Shard& shard, Hooks hooks);
  ~BackgroundRecovery();
  BackgroundRecovery(const BackgroundRecovery&) = delete;
  BackgroundRecovery& operator=(const BackgroundRecovery&) = delete;

  // Scans, then reads back. test_delay: ScanProgress's test seam. taken: the index a
  // clean stop's checkpoint gave (spool/checkpoint.h): handed over as if scanned, without
  // reading a segment. take_checkpoint: the thread first takes the checkpoint itself
  // (spool::take_checkpoint against `listing`, true: to use it, false: only to remove it),
  // so loading a big one never delays the listeners; nothing the shard writes meanwhile
  // touches the listed segments or the mark the listing read.
  void start(spool::SpoolListing listing, Duration test_delay,
             std::optional<spool::RecoveryResult> taken = std::nullopt,
             std::optional<bool> take_checkpoint = std::nullopt);
  // Reads back only: the caller scanned (and took the planner's jobs).
  void start_read_back(outbound::RecoveryPlanner planner);
  // Cancels and joins; no hook is called any more. Idempotent.
  void stop() noexcept;
  // From start until on_finished (or stop).
  bool running() const noexcept { return running_; }

  bool poll() noexcept override;
  bool prepare_to_sleep() noexcept override;
  // salvo_spool_recovery_{running,segments_left,bytes_left,messages,messages_to_route,
  // seconds}.
  void report(metrics::Snapshot& s) const override;

  // Messages per slice handed over.
  static constexpr std::size_t kSliceMessages = 4096;

 private:
  void begin() noexcept;
  void run(bool scan) noexcept;
  void read_back() noexcept;
  void finish() noexcept;

  shard::Shard& shard_;
  Hooks hooks_;
  spool::SpoolListing listing_;
  std::optional<spool::RecoveryResult> taken_;
  std::optional<bool> take_checkpoint_;
  spool::ScanProgress progress_;
  std::optional<outbound::RecoveryPlanner> planner_;  // the thread's, once made
  io::WakeTarget wake_{};
  std::thread thread_;
  std::atomic<std::uint64_t> to_route_{0};  // messages not yet read back

  // Shared with the thread, under mu_.
  std::mutex mu_;
  std::condition_variable room_;  // the thread waits for a slice to be taken
  std::optional<Done> done_;      // the scan's result, until handed over
  std::deque<std::vector<outbound::RecoveredRecipient>> slices_;
  bool read_back_done_ = false;
  std::uint64_t unreadable_ = 0;

  bool scanned_handed_ = false;
  TimePoint started_{};
  Duration took_{};
  bool running_ = false;  // started and not yet finished or stopped
  bool polling_ = false;
};

}  // namespace salvo::admin
