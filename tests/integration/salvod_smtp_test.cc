// SPDX-License-Identifier: Apache-2.0
// salvod end to end: a real daemon on 127.0.0.1:0 with a temp spool, driven by RawClient,
// salvo-blast, Python's smtplib and swaks. Checks 250-after-commit and what the spool
// holds after SIGTERM and restart, relay refusal, AUTH only after STARTTLS, limits,
// smuggling and STARTTLS injection, the per-IP cap and the spool lock.
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <salvo/smtp/data_codec.h>
#include <salvo/spool/recovery.h>
#include <salvo/spool/spool_reader.h>

#include "support/accounting_log.h"
#include "support/cert_factory.h"
#include "support/eventually.h"
#include "support/blast.h"
#include "support/process.h"
#include "support/raw_client.h"
#include "support/salvod.h"

namespace salvo::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// AUTH PLAIN blobs: "\0injector\0s3cret", "\0injector\0wrong", "\0nobody\0s3cret".
constexpr const char* kGoodPlain = "AGluamVjdG9yAHMzY3JldA==";
constexpr const char* kWrongPassword = "AGluamVjdG9yAHdyb25n";
constexpr const char* kUnknownUser = "AG5vYm9keQBzM2NyZXQ=";

// salvod over dir/spool with one [[listen]] entry; listen_keys go into that table.
SalvodOptions smtp_options(const std::string& listen_keys, const std::string& extra = "",
                           int cores = 2,
                           const std::string& node_keys = "spool_reserve = \"0\"\n") {
  SalvodOptions o;
  o.cores = cores;
  o.node_keys = node_keys;
  o.listen_keys = listen_keys;
  o.extra = extra;
  return o;
}

struct SpoolContent {
  std::size_t messages = 0;
  std::size_t recipients = 0;
  std::vector<std::string> bodies;
};

SpoolContent read_spool(const std::string& spool) {
  SpoolContent c;
  for (const auto& item : read_spool_items(spool)) {
    ++c.messages;
    c.recipients += item.recipients.size();
    c.bodies.push_back(item.body);
  }
  return c;
}

json blast(const TempDir& dir, const std::string& target, std::vector<std::string> args) {
  return run_blast(dir, target, args);
}

// Runs a Python script (argv[1..] = args); returns exit status and output.
std::pair<int, std::string> python(const TempDir& dir, const std::string& script,
                                   std::vector<std::string> args) {
  std::string path = dir.file("script-" + std::to_string(args.size()) + ".py");
  std::ofstream(path) << script;
  std::vector<std::string> argv = {"/usr/bin/python3", path};
  argv.insert(argv.end(), args.begin(), args.end());
  Process p(argv, dir.path());
  auto rc = p.wait(60s);
  return {rc.value_or(-1), p.stdout_text() + p.stderr_text()};
}

std::string port_of(const std::string& address) {
  return address.substr(address.rfind(':') + 1);
}

bool starts_with(const std::string& s, std::string_view p) { return s.rfind(p, 0) == 0; }

TEST(Salvod, QueuesOnlyAfterCommitAndRecoversAfterRestart) {
  TempDir dir;
  std::string q_id;
  {
    Salvod d(dir, smtp_options(""));
    RawClient c(d.socket_address());
    EXPECT_TRUE(starts_with(c.read_reply(), "220 salvo.test"));
    c.send("EHLO client.example\r\n");
    EXPECT_TRUE(starts_with(c.read_reply(), "250"));
    c.send("MAIL FROM:<sender@example.com>\r\nRCPT TO:<a@example.org> NOTIFY=SUCCESS,FAILURE\r\n"
           "RCPT TO:<b@example.net>\r\nDATA\r\n");
    std::string r = c.read_replies(4);
    EXPECT_NE(r.find("354"), std::string::npos) << r;
    c.send("Subject: one\r\n\r\nbody line\r\n..dot\r\n.\r\n");
    std::string q = c.read_reply();
    EXPECT_TRUE(starts_with(q, "250 2.0.0 Ok: queued as ")) << q;
    q_id = q.substr(24, 16);
    c.send("QUIT\r\n");
    EXPECT_TRUE(starts_with(c.read_reply(), "221"));
    EXPECT_EQ(d.stop(), 0) << d.process().stderr_text();
    EXPECT_NE(d.process().stderr_text().find("salvod started: shards=2"), std::string::npos);
  }
  SpoolContent s = read_spool(dir.file("spool"));
  ASSERT_EQ(s.messages, 1u);
  EXPECT_EQ(s.recipients, 2u);
  ASSERT_EQ(s.bodies.size(), 1u);
  EXPECT_TRUE(starts_with(s.bodies[0], "Received: from client.example ([127.0.0.1])\r\n\tby "
                                       "salvo.test (salvo) with ESMTP id "))
      << s.bodies[0];
  EXPECT_NE(s.bodies[0].find("\r\n\r\nbody line\r\n.dot\r\n"), std::string::npos) << s.bodies[0];
  // One "received" accounting event per recipient, written by the daemon.
  std::vector<json> events = accounting_events(dir.file("log"));
  ASSERT_EQ(events.size(), 2u);
  std::string queued_id = q_id;
  for (std::size_t i = 0; i < 2; ++i) {
    const json& ev = events[i];
    EXPECT_EQ(ev.at("type"), "received");
    EXPECT_EQ(ev.at("source"), "smtp");
    EXPECT_EQ(ev.at("from"), "sender@example.com");
    EXPECT_EQ(ev.at("ip"), "127.0.0.1");
    EXPECT_EQ(ev.at("id"), queued_id);
    EXPECT_GT(ev.at("size").get<int>(), 0);
    EXPECT_TRUE(ev.at("ts").get<std::string>().ends_with("Z"));
  }
  EXPECT_EQ(events[0].at("rcpt"), "a@example.org");
  EXPECT_EQ(events[0].at("domain"), "example.org");
  EXPECT_EQ(events[1].at("rcpt"), "b@example.net");
  // A restart recovers the message and keeps it.
  Salvod again(dir, smtp_options(""));
  EXPECT_EQ(again.stop(), 0);
  EXPECT_NE(again.process().stderr_text().find("recovered_messages=1"), std::string::npos)
      << again.process().stderr_text();
  EXPECT_EQ(read_spool(dir.file("spool")).messages, 1u);
}

