// SPDX-License-Identifier: Apache-2.0
// HTTP on the shard's net::Stack (see http_server.h): one Conn per connection, one request
// at a time (later pipelined requests wait in the buffer), keep-alive as the client asks.
// One connection timer does every bound: the idle time between requests, the request's
// deadline while it arrives, the response deadline while it waits for our work.
#include "admin/http_server.h"

#include <http_parser.h>

#include <algorithm>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <salvo/base/ascii.h>
#include <salvo/base/log.h>
#include <salvo/base/units.h>
#include <salvo/inbound/job_spooler.h>
#include <salvo/inbound/metrics.h>
#include <salvo/net/http_callbacks.h>
#include <salvo/net/metrics.h>
#include <salvo/spool/spool_reader.h>

#include <salvo/admin/control.h>
#include "admin/dashboard_html.h"

namespace salvo::admin {
namespace {

using nlohmann::json;

// Between the requests of a keep-alive connection (a request itself has request_timeout).
constexpr Duration kIdleTimeout = std::chrono::seconds(30);
// Per shard: an operator's browsers, scrapers and injectors, not the public (each may hold
// up to max_request_size of body while it arrives).
constexpr std::size_t kMaxConnections = 256;
// Output beyond this stops reading a keep-alive client until it drains (a client that
// pipelines requests without reading the answers).
constexpr std::size_t kOutputHighWater = 4u << 20;

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
  }
}

using ascii::iequals;  // header names and the Expect token

HttpReply json_reply(int status, const json& j) {
  return HttpReply{status, "application/json", dump_json(j) + "\n"};
}

HttpReply json_error(int status, std::string message) {
  return json_reply(status, json{{"ok", false}, {"error", std::move(message)}});
}

// On every answer: no page of salvod's may be framed by another site (the token form
// would be clickjacking's target), and no URL of it is passed on as a referrer.
constexpr std::string_view kSecurityHeaders =
    "X-Frame-Options: DENY\r\nContent-Security-Policy: frame-ancestors 'none'\r\n"
    "Referrer-Policy: no-referrer\r\n";

// A 503 for lack of room (the body budget): a retry soon may find some.
constexpr std::string_view kRetryAfter = "Retry-After: 5\r\n";

// A header value as the checks see it: no surrounding whitespace.
std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

// ---- one connection --------------------------------------------------------------------

class HttpServer::Conn final : public net::ConnectionHandler {
 public:
  Conn(HttpServer& server, net::Connection& c, std::uint64_t token)
      : server_(server), conn_(&c), token_(token), lease_(*server.shared_.bodies) {
    net::HttpCallbacks<Conn>::bind(settings_);
    http_parser_init(&parser_, HTTP_REQUEST);
    parser_.data = this;
    c.set_handler(this);
    c.set_idle_timeout(kIdleTimeout);
    // The first request's time runs from the accept: a TLS handshake, or a client that
    // connects and trickles, spends it too.
    c.set_deadline(server_.shard_.clock().now() + server_.request_timeout_);
    deadline_set_ = true;
  }

  std::uint64_t token() const noexcept { return token_; }
  const std::string& path() const noexcept { return path_; }
  // Set when the access checks refused the request (at the end of its headers).
  std::optional<Refusal>& refusal() noexcept { return refusal_; }
  std::string& body() noexcept { return body_; }
  BodyBudget::Lease& lease() noexcept { return lease_; }
  unsigned method() const noexcept { return parser_.method; }
  bool waiting() const noexcept { return waiting_; }
  std::string peer() const { return conn_ != nullptr ? conn_->peer().to_string() : "?"; }
  // Waiting for the control thread (not for a job being spooled).
  bool on_gateway = false;

