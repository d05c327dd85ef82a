// SPDX-License-Identifier: Apache-2.0
// SocketAddress: an IPv4/IPv6 address and port. Parses "127.0.0.1:25", "[::1]:25" and
// "host-ip" with a default port; never does DNS.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include <salvo/base/result.h>

namespace salvo::net {

class SocketAddress {
 public:
  SocketAddress() = default;
  [[nodiscard]] static Result<SocketAddress> parse(std::string_view text,
                                                   std::uint16_t default_port = 0);
  static SocketAddress from_sockaddr(const sockaddr* sa, socklen_t len);

  const sockaddr* sa() const noexcept { return reinterpret_cast<const sockaddr*>(&ss_); }
  socklen_t len() const noexcept { return len_; }
  int family() const noexcept { return ss_.ss_family; }
  std::uint16_t port() const noexcept;
  void set_port(std::uint16_t port) noexcept;
  std::string ip() const;         // "127.0.0.1" / "::1"
  std::string to_string() const;  // "127.0.0.1:25" / "[::1]:25"
  bool empty() const noexcept { return len_ == 0; }
  // Same family, address and port (IPv6 flow info and scope id included).
  friend bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept;

 private:
  sockaddr_storage ss_{};
  socklen_t len_ = 0;
};

}  // namespace salvo::net
