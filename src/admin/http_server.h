// SPDX-License-Identifier: Apache-2.0
// The HTTP surface of salvod: `[http] address`, served by every shard on the same
// port (SO_REUSEPORT) over the shard's net::Stack, parsed by nodejs/http-parser; HTTPS
// from the first byte with [http] tls = true.
//
//   GET  /healthz         "ok" (no token needed: load balancers, systemd checks)
//   GET  /                the dashboard (one self-contained page, src/admin/dashboard.html)
//   GET  /metrics         Prometheus text format          ┐ rendered by the control thread,
//   GET  /api/v1/status   the dashboard's JSON            ┘ which asks every shard
//   POST /api/v1/inject   a bulk job (the .json pickup format), 202 after the group commit
//
// Every request but GET /healthz passes HttpAccess's checks (Host, Origin, Content-Type,
// bearer token) once its headers are in, before its body is kept: a refused request is
// answered 400/401/403/415 and its body read and dropped (or, when it has not been sent
// yet or is larger than max_request_size, not read: the connection closes).
//
// Pages that need every shard's state go to the control thread (WebGateway); its answer
// comes back on this shard through the ControlInbox (ShardRequest::Kind::HttpReply) and is
// matched by token. A shard never blocks on another.
//
// Bounds, each answered and then closed: a request must be in whole within
// request_timeout of its first byte (of the accept, for a connection's first request),
// else 408; a complete request waits for salvod's own work at most response_timeout, else
// 504 (a page, or an inject whose commit is under way: it may still be queued) or 503 (an
// inject given up before its commit: nothing queued); a body that does not fit in what is
// left of the node's BodyBudget gets 503 with Retry-After before any of it is read.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include <salvo/base/clock.h>
#include <salvo/base/metrics.h>
#include <salvo/base/result.h>
#include <salvo/config/config.h>
#include <salvo/inbound/pickup_format.h>
#include <salvo/net/stack.h>
#include <salvo/shard/shard.h>

#include <salvo/admin/http_access.h>
#include <salvo/admin/http_shared.h>
#include <salvo/admin/web.h>

namespace salvo::spool {
class SpoolWriter;
class SpoolIndex;
class SpoolReader;
class Dispatch;
}  // namespace salvo::spool

namespace salvo::accounting {
class Writer;
}

namespace salvo::admin {

// What /api/v1/inject needs to spool a job on this shard.
struct InjectDeps {
  spool::SpoolWriter* writer = nullptr;
  const spool::SpoolIndex* index = nullptr;
  accounting::Writer* accounting = nullptr;  // may be null
  spool::Dispatch* dispatch = nullptr;       // may be null
  std::string spool_dir;                     // this shard's spool directory (read-back)
  std::string hostname;                      // Received: by
  inbound::PickupLimits limits;
  std::uint32_t batch_recipients = 1000;
};

// Owner: one shard (all calls on its thread). Lifecycle: construct in the shard's init after
// the spool writer, start(), begin_stop() from the stop hook, destroy once drained() (jobs
// being spooled finish first: their mail is queued whether or not the client waits).
class HttpServer final : public net::AcceptHandler, public metrics::Source {
 public:
  // `shared` points at what every shard shares (outliving the server); `config` is read
  // here only.
  HttpServer(shard::Shard& shard, net::Stack& stack, WebGateway& gateway, InjectDeps inject,
             const config::Http& config, const HttpShared& shared);
  ~HttpServer() override;
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the shared address with SO_REUSEPORT (every shard joins the port). Start-up only.
  [[nodiscard]] Status start();
  void begin_stop() noexcept;
  // salvoctl drain: /api/v1/inject answers 503 from now on; pages are still served.
  void stop_intake() noexcept { intake_stopped_ = true; }
  bool drained() const noexcept;
  // The control thread's answer to a render() this server asked for.
  void complete(std::uint64_t token, HttpReply reply) noexcept;

  const HttpStats& stats() const noexcept { return stats_; }
  // received (source="http"), requests, requests refused by reason, response timeouts,
  // connections open.
  void report(metrics::Snapshot& s) const override;
  std::size_t connection_count() const noexcept { return conns_.size(); }

  void on_accept(net::Listener& l, net::Connection& c) noexcept override;

 private:
  class Conn;
  class Inject;
  friend class Conn;
  friend class Inject;
  // A request refused by the access checks: its answer and extra header lines.
  struct Refusal {
    HttpReply reply;
    std::string headers;  // "WWW-Authenticate: ...\r\n" for a 401
  };

  // The access checks on a request's head (counted by reason); nullopt = go on. get: a
  // GET or HEAD (GET /healthz is not checked).
  std::optional<Refusal> admit(const RequestHead& head, bool get) noexcept;
  void route(Conn& c) noexcept;
  // c waited for our work longer than response_timeout: answer it now (it then closes).
  void expire(Conn& c) noexcept;
  void start_inject(Conn& c) noexcept;
  void gone(Conn* c) noexcept;
  void inject_done(Inject* job) noexcept;

  shard::Shard& shard_;
  net::Stack& stack_;
  WebGateway& gateway_;
  InjectDeps inject_;
  std::uint64_t max_request_size_;
  Duration request_timeout_;
  Duration response_timeout_;
  HttpShared shared_;
  net::Listener* listener_ = nullptr;
  std::unique_ptr<spool::SpoolReader> reader_;  // job read-back (accounting, delivery)
  std::uint64_t next_token_ = 1;
  // Live connections by token (a late answer for a closed one finds nothing).
  std::unordered_map<std::uint64_t, Conn*> conns_;
  std::unordered_map<Inject*, std::unique_ptr<Inject>> jobs_;
  bool stopping_ = false;
  bool intake_stopped_ = false;
  HttpStats stats_;
};

}  // namespace salvo::admin
