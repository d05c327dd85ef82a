// SPDX-License-Identifier: Apache-2.0
// Hostile clients against a running salvod: clients that trickle a command, trickle message
// text below min_data_rate, hold a session open with NOOPs, flood behind a slow commit or
// pile large messages onto a stalled disk. Each case checks the reply (421 4.4.2), that the
// connection is gone within its deadline while the client was still sending, what was
// queued, and that salvod still serves. And password guessers: AUTH against
// crypt(3)-hashed users, the per-address and per-user failure budgets, the delay.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <salvo/net/socket_address.h>
#include <salvo/net/tls.h>

#include "support/cert_factory.h"
#include "support/process.h"
#include "support/raw_client.h"
#include "support/salvod.h"

namespace salvo::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

SalvodOptions listen_options(const std::string& listen_keys) {
  SalvodOptions o;
  o.cores = 1;
  o.listen_keys = listen_keys;
  return o;
}

// salvod's resident set (VmRSS) in bytes; 0 when unreadable.
std::uint64_t rss_bytes(Salvod& d) {
  std::ifstream f("/proc/" + std::to_string(d.process().pid()) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.starts_with("VmRSS:")) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

double metric(const TempDir& dir, const Salvod& d, const std::string& key) {
  const nlohmann::json m = salvoctl(dir, d.config_path(), {"status", "--json"}).j["metrics"];
  return m.contains(key) ? m[key].get<double>() : -1.0;
}

double timeouts(const TempDir& dir, const Salvod& d, const char* kind) {
  return metric(dir, d, std::string("salvo_smtp_timeouts_total{kind=\"") + kind + "\"}");
}

// A normal transaction still works: salvod serves after the hostile client.
void queue_one(const Salvod& d) {
  RawClient c(d.socket_address());
  ASSERT_TRUE(c.read_reply().starts_with("220"));
  c.send("EHLO ok.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
  std::string r = c.read_replies(4);
  ASSERT_NE(r.find("354"), std::string::npos) << r;
  c.send("Subject: fine\r\n\r\nbody\r\n.\r\n");
  EXPECT_TRUE(c.read_reply().starts_with("250 2.0.0 Ok: queued as"));
}

// A command line trickled one byte at a time: the idle timer would restart on every byte;
// the command's time does not.
TEST(Hostile, TrickledCommandIsCutAtItsDeadline) {
  TempDir dir;
  Salvod d(dir, listen_options("idle_timeout = \"800ms\"\ncommand_timeout = \"800ms\""));
  RawClient c(d.socket_address());
  ASSERT_TRUE(c.read_reply().starts_with("220"));
  const auto t0 = Clock::now();
  const std::string line = "EHLO " + std::string(200, 'x') + "\r\n";  // 20 s at 100 ms/byte
  const std::size_t sent = c.trickle(line, 100ms);
  const auto took = Clock::now() - t0;
  EXPECT_LT(sent, line.size());
  EXPECT_TRUE(c.read_reply().starts_with("421 4.4.2 "));
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_GE(took, 700ms);
  EXPECT_LT(took, 3s);
  // Inside a transaction (command_timeout): MAIL given, RCPT trickled.
  RawClient t(d.socket_address());
  ASSERT_TRUE(t.read_reply().starts_with("220"));
  t.send("EHLO ok.example\r\nMAIL FROM:<a@example.com>\r\n");
  ASSERT_NE(t.read_replies(2).find("250 2.1.0"), std::string::npos);
  const auto t1 = Clock::now();
  EXPECT_LT(t.trickle("RCPT TO:<" + std::string(200, 'y') + "@example.org>\r\n", 100ms), 200u);
  EXPECT_LT(Clock::now() - t1, 3s);
  EXPECT_TRUE(t.read_reply().starts_with("421 4.4.2 "));
  EXPECT_EQ(timeouts(dir, d, "command"), 2.0);
  ASSERT_NO_FATAL_FAILURE(queue_one(d));
  EXPECT_EQ(d.stop(), 0);
}

// Message text below min_data_rate is cut once data_timeout's grace is spent, although
// it never pauses for data_timeout; text above the rate is queued.
TEST(Hostile, TextBelowMinDataRateIsCut) {
  TempDir dir;
  Salvod d(dir, listen_options("data_timeout = \"1s\"\nmin_data_rate = 2000"));
  RawClient c(d.socket_address());
  ASSERT_TRUE(c.read_reply().starts_with("220"));
  c.send("EHLO slow.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
  ASSERT_NE(c.read_replies(4).find("354"), std::string::npos);
  // 10 bytes per 100 ms = 100 B/s: the text earns 1 s + bytes / 2000 B/s, ~1.05 s.
  const auto t0 = Clock::now();
  std::size_t sent = 0;
  while (sent < 2000 && !c.readable(100ms)) {
    c.send("0123456789");
    sent += 10;
  }
  const auto took = Clock::now() - t0;
  EXPECT_LT(sent, 2000u);
  EXPECT_GE(took, 900ms);
  EXPECT_LT(took, 3s);
  const std::string r = c.read_reply();
  EXPECT_TRUE(r.starts_with("421 4.4.2 ")) << r;
  EXPECT_NE(r.find("data rate"), std::string::npos) << r;
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_EQ(timeouts(dir, d, "data_rate"), 1.0);
  // A 300 KiB message at loopback speed, with BDAT as well: both above the rate.
  RawClient f(d.socket_address());
  ASSERT_TRUE(f.read_reply().starts_with("220"));
  std::string text = "Subject: big\r\n\r\n";
  for (int i = 0; i < 4000; ++i) text += std::string(76, 'a') + "\r\n";  // ~300 KiB
  f.send("EHLO fast.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
  ASSERT_NE(f.read_replies(4).find("354"), std::string::npos);
  f.send(text + ".\r\n");
  EXPECT_TRUE(f.read_reply().starts_with("250 2.0.0 Ok: queued as"));
  f.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nBDAT " +
         std::to_string(text.size()) + " LAST\r\n" + text);
  const std::string b = f.read_replies(3);
  EXPECT_NE(b.find("250 2.0.0 Ok: queued as"), std::string::npos) << b;
  EXPECT_EQ(d.stop(), 0);
}

// NOOPs every 200 ms keep every command deadline; session_timeout ends the session all the
// same. A transaction under way at the limit is finished (250), then 421.
TEST(Hostile, SessionTimeoutEndsANoopLoopAndFinishesATransaction) {
  TempDir dir;
  Salvod d(dir, listen_options("session_timeout = \"1500ms\"\ncommand_timeout = \"5s\""));
  RawClient c(d.socket_address());
  ASSERT_TRUE(c.read_reply().starts_with("220"));
  const auto t0 = Clock::now();
  std::string last;
  for (int i = 0; i < 50; ++i) {
    c.send("NOOP\r\n");
    last = c.read_reply();
    if (!last.starts_with("250")) break;
    std::this_thread::sleep_for(200ms);
  }
  const auto took = Clock::now() - t0;
  EXPECT_TRUE(last.starts_with("421 4.4.2 ")) << last;
  EXPECT_NE(last.find("session time limit"), std::string::npos) << last;
  EXPECT_GE(took, 1300ms);
  EXPECT_LT(took, 4s);
  EXPECT_TRUE(c.closed_by_peer());

  RawClient t(d.socket_address());
  ASSERT_TRUE(t.read_reply().starts_with("220"));
  t.send("EHLO late.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
  ASSERT_NE(t.read_replies(4).find("354"), std::string::npos);
  std::this_thread::sleep_for(2s);  // past session_timeout, inside the transaction
  t.send("Subject: late\r\n\r\nbody\r\n.\r\n");
  const std::string q = t.read_reply();
  EXPECT_TRUE(q.starts_with("250 2.0.0 Ok: queued as")) << q;
  const std::string end = t.read_reply();
  EXPECT_TRUE(end.starts_with("421 4.4.2 ")) << end;
  EXPECT_TRUE(t.closed_by_peer());
  EXPECT_EQ(timeouts(dir, d, "session"), 2.0);
  EXPECT_EQ(d.stop(), 0);
}

// One trickling client connection, non-blocking, from a chosen source address.
struct Trickler {
  int fd = -1;
  std::string got;   // what salvod said
  bool eof = false;  // salvod closed
};

int connect_from(const std::string& source, const net::SocketAddress& to) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in src{};
  src.sin_family = AF_INET;
  ::inet_pton(AF_INET, source.c_str(), &src.sin_addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0 ||
      (::connect(fd, to.sa(), to.len()) != 0 && errno != EINPROGRESS)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads what is there without blocking; notes EOF or an error.
void drain(Trickler& t) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(t.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      t.got.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) t.eof = true;
    return;
  }
}

// 2,000 clients from 20 addresses, each trickling a command line one byte every 250 ms
// (the idle timer would never fire): every one is told 421 4.4.2 and closed at its
// command deadline, a normal client is served meanwhile, and salvod's memory stays flat.
TEST(Hostile, TwoThousandTricklersAreShedAtTheirDeadline) {
  constexpr int kAddresses = 20;
  constexpr int kPerAddress = 100;
  constexpr int kClients = kAddresses * kPerAddress;
  rlimit r{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &r), 0);
  if (r.rlim_max < 2 * kClients + 512) {
    GTEST_SKIP() << "open files hard limit " << r.rlim_max << " is below " << 2 * kClients + 512;
  }
  r.rlim_cur = std::max<rlim_t>(r.rlim_cur, 2 * kClients + 512);  // salvod inherits it
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &r), 0);
  TempDir dir;
  Salvod d(dir, listen_options("idle_timeout = \"3s\"\ncommand_timeout = \"3s\""));
  const std::uint64_t rss_idle = rss_bytes(d);
  std::vector<Trickler> ts(kClients);
  for (int i = 0; i < kClients; ++i) {
    ts[i].fd = connect_from("127.0.0." + std::to_string(2 + i / kPerAddress), d.socket_address());
    ASSERT_GE(ts[i].fd, 0) << "connect " << i << ": " << std::strerror(errno);
  }
  const auto t0 = Clock::now();
  const std::string line = "EHLO " + std::string(100, 't') + "\r\n";  // 26 s of trickle
  std::size_t pos = 0;
  int greeted = 0, shed = 0;
  std::uint64_t rss_peak = rss_idle;
  Clock::duration last_shed{};
  bool normal_done = false;
  while (Clock::now() - t0 < 15s && shed < kClients) {
    std::this_thread::sleep_for(250ms);
    greeted = shed = 0;
    for (auto& t : ts) {
      drain(t);
      if (t.got.starts_with("220")) ++greeted;
      if (t.eof) {
        ++shed;
        continue;
      }
      if (pos < line.size()) (void)::send(t.fd, line.data() + pos, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    ++pos;
    if (shed < kClients) last_shed = Clock::now() - t0;
    rss_peak = std::max(rss_peak, rss_bytes(d));
    if (!normal_done && Clock::now() - t0 > 1s) {
      const auto q0 = Clock::now();
      ASSERT_NO_FATAL_FAILURE(queue_one(d));  // served while 2,000 connections trickle
      EXPECT_LT(Clock::now() - q0, 2s);
      normal_done = true;
    }
  }
  EXPECT_EQ(greeted, kClients);
  EXPECT_EQ(shed, kClients);
  int told = 0;
  for (auto& t : ts) {
    if (t.got.find("421 4.4.2 ") != std::string::npos) ++told;
    ::close(t.fd);
  }
  EXPECT_EQ(told, kClients);
  // The deadline is 3 s from accept; trickled bytes moved nothing.
  EXPECT_LT(last_shed, 6s);
  EXPECT_LT(rss_peak, rss_idle + (128u << 20)) << rss_idle << " -> " << rss_peak;
  EXPECT_GE(timeouts(dir, d, "command"), kClients);
  std::printf("2,000 tricklers: all shed %.1f s after connecting; salvod RSS %.1f -> %.1f MiB\n",
              std::chrono::duration<double>(last_shed).count(), rss_idle / 1048576.0,
              rss_peak / 1048576.0);
  EXPECT_EQ(d.stop(), 0);
}

// A message, then NOOPs pipelined without reading, while the message's commit is held by
// a slow disk: the NOOP replies wait behind the 250 owed. They count toward the session's
// output budget, so salvod stops reading (the client's writes stall in TCP) instead of
// holding every reply; once the commit lands, all answers arrive in order.
TEST(Hostile, NoopFloodBehindASlowCommitIsBounded) {
  TempDir dir;
  SalvodOptions o = listen_options("");
  o.env = {"SALVO_TEST_SYNC_DELAY_MS=3000"};
  Salvod d(dir, o);
  const std::uint64_t rss_idle = rss_bytes(d);
  RawClient c(d.socket_address(), 15s);
  ASSERT_TRUE(c.read_reply().starts_with("220"));
  std::string flood = "EHLO flood.example\r\nMAIL FROM:<a@example.com>\r\n"
                      "RCPT TO:<b@example.org>\r\nDATA\r\n";
  c.send(flood);
  ASSERT_NE(c.read_replies(4).find("354"), std::string::npos);
  std::string noops = "Subject: x\r\n\r\nbody\r\n.\r\n";
  const std::size_t kNoops = 8'000'000;  // 48 MB of commands, 112 MB of replies if all held
  noops.reserve(noops.size() + kNoops * 6);
  for (std::size_t i = 0; i < kNoops; ++i) noops += "NOOP\r\n";
  const std::size_t pushed = c.send_for(noops, 2s);
  // salvod read at most its 256 KiB budget of replies' worth; the rest sits in socket
  // buffers (a few MB on loopback).
  EXPECT_LT(pushed, 24u << 20) << pushed;
  EXPECT_GT(pushed, 64u << 10) << pushed;
  const std::uint64_t rss_flood = rss_bytes(d);
  EXPECT_LT(rss_flood, rss_idle + (64u << 20)) << rss_idle << " -> " << rss_flood;
  // The commit lands after 3 s: the 250 first, then the NOOPs' replies.
  const std::string q = c.read_reply();
  EXPECT_TRUE(q.starts_with("250 2.0.0 Ok: queued as")) << q;
  EXPECT_TRUE(c.read_reply().starts_with("250 2.0.0"));
  ASSERT_NO_FATAL_FAILURE(queue_one(d));
  // The flooding client still holds unread replies: the stop cuts it off after its 5 s
  // grace instead of waiting out the 30 s close linger.
  const auto t_stop = Clock::now();
  EXPECT_EQ(d.stop(), 0) << d.log();
  EXPECT_LT(Clock::now() - t_stop, 12s);
}

// Many clients pipelining large messages while every commit waits on a slow disk: what
// intake holds in memory stays near [node] max_pending_bytes (sessions stop reading; the
// clients wait in TCP), and every message is still queued. Without the cap the same load
// piles up in memory.
struct IntakeRun {
  int queued = 0;
  double pauses = 0, peak = 0, now = 0;
};

IntakeRun pipeline_big_messages(const std::string& cap) {
  TempDir dir;
  SalvodOptions o = listen_options("");
  o.node_keys += "max_pending_bytes = \"" + cap + "\"\n";
  o.env = {"SALVO_TEST_SYNC_DELAY_MS=300"};
  Salvod d(dir, o);
  constexpr int kClients = 12;
  constexpr int kMessages = 6;
  std::string body = "Subject: big\r\n\r\n";
  while (body.size() < 200'000) body += std::string(76, 'b') + "\r\n";
  std::vector<int> queued(kClients, 0);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      RawClient c(d.socket_address(), 30s);
      if (!c.read_reply().starts_with("220")) return;
      std::string all = "EHLO c" + std::to_string(i) + ".example\r\n";
      for (int m = 0; m < kMessages; ++m) {
        all += "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nBDAT " +
               std::to_string(body.size()) + " LAST\r\n" + body;
      }
      c.send(all);  // blocks while salvod is not reading
      for (int r = 0; r < 1 + 3 * kMessages; ++r) {
        if (c.read_reply().starts_with("250 2.0.0 Ok: queued as")) ++queued[i];
      }
    });
  }
  for (auto& t : clients) t.join();
  IntakeRun r;
  for (int q : queued) r.queued += q;
  r.pauses = metric(dir, d, "salvo_smtp_budget_pauses_total");
  r.peak = metric(dir, d, "salvo_smtp_intake_peak_bytes");
  r.now = metric(dir, d, "salvo_smtp_intake_bytes");
  EXPECT_EQ(d.stop(), 0);
  return r;
}

