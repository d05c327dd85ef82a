// SPDX-License-Identifier: Apache-2.0
// StsFetch: the HTTPS GET of an MTA-STS policy (see mta_sts_fetch.h).
#include "outbound/mta_sts_fetch.h"

#include <utility>

#include <fmt/format.h>

#include <salvo/base/ascii.h>
#include <salvo/net/http_callbacks.h>
#include <salvo/net/tls.h>

#include "outbound/mta_sts.h"

namespace salvo::outbound {
namespace {

class StsFetch final : public net::ConnectHandler, public net::ConnectionHandler {
 public:
  StsFetch(StsFetchRequest r, StsFetchCallback done)
      : req_(std::move(r)), done_(std::move(done)) {
    net::HttpCallbacks<StsFetch>::bind(settings_);
    http_parser_init(&parser_, HTTP_RESPONSE);
    parser_.data = this;
  }

  void start(net::Stack& stack) {
    stack.connect(req_.address, nullptr, req_.timeout, *this);
  }

  void on_connect(net::Connection* c, std::error_code why) noexcept override {
    if (c == nullptr) {
      finish(std::unexpected(fmt::format("connect to {} [{}] failed: {}", req_.host,
                                         req_.address.to_string(), why.message())));
      delete this;
      return;
    }
    conn_ = c;
    c->set_handler(this);
    c->set_deadline(req_.clock->now() + req_.timeout);
    const net::TlsContext* ctx = req_.settings ? req_.settings->tls_verified.get() : nullptr;
    if (ctx == nullptr) {
      error_ = "no verifying TLS context";
      c->abort();
      return;
    }
    c->start_tls(*ctx, req_.host);
  }

  void on_tls_ready(net::Connection& c) noexcept override {
    c.send(fmt::format("GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {}\r\n"
                       "User-Agent: salvo\r\nAccept: text/plain\r\nConnection: close\r\n\r\n",
                       req_.host));
  }

  void on_data(net::Connection& c, ByteBuffer& in) noexcept override {
    if (aborted_) {
      in.consume(in.size());
      return;
    }
    const std::string_view v = in.view();
    const std::size_t used = http_parser_execute(&parser_, &settings_, v.data(), v.size());
    in.consume(v.size());
    (void)used;
    if (HTTP_PARSER_ERRNO(&parser_) != HPE_OK || complete_) {
      if (!complete_ && error_.empty()) {
        error_ = fmt::format("bad HTTP response: {}",
                             http_errno_description(HTTP_PARSER_ERRNO(&parser_)));
      }
      aborted_ = true;
      c.abort();
    }
  }

  void on_close(net::Connection& c, std::error_code why) noexcept override {
    if (!complete_ && !aborted_ && HTTP_PARSER_ERRNO(&parser_) == HPE_OK) {
      http_parser_execute(&parser_, &settings_, nullptr, 0);  // a body ended by the close
    }
    if (complete_ && error_.empty()) {
      finish(std::move(body_));
    } else {
      std::string reason = error_;
      if (reason.empty()) {
        const net::TlsSession* t = c.tls();
        if (t != nullptr && !t->error().empty()) {
          reason = t->error();
        } else {
          reason = why ? why.message() : std::string("connection closed before the response");
        }
      }
      finish(std::unexpected(fmt::format("https://{}: {}", req_.host, reason)));
    }
    delete this;
  }

 private:
  friend struct net::HttpCallbacks<StsFetch>;

  int on_header_field(const char* at, std::size_t n) {
    if (!in_field_) field_.clear();
    in_field_ = true;
    if (field_.size() + n > 256) return 1;
    field_.append(at, n);
    return 0;
  }
  int on_header_value(const char* at, std::size_t n) {
    in_field_ = false;
    if (!ascii::iequals(field_, "content-type")) return 0;
    if (content_type_.size() + n > 256) return 1;
    content_type_.append(at, n);
    return 0;
  }
  int on_headers() {
    if (parser_.status_code != 200) {
      // §3.3: redirects are not followed; anything but 200 is a failed fetch.
      error_ = fmt::format("HTTP status {}", static_cast<unsigned>(parser_.status_code));
      return 1;
    }
    // §3.2: media type text/plain (parameters such as charset allowed).
    if (!ascii::istarts_with(content_type_, "text/plain")) {
      error_ = fmt::format("media type '{}', not text/plain", content_type_.substr(0, 64));
      return 1;
    }
    return 0;
  }
  int on_body(const char* at, std::size_t n) {
    if (body_.size() + n > kMaxPolicyBytes) {
      error_ = "policy larger than 64 KiB";
      return 1;
    }
    body_.append(at, n);
    return 0;
  }
  int on_complete() {
    complete_ = true;
    return 0;
  }

  void finish(StsFetchResult r) {
    if (!done_) return;
    auto done = std::move(done_);
    done_ = nullptr;
    done(std::move(r));
  }

  StsFetchRequest req_;
  StsFetchCallback done_;
  net::Connection* conn_ = nullptr;
  http_parser parser_{};
  http_parser_settings settings_{};
  std::string field_, content_type_, body_, error_;
  bool in_field_ = false;
  bool complete_ = false;
  bool aborted_ = false;
};

}  // namespace

void start_sts_fetch(net::Stack& stack, StsFetchRequest request, StsFetchCallback done) {
  auto* f = new StsFetch(std::move(request), std::move(done));
  f->start(stack);
}

}  // namespace salvo::outbound