TEST(Salvod, RelayDeniedOutsideRelayNetworks) {
  TempDir dir;
  Salvod d(dir, smtp_options("relay_networks = [\"10.0.0.0/8\"]"));
  RawClient c(d.socket_address());
  c.read_reply();
  c.send("EHLO x\r\n");
  c.read_reply();
  c.send("MAIL FROM:<s@example.com>\r\n");
  EXPECT_TRUE(starts_with(c.read_reply(), "250"));
  for (const char* rcpt : {"<x@gmail.com>", "<user%gmail.com@[127.0.0.1]>", "<\"u@gmail.com\"@salvo.test>",
                           "<@a.example,@b.example:user@gmail.com>", "<postmaster>"}) {
    c.send(std::string("RCPT TO:") + rcpt + "\r\n");
    std::string r = c.read_reply();
    EXPECT_TRUE(r.starts_with("554 5.7.1") || r.starts_with("5")) << rcpt << " -> " << r;
    EXPECT_FALSE(r.starts_with("250")) << rcpt;
  }
  c.send("DATA\r\n");
  EXPECT_TRUE(starts_with(c.read_reply(), "5"));
  c.send("QUIT\r\n");
  c.read_reply();
  EXPECT_EQ(d.stop(), 0);
  EXPECT_EQ(read_spool(dir.file("spool")).messages, 0u);
}

// A short auth_failure_delay keeps these quick; Hostile.AuthFailureDelay* tests the delay.
const std::string kAuthListener =
    "relay_networks = [\"10.0.0.0/8\"]\nstarttls = true\nauth = [\"PLAIN\", \"LOGIN\"]\n"
    "auth_users = { injector = \"s3cret\" }\nauth_failure_delay = \"50ms\"\n";

TEST(Salvod, AuthRefusedBeforeStartTls) {
  ASSERT_TRUE(CertFactory::shared().ok()) << CertFactory::shared().error();
  TempDir dir;
  Salvod d(dir, smtp_options(kAuthListener, tls_section()));
  RawClient c(d.socket_address());
  c.read_reply();
  c.send("EHLO x\r\n");
  std::string caps = c.read_reply();
  EXPECT_NE(caps.find("STARTTLS"), std::string::npos) << caps;
  EXPECT_EQ(caps.find("AUTH"), std::string::npos) << caps;
  c.send(std::string("AUTH PLAIN ") + kGoodPlain + "\r\n");
  std::string r = c.read_reply();
  EXPECT_TRUE(starts_with(r, "530 5.7.0") || starts_with(r, "538")) << r;
  EXPECT_EQ(d.stop(), 0);
}

