// SPDX-License-Identifier: Apache-2.0
// Test helper: a ServerSession fed from strings, collecting its output.
#pragma once

#include <salvo/smtp/server_session.h>

#include <string>
#include <string_view>
#include <vector>

namespace salvo::smtp::testing {

// Accepts everything; relay denied for "relay@" style tests via `deny_domain`.
class TestPolicy : public ServerPolicy {
 public:
  std::string deny_domain;
  std::string password = "secret";
  std::optional<Reply> on_rcpt(const ServerSession& s, const Path& p, const RcptParams&) override {
    if (!deny_domain.empty() && p.domain == deny_domain && !s.authenticated())
      return Reply(554, {5, 7, 1}, "Relay access denied");
    return std::nullopt;
  }
  std::optional<Reply> on_auth(const ServerSession&, AuthMechanism, std::string_view,
                               std::string_view user, std::string_view pass) override {
    if (user == "user" && pass == password) return std::nullopt;
    return Reply(535, {5, 7, 8}, "Error: authentication failed");
  }
};

inline ServerConfig test_config() {
  ServerConfig c;
  c.hostname = "mx.test";
  c.greeting = "ESMTP salvo";
  c.max_message_size = 10 * 1024 * 1024;
  c.max_recipients = 100;
  c.keep_body = true;
  return c;
}

struct Harness {
  explicit Harness(ServerConfig c = test_config()) : cfg(std::move(c)), session(cfg, policy) {
    session.greet();
    greeting = take();
  }
  std::string take() {
    std::string s(session.output().view());
    session.output().clear();
    return s;
  }
  // Feeds bytes; on MessageReady records the body and completes with 250 (if auto_complete).
  std::string send(std::string_view bytes) {
    in.append(bytes);
    return pump();
  }
  std::string pump() {
    std::string out;
    while (true) {
      last = session.feed(in);
      out += take();
      if (last == ServerEvent::MessageReady) {
        bodies.emplace_back(session.body().view());
        envelopes.push_back(session.envelope());
        if (!auto_complete) break;
        session.complete_message(250, {2, 0, 0}, "Ok: queued");
        out += take();
        continue;
      }
      if (last == ServerEvent::StartTls) {
        in.clear();  // the net layer discards buffered plaintext
        if (!auto_tls) break;
        session.tls_established();
        continue;
      }
      break;
    }
    return out;
  }
  // EHLO and a transaction header for convenience.
  void ehlo() { send("EHLO client.test\r\n"); }

  ServerConfig cfg;
  TestPolicy policy;
  ServerSession session;
  ByteBuffer in;
  std::string greeting;
  ServerEvent last = ServerEvent::None;
  bool auto_complete = true;
  bool auto_tls = true;
  std::vector<std::string> bodies;
  std::vector<Envelope> envelopes;
};

// First three characters of each reply line that ends a reply ("250 ", not "250-").
inline std::vector<std::string> codes(std::string_view out) {
  std::vector<std::string> v;
  while (!out.empty()) {
    std::size_t nl = out.find("\r\n");
    std::string_view line = out.substr(0, nl);
    if (line.size() >= 4 && line[3] == ' ') v.emplace_back(line.substr(0, 3));
    else if (line.size() == 3) v.emplace_back(line);
    if (nl == std::string_view::npos) break;
    out.remove_prefix(nl + 2);
  }
  return v;
}

}  // namespace salvo::smtp::testing