TEST(Hostile, PendingBytesCapHoldsUnderASlowDisk) {
  const IntakeRun capped = pipeline_big_messages("4MB");
  EXPECT_EQ(capped.queued, 72);
  EXPECT_GT(capped.pauses, 0.0);
  // The cap, overshot by what sessions had read before their check (one receive each)
  // and one woken session's buffered input (at most 1 MiB).
  EXPECT_GT(capped.peak, 2e6);
  EXPECT_LT(capped.peak, 4e6 + 2.5e6) << capped.peak;
  EXPECT_EQ(capped.now, 0.0);  // all committed
  const IntakeRun uncapped = pipeline_big_messages("0");
  EXPECT_EQ(uncapped.queued, 72);
  EXPECT_EQ(uncapped.pauses, 0.0);
  EXPECT_GT(uncapped.peak, 8e6) << "the load did not pile up without the cap: no contrast";
  std::printf("intake peak: %.0f bytes with a 4 MB cap, %.0f without\n", capped.peak,
              uncapped.peak);
}

// ---- AUTH: password guessing (docs/reliability.md B12, B12c-B12e) -----------------------

// injector's "s3cret" as a yescrypt hash and other's "other-pw" as a SHA-512-crypt hash
// (both as mkpasswd makes them), and one plaintext password.
const std::string kHashedUsers =
    "auth_users = { injector = \"$y$j9T$vh/RW0lrgZQxOMp0z9u.I/$6333lO.SzD5ZKaJtH0r2iHHWixtNI/"
    "eyuBQ124mgEY9\", other = \"$6$5DAeFXbk69Ta6uDX$yMilBCKLON8.8kKHxB/rMZnMCU8yfh9o3CBrevX7jKof9"
    "oqLHtZFk1WSy4BSJQECwRUJxIc/MJdVpIsVDM7o.0\", legacy = \"plain-pw\" }\n";
