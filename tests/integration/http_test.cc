// SPDX-License-Identifier: Apache-2.0
// salvod's HTTP surface against a running salvod: /metrics parsed
// by Debian's python3-prometheus-client (its parser rejects malformed exposition text) with
// the numbers checked against what was sent, /api/v1/inject (202 with the id after the
// commit, the job delivered; 4xx with a JSON error for bad input, nothing queued), and the
// dashboard loaded in Debian's headless Chromium, its numbers compared with
// `salvoctl status --json` and a screenshot saved (test-artifacts/dashboard.png). Every
// request carries a bearer token of [http] token_file (the page takes it as #token=...).
// Real parts: salvod, unbound serving the MX records, salvo-sink MX hosts, TCP on loopback.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/blast.h"
#include "support/eventually.h"
#include "support/http_client.h"
#include "support/process.h"
#include "support/salvod.h"
#include "support/sink.h"
#include "support/unbound_server.h"

namespace salvo::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// Every request carries this token (the token file's only line); the refusals are
// http_auth_test.cc's subject.
const std::string kToken = "it-http-test-0123456789abcdef";

// One request with the test's token on a fresh connection ("Connection: close"), read to
// EOF, bounded by 10 s. raw: sent as is instead of a request built from method/path/body.
HttpResult http(std::uint16_t port, const std::string& method, const std::string& path,
                const std::string& body = "", const std::string& raw = "") {
  if (!raw.empty()) return http_raw(port, raw);
  HttpCall c;
  c.method = method;
  c.path = path;
  c.body = body;
  c.token = kToken;
  return http_call(port, c);
}

// Parses Prometheus text with prometheus_client's parser; returns {"name{k=v,...}": value}
// (labels sorted), or a JSON string with the parser's error.
json parse_metrics(const TempDir& dir, const std::string& text) {
  const std::string in = dir.file("metrics.txt");
  std::ofstream(in) << text;
  const std::string script = R"(
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
try:
    for fam in text_string_to_metric_families(open(sys.argv[1]).read()):
        for s in fam.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
except Exception as e:
    print(json.dumps("parse error: " + repr(e)))
    sys.exit(0)
print(json.dumps(out))
)";
  Process p({"/usr/bin/python3", "-c", script, in}, dir.path());
  if (p.wait(30s).value_or(-1) != 0) return json("python3 failed: " + p.stderr_text());
  return json::parse(p.stdout_text(), nullptr, false);
}

UnboundOptions zones() {
  UnboundOptions o;
  o.static_zones = {"test."};
  o.local_data = {
      "d0.ok.test. 300 IN MX 10 mx.ok.test.",       "mx.ok.test. 300 IN A 127.0.0.3",
      "d0.bad.test. 300 IN MX 10 mx.bad.test.",     "mx.bad.test. 300 IN A 127.0.0.5",
      "sender.test. 300 IN MX 10 mx.sender.test.",  "mx.sender.test. 300 IN A 127.0.0.4",
  };
  return o;
}

// MX hosts on one port: 127.0.0.3 accepts, 127.0.0.5 rejects every recipient (550 5.1.1),
// 127.0.0.4 takes the DSNs.
struct Env {
  TempDir dir;
  std::unique_ptr<UnboundServer> dns;
  std::uint16_t port = free_loopback_port();
  std::uint16_t http_port = free_loopback_port();
  std::unique_ptr<Sink> mx, bad, senders;

