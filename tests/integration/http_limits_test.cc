// SPDX-License-Identifier: Apache-2.0
// The admin HTTP surface's transport and its bounds, against a running salvod: HTTPS with
// [http] tls = true (a token over TLS answers 200, wolfSSL's client and curl's OpenSSL
// both; plain HTTP to the port fails the handshake and salvod goes on serving; no start
// without [tls] certificate/key), request_timeout as a total a trickling client cannot
// stretch (408, then close), response_timeout on an inject waiting for the spool (503 or
// 504, and what each promises about the job holds), and the node's body budget
// max_pending_body_bytes (503 with Retry-After, nothing read; the next request fits again).
// Real parts: salvod, salvoctl, TCP on loopback, wolfSSL, curl.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <salvo/net/tls.h>

#include "support/cert_factory.h"
#include "support/eventually.h"
#include "support/http_client.h"
#include "support/process.h"
#include "support/raw_client.h"
#include "support/salvod.h"
#include "support/unbound_server.h"

namespace salvo::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

const std::string kToken = "limits-token-0123456789abcdef";

// A bulk job of `recipients` recipients whose JSON is at least `min_size` bytes (the
// content is padded with lines of 75 characters).
std::string job(int recipients, std::size_t min_size = 0) {
  json j;
  j["from"] = "news@sender.test";
  j["job"] = "limits-test";
  j["content"] = "From: News <news@sender.test>\nSubject: hi\n\nHi.\n";
  j["recipients"] = json::array();
  for (int i = 0; i < recipients; ++i) {
    j["recipients"].push_back(json{{"email", fmt::format("user{}@d0.ok.test", i)}});
  }
  std::string content = j["content"];
  for (std::size_t size = j.dump().size(); size < min_size; size += 76) {
    content += std::string(75, 'x') + "\n";
  }
  j["content"] = content;
  return j.dump();
}

std::string head(const std::string& method, const std::string& path, std::size_t length,
                 const std::string& more = "") {
  return fmt::format("{} {} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n"
                     "Content-Type: application/json\r\nContent-Length: {}\r\n{}\r\n",
                     method, path, kToken, length, more);
}

std::string error_of(const HttpResult& r) {
  json j = json::parse(r.body, nullptr, false);
  return j.is_object() ? j.value("error", "") : "";
}

// salvod (delivery held) with [http] on 127.0.0.1:port and a token file.
struct Env {
  TempDir dir;
  std::uint16_t http_port = free_loopback_port();
  std::string tokens = write_secret_file(dir, "http-tokens", kToken + "\n", 0600);

  SalvodOptions salvod(const std::string& http_keys, const std::string& more = "") const {
    SalvodOptions o;
    o.listener = false;
    o.extra = fmt::format("{}[http]\naddress = \"127.0.0.1:{}\"\ntoken_file = \"{}\"\n{}\n", more,
                          http_port, tokens, http_keys);
    return o;
  }
  HttpResult get(const std::string& path) const {
    HttpCall c;
    c.path = path;
    c.token = kToken;
    return http_call(http_port, c);
  }
  // Recipients received (every source), from salvoctl over the control socket.
  long long received(const Salvod& d) const {
    json s = salvoctl(dir, d.config_path(), {"status", "--json"}).j;
    return s.is_object() ? s["in"]["recipients"].get<long long>() : -1;
  }
  long long queued_messages(const Salvod& d) const {
    json s = salvoctl(dir, d.config_path(), {"status", "--json"}).j;
    return s.is_object() ? s["queue"]["messages"].get<long long>() : -1;
  }
  // One series of /metrics, or -1.
  double metric(const std::string& series) const;
};

// The value of one series in Prometheus text, or -1.
double series_value(const std::string& text, const std::string& series) {
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    const std::string line = text.substr(pos, eol - pos);
    if (line.starts_with(series + " ")) return std::stod(line.substr(series.size() + 1));
    pos = eol + 1;
  }
  return -1;
}

double Env::metric(const std::string& series) const {
  return series_value(get("/metrics").body, series);
}

std::string refused(const std::string& reason) {
  return fmt::format("salvo_http_requests_refused_total{{reason=\"{}\"}}", reason);
}

