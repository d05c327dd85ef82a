// SPDX-License-Identifier: Apache-2.0
// UnboundServer: config writer, process start and readiness probe.
#include "support/unbound_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

namespace salvo::test {
namespace {

using namespace std::chrono_literals;

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

std::string quoted(const std::string& s) {
  // unbound.conf takes a value with double quotes inside (TXT data) in single quotes.
  if (s.find('"') != std::string::npos && s.find('\'') == std::string::npos) {
    return "'" + s + "'";
  }
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

bool has_soa_for(const std::vector<std::string>& lines, const std::string& zone) {
  for (const auto& l : lines) {
    if (l.rfind(zone + " ", 0) == 0 && l.find(" SOA ") != std::string::npos) return true;
  }
  return false;
}

}  // namespace

std::uint16_t free_loopback_port() {
  for (int attempt = 0; attempt < 20; ++attempt) {
    int u = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    auto a = loopback(0);
    if (u < 0 || ::bind(u, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      if (u >= 0) ::close(u);
      return 0;
    }
    socklen_t len = sizeof(a);
    ::getsockname(u, reinterpret_cast<sockaddr*>(&a), &len);
    const std::uint16_t port = ntohs(a.sin_port);
    int t = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto b = loopback(port);
    const bool ok = t >= 0 && ::bind(t, reinterpret_cast<sockaddr*>(&b), sizeof(b)) == 0;
    if (t >= 0) ::close(t);
    ::close(u);
    if (ok) return port;
  }
  return 0;
}

bool dns_port_answers(std::uint16_t port, DnsTransport transport,
                      std::chrono::milliseconds timeout) {
  const bool tcp = transport == DnsTransport::Tcp;
  // id 0x5a17, RD, one question: "test." SOA IN.
  static const unsigned char kQuery[] = {0x5a, 0x17, 0x01, 0x00, 0,   1,   0, 0, 0, 0, 0,
                                         0,    4,    't',  'e',  's', 't', 0, 0, 6, 0, 1};
  int fd = ::socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  auto a = loopback(port);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    std::string out;
    if (tcp) {
      out.push_back(0);
      out.push_back(static_cast<char>(sizeof(kQuery)));
    }
    out.append(reinterpret_cast<const char*>(kQuery), sizeof(kQuery));
    if (::send(fd, out.data(), out.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(out.size())) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(timeout.count())) == 1) {
        unsigned char buf[4096];
        const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        const std::size_t off = tcp ? 2 : 0;
        ok = n >= static_cast<ssize_t>(off + 2) && buf[off] == 0x5a && buf[off + 1] == 0x17;
      }
    }
  }
  ::close(fd);
  return ok;
}

UnboundServer::UnboundServer(UnboundOptions options) {
  if (::access(kBinary, X_OK) != 0) {
    error_ = std::string(kBinary) + " is missing: run tools/install_deps.sh (Debian: unbound)";
    return;
  }
  // A port found free may be taken before unbound binds it: try a few.
  for (int attempt = 0; attempt < 3 && !started_; ++attempt) started_ = try_start(options);
}

UnboundServer::~UnboundServer() {
  if (process_) {
    process_->signal(SIGTERM);
    if (!process_->wait(3000ms)) process_->signal(SIGKILL);
    process_->wait(3000ms);
  }
}

std::string UnboundServer::config_text() const {
  std::ifstream in(dir_.file("unbound.conf"));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string UnboundServer::log() const { return process_ ? process_->stderr_text() : ""; }

bool UnboundServer::try_start(const UnboundOptions& options) {
  if (process_) {
    process_->signal(SIGKILL);
    process_->wait(3000ms);
    process_.reset();
  }
  port_ = options.port != 0 ? options.port : free_loopback_port();
  if (port_ == 0) {
    error_ = "no free loopback port";
    return false;
  }
  const std::string conf = dir_.file("unbound.conf");
  {
    std::ofstream out(conf);
    out << "server:\n"
        << "  interface: 127.0.0.1@" << port_ << "\n"
        << "  port: " << port_ << "\n"
        << "  do-ip6: no\n"
        << "  do-udp: yes\n"
        << "  do-tcp: yes\n"
        << "  num-threads: 1\n"
        << "  so-reuseport: no\n"
        << "  do-daemonize: no\n"
        << "  chroot: \"\"\n"
        << "  username: \"\"\n"
        << "  directory: " << quoted(dir_.path()) << "\n"
        << "  pidfile: " << quoted(dir_.file("unbound.pid")) << "\n"
        << "  use-syslog: no\n"
        << "  logfile: \"\"\n"
        << "  verbosity: 1\n"
        << "  module-config: "
        << (options.signed_zones.empty() ? "\"iterator\"" : "\"validator iterator\"") << "\n"
        << "  access-control: 127.0.0.0/8 allow\n"
        // Nothing leaves the host: unknown names are refused, no root priming happens.
        << "  local-zone: \".\" refuse\n"
        << "  do-not-query-localhost: yes\n"
        << "  harden-referral-path: no\n"
        << "  prefetch: no\n"
        << "  serve-expired: no\n"
        << "  cache-max-negative-ttl: 1\n"
        << "  infra-host-ttl: 1\n";
    for (const auto& zone : options.static_zones) {
      out << "  local-zone: " << quoted(zone) << " static\n";
      if (!has_soa_for(options.local_data, zone)) {
        out << "  local-data: "
            << quoted(zone + " 3600 IN SOA ns." + zone + " hostmaster." + zone +
                      " 1 3600 900 604800 " + std::to_string(options.soa_minimum))
            << "\n";
      }
    }
    for (const auto& line : options.local_data) out << "  local-data: " << quoted(line) << "\n";
    for (const auto& zone : options.servfail_zones) {
      out << "  local-zone: " << quoted(zone) << " transparent\n";
    }
    for (const auto& z : options.signed_zones) {
      out << "  local-zone: " << quoted(z.zone) << " transparent\n"
          << "  trust-anchor-file: " << quoted(z.ds_file) << "\n";
    }
    for (const auto& line : options.extra) out << "  " << line << "\n";
    for (const auto& z : options.signed_zones) {
      out << "auth-zone:\n  name: " << quoted(z.zone) << "\n  zonefile: " << quoted(z.file)
          << "\n  for-downstream: no\n  for-upstream: yes\n  fallback-enabled: no\n";
    }
    for (const auto& zone : options.servfail_zones) {
      // Unbound may not query 127.0.0.1 (do-not-query-localhost): no usable server, SERVFAIL.
      out << "stub-zone:\n  name: " << quoted(zone) << "\n  stub-addr: 127.0.0.1@" << port_ << "\n";
    }
    out << "remote-control:\n  control-enable: no\n";
  }
  process_ =
      std::make_unique<Process>(std::vector<std::string>{kBinary, "-d", "-c", conf}, dir_.path());
  const auto deadline = std::chrono::steady_clock::now() + options.start_timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!process_->running()) {
      error_ = "unbound exited: " + process_->stderr_text();
      return false;
    }
    if (dns_port_answers(port_, DnsTransport::Udp, 200ms) &&
        dns_port_answers(port_, DnsTransport::Tcp, 500ms)) {
      return true;
    }
    std::this_thread::sleep_for(20ms);
  }
  error_ = "unbound did not answer within the start timeout: " + process_->stderr_text();
  return false;
}

}  // namespace salvo::test
