// SPDX-License-Identifier: Apache-2.0
#include <salvo/base/histogram.h>

#include <gtest/gtest.h>

namespace salvo {
namespace {

TEST(LatencyHistogram, SmallValuesAreExact) {
  LatencyHistogram h;
  for (std::uint64_t v = 0; v < 32; ++v) h.record(v);
  EXPECT_EQ(h.count(), 32u);
  EXPECT_EQ(h.quantile(0.5), 15u);
  EXPECT_EQ(h.quantile(1.0), 31u);
  EXPECT_EQ(h.min(), 0u);
}

TEST(LatencyHistogram, RelativeErrorBounded) {
  for (std::uint64_t v : {33ull, 1000ull, 123456ull, 987654321ull, 1ull << 50}) {
    unsigned b = LatencyHistogram::bucket_of(v);
    std::uint64_t ub = LatencyHistogram::upper_bound(b);
    EXPECT_GE(ub, v);
    EXPECT_LE(static_cast<double>(ub - v) / static_cast<double>(v), 1.0 / 32 + 1e-9) << v;
    if (b > 0) {
      EXPECT_LT(LatencyHistogram::upper_bound(b - 1), v) << v;
    }
  }
}

TEST(LatencyHistogram, PercentilesOfUniformRange) {
  LatencyHistogram h;
  for (std::uint64_t v = 1; v <= 100000; ++v) h.record(v * 1000);  // 1us..100ms in ns
  auto p50 = static_cast<double>(h.quantile(0.50));
  auto p99 = static_cast<double>(h.quantile(0.99));
  EXPECT_NEAR(p50, 50e6, 50e6 * 0.035);
  EXPECT_NEAR(p99, 99e6, 99e6 * 0.035);
  EXPECT_EQ(h.quantile(1.0), 100000u * 1000u);
}

TEST(LatencyHistogram, MergeAddsCounts) {
  LatencyHistogram a, b;
  a.record(10);
  b.record(1000);
  b.record(5);
  a.merge(b);
  EXPECT_EQ(a.count(), 3u);
  EXPECT_EQ(a.min(), 5u);
  EXPECT_EQ(a.max(), 1000u);
}

}  // namespace
}  // namespace salvo