// A plain loopback TCP connection the test drives byte by byte.
class Socket {
 public:
  explicit Socket(std::uint16_t port) {
    const auto to = *net::SocketAddress::parse(fmt::format("127.0.0.1:{}", port));
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0 || ::connect(fd_, to.sa(), to.len()) != 0) throw std::runtime_error("connect");
  }
  ~Socket() { ::close(fd_); }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  void send(std::string_view bytes) { (void)::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL); }
  // Reads what arrives within `wait`; false once the peer closed.
  bool read_for(std::chrono::milliseconds wait) {
    const auto until = Steady::now() + wait;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Steady::now());
      if (left <= 0ms) return true;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return false;
      in_.append(buf, static_cast<std::size_t>(n));
    }
  }
  // Sends `bytes` one at a time, `gap` apart, reading meanwhile, until the peer closes or
  // `limit` passes; false when it passed with the connection still open.
  bool trickle(std::string_view bytes, std::chrono::milliseconds gap,
               std::chrono::milliseconds limit) {
    const auto until = Steady::now() + limit;
    for (std::size_t i = 0; Steady::now() < until; ++i) {
      if (i < bytes.size()) send(bytes.substr(i, 1));
      if (!read_for(gap)) return true;
    }
    return false;
  }
  std::string& input() { return in_; }

 private:
  int fd_ = -1;
  std::string in_;
};

// ---- HTTPS ---------------------------------------------------------------------------

// One request over TLS (the server's certificate verified against the test CA, for the
// name "localhost"); the answer once the server closes.
HttpResult https(std::uint16_t port, const std::string& request) {
  net::TlsContextOptions to;
  to.role = net::TlsRole::Client;
  to.verify = net::TlsVerify::Peer;
  to.ca_file = CertFactory::shared().ca_cert();
  net::TlsContext ctx(to);
  RawClient c(*net::SocketAddress::parse(fmt::format("127.0.0.1:{}", port)), 5s);
  c.start_tls(ctx, "localhost");
  c.send(request);
  return parse_http_answer(c.read_all());
}

std::string get_request(const std::string& path, const std::string& token) {
  std::string r = fmt::format("GET {} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n", path);
  if (!token.empty()) r += "Authorization: Bearer " + token + "\r\n";
  return r + "\r\n";
}

TEST(HttpLimits, HttpsAnswersATokenAndPlainHttpFailsWithoutHarm) {
  ASSERT_TRUE(CertFactory::shared().ok()) << CertFactory::shared().error();
  Env env;
  Salvod d(env.dir, env.salvod("tls = true\n", tls_section()));
  EXPECT_NE(d.log().find(fmt::format("http=https://127.0.0.1:{}", env.http_port)),
            std::string::npos)
      << d.log();
  HttpResult status = https(env.http_port, get_request("/api/v1/status", kToken));
  EXPECT_EQ(status.status, 200) << status.headers;
  EXPECT_TRUE(json::parse(status.body, nullptr, false).is_object()) << status.body;
  EXPECT_EQ(https(env.http_port, get_request("/api/v1/status", "")).status, 401);
  EXPECT_EQ(https(env.http_port, get_request("/healthz", "")).status, 200);
  // The dashboard's own origin is https:// + Host now.
  HttpResult own = https(env.http_port, "GET /api/v1/status HTTP/1.1\r\nHost: localhost\r\n"
                                        "Origin: https://localhost\r\nConnection: close\r\n"
                                        "Authorization: Bearer " + kToken + "\r\n\r\n");
  EXPECT_EQ(own.status, 200) << own.body;

  // Plain HTTP to the HTTPS port: no HTTP answer, the connection closes at once (not at a
  // timeout), and salvod goes on serving.
  for (int i = 0; i < 3; ++i) {
    const auto t0 = Steady::now();
    HttpResult plain = http_raw(env.http_port, get_request("/healthz", ""), 5);
    EXPECT_EQ(plain.status, 0) << plain.headers;
    EXPECT_LT(Steady::now() - t0, 3s);
  }
  EXPECT_EQ(https(env.http_port, get_request("/healthz", "")).status, 200);

  // A real client: curl (OpenSSL) against salvod's wolfSSL, the certificate verified.
  if (std::filesystem::exists("/usr/bin/curl")) {
    Process curl({"/usr/bin/curl", "-sS", "--max-time", "10", "--cacert",
                  CertFactory::shared().ca_cert(), "--resolve",
                  fmt::format("localhost:{}:127.0.0.1", env.http_port), "-H",
                  "Authorization: Bearer " + kToken, "-o", "/dev/null", "-w", "%{http_code}",
                  fmt::format("https://localhost:{}/metrics", env.http_port)},
                 env.dir.path());
    EXPECT_EQ(curl.wait(20s).value_or(-1), 0) << curl.stderr_text();
    EXPECT_EQ(curl.stdout_text(), "200") << curl.stderr_text();
  }
  HttpResult m = https(env.http_port, get_request("/metrics", kToken));
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(series_value(m.body, "salvo_net_events_total{event=\"tls_failures\"}"), 3);
  EXPECT_EQ(d.stop(), 0);
}