  void on_data(net::Connection&, ByteBuffer& in) noexcept override {
    if (waiting_ || closing_) return;
    // The first byte of a request (not the connection's first) starts its time.
    if (!deadline_set_) {
      conn_->set_deadline(server_.shard_.clock().now() + server_.request_timeout_);
      deadline_set_ = true;
    }
    request_started_ = true;
    const std::string_view v = in.view();
    const std::size_t used = http_parser_execute(&parser_, &settings_, v.data(), v.size());
    const auto err = HTTP_PARSER_ERRNO(&parser_);
    if (err == HPE_PAUSED) {
      in.consume(used);
      // A whole request: answer it (maybe later); the rest of the input waits.
      waiting_ = true;
      conn_->pause_reading();
      // The wait is ours (a spool commit, the control thread), not the client's: no idle
      // timeout meanwhile, only response_timeout (expire() answers it).
      conn_->set_idle_timeout(Duration::zero());
      server_.route(*this);
      if (waiting_ && !closing_) {
        conn_->set_deadline(server_.shard_.clock().now() + server_.response_timeout_);
      }
      return;
    }
    in.consume(used);
    if (err != HPE_OK) {
      if (refusal_) return finish(std::move(refusal_->reply), false, refusal_->headers);
      if (too_large_) {
        return finish(json_error(413, fmt::format("the request is larger than [http] "
                                                  "max_request_size ({} bytes)",
                                                  server_.max_request_size_)),
                      false);
      }
      if (over_budget_) {
        ++server_.stats_.body_budget;
        return finish(json_error(503, fmt::format("salvod is buffering as many request bodies "
                                                  "as [http] max_pending_body_bytes ({} bytes) "
                                                  "allows; retry later",
                                                  server_.shared_.bodies->limit())),
                      false, kRetryAfter);
      }
      return finish(json_error(400, fmt::format("malformed HTTP request: {}",
                                                http_errno_description(err))),
                    false);
    }
  }

  // The answer to the request in hand; keep-alive continues with the next one. `headers`:
  // more header lines, each ending in CRLF.
  void finish(HttpReply reply, bool keep_alive, std::string_view headers = {}) noexcept {
    if (conn_ == nullptr || closing_) return;
    if (reply.status >= 400 && reply.status < 500) ++server_.stats_.bad_requests;
    keep_alive = keep_alive && !answer_now_ && http_should_keep_alive(&parser_) != 0 &&
                 !server_.stopping_;
    std::string head = fmt::format(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\n{}{}Connection: {}\r\n\r\n",
        reply.status, reason_phrase(reply.status), reply.content_type, reply.body.size(),
        kSecurityHeaders, headers, keep_alive ? "keep-alive" : "close");
    ByteBuffer& out = conn_->output();
    out.append(head);
    if (method() != HTTP_HEAD) out.append(reply.body);
    conn_->flush();
    body_.clear();
    body_.shrink_to_fit();
    lease_.reset();
    refusal_.reset();
    if (!keep_alive) {
      closing_ = true;
      conn_->close();
      return;
    }
    waiting_ = false;
    request_started_ = false;
    // The next request's time starts with its first byte; until then the idle timer.
    conn_->set_deadline(TimePoint::max());
    deadline_set_ = false;
    conn_->set_idle_timeout(kIdleTimeout);
    http_parser_pause(&parser_, 0);
    if (conn_->pending_output() > kOutputHighWater) {
      output_paused_ = true;
      return;  // on_drained resumes
    }
    conn_->resume_reading();  // re-delivers buffered input (a pipelined request) at once
  }

  void on_drained(net::Connection&) noexcept override {
    if (!output_paused_ || conn_ == nullptr) return;
    output_paused_ = false;
    if (!waiting_ && !closing_) conn_->resume_reading();
  }

  void on_close(net::Connection&, std::error_code) noexcept override {
    conn_ = nullptr;
    server_.gone(this);  // deletes this
  }