// Password guessing: twenty AUTH PLAIN guesses pipelined in one write get three 535s,
// then 421 4.7.0 and the connection closed; the policy saw only those three.
TEST(Salvod, PipelinedAuthGuessesStopAtTheThirdFailure) {
  ASSERT_TRUE(CertFactory::shared().ok()) << CertFactory::shared().error();
  TempDir dir;
  Salvod d(dir, smtp_options(kAuthListener, tls_section()));
  net::TlsContextOptions to;
  to.role = net::TlsRole::Client;
  net::TlsContext ctx(to);
  RawClient c(d.socket_address());
  ASSERT_NO_FATAL_FAILURE(start_tls_and_ehlo(c, ctx));
  c.read_reply();
  std::string guesses;
  for (int i = 0; i < 20; ++i) guesses += std::string("AUTH PLAIN ") + kWrongPassword + "\r\n";
  c.send(guesses);
  const std::string replies = c.read_replies(4);
  EXPECT_EQ(std::count(replies.begin(), replies.end(), '\n'), 4) << replies;
  EXPECT_NE(replies.find("535 5.7.8"), std::string::npos) << replies;
  EXPECT_NE(replies.find("421 4.7.0"), std::string::npos) << replies;
  EXPECT_TRUE(c.closed_by_peer());
  Ctl s = salvoctl(dir, d.config_path(), {"status", "--json"});
  EXPECT_EQ(s.j["metrics"].value("salvo_smtp_auth_failures_total", -1.0), 3.0) << s.out;
  EXPECT_EQ(d.stop(), 0);
}

TEST(Salvod, AuthAfterStartTlsAllowsRelay) {
  ASSERT_TRUE(CertFactory::shared().ok()) << CertFactory::shared().error();
  TempDir dir;
  Salvod d(dir, smtp_options(kAuthListener, tls_section()));
  net::TlsContextOptions to;
  to.role = net::TlsRole::Client;
  net::TlsContext ctx(to);
  RawClient c(d.socket_address());
  ASSERT_NO_FATAL_FAILURE(start_tls_and_ehlo(c, ctx));
  std::string caps = c.read_reply();
  EXPECT_NE(caps.find("AUTH PLAIN LOGIN"), std::string::npos) << caps;
  EXPECT_EQ(caps.find("STARTTLS"), std::string::npos) << caps;
  // Unknown user and wrong password: the same reply.
  c.send(std::string("AUTH PLAIN ") + kUnknownUser + "\r\n");
  std::string r1 = c.read_reply();
  c.send(std::string("AUTH PLAIN ") + kWrongPassword + "\r\n");
  std::string r2 = c.read_reply();
  EXPECT_TRUE(starts_with(r1, "535 5.7.8")) << r1;
  EXPECT_EQ(r1, r2);
  c.send("MAIL FROM:<s@example.com>\r\nRCPT TO:<x@gmail.com>\r\n");
  std::string denied = c.read_replies(2);
  EXPECT_NE(denied.find("554 5.7.1"), std::string::npos) << denied;
  c.send("RSET\r\n");
  c.read_reply();
  // AUTH LOGIN: user and password each as a base64 response.
  c.send("AUTH LOGIN\r\n");
  EXPECT_TRUE(starts_with(c.read_reply(), "334"));
  c.send("aW5qZWN0b3I=\r\n");
  EXPECT_TRUE(starts_with(c.read_reply(), "334"));
  c.send("czNjcmV0\r\n");
  std::string login = c.read_reply();
  EXPECT_TRUE(starts_with(login, "235")) << login;
  c.send("MAIL FROM:<s@example.com>\r\nRCPT TO:<x@gmail.com>\r\nDATA\r\n");
  std::string ok = c.read_replies(3);
  EXPECT_NE(ok.find("354"), std::string::npos) << ok;
  c.send("Subject: t\r\n\r\nhi\r\n.\r\n");
  EXPECT_TRUE(starts_with(c.read_reply(), "250 2.0.0 Ok: queued as "));
  c.send("QUIT\r\n");
  c.read_reply();
  // Brute force: the third failure on one connection ends it (421 and close).
  RawClient b(d.socket_address());
  b.read_reply();
  b.send("EHLO x\r\n");
  b.read_reply();
  b.send("STARTTLS\r\n");
  ASSERT_TRUE(starts_with(b.read_reply(), "220"));
  b.start_tls(ctx, "localhost");
  b.send("EHLO x\r\n");
  b.read_reply();
  std::string replies;
  for (int i = 0; i < 3; ++i) {
    b.send(std::string("AUTH PLAIN ") + kWrongPassword + "\r\n");
    replies += b.read_reply();
  }
  replies += b.read_reply();
  EXPECT_NE(replies.find("421"), std::string::npos) << replies;
  EXPECT_TRUE(b.closed_by_peer());
  EXPECT_EQ(d.stop(), 0);
  SpoolContent s = read_spool(dir.file("spool"));
  ASSERT_EQ(s.messages, 1u);
  EXPECT_NE(s.bodies[0].find("with ESMTPSA id"), std::string::npos) << s.bodies[0];
}

