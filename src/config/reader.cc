// SPDX-License-Identifier: Apache-2.0
// The schema tables, the problem list and TableReader's typed getters. Every message text
// of the "config: KEY: REASON (line N)" form is written here or in a section parser.
#include "config/reader.h"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include <salvo/base/ascii.h>
#include <salvo/base/assert.h>

namespace salvo::config::detail {
namespace {

constexpr std::string_view kRootKeys[] = {"node",     "listen",  "tls",    "dns",  "routes",
                                          "delivery", "shaping", "egress", "dkim", "http"};
constexpr std::string_view kNodeKeys[] = {"hostname",
                                          "cores",
                                          "max_connections",
                                          "max_pending_bytes",
                                          "spool",
                                          "pickup",
                                          "control_socket",
                                          "log_dir",
                                          "accounting_max_size",
                                          "accounting_max_age",
                                          "fsync",
                                          "background_recovery",
                                          "checkpoint",
                                          "spool_segment_size",
                                          "spool_reserve",
                                          "spool_punch_interval",
                                          "commit_interval",
                                          "commit_max_messages",
                                          "commit_max_bytes",
                                          "commits_in_flight"};
constexpr std::string_view kListenKeys[] = {"address",
                                            "starttls",
                                            "relay_networks",
                                            "auth",
                                            "auth_users",
                                            "auth_users_file",
                                            "max_message_size",
                                            "max_recipients",
                                            "max_connections_per_ip",
                                            "idle_timeout",
                                            "command_timeout",
                                            "data_timeout",
                                            "min_data_rate",
                                            "session_timeout",
                                            "hard_error_limit",
                                            "auth_failures_per_ip",
                                            "auth_failures_per_user",
                                            "auth_failure_delay"};
constexpr std::string_view kTlsKeys[] = {"certificate", "key", "ca_bundle"};
constexpr std::string_view kDnsKeys[] = {"resolvers", "timeout",      "prewarm",
                                         "min_ttl",   "max_ttl",      "negative_ttl",
                                         "validating"};
constexpr std::string_view kDeliveryKeys[] = {
    "smtp_port",         "retry_schedule",     "expiry",
    "connect_timeout",   "greeting_timeout",   "helo_timeout",
    "tls_timeout",       "mail_timeout",       "rcpt_timeout",
    "data_init_timeout", "data_block_timeout", "data_done_timeout",
    "max_recipients",    "dsn_from",           "delay_dsn_after",
    "bounce_rules",      "idle_timeout",       "tls_verify",
    "backoff_pause",     "max_hops",           "mta_sts_port",
    "job_window",        "queue_in_memory",    "queue_horizon"};
constexpr std::string_view kBounceRuleKeys[] = {"pattern", "category"};
constexpr std::string_view kShapingKeys[] = {"domain",
                                             "mx_suffix",
                                             "max_connections",
                                             "max_messages_per_connection",
                                             "max_message_rate",
                                             "max_connection_rate",
                                             "tls",
                                             "tls_verify",
                                             "mta_sts",
                                             "egress",
                                             "dane"};
constexpr std::string_view kEgressKeys[] = {"name", "addresses", "ehlo"};
constexpr std::string_view kDkimKeys[] = {"domain", "selector", "key_file", "algorithm",
                                          "headers"};
constexpr std::string_view kHttpKeys[] = {"address",
                                          "max_request_size",
                                          "token_file",
                                          "allowed_origins",
                                          "tls",
                                          "request_timeout",
                                          "response_timeout",
                                          "max_pending_body_bytes"};

bool is_bare_key(std::string_view key) {
  if (key.empty()) return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

std::string_view type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a number";
    case toml::node_type::boolean:
      return "true/false";
    case toml::node_type::array:
      return "a list";
    case toml::node_type::table:
      return "a table";
    default:
      return "a date/time";
  }
}

}  // namespace

const Section kRootSection{"", kRootKeys};
const Section kNodeSection{"node", kNodeKeys};
const Section kListenSection{"listen", kListenKeys};
const Section kTlsSection{"tls", kTlsKeys};
const Section kDnsSection{"dns", kDnsKeys};
const Section kRoutesSection{"routes", {}, true};
const Section kDeliverySection{"delivery", kDeliveryKeys};
const Section kBounceRuleSection{"delivery.bounce_rules", kBounceRuleKeys};
const Section kShapingSection{"shaping", kShapingKeys};
const Section kEgressSection{"egress", kEgressKeys};
const Section kDkimSection{"dkim", kDkimKeys};
const Section kHttpSection{"http", kHttpKeys};

std::span<const Section* const> all_sections() {
  static const Section* const kAll[] = {&kNodeSection,       &kListenSection,  &kTlsSection,
                                        &kDnsSection,        &kRoutesSection,  &kDeliverySection,
                                        &kBounceRuleSection, &kShapingSection, &kEgressSection,
                                        &kDkimSection,       &kHttpSection};
  return kAll;
}

