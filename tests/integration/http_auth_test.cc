// SPDX-License-Identifier: Apache-2.0
// Who may use salvod's admin HTTP surface, against a running salvod: bearer tokens from
// [http] token_file on every path but /healthz (401 with WWW-Authenticate otherwise), the
// Origin and Host checks (403, even with a token), JSON only for /api/v1/inject (415), no
// admin at all without a token file, no start on a non-loopback address without one or with
// a token file others can read; the refusals counted in /metrics; and the dashboard in
// headless Chromium asking for a token. Nothing refused is ever queued (salvoctl status).
// Real parts: salvod, salvoctl, TCP on loopback, Chromium.
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/eventually.h"
#include "support/http_client.h"
#include "support/process.h"
#include "support/salvod.h"
#include "support/unbound_server.h"

namespace salvo::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

const std::string kTokenA = "ops-token-a-0123456789abcdef";
const std::string kTokenB = "prometheus-b-fedcba9876543210";

std::string job(int recipients) {
  json j;
  j["from"] = "news@sender.test";
  j["job"] = "auth-test";
  j["content"] = "From: News <news@sender.test>\nSubject: hi {{name}}\n\nHi.\n";
  j["recipients"] = json::array();
  for (int i = 0; i < recipients; ++i) {
    j["recipients"].push_back(json{{"email", fmt::format("user{}@d0.ok.test", i)}});
  }
  return j.dump();
}

// salvod (delivery held: what is queued stays) with [http] on 127.0.0.1:port.
struct Env {
  TempDir dir;
  std::uint16_t http_port = free_loopback_port();
  std::string tokens;

  Env() {
    tokens = write_secret_file(
        dir, "http-tokens", "# operators\n\n  " + kTokenA + "  \r\n# Prometheus\n" + kTokenB + "\n",
        0600);
  }
  SalvodOptions salvod(const std::string& http_keys) const {
    SalvodOptions o;
    o.listener = false;
    o.extra = fmt::format("[http]\naddress = \"127.0.0.1:{}\"\n{}\n", http_port, http_keys);
    return o;
  }
  SalvodOptions with_tokens(const std::string& more = "") const {
    return salvod(fmt::format("token_file = \"{}\"\n{}", tokens, more));
  }
  HttpResult call(HttpCall c) const { return http_call(http_port, c); }
  HttpResult get(const std::string& path, const std::string& token = "") const {
    HttpCall c;
    c.path = path;
    c.token = token;
    return call(c);
  }
  HttpResult inject(const std::string& token, int recipients = 2) const {
    HttpCall c;
    c.method = "POST";
    c.path = "/api/v1/inject";
    c.body = job(recipients);
    c.token = token;
    return call(c);
  }
  // Recipients received (every source), from salvoctl over the control socket.
  long long received(const Salvod& d) const {
    json s = salvoctl(dir, d.config_path(), {"status", "--json"}).j;
    return s.is_object() ? s["in"]["recipients"].get<long long>() : -1;
  }
  // One series of /metrics (fetched with token A), or -1.
  double metric(const std::string& series) const {
    HttpResult r = get("/metrics", kTokenA);
    for (std::size_t pos = 0; pos < r.body.size();) {
      std::size_t eol = r.body.find('\n', pos);
      if (eol == std::string::npos) eol = r.body.size();
      const std::string line = r.body.substr(pos, eol - pos);
      if (line.starts_with(series + " ")) return std::stod(line.substr(series.size() + 1));
      pos = eol + 1;
    }
    return -1;
  }
};

std::string refused(const std::string& reason) {
  return fmt::format("salvo_http_requests_refused_total{{reason=\"{}\"}}", reason);
}

std::string error_of(const HttpResult& r) {
  json j = json::parse(r.body, nullptr, false);
  return j.is_object() ? j.value("error", "") : "";
}