  Env() {
    dns = std::make_unique<UnboundServer>(zones());
    if (!dns->started()) throw std::runtime_error("unbound: " + dns->error());
    mx = std::make_unique<Sink>(
        dir, std::vector<std::string>{"--cores", "1", "--listen", fmt::format("127.0.0.3:{}", port)});
    bad = std::make_unique<Sink>(
        dir, std::vector<std::string>{"--cores", "1", "--listen",
                                      fmt::format("127.0.0.5:{},reject-rate=1", port)});
    senders = std::make_unique<Sink>(
        dir, std::vector<std::string>{"--cores", "1", "--listen", fmt::format("127.0.0.4:{}", port)});
  }
  SalvodOptions salvod(const std::string& http_more = "") const {
    const std::string tokens =
        write_secret_file(dir, "http-tokens", "# the test's token\n" + kToken + "\n", 0600);
    SalvodOptions o;
    o.hold_delivery = false;
    o.extra = fmt::format(
        "[dns]\nresolvers = [\"{}\"]\ntimeout = \"1s\"\n[delivery]\nsmtp_port = {}\n"
        "retry_schedule = [\"1s\"]\nbackoff_pause = \"100ms\"\n[http]\naddress = \"127.0.0.1:{}\"\n"
        "token_file = \"{}\"\n{}\n",
        dns->address(), port, http_port, tokens, http_more);
    return o;
  }
  json blast(const Salvod& d, int n, const std::string& suffix) const {
    return run_blast(dir, d.address(), {"--connections", "2", "--messages", std::to_string(n),
                                        "--from", "shop@sender.test", "--domains", "1",
                                        "--domain-suffix", suffix});
  }
};

double metric(const json& m, const std::string& key) {
  if (!m.is_object() || !m.contains(key)) return -1;
  return m[key].get<double>();
}

