// SPDX-License-Identifier: Apache-2.0
// salvo-blast -> salvo-sink over real loopback sockets: counts match exactly on both sides,
// each fault mode gives the expected counts on both sides, STARTTLS with certificates
// made at test time, and bad input to the sink gets the right reply without a crash.
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>

#include <algorithm>
#include <stdexcept>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/cert_factory.h"
#include "support/blast.h"
#include "support/process.h"
#include "support/raw_client.h"
#include "support/sink.h"

namespace salvo::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

json blast(const TempDir& dir, const std::string& target, std::vector<std::string> args) {
  return run_blast(dir, target, args);
}

TEST(SinkBlast, CountsMatchExactly) {
  TempDir dir;
  Sink sink(dir, {"--listen", "127.0.0.1:0"});
  json b = blast(dir, sink.address(), {"--connections", "8", "--messages", "3000", "--rcpts", "3"});
  json s = sink.stop();
  EXPECT_EQ(b["accepted"], 3000);
  EXPECT_EQ(b["messages"], 3000);
  EXPECT_EQ(b["recipients"]["accepted"], 9000);
  EXPECT_EQ(b["lost"], 0);
  EXPECT_EQ(s["messages"], 3000);
  EXPECT_EQ(s["recipients"], 9000);
  EXPECT_EQ(s["bytes"], b["bytes"]);
  EXPECT_GE(s["listeners"][0]["peak_connections"].get<int>(), 1);
  EXPECT_LE(s["listeners"][0]["peak_connections"].get<int>(), 8);
  EXPECT_GT(s["listeners"][0]["peak_msgs_per_s"].get<int>(), 0);
}

TEST(SinkBlast, ProgressFileReachesTheExactCounts) {
  TempDir dir;
  Sink sink(dir, {"--listen", "127.0.0.2:0", "--listen", "127.0.0.3:0"});
  EXPECT_EQ(sink.progress_messages(), 0);  // written before the first connection
  json b1 = blast(dir, sink.address(0), {"--connections", "4", "--messages", "1500", "--rcpts", "3"});
  json b2 = blast(dir, sink.address(1), {"--connections", "3", "--messages", "700", "--size", "10KB"});
  ASSERT_EQ(b1["accepted"], 1500);
  ASSERT_EQ(b2["accepted"], 700);
  // Every 250 has been read by blast, so the running totals are final: over both listeners
  // and both cores, while the sink still runs.
  EXPECT_TRUE(sink.wait_messages(2200, 10s)) << sink.progress().dump();
  const std::uint64_t bytes = b1["bytes"].get<std::uint64_t>() + b2["bytes"].get<std::uint64_t>();
  const std::uint64_t rcpts = b1["recipients"]["accepted"].get<std::uint64_t>() +
                              b2["recipients"]["accepted"].get<std::uint64_t>();
  json running = sink.progress();
  EXPECT_EQ(running["messages"], 2200) << running.dump();
  EXPECT_EQ(running["recipients"], rcpts) << running.dump();
  EXPECT_EQ(running["bytes"], bytes) << running.dump();
  EXPECT_FALSE(sink.wait_messages(2201, 300ms));  // bounded, and nothing more arrives
  json s = sink.stop();
  EXPECT_EQ(s["messages"], 2200);
  // The last write at exit carries the report's totals.
  json last = sink.progress();
  EXPECT_EQ(last["messages"], s["messages"]);
  EXPECT_EQ(last["recipients"], s["recipients"]);
  EXPECT_EQ(last["bytes"], s["bytes"]);
}

TEST(SinkBlast, NoPipeliningAndLargeMessages) {
  TempDir dir;
  Sink sink(dir, {"--listen", "127.0.0.1:0"});
  json a = blast(dir, sink.address(), {"--connections", "4", "--messages", "500", "--no-pipelining"});
  json b = blast(dir, sink.address(), {"--connections", "2", "--messages", "100", "--size", "200KB"});
  json s = sink.stop();
  EXPECT_EQ(a["accepted"], 500);
  EXPECT_EQ(b["accepted"], 100);
  EXPECT_EQ(s["messages"], 600);
  EXPECT_EQ(s["bytes"].get<std::uint64_t>(),
            a["bytes"].get<std::uint64_t>() + b["bytes"].get<std::uint64_t>());
}