TEST(HttpAuth, J7_EveryPathButHealthzWantsABearerTokenOfTheFile) {
  Env env;
  Salvod d(env.dir, env.with_tokens());
  int unauthorized = 0;
  // No token: 401 with the challenge, on every page and the API.
  for (const std::string path : {"/metrics", "/api/v1/status", "/", "/index.html", "/no/such"}) {
    HttpResult r = env.get(path);
    EXPECT_EQ(r.status, 401) << path << "\n" << r.headers << r.body;
    EXPECT_EQ(r.header("WWW-Authenticate"), "Bearer realm=\"salvod\"") << path;
    ++unauthorized;
  }
  // The dashboard's 401 is the page itself, which asks for the token (it holds no data).
  HttpResult page = env.get("/");
  ++unauthorized;
  EXPECT_EQ(page.header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("id=\"login-form\""), std::string::npos);
  EXPECT_EQ(page.header("X-Frame-Options"), "DENY");
  HttpResult inject = env.inject("");
  ++unauthorized;
  EXPECT_EQ(inject.status, 401) << inject.body;
  EXPECT_NE(error_of(inject).find("Authorization: Bearer"), std::string::npos) << inject.body;
  // /healthz needs nothing (GET and HEAD only).
  HttpResult health = env.get("/healthz");
  EXPECT_EQ(health.status, 200) << health.headers;
  EXPECT_EQ(health.body, "ok\n");
  HttpCall post_health;
  post_health.method = "POST";
  post_health.path = "/healthz";
  EXPECT_EQ(env.call(post_health).status, 401);
  ++unauthorized;
  // Wrong tokens: a prefix of a good one, the good one with more, another scheme, no token
  // after the scheme.
  for (const std::string& wrong :
       {kTokenA.substr(0, kTokenA.size() - 1), kTokenA + "x", std::string("nope-nope-nope-nope")}) {
    HttpResult r = env.get("/metrics", wrong);
    EXPECT_EQ(r.status, 401) << wrong;
    EXPECT_EQ(r.header("WWW-Authenticate"), "Bearer realm=\"salvod\", error=\"invalid_token\"");
    ++unauthorized;
  }
  for (const std::string& header :
       {"Authorization: Basic " + kTokenA, std::string("Authorization: Bearer")}) {
    HttpCall c;
    c.path = "/api/v1/status";
    c.headers = {header};
    EXPECT_EQ(env.call(c).status, 401) << header;
    ++unauthorized;
  }
  EXPECT_EQ(env.received(d), 0);
  // Either token of the file, the scheme in any case.
  EXPECT_EQ(env.get("/metrics", kTokenA).status, 200);
  EXPECT_EQ(env.get("/api/v1/status", kTokenB).status, 200);
  HttpCall lower;
  lower.path = "/api/v1/status";
  lower.headers = {"Authorization: bearer " + kTokenB};
  EXPECT_EQ(env.call(lower).status, 200);
  HttpResult ok_page = env.get("/", kTokenA);
  EXPECT_EQ(ok_page.status, 200);
  EXPECT_NE(ok_page.body.find("id=\"login-form\""), std::string::npos);
  EXPECT_EQ(env.get("/no/such", kTokenA).status, 404);
  HttpResult queued = env.inject(kTokenA, 3);
  ASSERT_EQ(queued.status, 202) << queued.body;
  EXPECT_EQ(json::parse(queued.body)["recipients"], 3);
  EXPECT_TRUE(eventually([&] { return env.received(d) == 3; }, 10s)) << env.received(d);
  EXPECT_EQ(env.metric(refused("unauthorized")), unauthorized);
  EXPECT_EQ(env.metric(refused("forbidden_origin")), 0);
  EXPECT_EQ(d.stop(), 0);
  EXPECT_EQ(d.log_number("unauthorized"), unauthorized) << d.log();
}