TEST(Salvod, PythonSmtplibStartTlsAuth) {
  const auto& certs = CertFactory::shared();
  ASSERT_TRUE(certs.ok()) << certs.error();
  TempDir dir;
  // Credentials from auth_users_file this time.
  Salvod d(dir,
           smtp_options("relay_networks = [\"10.0.0.0/8\"]\nstarttls = true\nauth = [\"PLAIN\", \"LOGIN\"]\n"
           "auth_users_file = \"" SALVO_SOURCE_DIR "/tests/data/salvod/users.txt\"\n",
           tls_section()));
  const std::string script = R"(
import smtplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[3])
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), timeout=20)
s.ehlo('py.example')
assert not s.has_extn('auth'), 'AUTH offered before TLS'
s.starttls(context=ctx)
s.ehlo('py.example')
s.login('py-user', 'py-pass:with-colon')
refused = s.sendmail('py@example.com', ['r1@example.org', 'r2@example.org'],
                     'Subject: py\r\n\r\nfrom python\r\n')
assert refused == {}, refused
s.quit()
print('OK')
)";
  auto [rc, out] = python(dir, script, {"127.0.0.1", port_of(d.address()), certs.ca_cert()});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("OK"), std::string::npos) << out;
  EXPECT_EQ(d.stop(), 0);
  SpoolContent s = read_spool(dir.file("spool"));
  EXPECT_EQ(s.messages, 1u);
  EXPECT_EQ(s.recipients, 2u);
}

TEST(Salvod, SizeAndRecipientLimits) {
  TempDir dir;
  Salvod d(dir, smtp_options("max_message_size = \"2KB\"\nmax_recipients = 3"));
  RawClient c(d.socket_address());
  c.read_reply();
  c.send("EHLO x\r\n");
  std::string caps = c.read_reply();
  EXPECT_NE(caps.find("SIZE 2000"), std::string::npos) << caps;
  c.send("MAIL FROM:<s@example.com> SIZE=5000\r\n");
  EXPECT_TRUE(starts_with(c.read_reply(), "552")) ;
  c.send("MAIL FROM:<s@example.com>\r\n");
  EXPECT_TRUE(starts_with(c.read_reply(), "250"));
  for (int i = 0; i < 3; ++i) {
    c.send("RCPT TO:<r" + std::to_string(i) + "@example.org>\r\n");
    EXPECT_TRUE(starts_with(c.read_reply(), "250"));
  }
  c.send("RCPT TO:<r9@example.org>\r\n");
  std::string too_many = c.read_reply();
  EXPECT_TRUE(starts_with(too_many, "452")) << too_many;
  c.send("DATA\r\n");
  EXPECT_TRUE(starts_with(c.read_reply(), "354"));
  std::string lines;
  for (int i = 0; i < 40; ++i) lines += std::string(75, 'x') + "\r\n";
  c.send("Subject: big\r\n\r\n" + lines + ".\r\n");
  std::string big = c.read_reply();
  EXPECT_TRUE(starts_with(big, "552")) << big;
  c.send("QUIT\r\n");
  c.read_reply();
  EXPECT_EQ(d.stop(), 0);
  EXPECT_EQ(read_spool(dir.file("spool")).messages, 0u);
}

TEST(Salvod, BareLfSmugglingQueuesNothing) {
  TempDir dir;
  Salvod d(dir, smtp_options(""));
  RawClient c(d.socket_address());
  c.read_reply();
  c.send("EHLO x\r\nMAIL FROM:<s@example.com>\r\nRCPT TO:<r@example.org>\r\nDATA\r\n");
  std::string r = c.read_replies(4);
  ASSERT_NE(r.find("354"), std::string::npos) << r;
  c.send("Subject: smuggle\r\n\r\nhello\n.\nMAIL FROM:<ceo@bank.example>\r\n"
         "RCPT TO:<victim@example.org>\r\nDATA\r\nspoofed\r\n.\r\n");
  std::string end = c.read_reply();
  EXPECT_TRUE(starts_with(end, "550 5.5.2")) << end;
  c.send("QUIT\r\n");
  EXPECT_TRUE(starts_with(c.read_reply(), "221"));
  EXPECT_EQ(d.stop(), 0);
  EXPECT_EQ(read_spool(dir.file("spool")).messages, 0u);
}

