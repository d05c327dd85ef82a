// SPDX-License-Identifier: Apache-2.0
// [delivery] (retry schedule, RFC 5321 timeouts, DSN settings, [[delivery.bounce_rules]])
// and [routes] (static next hops per domain, which bypass DNS).
#include <algorithm>
#include <regex>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "config/reader.h"

namespace salvo::config::detail {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

struct TimeoutKey {
  std::string_view key;
  Duration Delivery::*field;
};
constexpr TimeoutKey kTimeouts[] = {
    {"connect_timeout", &Delivery::connect_timeout},
    {"greeting_timeout", &Delivery::greeting_timeout},
    {"helo_timeout", &Delivery::helo_timeout},
    {"tls_timeout", &Delivery::tls_timeout},
    {"mail_timeout", &Delivery::mail_timeout},
    {"rcpt_timeout", &Delivery::rcpt_timeout},
    {"data_init_timeout", &Delivery::data_init_timeout},
    {"data_block_timeout", &Delivery::data_block_timeout},
    {"data_done_timeout", &Delivery::data_done_timeout},
};

void read_retry_schedule(const TableReader& r, Delivery& d, Diagnostics& diag) {
  std::vector<TableReader::Item> items;
  if (!r.read_strings("retry_schedule", items)) return;
  if (items.empty()) {
    r.error("retry_schedule", "needs at least one interval");
    return;
  }
  std::vector<Duration> schedule;
  for (const auto& item : items) {
    auto parsed = parse_duration(item.value);
    if (!parsed) {
      diag.error(item.path, R"(expected a duration like "10m")", item.line);
    } else if (*parsed < seconds(1)) {
      diag.error(item.path, "must be at least 1s", item.line);
    } else {
      schedule.push_back(*parsed);
    }
  }
  d.retry_schedule = std::move(schedule);
}

bool is_mailbox(std::string_view address) {
  auto at = address.rfind('@');
  if (at == std::string_view::npos || at == 0) return false;
  auto local = address.substr(0, at);
  for (char c : local) {
    if (c <= ' ' || c >= 127 || c == '<' || c == '>' || c == '"' || c == '@') return false;
  }
  return is_domain_name(address.substr(at + 1));
}

void read_bounce_rules(const TableReader& r, Delivery& d, Diagnostics& diag) {
  const auto* a = r.array_of_tables("bounce_rules");
  if (a == nullptr) return;
  const auto path = r.path_of("bounce_rules");
  const auto tables = tables_of(*a, path, diag);
  for (std::size_t i = 0; i < tables.size(); ++i) {
    if (tables[i] == nullptr) continue;
    TableReader br(*tables[i], kBounceRuleSection, fmt::format("{}[{}]", path, i), diag);
    BounceRule rule;
    rule.line = br.line();
    if (!br.read("pattern", rule.pattern)) {
      if (!br.has("pattern")) br.missing("pattern");
    } else if (rule.pattern.empty()) {
      br.error("pattern", "must not be empty");
    } else {
      try {
        std::regex re(rule.pattern, std::regex::ECMAScript | std::regex::icase);
      } catch (const std::regex_error& e) {
        br.error("pattern", fmt::format("not a valid regular expression: {}", e.what()));
      }
    }
    if (!br.read("category", rule.category)) {
      if (!br.has("category")) br.missing("category");
    } else if (std::find(std::begin(kBounceCategories), std::end(kBounceCategories),
                         rule.category) == std::end(kBounceCategories)) {
      br.error("category", fmt::format("unknown category '{}' (one of: {})", rule.category,
                                       fmt::join(std::begin(kBounceCategories),
                                                 std::end(kBounceCategories), ", ")));
    }
    d.bounce_rules.push_back(std::move(rule));
  }
}

}  // namespace

void parse_delivery(const toml::table& root, Delivery& out, Context& ctx) {
  const auto* t = section_table(root, kDeliverySection, ctx.diag);
  if (t == nullptr) return;
  TableReader r(*t, kDeliverySection, "delivery", ctx.diag);
  r.read_port("smtp_port", out.smtp_port);
  read_retry_schedule(r, out, ctx.diag);
  r.read_duration("expiry", out.expiry, seconds(1));
  for (const auto& [key, field] : kTimeouts) {
    r.read_duration(key, out.*field, milliseconds(1));
  }
  r.read_u32("max_recipients", out.max_recipients, 1, 100'000);
  r.read_u32("max_hops", out.max_hops, 1, 10'000);
  r.read_u32("job_window", out.job_window, 1, 10'000'000);
  r.read_u32("queue_in_memory", out.queue_in_memory, 0, 100'000'000);
  r.read_duration("queue_horizon", out.queue_horizon, seconds(1));
  std::string from;
  if (r.read("dsn_from", from) && !from.empty()) {
    if (!is_mailbox(from)) {
      r.error("dsn_from", R"(expected an address like "MAILER-DAEMON@example.com")");
    } else {
      out.dsn_from = from;
    }
  }
  r.read_duration("delay_dsn_after", out.delay_dsn_after, Duration(0));
  r.read_duration("idle_timeout", out.idle_timeout, milliseconds(1));
  r.read("tls_verify", out.tls_verify);
  r.read_port("mta_sts_port", out.mta_sts_port);
  r.read_duration("backoff_pause", out.backoff_pause, milliseconds(1));
  read_bounce_rules(r, out, ctx.diag);
}

void parse_routes(const toml::table& root, std::uint16_t smtp_port, RouteTable& out, Context& ctx) {
  const auto* t = section_table(root, kRoutesSection, ctx.diag);
  if (t == nullptr) return;
  const HostPortRules rules{.kind = HostKind::IpOrDomain, .default_port = smtp_port};
  std::map<std::string, std::pair<std::string, std::uint32_t>> seen;  // domain -> path, line
  for (auto&& [k, v] : *t) {
    const auto path = join_path("routes", k.str());
    std::string domain = lower(k.str());
    if (!domain.empty() && domain.back() == '.') domain.pop_back();
    if (!is_domain_name(domain)) {
      ctx.diag.error(path, "not a domain name", k.source().begin.line);
      continue;
    }
    const auto* hops = v.as_array();
    if (hops == nullptr || hops->empty()) {
      ctx.diag.error(path, R"(expected a list of next hops like ["mx.example.net:25"])",
                     line_of(v));
      continue;
    }
    std::vector<HostPort> parsed;
    for (std::size_t i = 0; i < hops->size(); ++i) {
      const auto& e = *hops->get(i);
      const auto epath = fmt::format("{}[{}]", path, i);
      std::string why = R"(expected "host:port")";
      const auto* s = e.as_string();
      auto hp = s != nullptr ? parse_host_port(s->get(), rules, &why) : std::nullopt;
      if (!hp) {
        ctx.diag.error(epath, s != nullptr ? fmt::format("'{}': {}", s->get(), why) : why,
                       line_of(e));
        continue;
      }
      parsed.push_back(*hp);
    }
    const auto line = k.source().begin.line;
    auto [it, fresh] = seen.emplace(domain, std::make_pair(path, line));
    if (!fresh) {  // report the later of the two
      const bool this_later = line > it->second.second;
      ctx.diag.error(this_later ? path : it->second.first,
                     fmt::format("'{}' has two entries (domains are case-insensitive)", domain),
                     this_later ? line : it->second.second);
      continue;
    }
    out.emplace(domain, std::move(parsed));
  }
}

}  // namespace salvo::config::detail