  // The connection's one timer ran out: the wait for our work (response_timeout), the
  // request's deadline (request_timeout), or the idle time before a request. Whatever is
  // answered now, the connection closes after it.
  bool on_idle_timeout(net::Connection&) noexcept override {
    if (closing_) return false;
    answer_now_ = true;
    if (waiting_) {
      server_.expire(*this);
      return true;
    }
    if (!request_started_) return false;  // nothing asked, nothing to answer
    ++server_.stats_.request_timeouts;
    finish(json_error(408, fmt::format("the request was not complete within [http] "
                                       "request_timeout ({})",
                                       format_duration(server_.request_timeout_))),
           false);
    return true;
  }

  void close() noexcept {
    if (conn_ != nullptr && !closing_) {
      closing_ = true;
      conn_->close();
    }
  }

  // Idle keep-alive connections close at stop; a page from the control thread (stopped
  // before the shards) will not come: 503. A job being spooled is answered when it ends.
  void stop() noexcept {
    if (!waiting_) return close();
    if (on_gateway) finish(json_error(503, "salvod is stopping"), false);
  }

 private:
  friend struct net::HttpCallbacks<Conn>;

  int on_begin() {
    path_.clear();
    body_.clear();
    field_.clear();
    value_.clear();
    value_seen_ = false;
    too_large_ = false;
    expect_continue_ = false;
    host_.clear();
    origin_.clear();
    authorization_.clear();
    content_type_.clear();
    seen_ = 0;
    duplicate_ = false;
    refusal_.reset();
    discarded_ = 0;
    over_budget_ = false;
    lease_.reset();
    return 0;
  }
  int on_url(const char* at, std::size_t n) {
    path_.append(at, n);
    return path_.size() > 8192 ? 1 : 0;
  }
  int on_header_field(const char* at, std::size_t n) {
    // A value (even an empty one: http-parser reports it with length 0) ends the field
    // before; two field callbacks in a row are one name split across reads.
    if (value_seen_) header_done();
    field_.append(at, n);
    return 0;
  }
  int on_header_value(const char* at, std::size_t n) {
    value_seen_ = true;
    value_.append(at, n);
    return 0;
  }
  // The request headers salvod acts on itself (http-parser handles the framing ones).
  void header_done() {
    if (iequals(field_, "expect")) {
      expect_continue_ = iequals(value_, "100-continue");
    } else if (iequals(field_, "host")) {
      keep(kHost, host_);
    } else if (iequals(field_, "origin")) {
      keep(kOrigin, origin_);
    } else if (iequals(field_, "authorization")) {
      keep(kAuthorization, authorization_);
    } else if (iequals(field_, "content-type")) {
      keep(kContentType, content_type_);
    }
    field_.clear();
    value_.clear();
    value_seen_ = false;
  }
  void keep(unsigned bit, std::string& out) {
    if ((seen_ & bit) != 0) duplicate_ = true;
    seen_ |= bit;
    out.assign(trim_ows(value_));
  }
  std::optional<std::string_view> header(unsigned bit, const std::string& v) const {
    if ((seen_ & bit) == 0) return std::nullopt;
    return std::string_view(v);
  }
  int on_headers() {
    if (value_seen_ || !field_.empty()) header_done();
    // Strip the query string: no route takes parameters.
    if (auto q = path_.find('?'); q != std::string::npos) path_.resize(q);
    const bool get = parser_.method == HTTP_GET || parser_.method == HTTP_HEAD;
    RequestHead head;
    head.post = parser_.method == HTTP_POST;
    head.path = path_;
    head.host = header(kHost, host_);
    head.origin = header(kOrigin, origin_);
    head.authorization = header(kAuthorization, authorization_);
    head.content_type = header(kContentType, content_type_);
    head.duplicate = duplicate_;
    refusal_ = server_.admit(head, get);
    // http-parser sets content_length to ULLONG_MAX when the header is absent.
    const bool declared_too_large = parser_.content_length != ULLONG_MAX &&
                                    parser_.content_length > server_.max_request_size_;
    const bool has_body = (parser_.flags & F_CHUNKED) != 0 ||
                          (parser_.content_length != ULLONG_MAX && parser_.content_length > 0);
    if (refusal_ && (declared_too_large || (expect_continue_ && has_body))) {
      // Answered now, and the connection then closes: the body is not worth waiting for
      // (too large), or the client waits for a 100 Continue it will not get.
      answer_now_ = true;
      http_parser_pause(&parser_, 1);
      return 0;
    }
    if (declared_too_large) {
      too_large_ = true;
      return -1;
    }
    // The whole declared body is reserved before a byte of it is read (a chunked one as
    // it comes, in on_body). A refused request's body is dropped, not kept: nothing to
    // reserve.
    if (!refusal_ && parser_.content_length != ULLONG_MAX && parser_.content_length > 0 &&
        !lease_.grow(parser_.content_length)) {
      over_budget_ = true;
      return -1;
    }
    // RFC 9110 §10.1.1: a client that asked (curl does for larger bodies) waits for this
    // before sending the body.
    if (expect_continue_ && has_body && conn_ != nullptr) {
      conn_->send("HTTP/1.1 100 Continue\r\n\r\n");
    }
    return 0;
  }
  int on_body(const char* at, std::size_t n) {
    // Chunked bodies are counted here.
    if (body_.size() + discarded_ + n > server_.max_request_size_) {
      too_large_ = true;
      return -1;
    }
    if (refusal_) {
      discarded_ += n;  // read to keep the connection in step, never kept
      return 0;
    }
    if (body_.size() + n > lease_.bytes() && !lease_.grow(body_.size() + n - lease_.bytes())) {
      over_budget_ = true;
      return -1;
    }
    body_.append(at, n);
    return 0;
  }
  int on_complete() {
    http_parser_pause(&parser_, 1);
    return 0;
  }

