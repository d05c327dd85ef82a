// SPDX-License-Identifier: Apache-2.0
// OwnListeners: the (address, port) pairs at which a connection reaches this node's own
// SMTP listeners. Delivery never connects to one: mail for a destination whose every
// address is one of them would come back to this node and be relayed again at every hop
// (Postfix: "mail for X loops back to myself"); it bounces 5.4.4 instead (SPEC §12).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include <salvo/base/result.h>
#include <salvo/config/cidr.h>
#include <salvo/net/socket_address.h>

namespace salvo::outbound {

// Owner: built once by the daemon at start-up, once every listener's port is known; then
// read-only and shared by every shard (listeners do not change on reload).
class OwnListeners {
 public:
  OwnListeners() = default;  // none: a node without [[listen]]
  // `listeners`: the [[listen]] addresses with the ports they are bound to (never 0).
  // `interfaces`: the host's addresses (interface_addresses()); a wildcard listener
  // ("0.0.0.0", "::") is reached at any of them and at any loopback address.
  OwnListeners(std::span<const net::SocketAddress> listeners,
               std::vector<config::IpAddress> interfaces);

  // The addresses of the host's network interfaces (getifaddrs). Start-up only.
  [[nodiscard]] static Result<std::vector<config::IpAddress>> interface_addresses();

  // A connection to `target` would reach one of the listeners: the same port, and the
  // listener's own address or, for a wildcard listener, any address of this host.
  bool reached_by(const net::SocketAddress& target) const noexcept;

 private:
  struct Listener {
    config::IpAddress ip;
    std::uint16_t port = 0;
    bool wildcard = false;
  };
  std::vector<Listener> listeners_;
  std::vector<config::IpAddress> interfaces_;
};

}  // namespace salvo::outbound