// AUTH PLAIN responses.
constexpr const char* kInjectorRight = "AGluamVjdG9yAHMzY3JldA==";  // \0injector\0s3cret
constexpr const char* kInjectorWrong = "AGluamVjdG9yAHdyb25n";      // \0injector\0wrong
constexpr const char* kOtherRight = "AG90aGVyAG90aGVyLXB3";         // \0other\0other-pw
constexpr const char* kNobodyWrong = "AG5vYm9keQB3cm9uZw==";        // \0nobody\0wrong

SalvodOptions auth_options(const std::string& keys) {
  SalvodOptions o = listen_options("starttls = true\nauth = [\"PLAIN\"]\n" + kHashedUsers + keys);
  o.extra = tls_section();
  return o;
}

struct ClientTls {
  ClientTls() : ctx(options()) {}
  static net::TlsContextOptions options() {
    net::TlsContextOptions to;
    to.role = net::TlsRole::Client;
    return to;
  }
  net::TlsContext ctx;
};

// A session from `from` (127.0.0.x) through STARTTLS and EHLO, ready for AUTH.
std::unique_ptr<RawClient> tls_client(const Salvod& d, const std::string& from,
                                      const ClientTls& tls) {
  auto c = std::make_unique<RawClient>(d.socket_address(), *net::SocketAddress::parse(from + ":0"));
  start_tls_and_ehlo(*c, tls.ctx);
  EXPECT_TRUE(c->read_reply().starts_with("250")) << from;
  return c;
}