  static constexpr unsigned kHost = 1, kOrigin = 2, kAuthorization = 4, kContentType = 8;

  HttpServer& server_;
  net::Connection* conn_;
  std::uint64_t token_;
  http_parser parser_{};
  http_parser_settings settings_{};
  std::string path_, body_, field_, value_;
  bool value_seen_ = false;
  std::string host_, origin_, authorization_, content_type_;
  unsigned seen_ = 0;  // kHost | kOrigin | ...
  bool duplicate_ = false;
  std::optional<Refusal> refusal_;
  bool answer_now_ = false;  // refused at the headers, or timed out: answer, then close
  std::uint64_t discarded_ = 0;
  bool waiting_ = false;
  bool closing_ = false;
  bool output_paused_ = false;
  bool too_large_ = false;
  bool over_budget_ = false;  // the body does not fit in the node's BodyBudget
  bool expect_continue_ = false;
  BodyBudget::Lease lease_;       // the bytes of body_ (all of a declared Content-Length)
  bool deadline_set_ = false;     // the request's deadline runs
  bool request_started_ = false;  // a byte of the request in hand has come
};

// ---- one /api/v1/inject job ------------------------------------------------------------

// Owner: the server (jobs_), from the request until the job is spooled and read back. The
// body is parsed in two passes like a pickup file (JobReader), from memory; recipients are
// fed in chunks while the spooler wants more (the writer's back-pressure). The body's
// share of the node's BodyBudget comes along with it and goes once the spool has it.
class HttpServer::Inject final : public inbound::JobSpooler::Owner {
 public:
  Inject(HttpServer& server, Conn& c, std::string log_name)
      : server_(server),
        token_(c.token()),
        body_(std::move(c.body())),
        lease_(std::move(c.lease())),
        reader_(server.inject_.limits),
        spooler_(inbound::JobSpooler::Services{server.shard_.clock(), *server.inject_.writer,
                                               *server.inject_.index, *server.reader_,
                                               server.inject_.accounting,
                                               server.inject_.dispatch},
                 inbound::JobSpooler::Origin{spool::Source::Http, "http",
                                             server.inject_.hostname,
                                             server.inject_.batch_recipients},
                 *this, std::move(log_name)) {}

