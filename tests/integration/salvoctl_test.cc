// SPDX-License-Identifier: Apache-2.0
// salvoctl against a running salvod: status and domains (text and --json)
// agree with what was queued and delivered, pause holds and resume delivers, flush retries
// deferred mail at once, bounce cancels with DSNs, and the errors an operator meets are
// clear. Real parts: salvod, salvo-sink MX hosts on 127.0.0.3/.4 via [routes], the socket.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/accounting_log.h"
#include "support/blast.h"
#include "support/eventually.h"
#include "support/process.h"
#include "support/salvod.h"
#include "support/sink.h"
#include "support/unbound_server.h"

namespace salvo::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

struct Env {
  TempDir dir;
  std::uint16_t port = free_loopback_port();
  std::unique_ptr<Sink> mx, senders;
  explicit Env(const std::string& mx_faults = "") {
    std::string spec = fmt::format("127.0.0.3:{}{}", port, mx_faults);
    mx = std::make_unique<Sink>(dir, std::vector<std::string>{"--cores", "1", "--listen", spec});
    senders = std::make_unique<Sink>(
        dir, std::vector<std::string>{"--cores", "1", "--listen",
                                      fmt::format("127.0.0.4:{}", port)});
  }
  SalvodOptions salvod(const std::string& delivery = "retry_schedule = [\"1s\"]") const {
    SalvodOptions o;
    o.hold_delivery = false;
    o.extra = fmt::format(
        "[dns]\nresolvers = [\"127.0.0.1:9\"]\n[delivery]\n{}\n[routes]\n"
        "\"d0.ok.test\" = [\"127.0.0.3:{}\"]\n\"sender.test\" = [\"127.0.0.4:{}\"]\n",
        delivery, port, port);
    return o;
  }
  json blast(const Salvod& d, int n) const {
    return run_blast(dir, d.address(), {"--connections", "2", "--messages", std::to_string(n),
                                        "--from", "shop@sender.test", "--domains", "1",
                                        "--domain-suffix", "ok.test"});
  }
};

// `salvoctl domains` once it lists one destination with `n` recipients queued (rc 1 when
// that did not happen within 10 s).
Ctl wait_queued_on_one_domain(Env& env, Salvod& d, int n) {
  Ctl dom;
  const bool ok = eventually(
      [&] {
        dom = salvoctl(env.dir, d.config_path(), {"domains", "--json"});
        return dom.rc == 0 && dom.j["domains"].size() == 1 && dom.j["domains"][0]["queued"] == n;
      },
      10s);
  if (!ok && dom.rc == 0) dom.rc = 1;
  return dom;
}

