// SPDX-License-Identifier: Apache-2.0
// SMTP load generation for salvo-blast: --connections client connections spread over the
// shards, each running smtp::ClientSession and taking messages from a node-wide budget
// until --messages have been sent. A connection the server drops or closes (fault
// scripts, 421) is reopened while budget remains. Counters are per shard, merged by main
// after join.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <salvo/base/histogram.h>
#include <salvo/net/stack.h>
#include <salvo/shard/shard.h>
#include <salvo/smtp/client_session.h>

#include "message_factory.h"

namespace salvo::blast {

struct SmtpLoadOptions {
  net::SocketAddress target;
  std::string server_name;  // for TLS SNI / verification
  unsigned connections = 10;
  std::uint64_t messages = 10000;
  bool pipelining = true;
  // Every message its own (To:, Subject:, Message-ID: of its own), as real traffic is; the
  // default sends one shared body, the cheapest thing to generate.
  bool unique = false;
  // Messages in flight per connection with pipelining: the next transaction goes out
  // behind the previous end of data, up to this many unanswered (BDAT needs no 354 wait,
  // so a deeper window keeps more messages per server commit).
  std::uint32_t window = 2;
  bool chunking = false;
  bool starttls = false;
  std::string helo = "blast.localhost";
  Duration connect_timeout = std::chrono::seconds(10);
  // Writes of at least this many bytes go out with send_zc (0 = off); an explicit
  // --zerocopy-threshold applies to a server on this host (loopback) too.
  std::size_t zerocopy_threshold = net::KernelStackOptions{}.zerocopy_threshold;
  bool zerocopy_to_local_peers = false;
};

struct LoadCounters {
  std::uint64_t submitted = 0;
  std::uint64_t accepted = 0;   // end-of-data 2xx
  std::uint64_t deferred = 0;   // 4xx (server said so)
  std::uint64_t rejected = 0;   // 5xx or refused locally
  std::uint64_t lost = 0;       // connection lost before the final reply
  std::uint64_t rcpt_accepted = 0;
  std::uint64_t rcpt_deferred = 0;
  std::uint64_t rcpt_rejected = 0;
  std::uint64_t connections = 0;
  std::uint64_t connect_failures = 0;
  std::uint64_t tls_sessions = 0;
  std::uint64_t bytes = 0;  // body bytes of accepted messages
  LatencyHistogram latency;  // submit -> final reply, ns

  void merge(const LoadCounters& o);
};

// Node-wide shared state: the message budget and the finish line.
struct LoadShared {
  const SmtpLoadOptions* options = nullptr;
  const MessageFactory* factory = nullptr;
  const net::TlsContext* tls = nullptr;
  std::atomic<std::uint64_t> next_message{0};
  std::atomic<unsigned> finished_connections{0};
};

class BlastConnection;

// Owner: one shard. Holds that shard's connections and counters.
class LoadShard final : public shard::Poller {
 public:
  LoadShard(shard::Shard& shard, LoadShared& shared, unsigned connections);
  ~LoadShard();
  void start() noexcept;
  void begin_stop() noexcept;
  bool poll() noexcept override;

  LoadCounters& counters() noexcept { return counters_; }
  net::Stack& stack() noexcept { return *stack_; }
  shard::Shard& shard() noexcept { return shard_; }
  LoadShared& shared() noexcept { return shared_; }

 private:
  shard::Shard& shard_;
  LoadShared& shared_;
  std::unique_ptr<net::Stack> stack_;
  std::vector<std::unique_ptr<BlastConnection>> conns_;
  LoadCounters counters_;
  bool draining_ = false;
};

}  // namespace salvo::blast
