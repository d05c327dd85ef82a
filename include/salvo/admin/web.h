// SPDX-License-Identifier: Apache-2.0
// What the admin HTTP server and the control thread exchange: which page a shard asks the
// control thread to render (the pages that need every shard), the answer, and the HTTP
// counters a shard keeps.
#pragma once

#include <cstdint>
#include <string>

namespace salvo::admin {

enum class WebPage : std::uint8_t { Metrics, Status };

// An HTTP answer (status, content type, body).
struct HttpReply {
  int status = 200;
  std::string content_type;
  std::string body;
};

// The control thread's side. Any thread may call render(); the answer reaches shard
// `shard` later (or never, if it stops first).
class WebGateway {
 public:
  virtual ~WebGateway() = default;
  virtual void render(std::uint32_t shard, std::uint64_t token, WebPage page) noexcept = 0;
};

struct HttpStats {
  std::uint64_t connections = 0;
  std::uint64_t refused = 0;              // past the per-shard connection cap
  std::uint64_t requests = 0;
  std::uint64_t bad_requests = 0;         // 4xx answers
  std::uint64_t injected_messages = 0;    // jobs queued through /api/v1/inject
  std::uint64_t injected_recipients = 0;
  std::uint64_t inject_failures = 0;      // spool errors (5xx)
  // Refused before reaching a page (see http_access.h), by reason.
  std::uint64_t unauthorized = 0;         // 401: no, wrong or unconfigured bearer token
  std::uint64_t forbidden_host = 0;       // 403: a non-loopback Host on a loopback listener
  std::uint64_t forbidden_origin = 0;     // 403: an Origin not allowed
  std::uint64_t unsupported_media = 0;    // 415: an inject that is not application/json
  std::uint64_t request_timeouts = 0;     // 408: not in whole within request_timeout
  std::uint64_t body_budget = 0;          // 503: the body exceeds max_pending_body_bytes left
  // Answered 503/504 because salvod's own work took longer than response_timeout.
  std::uint64_t response_timeouts = 0;
  HttpStats& operator+=(const HttpStats& o) noexcept {
    connections += o.connections;
    refused += o.refused;
    requests += o.requests;
    bad_requests += o.bad_requests;
    injected_messages += o.injected_messages;
    injected_recipients += o.injected_recipients;
    inject_failures += o.inject_failures;
    unauthorized += o.unauthorized;
    forbidden_host += o.forbidden_host;
    forbidden_origin += o.forbidden_origin;
    unsupported_media += o.unsupported_media;
    request_timeouts += o.request_timeouts;
    body_budget += o.body_budget;
    response_timeouts += o.response_timeouts;
    return *this;
  }
};

}  // namespace salvo::admin