// A mail loop (RFC 5321 §6.3): a message that has made [delivery] max_hops hops (Received:
// lines) is refused 554 5.4.6 and not queued; one hop fewer is queued (with salvod's own
// Received: it then carries max_hops, so the next pass through a salvod refuses it).
TEST(Salvod, MessageOverMaxHopsIsRefusedAsALoop) {
  TempDir dir;
  SalvodOptions o = smtp_options("");
  o.extra += "\n[delivery]\nmax_hops = 30\n";
  Salvod d(dir, o);
  auto message_with_hops = [](int hops) {
    std::string m;
    for (int i = 0; i < hops; ++i) {
      m += fmt::format("Received: from hop{0}.example by hop{1}.example;\r\n"
                       "\tSat, 5 Dec 2026 09:00:{2:02} +0000\r\n", i, i + 1, i % 60);
    }
    return m + "Subject: loop\r\n\r\nReceived: in the body is not a hop\r\n.\r\n";
  };
  RawClient c(d.socket_address());
  c.read_reply();
  c.send("EHLO x\r\n");
  ASSERT_TRUE(starts_with(c.read_reply(), "250"));
  for (int hops : {30, 29, 31}) {
    c.send("MAIL FROM:<s@example.com>\r\nRCPT TO:<r@example.org>\r\nDATA\r\n");
    std::string r = c.read_replies(3);
    ASSERT_NE(r.find("354"), std::string::npos) << r;
    c.send(message_with_hops(hops));
    std::string end = c.read_reply();
    if (hops >= 30) {
      EXPECT_TRUE(starts_with(end, "554 5.4.6")) << hops << ": " << end;
    } else {
      EXPECT_TRUE(starts_with(end, "250 2.0.0")) << hops << ": " << end;
    }
  }
  c.send("QUIT\r\n");
  EXPECT_TRUE(starts_with(c.read_reply(), "221"));
  Ctl s = salvoctl(dir, d.config_path(), {"status", "--json"});
  EXPECT_EQ(s.j["metrics"].value("salvo_smtp_hops_exceeded_total", -1.0), 2.0) << s.out;
  EXPECT_EQ(d.stop(), 0);
  SpoolContent sp = read_spool(dir.file("spool"));
  ASSERT_EQ(sp.messages, 1u) << "only the 29-hop message";
  EXPECT_EQ(smtp::count_received(sp.bodies[0], 1000), 30u) << "salvod added its own";
}

TEST(Salvod, StartTlsCommandInjectionNeverRuns) {
  ASSERT_TRUE(CertFactory::shared().ok());
  TempDir dir;
  Salvod d(dir, smtp_options("starttls = true", tls_section()));
  RawClient c(d.socket_address());
  c.read_reply();
  c.send("EHLO x\r\n");
  c.read_reply();
  c.send("STARTTLS\r\nMAIL FROM:<injected@example.com>\r\n");
  std::string r = c.read_reply();
  // Reject policy (docs/reliability.md B5): 554 and close, no TLS, the MAIL never runs.
  EXPECT_FALSE(starts_with(r, "250")) << r;
  std::string more = c.read_reply();
  EXPECT_EQ(more.find("250"), std::string::npos) << more;
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_EQ(d.stop(), 0);
}

TEST(Salvod, BlastThenRestartRecoversExactlyN) {
  TempDir dir;
  constexpr int kMessages = 600;
  {
    Salvod d(dir, smtp_options(""));
    json b = blast(dir, d.address(), {"--connections", "6", "--messages",
                                      std::to_string(kMessages), "--rcpts", "2"});
    EXPECT_EQ(b["accepted"], kMessages);
    EXPECT_EQ(b["lost"], 0);
    EXPECT_EQ(d.stop(), 0);
    EXPECT_NE(d.process().stderr_text().find("messages_queued=" + std::to_string(kMessages)),
              std::string::npos)
        << d.process().stderr_text();
  }
  {
    Salvod d(dir, smtp_options(""));
    EXPECT_EQ(d.stop(), 0);
    EXPECT_NE(d.process().stderr_text().find("recovered_messages=" + std::to_string(kMessages)),
              std::string::npos)
        << d.process().stderr_text();
  }
  SpoolContent s = read_spool(dir.file("spool"));
  EXPECT_EQ(s.messages, static_cast<std::size_t>(kMessages));
  EXPECT_EQ(s.recipients, static_cast<std::size_t>(2 * kMessages));
}

// docs/reliability.md E13: SIGTERM under load: every message that got its 250 is in the
// spool; at most the commits in flight at the stop (one per connection) are queued without
// the client having read the 250.
TEST(Salvod, SigtermUnderLoadLosesNothingAcknowledged) {
  TempDir dir;
  constexpr int kConnections = 8;
  Salvod d(dir, smtp_options(""));
  Process b({program_path("salvo-blast"), "--smtp", d.address(), "--json", "--timeout", "30s",
             "--connections", std::to_string(kConnections), "--messages", "200000"},
            dir.path());
  // Stopped under load: once salvod has queued some of it, however slowly blast starts.
  ASSERT_TRUE(eventually(
      [&] {
        Ctl s = salvoctl(dir, d.config_path(), {"status", "--json"});
        return s.rc == 0 && s.j["in"].value("recipients", 0) > 0;
      },
      20s));
  EXPECT_EQ(d.stop(), 0) << d.process().stderr_text();
  auto rc = b.wait(60s);
  ASSERT_TRUE(rc.has_value()) << "salvo-blast did not finish";
  json r = json::parse(b.stdout_text());
  auto accepted = r["accepted"].get<std::size_t>();
  EXPECT_GT(accepted, 0u);
  EXPECT_LT(accepted, 200000u);
  std::size_t queued = read_spool(dir.file("spool")).messages;
  EXPECT_GE(queued, accepted);
  EXPECT_LE(queued, accepted + kConnections);
}