// A raw connection to salvod's control socket (-1 on failure).
int connect_control(const TempDir& dir) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string path = dir.file("ctl.sock");
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Clients that stall the control socket — one that never sends its request, one that sends
// half a line, one that asks for a large answer and never reads it — hold no one else up:
// salvoctl is answered at once meanwhile, they are dropped after their 10 s, and SIGTERM
// stops salvod promptly while they hang on.
TEST(Salvoctl, StuckControlClientsBlockNothing) {
  Env env;
  SalvodOptions o = env.salvod();
  o.extra += "[[shaping]]\ndomain = \"*\"\nmax_connections = 0\n";
  Salvod d(env.dir, o);
  // 3,000 destinations held: `domains` answers with far more than a socket buffer holds.
  json b = run_blast(env.dir, d.address(),
                     {"--connections", "4", "--messages", "3000", "--domains", "3000",
                      "--domain-suffix", "held.test"});
  ASSERT_EQ(b["accepted"], 3000);
  Ctl dom;
  ASSERT_TRUE(eventually(
      [&] {
        dom = salvoctl(env.dir, d.config_path(), {"domains", "--json"});
        return dom.rc == 0 && dom.j["domains"].size() == 3000;
      },
      20s))
      << "rc " << dom.rc << " err " << dom.err << " domains: " << dom.j["domains"].size() << " " << dom.out.substr(0, 600);
  ASSERT_GT(dom.out.size(), 512u * 1024) << "the answer must not fit in a socket buffer";

  const int silent = connect_control(env.dir);
  const int half = connect_control(env.dir);
  const int deaf = connect_control(env.dir);
  ASSERT_GE(silent, 0);
  ASSERT_GE(half, 0);
  ASSERT_GE(deaf, 0);
  ASSERT_EQ(::send(half, "{\"cmd\": \"sta", 13, 0), 13);
  const std::string ask = "{\"cmd\": \"domains\"}\n";
  ASSERT_EQ(::send(deaf, ask.data(), ask.size(), 0), static_cast<ssize_t>(ask.size()));
  std::this_thread::sleep_for(300ms);  // the server has taken all three and started writing

  for (int i = 0; i < 3; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    Ctl s = salvoctl(env.dir, d.config_path(), {"status", "--json"});
    const auto took = std::chrono::steady_clock::now() - t0;
    ASSERT_EQ(s.rc, 0) << s.err;
    EXPECT_EQ(s.j["queue"]["recipients"], 3000);
    EXPECT_LT(took, 2s) << "salvoctl waited behind a stuck client";
  }
  // After their 10 s the server gives up on them: the silent one is closed unanswered, the
  // deaf one gets less than its whole answer.
  auto closed_within = [](int fd, std::chrono::seconds limit, std::size_t* got) {
    const auto until = std::chrono::steady_clock::now() + limit;
    char buf[65536];
    *got = 0;
    while (std::chrono::steady_clock::now() < until) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return true;
      *got += static_cast<std::size_t>(n);
    }
    return false;
  };
  std::this_thread::sleep_for(11s);
  std::size_t got = 0;
  EXPECT_TRUE(closed_within(silent, 2s, &got));
  EXPECT_EQ(got, 0u);
  EXPECT_TRUE(closed_within(deaf, 2s, &got));
  EXPECT_LT(got, dom.out.size());
  EXPECT_TRUE(closed_within(half, 2s, &got));

  // A new stuck client, then SIGTERM: salvod stops within its usual time.
  const int late = connect_control(env.dir);
  ASSERT_GE(late, 0);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(d.stop(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  for (int fd : {silent, half, deaf, late}) ::close(fd);
}

TEST(Salvoctl, StatusAndDomainsAgreeWithWhatHappened) {
  Env env;
  Salvod d(env.dir, env.salvod());
  ASSERT_EQ(env.blast(d, 200)["accepted"], 200);
  ASSERT_TRUE(env.mx->wait_messages(200, 20s));
  Ctl s;
  ASSERT_TRUE(eventually(
      [&] {
        s = salvoctl(env.dir, d.config_path(), {"status", "--json"});
        return s.rc == 0 && s.j["out"]["delivered"] == 200 && s.j["queue"]["recipients"] == 0;
      },
      10s))
      << s.out << s.err;
  EXPECT_EQ(s.j["in"]["recipients"], 200);
  EXPECT_EQ(s.j["shards"], 2);
  EXPECT_EQ(s.j["per_shard"].size(), 2u);
  EXPECT_EQ(s.j["out"]["bounced"], 0);
  // The network stacks' counters: blast's connections accepted, 200 messages of bytes each
  // way, the connections to the MX made, and no receive buffer ring run dry.
  const json& m = s.j["metrics"];
  auto metric = [&](const char* key) { return m.contains(key) ? m[key].get<double>() : -1.0; };
  EXPECT_GE(metric("salvo_net_events_total{event=\"accepted\"}"), 1) << m.dump(1);
  EXPECT_GE(metric("salvo_net_events_total{event=\"connects\"}"), 1);
  EXPECT_EQ(metric("salvo_net_events_total{event=\"recv_enobufs\"}"), 0);
  EXPECT_GT(metric("salvo_net_bytes_total{direction=\"in\"}"), 200 * 100);
  EXPECT_GT(metric("salvo_net_bytes_total{direction=\"out\"}"), 200 * 100);
  Ctl text = salvoctl(env.dir, d.config_path(), {"status"});
  ASSERT_EQ(text.rc, 0) << text.err;
  EXPECT_NE(text.out.find("200 delivered"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("in            200 recipients"), std::string::npos) << text.out;
  Ctl dom = salvoctl(env.dir, d.config_path(), {"domains", "--json"});
  ASSERT_EQ(dom.rc, 0) << dom.err;
  ASSERT_EQ(dom.j["domains"].size(), 1u) << dom.out;
  EXPECT_EQ(dom.j["domains"][0]["domain"], "d0.ok.test");
  EXPECT_EQ(dom.j["domains"][0]["delivered"], 200);
  EXPECT_EQ(dom.j["domains"][0]["queued"], 0);
  EXPECT_NE(dom.j["domains"][0]["last_reply"].get<std::string>().find("250"), std::string::npos);
  Ctl dt = salvoctl(env.dir, d.config_path(), {"domains", "--top", "5", "--sort", "rate"});
  ASSERT_EQ(dt.rc, 0) << dt.err;
  EXPECT_NE(dt.out.find("d0.ok.test"), std::string::npos) << dt.out;
  EXPECT_EQ(d.stop(), 0);
}

TEST(Salvoctl, PauseHoldsMailAndResumeDeliversIt) {
  Env env;
  Salvod d(env.dir, env.salvod());
  Ctl p = salvoctl(env.dir, d.config_path(), {"pause", "d0.ok.test"});
  ASSERT_EQ(p.rc, 0) << p.err;
  ASSERT_EQ(env.blast(d, 30)["accepted"], 30);
  // Settled: all 30 routed to the paused destination (accepted is not yet queued there).
  Ctl dom = wait_queued_on_one_domain(env, d, 30);
  ASSERT_EQ(dom.rc, 0) << dom.out;
  EXPECT_EQ(dom.j["domains"][0]["state"], "paused");
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(env.mx->progress_messages(), 0) << "paused: nothing sent";
  ASSERT_EQ(salvoctl(env.dir, d.config_path(), {"resume", "d0.ok.test"}).rc, 0);
  EXPECT_TRUE(env.mx->wait_messages(30, 20s));
  EXPECT_EQ(d.stop(), 0);
}

TEST(Salvoctl, FlushRetriesDeferredMailNow) {
  Env env(",defer-rate=1,defer-status=4.3.0");
  Salvod d(env.dir, env.salvod("retry_schedule = [\"1h\"]"));
  ASSERT_EQ(env.blast(d, 5)["accepted"], 5);
  Ctl s;
  auto deferrals = [&] {
    s = salvoctl(env.dir, d.config_path(), {"status", "--json"});
    return s.rc == 0 ? s.j["out"]["deferrals"].get<int>() : -1;
  };
  ASSERT_TRUE(eventually([&] { return deferrals() == 5; }, 10s)) << s.out;
  EXPECT_EQ(s.j["queue"]["deferred"], 5);
  Ctl f = salvoctl(env.dir, d.config_path(), {"flush"});
  ASSERT_EQ(f.rc, 0) << f.err;
  EXPECT_NE(f.out.find("flush (all)"), std::string::npos) << f.out;
  // Without the flush the next attempt would be an hour away.
  EXPECT_TRUE(eventually([&] { return deferrals() == 10; }, 10s)) << s.out;
  EXPECT_EQ(d.stop(), 0);
}

TEST(Salvoctl, BounceCancelsQueuedMailWithDsns) {
  Env env;
  Salvod d(env.dir, env.salvod());
  ASSERT_EQ(salvoctl(env.dir, d.config_path(), {"pause", "d0.ok.test"}).rc, 0);
  ASSERT_EQ(env.blast(d, 3)["accepted"], 3);
  // The bounce cancels what is queued on the destination: wait until all three are there.
  ASSERT_EQ(wait_queued_on_one_domain(env, d, 3).rc, 0);
  Ctl b = salvoctl(env.dir, d.config_path(), {"bounce", "d0.ok.test", "--json"});
  ASSERT_EQ(b.rc, 0) << b.err;
  EXPECT_EQ(b.j["destinations"], 1);
  EXPECT_TRUE(env.senders->wait_messages(3, 20s)) << "one DSN per cancelled message";
  EXPECT_EQ(env.mx->progress_messages(), 0);
  Ctl s;
  EXPECT_TRUE(eventually(
      [&] {
        s = salvoctl(env.dir, d.config_path(), {"status", "--json"});
        return s.rc == 0 && s.j["out"]["bounced"] == 3;
      },
      10s))
      << s.out;
  EXPECT_EQ(d.stop(), 0);
}

TEST(Salvoctl, BounceByIdCancelsOneMessageWithItsDsn) {
  Env env;
  Salvod d(env.dir, env.salvod());
  ASSERT_EQ(salvoctl(env.dir, d.config_path(), {"pause", "d0.ok.test"}).rc, 0);
  ASSERT_EQ(env.blast(d, 3)["accepted"], 3);
  // The three ids, from the accounting log's received lines.
  std::vector<std::string> ids;
  ASSERT_TRUE(eventually(
      [&] {
        ids.clear();
        for (auto& e : events_of_type(
                 accounting_events(env.dir.file("log"), AccountingLines::SkipMalformed),
                 "received")) {
          ids.push_back(e["id"]);
        }
        return ids.size() == 3;
      },
      5s));
  Ctl b;
  ASSERT_TRUE(eventually(  // queued on its destination once routed
      [&] {
        b = salvoctl(env.dir, d.config_path(), {"bounce", "--id", ids[1], "--json"});
        return b.rc == 0;
      },
      5s))
      << b.err;
  EXPECT_EQ(b.j["recipients"], 1);
  EXPECT_TRUE(env.senders->wait_messages(1, 20s)) << "the cancelled message's DSN";
  Ctl again = salvoctl(env.dir, d.config_path(), {"bounce", "--id", ids[1]});
  EXPECT_EQ(again.rc, 1);
  EXPECT_NE(again.err.find("no queued recipients"), std::string::npos) << again.err;
  Ctl bad = salvoctl(env.dir, d.config_path(), {"bounce", "--id", "xyz"});
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.err.find("16 hex digits"), std::string::npos) << bad.err;
  // The other two are delivered once the domain is resumed.
  ASSERT_EQ(salvoctl(env.dir, d.config_path(), {"resume", "d0.ok.test"}).rc, 0);
  EXPECT_TRUE(env.mx->wait_messages(2, 20s));
  Ctl s;
  EXPECT_TRUE(eventually(
      [&] {
        s = salvoctl(env.dir, d.config_path(), {"status", "--json"});
        return s.rc == 0 && s.j["out"]["bounced"] == 1 && s.j["out"]["delivered"] == 3;
      },
      10s))
      << s.out;  // 2 to the MX + the DSN
  EXPECT_EQ(env.mx->progress_messages(), 2);
  EXPECT_EQ(d.stop(), 0);
}

// [node] accounting_max_size: the log rotates by size while salvod runs; every file holds
// whole lines, nothing is lost or repeated across files, and trace reads the rotated ones.
TEST(Salvoctl, AccountingLogRotatesBySizeKeepingWholeLines) {
  Env env;
  SalvodOptions o = env.salvod();
  o.node_keys += "accounting_max_size = \"8KiB\"\n";
  Salvod d(env.dir, o);
  const std::string log_dir = env.dir.file("log");
  // Lines of `type` in every file so far (the current one may end inside a line).
  auto lines_of = [&](std::string_view type) {
    std::vector<std::string> files = rotated_accounting_files(log_dir);
    files.push_back(accounting_path(log_dir));
    std::size_t n = 0;
    for (const auto& f : files) {
      n += events_of_type(read_accounting_file(f, AccountingLines::SkipMalformed), type).size();
    }
    return static_cast<int>(n);
  };
  // Writers look at the file's size at most once a second, when they write. A round writes
  // more than 8 KiB (40 received and 40 delivered lines); once all of them are in the log it
  // is left alone for over a second, so the next round's first write looks at the size and
  // rotates, unless a look during the round had rotated already. Either way every two
  // rounds rotate at least once, however slowly the machine runs: rounds go on (at most
  // six) until two files were rotated.
  int messages = 0;
  for (int round = 1; round <= 6 && rotated_accounting_files(log_dir).size() < 2; ++round) {
    ASSERT_EQ(env.blast(d, 40)["accepted"], 40);
    messages += 40;
    ASSERT_TRUE(env.mx->wait_messages(messages, 20s));
    ASSERT_TRUE(eventually(
        [&] { return lines_of("received") == messages && lines_of("delivered") == messages; },
        10s))
        << "round " << round;
    std::this_thread::sleep_for(1100ms);
  }
  ASSERT_GE(rotated_accounting_files(log_dir).size(), 2u);
  // trace finds a first-round message's lines in the rotated files.
  std::string first_id;
  {
    auto first = read_accounting_file(rotated_accounting_files(log_dir).front());
    if (!first.empty()) first_id = first.front().value("id", "");
  }
  Ctl t = salvoctl(env.dir, d.config_path(), {"trace", first_id, "--json"});
  ASSERT_EQ(t.rc, 0) << t.err;
  EXPECT_GE(t.j["events"].size(), 2u) << t.out;  // received, delivered
  EXPECT_EQ(d.stop(), 0);
  std::vector<std::string> files = rotated_accounting_files(log_dir);
  files.push_back(accounting_path(log_dir));
  std::map<std::string, int> received, delivered;
  for (const auto& f : files) {
    // Strict: every file ends in a newline and every line is a JSON object (else it throws).
    for (auto& e : read_accounting_file(f)) {
      if (e["type"] == "received") ++received[e["id"]];
      if (e["type"] == "delivered") ++delivered[e["id"]];
    }
  }
  EXPECT_EQ(received.size(), static_cast<std::size_t>(messages));
  EXPECT_EQ(delivered.size(), static_cast<std::size_t>(messages));
  for (const auto& [id, n] : received) EXPECT_EQ(n, 1) << id;
}

TEST(Salvoctl, TraceShowsOneMessagesHistory) {
  Env env(",defer-rate=1,defer-status=4.3.0");
  Salvod d(env.dir, env.salvod("retry_schedule = [\"1h\"]"));
  ASSERT_EQ(env.blast(d, 1)["accepted"], 1);
  Ctl s;
  ASSERT_TRUE(eventually(
      [&] {
        s = salvoctl(env.dir, d.config_path(), {"status", "--json"});
        return s.rc == 0 && s.j["out"]["deferrals"] == 1;
      },
      10s));
  // The id as the accounting log (and the 250 "queued as") shows it.
  std::string id;
  ASSERT_TRUE(eventually(
      [&] {
        for (auto& e : events_of_type(accounting_events(env.dir.file("log")), "deferred")) {
          id = e["id"];
        }
        return !id.empty();
      },
      5s));
  Ctl t = salvoctl(env.dir, d.config_path(), {"trace", id, "--json"});
  ASSERT_EQ(t.rc, 0) << t.err;
  EXPECT_EQ(t.j["id"], id);
  EXPECT_EQ(t.j["spool"]["found"], true);
  ASSERT_EQ(t.j["spool"]["recipients"].size(), 1u);
  EXPECT_EQ(t.j["spool"]["recipients"][0]["state"], "deferred");
  ASSERT_EQ(t.j["events"].size(), 2u) << t.out;
  EXPECT_EQ(t.j["events"][0]["type"], "received");
  EXPECT_EQ(t.j["events"][1]["type"], "deferred");
  Ctl text = salvoctl(env.dir, d.config_path(), {"trace", id});
  EXPECT_NE(text.out.find("deferred"), std::string::npos) << text.out;
  Ctl none = salvoctl(env.dir, d.config_path(), {"trace", "00000000000000ff"});
  EXPECT_EQ(none.rc, 1);
  EXPECT_NE(none.err.find("no message 00000000000000ff"), std::string::npos) << none.err;
  EXPECT_EQ(salvoctl(env.dir, d.config_path(), {"trace", "xyz"}).rc, 1);
  EXPECT_EQ(d.stop(), 0);
}

TEST(Salvoctl, DrainStopsIntakeAndExitsOnceDelivered) {
  Env env(",latency=20ms");
  Salvod d(env.dir, env.salvod());
  ASSERT_EQ(env.blast(d, 100)["accepted"], 100);
  Ctl dr = salvoctl(env.dir, d.config_path(), {"drain"});
  ASSERT_EQ(dr.rc, 0) << dr.err;
  // salvod stops by itself once everything is delivered.
  auto rc = d.process().wait(30s);
  ASSERT_TRUE(rc.has_value()) << "salvod did not stop after the drain";
  EXPECT_EQ(*rc, 0) << d.log();
  EXPECT_EQ(env.mx->progress_messages(), 100);
  EXPECT_NE(d.log().find("drained"), std::string::npos) << d.log();
}

// Reload (salvoctl reload and SIGHUP): a held destination is released by a new shaping
// entry without a restart; a broken file is refused with its reason and the old
// configuration stays in force.
TEST(Salvoctl, ReloadAppliesShapingAndRefusesABadFile) {
  Env env;
  SalvodOptions o = env.salvod();
  const std::string base = o.extra;
  o.extra = base + "[[shaping]]\ndomain = \"d0.ok.test\"\nmax_connections = 0\n";
  Salvod d(env.dir, o);
  auto rewrite = [&](const std::string& extra) {
    std::string text = read_file(d.config_path());
    text.replace(text.find(o.extra), o.extra.size(), extra);
    std::ofstream(d.config_path()) << text;
    o.extra = extra;
  };
  ASSERT_EQ(env.blast(d, 20)["accepted"], 20);
  // Settled: all 20 routed to the held destination.
  Ctl held;
  ASSERT_TRUE(eventually(
      [&] {
        held = salvoctl(env.dir, d.config_path(), {"domains", "--json"});
        return held.rc == 0 && held.j["domains"].size() == 1 &&
               held.j["domains"][0]["queued"] == 20 && held.j["domains"][0]["state"] == "held";
      },
      10s))
      << held.out;
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(env.mx->progress_messages(), 0) << "held";
  // A typo: refused, named; the hold stays.
  rewrite(base + "[[shaping]]\ndomain = \"d0.ok.test\"\nmax_conections = 2\n");
  // salvoctl reads the file too (for the socket) and says what is wrong at once...
  Ctl local = salvoctl(env.dir, d.config_path(), {"reload"});
  EXPECT_EQ(local.rc, 2);
  EXPECT_NE(local.err.find("max_conections"), std::string::npos) << local.err;
  // ...and salvod refuses it too (asked through the socket directly).
  Process p({program_path("salvoctl"), "--socket", env.dir.file("ctl.sock"), "reload"},
            env.dir.path());
  Ctl bad;
  bad.rc = p.wait(30s).value_or(-1);
  bad.err = p.stderr_text();
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.err.find("reload refused"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("max_conections"), std::string::npos) << bad.err;
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(env.mx->progress_messages(), 0) << "the old configuration is still in force";
  Process q({program_path("salvoctl"), "--socket", env.dir.file("ctl.sock"), "domains",
             "--json"},
            env.dir.path());
  ASSERT_EQ(q.wait(30s).value_or(-1), 0);
  json dom = json::parse(q.stdout_text());
  EXPECT_EQ(dom["domains"][0]["state"], "held");
  // Fixed: applied by salvoctl reload, mail flows, nothing lost.
  rewrite(base + "[[shaping]]\ndomain = \"d0.ok.test\"\nmax_connections = 2\n");
  Ctl good = salvoctl(env.dir, d.config_path(), {"reload"});
  ASSERT_EQ(good.rc, 0) << good.err;
  EXPECT_TRUE(env.mx->wait_messages(20, 20s));
  // SIGHUP does the same: hold again, then new mail waits.
  rewrite(base + "[[shaping]]\ndomain = \"d0.ok.test\"\nmax_connections = 0\n");
  d.process().signal(SIGHUP);
  ASSERT_TRUE(eventually(
      [&] {
        Ctl c = salvoctl(env.dir, d.config_path(), {"domains", "--json"});
        return c.rc == 0 && c.j["domains"][0]["state"] == "held";
      },
      10s));
  ASSERT_EQ(env.blast(d, 5)["accepted"], 5);
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(env.mx->progress_messages(), 20);
  EXPECT_EQ(d.stop(), 0);
  EXPECT_NE(d.log().find("reload refused"), std::string::npos);
}

TEST(Salvoctl, ReloadsUnderLoadLoseNothing) {
  Env env(",latency=2ms");
  SalvodOptions o = env.salvod();
  const std::string base = o.extra;
  o.extra = base + "[[shaping]]\ndomain = \"d0.ok.test\"\nmax_connections = 2\n";
  Salvod d(env.dir, o);
  json b;
  std::thread load([&] { b = env.blast(d, 2000); });
  int good = 0;
  for (int i = 0; i < 6; ++i) {
    std::string text = read_file(d.config_path());
    std::string extra = base + fmt::format("[[shaping]]\ndomain = \"d0.ok.test\"\n"
                                           "max_connections = {}\n", i % 2 == 0 ? 4 : 1);
    text.replace(text.find(o.extra), o.extra.size(), extra);
    std::ofstream(d.config_path()) << text;
    o.extra = extra;
    good += salvoctl(env.dir, d.config_path(), {"reload"}).rc == 0 ? 1 : 0;
    std::this_thread::sleep_for(100ms);
  }
  load.join();
  EXPECT_EQ(good, 6);
  ASSERT_EQ(b["accepted"], 2000);
  EXPECT_TRUE(env.mx->wait_messages(2000, 30s)) << env.mx->progress_messages();
  EXPECT_EQ(d.stop(), 0);
  EXPECT_EQ(env.mx->stop()["messages"], 2000) << "nothing lost, nothing sent twice";
}

TEST(Salvoctl, ErrorsSayWhatIsWrong) {
  TempDir dir;
  std::string cfg = dir.file("salvo.toml");
  std::ofstream(cfg) << "[node]\ncontrol_socket = \"" << dir.file("none.sock") << "\"\n";
  Ctl c = salvoctl(dir, cfg, {"status"});
  EXPECT_EQ(c.rc, 1);
  EXPECT_NE(c.err.find("salvod is not running"), std::string::npos) << c.err;
  EXPECT_EQ(salvoctl(dir, cfg, {"frobnicate"}).rc, 2);
  EXPECT_EQ(salvoctl(dir, cfg, {"pause"}).rc, 2) << "pause needs a domain";
  Ctl bad = salvoctl(dir, dir.file("missing.toml"), {"status"});
  EXPECT_EQ(bad.rc, 2);
  EXPECT_NE(bad.err.find("missing.toml"), std::string::npos) << bad.err;
}

TEST(Salvoctl, TheSocketIsOwnerOnly) {
  Env env;
  Salvod d(env.dir, env.salvod());
  struct stat st{};
  ASSERT_EQ(::stat(env.dir.file("ctl.sock").c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(d.stop(), 0);
  EXPECT_NE(::stat(env.dir.file("ctl.sock").c_str(), &st), 0) << "removed at stop";
}

}  // namespace
}  // namespace salvo::test
