// SPDX-License-Identifier: Apache-2.0
// IpAddress / Cidr parsing (inet_pton, strict) and prefix matching.
#include <arpa/inet.h>
#include <charconv>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>

#include <salvo/config/cidr.h>

namespace salvo::config {
namespace {

constexpr std::array<std::uint8_t, 12> kV4MappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool is_v4_mapped(const std::uint8_t* b16) {
  return std::memcmp(b16, kV4MappedPrefix.data(), kV4MappedPrefix.size()) == 0;
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddress a;
  if (text.find(':') == std::string_view::npos) {
    if (inet_pton(AF_INET, buf, a.bytes_.data()) != 1) return std::nullopt;
    a.family_ = Family::V4;
    return a;
  }
  std::uint8_t b16[16];
  if (inet_pton(AF_INET6, buf, b16) != 1) return std::nullopt;
  if (is_v4_mapped(b16)) {
    a.family_ = Family::V4;
    std::memcpy(a.bytes_.data(), b16 + 12, 4);
  } else {
    a.family_ = Family::V6;
    std::memcpy(a.bytes_.data(), b16, 16);
  }
  return a;
}

bool IpAddress::is_loopback() const noexcept {
  if (family_ == Family::V4) return bytes_[0] == 127;
  for (std::size_t i = 0; i < 15; ++i) {
    if (bytes_[i] != 0) return false;
  }
  return bytes_[15] == 1;
}

std::optional<IpAddress> IpAddress::from_sockaddr(const sockaddr* sa) {
  if (sa == nullptr) return std::nullopt;
  IpAddress a;
  if (sa->sa_family == AF_INET) {
    sockaddr_in in;
    std::memcpy(&in, sa, sizeof in);
    a.family_ = Family::V4;
    std::memcpy(a.bytes_.data(), &in.sin_addr, 4);
    return a;
  }
  if (sa->sa_family == AF_INET6) {
    sockaddr_in6 in6;
    std::memcpy(&in6, sa, sizeof in6);
    const auto* b16 = reinterpret_cast<const std::uint8_t*>(&in6.sin6_addr);
    if (is_v4_mapped(b16)) {
      a.family_ = Family::V4;
      std::memcpy(a.bytes_.data(), b16 + 12, 4);
    } else {
      a.family_ = Family::V6;
      std::memcpy(a.bytes_.data(), b16, 16);
    }
    return a;
  }
  return std::nullopt;
}

IpAddress IpAddress::v4(std::uint32_t host_order) {
  IpAddress a;
  a.family_ = Family::V4;
  a.bytes_[0] = static_cast<std::uint8_t>(host_order >> 24);
  a.bytes_[1] = static_cast<std::uint8_t>(host_order >> 16);
  a.bytes_[2] = static_cast<std::uint8_t>(host_order >> 8);
  a.bytes_[3] = static_cast<std::uint8_t>(host_order);
  return a;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family_ == Family::V4 ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof buf);
  return buf;
}

std::optional<Cidr> Cidr::parse(std::string_view text, std::string* why) {
  auto set_why = [&](const char* reason) {
    if (why != nullptr) *why = reason;
    return std::nullopt;
  };
  auto slash = text.find('/');
  auto address_text = text.substr(0, slash);
  auto address = IpAddress::parse(address_text);
  if (!address) return set_why("not an IPv4 or IPv6 address");
  Cidr c;
  c.network_ = *address;
  const bool written_as_v6 = address_text.find(':') != std::string_view::npos;
  const int written_bits = written_as_v6 ? 128 : 32;
  int prefix = written_bits;
  if (slash != std::string_view::npos) {
    auto p = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (p.empty() || ec != std::errc() || end != p.data() + p.size() || prefix < 0 ||
        prefix > written_bits) {
      return set_why(written_as_v6 ? "prefix length must be 0-128" : "prefix length must be 0-32");
    }
  }
  if (written_as_v6 && address->family() == IpAddress::Family::V4) {  // ::ffff:a.b.c.d/n
    if (prefix < 96) return set_why("an IPv4-mapped network needs a prefix length of 96 or more");
    prefix -= 96;
  }
  c.prefix_ = prefix;
  // Host bits must be zero.
  const auto& b = address->bytes();
  for (int bit = prefix; bit < address->bit_length(); ++bit) {
    if ((b[static_cast<std::size_t>(bit / 8)] >> (7 - bit % 8)) & 1) {
      return set_why("host bits set after the prefix length");
    }
  }
  return c;
}

bool Cidr::contains(const IpAddress& address) const noexcept {
  if (address.family() != network_.family()) return false;
  const auto& a = address.bytes();
  const auto& n = network_.bytes();
  const int full = prefix_ / 8;
  for (int i = 0; i < full; ++i) {
    if (a[static_cast<std::size_t>(i)] != n[static_cast<std::size_t>(i)]) return false;
  }
  const int rest = prefix_ % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a[static_cast<std::size_t>(full)] & mask) == (n[static_cast<std::size_t>(full)] & mask);
}

bool Cidr::contains(std::string_view address) const {
  auto a = IpAddress::parse(address);
  return a && contains(*a);
}

std::string Cidr::to_string() const { return network_.to_string() + "/" + std::to_string(prefix_); }

}  // namespace salvo::config