TEST(SinkBlast, ManyListenersCountSeparately) {
  TempDir dir;
  Sink sink(dir, {"--listen", "127.0.0.2:0", "--listen", "127.0.0.3:0"});
  json b1 = blast(dir, sink.address(0), {"--connections", "3", "--messages", "700"});
  json b2 = blast(dir, sink.address(1), {"--connections", "5", "--messages", "300"});
  json s = sink.stop();
  EXPECT_EQ(b1["accepted"], 700);
  EXPECT_EQ(b2["accepted"], 300);
  ASSERT_EQ(s["listeners"].size(), 2u);
  EXPECT_EQ(s["listeners"][0]["address"], sink.address(0));
  EXPECT_EQ(s["listeners"][0]["messages"], 700);
  EXPECT_EQ(s["listeners"][1]["messages"], 300);
  EXPECT_LE(s["listeners"][0]["peak_connections"].get<int>(), 3);
  EXPECT_LE(s["listeners"][1]["peak_connections"].get<int>(), 5);
}

TEST(SinkBlast, DeferAndRejectRatesCountOnBothSides) {
  TempDir dir;
  // One shard so the deterministic rate accumulator gives exact totals.
  Sink sink(dir, {"--cores", "1", "--listen", "127.0.0.1:0,defer-rate=0.1,reject-rate=0.2"});
  json b = blast(dir, sink.address(), {"--connections", "4", "--messages", "1000", "--rcpts", "2"});
  json s = sink.stop();
  // 2000 recipients: exactly 400 rejected, and 10% of the other 1600 deferred.
  EXPECT_EQ(s["rejected"], 400);
  EXPECT_EQ(s["deferred"], 160);
  EXPECT_EQ(b["recipients"]["rejected"], s["rejected"]);
  EXPECT_EQ(b["recipients"]["deferred"], s["deferred"]);
  EXPECT_EQ(b["recipients"]["accepted"], s["recipients"]);
  EXPECT_EQ(s["recipients"], 2000 - 400 - 160);
  EXPECT_EQ(b["accepted"], s["messages"]);
}

TEST(SinkBlast, DeferStatusIsConfigurablePerListener) {
  TempDir dir;
  Sink sink(dir, {"--cores", "1", "--listen", "127.0.0.1:0,defer-rate=1,defer-status=4.3.0",
                  "--listen", "127.0.0.2:0,defer-rate=1"});
  for (std::size_t i = 0; i < 2; ++i) {
    RawClient c(sink.socket_address(i));
    EXPECT_EQ(c.read_reply().substr(0, 4), "220 ");
    c.send("EHLO x\r\n");
    c.read_reply();
    c.send("MAIL FROM:<a@example.com>\r\n");
    EXPECT_EQ(c.read_reply().substr(0, 3), "250");
    c.send("RCPT TO:<b@example.com>\r\n");
    EXPECT_EQ(c.read_reply().substr(0, 9), i == 0 ? "451 4.3.0" : "451 4.7.1");
    c.send("QUIT\r\n");
    c.read_reply();
  }
  json s = sink.stop();
  EXPECT_EQ(s["deferred"], 2);
}

TEST(SinkBlast, DropRateLosesExactlyTheDroppedMessages) {
  TempDir dir;
  Sink sink(dir, {"--cores", "1", "--listen", "127.0.0.1:0,drop-rate=0.05"});
  // Without pipelining nothing rides behind a dropped message: exact counts.
  json b = blast(dir, sink.address(), {"--connections", "4", "--messages", "1000", "--no-pipelining"});
  json s = sink.stop();
  EXPECT_EQ(s["dropped"], 50);
  EXPECT_EQ(s["messages"], 950);
  EXPECT_EQ(b["accepted"], s["messages"]);
  EXPECT_EQ(b["lost"], s["dropped"]);
  EXPECT_GE(b["connections"].get<int>(), 50);  // reconnected after drops
}