std::string auth(RawClient& c, const char* plain) {
  c.send(std::string("AUTH PLAIN ") + plain + "\r\n");
  return c.read_reply();
}

// A '$' field libxcrypt cannot read stops salvod at start, in one line naming the file and
// line: a mangled hash must neither start the daemon nor become a plaintext password.
TEST(Hostile, AuthUnreadableHashStopsStartUp) {
  ASSERT_TRUE(CertFactory::shared().ok()) << CertFactory::shared().error();
  TempDir dir;
  const std::string users = dir.file("users");
  std::ofstream(users) << "ok:plain-pw\nbad:$6$salt$not!a!hash\n";
  SalvodOptions o =
      listen_options("starttls = true\nauth = [\"PLAIN\"]\nauth_users_file = \"" + users + "\"\n");
  o.extra = tls_section();
  try {
    Salvod d(dir, o);
    ADD_FAILURE() << "salvod started";
  } catch (const std::runtime_error& e) {
    const std::string err = e.what();
    EXPECT_NE(err.find("salvod: auth_users_file " + users + ": line 2: not a crypt(3) hash"),
              std::string::npos)
        << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  }
}

// Hashed users log in; four failures spend 127.0.0.1's budget (three end one connection,
// the fourth, for an unknown user, counts alike); then even the right password gets
// 454 4.7.0 from there, unchecked, while 127.0.0.2 still gets in.
TEST(Hostile, AuthPerIpBudgetRefusesEvenTheRightPassword) {
  ASSERT_TRUE(CertFactory::shared().ok()) << CertFactory::shared().error();
  TempDir dir;
  Salvod d(dir, auth_options("auth_failures_per_ip = 4\nauth_failures_per_user = 0\n"
                             "auth_failure_delay = \"50ms\"\n"));
  EXPECT_NE(d.log().find("listen[0].auth_users: 1 plaintext password; store crypt(3) hashes: "
                         "mkpasswd -m yescrypt"),
            std::string::npos)
      << d.log();
  ClientTls tls;
  auto yes = tls_client(d, "127.0.0.1", tls);
  EXPECT_TRUE(auth(*yes, kInjectorRight).starts_with("235 2.7.0")) << "yescrypt";
  auto sha = tls_client(d, "127.0.0.1", tls);
  EXPECT_TRUE(auth(*sha, kOtherRight).starts_with("235 2.7.0")) << "SHA-512-crypt";

  auto a = tls_client(d, "127.0.0.1", tls);
  for (int i = 0; i < 3; ++i) {
    const std::string r = auth(*a, kInjectorWrong);
    EXPECT_TRUE(r.starts_with("535 5.7.8")) << i << ": " << r;
  }
  EXPECT_TRUE(a->read_reply().starts_with("421 4.7.0"));
  EXPECT_TRUE(a->closed_by_peer());
  auto b = tls_client(d, "127.0.0.1", tls);
  EXPECT_TRUE(auth(*b, kNobodyWrong).starts_with("535 5.7.8"));
  const std::string refused = auth(*b, kInjectorRight);
  EXPECT_TRUE(refused.starts_with("454 4.7.0 ")) << refused;

  auto other = tls_client(d, "127.0.0.2", tls);
  EXPECT_TRUE(auth(*other, kInjectorRight).starts_with("235 2.7.0"));
  EXPECT_EQ(metric(dir, d, "salvo_smtp_auth_failures_total"), 4.0);
  EXPECT_EQ(metric(dir, d, "salvo_smtp_auth_refused_total{reason=\"ip_budget\"}"), 1.0);
  EXPECT_EQ(metric(dir, d, "salvo_smtp_auth_refused_total{reason=\"user_budget\"}"), 0.0);
  EXPECT_EQ(d.stop(), 0);
}

