// SPDX-License-Identifier: Apache-2.0
// The single-table sections: [node], [tls], [dns], [http]. Ranges and their reasons live
// next to the key they guard.
#include <algorithm>

#include <fmt/format.h>

#include "config/reader.h"

namespace salvo::config::detail {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::uint64_t kMB = 1'000'000;
constexpr std::uint64_t kGB = 1'000'000'000;
// sockaddr_un::sun_path holds 108 bytes including the terminating NUL.
constexpr std::size_t kMaxUnixPath = 107;

void read_path(const TableReader& r, std::string_view key, std::string& out, bool may_be_empty) {
  std::string v;
  if (!r.read(key, v)) return;
  if (v.empty() && !may_be_empty) {
    r.error(key, "must not be empty");
    return;
  }
  out = std::move(v);
}

}  // namespace

void parse_node(const toml::table& root, Node& out, Context& ctx) {
  const auto* t = section_table(root, kNodeSection, ctx.diag);
  if (t == nullptr) return;
  TableReader r(*t, kNodeSection, "node", ctx.diag);
  std::string hostname;
  if (r.read("hostname", hostname)) {
    if (!is_domain_name(hostname)) {
      r.error("hostname", fmt::format("'{}' is not a valid host name", hostname));
    } else {
      out.hostname = lower(hostname);
    }
  }
  r.read_u32("cores", out.cores, 0, 1024);
  r.read_u32("max_connections", out.max_connections, 0, 10'000'000);
  r.read_size("max_pending_bytes", out.max_pending_bytes, 0, 1ull << 50);
  read_path(r, "spool", out.spool, false);
  read_path(r, "pickup", out.pickup, true);
  std::string socket = out.control_socket;
  read_path(r, "control_socket", socket, false);
  if (socket.size() > kMaxUnixPath) {
    r.error("control_socket",
            fmt::format("longer than {} bytes, the limit of a unix socket path", kMaxUnixPath));
  } else {
    out.control_socket = socket;
  }
  read_path(r, "log_dir", out.log_dir, false);
  r.read_size("accounting_max_size", out.accounting_max_size, 0, UINT64_MAX);
  r.read_duration("accounting_max_age", out.accounting_max_age, Duration(0));
  r.read("fsync", out.fsync);
  r.read("background_recovery", out.background_recovery);
  r.read("checkpoint", out.checkpoint);
  r.read_size("spool_segment_size", out.spool_segment_size, 1 * kMB, 4 * kGB);
  r.read_size("spool_reserve", out.spool_reserve, 0, UINT64_MAX);
  r.read_duration("spool_punch_interval", out.spool_punch_interval, Duration(0),
                  std::chrono::hours(24));
  r.read_duration("commit_interval", out.commit_interval, Duration(0), seconds(1));
  r.read_u32("commit_max_messages", out.commit_max_messages, 1, 1'000'000);
  r.read_size("commit_max_bytes", out.commit_max_bytes, 4096, 4 * kGB);
  r.read_u32("commits_in_flight", out.commits_in_flight, 1, 16);
}

void parse_tls(const toml::table& root, Tls& out, Context& ctx) {
  const auto* t = section_table(root, kTlsSection, ctx.diag);
  if (t == nullptr) return;
  TableReader r(*t, kTlsSection, "tls", ctx.diag);
  read_path(r, "certificate", out.certificate, true);
  read_path(r, "key", out.key, true);
  read_path(r, "ca_bundle", out.ca_bundle, false);
}

void parse_dns(const toml::table& root, Dns& out, Context& ctx) {
  const auto* t = section_table(root, kDnsSection, ctx.diag);
  if (t == nullptr) return;
  TableReader r(*t, kDnsSection, "dns", ctx.diag);
  std::vector<TableReader::Item> items;
  if (r.read_strings("resolvers", items)) {
    if (items.empty()) {
      r.error("resolvers", "empty; leave the key out to use /etc/resolv.conf");
    }
    const HostPortRules rules{.kind = HostKind::IpOnly, .default_port = 53};
    for (const auto& item : items) {
      std::string why;
      if (auto hp = parse_host_port(item.value, rules, &why)) {
        out.resolvers.push_back(*hp);
      } else {
        ctx.diag.error(item.path, fmt::format("'{}': {}", item.value, why), item.line);
      }
    }
  }
  r.read_duration("timeout", out.timeout, milliseconds(1), seconds(60));
  read_path(r, "prewarm", out.prewarm, true);
  r.read("validating", out.validating);
  const bool min_set = r.read_duration("min_ttl", out.min_ttl, Duration(0));
  r.read_duration("max_ttl", out.max_ttl, seconds(1));
  r.read_duration("negative_ttl", out.negative_ttl, Duration(0));
  if (out.min_ttl > out.max_ttl) {
    const char* key = min_set ? "min_ttl" : "max_ttl";
    r.error(key, fmt::format("min_ttl ({}) is greater than max_ttl ({})", show(out.min_ttl),
                             show(out.max_ttl)));
  }
}

void parse_http(const toml::table& root, Http& out, Context& ctx) {
  const auto* t = section_table(root, kHttpSection, ctx.diag);
  if (t == nullptr) return;
  TableReader r(*t, kHttpSection, "http", ctx.diag);
  r.read_size("max_request_size", out.max_request_size, 1024, 4 * kGB);
  // A budget smaller than one request would answer such a request 503 ("retry later")
  // for ever. Left out, it grows with max_request_size.
  if (r.read_size("max_pending_body_bytes", out.max_pending_body_bytes, 1024, 1024 * kGB)) {
    if (out.max_pending_body_bytes < out.max_request_size) {
      r.error("max_pending_body_bytes",
              fmt::format("{} bytes is less than http.max_request_size ({} bytes): a request "
                          "that large could never be taken",
                          out.max_pending_body_bytes, out.max_request_size));
    }
  } else {
    out.max_pending_body_bytes = std::max(out.max_pending_body_bytes, out.max_request_size);
  }
  r.read("tls", out.tls);
  r.read_duration("request_timeout", out.request_timeout, milliseconds(100), seconds(3600));
  r.read_duration("response_timeout", out.response_timeout, milliseconds(1), seconds(3600));
  read_path(r, "token_file", out.token_file, true);
  std::vector<TableReader::Item> items;
  if (r.read_strings("allowed_origins", items)) {
    for (const auto& item : items) {
      std::string why;
      if (auto origin = normalize_origin(item.value, &why)) {
        out.allowed_origins.push_back(std::move(*origin));
      } else {
        ctx.diag.error(item.path, fmt::format("'{}': {}", item.value, why), item.line);
      }
    }
  }
  std::string text;
  if (!r.read("address", text) || text.empty()) return;
  std::string why;
  const HostPortRules rules{.kind = HostKind::IpOnly, .allow_port_zero = true};
  if (auto hp = parse_host_port(text, rules, &why)) {
    out.address = *hp;
  } else {
    r.error("address", fmt::format("'{}': {}", text, why));
    return;
  }
  // Anyone who can reach a non-loopback port could drive the admin API; without tokens
  // salvod serves it on loopback only (and even there answers 401: see
  // src/admin/README.md).
  if (out.token_file.empty() && !out.loopback()) {
    ctx.diag.error(r.path_of("token_file"),
                   fmt::format("required when http.address ('{}') is not a loopback address",
                               text),
                   r.has("token_file") ? r.line_of_key("token_file") : r.line_of_key("address"));
  }
}

}  // namespace salvo::config::detail