  // Both passes go a chunk at a time, one chunk per loop turn, so a large job does not
  // hold up the shard's other connections.
  void start() noexcept {
    feeding_ = true;
    scan();
  }

  std::uint64_t token() const noexcept { return token_; }

  // The client waited response_timeout without an answer. Before the commit record the
  // job is given up (503: nothing of it will be delivered); once the commit is under way
  // its outcome is the writer's (504: it may still be queued, under the id given). False
  // when it was answered already.
  bool expire() noexcept {
    if (answered_) return false;
    ++server_.stats_.response_timeouts;
    const std::string waited = format_duration(server_.response_timeout_);
    if (committing_) {
      const std::string id = spool::format_id(spooler_.id().value());
      answer(json_reply(504, json{{"ok", false},
                                  {"id", id},
                                  {"error", fmt::format("the spool commit did not finish within "
                                                        "[http] response_timeout ({}); the job may "
                                                        "still be queued: look for id {} "
                                                        "(salvoctl trace) before sending it again",
                                                        waited, id)}}));
      return true;
    }
    abandoned_ = true;
    feeding_ = false;
    spooler_.abandon();
    release_body();
    ++server_.stats_.inject_failures;
    answer(json_error(503, fmt::format("not queued: not spooled within [http] response_timeout "
                                       "({}); retry later",
                                       waited)));
    maybe_done();
    return true;
  }

  void on_job_progress() noexcept override {
    if (feeding_) feed();
    maybe_done();
  }

  void on_job_committed(Status status) noexcept override {
    if (!status) return spool_failed(status.error());
    ++server_.stats_.injected_messages;
    server_.stats_.injected_recipients += spooler_.recipients();
    answer(json_reply(202, json{{"ok", true},
                                {"id", spool::format_id(spooler_.id().value())},
                                {"recipients", spooler_.recipients()}}));
    maybe_done();  // idle already when nothing is read back (no accounting, no delivery)
  }

 private:
  static constexpr std::size_t kChunk = 256 * 1024;

  void scan() noexcept {
    if (abandoned_) return maybe_done();
    const std::size_t n = std::min(kChunk, body_.size() - off_);
    if (auto e = reader_.scan(std::string_view(body_).substr(off_, n))) return refuse(*e);
    off_ += n;
    if (off_ < body_.size()) return later(&Inject::scan);
    if (auto e = reader_.finish_scan()) return refuse(*e);
    if (auto st = spooler_.begin(reader_.header()); !st) return spool_failed(st.error());
    off_ = reader_.recipients_offset();
    feed();
  }

  void later(void (Inject::*step)() noexcept) noexcept {
    stepping_ = true;
    server_.shard_.defer([this, step] {
      stepping_ = false;
      (this->*step)();
    });
  }

  void feed() noexcept {
    if (stepping_) return;  // a step is already scheduled
    if (abandoned_) return maybe_done();
    if (!reader_.recipients_done() && off_ < body_.size()) {
      if (!spooler_.wants_more()) return;  // on_job_progress() continues
      const std::size_t n = std::min(kChunk, body_.size() - off_);
      if (auto e = reader_.feed_recipients(std::string_view(body_).substr(off_, n),
                                           [this](inbound::JobRecipientData&& r) {
                                             spooler_.add(std::move(r));
                                           })) {
        spooler_.abandon();
        return refuse(*e);
      }
      off_ += n;
      if (spooler_.error()) {
        spooler_.abandon();
        return spool_failed(spooler_.error());
      }
      if (!reader_.recipients_done() && off_ < body_.size()) return later(&Inject::feed);
    }
    feeding_ = false;
    if (!reader_.recipients_done()) {
      spooler_.abandon();
      return refuse({"the recipients array is not closed", 0, body_.size(), "recipients"});
    }
    release_body();  // the spool has it now
    if (auto st = spooler_.finish(nullptr); !st) return spool_failed(st.error());
    committing_ = true;
  }