TEST(SinkBlast, DropRateWithPipelining) {
  TempDir dir;
  Sink sink(dir, {"--cores", "1", "--listen", "127.0.0.1:0,drop-rate=0.05"});
  json b = blast(dir, sink.address(), {"--connections", "4", "--messages", "1000"});
  json s = sink.stop();
  EXPECT_GT(s["dropped"].get<int>(), 0);
  EXPECT_EQ(b["accepted"], s["messages"]);
  // A dropped message is lost to the client, and so is anything pipelined behind it.
  EXPECT_GE(b["lost"].get<int>(), s["dropped"].get<int>());
  EXPECT_EQ(b["accepted"].get<int>() + b["lost"].get<int>(), 1000);
}

TEST(SinkBlast, ThrottleAfterNMessagesPerConnection) {
  TempDir dir;
  Sink sink(dir, {"--listen", "127.0.0.1:0", "--421-after", "10"});
  json b = blast(dir, sink.address(), {"--connections", "2", "--messages", "200", "--no-pipelining"});
  json s = sink.stop();
  EXPECT_EQ(s["messages"].get<int>() , b["accepted"].get<int>());
  EXPECT_GT(s["throttled"].get<int>(), 0);
  EXPECT_EQ(b["deferred"], s["throttled"]);  // each 421 ends one transaction as deferred
  EXPECT_EQ(b["accepted"].get<int>() + b["deferred"].get<int>(), 200);
  // Every connection carried at most 10 messages.
  EXPECT_GE(s["connections"].get<int>() * 10, s["messages"].get<int>());
}

TEST(SinkBlast, LatencyFaultStillCountsExactly) {
  TempDir dir;
  Sink sink(dir, {"--listen", "127.0.0.1:0,latency=5ms"});
  json b = blast(dir, sink.address(), {"--connections", "4", "--messages", "100"});
  json s = sink.stop();
  EXPECT_EQ(b["accepted"], 100);
  EXPECT_EQ(s["messages"], 100);
  EXPECT_GE(b["latency_ms"]["p50"].get<double>(), 4.5);
}

TEST(SinkBlast, StartTlsBetweenThem) {
  const auto& certs = CertFactory::shared();
  ASSERT_TRUE(certs.ok()) << certs.error();
  TempDir dir;
  Sink sink(dir, {"--listen", "127.0.0.1:0", "--tls-cert", certs.server_cert(), "--tls-key",
                  certs.server_key()});
  json b = blast(dir, sink.address(),
                 {"--connections", "4", "--messages", "400", "--starttls", "--tls-ca", certs.ca_cert()});
  json s = sink.stop();
  EXPECT_EQ(b["accepted"], 400);
  EXPECT_EQ(s["messages"], 400);
  EXPECT_EQ(b["tls_sessions"], 4);
  EXPECT_EQ(s["listeners"][0]["tls_sessions"], 4);
}

TEST(SinkBlast, MaildirKeepsWhatArrived) {
  TempDir dir;
  Sink sink(dir, {"--listen", "127.0.0.1:0", "--maildir", dir.file("md")});
  json b = blast(dir, sink.address(), {"--connections", "2", "--messages", "20", "--rcpts", "2"});
  sink.stop();
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.file("md/new"))) {
    std::string text = read_file(e.path().string());
    EXPECT_NE(text.find("Return-Path: <blast@sender.example>\r\n"), std::string::npos);
    EXPECT_NE(text.find("Delivered-To: u"), std::string::npos);
    EXPECT_NE(text.find("Subject: salvo-blast test message"), std::string::npos);
    ++files;
  }
  EXPECT_EQ(files, 20);
}

