// SPDX-License-Identifier: Apache-2.0
// UnboundServer: Debian's unbound on a free 127.0.0.1 port for integration tests, serving
// the test zones from local-data. Never queries outside the host: every name
// outside the configured zones is REFUSED, and the SERVFAIL zones are stubs that unbound is
// not allowed to query (do-not-query-localhost), which it answers with SERVFAIL at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "support/process.h"

namespace salvo::test {

struct UnboundOptions {
  // Zones served from local-data with type static (NXDOMAIN for names without data). Each
  // gets an SOA (negative TTL `soa_minimum`) unless local_data already has one for it.
  std::vector<std::string> static_zones = {"test."};
  // Zone-file lines, e.g. "example.test. 300 IN MX 10 mx1.example.test."
  std::vector<std::string> local_data;
  // Names whose every query gets SERVFAIL (a stub zone pointing at 127.0.0.1, which unbound
  // refuses to query), e.g. "servfail.example.".
  std::vector<std::string> servfail_zones;
  std::uint32_t soa_minimum = 300;
  // Extra lines for the server: clause, verbatim.
  std::vector<std::string> extra;
  // DNSSEC-signed zones ({zone name, signed zone file, DS file}) served as auth-zones that
  // only the resolver side sees (for-upstream), so its answers go through the validator with
  // the DS as trust anchor and come back with AD set (tests/support/signed_zone.h).
  // Non-empty turns the validator on (module-config "validator iterator"); the other zones
  // stay local data, answered without AD.
  struct Signed {
    std::string zone;
    std::string file;
    std::string ds_file;
  };
  std::vector<Signed> signed_zones;
  std::chrono::milliseconds start_timeout{10000};
  // The port to listen on (a restarted server keeping its address); 0: a free one.
  std::uint16_t port = 0;
};

class UnboundServer {
 public:
  static constexpr const char* kBinary = "/usr/sbin/unbound";

  // Writes unbound.conf into a TempDir, starts `unbound -d -c CONF`, and waits until it
  // answers a query on UDP and TCP. On failure started() is false and error() says why
  // (with unbound's stderr).
  explicit UnboundServer(UnboundOptions options);
  ~UnboundServer();  // stops unbound (SIGTERM, then SIGKILL), removes the directory
  UnboundServer(const UnboundServer&) = delete;
  UnboundServer& operator=(const UnboundServer&) = delete;

  bool started() const noexcept { return started_; }
  const std::string& error() const noexcept { return error_; }
  std::uint16_t port() const noexcept { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string config_text() const;
  std::string log() const;

 private:
  bool try_start(const UnboundOptions& options);

  TempDir dir_;
  std::unique_ptr<Process> process_;
  std::uint16_t port_ = 0;
  bool started_ = false;
  std::string error_;
};

// A free port on 127.0.0.1 for both UDP and TCP at the time of the call (bound, read back,
// closed). 0 on failure.
std::uint16_t free_loopback_port();

enum class DnsTransport : std::uint8_t { Udp, Tcp };

// One blocking DNS query to 127.0.0.1:port with a hand-built packet; true when any response
// with the query's id arrives within `timeout`. For readiness checks.
bool dns_port_answers(std::uint16_t port, DnsTransport transport,
                      std::chrono::milliseconds timeout);

}  // namespace salvo::test