void Diagnostics::error(std::string key, std::string_view reason, std::uint32_t line) {
  std::string message =
      key.empty() ? fmt::format("config: {}", reason) : fmt::format("config: {}: {}", key, reason);
  if (line != 0) message += fmt::format(" (line {})", line);
  errors_.push_back(ConfigError{std::move(message), std::move(key), line});
}

void Diagnostics::unknown_key(std::string key, std::uint32_t line) {
  std::string message = fmt::format("config: unknown key '{}'", key);
  if (line != 0) message += fmt::format(" (line {})", line);
  errors_.push_back(ConfigError{std::move(message), std::move(key), line});
}

ConfigError Diagnostics::first() const {
  SALVO_CHECK(!errors_.empty());
  auto order = [](const ConfigError& e) {
    return e.line == 0 ? std::numeric_limits<std::uint32_t>::max() : e.line;
  };
  return *std::min_element(errors_.begin(), errors_.end(),
                           [&](const auto& a, const auto& b) { return order(a) < order(b); });
}

std::uint32_t line_of(const toml::node& node) { return node.source().begin.line; }

std::string join_path(std::string_view prefix, std::string_view key) {
  std::string k = is_bare_key(key) ? std::string(key) : fmt::format("\"{}\"", key);
  if (prefix.empty()) return k;
  return fmt::format("{}.{}", prefix, k);
}

std::string lower(std::string_view s) { return ascii::lower(s); }