  void release_body() noexcept {
    body_ = std::string();
    lease_.reset();
  }

  // Bad input: 400 naming the place, nothing queued.
  void refuse(const inbound::PickupError& e) noexcept {
    feeding_ = false;
    json j{{"ok", false}, {"error", e.describe()}};
    if (e.line != 0) j["line"] = e.line;
    if (!e.field.empty()) j["field"] = e.field;
    answer(json_reply(400, j));
    maybe_done();
  }

  // The spool could not take it (disk full, IO error, stopping): 503, retry later.
  void spool_failed(std::error_code ec) noexcept {
    feeding_ = false;
    ++server_.stats_.inject_failures;
    answer(json_error(503, fmt::format("not queued: spool: {}; retry later", ec.message())));
    maybe_done();
  }

  void answer(HttpReply reply) noexcept {
    if (answered_) return;
    answered_ = true;
    auto it = server_.conns_.find(token_);
    if (it != server_.conns_.end() && it->second->waiting()) {
      it->second->finish(std::move(reply), true);
    }
  }

  void maybe_done() noexcept {
    if (!answered_ || feeding_ || stepping_ || !spooler_.idle() || done_) return;
    done_ = true;
    server_.inject_done(this);
  }

  HttpServer& server_;
  std::uint64_t token_;
  std::string body_;
  BodyBudget::Lease lease_;  // body_'s bytes
  inbound::JobReader reader_;
  inbound::JobSpooler spooler_;
  std::uint64_t off_ = 0;
  bool feeding_ = false;
  bool stepping_ = false;  // a scan/feed step is deferred (it holds `this`)
  bool answered_ = false;
  bool done_ = false;
  bool abandoned_ = false;   // expired before its commit
  bool committing_ = false;  // finish() succeeded: on_job_committed will come
};

// ---- the server ------------------------------------------------------------------------

HttpServer::HttpServer(shard::Shard& shard, net::Stack& stack, WebGateway& gateway,
                       InjectDeps inject, const config::Http& config, const HttpShared& shared)
    : shard_(shard),
      stack_(stack),
      gateway_(gateway),
      inject_(std::move(inject)),
      max_request_size_(config.max_request_size),
      request_timeout_(config.request_timeout),
      response_timeout_(config.response_timeout),
      shared_(shared) {}

HttpServer::~HttpServer() {
  if (listener_ != nullptr) listener_->close();
}

Status HttpServer::start() {
  reader_ = std::make_unique<spool::SpoolReader>(shard_.engine(), inject_.spool_dir);
  auto l = stack_.listen(shared_.address, net::ReusePort::Yes, *this);
  if (!l) return std::unexpected(l.error());
  listener_ = *l;
  return {};
}

void HttpServer::on_accept(net::Listener&, net::Connection& c) noexcept {
  ++stats_.connections;
  if (stopping_) {
    c.abort();
    return;
  }
  if (conns_.size() >= kMaxConnections) {
    ++stats_.refused;
    c.abort();
    return;
  }
  const std::uint64_t token = next_token_++;
  conns_.emplace(token, new Conn(*this, c, token));
  // HTTPS: TLS from the first byte. A client that speaks plain HTTP here fails the
  // handshake, and the connection closes (net counts it in tls_failures).
  if (shared_.tls != nullptr) c.start_tls(*shared_.tls, {});
}

void HttpServer::gone(Conn* c) noexcept {
  conns_.erase(c->token());
  delete c;
}

void HttpServer::begin_stop() noexcept {
  stopping_ = true;
  if (listener_ != nullptr) {
    listener_->close();
    listener_ = nullptr;
  }
  // Copy: close() never calls on_close from inside, but stay safe against erasure.
  std::vector<Conn*> all;
  all.reserve(conns_.size());
  for (auto& [t, c] : conns_) all.push_back(c);
  for (Conn* c : all) c->stop();
}