// Three wrong passwords for injector, each from another address and connection, spend its
// budget: the right password is then refused from a fourth address, while another user
// logs in on that connection. An unknown name is treated exactly alike.
TEST(Hostile, AuthPerUserBudgetHoldsAcrossClients) {
  ASSERT_TRUE(CertFactory::shared().ok()) << CertFactory::shared().error();
  TempDir dir;
  Salvod d(dir, auth_options("auth_failures_per_ip = 0\nauth_failures_per_user = 3\n"
                             "auth_failure_delay = \"50ms\"\n"));
  ClientTls tls;
  for (const char* from : {"127.0.0.1", "127.0.0.2", "127.0.0.3"}) {
    auto c = tls_client(d, from, tls);
    EXPECT_TRUE(auth(*c, kInjectorWrong).starts_with("535 5.7.8")) << from;
    auto n = tls_client(d, from, tls);
    EXPECT_TRUE(auth(*n, kNobodyWrong).starts_with("535 5.7.8")) << from;
  }
  auto x = tls_client(d, "127.0.0.4", tls);
  const std::string injector = auth(*x, kInjectorRight);
  EXPECT_TRUE(injector.starts_with("454 4.7.0 ")) << injector;
  EXPECT_EQ(auth(*x, kNobodyWrong), injector) << "the same answer for a name nobody has";
  EXPECT_TRUE(auth(*x, kOtherRight).starts_with("235 2.7.0"));
  EXPECT_EQ(metric(dir, d, "salvo_smtp_auth_refused_total{reason=\"user_budget\"}"), 2.0);
  EXPECT_EQ(metric(dir, d, "salvo_smtp_auth_failures_total"), 6.0);
  EXPECT_EQ(d.stop(), 0);
}