TEST(HttpLimits, TlsWithoutACertificateDoesNotStart) {
  Env env;
  try {
    Salvod d(env.dir, env.salvod("tls = true\n"));
    ADD_FAILURE() << "salvod started with [http] tls = true and no [tls] certificate";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("config: http.tls: needs [tls] certificate and key"),
              std::string::npos)
        << e.what();
  }
}

// ---- request_timeout -------------------------------------------------------------------

TEST(HttpLimits, ATricklingClientGets408AtTheDeadline) {
  Env env;
  Salvod d(env.dir, env.salvod("request_timeout = \"1s\"\n"));
  const std::string body = job(2);

  // The head, one byte every 300 ms: the time runs from the accept, whatever arrives.
  {
    Socket s(env.http_port);
    const auto t0 = Steady::now();
    ASSERT_TRUE(s.trickle(head("POST", "/api/v1/inject", body.size()) + body, 300ms, 8s));
    const auto took = Steady::now() - t0;
    HttpResult r = parse_http_answer(s.input());
    EXPECT_EQ(r.status, 408) << s.input();
    EXPECT_NE(error_of(r).find("request_timeout (1s)"), std::string::npos) << r.body;
    EXPECT_EQ(r.header("Connection"), "close");
    EXPECT_GE(took, 900ms);
    EXPECT_LT(took, 2500ms);
  }

  // Keep-alive: a request answered at once, an idle pause longer than request_timeout
  // (only the 30 s idle timer runs between requests), then a request whose body trickles:
  // its time runs from its own first byte.
  {
    Socket s(env.http_port);
    s.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n");
    ASSERT_TRUE(s.read_for(1500ms));
    EXPECT_EQ(parse_http_answer(s.input()).status, 200) << s.input();
    s.input().clear();
    s.send(head("POST", "/api/v1/inject", body.size()));
    const auto t0 = Steady::now();
    ASSERT_TRUE(s.trickle(body, 300ms, 8s));
    const auto took = Steady::now() - t0;
    HttpResult r = parse_http_answer(s.input());
    EXPECT_EQ(r.status, 408) << s.input();
    EXPECT_GE(took, 700ms);
    EXPECT_LT(took, 2500ms);
  }

  // Nothing was queued; salvod serves on.
  EXPECT_EQ(env.received(d), 0);
  HttpCall c;
  c.method = "POST";
  c.path = "/api/v1/inject";
  c.body = body;
  c.token = kToken;
  EXPECT_EQ(http_call(env.http_port, c).status, 202);
  EXPECT_EQ(env.metric(refused("request_timeout")), 2);
  EXPECT_EQ(d.stop(), 0);
  EXPECT_EQ(d.log_number("request_timeouts"), 2) << d.log();
}

// ---- response_timeout ------------------------------------------------------------------

TEST(HttpLimits, AnInjectWaitingLongerThanResponseTimeoutIsAnsweredAndKeepsItsWord) {
  Env env;
  Salvod d(env.dir, env.salvod("response_timeout = \"1ms\"\n"));
  // Over 1 MB, 40,000 recipients: parsed a chunk per loop turn and spooled in batches, far
  // longer than 1 ms.
  HttpCall c;
  c.method = "POST";
  c.path = "/api/v1/inject";
  c.body = job(40000);
  c.token = kToken;
  HttpResult r = http_call(env.http_port, c);
  ASSERT_TRUE(r.status == 503 || r.status == 504) << r.status << " " << r.body;
  EXPECT_EQ(r.header("Connection"), "close");
  EXPECT_NE(error_of(r).find("response_timeout (1ms)"), std::string::npos) << r.body;
  if (r.status == 503) {
    // Given up before its commit: nothing of it is queued, now or later.
    EXPECT_NE(error_of(r).find("not queued"), std::string::npos) << r.body;
    std::this_thread::sleep_for(500ms);
    EXPECT_EQ(env.received(d), 0);
    EXPECT_EQ(env.queued_messages(d), 0);
  } else {
    // The commit was under way: the answer names the job, which is queued.
    json j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("id")) << r.body;
    EXPECT_TRUE(eventually([&] { return env.received(d) == 40000; }, 10s)) << env.received(d);
  }
  const long long before = env.received(d);
  // A small job is parsed and its commit record written at once; then it waits for the
  // group commit's fsync: 202 when that takes under 1 ms, else 504 naming the job, which
  // is queued all the same.
  c.body = job(2);
  HttpResult small = http_call(env.http_port, c);
  ASSERT_TRUE(small.status == 202 || small.status == 504) << small.status << " " << small.body;
  json id = json::parse(small.body, nullptr, false);
  ASSERT_TRUE(id.is_object() && id.contains("id")) << small.body;
  if (small.status == 504) {
    EXPECT_NE(error_of(small).find("may still be queued"), std::string::npos) << small.body;
    EXPECT_NE(error_of(small).find(id["id"].get<std::string>()), std::string::npos);
  }
  EXPECT_TRUE(eventually([&] { return env.received(d) == before + 2; }, 10s))
      << env.received(d);
  // Pages every shard renders wait too: 200, or 504 when the 1 ms is gone first.
  for (int i = 0; i < 3; ++i) {
    HttpResult page = env.get("/api/v1/status");
    EXPECT_TRUE(page.status == 200 || page.status == 504) << page.status << " " << page.body;
    if (page.status == 504) {
      EXPECT_NE(error_of(page).find("response_timeout"), std::string::npos) << page.body;
    }
  }
  EXPECT_EQ(env.get("/healthz").status, 200);
  EXPECT_EQ(d.stop(), 0);
  EXPECT_GE(d.log_number("response_timeouts"), 1) << d.log();
}

