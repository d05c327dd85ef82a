// SPDX-License-Identifier: Apache-2.0
// LatencyHistogram: values below kSub map 1:1; above, the top kSubBits bits after the
// leading one pick a linear sub-bucket inside the value's power-of-two range.
#include <salvo/base/histogram.h>

#include <algorithm>
#include <bit>
#include <cmath>

namespace salvo {

unsigned LatencyHistogram::bucket_of(std::uint64_t v) noexcept {
  if (v < kSub) return static_cast<unsigned>(v);
  unsigned msb = 63u - static_cast<unsigned>(std::countl_zero(v));  // >= kSubBits
  unsigned shift = msb - kSubBits;
  unsigned sub = static_cast<unsigned>((v >> shift) & (kSub - 1));
  return (shift + 1) * kSub + sub;
}

std::uint64_t LatencyHistogram::upper_bound(unsigned bucket) noexcept {
  if (bucket < kSub) return bucket;
  unsigned shift = bucket / kSub - 1;
  std::uint64_t sub = bucket % kSub;
  std::uint64_t base = (std::uint64_t{kSub} | sub) << shift;
  return base + ((std::uint64_t{1} << shift) - 1);
}

void LatencyHistogram::record(std::uint64_t value) noexcept {
  ++counts_[bucket_of(value)];
  ++count_;
  sum_ += value;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void LatencyHistogram::merge(const LatencyHistogram& o) noexcept {
  for (unsigned i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
  count_ += o.count_;
  sum_ += o.sum_;
  min_ = std::min(min_, o.min_);
  max_ = std::max(max_, o.max_);
}

std::uint64_t LatencyHistogram::quantile(double q) const noexcept {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::max<std::uint64_t>(rank, 1);
  std::uint64_t seen = 0;
  for (unsigned i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(upper_bound(i), max_);
  }
  return max_;
}

}  // namespace salvo
