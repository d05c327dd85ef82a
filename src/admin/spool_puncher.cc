// SPDX-License-Identifier: Apache-2.0
// SpoolPuncher: punching dead records out of closed segments (see spool_puncher.h).
#include "admin/spool_puncher.h"

#include <salvo/base/log.h>

namespace salvo::admin {

SpoolPuncher::SpoolPuncher(shard::Shard& shard, spool::SpoolWriter& writer,
                           const spool::SpoolIndex& index, Options options)
    : shard_(shard), writer_(writer), index_(index), options_(std::move(options)) {}

SpoolPuncher::~SpoolPuncher() { stop(); }

void SpoolPuncher::start() {
  if (options_.interval == Duration::zero() || started_) return;
  started_ = true;
  wake_ = shard_.engine().any_thread_wake_target();
  next_round_ = shard_.clock().now() + options_.interval;
  shard_.add_poller(this);
}

void SpoolPuncher::stop() noexcept {
  cancel_.store(true, std::memory_order_relaxed);
  if (thread_) {
    thread_->join();
    thread_.reset();
  }
  if (started_) {
    shard_.remove_poller(this);
    started_ = false;
  }
}

bool SpoolPuncher::poll() noexcept {
  if (thread_) {
    if (!finished_.load(std::memory_order_acquire)) return false;
    thread_->join();
    thread_.reset();
    punched_bytes_ += done_.freed;
    punched_segments_ += done_.segments;
    disk_ = done_.disk;
    if (done_.segments != 0) {
      log::info(
          "spool {}: punched dead records out of {} segment(s): {} bytes freed; "
          "segments now take {} of {} bytes",
          options_.dir, done_.segments, done_.freed, disk_.allocated_bytes, disk_.file_bytes);
    }
    for (const Job& j : jobs_) seen_[j.seq.value()].live = j.live_recipients;
    jobs_.clear();
    return true;
  }
  // A clock read per loop turn; the round itself once per interval.
  if (shard_.clock().now() < next_round_) return false;
  next_round_ = shard_.clock().now() + options_.interval;
  begin_round();
  return true;
}

void SpoolPuncher::begin_round() {
  // A background recovery has not yet told the index about the old segments.
  if (writer_.reclaim_held()) return;
  const auto candidates = index_.punch_candidates(writer_.first_open_segment());
  std::map<std::uint64_t, Seen> seen;
  std::map<std::uint64_t, std::uint64_t> due;  // seq -> live recipients now
  for (const auto& [seq, live] : candidates) {
    auto it = seen_.find(seq.value());
    if (it != seen_.end()) seen.emplace(*it);
    // First seen closed, or its live recipients halved since the last look.
    const bool look = it == seen_.end() || (live < it->second.live && 2 * live <= it->second.live);
    if (look && due.size() < options_.max_segments_per_round) due.emplace(seq.value(), live);
  }
  seen_ = std::move(seen);  // forgets reclaimed segments
  if (!due.empty()) pick(due);
  // Also without segments to punch: the thread measures the disk use
  // (salvo_spool_allocated_bytes) on its way.
  done_ = {};
  finished_.store(false, std::memory_order_relaxed);
  thread_.emplace([this] { run(); });
}

void SpoolPuncher::pick(const std::map<std::uint64_t, std::uint64_t>& due) {
  std::map<std::uint64_t, spool::SpoolIndex::LiveRecords> live;
  for (const auto& [seq, n] : due) live[seq];
  index_.live_records(live);
  live_bytes_ = 0;
  for (const auto& [seq, n] : due) {
    spool::SpoolIndex::LiveRecords& lr = live[seq];
    live_bytes_ += lr.bytes;
    // Mostly live: nothing much to give back. Looked at all the same (until it halves).
    if (2 * lr.bytes > options_.segment_size) {
      seen_[seq].live = n;
      continue;
    }
    jobs_.push_back({spool::SegmentSeq(seq), n, std::move(lr.offsets)});
  }
}

void SpoolPuncher::run() noexcept {
  for (const Job& j : jobs_) {
    if (cancel_.load(std::memory_order_relaxed)) break;
    auto r = spool::punch_segment(options_.dir, j.seq, j.offsets, options_.min_new_bytes);
    if (!r) {
      ++done_.failures;
      log::warn("spool {}: punching segment {} failed: {}", options_.dir, j.seq.value(),
                r.error().message());
      continue;
    }
    if (r->punched) {
      ++done_.segments;
      done_.freed += r->freed_bytes;
    }
  }
  done_.disk = spool::disk_use(options_.dir);
  finished_.store(true, std::memory_order_release);
  io::wake_from_any_thread(wake_);
}

namespace {

constexpr metrics::Family kPunchedBytes{
    "salvo_spool_punched_bytes_total", metrics::Type::Counter,
    "Disk space given back by punching dead records out of closed spool segments that still "
    "hold live mail (allocated bytes before minus after)."};
constexpr metrics::Family kPunchedSegments{"salvo_spool_punched_segments_total",
                                           metrics::Type::Counter,
                                           "Punches of closed spool segments."};
constexpr metrics::Family kLiveBytes{
    "salvo_spool_live_bytes", metrics::Type::Gauge,
    "Bytes of live records (messages, job records) in the closed segments looked at by the "
    "last punch round."};
constexpr metrics::Family kAllocated{
    "salvo_spool_allocated_bytes", metrics::Type::Gauge,
    "Disk space the spool segments take (st_blocks), as of the last punch round."};

}  // namespace

void SpoolPuncher::report(metrics::Snapshot& s) const {
  s.add(kPunchedBytes, {}, punched_bytes_);
  s.add(kPunchedSegments, {}, punched_segments_);
  s.add(kLiveBytes, {}, live_bytes_);
  s.add(kAllocated, {}, disk_.allocated_bytes);
}

}  // namespace salvo::admin