std::string show(Duration d) {
  using std::chrono::nanoseconds;
  struct Unit {
    std::int64_t ns;
    const char* name;
  };
  static constexpr Unit kUnits[] = {{86'400'000'000'000, "d"}, {3'600'000'000'000, "h"},
                                    {60'000'000'000, "m"},     {1'000'000'000, "s"},
                                    {1'000'000, "ms"},         {1'000, "us"}};
  const auto ns = d.count();
  for (const auto& u : kUnits) {
    if (ns != 0 && ns % u.ns == 0) return fmt::format("{}{}", ns / u.ns, u.name);
  }
  return ns == 0 ? "0s" : fmt::format("{}ns", ns);
}

TableReader::TableReader(const toml::table& table, const Section& section, std::string path,
                         Diagnostics& diag)
    : table_(table), section_(section), path_(std::move(path)), diag_(diag) {
  if (section_.free_form) return;
  for (auto&& [k, v] : table_) {
    const auto name = k.str();
    if (std::find(section_.keys.begin(), section_.keys.end(), name) == section_.keys.end()) {
      diag_.unknown_key(join_path(path_, name), k.source().begin.line);
    }
  }
}

const toml::node* TableReader::find(std::string_view key) const {
  // A getter for a key the schema does not list would make known_keys() lie.
  SALVO_CHECK(std::find(section_.keys.begin(), section_.keys.end(), key) != section_.keys.end());
  return table_.get(key);
}

std::uint32_t TableReader::line_of_key(std::string_view key) const {
  const auto* n = table_.get(key);
  return n != nullptr ? line_of(*n) : line();
}

void TableReader::error(std::string_view key, std::string_view reason) const {
  diag_.error(path_of(key), reason, line_of_key(key));
}

void TableReader::missing(std::string_view key) const {
  diag_.error(path_of(key), "required key missing", line());
}

bool TableReader::read(std::string_view key, std::string& out) const {
  const auto* n = find(key);
  if (n == nullptr) return false;
  if (const auto* s = n->as_string()) {
    out = s->get();
    return true;
  }
  error(key, fmt::format("expected a string, got {}", type_name(*n)));
  return false;
}

bool TableReader::read(std::string_view key, bool& out) const {
  const auto* n = find(key);
  if (n == nullptr) return false;
  if (const auto* b = n->as_boolean()) {
    out = b->get();
    return true;
  }
  error(key, fmt::format("expected true or false, got {}", type_name(*n)));
  return false;
}

bool TableReader::read_u32(std::string_view key, std::uint32_t& out, std::uint64_t min,
                           std::uint64_t max) const {
  const auto* n = find(key);
  if (n == nullptr) return false;
  const auto* i = n->as_integer();
  if (i == nullptr) {
    error(key, fmt::format("expected an integer, got {}", type_name(*n)));
    return false;
  }
  const std::int64_t v = i->get();
  if (v < 0 || static_cast<std::uint64_t>(v) < min || static_cast<std::uint64_t>(v) > max) {
    error(key, fmt::format("must be between {} and {}, got {}", min, max, v));
    return false;
  }
  out = static_cast<std::uint32_t>(v);
  return true;
}

bool TableReader::read_port(std::string_view key, std::uint16_t& out) const {
  std::uint32_t v = out;
  if (!read_u32(key, v, 1, 65535)) return false;
  out = static_cast<std::uint16_t>(v);
  return true;
}

bool TableReader::read_size(std::string_view key, std::uint64_t& out, std::uint64_t min,
                            std::uint64_t max) const {
  const auto* n = find(key);
  if (n == nullptr) return false;
  std::uint64_t v = 0;
  if (const auto* i = n->as_integer(); i != nullptr && i->get() >= 0) {
    v = static_cast<std::uint64_t>(i->get());  // a plain byte count
  } else if (const auto* s = n->as_string()) {
    auto parsed = parse_size(s->get());
    if (!parsed) {
      error(key, parsed.error() == std::errc::value_too_large
                     ? std::string("size is too large")
                     : std::string(R"(expected a size like "50MB")"));
      return false;
    }
    v = *parsed;
  } else {
    error(key, R"(expected a size like "50MB")");
    return false;
  }
  if (v < min || v > max) {
    error(key, fmt::format("must be between {} and {} bytes, got {}", min, max, v));
    return false;
  }
  out = v;
  return true;
}

bool TableReader::read_duration(std::string_view key, Duration& out, Duration min,
                                Duration max) const {
  const auto* n = find(key);
  if (n == nullptr) return false;
  const auto* s = n->as_string();
  if (s == nullptr) {
    error(key, R"(expected a duration like "30s")");
    return false;
  }
  auto parsed = parse_duration(s->get());
  if (!parsed) {
    error(key, parsed.error() == std::errc::value_too_large
                   ? std::string("duration is too large")
                   : std::string(R"(expected a duration like "30s")"));
    return false;
  }
  if (*parsed < min) {
    error(key, fmt::format("must be at least {}", show(min)));
    return false;
  }
  if (*parsed > max) {
    error(key, fmt::format("must be at most {}", show(max)));
    return false;
  }
  out = *parsed;
  return true;
}

bool TableReader::read_rate(std::string_view key, std::optional<Rate>& out) const {
  const auto* n = find(key);
  if (n == nullptr) return false;
  const auto* s = n->as_string();
  if (s == nullptr) {
    error(key, R"(expected a rate like "500/s")");
    return false;
  }
  auto parsed = parse_rate(s->get());
  if (!parsed) {
    error(key, R"(expected a rate like "500/s" or "20000/h")");
    return false;
  }
  out = *parsed;
  return true;
}

bool TableReader::read_strings(std::string_view key, std::vector<Item>& out) const {
  const auto* n = find(key);
  if (n == nullptr) return false;
  const auto* a = n->as_array();
  if (a == nullptr) {
    error(key, fmt::format("expected a list of strings, got {}", type_name(*n)));
    return false;
  }
  std::vector<Item> items;
  bool ok = true;
  for (std::size_t i = 0; i < a->size(); ++i) {
    const auto& e = *a->get(i);
    std::string p = fmt::format("{}[{}]", path_of(key), i);
    if (const auto* s = e.as_string()) {
      items.push_back(Item{s->get(), std::move(p), line_of(e)});
    } else {
      diag_.error(std::move(p), fmt::format("expected a string, got {}", type_name(e)), line_of(e));
      ok = false;
    }
  }
  if (!ok) return false;
  out = std::move(items);
  return true;
}

const toml::array* TableReader::array_of_tables(std::string_view key) const {
  const auto* n = find(key);
  if (n == nullptr) return nullptr;
  const auto* a = n->as_array();
  if (a == nullptr) {
    error(key,
          fmt::format("expected an array of tables ([[{}]]), got {}", path_of(key), type_name(*n)));
  }
  return a;
}

const toml::table* TableReader::table(std::string_view key) const {
  const auto* n = find(key);
  if (n == nullptr) return nullptr;
  const auto* t = n->as_table();
  if (t == nullptr) error(key, fmt::format("expected a table, got {}", type_name(*n)));
  return t;
}

const toml::table* section_table(const toml::table& root, const Section& section,
                                 Diagnostics& diag) {
  const auto* n = root.get(section.path);
  if (n == nullptr) return nullptr;
  const auto* t = n->as_table();
  if (t == nullptr) {
    diag.error(std::string(section.path),
               fmt::format("expected a table ([{}]), got {}", section.path, type_name(*n)),
               line_of(*n));
  }
  return t;
}

const toml::array* section_array(const toml::table& root, const Section& section,
                                 Diagnostics& diag) {
  const auto* n = root.get(section.path);
  if (n == nullptr) return nullptr;
  const auto* a = n->as_array();
  if (a == nullptr) {
    diag.error(
        std::string(section.path),
        fmt::format("expected an array of tables ([[{}]]), got {}", section.path, type_name(*n)),
        line_of(*n));
  }
  return a;
}

std::vector<const toml::table*> tables_of(const toml::array& array, std::string_view path,
                                          Diagnostics& diag) {
  std::vector<const toml::table*> out;
  for (std::size_t i = 0; i < array.size(); ++i) {
    const auto& e = *array.get(i);
    out.push_back(e.as_table());
    if (out.back() == nullptr) {
      diag.error(fmt::format("{}[{}]", path, i),
                 fmt::format("expected a table, got {}", type_name(e)), line_of(e));
    }
  }
  return out;
}

}  // namespace salvo::config::detail
