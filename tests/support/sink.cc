// SPDX-License-Identifier: Apache-2.0
// Sink fixture: salvo-sink as a child process (see sink.h).
#include "support/sink.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

namespace salvo::test {

using nlohmann::json;
using namespace std::chrono_literals;

namespace {
std::atomic<int> sink_seq{0};
}  // namespace

Sink::Sink(const TempDir& dir, std::vector<std::string> args) {
  int seq = ++sink_seq;
  ready_ = dir.file("sink-ready-" + std::to_string(seq));
  progress_ = dir.file("sink-progress-" + std::to_string(seq));
  std::vector<std::string> argv = {program_path("salvo-sink"), "--ready-file", ready_,
                                   "--progress-file", progress_};
  if (std::find(args.begin(), args.end(), "--cores") == args.end()) {
    argv.push_back("--cores");
    argv.push_back("2");
  }
  argv.insert(argv.end(), args.begin(), args.end());
  proc_ = std::make_unique<Process>(argv, dir.path());
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!wait_for_file(ready_, 10ms)) {
    if (!proc_->running() || std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("salvo-sink did not start: " + proc_->stderr_text());
  }
  for (const auto& a : json::parse(read_file(ready_))) addresses_.push_back(a.get<std::string>());
}

net::SocketAddress Sink::socket_address(std::size_t i) const {
  return *net::SocketAddress::parse(address(i));
}

json Sink::progress() const {
  // The sink replaces the file by rename: a read sees a whole object or no file.
  std::ifstream in(progress_);
  if (!in) return json();
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
}

long long Sink::progress_messages() const {
  json j = progress();
  if (!j.is_object() || !j.contains("messages") || !j["messages"].is_number_integer()) return -1;
  return j["messages"].get<long long>();
}

bool Sink::wait_messages(long long n, std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (progress_messages() >= n) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
}

json Sink::stop() {
  proc_->signal(SIGTERM);
  auto rc = proc_->wait(30s);
  EXPECT_TRUE(rc.has_value()) << "salvo-sink did not stop";
  EXPECT_EQ(rc.value_or(-1), 0) << proc_->stderr_text();
  return json::parse(proc_->stdout_text());
}

}  // namespace salvo::test
