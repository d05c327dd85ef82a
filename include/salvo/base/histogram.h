// SPDX-License-Identifier: Apache-2.0
// LatencyHistogram: log-linear buckets (HdrHistogram-style, ~3% relative error) over
// nanosecond values, constant memory, O(1) record, mergeable across shards. Used for
// benchmark latency percentiles and the spool fsync latency histogram.
#pragma once

#include <array>
#include <cstdint>

namespace salvo {

class LatencyHistogram {
 public:
  // 64 power-of-two ranges x 32 linear sub-buckets.
  static constexpr unsigned kSubBits = 5;
  static constexpr unsigned kSub = 1u << kSubBits;
  static constexpr unsigned kBuckets = 64 * kSub;

  void record(std::uint64_t value) noexcept;
  void merge(const LatencyHistogram& other) noexcept;
  std::uint64_t count() const noexcept { return count_; }
  std::uint64_t min() const noexcept { return count_ ? min_ : 0; }
  std::uint64_t max() const noexcept { return max_; }
  double mean() const noexcept { return count_ ? static_cast<double>(sum_) / count_ : 0.0; }
  // Value at quantile q in [0, 1] (upper edge of the bucket holding it, clamped to max).
  std::uint64_t quantile(double q) const noexcept;

  // Bucket index and its upper bound: exposed for Prometheus-style export and tests.
  static unsigned bucket_of(std::uint64_t value) noexcept;
  static std::uint64_t upper_bound(unsigned bucket) noexcept;
  std::uint64_t bucket_count(unsigned bucket) const noexcept { return counts_[bucket]; }

 private:
  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
};

}  // namespace salvo
