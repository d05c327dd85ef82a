// SPDX-License-Identifier: Apache-2.0
// BackgroundRecovery: the start-up scan on its own thread (see background_recovery.h).
#include "admin/background_recovery.h"

#include <algorithm>

namespace salvo::admin {

BackgroundRecovery::BackgroundRecovery(shard::Shard& shard, std::function<void(Done&&)> on_done)
    : shard_(shard), on_done_(std::move(on_done)) {}

BackgroundRecovery::~BackgroundRecovery() { stop(); }

void BackgroundRecovery::start(spool::SpoolListing listing, Duration test_delay) {
  listing_ = std::move(listing);
  progress_.test_delay_per_segment = test_delay;
  wake_ = shard_.engine().any_thread_wake_target();
  started_ = shard_.clock().now();
  running_ = true;
  polling_ = true;
  shard_.add_poller(this);
  thread_ = std::thread([this] { run(); });
}

void BackgroundRecovery::run() noexcept {
  Done d{spool::recover_segments(listing_, &progress_), {}, {}};
  if (d.recovered) d.plan = outbound::plan_recovery(*d.recovered, listing_.dir, &progress_.cancel);
  done_ = std::move(d);
  finished_.store(true, std::memory_order_release);
  io::wake_from_any_thread(wake_);
}

bool BackgroundRecovery::poll() noexcept {
  if (!finished_.load(std::memory_order_acquire)) return false;
  thread_.join();
  shard_.remove_poller(this);
  polling_ = false;
  running_ = false;
  took_ = shard_.clock().now() - started_;
  Done d = std::move(*done_);
  done_.reset();
  d.took = took_;
  on_done_(std::move(d));
  return true;
}

void BackgroundRecovery::stop() noexcept {
  progress_.cancel.store(true, std::memory_order_relaxed);
  if (thread_.joinable()) thread_.join();
  if (polling_) {
    shard_.remove_poller(this);
    polling_ = false;
  }
  running_ = false;
  done_.reset();
}

namespace {

constexpr metrics::Family kRunning{
    "salvo_spool_recovery_running", metrics::Type::Gauge,
    "1 while the start-up recovery still scans old spool segments in the background (new "
    "mail is taken meanwhile; their mail is routed when the scan ends)."};
constexpr metrics::Family kSegmentsLeft{"salvo_spool_recovery_segments_left",
                                        metrics::Type::Gauge,
                                        "Spool segments the background recovery has yet to scan."};
constexpr metrics::Family kBytesLeft{"salvo_spool_recovery_bytes_left", metrics::Type::Gauge,
                                     "Bytes of those segments."};
constexpr metrics::Family kMessages{
    "salvo_spool_recovery_messages", metrics::Type::Gauge,
    "Messages and jobs the start-up recovery found in the spool (so far, while it runs)."};
constexpr metrics::Family kSeconds{
    "salvo_spool_recovery_seconds", metrics::Type::Gauge,
    "How long the background recovery took (or has run so far), scan and read-back."};

}  // namespace

void BackgroundRecovery::report(metrics::Snapshot& s) const {
  const std::uint64_t segs = progress_.segments_done.load(std::memory_order_relaxed);
  const std::uint64_t bytes = progress_.bytes_done.load(std::memory_order_relaxed);
  const std::uint64_t total_segs = listing_.segments.size();
  s.add(kRunning, {}, std::uint64_t{running_ ? 1u : 0u});
  s.add(kSegmentsLeft, {}, running_ ? total_segs - std::min(segs, total_segs) : 0);
  s.add(kBytesLeft, {}, running_ ? listing_.bytes - std::min(bytes, listing_.bytes) : 0);
  s.add(kMessages, {}, progress_.messages.load(std::memory_order_relaxed));
  const Duration t = running_ ? shard_.clock().now() - started_ : took_;
  s.add(kSeconds, {}, std::chrono::duration<double>(t).count());
}

}  // namespace salvo::admin
