// SPDX-License-Identifier: Apache-2.0
// RawClient: a blocking TCP client for integration tests that must send exactly the
// bytes an attacker would (bare LF, over-long lines, injected pipelining) and read SMTP
// replies back, with a receive timeout. Optionally continues inside TLS (STARTTLS) using
// net::TlsSession over the blocking socket.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include <salvo/net/socket_address.h>
#include <salvo/net/tls.h>

namespace salvo::test {

class RawClient {
 public:
  // Connects (throws std::runtime_error on failure).
  explicit RawClient(const net::SocketAddress& to,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // The same from a chosen local address (127.0.0.2, ...: another client to salvod's
  // per-address limits).
  RawClient(const net::SocketAddress& to, const net::SocketAddress& from,
            std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~RawClient();
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  void send(std::string_view bytes);
  // Reads one complete SMTP reply (all lines up to "NNN "), or "" on timeout/EOF.
  std::string read_reply();
  // Reads replies until `n` complete replies have arrived; concatenated.
  std::string read_replies(int n);
  // True when the peer has closed the connection (reads EOF within the timeout).
  bool closed_by_peer();
  // True when a reply (or EOF) can be read without waiting longer than `wait`.
  bool readable(std::chrono::milliseconds wait);
  // A client that does not wait: writes as much of `bytes` as the peer's receive window
  // takes within `limit` (plain TCP only); returns how much that was.
  std::size_t send_for(std::string_view bytes, std::chrono::milliseconds limit);
  // A slow client: sends `bytes` one byte every `every` until the server says something
  // (or closes). Returns the bytes sent before that; bytes.size() if it never spoke.
  std::size_t trickle(std::string_view bytes, std::chrono::milliseconds every);
  // Everything the peer sends until it closes (or the timeout passes), through TLS if active.
  std::string read_all();
  // TLS handshake on the current stream (after a STARTTLS 220); throws on failure.
  void start_tls(const net::TlsContext& ctx, std::string_view server_name);

 private:
  void open(const net::SocketAddress& to, const net::SocketAddress* from,
            std::chrono::milliseconds timeout);
  bool fill();  // one read into pending_ (through TLS if active)
  int fd_ = -1;
  std::string pending_;
  std::unique_ptr<net::TlsSession> tls_;
};

// SMTP over `c`: the greeting, EHLO, STARTTLS (220), the handshake and EHLO again; the
// last EHLO's reply is left to read.
void start_tls_and_ehlo(RawClient& c, const net::TlsContext& ctx);

}  // namespace salvo::test