// ---- max_pending_body_bytes ------------------------------------------------------------

TEST(HttpLimits, BodiesBeyondTheNodeBudgetGet503AndTheNextFits) {
  Env env;
  Salvod d(env.dir,
           env.salvod("max_request_size = \"8KiB\"\nmax_pending_body_bytes = \"8KiB\"\n"));
  // A holds 6000 bytes of the budget: its head is in (the 100 Continue comes after the
  // budget took it), its body not yet.
  const std::string a_body = job(3, 6000);
  ASSERT_GE(a_body.size(), 6000u);
  Socket a(env.http_port);
  a.send(head("POST", "/api/v1/inject", a_body.size(),
              "Expect: 100-continue\r\nConnection: close\r\n"));
  ASSERT_TRUE(eventually(
      [&] { return a.read_for(50ms) && a.input().find("100 Continue") != std::string::npos; },
      5s))
      << a.input();
  a.input().clear();

  // B's 4000 bytes do not fit in what is left (any shard: the budget is the node's): 503
  // with Retry-After, answered from the head alone, before the 100 a client waits for...
  const std::string b_body = job(2, 4000);
  HttpResult early = http_raw(
      env.http_port, head("POST", "/api/v1/inject", b_body.size(), "Expect: 100-continue\r\n"));
  EXPECT_EQ(early.status, 503) << early.headers;
  EXPECT_EQ(early.header("Retry-After"), "5");
  EXPECT_EQ(early.header("Connection"), "close");
  EXPECT_NE(error_of(early).find("max_pending_body_bytes"), std::string::npos) << early.body;
  // ...and from the head of one that sends its body along.
  HttpCall b;
  b.method = "POST";
  b.path = "/api/v1/inject";
  b.body = b_body;
  b.token = kToken;
  HttpResult refused_b = http_call(env.http_port, b);
  EXPECT_EQ(refused_b.status, 503) << refused_b.headers;
  EXPECT_EQ(refused_b.header("Retry-After"), "5");
  // Requests without a body are not affected.
  EXPECT_EQ(env.get("/api/v1/status").status, 200);

  // A's body comes: queued. Its bytes go back to the budget, and B fits now.
  a.send(a_body);
  EXPECT_FALSE(a.read_for(5s)) << "still open: " << a.input();
  HttpResult a_answer = parse_http_answer(a.input());
  EXPECT_EQ(a_answer.status, 202) << a.input();
  HttpResult ok_b = http_call(env.http_port, b);
  EXPECT_EQ(ok_b.status, 202) << ok_b.body;
  EXPECT_TRUE(eventually([&] { return env.received(d) == 5; }, 10s)) << env.received(d);
  EXPECT_EQ(env.metric(refused("body_budget")), 2);

  // A client that leaves halfway through its body gives its share back too (once salvod
  // has seen it go: B is tried until then).
  {
    Socket c(env.http_port);
    c.send(head("POST", "/api/v1/inject", a_body.size(), "Expect: 100-continue\r\n"));
    ASSERT_TRUE(eventually(
        [&] { return c.read_for(50ms) && c.input().find("100 Continue") != std::string::npos; },
        5s))
        << c.input();
    c.send(std::string_view(a_body).substr(0, 1000));
  }
  EXPECT_TRUE(eventually([&] { return http_call(env.http_port, b).status == 202; }, 5s));
  EXPECT_TRUE(eventually([&] { return env.received(d) == 7; }, 10s)) << env.received(d);
  EXPECT_EQ(d.stop(), 0);
  EXPECT_GE(d.log_number("body_budget"), 2) << d.log();
}

}  // namespace
}  // namespace salvo::test
