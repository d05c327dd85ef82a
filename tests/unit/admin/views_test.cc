// SPDX-License-Identifier: Apache-2.0
// The control thread's views from hand-made shard answers: status totals and rows, the
// rates and utilisation of the sampler, domains sorting, the dashboard's choices, verbs as
// requests, trace over a real accounting log directory, and /metrics text.
#include "admin/views.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "admin/metrics.h"
#include "admin/sampler.h"

namespace salvo::admin {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// The families the views read, by name (the modules declare the real ones).
constexpr metrics::Family kReceived{"salvo_received_recipients_total", metrics::Type::Counter, "r"};
constexpr metrics::Family kOutcomes{"salvo_delivery_outcomes_total", metrics::Type::Counter, "o"};
constexpr metrics::Family kQueue{"salvo_queue_recipients", metrics::Type::Gauge, "q"};
constexpr metrics::Family kSpoolRcpts{"salvo_spool_recipients", metrics::Type::Gauge, "s"};
constexpr metrics::Family kConns{"salvo_connections", metrics::Type::Gauge, "c"};
constexpr metrics::Family kFsync{"salvo_spool_fsync_seconds", metrics::Type::Histogram, "f"};

struct Counts {
  std::uint64_t received = 0, delivered = 0, bounced = 0, ready = 0, in_flight = 0,
                spool = 0, conns_in = 0, conns_out = 0, blocked_ns = 0;
};

ShardAnswer answer(const Counts& c, bool answered = true) {
  ShardAnswer a;
  a.answered = answered;
  a.blocked_ns = c.blocked_ns;
  a.metrics.add(kReceived, "source=\"smtp\"", c.received);
  a.metrics.add(kOutcomes, "outcome=\"delivered\",class=\"*\"", c.delivered);
  a.metrics.add(kOutcomes, "outcome=\"bounced\",class=\"*\"", c.bounced);
  a.metrics.add(kQueue, "state=\"ready\"", c.ready);
  a.metrics.add(kQueue, "state=\"in_flight\"", c.in_flight);
  a.metrics.add(kSpoolRcpts, {}, c.spool);
  a.metrics.add(kConns, "direction=\"in\",protocol=\"smtp\"", c.conns_in);
  a.metrics.add(kConns, "direction=\"out\",protocol=\"smtp\"", c.conns_out);
  return a;
}

outbound::DestinationInfo dest(std::string name, std::uint64_t ready, std::uint64_t per_min) {
  outbound::DestinationInfo d;
  d.name = std::move(name);
  d.ready = ready;
  d.delivered_last_60s = per_min;
  return d;
}

TEST(Status, AddsTheShardsUpAndKeepsARowForEach) {
  std::vector<ShardAnswer> answers = {
      answer({.received = 10, .delivered = 7, .bounced = 1, .ready = 2, .spool = 3,
              .conns_in = 1, .conns_out = 4}),
      answer({.received = 5, .delivered = 5, .in_flight = 1, .conns_out = 2})};
  Sampler sampler;
  SpoolFacts spool{"/var/spool/salvo", 4096, 1 << 20, 2048};
  const json j = status_json(answers, sampler, spool);
  EXPECT_EQ(j["shards"], 2);
  EXPECT_EQ(j["in"]["recipients"], 15);
  EXPECT_EQ(j["out"]["delivered"], 12);
  EXPECT_EQ(j["out"]["bounced"], 1);
  EXPECT_EQ(j["queue"]["ready"], 2);
  EXPECT_EQ(j["queue"]["in_flight"], 1);
  EXPECT_EQ(j["queue"]["recipients"], 3);
  EXPECT_EQ(j["connections"]["in"], 1);
  EXPECT_EQ(j["connections"]["out"], 6);
  EXPECT_EQ(j["spool"]["free_bytes"], 1 << 20);
  EXPECT_EQ(j["spool"]["allocated_bytes"], 2048);
  ASSERT_EQ(j["per_shard"].size(), 2u);
  EXPECT_EQ(j["per_shard"][1]["delivered"], 5);
  EXPECT_EQ(j["per_shard"][0]["connections_out"], 4);
  EXPECT_FALSE(j["per_shard"][0].contains("utilisation")) << "unknown before two samples";
  // Every counter reaches salvoctl without being named here.
  EXPECT_EQ(j["metrics"]["salvo_received_recipients_total{source=\"smtp\"}"], 15);
}

TEST(Sampler, RatesFromTheLastSecondAndTheLastMinute) {
  Sampler s;
  for (int i = 0; i <= 60; ++i) {
    const auto n = static_cast<std::uint64_t>(i) * 100;
    s.add({answer({.received = n, .delivered = n / 2})}, i, 1'700'000'000.0 + i);
  }
  auto r = s.rates();
  EXPECT_DOUBLE_EQ(r.in_1s, 100);
  EXPECT_DOUBLE_EQ(r.out_1s, 50);
  EXPECT_DOUBLE_EQ(r.in_1m, 100);
  // A faster last second shows in the 1 s rate first.
  s.add({answer({.received = 6000 + 1000, .delivered = 3000})}, 61, 1'700'000'061.0);
  r = s.rates();
  EXPECT_DOUBLE_EQ(r.in_1s, 1000);
  EXPECT_NEAR(r.in_1m, (7000.0 - 100) / 60, 1e-9);
  EXPECT_EQ(s.size(), Sampler::kKept);
  EXPECT_EQ(s.history().size(), Sampler::kKept - 1);
  EXPECT_DOUBLE_EQ(s.history().back().in, 1000);
}

TEST(Sampler, ASampleWithASilentShardIsNotKept) {
  Sampler s;
  s.add({answer({.received = 100}), answer({.received = 100})}, 0, 0);
  s.add({answer({.received = 200}), answer({}, false)}, 1, 1);
  EXPECT_EQ(s.size(), 1u);
  EXPECT_DOUBLE_EQ(s.rates().in_1s, 0) << "no rate from one sample";
}

TEST(Sampler, UtilisationIsTheShareOfTheIntervalNotBlocked) {
  Sampler s;
  s.add({answer({.blocked_ns = 0}), answer({.blocked_ns = 0})}, 10, 0);
  EXPECT_EQ(s.utilisation(2), (std::vector<double>{-1, -1}));
  s.add({answer({.blocked_ns = 250'000'000}), answer({.blocked_ns = 2'000'000'000})}, 11, 1);
  const auto u = s.utilisation(2);
  EXPECT_DOUBLE_EQ(u[0], 0.75);
  EXPECT_DOUBLE_EQ(u[1], 0.0) << "clamped: blocked longer than the interval";
  const json j = status_json({answer({}), answer({})}, s, {});
  EXPECT_DOUBLE_EQ(j["per_shard"][0]["utilisation"].get<double>(), 0.75);
}

TEST(Domains, SortedByTheKeyAskedAndCut) {
  ShardAnswer a = answer({}), b = answer({});
  a.outbound.destinations = {dest("b.test", 5, 0), dest("a.test", 1, 0)};
  b.outbound.destinations = {dest("c.test", 9, 0)};
  json j = domains_json({a, b}, "queued", 0);
  ASSERT_EQ(j["domains"].size(), 3u);
  EXPECT_EQ(j["domains"][0]["domain"], "c.test");
  EXPECT_EQ(j["domains"][2]["domain"], "a.test");
  j = domains_json({a, b}, "domain", 2);
  ASSERT_EQ(j["domains"].size(), 2u);
  EXPECT_EQ(j["domains"][0]["domain"], "a.test");
  EXPECT_EQ(j["domains"][1]["domain"], "b.test");
}

TEST(Dashboard, BusiestDestinationsFirstAndNewestBouncesFirst) {
  ShardAnswer a = answer({});
  for (int i = 0; i < 20; ++i) a.outbound.destinations.push_back(dest(fmt::format("d{}.test", i), 100, i));
  for (int i = 0; i < 30; ++i) {
    outbound::BounceInfo b;
    b.unix_ns = i * 1'000'000'000LL;
    b.recipient = fmt::format("u{}@x.test", i);
    a.outbound.recent_bounces.push_back(b);
  }
  Sampler s;
  const json j = dashboard_json({a}, s, {});
  ASSERT_EQ(j["domains"].size(), 15u);
  EXPECT_EQ(j["domains"][0]["domain"], "d19.test");
  ASSERT_EQ(j["bounces"].size(), 20u);
  EXPECT_EQ(j["bounces"][0]["recipient"], "u29@x.test");
  EXPECT_TRUE(j["status"]["ok"].get<bool>());
}

TEST(Verbs, BecomeRequestsOrOneLineErrors) {
  auto r = parse_verb(json{{"cmd", "pause"}, {"domain", "gmail.com"}});
  ASSERT_TRUE(r.has_value());
  const auto& d = std::get<request::Destinations>(*r);
  EXPECT_EQ(d.verb, request::Verb::Pause);
  EXPECT_EQ(d.domain, "gmail.com");
  r = parse_verb(json{{"cmd", "flush"}});
  ASSERT_TRUE(r.has_value()) << "flush without a domain flushes everything";
  EXPECT_EQ(std::get<request::Destinations>(*r).domain, "");
  r = parse_verb(json{{"cmd", "bounce"}, {"id", "00000000000abcde"}});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(std::get<request::BounceMessage>(*r).id, 0xabcdeu);
  EXPECT_EQ(parse_verb(json{{"cmd", "resume"}}).error(), "resume needs a domain");
  EXPECT_EQ(parse_verb(json{{"cmd", "explode"}}).error(), "unknown command 'explode'");
  EXPECT_EQ(parse_verb(json{{"cmd", "bounce"}, {"id", "xyz"}}).error(),
            "bounce --id needs a message id (16 hex digits)");
}

class TraceTest : public ::testing::Test {
 protected:
  TraceTest() {
    dir_ = fs::temp_directory_path() / fmt::format("salvo-trace-{}", ::getpid());
    fs::create_directories(dir_);
  }
  ~TraceTest() override { fs::remove_all(dir_); }
  void write(const std::string& name, const std::vector<std::string>& lines) {
    std::ofstream out(dir_ / name);
    for (const auto& l : lines) out << l << "\n";
  }
  fs::path dir_;
};

TEST_F(TraceTest, RotatedLinesFirstThenTheCurrentFileWithTheSpoolsStates) {
  write("accounting.jsonl", {R"({"id":"0000000000000042","type":"delivered"})",
                             R"({"id":"0000000000000099","type":"received"})"});
  write("accounting-20261201T000000.jsonl", {R"({"id":"0000000000000042","type":"received"})"});
  ShardAnswer a = answer({});
  a.trace_found = true;
  a.trace_states = {1, 4};
  const json j = trace_json(0x42, {answer({}), a}, dir_.string());
  ASSERT_TRUE(j["ok"].get<bool>()) << j.dump();
  ASSERT_EQ(j["events"].size(), 2u);
  EXPECT_EQ(j["events"][0]["type"], "received");
  EXPECT_EQ(j["events"][1]["type"], "delivered");
  EXPECT_EQ(j["spool"]["recipients"][0]["state"], "delivered");
  EXPECT_EQ(j["spool"]["recipients"][1]["state"], "deferred");
  EXPECT_FALSE(j["truncated"].get<bool>());
}

TEST_F(TraceTest, BoundedAndUnknownMessagesSaySo) {
  std::vector<std::string> many(1200, R"({"id":"0000000000000007","type":"deferred"})");
  write("accounting.jsonl", many);
  json j = trace_json(7, {answer({})}, dir_.string());
  EXPECT_EQ(j["events"].size(), 1000u);
  EXPECT_TRUE(j["truncated"].get<bool>());
  j = trace_json(8, {answer({})}, dir_.string());
  EXPECT_FALSE(j["ok"].get<bool>());
  EXPECT_EQ(j["error"], "no message 0000000000000008 in the spool or the accounting log");
}

TEST(Prometheus, OneHeaderPerFamilyAndItsSeriesTogether) {
  metrics::Snapshot s;
  s.add(kConns, "direction=\"in\",protocol=\"smtp\"", std::uint64_t{3});
  s.add(kReceived, "source=\"smtp\"", std::uint64_t{10});
  s.add(kConns, "direction=\"out\",protocol=\"smtp\"", std::uint64_t{4});
  const std::string text = render_prometheus(s);
  EXPECT_EQ(text,
            "# HELP salvo_connections c\n# TYPE salvo_connections gauge\n"
            "salvo_connections{direction=\"in\",protocol=\"smtp\"} 3\n"
            "salvo_connections{direction=\"out\",protocol=\"smtp\"} 4\n"
            "# HELP salvo_received_recipients_total r\n"
            "# TYPE salvo_received_recipients_total counter\n"
            "salvo_received_recipients_total{source=\"smtp\"} 10\n");
}

TEST(Prometheus, HistogramBucketsAreCumulativeInSeconds) {
  LatencyHistogram h;
  h.record(50'000);         // 50 us
  h.record(2'000'000);      // 2 ms
  h.record(40'000'000'000); // 40 s: past the last bound
  metrics::Snapshot s;
  s.add(kFsync, {}, h);
  const std::string text = render_prometheus(s);
  EXPECT_NE(text.find("# TYPE salvo_spool_fsync_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("salvo_spool_fsync_seconds_bucket{le=\"0.0001\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("salvo_spool_fsync_seconds_bucket{le=\"0.0025\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("salvo_spool_fsync_seconds_bucket{le=\"30\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("salvo_spool_fsync_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("salvo_spool_fsync_seconds_count 3\n"), std::string::npos);
}

TEST(Prometheus, NodeSeriesAddShardsAndSayWhichAnswered) {
  std::vector<ShardAnswer> answers = {answer({.received = 2, .blocked_ns = 1'500'000'000}),
                                      answer({}, false)};
  const metrics::Snapshot node = node_metrics(answers, {0.25, -1}, 777);
  EXPECT_EQ(node.value("salvo_received_recipients_total", "source=\"smtp\""), 2);
  EXPECT_EQ(node.value("salvo_shard_up", "shard=\"0\""), 1);
  EXPECT_EQ(node.value("salvo_shard_up", "shard=\"1\""), 0);
  EXPECT_EQ(node.value("salvo_shard_blocked_seconds_total", "shard=\"0\""), 1.5);
  EXPECT_EQ(node.value("salvo_shard_loop_utilisation", "shard=\"0\""), 0.25);
  EXPECT_EQ(node.find("salvo_shard_loop_utilisation", "shard=\"1\""), nullptr)
      << "unknown utilisation is left out, not reported as 0";
  EXPECT_EQ(node.value("salvo_spool_free_bytes"), 777);
}

}  // namespace
}  // namespace salvo::admin
