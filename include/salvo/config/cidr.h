// SPDX-License-Identifier: Apache-2.0
// IpAddress and Cidr: the typed forms of [[listen]] relay_networks and [[egress]] addresses.
// Pure parsing and matching; an IPv4-mapped IPv6 peer (::ffff:a.b.c.d) matches IPv4 networks.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

struct sockaddr;

namespace salvo::config {

// An IPv4 or IPv6 address, no port. IPv4-mapped IPv6 addresses are stored as IPv4, so a
// dual-stack listener's peer "::ffff:10.1.2.3" is the IPv4 address 10.1.2.3.
class IpAddress {
 public:
  enum class Family : std::uint8_t { V4, V6 };

  IpAddress() = default;
  // "192.0.2.1", "2001:db8::1" (no brackets, no zone). nullopt when it is not an address.
  static std::optional<IpAddress> parse(std::string_view text);
  // AF_INET / AF_INET6 socket addresses; nullopt for any other family.
  static std::optional<IpAddress> from_sockaddr(const sockaddr* sa);
  static IpAddress v4(std::uint32_t host_order);

  Family family() const noexcept { return family_; }
  int bit_length() const noexcept { return family_ == Family::V4 ? 32 : 128; }
  // Network order; 4 bytes used for IPv4, 16 for IPv6.
  const std::array<std::uint8_t, 16>& bytes() const noexcept { return bytes_; }
  std::string to_string() const;  // "192.0.2.1", "2001:db8::1"
  // 127.0.0.0/8 or ::1.
  bool is_loopback() const noexcept;

  friend bool operator==(const IpAddress&, const IpAddress&) = default;

 private:
  Family family_ = Family::V4;
  std::array<std::uint8_t, 16> bytes_{};
};

// A network "10.0.0.0/8", "2001:db8::/32"; a bare address is a /32 or /128. Host bits must
// be zero ("10.0.0.1/8" is an error: it is almost always a typo for a host or a /32).
class Cidr {
 public:
  Cidr() = default;
  // Diagnostics: nullopt with `why` set to a short reason for the config error line.
  static std::optional<Cidr> parse(std::string_view text, std::string* why = nullptr);

  bool contains(const IpAddress& address) const noexcept;
  // Convenience for tests and tools: false when `address` does not parse.
  bool contains(std::string_view address) const;

  const IpAddress& network() const noexcept { return network_; }
  int prefix_length() const noexcept { return prefix_; }
  std::string to_string() const;  // "10.0.0.0/8"

  friend bool operator==(const Cidr&, const Cidr&) = default;

 private:
  IpAddress network_;
  int prefix_ = 0;
};

}  // namespace salvo::config
