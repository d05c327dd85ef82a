// SPDX-License-Identifier: Apache-2.0
// OwnListeners (see own_listeners.h): the listeners, the host's addresses, the match.
#include <salvo/outbound/own_listeners.h>

#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <utility>

namespace salvo::outbound {
namespace {

using config::IpAddress;

bool is_unspecified(const IpAddress& ip) noexcept {
  const auto& b = ip.bytes();
  return std::all_of(b.begin(), b.end(), [](std::uint8_t x) { return x == 0; });
}

// Where the kernel takes a connection to `ip`: Linux connects one to the unspecified
// address (0.0.0.0, ::) to the loopback address of its family.
IpAddress connected_to(const IpAddress& ip) noexcept {
  if (!is_unspecified(ip)) return ip;
  if (ip.family() == IpAddress::Family::V4) return IpAddress::v4(INADDR_LOOPBACK);
  sockaddr_in6 lo{};
  lo.sin6_family = AF_INET6;
  lo.sin6_addr = in6addr_loopback;
  return *IpAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&lo));
}

}  // namespace

OwnListeners::OwnListeners(std::span<const net::SocketAddress> listeners,
                           std::vector<IpAddress> interfaces)
    : interfaces_(std::move(interfaces)) {
  for (const auto& a : listeners) {
    if (auto ip = IpAddress::from_sockaddr(a.sa())) {
      listeners_.push_back(Listener{*ip, a.port(), is_unspecified(*ip)});
    }
  }
}

Result<std::vector<IpAddress>> OwnListeners::interface_addresses() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return fail_errno(errno);
  std::vector<IpAddress> out;
  for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (auto ip = IpAddress::from_sockaddr(i->ifa_addr)) out.push_back(*ip);
  }
  ::freeifaddrs(list);
  return out;
}

bool OwnListeners::reached_by(const net::SocketAddress& target) const noexcept {
  const auto parsed = IpAddress::from_sockaddr(target.sa());
  if (!parsed) return false;
  const IpAddress ip = connected_to(*parsed);
  const bool this_host = ip.is_loopback() ||
                         std::find(interfaces_.begin(), interfaces_.end(), ip) != interfaces_.end();
  for (const Listener& l : listeners_) {
    if (l.port != target.port()) continue;
    if (!l.wildcard) {
      if (l.ip == ip) return true;
      continue;
    }
    // "0.0.0.0" takes IPv4 connections only; "::" takes both families (salvo never sets
    // IPV6_V6ONLY, so an IPv6 wildcard socket also accepts IPv4).
    if (this_host &&
        (l.ip.family() == IpAddress::Family::V6 || ip.family() == IpAddress::Family::V4)) {
      return true;
    }
  }
  return false;
}

}  // namespace salvo::outbound
