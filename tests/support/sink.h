// SPDX-License-Identifier: Apache-2.0
// Sink: a salvo-sink child process for integration tests. Starts it with --ready-file and
// --progress-file in the test's TempDir (two cores unless the arguments say --cores),
// knows the bound addresses, polls the running message count, and on stop() returns the
// JSON report. Every wait is bounded in time.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <salvo/net/socket_address.h>

#include "support/process.h"

namespace salvo::test {

class Sink {
 public:
  // args: salvo-sink flags, e.g. {"--listen", "127.0.0.1:0,defer-rate=0.1"}. Throws if the
  // sink does not start within 20 s (the message carries its stderr).
  Sink(const TempDir& dir, std::vector<std::string> args);

  const std::string& address(std::size_t i = 0) const { return addresses_.at(i); }
  net::SocketAddress socket_address(std::size_t i = 0) const;
  const std::string& progress_file() const noexcept { return progress_; }

  // Messages accepted so far over all listeners and cores, from the progress file
  // (refreshed by the sink at most every 100 ms); -1 if it cannot be read or parsed.
  long long progress_messages() const;
  // The whole progress object ({"messages", "recipients", "bytes"}); null if unreadable.
  nlohmann::json progress() const;
  // Polls until at least n messages arrived (true) or the timeout passed (false).
  bool wait_messages(long long n, std::chrono::milliseconds timeout) const;

  // SIGTERM, wait (30 s), parse the JSON report; a failure to stop is a test failure.
  nlohmann::json stop();
  Process& process() { return *proc_; }

 private:
  std::string ready_;
  std::string progress_;
  std::unique_ptr<Process> proc_;
  std::vector<std::string> addresses_;
};

}  // namespace salvo::test