bool HttpServer::drained() const noexcept { return jobs_.empty(); }

void HttpServer::complete(std::uint64_t token, HttpReply reply) noexcept {
  auto it = conns_.find(token);
  if (it == conns_.end() || !it->second->on_gateway) return;  // the client left meanwhile
  it->second->on_gateway = false;
  it->second->finish(std::move(reply), true);
}

std::optional<HttpServer::Refusal> HttpServer::admit(const RequestHead& head, bool get) noexcept {
  if (get && head.path == "/healthz") return std::nullopt;
  const Access access = shared_.access->check(head);
  auto shown = [](std::optional<std::string_view> v) {
    return std::string(v.value_or("").substr(0, 200));
  };
  constexpr std::string_view kChallenge = "WWW-Authenticate: Bearer realm=\"salvod\"\r\n";
  constexpr std::string_view kInvalid =
      "WWW-Authenticate: Bearer realm=\"salvod\", error=\"invalid_token\"\r\n";
  auto unauthorized = [&](std::string message, std::string_view challenge) -> Refusal {
    ++stats_.unauthorized;
    // A browser shows a 401's body: for the dashboard that is the page itself, which asks
    // for the token (it holds no data; the data comes from /api/v1/status with it).
    if (get && (head.path == "/" || head.path == "/index.html")) {
      return Refusal{HttpReply{401, "text/html; charset=utf-8", std::string(kDashboardHtml)},
                     std::string(challenge)};
    }
    return Refusal{json_error(401, std::move(message)), std::string(challenge)};
  };
  switch (access) {
    case Access::Allowed:
      return std::nullopt;
    case Access::Ambiguous:
      return Refusal{json_error(400, "Host, Origin, Authorization or Content-Type given twice"),
                     ""};
    case Access::ForbiddenHost:
      ++stats_.forbidden_host;
      return Refusal{json_error(403, fmt::format("Host '{}' is not a loopback name: this loopback "
                                                 "listener answers localhost, 127.0.0.1 and [::1] "
                                                 "only (DNS rebinding)",
                                                 shown(head.host))),
                     ""};
    case Access::ForbiddenOrigin:
      ++stats_.forbidden_origin;
      return Refusal{json_error(403, fmt::format("Origin '{}' is not allowed: pages of other "
                                                 "origins need [http] allowed_origins",
                                                 shown(head.origin))),
                     ""};
    case Access::UnsupportedMedia:
      ++stats_.unsupported_media;
      return Refusal{json_error(415, "POST /api/v1/inject takes Content-Type: application/json"),
                     ""};
    case Access::NoTokens:
      return unauthorized("no [http] token_file is configured: nothing but /healthz is served",
                          kChallenge);
    case Access::MissingToken:
      return unauthorized("send Authorization: Bearer TOKEN, a token of [http] token_file",
                          kChallenge);
    case Access::InvalidToken:
      return unauthorized("the bearer token is not one of [http] token_file", kInvalid);
  }
  return Refusal{json_error(500, "access check"), ""};
}

void HttpServer::route(Conn& c) noexcept {
  ++stats_.requests;
  if (auto& refused = c.refusal()) {
    return c.finish(std::move(refused->reply), true, refused->headers);
  }
  const std::string& path = c.path();
  const unsigned m = c.method();
  const bool get = m == HTTP_GET || m == HTTP_HEAD;
  if (path == "/healthz") {
    if (!get) return c.finish(json_error(405, "use GET"), true);
    if (stopping_) {
      return c.finish(HttpReply{503, "text/plain; charset=utf-8", "stopping\n"}, false);
    }
    return c.finish(HttpReply{200, "text/plain; charset=utf-8", "ok\n"}, true);
  }
  if (path == "/" || path == "/index.html") {
    if (!get) return c.finish(json_error(405, "use GET"), true);
    return c.finish(HttpReply{200, "text/html; charset=utf-8", std::string(kDashboardHtml)}, true);
  }
  if (path == "/metrics" || path == "/api/v1/status") {
    if (!get) return c.finish(json_error(405, "use GET"), true);
    if (stopping_) return c.finish(json_error(503, "salvod is stopping"), false);
    c.on_gateway = true;
    gateway_.render(shard_.id().value(), c.token(),
                    path == "/metrics" ? WebPage::Metrics : WebPage::Status);
    return;  // complete() answers
  }
  if (path == "/api/v1/inject") {
    if (m != HTTP_POST) return c.finish(json_error(405, "use POST with a JSON job"), true);
    return start_inject(c);
  }
  c.finish(json_error(404, fmt::format("no such resource: {}", path.substr(0, 200))), true);
}

