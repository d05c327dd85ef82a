// SPDX-License-Identifier: Apache-2.0
// HostPort: "host:port" as written in [[listen]] address, [dns] resolvers, [routes] and
// [http] address. "[2001:db8::1]:25" for IPv6. Pure syntax checks; never resolves names.
// Also the origins of [http] allowed_origins (a scheme and a HostPort).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace salvo::config {

struct HostPort {
  std::string host;  // IP literal without brackets, or a lower-cased host name
  std::uint16_t port = 0;

  bool is_ip_literal() const;
  std::string to_string() const;  // "mx.example.net:25", "[::1]:53"
  friend bool operator==(const HostPort&, const HostPort&) = default;
};

enum class HostKind : std::uint8_t {
  IpOnly,      // listeners, resolvers, [http]: must be an IP literal
  IpOrDomain,  // [routes] targets: a host name is resolved by the daemon
};

struct HostPortRules {
  HostKind kind = HostKind::IpOnly;
  std::uint16_t default_port = 0;  // 0: the port is required
  bool allow_port_zero = false;    // listeners: port 0 = any free port (tests)
};

// Parses "host:port", "[v6]:port", and "host" / "v6" alone when rules.default_port != 0.
// Diagnostics: nullopt with `why` set to a short reason ("port must be 1-65535", ...).
std::optional<HostPort> parse_host_port(std::string_view text, const HostPortRules& rules,
                                        std::string* why = nullptr);

// RFC 1035 §2.3.1 preferred name syntax, relaxed as in practice: labels of letters, digits,
// '-' and '_' (1-63 octets, no leading/trailing '-'), total <= 253, optional trailing dot.
bool is_domain_name(std::string_view name);

// An origin as browsers send it in the Origin header (RFC 6454 §6.1): "http" or "https",
// "://", a host name or IP literal, an optional port; nothing after ([http]
// allowed_origins). Returns it in the form a browser sends (lower case, the scheme's
// default port dropped), or nullopt with `why` set to a short reason.
std::optional<std::string> normalize_origin(std::string_view text, std::string* why = nullptr);

}  // namespace salvo::config
