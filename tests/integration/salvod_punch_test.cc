// SPDX-License-Identifier: Apache-2.0
// Punching dead records out of closed segments, end to end (docs/spool-format.md §7): salvod
// delivers a few hundred messages to a real salvo-sink MX while one recipient's MX answers
// 451 to everything. That one message pins its segment, and the segments holding the final
// states of its neighbours pin in turn; their dead records are punched, so the segment files
// keep their size while the blocks they take shrink. After a restart (no damage found), the
// deferred message is delivered once its MX accepts.
#include <filesystem>
#include <string>
#include <sys/stat.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "integration/delivery_env.h"
#include "support/eventually.h"

namespace salvo::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr int kMessages = 240;  // 16 KB each: a few 1 MB segments per shard
const std::string kNodeKeys = "spool_segment_size = \"1MB\"\nspool_punch_interval = \"200ms\"\n";

struct DiskUse {
  std::uint64_t allocated = 0;
  std::uint64_t size = 0;
  int segments = 0;
  int punched = 0;  // segments taking less than a quarter of their size
};
DiskUse segments_on_disk(const std::string& spool) {
  DiskUse u;
  for (const auto& e : fs::recursive_directory_iterator(spool)) {
    const std::string name = e.path().filename().string();
    if (!name.starts_with("seg-") || !name.ends_with(".spool")) continue;
    struct stat sb {};
    if (::stat(e.path().c_str(), &sb) != 0) continue;
    const auto allocated = static_cast<std::uint64_t>(sb.st_blocks) * 512;
    u.allocated += allocated;
    u.size += static_cast<std::uint64_t>(sb.st_size);
    ++u.segments;
    if (allocated * 4 < static_cast<std::uint64_t>(sb.st_size)) ++u.punched;
  }
  return u;
}

// 16 KB in lines of 80: the deferred message's body, recognisable when it arrives.
std::string late_body() {
  std::string b;
  for (int i = 0; i < 200; ++i) {
    b += fmt::format("late line {:03} ", i) + std::string(64, 'l') + "\r\n";
  }
  return b;
}

long long metric(const TempDir& dir, const Salvod& d, const std::string& name) {
  Ctl s = salvoctl(dir, d.config_path(), {"status", "--json"});
  if (s.rc != 0 || !s.j.contains("metrics")) return -1;
  long long total = 0;
  for (const auto& [k, v] : s.j["metrics"].items()) {
    if (k == name || k.starts_with(name + "{")) total += v.get<long long>();
  }
  return total;
}

TEST(SpoolPunch, LiveDataNotHistorySetsDiskUseAndTheDeferredMessageSurvivesARestart) {
  Env env(
      zones({"d0.later.test. 300 IN MX 10 mx.later.test.", "mx.later.test. 300 IN A 127.0.0.6"}));
  auto later = std::make_unique<Sink>(
      env.dir, std::vector<std::string>{"--cores", "1", "--listen",
                                        fmt::format("127.0.0.6:{},defer-rate=1", env.port)});
  const std::string spool = env.dir.file("spool");
  {
    SalvodOptions o = env.salvod();
    o.node_keys += kNodeKeys;
    o.cores = 1;  // one spool: the deferred message shares its segments with the others
    Salvod d(env.dir, o);
    const std::string reply =
        send_message(d, "late@d0.later.test", "Subject: later\r\n\r\n" + late_body());
    ASSERT_TRUE(reply.starts_with("250")) << reply;
    ASSERT_EQ(blast_to(env.dir, d, kMessages, "ok.test", {"--size", "16KB"})["accepted"],
              kMessages);
    ASSERT_TRUE(env.mx->wait_messages(kMessages, 30s)) << d.log();
    // Everything but the one deferred message is final: its segment (and any holding
    // final states for it) stays, punched down to what is live. The writers' open
    // segments are preallocated whole.
    ASSERT_TRUE(eventually([&] { return segments_on_disk(spool).punched >= 1; }, 20s))
        << "allocated " << segments_on_disk(spool).allocated << " of "
        << segments_on_disk(spool).size << " in " << segments_on_disk(spool).segments
        << " segments\n"
        << d.log();
    // Counted once the punch thread has handed its round back to the shard.
    EXPECT_TRUE(
        eventually([&] { return metric(env.dir, d, "salvo_spool_punched_bytes_total") > 0; }, 10s))
        << d.log();
    Ctl status = salvoctl(env.dir, d.config_path(), {"status"});
    EXPECT_NE(status.out.find("allocated on disk"), std::string::npos) << status.out;
    EXPECT_EQ(d.stop(), 0);
  }
  const DiskUse punched = segments_on_disk(spool);
  EXPECT_EQ(punched.size, punched.segments * 1'000'000ull) << "segments keep their size";
  EXPECT_GE(punched.punched, 1);
  // The deferred message is still in the spool, whole.
  const auto items = read_spool_items(spool);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].recipients, std::vector<std::string>{"late@d0.later.test"});
  // Its MX now takes mail; a restarted salvod finds no damage and delivers it.
  later->stop();
  later = std::make_unique<Sink>(
      env.dir,
      std::vector<std::string>{"--cores", "1", "--listen", fmt::format("127.0.0.6:{}", env.port),
                               "--maildir", env.dir.file("later-mail")});
  SalvodOptions o = env.salvod();
  o.node_keys += kNodeKeys;
  o.cores = 1;
  Salvod d(env.dir, o);
  ASSERT_TRUE(later->wait_messages(1, 20s)) << d.log();
  EXPECT_EQ(d.log().find("damaged"), std::string::npos) << d.log();
  EXPECT_EQ(d.log().find("punch note"), std::string::npos) << d.log();
  const auto got = maildir_messages(env.dir.file("later-mail"));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_NE(got[0].find(late_body()), std::string::npos);
  EXPECT_EQ(d.stop(), 0);
  EXPECT_TRUE(read_spool_items(spool).empty());
}

}  // namespace
}  // namespace salvo::test
