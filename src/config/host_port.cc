// SPDX-License-Identifier: Apache-2.0
// HostPort parsing: bracketed IPv6, IPv4, host names; strict decimal ports. And the
// origins of [http] allowed_origins, which are a scheme plus a HostPort.
#include <charconv>

#include <salvo/base/ascii.h>
#include <salvo/config/cidr.h>
#include <salvo/config/host_port.h>

namespace salvo::config {
namespace {

using ascii::lower;

}  // namespace

bool is_domain_name(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return false;
  std::size_t label_len = 0;
  char prev = '.';
  for (char c : name) {
    if (c == '.') {
      if (label_len == 0 || prev == '-') return false;
      label_len = 0;
    } else {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_';
      if (!ok || (c == '-' && label_len == 0) || ++label_len > 63) return false;
    }
    prev = c;
  }
  return prev != '-';
}

bool HostPort::is_ip_literal() const { return IpAddress::parse(host).has_value(); }

std::string HostPort::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::optional<HostPort> parse_host_port(std::string_view text, const HostPortRules& rules,
                                        std::string* why) {
  auto reject = [&](const char* reason) {
    if (why != nullptr) *why = reason;
    return std::nullopt;
  };
  std::string_view host;
  std::string_view port_text;
  bool has_port = false;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return reject("missing ']' after an IPv6 address");
    host = text.substr(1, close - 1);
    auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return reject("expected ':' and a port after ']'");
      port_text = rest.substr(1);
      has_port = true;
    }
    if (host.find(':') == std::string_view::npos) return reject("brackets are for IPv6 addresses");
  } else {
    auto colon = text.rfind(':');
    if (colon != std::string_view::npos && text.find(':') != colon) {
      host = text;  // bare IPv6 without a port
    } else if (colon != std::string_view::npos) {
      host = text.substr(0, colon);
      port_text = text.substr(colon + 1);
      has_port = true;
    } else {
      host = text;
    }
  }
  if (host.empty()) return reject("missing host");
  HostPort hp;
  if (IpAddress::parse(host)) {
    hp.host = std::string(host);
  } else if (host.find(':') != std::string_view::npos) {
    return reject("not a valid IPv6 address (write it as \"[2001:db8::1]:25\")");
  } else if (rules.kind == HostKind::IpOnly) {
    return reject("expected an IP address, not a host name");
  } else if (!is_domain_name(host)) {
    return reject("not a valid host name");
  } else {
    hp.host = lower(host);
  }
  if (!has_port) {
    if (rules.default_port == 0) return reject("missing ':port'");
    hp.port = rules.default_port;
    return hp;
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535 || (port == 0 && !rules.allow_port_zero)) {
    return reject(rules.allow_port_zero ? "port must be 0-65535" : "port must be 1-65535");
  }
  hp.port = static_cast<std::uint16_t>(port);
  return hp;
}

std::optional<std::string> normalize_origin(std::string_view text, std::string* why) {
  auto reject = [why](const char* reason) -> std::optional<std::string> {
    if (why != nullptr) *why = reason;
    return std::nullopt;
  };
  if (text == "*") return reject("'*' would let any web page use the API; list the origins");
  if (text == "null") return reject("'null' is the origin of sandboxed and local pages");
  const auto sep = text.find("://");
  if (sep == std::string_view::npos) return reject("expected http://HOST[:PORT] or https://...");
  const std::string scheme = lower(text.substr(0, sep));
  if (scheme != "http" && scheme != "https") return reject("the scheme must be http or https");
  const std::string_view rest = text.substr(sep + 3);
  if (rest.find_first_of("/?#@") != std::string_view::npos) {
    return reject("an origin has no path, query or user name: write SCHEME://HOST[:PORT]");
  }
  const std::uint16_t default_port = scheme == "https" ? 443 : 80;
  std::string host_why;
  auto hp = parse_host_port(rest, HostPortRules{.kind = HostKind::IpOrDomain,
                                                .default_port = default_port},
                            &host_why);
  if (!hp) {
    if (why != nullptr) *why = host_why;
    return std::nullopt;
  }
  std::string host = hp->host;
  if (auto ip = IpAddress::parse(host)) {
    host = ip->to_string();
    if (ip->family() == IpAddress::Family::V6) host = "[" + host + "]";
  }
  if (!host.empty() && host.back() == '.') {
    return reject("no trailing dot: browsers send the host as typed in the address bar");
  }
  std::string out = scheme + "://" + host;
  if (hp->port != default_port) out += ":" + std::to_string(hp->port);
  return out;
}

}  // namespace salvo::config
