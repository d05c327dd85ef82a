// SPDX-License-Identifier: Apache-2.0
// The delivery tests' world: Debian's unbound on a loopback port serving the test zones,
// salvo-sink MX hosts on 127.0.0.x (the main one with the test's fault keys), salvod
// configured to deliver through them, salvo-blast to inject, and readers of salvod's
// accounting log.
#pragma once

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "support/accounting_log.h"
#include "support/blast.h"
#include "support/process.h"
#include "support/raw_client.h"
#include "support/salvod.h"
#include "support/sink.h"
#include "support/unbound_server.h"

namespace salvo::test {

// The test zones. Every MX host listens on one port P ([delivery] smtp_port): 127.0.0.2 has
// nothing listening, 127.0.0.3 is the main sink, 127.0.0.4 the senders' MX (DSNs land there).
// salvo-blast sends to d0.<suffix>, so the domains are d0.*.
inline UnboundOptions zones(std::vector<std::string> more = {}) {
  UnboundOptions o;
  o.static_zones = {"test."};
  o.local_data = {
      // MX preference and fallback: mx1 (closed) first, then mx2.
      "d0.pref.test. 300 IN MX 10 mx1.pref.test.",
      "d0.pref.test. 300 IN MX 20 mx2.pref.test.",
      "mx1.pref.test. 300 IN A 127.0.0.2",
      "mx2.pref.test. 300 IN A 127.0.0.3",
      // Implicit MX: no MX record, an A record.
      "d0.implicit.test. 300 IN A 127.0.0.3",
      // RFC 7505 null MX.
      "d0.nullmx.test. 300 IN MX 0 .",
      // Ordinary domains on the main sink.
      "d0.ok.test. 300 IN MX 10 mx.ok.test.",
      "mx.ok.test. 300 IN A 127.0.0.3",
      "d0.egress.test. 300 IN A 127.0.0.5",
      "sender.test. 300 IN MX 10 mx.sender.test.",
      "mx.sender.test. 300 IN A 127.0.0.4",
  };
  for (auto& m : more) o.local_data.push_back(std::move(m));
  o.servfail_zones = {"servfail.example."};
  return o;
}

// unbound serving the zones; the main sink on 127.0.0.3 (`mx_args`: "--flag value" pairs,
// or keys of its listener: "latency=2s"), the senders' sink on 127.0.0.4.
struct Env {
  TempDir dir;
  std::unique_ptr<UnboundServer> dns;
  std::uint16_t port = 0;
  std::unique_ptr<Sink> mx;       // 127.0.0.3:port
  std::unique_ptr<Sink> senders;  // 127.0.0.4:port, keeps mail (DSNs)

  explicit Env(UnboundOptions z = zones(), std::vector<std::string> mx_args = {}) {
    start_dns(std::move(z));
    port = free_loopback_port();
    std::vector<std::string> args = {"--cores", "1", "--maildir", dir.file("mx-mail")};
    std::string spec = fmt::format("127.0.0.3:{}", port);
    for (const auto& f : mx_args) {
      if (f.starts_with("--")) {
        args.push_back(f);
      } else if (!args.empty() && args.back().starts_with("--tls")) {
        args.push_back(f);
      } else {
        spec += "," + f;
      }
    }
    args.push_back("--listen");
    args.push_back(spec);
    mx = std::make_unique<Sink>(dir, args);
    senders = std::make_unique<Sink>(
        dir, std::vector<std::string>{"--cores", "1", "--listen",
                                      fmt::format("127.0.0.4:{}", port), "--maildir",
                                      dir.file("sender-mail")});
  }

  void start_dns(UnboundOptions z) {
    dns.reset();
    dns = std::make_unique<UnboundServer>(std::move(z));
    if (!dns->started()) throw std::runtime_error("unbound: " + dns->error());
  }

  // salvod delivering through the test DNS; more tables in `more`, more [delivery] keys in
  // `delivery`, more [dns] keys in `dns_keys`.
  SalvodOptions salvod(const std::string& more = "", const std::string& delivery = "",
                       const std::string& dns_keys = "") const {
    SalvodOptions o;
    o.hold_delivery = false;
    o.extra = fmt::format(
        "[dns]\nresolvers = [\"{}\"]\ntimeout = \"1s\"\n{}\n[delivery]\nsmtp_port = {}\n"
        "retry_schedule = [\"1s\"]\n{}\n{}\n{}",
        dns->address(), dns_keys, port,
        delivery.find("backoff_pause") == std::string::npos ? "backoff_pause = \"100ms\"" : "",
        delivery, more);
    return o;
  }
};

// salvo-blast injects `messages` into salvod for d0.<suffix>, from shop@sender.test.
inline nlohmann::json blast_to(const TempDir& dir, const Salvod& d, int messages,
                               const std::string& suffix, std::vector<std::string> more = {}) {
  std::vector<std::string> args = {"--connections", "2", "--messages", std::to_string(messages),
                                   "--from", "shop@sender.test", "--domains", "1",
                                   "--domain-suffix", suffix};
  args.insert(args.end(), more.begin(), more.end());
  return run_blast(dir, d.address(), args);
}

// One message over SMTP from shop@sender.test to rcpt; `text` is its header and body
// (CRLF line ends, the last line ended) without the final dot. The reply to the data.
inline std::string send_message(const Salvod& d, const std::string& rcpt,
                                const std::string& text) {
  RawClient c(d.socket_address());
  c.read_reply();
  c.send("EHLO client.example\r\n");
  c.read_reply();
  c.send("MAIL FROM:<shop@sender.test>\r\nRCPT TO:<" + rcpt + ">\r\nDATA\r\n");
  c.read_replies(3);
  c.send(text + ".\r\n");
  return c.read_reply();
}

// Every message a sink kept under `dir` (--maildir), whole.
inline std::vector<std::string> maildir_messages(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    out.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return out;
}

// The copies the MX sink kept, per Delivered-To address.
inline std::map<std::string, int> delivered_to(const Env& env) {
  std::map<std::string, int> n;
  for (const auto& m : maildir_messages(env.dir.file("mx-mail"))) {
    auto p = m.find("Delivered-To: ");
    if (p != std::string::npos) ++n[m.substr(p + 14, m.find("\r\n", p) - p - 14)];
  }
  return n;
}

// How many accounting events of `type` salvod has written so far.
inline int count_of(const TempDir& dir, const std::string& type) {
  return counts_by_type(accounting_events(dir.file("log")))[type];
}

// Every accounting event of `type`, in order.
inline std::vector<nlohmann::json> of_type(const TempDir& dir, const std::string& type) {
  return events_of_type(accounting_events(dir.file("log")), type);
}

}  // namespace salvo::test
