// SPDX-License-Identifier: Apache-2.0
// Delivery against slow and hostile MX hosts (docs/reliability.md H3, H23, H24): salvod
// delivering through unbound to salvo-sink hosts that answer late, trickle their replies
// a byte at a time (a tarpit) or stop reading the message data. Each stage's reply has a
// deadline the trickle cannot stretch, and data_block_timeout bounds a stalled write; the
// recipient is deferred with a reply naming the stage, and mail to a normal MX goes on.
#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "integration/delivery_env.h"
#include "support/eventually.h"

namespace salvo::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

TEST(Delivery, ASilentServerTimesOutAndTheRecipientIsDeferred) {
  // Every reply comes 2 s late; the replies in a transaction may take only 500 ms.
  Env env(zones(), {"latency=2s"});
  Salvod d(env.dir, env.salvod("", "mail_timeout = \"500ms\"\nrcpt_timeout = \"500ms\"\n"
                                   "data_init_timeout = \"500ms\"\n"
                                   "data_done_timeout = \"500ms\""));
  ASSERT_EQ(blast_to(env.dir, d, 1, "ok.test")["accepted"], 1);
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "deferred") >= 1; }, 20s)) << d.log();
  auto e = of_type(env.dir, "deferred").front();
  EXPECT_EQ(e["code"], 451) << e.dump();
  EXPECT_NE(e["response"].get<std::string>().find("(mail_timeout 500ms)"), std::string::npos)
      << e.dump();
  EXPECT_EQ(count_of(env.dir, "delivered"), 0);
  EXPECT_EQ(d.stop(), 0);
}

// One message to d0.ok.test, whose MX (127.0.0.3) is a salvo-sink with `faults`, and three
// to d0.fine.test, whose MX is the normal sink on 127.0.0.4. The first is deferred within
// `within` of its injection with a reply that contains `reason`, long before the fault
// would have let it through; the others are delivered meanwhile.
void slow_mx_is_given_up(const std::vector<std::string>& faults, const std::string& delivery,
                         const std::string& reason, std::chrono::milliseconds within,
                         std::vector<std::string> blast_args = {}) {
  Env env(zones({"d0.fine.test. 300 IN MX 10 mx.sender.test."}), faults);
  Salvod d(env.dir, env.salvod("", delivery));
  ASSERT_EQ(blast_to(env.dir, d, 1, "ok.test", blast_args)["accepted"], 1);
  const auto injected = SteadyClock::now();
  ASSERT_EQ(blast_to(env.dir, d, 3, "fine.test")["accepted"], 3);
  ASSERT_TRUE(eventually([&] { return count_of(env.dir, "deferred") >= 1; }, 10s)) << d.log();
  const auto took = SteadyClock::now() - injected;
  const json e = of_type(env.dir, "deferred").front();
  EXPECT_EQ(e["domain"], "d0.ok.test") << e.dump();
  EXPECT_EQ(e["code"], 451) << e.dump();
  EXPECT_EQ(e["enhanced"], "4.4.2") << e.dump();
  EXPECT_NE(e["response"].get<std::string>().find(reason), std::string::npos) << e.dump();
  EXPECT_LT(took, within) << e.dump();
  int fine = 0, ok = 0;
  for (const auto& x : of_type(env.dir, "delivered")) {
    fine += x["domain"] == "d0.fine.test" ? 1 : 0;
    ok += x["domain"] == "d0.ok.test" ? 1 : 0;
  }
  EXPECT_EQ(fine, 3);
  EXPECT_EQ(ok, 0);
  EXPECT_EQ(d.stop(), 0);
}

// A tarpit's greeting, a byte every 200 ms (37 bytes: 7.4 s), is given up on at
// greeting_timeout (1 s) from the connect. Before, each byte restarted the timer.
TEST(Delivery, ATrickledGreetingIsGivenUpAtGreetingTimeout) {
  slow_mx_is_given_up({"trickle=200ms", "trickle-at=greeting"}, "greeting_timeout = \"1s\"",
                      "timed out while waiting for the greeting (greeting_timeout 1s)", 4s);
}

// The EHLO reply's many 250- lines, a byte every 50 ms (132 bytes: 6.6 s), are given up on
// at helo_timeout (1 s) from the EHLO.
TEST(Delivery, ATrickledEhloReplyIsGivenUpAtHeloTimeout) {
  slow_mx_is_given_up({"trickle=50ms", "trickle-at=ehlo"}, "helo_timeout = \"1s\"",
                      "timed out while waiting for the reply to EHLO/HELO (helo_timeout 1s)",
                      4s);
}

// The replies to MAIL, RCPT and BDAT a byte every 100 ms: MAIL's and RCPT's in 2.8 s, then
// the final reply (36 bytes: 3.6 s more) is given up on at data_done_timeout (1 s) after
// RCPT's.
TEST(Delivery, ATrickledFinalReplyIsGivenUpAtDataDoneTimeout) {
  slow_mx_is_given_up({"trickle=100ms", "trickle-at=data"}, "data_done_timeout = \"1s\"",
                      "timed out while waiting for the reply to the end of the message data "
                      "(data_done_timeout 1s)",
                      6s);
}

// A 16 MB message to an MX that stops reading once the message text starts (for 8 s):
// once the socket buffers are full nothing of the data is taken, and data_block_timeout
// (1 s) ends the transaction. Before, salvod waited out the stall and delivered.
TEST(Delivery, AnMxThatStopsReadingTheDataTimesOutAtDataBlockTimeout) {
  slow_mx_is_given_up({"stall-data=8s"}, "data_block_timeout = \"1s\"",
                      "timed out while sending message data (data_block_timeout 1s)", 6s,
                      {"--size", "16MB"});
}

}  // namespace
}  // namespace salvo::test