// `cap` connections are greeted; four more (whichever shard the kernel picks) get 421
// 4.7.0 with `refusal` in the text and are closed; once one held connection closes, a new
// one is greeted again (bounded retry: the slot frees when the server has seen the close).
void expect_connection_cap(const Salvod& d, int cap, std::string_view refusal) {
  std::vector<std::unique_ptr<RawClient>> held;
  for (int i = 0; i < cap; ++i) {
    held.push_back(std::make_unique<RawClient>(d.socket_address()));
    EXPECT_TRUE(starts_with(held.back()->read_reply(), "220"));
  }
  for (int i = 0; i < 4; ++i) {
    RawClient extra(d.socket_address());
    std::string r = extra.read_reply();
    EXPECT_TRUE(starts_with(r, "421 4.7.0")) << r;
    EXPECT_NE(r.find(refusal), std::string::npos) << r;
    EXPECT_TRUE(extra.closed_by_peer());
  }
  held.pop_back();
  bool admitted = false;
  for (int attempt = 0; attempt < 50 && !admitted; ++attempt) {
    RawClient again(d.socket_address());
    admitted = starts_with(again.read_reply(), "220");
    if (!admitted) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(admitted);
}

TEST(Salvod, PerIpConnectionCapIsNodeWide) {
  TempDir dir;
  Salvod d(dir, smtp_options("max_connections_per_ip = 3", "", 2));
  expect_connection_cap(d, 3, "421 4.7.0");
  EXPECT_EQ(d.stop(), 0);
}

// [node] max_connections: the node's cap over every listener and shard — beyond it 421
// 4.7.0 at connect (not the per-address refusal: the per-IP cap is far away), and a slot
// frees when a connection closes.
TEST(Salvod, NodeConnectionCapRefusesBeyondIt) {
  TempDir dir;
  Salvod d(dir, smtp_options("", "", 2, "spool_reserve = \"0\"\nmax_connections = 3\n"));
  expect_connection_cap(d, 3, "too many connections, try again later");
  Ctl s = salvoctl(dir, d.config_path(), {"status", "--json"});
  EXPECT_GE(s.j["metrics"].value("salvo_smtp_refused_node_cap_total", -1.0), 4.0) << s.out;
  EXPECT_EQ(s.j["metrics"].value("salvo_smtp_refused_connections_total", -1.0), 0.0);
  EXPECT_EQ(d.stop(), 0);
}

TEST(Salvod, LowSpoolSpaceGives452AtMail) {
  TempDir dir;
  // A reserve larger than any test machine's disk: free_space_ok() is false.
  Salvod d(dir, smtp_options("", "", 1, "spool_reserve = \"1000000GB\"\n"));
  RawClient c(d.socket_address());
  c.read_reply();
  c.send("EHLO x\r\nMAIL FROM:<s@example.com>\r\n");
  std::string r = c.read_replies(2);
  EXPECT_NE(r.find("452 4.3.1 Insufficient system storage"), std::string::npos) << r;
  c.send("QUIT\r\n");
  c.read_reply();
  EXPECT_EQ(d.stop(), 0);
  EXPECT_EQ(read_spool(dir.file("spool")).messages, 0u);
}

// docs/reliability.md C14: the client sends end-of-data and resets the connection before
// the 250; the commit finishes on a session whose connection is gone (no use-after-free;
// the message stays queued: RFC 1047 duplicate window).
std::uint64_t logged_counter(const std::string& log, const std::string& name) {
  auto pos = log.find(name + "=");
  if (pos == std::string::npos) return ~0ull;
  return std::stoull(log.substr(pos + name.size() + 1));
}

TEST(Salvod, ClientLeavesWhileCommitInFlight) {
  TempDir dir;
  Salvod d(dir, smtp_options("", "", 2, "spool_reserve = \"0\"\ncommit_interval = \"50ms\"\n"));
  const std::string script = R"(
import socket, struct, sys, time
for i in range(30):
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    f = s.makefile('rb')
    f.readline()
    s.sendall(b"EHLO x\r\nMAIL FROM:<s@example.com>\r\nRCPT TO:<r@example.org>\r\nDATA\r\n")
    n = 0
    while n < 4:
        line = f.readline()
        assert line, 'closed early'
        if line[3:4] == b' ':
            n += 1
    s.sendall(b"Subject: gone\r\n\r\nbye\r\n.\r\n")
    time.sleep(0.002)
    s.close()  # RST: SO_LINGER 0
print('OK')
)";
  auto [rc, out] = python(dir, script, {"127.0.0.1", port_of(d.address())});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(d.stop(), 0) << d.process().stderr_text();
  std::string log = d.process().stderr_text();
  std::uint64_t queued = logged_counter(log, "messages_queued");
  std::uint64_t orphaned = logged_counter(log, "orphaned_commits");
  EXPECT_GT(orphaned, 0u) << log;
  EXPECT_LE(orphaned, 30u) << log;
  EXPECT_EQ(read_spool(dir.file("spool")).messages, queued) << log;
}

