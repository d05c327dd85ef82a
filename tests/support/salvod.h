// SPDX-License-Identifier: Apache-2.0
// A salvod process for integration tests: writes its config (node keys, an optional
// [[listen]] entry on 127.0.0.1:0, extra tables), starts it with --ready-file, and stops
// it with SIGTERM or SIGKILL — all bounded in time. Plus a reader of what a spool holds,
// the way salvod's own start-up recovers it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <salvo/net/socket_address.h>
#include <salvo/spool/recovery.h>

#include "support/process.h"

namespace salvo::test {

struct SalvodOptions {
  int cores = 2;
  std::string spool;           // default: DIR/spool
  std::string node_keys = "spool_reserve = \"0\"\n";  // more [node] lines
  bool listener = true;        // one [[listen]] on 127.0.0.1:0
  std::string listen_keys;     // more lines of that [[listen]] table
  std::string extra;           // further tables ([tls], ...)
  // Intake tests keep what they queue: a "*" [[shaping]] entry with max_connections = 0
  // (hold) and a DNS resolver nobody answers on. Delivery tests set this false and give
  // their own [[shaping]], [dns] and [routes] in `extra`.
  bool hold_delivery = true;
  std::string log_level = "info";
  std::vector<std::string> env;  // "NAME=value" set for salvod (e.g. SALVO_TEST_SYNC_DELAY_MS)
  // Also wait (up to 20 s) for "spool recovery finished" (logged at info): the old mail is
  // then in the index and routed, and the pickup directory watched. Tests of the
  // background recovery itself set it false.
  bool wait_recovery = true;
};

// A [tls] table with CertFactory::shared()'s server certificate and key (for starttls).
std::string tls_section();

class Salvod {
 public:
  // Starts salvod and waits (up to 20 s) for its ready file; throws with its stderr when
  // it exits or times out first.
  Salvod(const TempDir& dir, const SalvodOptions& options);
  ~Salvod();
  Salvod(const Salvod&) = delete;
  Salvod& operator=(const Salvod&) = delete;

  const std::string& address() const { return address_; }  // "" without a listener
  net::SocketAddress socket_address() const { return *net::SocketAddress::parse(address_); }
  const std::string& config_path() const { return config_; }
  // SIGTERM and wait: the exit status (-1 when it did not stop within 30 s).
  int stop();
  // SIGKILL and wait: 128 + 9 once reaped.
  int kill();
  std::string log() const { return proc_->stderr_text(); }
  Process& process() { return *proc_; }
  // "key=N" from salvod's start-up or stop lines (the last one); -1 when missing.
  long long log_number(const std::string& key) const;
  // Waits up to `limit` for text in salvod's log; false when it did not appear.
  bool wait_for_log(const std::string& text, std::chrono::milliseconds limit);

 private:
  static inline int seq_ = 0;
  std::string config_, ready_, address_;
  std::unique_ptr<Process> proc_;
};

// One message or job found in a spool.
struct SpooledItem {
  std::uint64_t id = 0;
  bool job = false;
  std::string from;
  std::string job_name;
  std::string body;  // message body or job template
  std::vector<std::string> recipients;  // every recipient, in index order
  std::vector<std::vector<std::pair<std::string, std::string>>> vars;  // jobs: per recipient
  std::string pickup_name;   // the pickup file it came from, or ""
  std::string pickup_claim;  // and its claim (docs/spool-format.md §8)
  std::uint8_t source = 0;  // spool::Source
};

// Calls fn(shard directory, its recovery) for every shard-N directory of `spool`,
// recovered the way salvod's start-up does. Throws when a recovery fails.
void for_each_recovered_shard(
    const std::string& spool,
    const std::function<void(const std::string& dir, spool::RecoveryResult& r)>& fn);

// Recovers every shard directory of `spool` and reads every committed message and job.
std::vector<SpooledItem> read_spool_items(const std::string& spool);

// salvoctl --config CONFIG ARGS... (bounded: 30 s): exit status, output, and the parsed
// JSON when ARGS has --json and it succeeded.
struct Ctl {
  int rc = -1;
  std::string out, err;
  nlohmann::json j;
};
Ctl salvoctl(const TempDir& dir, const std::string& config, std::vector<std::string> args);

}  // namespace salvo::test