// auth_failure_delay 500 ms on one shard: the first 535 comes 500 ms after the guess, the
// second 1 s after (with the NOOP pipelined behind it answered only then), the third 2 s
// after, with the 421 and the close. While the second is held another client's whole
// transaction is served by the same shard.
TEST(Hostile, AuthFailureDelayHoldsTheReplyNotTheShard) {
  ASSERT_TRUE(CertFactory::shared().ok()) << CertFactory::shared().error();
  TempDir dir;
  Salvod d(dir, auth_options("auth_failure_delay = \"500ms\"\n"));
  ClientTls tls;
  auto a = tls_client(d, "127.0.0.1", tls);
  auto t0 = Clock::now();
  EXPECT_TRUE(auth(*a, kInjectorWrong).starts_with("535 5.7.8"));
  EXPECT_GE(Clock::now() - t0, 500ms);

  t0 = Clock::now();
  a->send(std::string("AUTH PLAIN ") + kInjectorWrong + "\r\nNOOP\r\n");
  ASSERT_NO_FATAL_FAILURE(queue_one(d));
  const auto served = Clock::now() - t0;
  const std::string second = a->read_replies(2);
  const auto answered = Clock::now() - t0;
  EXPECT_LT(served, 1s) << "the other client waited for the held reply";
  EXPECT_GE(answered, 1s);
  EXPECT_TRUE(second.starts_with("535 5.7.8")) << second;
  EXPECT_NE(second.find("\r\n250 2.0.0"), std::string::npos) << second;

  t0 = Clock::now();
  const std::string third = auth(*a, kInjectorWrong);
  EXPECT_GE(Clock::now() - t0, 2s);
  EXPECT_TRUE(third.starts_with("535 5.7.8")) << third;
  EXPECT_TRUE(a->read_reply().starts_with("421 4.7.0"));
  EXPECT_TRUE(a->closed_by_peer());
  EXPECT_EQ(metric(dir, d, "salvo_smtp_auth_failures_total"), 3.0);
  EXPECT_EQ(d.stop(), 0);
}

}  // namespace
}  // namespace salvo::test
