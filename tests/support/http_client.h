// SPDX-License-Identifier: Apache-2.0
// A minimal HTTP/1.1 client for salvod's admin surface in integration tests: one request
// on a fresh loopback connection, read to EOF, bounded in time. Requests are written by
// hand so tests can send exactly the headers (or the malformed bytes) they mean to.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "support/process.h"

namespace salvo::test {

struct HttpResult {
  int status = 0;        // 0 when nothing parseable came back
  std::string headers;   // the status line and header lines of the first answer
  std::string body;      // everything after the first answer's head
  // The value of the first header `name` (ASCII case-insensitive), or "".
  std::string header(std::string_view name) const;
};

// An answer as received (status line, headers, body); status 0 when it is not one.
HttpResult parse_http_answer(const std::string& received);

// Sends `raw` to 127.0.0.1:port and reads until the server closes (at most `timeout_s`).
HttpResult http_raw(std::uint16_t port, const std::string& raw, int timeout_s = 10);

struct HttpCall {
  std::string method = "GET";
  std::string path = "/";
  std::string body;
  std::string token;                      // "" = no Authorization header
  std::string host = "127.0.0.1";         // "" = no Host header
  std::string content_type = "application/json";  // sent with a body or a POST; "" = none
  std::vector<std::string> headers;       // more "Name: value" lines
};

// One request built from `c` ("Connection: close").
HttpResult http_call(std::uint16_t port, const HttpCall& c);

// Writes `text` to DIR/name with `mode` (e.g. 0600) and returns the path.
std::string write_secret_file(const TempDir& dir, const std::string& name, const std::string& text,
                              unsigned mode);

}  // namespace salvo::test