void HttpServer::expire(Conn& c) noexcept {
  if (c.on_gateway) {
    c.on_gateway = false;
    ++stats_.response_timeouts;
    return c.finish(json_error(504, fmt::format("the page was not ready within [http] "
                                                "response_timeout ({}); try again",
                                                format_duration(response_timeout_))),
                    false);
  }
  for (auto& [p, job] : jobs_) {
    if (job->token() == c.token() && job->expire()) return;
  }
}

void HttpServer::start_inject(Conn& c) noexcept {
  if (stopping_ || intake_stopped_) {
    return c.finish(json_error(503, "salvod is not taking mail (stopping or draining)"), true);
  }
  if (inject_.writer == nullptr || inject_.index == nullptr) {
    return c.finish(json_error(503, "injection is not available"), true);
  }
  auto job = std::make_unique<Inject>(*this, c, fmt::format("http {}", c.peer()));
  Inject* p = job.get();
  jobs_.emplace(p, std::move(job));
  p->start();
}

// Not from inside the job's own callback: freed from a deferred task.
void HttpServer::inject_done(Inject* job) noexcept {
  shard_.defer([this, job] { jobs_.erase(job); });
}

namespace {

constexpr metrics::Family kRequests{"salvo_http_requests_total", metrics::Type::Counter,
                                    "HTTP requests answered or in progress."};
constexpr metrics::Family kRefused{
    "salvo_http_requests_refused_total", metrics::Type::Counter,
    "HTTP requests refused before reaching a page, by reason: unauthorized (401: no, wrong "
    "or no configured bearer token), forbidden_host and forbidden_origin (403), "
    "unsupported_media (415), request_timeout (408: not in whole within request_timeout), "
    "body_budget (503: its body does not fit in what max_pending_body_bytes leaves)."};
constexpr metrics::Family kResponseTimeouts{
    "salvo_http_response_timeouts_total", metrics::Type::Counter,
    "HTTP requests answered 503/504 because salvod's own work (a spool commit, a page of "
    "every shard) took longer than response_timeout."};

}  // namespace

void HttpServer::report(metrics::Snapshot& s) const {
  const std::string http = metrics::label("source", "http");
  s.add(inbound::kReceivedMessages, http, stats_.injected_messages);
  s.add(inbound::kReceivedRecipients, http, stats_.injected_recipients);
  s.add(kRequests, {}, stats_.requests);
  s.add(kRefused, metrics::label("reason", "unauthorized"), stats_.unauthorized);
  s.add(kRefused, metrics::label("reason", "forbidden_host"), stats_.forbidden_host);
  s.add(kRefused, metrics::label("reason", "forbidden_origin"), stats_.forbidden_origin);
  s.add(kRefused, metrics::label("reason", "unsupported_media"), stats_.unsupported_media);
  s.add(kRefused, metrics::label("reason", "request_timeout"), stats_.request_timeouts);
  s.add(kRefused, metrics::label("reason", "body_budget"), stats_.body_budget);
  s.add(kResponseTimeouts, {}, stats_.response_timeouts);
  s.add(net::kConnectionsOpen, "direction=\"in\",protocol=\"http\"",
        static_cast<std::uint64_t>(conns_.size()));
}

}  // namespace salvo::admin
