// SPDX-License-Identifier: Apache-2.0
// BackgroundRecovery: the start-up scan on its own thread (see background_recovery.h).
#include "admin/background_recovery.h"

#include <algorithm>

#include <salvo/spool/checkpoint.h>

namespace salvo::admin {

BackgroundRecovery::BackgroundRecovery(shard::Shard& shard, Hooks hooks)
    : shard_(shard), hooks_(std::move(hooks)) {}

BackgroundRecovery::~BackgroundRecovery() { stop(); }

void BackgroundRecovery::begin() noexcept {
  wake_ = shard_.engine().any_thread_wake_target();
  started_ = shard_.clock().now();
  running_ = true;
  polling_ = true;
  shard_.add_poller(this);
}

void BackgroundRecovery::start(spool::SpoolListing listing, Duration test_delay,
                               std::optional<spool::RecoveryResult> taken,
                               std::optional<bool> take_checkpoint) {
  listing_ = std::move(listing);
  taken_ = std::move(taken);
  take_checkpoint_ = take_checkpoint;
  if (taken_) {  // nothing left to scan
    progress_.segments_done = listing_.segments.size();
    progress_.bytes_done = listing_.bytes;
    progress_.messages = taken_->report.messages;
  }
  progress_.test_delay_per_segment = test_delay;
  begin();
  thread_ = std::thread([this] { run(true); });
}

void BackgroundRecovery::start_read_back(outbound::RecoveryPlanner planner) {
  planner_.emplace(std::move(planner));
  to_route_.store(planner_->messages_left(), std::memory_order_relaxed);
  scanned_handed_ = true;  // nothing to hand over but the recipients
  begin();
  thread_ = std::thread([this] { run(false); });
}

void BackgroundRecovery::run(bool scan) noexcept {
  if (scan) {
    spool::CheckpointUse use = spool::CheckpointUse::None;
    if (!taken_ && take_checkpoint_) {
      spool::CheckpointLoad ckpt = spool::take_checkpoint(listing_, *take_checkpoint_);
      use = ckpt.use;
      if (ckpt.use == spool::CheckpointUse::Used) {
        progress_.segments_done = listing_.segments.size();
        progress_.bytes_done = listing_.bytes;
        progress_.messages = ckpt.result->report.messages;
        taken_ = std::move(ckpt.result);
      }
    }
    Done d{taken_ ? Result<spool::RecoveryResult>(std::move(*taken_))
                  : spool::recover_segments(listing_, &progress_),
           {},
           {}};
    taken_.reset();
    if (d.recovered && use != spool::CheckpointUse::None) d.recovered->report.checkpoint = use;
    if (d.recovered) {
      planner_.emplace(*d.recovered, listing_.dir);
      d.jobs = planner_->take_jobs();
      to_route_.store(planner_->messages_left(), std::memory_order_relaxed);
    }
    {
      std::lock_guard lock(mu_);
      done_ = std::move(d);
    }
    io::wake_from_any_thread(wake_);
  }
  if (planner_) read_back();
  {
    std::lock_guard lock(mu_);
    read_back_done_ = true;
    if (planner_) unreadable_ = planner_->unreadable();
  }
  io::wake_from_any_thread(wake_);
}

void BackgroundRecovery::read_back() noexcept {
  for (;;) {
    if (progress_.cancel.load(std::memory_order_relaxed)) return;
    std::vector<outbound::RecoveredRecipient> slice;
    if (!planner_->next(kSliceMessages, slice)) return;
    to_route_.store(planner_->messages_left(), std::memory_order_relaxed);
    {
      std::unique_lock lock(mu_);
      room_.wait(lock, [this] {
        return slices_.size() < 2 || progress_.cancel.load(std::memory_order_relaxed);
      });
      if (progress_.cancel.load(std::memory_order_relaxed)) return;
      slices_.push_back(std::move(slice));
    }
    io::wake_from_any_thread(wake_);
  }
}

bool BackgroundRecovery::poll() noexcept {
  if (!running_) return false;
  std::optional<Done> done;
  std::optional<std::vector<outbound::RecoveredRecipient>> slice;
  bool finished = false;
  {
    std::lock_guard lock(mu_);
    if (!scanned_handed_) {
      if (!done_) return false;
      done = std::move(done_);
      done_.reset();
      scanned_handed_ = true;
    } else if (!slices_.empty()) {
      slice = std::move(slices_.front());
      slices_.pop_front();
    } else {
      finished = read_back_done_;
    }
  }
  if (done) {
    done->took = shard_.clock().now() - started_;
    hooks_.on_scanned(std::move(*done));
    return true;
  }
  if (slice) {
    room_.notify_one();
    hooks_.on_recipients(std::move(*slice));
    return true;
  }
  if (finished) finish();
  return finished;
}

bool BackgroundRecovery::prepare_to_sleep() noexcept {
  if (!running_) return true;
  std::lock_guard lock(mu_);
  return scanned_handed_ ? slices_.empty() && !read_back_done_ : !done_.has_value();
}

void BackgroundRecovery::finish() noexcept {
  thread_.join();
  shard_.remove_poller(this);
  polling_ = false;
  running_ = false;
  took_ = shard_.clock().now() - started_;
  to_route_.store(0, std::memory_order_relaxed);
  hooks_.on_finished(unreadable_);
}

void BackgroundRecovery::stop() noexcept {
  progress_.cancel.store(true, std::memory_order_relaxed);
  room_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (polling_) {
    shard_.remove_poller(this);
    polling_ = false;
  }
  running_ = false;
  std::lock_guard lock(mu_);
  done_.reset();
  slices_.clear();
}

namespace {

constexpr metrics::Family kRunning{
    "salvo_spool_recovery_running", metrics::Type::Gauge,
    "1 while the start-up recovery still scans old spool segments or routes what they owe, "
    "in the background (new mail is taken meanwhile; old mail is routed after the scan, a "
    "slice at a time)."};
constexpr metrics::Family kSegmentsLeft{"salvo_spool_recovery_segments_left",
                                        metrics::Type::Gauge,
                                        "Spool segments the background recovery has yet to scan."};
constexpr metrics::Family kBytesLeft{"salvo_spool_recovery_bytes_left", metrics::Type::Gauge,
                                     "Bytes of those segments."};
constexpr metrics::Family kMessages{
    "salvo_spool_recovery_messages", metrics::Type::Gauge,
    "Messages and jobs the start-up recovery found in the spool (so far, while it runs)."};
constexpr metrics::Family kToRoute{
    "salvo_spool_recovery_messages_to_route", metrics::Type::Gauge,
    "Recovered messages whose records are still to be read back and their recipients "
    "routed (a slice at a time, after the scan)."};
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
  s.add(kToRoute, {}, to_route_.load(std::memory_order_relaxed));
  const Duration t = running_ ? shard_.clock().now() - started_ : took_;
  s.add(kSeconds, {}, std::chrono::duration<double>(t).count());
}

}  // namespace salvo::admin
