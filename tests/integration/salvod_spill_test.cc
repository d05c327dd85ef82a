// SPDX-License-Identifier: Apache-2.0
// Queued recipients beyond what a destination keeps in RAM ([delivery] queue_in_memory) or
// deferred past [delivery] queue_horizon wait in the shard's spill files: a real salvod,
// real salvo-sink MX hosts found through Debian's unbound. A held destination with ten
// times its RAM share is released by a reload and every message arrives exactly once; a
// sink that defers some recipients sees them again when their retry is due, after they
// were spilled and read back.
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "integration/delivery_env.h"
#include "support/eventually.h"

namespace salvo::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

double metric(const Env& env, const Salvod& d, const std::string& name) {
  Ctl s = salvoctl(env.dir, d.config_path(), {"status", "--json"});
  return s.rc == 0 ? s.j["metrics"].value(name, -1.0) : -1.0;
}

// Copies the sink kept, by recipient (salvo-blast gives each message its own: u<n>-0@...).
std::map<std::string, int> arrivals(const Env& env) {
  std::map<std::string, int> n;
  for (const auto& m : maildir_messages(env.dir.file("mx-mail"))) {
    const auto p = m.find("Delivered-To: ");
    if (p == std::string::npos) continue;
    ++n[m.substr(p + 14, m.find('\r', p) - p - 14)];
  }
  return n;
}

// "2026-11-22T21:40:00.123Z" -> milliseconds since its midnight.
long ms_of_day(const std::string& ts) {
  return std::stol(ts.substr(11, 2)) * 3'600'000 + std::stol(ts.substr(14, 2)) * 60'000 +
         std::stol(ts.substr(17, 2)) * 1000 + std::stol(ts.substr(20, 3));
}

TEST(Spill, AHeldDestinationBeyondItsShareIsDeliveredOnceEachAfterRelease) {
  constexpr int kMessages = 1000;
  Env env;
  SalvodOptions o = env.salvod("", "queue_in_memory = 100\n");
  const std::string held = "[[shaping]]\ndomain = \"d0.ok.test\"\nmax_connections = 0\n";
  o.extra += held;
  Salvod d(env.dir, o);
  ASSERT_EQ(blast_to(env.dir, d, kMessages, "ok.test")["accepted"], kMessages);
  const std::string spilled = "salvo_queue_spilled_recipients";
  // 100 in RAM; the rest on disk, in chunks of 25 (a partial one stays in RAM).
  ASSERT_TRUE(eventually([&] { return metric(env, d, spilled) >= kMessages - 125; }, 10s))
      << metric(env, d, spilled) << "\n" << d.log();
  EXPECT_EQ(metric(env, d, "salvo_queue_recipients{state=\"ready\"}"), kMessages)
      << "spilled recipients are counted as queued";
  Ctl dom = salvoctl(env.dir, d.config_path(), {"domains", "--json"});
  ASSERT_EQ(dom.rc, 0) << dom.err;
  EXPECT_EQ(dom.j["domains"][0]["queued"], kMessages) << dom.out;
  EXPECT_GT(metric(env, d, "salvo_queue_spill_bytes"), 0);
  EXPECT_FALSE(std::filesystem::is_empty(env.dir.file("spool") + "/spill"));
  EXPECT_EQ(env.mx->progress_messages(), 0) << "held";
  // Released by a reload: everything goes, the chunks read back in turn.
  std::string text = read_file(d.config_path());
  text.replace(text.find(held), held.size(),
               "[[shaping]]\ndomain = \"d0.ok.test\"\nmax_connections = 4\n");
  std::ofstream(d.config_path()) << text;
  Ctl reload = salvoctl(env.dir, d.config_path(), {"reload"});
  ASSERT_EQ(reload.rc, 0) << reload.err;
  ASSERT_TRUE(env.mx->wait_messages(kMessages, 30s)) << env.mx->progress_messages() << "\n"
                                                     << d.log();
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "delivered") == kMessages; }, 10s));
  EXPECT_EQ(metric(env, d, spilled), 0);
  EXPECT_EQ(metric(env, d, "salvo_queue_spill_chunks_total{op=\"read\"}"),
            metric(env, d, "salvo_queue_spill_chunks_total{op=\"written\"}"));
  EXPECT_GE(metric(env, d, "salvo_queue_spill_chunks_total{op=\"read\"}"), 35);
  EXPECT_EQ(metric(env, d, "salvo_queue_spill_errors_total"), 0);
  EXPECT_EQ(d.stop(), 0);
  const auto got = arrivals(env);
  EXPECT_EQ(got.size(), static_cast<std::size_t>(kMessages));
  for (const auto& [id, times] : got) EXPECT_EQ(times, 1) << id;
  int left = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(env.dir.file("spool") +
                                                                     "/spill")) {
    if (e.is_regular_file()) ++left;
  }
  EXPECT_EQ(left, 0) << "a clean stop removes the spill files";
}

TEST(Spill, DeferredPastTheHorizonWaitOnDiskAndGoWhenDue) {
  constexpr int kMessages = 40;
  Env env(zones(), {"defer-rate=0.25", "defer-status=4.3.0"});
  // Every deferral is due in 2 s, past the 1 s horizon: on disk, in chunks of 2.
  SalvodOptions o = env.salvod("", "queue_in_memory = 8\nqueue_horizon = \"1s\"\n");
  const std::string one_second = "retry_schedule = [\"1s\"]";
  o.extra.replace(o.extra.find(one_second), one_second.size(), "retry_schedule = [\"2s\"]");
  Salvod d(env.dir, o);
  ASSERT_EQ(blast_to(env.dir, d, kMessages, "ok.test")["accepted"], kMessages);
  ASSERT_TRUE(env.mx->wait_messages(kMessages, 30s)) << env.mx->progress_messages() << "\n"
                                                     << d.log();
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "delivered") == kMessages; }, 10s));
  const auto deferred = of_type(env.dir, "deferred");
  EXPECT_GE(deferred.size(), static_cast<std::size_t>(kMessages / 4));
  EXPECT_GE(metric(env, d, "salvo_queue_spill_chunks_total{op=\"read\"}"), 5);
  EXPECT_EQ(metric(env, d, "salvo_queue_spilled_recipients"), 0);
  EXPECT_EQ(metric(env, d, "salvo_queue_spill_errors_total"), 0);
  // None was retried before its time: spilled, it came back no sooner than due.
  std::map<std::string, long> first_deferral;
  for (const auto& e : deferred) {
    first_deferral.emplace(e["id"].get<std::string>(), ms_of_day(e["ts"].get<std::string>()));
  }
  int retried = 0;
  for (const auto& e : of_type(env.dir, "delivered")) {
    auto it = first_deferral.find(e["id"].get<std::string>());
    if (it == first_deferral.end()) continue;
    long waited = ms_of_day(e["ts"].get<std::string>()) - it->second;
    if (waited < 0) waited += 86'400'000;  // past midnight
    EXPECT_GE(waited, 1900) << e.dump();
    ++retried;
  }
  EXPECT_EQ(retried, static_cast<int>(first_deferral.size()));
  EXPECT_EQ(d.stop(), 0);
  const auto got = arrivals(env);
  EXPECT_EQ(got.size(), static_cast<std::size_t>(kMessages));
  for (const auto& [id, times] : got) EXPECT_EQ(times, 1) << id;
}

}  // namespace
}  // namespace salvo::test