// docs/reliability.md E13: SIGTERM closes the listener and tells idle sessions 421; salvod
// exits 0.
TEST(Salvod, GracefulStopSays421ToOpenSessions) {
  TempDir dir;
  Salvod d(dir, smtp_options(""));
  RawClient c(d.socket_address());
  EXPECT_TRUE(starts_with(c.read_reply(), "220"));
  c.send("EHLO x\r\n");
  c.read_reply();
  d.process().signal(SIGTERM);
  std::string r = c.read_reply();
  EXPECT_TRUE(starts_with(r, "421")) << r;
  EXPECT_TRUE(c.closed_by_peer());
  auto rc = d.process().wait(30s);
  ASSERT_TRUE(rc.has_value());
  EXPECT_EQ(*rc, 0) << d.process().stderr_text();
}

TEST(Salvod, IdleTimeoutAndHardErrorLimitClose) {
  TempDir dir;
  Salvod d(dir, smtp_options("idle_timeout = \"300ms\"\nhard_error_limit = 5"));
  {
    RawClient idle(d.socket_address());
    EXPECT_TRUE(starts_with(idle.read_reply(), "220"));
    auto t0 = std::chrono::steady_clock::now();
    // RFC 5321 §4.5.3.2: the timed-out client is told 421 4.4.2, then the server closes.
    EXPECT_TRUE(starts_with(idle.read_reply(), "421 4.4.2"));
    EXPECT_TRUE(idle.closed_by_peer());
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  }
  RawClient junk(d.socket_address());
  junk.read_reply();
  std::string all;
  for (int i = 0; i < 10 && all.find("421") == std::string::npos; ++i) {
    junk.send("GARBAGE " + std::to_string(i) + "\r\n");
    all += junk.read_reply();
  }
  EXPECT_NE(all.find("421 4.7.0"), std::string::npos) << all;
  EXPECT_TRUE(junk.closed_by_peer());
  EXPECT_EQ(d.stop(), 0);
}

TEST(Salvod, SecondInstanceOnTheSameSpoolRefuses) {
  TempDir dir;
  Salvod d(dir, smtp_options(""));
  std::string cfg = dir.file("second.toml");
  std::ofstream(cfg) << "[node]\nspool = \"" << dir.file("spool") << "\"\ncores = 1\n"
                     << "spool_reserve = \"0\"\n[[listen]]\naddress = \"127.0.0.1:0\"\n";
  Process second({program_path("salvod"), "--config", cfg}, dir.path());
  auto rc = second.wait(20s);
  ASSERT_TRUE(rc.has_value());
  EXPECT_EQ(*rc, 2);
  EXPECT_NE(second.stderr_text().find("in use by another salvod"), std::string::npos)
      << second.stderr_text();
  EXPECT_EQ(d.stop(), 0);
}