TEST(Http, MetricsParseStrictlyAndCountWhatHappened) {
  Env env;
  Salvod d(env.dir, env.salvod());
  ASSERT_EQ(env.blast(d, 150, "ok.test")["accepted"], 150);
  ASSERT_EQ(env.blast(d, 20, "bad.test")["accepted"], 20);
  ASSERT_TRUE(env.mx->wait_messages(150, 20s));
  ASSERT_TRUE(env.senders->wait_messages(20, 20s))  // the 20 DSNs
      << salvoctl(env.dir, d.config_path(), {"domains", "--json"}).j.dump(1) << d.log();
  // Settled before the numbers are compared: every outcome counted, nothing left in the
  // queue or the spool, the injecting connections closed.
  json m;
  ASSERT_TRUE(eventually(
      [&] {
        HttpResult r = http(env.http_port, "GET", "/metrics");
        if (r.status != 200) return false;
        m = parse_metrics(env.dir, r.body);
        return m.is_object() &&
               metric(m, "salvo_delivery_outcomes_total{class=*,outcome=delivered}") == 170 &&
               metric(m, "salvo_delivery_outcomes_total{class=*,outcome=bounced}") == 20 &&
               metric(m, "salvo_dsns_total{}") == 20 &&
               metric(m, "salvo_queue_recipients{state=ready}") == 0 &&
               metric(m, "salvo_spool_recipients{}") == 0 &&
               metric(m, "salvo_connections{direction=in,protocol=smtp}") == 0;
      },
      20s))
      << m.dump(1);
  HttpResult r = http(env.http_port, "GET", "/metrics");
  EXPECT_NE(r.headers.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  EXPECT_EQ(metric(m, "salvo_received_recipients_total{source=smtp}"), 170);
  EXPECT_EQ(metric(m, "salvo_received_messages_total{source=smtp}"), 170);
  EXPECT_EQ(metric(m, "salvo_received_recipients_total{source=http}"), 0);
  // 150 + the 20 DSNs delivered; the 20 to bad.test bounced.
  EXPECT_EQ(metric(m, "salvo_delivery_outcomes_total{class=*,outcome=bounced}"), 20);
  EXPECT_EQ(metric(m, "salvo_delivery_outcomes_total{class=*,outcome=expired}"), 0);
  EXPECT_EQ(metric(m, "salvo_dsns_total{}"), 20);
  EXPECT_EQ(metric(m, "salvo_queue_recipients{state=ready}"), 0);
  EXPECT_EQ(metric(m, "salvo_spool_recipients{}"), 0);
  // Every SMTP message was answered after a commit: 170 end-of-data -> 250 latencies, each
  // counted in a bucket (cumulative: the +Inf bucket holds them all).
  EXPECT_EQ(metric(m, "salvo_smtp_end_of_data_reply_seconds_count{}"), 170);
  EXPECT_EQ(metric(m, "salvo_smtp_end_of_data_reply_seconds_bucket{le=+Inf}"), 170);
  EXPECT_GT(metric(m, "salvo_smtp_end_of_data_reply_seconds_sum{}"), 0);
  EXPECT_GT(metric(m, "salvo_spool_fsync_seconds_count{}"), 0);
  EXPECT_GE(metric(m, "salvo_spool_fsync_seconds_bucket{le=30}"),
            metric(m, "salvo_spool_fsync_seconds_bucket{le=0.001}"));
  // Three domains resolved (d0.ok.test, d0.bad.test, sender.test).
  EXPECT_GE(metric(m, "salvo_dns_mx_cache_lookups_total{result=miss}"), 3);
  // Each destination resolved once and kept its hosts: hits only come with later lookups.
  EXPECT_GE(metric(m, "salvo_dns_mx_cache_lookups_total{result=hit}"), 0);
  EXPECT_GT(metric(m, "salvo_dns_queries_total{}"), 0);
  EXPECT_EQ(metric(m, "salvo_shard_up{shard=0}"), 1);
  EXPECT_EQ(metric(m, "salvo_shard_up{shard=1}"), 1);
  // Utilisation is reported once two once-a-second samples exist (salvod may have run for
  // less than a second here, as in a fast run).
  double u = -1;
  EXPECT_TRUE(eventually(
      [&] {
        json again = parse_metrics(env.dir, http(env.http_port, "GET", "/metrics").body);
        u = metric(again, "salvo_shard_loop_utilisation{shard=0}");
        return u != -1;
      },
      5s));
  EXPECT_GE(u, 0.0);
  EXPECT_LE(u, 1.0);
  EXPECT_GT(metric(m, "salvo_shard_blocked_seconds_total{shard=1}"), 0);
  EXPECT_EQ(metric(m, "salvo_connections{direction=in,protocol=smtp}"), 0);
  EXPECT_GE(metric(m, "salvo_connections{direction=in,protocol=http}"), 1);  // this scrape
  // Keep-alive: two requests on one connection, answered in order.
  const std::string auth = "Authorization: Bearer " + kToken + "\r\n";
  HttpResult two = http(
      env.http_port, "", "", "",
      "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth +
          "\r\nGET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth +
          "Connection: close\r\n\r\n");
  EXPECT_EQ(two.status, 200);
  EXPECT_NE(two.body.find("HTTP/1.1 200 OK"), std::string::npos);
  EXPECT_NE(two.body.find("\"status\":"), std::string::npos);
  EXPECT_EQ(d.stop(), 0);
}

std::string job(int recipients, const std::string& domain) {
  json j;
  j["from"] = "news@sender.test";
  j["job"] = "api-test";
  j["content"] =
      "From: News <news@sender.test>\nTo: {{name}} <{{email}}>\nSubject: hello {{name}}\n\n"
      "Hi {{name}}.\n";
  j["recipients"] = json::array();
  for (int i = 0; i < recipients; ++i) {
    j["recipients"].push_back(
        json{{"email", fmt::format("user{}@{}", i, domain)}, {"vars", {{"name", fmt::format("U{}", i)}}}});
  }
  return j.dump();
}

TEST(Http, InjectQueuesAJobAfterTheCommitAndDeliversIt) {
  Env env;
  Salvod d(env.dir, env.salvod());
  HttpResult r = http(env.http_port, "POST", "/api/v1/inject", job(25, "d0.ok.test"));
  ASSERT_EQ(r.status, 202) << r.headers << r.body;
  json j = json::parse(r.body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.body;
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["recipients"], 25);
  const std::string id = j.value("id", "");
  ASSERT_EQ(id.size(), 16u) << r.body;
  ASSERT_TRUE(env.mx->wait_messages(25, 20s));
  // The id is the job's: salvoctl trace finds its accounting lines (received, delivered).
  json t;
  ASSERT_TRUE(eventually(
      [&] {
        t = salvoctl(env.dir, d.config_path(), {"trace", id, "--json"}).j;
        if (!t.is_object() || !t.contains("events")) return false;
        int delivered = 0;
        for (const auto& e : t["events"]) delivered += e.value("type", "") == "delivered";
        return delivered == 25;
      },
      10s))
      << t.dump(1);
  json s = salvoctl(env.dir, d.config_path(), {"status", "--json"}).j;
  EXPECT_EQ(s["in"]["recipients"], 25);
  // curl's way for larger bodies: "Expect: 100-continue", then the body after the 100.
  const std::string body = job(3, "d0.ok.test");
  HttpResult c = http(env.http_port, "", "", "",
                      fmt::format("POST /api/v1/inject HTTP/1.1\r\nHost: localhost\r\n"
                                  "Connection: close\r\n"
                                  "Authorization: Bearer {}\r\nContent-Type: application/json\r\n"
                                  "Expect: 100-continue\r\nContent-Length: {}\r\n\r\n{}",
                                  kToken, body.size(), body));
  EXPECT_EQ(c.status, 100) << c.headers;
  EXPECT_NE(c.body.find("HTTP/1.1 202 Accepted"), std::string::npos) << c.body;
  ASSERT_TRUE(env.mx->wait_messages(28, 20s));
  // A job larger than one parsing step (256 KiB) and than one recipient batch (1000).
  const std::string big = job(12000, "d0.ok.test");
  ASSERT_GT(big.size(), 2u * 256 * 1024);
  HttpResult b = http(env.http_port, "POST", "/api/v1/inject", big);
  ASSERT_EQ(b.status, 202) << b.body;
  EXPECT_EQ(json::parse(b.body)["recipients"], 12000);
  ASSERT_TRUE(env.mx->wait_messages(12028, 60s));
  HttpResult m = http(env.http_port, "GET", "/metrics");
  json pm = parse_metrics(env.dir, m.body);
  EXPECT_EQ(metric(pm, "salvo_received_recipients_total{source=http}"), 12028) << pm.dump(1);
  EXPECT_EQ(metric(pm, "salvo_received_messages_total{source=http}"), 3);
  EXPECT_EQ(d.stop(), 0);
  EXPECT_EQ(d.log_number("injected_messages"), 3) << d.log();
  EXPECT_EQ(d.log_number("injected_recipients"), 12028);
  // The accounting log names the source.
  bool http_source = false;
  for (const auto& e : t["events"]) http_source |= e.value("source", "") == "http";
  EXPECT_TRUE(http_source) << t.dump(1);
}

TEST(Http, BadRequestsGetClearErrorsAndQueueNothing) {
  Env env;
  Salvod d(env.dir, env.salvod("max_request_size = \"4KiB\""));
  auto expect_error = [&](const HttpResult& r, int status, const std::string& words) {
    EXPECT_EQ(r.status, status) << r.headers << r.body;
    json j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.body;
    EXPECT_EQ(j["ok"], false);
    EXPECT_NE(j.value("error", "").find(words), std::string::npos) << r.body;
  };
  expect_error(http(env.http_port, "POST", "/api/v1/inject", "{\"from\": \"a@b.test\", "),
               400, "");
  expect_error(http(env.http_port, "POST", "/api/v1/inject", "[1, 2]"), 400, "");
  // A job without content names the field.
  expect_error(http(env.http_port, "POST", "/api/v1/inject",
                    R"({"from": "a@sender.test", "recipients": [{"email": "x@d0.ok.test"}]})"),
               400, "content");
  // A bad recipient address names the element.
  expect_error(http(env.http_port, "POST", "/api/v1/inject",
                    R"({"from": "a@sender.test", "content": "Subject: x\n\nhi\n",
                        "recipients": [{"email": "not an address"}]})"),
               400, "recipients[0]");
  expect_error(http(env.http_port, "POST", "/api/v1/inject", ""), 400, "");
  expect_error(http(env.http_port, "GET", "/api/v1/inject"), 405, "POST");
  expect_error(http(env.http_port, "POST", "/api/v1/inject", job(200, "d0.ok.test")), 413,
               "max_request_size");
  expect_error(http(env.http_port, "GET", "/no/such/page"), 404, "/no/such/page");
  expect_error(http(env.http_port, "", "", "", "GARBAGE\r\n\r\n"), 400, "malformed");
  // Bytes that are not UTF-8 in the path and in a job: clear errors (the JSON answer says
  // U+FFFD for them), never a crash.
  expect_error(http(env.http_port, "", "", "",
                    "GET /caf\xe9\xff HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                    "Authorization: Bearer " + kToken + "\r\n\r\n"),
               404, "/caf");
  expect_error(http(env.http_port, "POST", "/api/v1/inject", "{\"from\": \"a\xff\xfe@b.test\", x"),
               400, "");
  // Nothing was queued, and salvod still serves.
  json s = salvoctl(env.dir, d.config_path(), {"status", "--json"}).j;
  EXPECT_EQ(s["in"]["recipients"], 0) << s.dump();
  EXPECT_EQ(s["queue"]["messages"], 0);
  HttpResult ok = http(env.http_port, "POST", "/api/v1/inject", job(2, "d0.ok.test"));
  EXPECT_EQ(ok.status, 202) << ok.body;
  EXPECT_TRUE(env.mx->wait_messages(2, 20s));
  EXPECT_EQ(d.stop(), 0);
}

TEST(Http, DashboardInHeadlessChromiumShowsWhatSalvoctlSays) {
  const std::string chromium = "/usr/bin/chromium-headless-shell";
  ASSERT_TRUE(std::filesystem::exists(chromium))
      << "apt-get install chromium-headless-shell (tools/install_deps.sh does)";
  Env env;
  Salvod d(env.dir, env.salvod());
  ASSERT_EQ(env.blast(d, 120, "ok.test")["accepted"], 120);
  ASSERT_EQ(env.blast(d, 15, "bad.test")["accepted"], 15);
  HttpResult r = http(env.http_port, "POST", "/api/v1/inject", job(30, "d0.ok.test"));
  ASSERT_EQ(r.status, 202) << r.body;
  ASSERT_TRUE(env.mx->wait_messages(150, 20s));
  ASSERT_TRUE(env.senders->wait_messages(15, 20s));
  // Settled before the page and salvoctl are compared: every recipient final, the pooled
  // connections closed (idle_timeout), and two status answers 300 ms apart agree on what
  // the page shows — numbers still moving would differ between the two snapshots.
  json s, prev;
  ASSERT_TRUE(eventually(
      [&] {
        prev = s;
        s = salvoctl(env.dir, d.config_path(), {"status", "--json"}).j;
        std::this_thread::sleep_for(300ms);
        return s.is_object() && s["queue"]["recipients"] == 0 && s["out"]["delivered"] == 165 &&
               s["connections"]["out"] == 0 && s["connections"]["in"] == 0 &&
               prev.is_object() && prev["out"] == s["out"] && prev["queue"] == s["queue"] &&
               prev["connections"] == s["connections"] &&
               prev["in"]["recipients"] == s["in"]["recipients"];
      },
      30s))
      << s.dump();
  const std::string status_file = env.dir.file("status.json");
  std::ofstream(status_file) << s.dump();
  const std::string artifacts = std::string(SALVO_BINARY_DIR) + "/test-artifacts";
  std::filesystem::create_directories(artifacts);
  const std::string shot = artifacts + "/dashboard.png";
  std::filesystem::remove(shot);
  Process check({"/usr/bin/python3", std::string(SALVO_SOURCE_DIR) + "/tests/integration/browser_check.py",
                 "--url", fmt::format("http://127.0.0.1:{}/", env.http_port), "--token", kToken,
                 "--status-json", status_file, "--screenshot", shot, "--chromium", chromium,
                 "--expect-domain", "d0.ok.test", "--expect-domain", "d0.bad.test", "--timeout",
                 "90"},
                env.dir.path());
  const int rc = check.wait(200s).value_or(-1);
  EXPECT_EQ(rc, 0) << check.stdout_text() << check.stderr_text();
  EXPECT_NE(check.stdout_text().find("PASS"), std::string::npos) << check.stdout_text();
  EXPECT_TRUE(std::filesystem::exists(shot));
  EXPECT_EQ(d.stop(), 0);
}

}  // namespace
}  // namespace salvo::test
