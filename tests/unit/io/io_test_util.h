// SPDX-License-Identifier: Apache-2.0
// Helpers for the io unit tests: a recording Completion, loopback sockets on port 0, and
// a bounded "run until" loop over an Engine.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <salvo/io/engine.h>

namespace salvo::io::test {

struct Call {
  std::int32_t res;
  std::uint32_t flags;
};

// Records every call; optional hook runs after recording.
class Recorder final : public Completion {
 public:
  void on_complete(std::int32_t res, std::uint32_t flags) noexcept override {
    calls.push_back({res, flags});
    if (hook) hook(res, flags);
  }
  std::vector<Call> calls;
  std::function<void(std::int32_t, std::uint32_t)> hook;
};

inline std::unique_ptr<Engine> make_engine(EngineOptions options = {}) {
  std::string why;
  options.queue_depth = options.queue_depth == 4096 ? 256 : options.queue_depth;
  auto e = create_engine("uring", options, &why);
  if (!e) return nullptr;
  return std::move(*e);
}

// Runs the engine until pred() holds, bounded in time.
inline bool run_until(Engine& e, const std::function<bool()>& pred,
                      std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    e.run_once(std::chrono::milliseconds(10));
  }
  return true;
}

// A listening TCP socket on 127.0.0.1, port chosen by the kernel.
struct Listener {
  int fd = -1;
  sockaddr_in addr{};
  Listener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) ADD_FAILURE();
    socklen_t len = sizeof(addr);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::listen(fd, 64);
  }
  ~Listener() {
    if (fd >= 0) ::close(fd);
  }
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&addr); }
};

inline int blocking_connect(const Listener& l) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(fd, l.sa(), sizeof(l.addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// A connected pair over loopback TCP: {client, server}.
inline std::pair<int, int> tcp_pair() {
  Listener l;
  int c = blocking_connect(l);
  int s = ::accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC);
  int one = 1;
  ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return {c, s};
}

}  // namespace salvo::io::test