TEST(Salvod, ConfigErrorIsOneLineAndExit2) {
  TempDir dir;
  std::string cfg = dir.file("bad.toml");
  std::ofstream(cfg) << "[node]\nspool = \"" << dir.file("spool") << "\"\ncorez = 1\n";
  Process p({program_path("salvod"), "--config", cfg}, dir.path());
  auto rc = p.wait(20s);
  ASSERT_TRUE(rc.has_value());
  EXPECT_EQ(*rc, 2);
  std::string err = p.stderr_text();
  EXPECT_NE(err.find("corez"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_FALSE(fs::exists(dir.file("spool"))) << "nothing half-started";
}

TEST(Salvod, SwaksRelayFromRelayNetwork) {
  ASSERT_TRUE(fs::exists("/usr/bin/swaks")) << "swaks missing: tools/install_deps.sh installs it";
  TempDir dir;
  Salvod d(dir, smtp_options(""));
  Process p({"/usr/bin/swaks", "--server", d.address(), "--from", "swaks@example.com", "--to",
             "r@example.org", "--helo", "swaks.example", "--body", "from swaks"},
            dir.path());
  auto rc = p.wait(60s);
  ASSERT_TRUE(rc.has_value());
  EXPECT_EQ(*rc, 0) << p.stdout_text() << p.stderr_text();
  EXPECT_NE(p.stdout_text().find("250 2.0.0 Ok: queued as"), std::string::npos) << p.stdout_text();
  EXPECT_EQ(d.stop(), 0);
  EXPECT_EQ(read_spool(dir.file("spool")).messages, 1u);
}

// A client that pipelines many BDAT messages in one write gets every reply, in order, and
// each 250 only for a message that is in the spool (replies held behind pending commits).
TEST(Salvod, PipelinedBdatMessagesAreAnsweredInOrder) {
  TempDir dir;
  Salvod d(dir, smtp_options(""));
  RawClient c(d.socket_address());
  ASSERT_TRUE(starts_with(c.read_reply(), "220"));
  c.send("EHLO client.example\r\n");
  ASSERT_NE(c.read_reply().find("CHUNKING"), std::string::npos);
  const int n = 40;
  std::string batch;
  for (int i = 0; i < n; ++i) {
    std::string body = "Subject: bdat " + std::to_string(i) + "\r\n\r\nline\r\n";
    batch += "MAIL FROM:<s@example.com>\r\nRCPT TO:<r" + std::to_string(i) +
             "@example.org>\r\nBDAT " + std::to_string(body.size()) + " LAST\r\n" + body;
  }
  batch += "QUIT\r\n";
  c.send(batch);
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(starts_with(c.read_reply(), "250 2.1.0")) << i;
    ASSERT_TRUE(starts_with(c.read_reply(), "250 2.1.5")) << i;
    std::string q = c.read_reply();
    ASSERT_TRUE(starts_with(q, "250 2.0.0 Ok: queued as ")) << i << ": " << q;
    ids.push_back(q.substr(24, 16));
  }
  EXPECT_TRUE(starts_with(c.read_reply(), "221"));
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end())) << "ids follow the order of the messages";
  EXPECT_EQ(d.stop(), 0);
  SpoolContent sc = read_spool(dir.file("spool"));
  EXPECT_EQ(sc.messages, static_cast<std::size_t>(n));
}

// swaks as an authenticated submitter from outside the relay networks: STARTTLS verified
// against the test CA, then AUTH PLAIN and LOGIN, PIPELINING; and AUTH refused in clear.
TEST(Salvod, SwaksStartTlsAuthPipelining) {
  ASSERT_TRUE(fs::exists("/usr/bin/swaks")) << "swaks missing: tools/install_deps.sh installs it";
  const auto& certs = CertFactory::shared();
  ASSERT_TRUE(certs.ok()) << certs.error();
  TempDir dir;
  Salvod d(dir, smtp_options(kAuthListener, tls_section()));
  for (const char* mech : {"PLAIN", "LOGIN"}) {
    Process p({"/usr/bin/swaks", "--server", d.address(), "--from", "swaks@example.com", "--to",
               std::string("auth-") + mech + "@example.org", "--helo", "swaks.example", "--tls",
               "--tls-verify", "--tls-ca-path", certs.ca_cert(), "--auth", mech,
               "--auth-user", "injector", "--auth-password", "s3cret", "--pipeline", "--body",
               "authenticated"},
              dir.path());
    auto rc = p.wait(60s);
    ASSERT_TRUE(rc.has_value());
    std::string out = p.stdout_text();
    EXPECT_EQ(*rc, 0) << out << p.stderr_text();
    EXPECT_NE(out.find("220 2.0.0 Ready to start TLS"), std::string::npos) << out;
    EXPECT_NE(out.find("235 2.7.0"), std::string::npos) << out;
    EXPECT_NE(out.find("250 2.0.0 Ok: queued as"), std::string::npos) << out;
  }
  // No STARTTLS: AUTH is not offered, swaks gives up, nothing is relayed.
  Process clear({"/usr/bin/swaks", "--server", d.address(), "--from", "swaks@example.com",
                 "--to", "clear@example.org", "--auth", "PLAIN", "--auth-user", "injector",
                 "--auth-password", "s3cret"},
                dir.path());
  auto rc = clear.wait(60s);
  ASSERT_TRUE(rc.has_value());
  EXPECT_NE(*rc, 0) << clear.stdout_text();
  EXPECT_EQ(clear.stdout_text().find("queued as"), std::string::npos) << clear.stdout_text();
  EXPECT_EQ(d.stop(), 0);
  SpoolContent sc = read_spool(dir.file("spool"));
  EXPECT_EQ(sc.messages, 2u);
}

}  // namespace
}  // namespace salvo::test
