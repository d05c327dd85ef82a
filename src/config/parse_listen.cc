// SPDX-License-Identifier: Apache-2.0
// [[listen]]: ESMTP injection listeners. Checks within one entry (AUTH needs STARTTLS and
// users) and across entries (no address twice); the certificate check is in cross_check.
#include <algorithm>

#include <fmt/format.h>

#include "config/reader.h"

namespace salvo::config::detail {
namespace {

using std::chrono::milliseconds;

constexpr std::uint64_t kGB = 1'000'000'000;

void read_relay_networks(const TableReader& r, Listener& l, Diagnostics& diag) {
  std::vector<TableReader::Item> items;
  if (!r.read_strings("relay_networks", items)) return;
  std::vector<Cidr> nets;
  for (const auto& item : items) {
    std::string why;
    if (auto c = Cidr::parse(item.value, &why)) {
      nets.push_back(*c);
    } else {
      diag.error(item.path, fmt::format("'{}' is not a CIDR network: {}", item.value, why),
                 item.line);
    }
  }
  l.relay_networks = std::move(nets);
}

void read_auth(const TableReader& r, Listener& l, Diagnostics& diag) {
  std::vector<TableReader::Item> items;
  if (!r.read_strings("auth", items)) return;
  for (const auto& item : items) {
    const auto name = lower(item.value);
    AuthMechanism m;
    if (name == "plain") {
      m = AuthMechanism::Plain;
    } else if (name == "login") {
      m = AuthMechanism::Login;
    } else {
      diag.error(item.path, fmt::format("unknown mechanism '{}' (PLAIN or LOGIN)", item.value),
                 item.line);
      continue;
    }
    if (std::find(l.auth.begin(), l.auth.end(), m) != l.auth.end()) {
      diag.error(item.path, fmt::format("'{}' is listed twice", item.value), item.line);
      continue;
    }
    l.auth.push_back(m);
  }
}

void read_auth_users(const TableReader& r, Listener& l, Diagnostics& diag) {
  const auto* t = r.table("auth_users");
  if (t == nullptr) return;
  for (auto&& [k, v] : *t) {
    const auto path = join_path(r.path_of("auth_users"), k.str());
    const auto* s = v.as_string();
    if (k.str().empty()) {
      diag.error(path, "empty user name", line_of(v));
    } else if (s == nullptr || s->get().empty()) {
      diag.error(path, "expected the password as a non-empty string", line_of(v));
    } else {
      l.auth_users.emplace(std::string(k.str()), s->get());
    }
  }
}

void parse_one(const TableReader& r, Listener& l, Diagnostics& diag) {
  l.line = r.line();
  std::string address;
  if (!r.read("address", address)) {
    if (!r.has("address")) r.missing("address");
  } else {
    std::string why;
    const HostPortRules rules{.kind = HostKind::IpOnly, .allow_port_zero = true};
    if (auto hp = parse_host_port(address, rules, &why)) {
      l.address = *hp;
    } else {
      r.error("address", fmt::format("'{}': {}", address, why));
    }
  }
  r.read("starttls", l.starttls);
  read_relay_networks(r, l, diag);
  read_auth(r, l, diag);
  read_auth_users(r, l, diag);
  if (r.read("auth_users_file", l.auth_users_file) && l.auth_users_file.empty()) {
    r.error("auth_users_file", "must not be empty");
  }
  r.read_size("max_message_size", l.max_message_size, 1000, 4 * kGB);
  r.read_u32("max_recipients", l.max_recipients, 1, 100'000);
  r.read_u32("max_connections_per_ip", l.max_connections_per_ip, 1, 1'000'000);
  r.read_duration("idle_timeout", l.idle_timeout, milliseconds(1));
  r.read_duration("command_timeout", l.command_timeout, milliseconds(1));
  r.read_duration("data_timeout", l.data_timeout, milliseconds(1));
  r.read_u32("min_data_rate", l.min_data_rate, 0, 1'000'000'000);
  r.read_duration("session_timeout", l.session_timeout, milliseconds(0));
  r.read_u32("hard_error_limit", l.hard_error_limit, 1, 1000);
  r.read_u32("auth_failures_per_ip", l.auth_failures_per_ip, 0, 1'000'000);
  r.read_u32("auth_failures_per_user", l.auth_failures_per_user, 0, 1'000'000);
  // Three failures end a connection, so the longest wait is 4x this.
  r.read_duration("auth_failure_delay", l.auth_failure_delay, milliseconds(0),
                  std::chrono::seconds(10));

  // RFC 4954 §4: PLAIN and LOGIN send the password in the clear, so AUTH is offered only
  // after STARTTLS; and a mechanism with nobody to log in is a mistake.
  const bool has_users = r.has("auth_users") || r.has("auth_users_file");
  if (r.has("auth_users") && r.has("auth_users_file")) {
    r.error("auth_users_file", "auth_users and auth_users_file are mutually exclusive");
  } else if (!l.auth.empty() && !l.starttls) {
    r.error("auth", "AUTH is offered only after STARTTLS; set starttls = true");
  } else if (!l.auth.empty() && !has_users) {
    r.error("auth", "needs auth_users or auth_users_file");
  } else if (l.auth.empty() && has_users) {
    r.error(r.has("auth_users") ? "auth_users" : "auth_users_file",
            "users given but auth is empty; list the mechanisms, e.g. auth = [\"PLAIN\"]");
  }
}

}  // namespace

void parse_listen(const toml::table& root, std::vector<Listener>& out, Context& ctx) {
  const auto* a = section_array(root, kListenSection, ctx.diag);
  if (a == nullptr) return;
  const auto tables = tables_of(*a, "listen", ctx.diag);
  for (std::size_t i = 0; i < tables.size(); ++i) {
    if (tables[i] == nullptr) {
      out.emplace_back();  // keeps out[j] == listen[j] for the messages below
      continue;
    }
    TableReader r(*tables[i], kListenSection, fmt::format("listen[{}]", i), ctx.diag);
    Listener l;
    parse_one(r, l, ctx.diag);
    if (r.has("address") && l.address.port != 0) {
      for (std::size_t j = 0; j < out.size(); ++j) {
        if (out[j].address == l.address) {
          r.error("address",
                  fmt::format("{} is already used by listen[{}]", l.address.to_string(), j));
        }
      }
    }
    out.push_back(std::move(l));
  }
}

}  // namespace salvo::config::detail