TEST(HttpAuth, J8_CrossOriginRebindingAndNonJsonRequestsAreRefusedAndQueueNothing) {
  Env env;
  Salvod d(env.dir, env.with_tokens("allowed_origins = [\"HTTPS://Ops.Example.com:443\"]\n"));
  const std::string own = fmt::format("127.0.0.1:{}", env.http_port);
  auto post = [&](const std::string& token, const std::string& content_type,
                  std::vector<std::string> headers) {
    HttpCall c;
    c.method = "POST";
    c.path = "/api/v1/inject";
    c.body = job(2);
    c.token = token;
    c.content_type = content_type;
    c.headers = std::move(headers);
    c.host = own;
    return env.call(c);
  };
  // A page elsewhere, even one that holds a token.
  HttpResult evil = post(kTokenA, "application/json", {"Origin: http://evil.example"});
  EXPECT_EQ(evil.status, 403) << evil.body;
  EXPECT_NE(error_of(evil).find("allowed_origins"), std::string::npos) << evil.body;
  // The no-cors form post a hostile page can make without a preflight.
  EXPECT_EQ(post("", "text/plain", {"Origin: http://evil.example"}).status, 403);
  EXPECT_EQ(post(kTokenA, "application/json", {"Origin: null"}).status, 403);
  // Not JSON: 415, with or without a token (checked first).
  HttpResult plain = post(kTokenA, "text/plain", {});
  EXPECT_EQ(plain.status, 415) << plain.body;
  EXPECT_NE(error_of(plain).find("application/json"), std::string::npos);
  EXPECT_EQ(post("", "text/plain;charset=UTF-8", {}).status, 415);
  EXPECT_EQ(post(kTokenA, "", {}).status, 415);
  EXPECT_EQ(post(kTokenA, "application/x-www-form-urlencoded", {}).status, 415);
  // DNS rebinding: the attacker's name on a loopback listener, with or without its Origin.
  HttpCall rebound;
  rebound.path = "/api/v1/status";
  rebound.token = kTokenA;
  rebound.host = fmt::format("evil.example:{}", env.http_port);
  EXPECT_EQ(env.call(rebound).status, 403);
  rebound.headers = {fmt::format("Origin: http://evil.example:{}", env.http_port)};
  HttpResult r = env.call(rebound);
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(error_of(r).find("loopback"), std::string::npos) << r.body;
  rebound.headers.clear();
  rebound.host = fmt::format("127.0.0.1.evil.example:{}", env.http_port);
  EXPECT_EQ(env.call(rebound).status, 403);
  // Two Authorization headers: ambiguous.
  EXPECT_EQ(post(kTokenA, "application/json", {"Authorization: Bearer " + kTokenB}).status, 400);
  // A refused request with "Expect: 100-continue" is answered at once, not after a 100,
  // and its body is never sent.
  HttpResult early = http_raw(
      env.http_port, fmt::format("POST /api/v1/inject HTTP/1.1\r\nHost: {}\r\nContent-Type: "
                                 "application/json\r\nExpect: 100-continue\r\nContent-Length: "
                                 "100\r\n\r\n",
                                 own));
  EXPECT_EQ(early.status, 401) << early.headers;
  EXPECT_EQ(early.header("Connection"), "close");
  // Nothing of that was queued.
  EXPECT_EQ(env.received(d), 0);
  // What is allowed: its own origin (the dashboard), an allowed one, names of the loopback.
  HttpResult same = post(kTokenA, "application/json; charset=utf-8",
                         {fmt::format("Origin: http://{}", own)});
  EXPECT_EQ(same.status, 202) << same.body;
  HttpResult ops = post(kTokenB, "Application/JSON", {"Origin: https://ops.example.com"});
  EXPECT_EQ(ops.status, 202) << ops.body;
  for (const std::string& host :
       {fmt::format("localhost:{}", env.http_port), fmt::format("[::1]:{}", env.http_port),
        std::string("127.0.0.2"), std::string("")}) {
    HttpCall c;
    c.path = "/api/v1/status";
    c.token = kTokenA;
    c.host = host;
    EXPECT_EQ(env.call(c).status, 200) << "Host: " << host;
  }
  EXPECT_TRUE(eventually([&] { return env.received(d) == 4; }, 10s)) << env.received(d);
  EXPECT_EQ(env.metric(refused("forbidden_origin")), 3);
  EXPECT_EQ(env.metric(refused("unsupported_media")), 4);
  EXPECT_EQ(env.metric(refused("forbidden_host")), 3);
  EXPECT_EQ(env.metric(refused("unauthorized")), 1);
  EXPECT_EQ(d.stop(), 0);
}

TEST(HttpAuth, J9_WithoutATokenFileOnlyLoopbackAndOnlyHealthz) {
  Env env;
  {
    Salvod d(env.dir, env.salvod(""));
    EXPECT_TRUE(eventually([&] { return d.log().find("no token_file") != std::string::npos; }, 5s))
        << d.log();
    EXPECT_EQ(env.get("/healthz").status, 200);
    HttpResult r = env.get("/metrics", kTokenA);
    EXPECT_EQ(r.status, 401);
    EXPECT_NE(error_of(r).find("token_file"), std::string::npos) << r.body;
    EXPECT_EQ(env.get("/").status, 401);
    EXPECT_EQ(env.inject(kTokenA).status, 401);
    EXPECT_EQ(env.received(d), 0);
    EXPECT_EQ(d.stop(), 0);
  }
  // Any other address needs the tokens: salvod does not start.
  SalvodOptions o;
  o.listener = false;
  o.extra = fmt::format("[http]\naddress = \"0.0.0.0:{}\"\n", free_loopback_port());
  try {
    Salvod d(env.dir, o);
    ADD_FAILURE() << "salvod started on 0.0.0.0 without a token file";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("config: http.token_file: required when http.address ('0.0.0.0:"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("is not a loopback address"), std::string::npos) << what;
  }
}

