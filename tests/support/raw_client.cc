// SPDX-License-Identifier: Apache-2.0
// RawClient: blocking socket + SO_RCVTIMEO; TLS through TlsSession's memory buffers.
#include "support/raw_client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <utility>

#include <gtest/gtest.h>

namespace salvo::test {

RawClient::RawClient(const net::SocketAddress& to, std::chrono::milliseconds timeout) {
  open(to, nullptr, timeout);
}

RawClient::RawClient(const net::SocketAddress& to, const net::SocketAddress& from,
                     std::chrono::milliseconds timeout) {
  open(to, &from, timeout);
}

void RawClient::open(const net::SocketAddress& to, const net::SocketAddress* from,
                     std::chrono::milliseconds timeout) {
  fd_ = ::socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error("socket failed");
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (from != nullptr && ::bind(fd_, from->sa(), from->len()) != 0) {
    std::string why = std::strerror(errno);
    ::close(fd_);
    throw std::runtime_error("bind " + from->to_string() + ": " + why);
  }
  if (::connect(fd_, to.sa(), to.len()) != 0) {
    std::string why = std::strerror(errno);
    ::close(fd_);
    throw std::runtime_error("connect " + to.to_string() + ": " + why);
  }
}

RawClient::~RawClient() {
  if (fd_ >= 0) ::close(fd_);
}

namespace {
void send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the peer may have closed on purpose; the reads will tell
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}
}  // namespace

void RawClient::send(std::string_view bytes) {
  if (!tls_) return send_all(fd_, bytes);
  (void)tls_->write(bytes);
  auto& out = tls_->ciphertext_out();
  send_all(fd_, out.view());
  out.clear();
}

bool RawClient::fill() {
  char buf[16384];
  for (;;) {
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    if (!tls_) {
      pending_.append(buf, static_cast<std::size_t>(n));
      return true;
    }
    tls_->feed_ciphertext(std::string_view(buf, static_cast<std::size_t>(n)));
    ByteBuffer plain;
    tls_->advance(plain);
    auto& out = tls_->ciphertext_out();
    if (!out.empty()) {
      send_all(fd_, out.view());
      out.clear();
    }
    pending_.append(plain.view());
    if (!plain.empty()) return true;
  }
}

bool RawClient::readable(std::chrono::milliseconds wait) {
  if (!pending_.empty()) return true;
  pollfd p{fd_, POLLIN, 0};
  int n = ::poll(&p, 1, static_cast<int>(wait.count()));
  return n > 0;
}

std::size_t RawClient::send_for(std::string_view bytes, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (left <= std::chrono::milliseconds::zero()) break;
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  return sent;
}

std::size_t RawClient::trickle(std::string_view bytes, std::chrono::milliseconds every) {
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (readable(every)) return i;
    send(bytes.substr(i, 1));
  }
  return bytes.size();
}

std::string RawClient::read_reply() {
  for (;;) {
    // A complete reply ends with a line "NNN " or "NNN\r\n".
    std::size_t start = 0;
    while (true) {
      std::size_t eol = pending_.find("\r\n", start);
      if (eol == std::string::npos) break;
      if (eol - start >= 3 && (eol - start == 3 || pending_[start + 3] == ' ')) {
        std::string r = pending_.substr(0, eol + 2);
        pending_.erase(0, eol + 2);
        return r;
      }
      start = eol + 2;
    }
    if (!fill()) return {};
  }
}

std::string RawClient::read_replies(int n) {
  std::string all;
  for (int i = 0; i < n; ++i) {
    std::string r = read_reply();
    if (r.empty()) break;
    all += r;
  }
  return all;
}

std::string RawClient::read_all() {
  while (fill()) {
  }
  return std::exchange(pending_, std::string());
}

bool RawClient::closed_by_peer() {
  for (;;) {
    if (!pending_.empty()) pending_.clear();
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
  }
}

void RawClient::start_tls(const net::TlsContext& ctx, std::string_view server_name) {
  tls_ = std::make_unique<net::TlsSession>(ctx, server_name);
  pending_.clear();
  ByteBuffer plain;
  for (int i = 0; i < 1000; ++i) {
    auto st = tls_->advance(plain);
    auto& out = tls_->ciphertext_out();
    if (!out.empty()) {
      send_all(fd_, out.view());
      out.clear();
    }
    if (st == net::TlsSession::State::Established) {
      pending_.append(plain.view());
      return;
    }
    if (st == net::TlsSession::State::Failed || st == net::TlsSession::State::Closed)
      throw std::runtime_error("TLS handshake failed: " + tls_->error());
    char buf[16384];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) throw std::runtime_error("TLS handshake: connection closed");
    tls_->feed_ciphertext(std::string_view(buf, static_cast<std::size_t>(n)));
  }
  throw std::runtime_error("TLS handshake did not finish");
}

void start_tls_and_ehlo(RawClient& c, const net::TlsContext& ctx) {
  c.read_reply();
  c.send("EHLO x\r\n");
  c.read_reply();
  c.send("STARTTLS\r\n");
  ASSERT_TRUE(c.read_reply().starts_with("220"));
  c.start_tls(ctx, "localhost");
  c.send("EHLO x\r\n");
}

}  // namespace salvo::test
