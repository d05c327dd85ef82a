// SPDX-License-Identifier: Apache-2.0
// Background recovery end to end (docs/spool-format.md §7): salvod restarted over a spool
// of several segments per shard takes new mail while it still scans them, then delivers
// every old message and the new one exactly once, to a real salvo-sink MX found through
// Debian's unbound. The scan is slowed with the test seam SALVO_TEST_RECOVERY_DELAY_MS (a
// wait before each segment), so "before the scan is done" is a fact, not a race.
#include <map>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "integration/delivery_env.h"
#include "support/eventually.h"

namespace salvo::test {
namespace {

using namespace std::chrono_literals;

constexpr int kOld = 120;  // 16 KB each: several 1 MB segments per shard
const std::string kSegments = "spool_segment_size = \"1MB\"\n";
const std::string kHold = "[[shaping]]\ndomain = \"*\"\nmax_connections = 0\n";
constexpr const char* kFinished = "spool recovery finished";

// The old spool: kOld messages queued and held, then a clean stop.
void queue_old_mail(Env& env) {
  SalvodOptions o = env.salvod(kHold);
  o.node_keys += kSegments;
  Salvod d(env.dir, o);
  ASSERT_EQ(blast_to(env.dir, d, kOld, "ok.test", {"--size", "16KB"})["accepted"], kOld);
  ASSERT_EQ(d.stop(), 0);
}

// salvod over that spool, its background scan slowed (1.5 s before each segment). The
// clean stop's checkpoint is not used (it would stand in for the scan): removed unused.
SalvodOptions slow_recovery(const Env& env, const std::string& more) {
  SalvodOptions o = env.salvod(more);
  o.node_keys += kSegments;
  o.node_keys += "checkpoint = false\n";
  o.wait_recovery = false;
  o.env = {"SALVO_TEST_RECOVERY_DELAY_MS=1500"};
  return o;
}

// One message to `rcpt` over SMTP: the reply to the end of DATA.
std::string send_one(const Salvod& d, const std::string& rcpt) {
  return send_message(d, rcpt, "Subject: new\r\n\r\nsent while the old spool was being read\r\n");
}

// Every old recipient (u<i>-0@d0.ok.test) and new@d0.ok.test arrive, each exactly once.
void expect_each_delivered_once(Env& env, Salvod& d) {
  ASSERT_TRUE(eventually([&] { return delivered_to(env).size() == kOld + 1u; }, 30s))
      << delivered_to(env).size() << " of " << kOld + 1 << " arrived\n" << d.log();
  EXPECT_EQ(d.stop(), 0);
  const auto got = delivered_to(env);
  EXPECT_EQ(got.size(), kOld + 1u);
  for (int i = 0; i < kOld; ++i) {
    auto it = got.find(fmt::format("u{}-0@d0.ok.test", i));
    EXPECT_TRUE(it != got.end() && it->second == 1) << "u" << i;
  }
  auto it = got.find("new@d0.ok.test");
  EXPECT_TRUE(it != got.end() && it->second == 1);
  EXPECT_TRUE(read_spool_items(env.dir.file("spool")).empty()) << "all final: spool reclaimed";
}

TEST(BackgroundRecovery, NewMailIsAcceptedBeforeTheOldSpoolIsReadAndAllIsDeliveredOnce) {
  Env env;
  ASSERT_NO_FATAL_FAILURE(queue_old_mail(env));
  const auto items = read_spool_items(env.dir.file("spool"));
  ASSERT_EQ(items.size(), static_cast<std::size_t>(kOld));
  const std::string old_id = fmt::format("{:016x}", items.front().id);
  Salvod d(env.dir, slow_recovery(env, ""));
  EXPECT_NE(d.log().find("recovery=background"), std::string::npos) << d.log();
  const std::string reply = send_one(d, "new@d0.ok.test");
  EXPECT_TRUE(reply.starts_with("250")) << reply;
  // salvoctl says the scan runs, and does not call an old message final.
  Ctl status = salvoctl(env.dir, d.config_path(), {"status"});
  EXPECT_NE(status.out.find("recovery      IN PROGRESS"), std::string::npos) << status.out;
  Ctl trace = salvoctl(env.dir, d.config_path(), {"trace", old_id});
  EXPECT_NE(trace.out.find("not found yet"), std::string::npos) << trace.out;
  // Each segment waits 1.5 s before it is read: the scan is not done.
  EXPECT_EQ(d.log().find(kFinished), std::string::npos) << d.log();
  ASSERT_TRUE(d.wait_for_log(kFinished, 30s)) << d.log();
  EXPECT_EQ(d.log_number("recovered_messages"), kOld) << d.log();
  ASSERT_NO_FATAL_FAILURE(expect_each_delivered_once(env, d));
}

// A crash while the scan runs loses nothing: the old segments were not reclaimed, the new
// message's segment and id mark are durable, and the next start finds both.
TEST(BackgroundRecovery, AKillDuringTheScanLosesNothing) {
  Env env;
  ASSERT_NO_FATAL_FAILURE(queue_old_mail(env));
  {
    Salvod d(env.dir, slow_recovery(env, kHold));
    const std::string reply = send_one(d, "new@d0.ok.test");
    EXPECT_TRUE(reply.starts_with("250")) << reply;
    EXPECT_EQ(d.log().find(kFinished), std::string::npos) << d.log();
    d.kill();
  }
  SalvodOptions o = env.salvod();
  o.node_keys += kSegments;
  Salvod d(env.dir, o);  // waits for the end of the (unslowed) background scan
  EXPECT_EQ(d.log_number("recovered_messages"), kOld + 1) << d.log();
  ASSERT_NO_FATAL_FAILURE(expect_each_delivered_once(env, d));
}

// salvoctl drain during the scan: salvod stops once nothing is left to deliver, and the old
// mail it has not read yet counts (before, the drain saw an empty queue and stopped at
// once, leaving the old mail for the next start).
TEST(BackgroundRecovery, ADrainDuringTheScanWaitsForTheOldMail) {
  Env env;
  ASSERT_NO_FATAL_FAILURE(queue_old_mail(env));
  Salvod d(env.dir, slow_recovery(env, ""));
  Ctl dr = salvoctl(env.dir, d.config_path(), {"drain"});
  ASSERT_EQ(dr.rc, 0) << dr.err;
  auto rc = d.process().wait(40s);
  ASSERT_TRUE(rc.has_value()) << "salvod did not stop after the drain\n" << d.log();
  EXPECT_EQ(*rc, 0) << d.log();
  EXPECT_NE(d.log().find(kFinished), std::string::npos) << d.log();
  EXPECT_EQ(delivered_to(env).size(), static_cast<std::size_t>(kOld)) << d.log();
  EXPECT_TRUE(read_spool_items(env.dir.file("spool")).empty());
}

}  // namespace
}  // namespace salvo::test
