// SPDX-License-Identifier: Apache-2.0
// SocketAddress parsing and formatting with inet_pton/inet_ntop only: numeric addresses,
// never DNS. "[v6]:port" brackets are required when a port is given with an IPv6 address.
#include <salvo/net/socket_address.h>

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace salvo::net {
namespace {

bool parse_port(std::string_view text, std::uint16_t* out) noexcept {
  if (text.empty() || text.size() > 5) return false;
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > 65535) return false;
  *out = static_cast<std::uint16_t>(value);
  return true;
}

// inet_pton needs a NUL-terminated string; addresses are short, so a stack copy suffices.
bool copy_ip(std::string_view text, char (&buf)[INET6_ADDRSTRLEN + 1]) noexcept {
  if (text.empty() || text.size() > INET6_ADDRSTRLEN) return false;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  return true;
}

}  // namespace

Result<SocketAddress> SocketAddress::parse(std::string_view text, std::uint16_t default_port) {
  std::string_view host = text;
  std::uint16_t port = default_port;
  bool bracketed = false;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return fail(std::errc::invalid_argument);
    host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':' || !parse_port(rest.substr(1), &port)) {
        return fail(std::errc::invalid_argument);
      }
    }
    bracketed = true;
  } else {
    auto colon = text.rfind(':');
    // Exactly one colon: "ipv4:port". More than one: a bare IPv6 address.
    if (colon != std::string_view::npos && text.find(':') == colon) {
      host = text.substr(0, colon);
      if (!parse_port(text.substr(colon + 1), &port)) return fail(std::errc::invalid_argument);
    }
  }

  char buf[INET6_ADDRSTRLEN + 1];
  if (!copy_ip(host, buf)) return fail(std::errc::invalid_argument);
  SocketAddress out;
  if (!bracketed) {
    sockaddr_in v4{};
    if (inet_pton(AF_INET, buf, &v4.sin_addr) == 1) {
      v4.sin_family = AF_INET;
      v4.sin_port = htons(port);
      std::memcpy(&out.ss_, &v4, sizeof v4);
      out.len_ = sizeof v4;
      return out;
    }
  }
  sockaddr_in6 v6{};
  if (inet_pton(AF_INET6, buf, &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(port);
    std::memcpy(&out.ss_, &v6, sizeof v6);
    out.len_ = sizeof v6;
    return out;
  }
  return fail(std::errc::invalid_argument);
}

SocketAddress SocketAddress::from_sockaddr(const sockaddr* sa, socklen_t len) {
  SocketAddress out;
  if (sa == nullptr) return out;
  if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    std::memcpy(&out.ss_, sa, sizeof(sockaddr_in));
    out.len_ = sizeof(sockaddr_in);
  } else if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    std::memcpy(&out.ss_, sa, sizeof(sockaddr_in6));
    out.len_ = sizeof(sockaddr_in6);
  }
  return out;
}

std::uint16_t SocketAddress::port() const noexcept {
  if (ss_.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&ss_)->sin_port);
  }
  if (ss_.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_port);
  }
  return 0;
}

void SocketAddress::set_port(std::uint16_t port) noexcept {
  if (ss_.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&ss_)->sin_port = htons(port);
  } else if (ss_.ss_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&ss_)->sin6_port = htons(port);
  }
}

std::string SocketAddress::ip() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss_.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss_)->sin_addr, buf, sizeof buf);
  } else if (ss_.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_addr, buf,
              sizeof buf);
  } else {
    return {};
  }
  return buf;
}

std::string SocketAddress::to_string() const {
  if (empty()) return "(none)";
  // Built with append: g++ 12 -O3 reports a false -Wrestrict on "[" + s (GCC PR 105329).
  std::string out;
  out.reserve(INET6_ADDRSTRLEN + 8);
  const bool v6 = ss_.ss_family == AF_INET6;
  if (v6) out.push_back('[');
  out.append(ip());
  if (v6) out.push_back(']');
  out.push_back(':');
  out.append(std::to_string(port()));
  return out;
}

bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept {
  if (a.len_ != b.len_ || a.ss_.ss_family != b.ss_.ss_family) return false;
  if (a.ss_.ss_family == AF_INET) {
    const auto* x = reinterpret_cast<const sockaddr_in*>(&a.ss_);
    const auto* y = reinterpret_cast<const sockaddr_in*>(&b.ss_);
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a.ss_.ss_family == AF_INET6) {
    const auto* x = reinterpret_cast<const sockaddr_in6*>(&a.ss_);
    const auto* y = reinterpret_cast<const sockaddr_in6*>(&b.ss_);
    return x->sin6_port == y->sin6_port && x->sin6_flowinfo == y->sin6_flowinfo &&
           x->sin6_scope_id == y->sin6_scope_id &&
           std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
  }
  return true;  // both empty
}

}  // namespace salvo::net