TEST(SinkBadInput, OverLongLineBareLfAndInjection) {
  const auto& certs = CertFactory::shared();
  ASSERT_TRUE(certs.ok()) << certs.error();
  TempDir dir;
  Sink sink(dir, {"--cores", "1", "--listen", "127.0.0.1:0", "--tls-cert", certs.server_cert(),
                  "--tls-key", certs.server_key()});
  {
    RawClient c(sink.socket_address());
    EXPECT_EQ(c.read_reply().substr(0, 4), "220 ");
    c.send("EHLO x\r\n");
    EXPECT_NE(c.read_reply().find("250 "), std::string::npos);
    c.send("MAIL FROM:<" + std::string(2000, 'a') + "@example.com>\r\n");
    EXPECT_EQ(c.read_reply().substr(0, 9), "500 5.5.2");
    // The session is still usable.
    c.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
    std::string r = c.read_replies(3);
    EXPECT_NE(r.find("354"), std::string::npos) << r;
    c.send("Subject: smuggle\r\n\r\nline\n.\nMAIL FROM:<evil@example.com>\r\n.\r\n");
    EXPECT_EQ(c.read_reply().substr(0, 9), "550 5.5.2");
    c.send("NOOP\r\n");
    EXPECT_EQ(c.read_reply().substr(0, 3), "250");
  }
  {
    // Pipelining before STARTTLS completes: the injected MAIL must never run.
    RawClient c(sink.socket_address());
    c.read_reply();
    c.send("EHLO x\r\n");
    c.read_reply();
    c.send("STARTTLS\r\nMAIL FROM:<injected@example.com>\r\n");
    EXPECT_EQ(c.read_reply().substr(0, 3), "220");
    net::TlsContextOptions to;
    to.role = net::TlsRole::Client;
    net::TlsContext ctx(to);
    c.start_tls(ctx, "localhost");
    c.send("EHLO x\r\n");
    std::string ehlo = c.read_reply();
    EXPECT_EQ(ehlo.find("STARTTLS"), std::string::npos) << ehlo;
    c.send("RCPT TO:<b@example.com>\r\n");
    EXPECT_EQ(c.read_reply().substr(0, 3), "503");  // no MAIL: the injected one was dropped
    c.send("QUIT\r\n");
    EXPECT_EQ(c.read_reply().substr(0, 3), "221");
  }
  {
    // Garbage and a flood of errors: 421 and close, no crash.
    RawClient c(sink.socket_address());
    c.read_reply();
    std::string junk;
    for (int i = 0; i < 30; ++i) junk += "\x80\x81 garbage\r\n";
    c.send(junk);
    std::string all = c.read_replies(30);
    EXPECT_NE(all.find("421 4.7.0"), std::string::npos);
    EXPECT_TRUE(c.closed_by_peer());
  }
  // Still alive and counting.
  json b = blast(dir, sink.address(), {"--connections", "2", "--messages", "50"});
  json s = sink.stop();
  EXPECT_EQ(b["accepted"], 50);
  EXPECT_EQ(s["messages"], 50);
}

TEST(SinkCli, BadFlagsExitTwoWithOneLine) {
  TempDir dir;
  Process p({program_path("salvo-sink"), "--listen", "127.0.0.1:0,frobnicate=1"}, dir.path());
  EXPECT_EQ(p.wait(10s).value_or(-1), 2);
  EXPECT_NE(p.stderr_text().find("frobnicate=1: unknown listener option"), std::string::npos)
      << p.stderr_text();
  Process q({program_path("salvo-blast"), "--messages", "5"}, dir.path());
  EXPECT_EQ(q.wait(10s).value_or(-1), 2);
  EXPECT_NE(q.stderr_text().find("--smtp"), std::string::npos) << q.stderr_text();
}


// Runs argv with io_uring_setup refused by a seccomp filter (ENOSYS), as on a kernel
// without io_uring or a container that blocks it. Returns (exit code, stderr).
std::pair<int, std::string> run_without_io_uring(const std::vector<std::string>& argv,
                                                 const TempDir& dir) {
  std::string err_path = dir.file("no-uring.err");
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 2);
    ::dup2(::open("/dev/null", O_WRONLY), 1);
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
      ::_exit(99);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(98);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), read_file(err_path)};
}

TEST(SinkCli, WithoutIoUringOneLineAndExitTwo) {
  TempDir dir;
  for (const auto& argv : std::vector<std::vector<std::string>>{
           {program_path("salvo-sink"), "--listen", "127.0.0.1:0"},
           {program_path("salvo-blast"), "--smtp", "127.0.0.1:9", "--messages", "1"}}) {
    auto [rc, err] = run_without_io_uring(argv, dir);
    EXPECT_EQ(rc, 2) << err;
    EXPECT_NE(err.find("io_uring unavailable"), std::string::npos) << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  }
}

}  // namespace
}  // namespace salvo::test
