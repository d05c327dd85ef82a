// SPDX-License-Identifier: Apache-2.0
// BackgroundRecovery: the scan of the segments a shard found at start, on a thread of its
// own, while the shard already takes new mail (docs/spool-format.md §7, "Background
// recovery"). The thread runs spool::recover_segments() and outbound::plan_recovery() —
// both read files only and touch no shard state — into a result it hands back whole; the
// shard then merges it into its live index and routes its recipients (ShardRuntime).
//
//   shard thread                         scan thread
//   start(listing) ----------------->    recover_segments(), plan_recovery()
//   poll(): nothing yet                  ...
//   poll(): done -> on_done(result) <--  done flag + wake-up
//
// Owner: one shard (start, poll, stop and the destructor on its thread; the progress
// counters may be read from any thread). Lifecycle: start() once; stop() cancels and joins
// (also done by the destructor): the scan stops before its next segment.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <thread>

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
    outbound::RecoveryPlan plan;
    Duration took{};  // from start() to the end of the scan and the plan
  };
  // on_done runs once on the shard thread, from poll(), unless stop() came first.
  BackgroundRecovery(shard::Shard& shard, std::function<void(Done&&)> on_done);
  ~BackgroundRecovery();
  BackgroundRecovery(const BackgroundRecovery&) = delete;
  BackgroundRecovery& operator=(const BackgroundRecovery&) = delete;

  // Starts the thread (and polls for its end). test_delay: ScanProgress's test seam.
  void start(spool::SpoolListing listing, Duration test_delay);
  // Cancels and joins; on_done is not called any more. Idempotent.
  void stop() noexcept;
  bool running() const noexcept { return running_; }

  bool poll() noexcept override;
  // salvo_spool_recovery_{running,segments_left,bytes_left,messages,seconds}.
  void report(metrics::Snapshot& s) const override;

 private:
  void run() noexcept;

  shard::Shard& shard_;
  std::function<void(Done&&)> on_done_;
  spool::SpoolListing listing_;
  spool::ScanProgress progress_;
  io::WakeTarget wake_{};
  std::thread thread_;
  std::atomic<bool> finished_{false};  // the thread wrote done_
  std::optional<Done> done_;
  TimePoint started_{};
  Duration took_{};
  bool running_ = false;  // started and not yet handed over or stopped
  bool polling_ = false;
};

}  // namespace salvo::admin
