// SPDX-License-Identifier: Apache-2.0
// metrics: snapshots add series of the same family and labels together (listeners of a
// shard, shards of a node), keep histograms apart from their copies, and the registry
// reports exactly the sources alive.
#include <salvo/base/metrics.h>

#include <gtest/gtest.h>

namespace salvo::metrics {
namespace {

constexpr Family kMessages{"test_messages_total", Type::Counter, "Messages."};
constexpr Family kOpen{"test_open", Type::Gauge, "Open things."};
constexpr Family kLatency{"test_latency_seconds", Type::Histogram, "Latency."};

TEST(Snapshot, SeriesWithTheSameLabelsAddUp) {
  Snapshot s;
  s.add(kMessages, "source=\"smtp\"", std::uint64_t{3});
  s.add(kMessages, "source=\"smtp\"", std::uint64_t{4});
  s.add(kMessages, "source=\"http\"", std::uint64_t{5});
  EXPECT_EQ(s.samples().size(), 2u);
  EXPECT_EQ(s.value("test_messages_total", "source=\"smtp\""), 7);
  EXPECT_EQ(s.value("test_messages_total", "source=\"http\""), 5);
  EXPECT_EQ(s.sum("test_messages_total"), 12);
  EXPECT_EQ(s.sum("test_messages_total", "http"), 5);
  EXPECT_EQ(s.value("test_messages_total"), 0) << "no unlabelled series";
  EXPECT_EQ(s.value("absent_total"), 0);
  EXPECT_EQ(s.find("absent_total"), nullptr);
}

TEST(Snapshot, ShardsAddUpSeriesBySeries) {
  Snapshot a, b;
  a.add(kMessages, {}, std::uint64_t{1});
  a.add(kOpen, {}, std::uint64_t{2});
  b.add(kOpen, {}, std::uint64_t{10});
  b.add(kMessages, "x=\"1\"", std::uint64_t{7});
  a += b;
  EXPECT_EQ(a.value("test_messages_total"), 1);
  EXPECT_EQ(a.value("test_messages_total", "x=\"1\""), 7);
  EXPECT_EQ(a.value("test_open"), 12);
  EXPECT_EQ(a.samples().size(), 3u);
  EXPECT_EQ(b.value("test_open"), 10) << "the added snapshot is unchanged";
}

TEST(Snapshot, HistogramsMergeWithoutChangingTheirCopies) {
  LatencyHistogram h1, h2;
  h1.record(1000);
  h2.record(2000);
  h2.record(3000);
  Snapshot a, b;
  a.add(kLatency, {}, h1);
  b.add(kLatency, {}, h2);
  const Snapshot a_before = a;
  a += b;
  ASSERT_NE(a.find("test_latency_seconds"), nullptr);
  EXPECT_EQ(a.find("test_latency_seconds")->histogram->count(), 3u);
  EXPECT_EQ(a_before.find("test_latency_seconds")->histogram->count(), 1u);
  EXPECT_EQ(b.find("test_latency_seconds")->histogram->count(), 2u);
}

TEST(Labels, ValuesAreEscaped) {
  EXPECT_EQ(label("class", "*"), "class=\"*\"");
  EXPECT_EQ(label("class", "a\"b\\c\nd"), "class=\"a\\\"b\\\\c\\nd\"");
}

struct Counting final : Source {
  std::uint64_t n = 0;
  void report(Snapshot& s) const override { s.add(kMessages, {}, n); }
};

TEST(Registry, ReportsTheSourcesAliveAndAddsThemUp) {
  Counting one, two;
  one.n = 2;
  two.n = 5;
  Registry r;
  r.add(&one);
  r.add(&two);
  r.add(&one);  // once only
  EXPECT_EQ(r.size(), 2u);
  EXPECT_EQ(r.snapshot().value("test_messages_total"), 7);
  one.n = 3;  // read at snapshot time
  EXPECT_EQ(r.snapshot().value("test_messages_total"), 8);
  r.remove(&two);
  EXPECT_EQ(r.snapshot().value("test_messages_total"), 3);
}

}  // namespace
}  // namespace salvo::metrics