TEST(HttpAuth, J9_TokenFileMustBeOwnerOrGroupOnlyAndHoldATokens) {
  Env env;
  auto start_error = [&](const std::string& path) -> std::string {
    try {
      Salvod d(env.dir, env.salvod(fmt::format("token_file = \"{}\"\n", path)));
      return "";
    } catch (const std::runtime_error& e) {
      return e.what();
    }
  };
  const std::string good = "# one token\n" + kTokenA + "\n";
  std::string e = start_error(write_secret_file(env.dir, "world-readable", good, 0644));
  EXPECT_NE(e.find("http.token_file"), std::string::npos) << e;
  EXPECT_NE(e.find("mode 0644"), std::string::npos) << e;
  e = start_error(write_secret_file(env.dir, "group-writable", good, 0660));
  EXPECT_NE(e.find("mode 0660 lets the group change it"), std::string::npos) << e;
  e = start_error(write_secret_file(env.dir, "comments-only", "# none yet\n\n", 0600));
  EXPECT_NE(e.find("holds no token"), std::string::npos) << e;
  e = start_error(write_secret_file(env.dir, "short", "# x\nzz-short-zz\n", 0600));
  EXPECT_NE(e.find("line 2: a token is 16 to 256 characters"), std::string::npos) << e;
  EXPECT_EQ(e.find("zz-short-zz"), std::string::npos) << "the token itself is never printed: " << e;
  e = start_error(env.dir.file("no-such-file"));
  EXPECT_NE(e.find("http.token_file " + env.dir.file("no-such-file") + ": cannot be read"),
            std::string::npos)
      << e;
  // 0640 (root:salvo, as the Debian package's user reads it) and 0400 are fine.
  for (unsigned mode : {0640u, 0400u}) {
    const std::string path = write_secret_file(env.dir, fmt::format("ok-{:o}", mode), good, mode);
    Salvod d(env.dir, env.salvod(fmt::format("token_file = \"{}\"\n", path)));
    EXPECT_EQ(env.get("/api/v1/status", kTokenA).status, 200) << fmt::format("{:o}", mode);
    EXPECT_EQ(d.stop(), 0);
  }
}

TEST(HttpAuth, DashboardAsksForATokenAndSaysWhenItIsRefused) {
  const std::string chromium = "/usr/bin/chromium-headless-shell";
  if (!std::filesystem::exists(chromium)) {
    GTEST_SKIP() << "apt-get install chromium-headless-shell (tools/install_deps.sh does)";
  }
  Env env;
  Salvod d(env.dir, env.with_tokens());
  const std::string artifacts = std::string(SALVO_BINARY_DIR) + "/test-artifacts";
  std::filesystem::create_directories(artifacts);
  for (const std::string token : {"", "wrong-token-0123456789abcdef"}) {
    const std::string shot =
        artifacts + (token.empty() ? "/dashboard-login.png" : "/dashboard-refused.png");
    std::vector<std::string> args = {
        "/usr/bin/python3", std::string(SALVO_SOURCE_DIR) + "/tests/integration/browser_check.py",
        "--url", fmt::format("http://127.0.0.1:{}/", env.http_port), "--expect-login",
        "--screenshot", shot, "--chromium", chromium, "--timeout", "90"};
    if (!token.empty()) {
      args.push_back("--token");
      args.push_back(token);
    }
    Process check(args, env.dir.path());
    const int rc = check.wait(200s).value_or(-1);
    EXPECT_EQ(rc, 0) << check.stdout_text() << check.stderr_text();
    EXPECT_NE(check.stdout_text().find("PASS"), std::string::npos) << check.stdout_text();
  }
  // Both page loads and the wrong token's status poll were refused; nothing else.
  EXPECT_GE(env.metric(refused("unauthorized")), 3);
  EXPECT_EQ(d.stop(), 0);
}

}  // namespace
}  // namespace salvo::test
