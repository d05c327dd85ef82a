// SPDX-License-Identifier: Apache-2.0
// [[shaping]] (per-destination limits; the domain = "*" entry is inherited key by key),
// [[egress]] (named source-address pools) and [[dkim]] (signing keys).
#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "config/reader.h"

namespace salvo::config::detail {
namespace {

bool is_pool_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

enum class LeadingDot : std::uint8_t { Reject, Strip };

// A domain as written in the file: lower-cased, without the trailing root dot (and, for an
// mx_suffix, without the leading dot).
bool read_domain(const TableReader& r, std::string_view key, std::string& out,
                 LeadingDot leading = LeadingDot::Reject) {
  std::string v;
  if (!r.read(key, v)) return false;
  std::string d = lower(v);
  if (!d.empty() && d.back() == '.') d.pop_back();
  if (leading == LeadingDot::Strip && !d.empty() && d.front() == '.') d.erase(0, 1);
  if (!is_domain_name(d)) {
    const char* what =
        key == "selector" ? "a valid selector (dot-separated labels)" : "a domain name";
    r.error(key, fmt::format("'{}' is not {}", v, what));
    return false;
  }
  out = std::move(d);
  return true;
}

// The limits of one entry; `s` already holds what it inherits.
void read_limits(const TableReader& r, const std::vector<Egress>& egress, Shaping& s) {
  r.read_u32("max_connections", s.max_connections, 0, 100'000);
  r.read_u32("max_messages_per_connection", s.max_messages_per_connection, 1, 1'000'000);
  r.read_rate("max_message_rate", s.max_message_rate);
  r.read_rate("max_connection_rate", s.max_connection_rate);
  std::string tls;
  if (r.read("tls", tls)) {
    if (tls == "opportunistic") {
      s.tls = TlsPolicy::Opportunistic;
    } else if (tls == "required") {
      s.tls = TlsPolicy::Required;
    } else if (tls == "off") {
      s.tls = TlsPolicy::Off;
    } else {
      r.error("tls", fmt::format("unknown value '{}' (opportunistic, required or off)", tls));
    }
  }
  bool verify = false;
  if (r.read("tls_verify", verify)) s.tls_verify = verify;
  r.read("mta_sts", s.mta_sts);
  r.read("dane", s.dane);
  // Only where the key is written: an inherited one is reported at the "*" entry.
  if (r.read("egress", s.egress) && !s.egress.empty()) {
    const bool known = std::any_of(egress.begin(), egress.end(),
                                   [&](const Egress& e) { return e.name == s.egress; });
    if (!known) r.error("egress", fmt::format("no [[egress]] named '{}'", s.egress));
  }
}

bool is_default_entry(const toml::table& t) {
  const auto* d = t.get("domain");
  return d != nullptr && d->is_string() && d->as_string()->get() == "*";
}

}  // namespace

void parse_shaping(const toml::table& root, const std::vector<Egress>& egress, Shaping& default_out,
                   std::vector<Shaping>& out, Context& ctx) {
  const auto* a = section_array(root, kShapingSection, ctx.diag);
  if (a == nullptr) return;
  const auto tables = tables_of(*a, "shaping", ctx.diag);
  // The "*" entry first: the others inherit from it whatever their place in the file.
  std::size_t default_index = tables.size();
  for (std::size_t i = 0; i < tables.size(); ++i) {
    if (tables[i] == nullptr || !is_default_entry(*tables[i])) continue;
    TableReader r(*tables[i], kShapingSection, fmt::format("shaping[{}]", i), ctx.diag);
    if (default_index != tables.size()) {
      r.error("domain", fmt::format("a second domain = \"*\" entry (the first is shaping[{}])",
                                    default_index));
      continue;
    }
    default_index = i;
    if (r.has("mx_suffix")) r.error("mx_suffix", "give domain or mx_suffix, not both");
    default_out.domain = "*";
    default_out.line = r.line();
    read_limits(r, egress, default_out);
  }
  for (std::size_t i = 0; i < tables.size(); ++i) {
    if (tables[i] == nullptr || is_default_entry(*tables[i])) continue;
    TableReader r(*tables[i], kShapingSection, fmt::format("shaping[{}]", i), ctx.diag);
    Shaping s = default_out;
    s.domain.clear();
    s.line = r.line();
    const bool has_domain = r.has("domain");
    const bool has_suffix = r.has("mx_suffix");
    if (has_domain && has_suffix) {
      r.error("mx_suffix", "give domain or mx_suffix, not both");
    } else if (!has_domain && !has_suffix) {
      ctx.diag.error(r.path(), "needs domain or mx_suffix", r.line());
    } else if (has_domain) {
      read_domain(r, "domain", s.domain);
    } else if (read_domain(r, "mx_suffix", s.mx_suffix, LeadingDot::Strip)) {
      s.mx_suffix.insert(0, ".");
    }
    read_limits(r, egress, s);
    for (std::size_t j = 0; j < out.size(); ++j) {
      const bool same = (!s.domain.empty() && s.domain == out[j].domain) ||
                        (!s.mx_suffix.empty() && s.mx_suffix == out[j].mx_suffix);
      if (same) {
        const char* key = s.domain.empty() ? "mx_suffix" : "domain";
        r.error(key, fmt::format("'{}' already has an entry at line {}",
                                 s.domain.empty() ? s.mx_suffix : s.domain, out[j].line));
      }
    }
    out.push_back(std::move(s));
  }
}

void parse_egress(const toml::table& root, std::vector<Egress>& out, Context& ctx) {
  const auto* a = section_array(root, kEgressSection, ctx.diag);
  if (a == nullptr) return;
  const auto tables = tables_of(*a, "egress", ctx.diag);
  for (std::size_t i = 0; i < tables.size(); ++i) {
    if (tables[i] == nullptr) continue;
    TableReader r(*tables[i], kEgressSection, fmt::format("egress[{}]", i), ctx.diag);
    Egress e;
    e.line = r.line();
    if (!r.read("name", e.name)) {
      if (!r.has("name")) r.missing("name");
    } else if (!is_pool_name(e.name)) {
      r.error("name", fmt::format("'{}': use letters, digits, '-', '_' and '.'", e.name));
    } else {
      for (const auto& other : out) {
        if (other.name == e.name) {
          r.error("name", fmt::format("duplicate egress name '{}', first defined at line {}",
                                      e.name, other.line));
        }
      }
    }
    std::vector<TableReader::Item> items;
    if (!r.read_strings("addresses", items)) {
      if (!r.has("addresses")) r.missing("addresses");
    } else if (items.empty()) {
      r.error("addresses", "needs at least one source address");
    }
    for (const auto& item : items) {
      auto ip = IpAddress::parse(item.value);
      if (!ip) {
        ctx.diag.error(item.path, fmt::format("'{}' is not an IP address", item.value), item.line);
      } else if (std::find(e.addresses.begin(), e.addresses.end(), *ip) != e.addresses.end()) {
        ctx.diag.error(item.path, fmt::format("'{}' is listed twice", item.value), item.line);
      } else {
        e.addresses.push_back(*ip);
      }
    }
    std::string ehlo;
    if (r.read("ehlo", ehlo) && !ehlo.empty()) {
      if (!is_domain_name(ehlo)) {
        r.error("ehlo", fmt::format("'{}' is not a host name", ehlo));
      } else {
        e.ehlo = lower(ehlo);
      }
    }
    out.push_back(std::move(e));
  }
}

void parse_dkim(const toml::table& root, std::vector<Dkim>& out, Context& ctx) {
  const auto* a = section_array(root, kDkimSection, ctx.diag);
  if (a == nullptr) return;
  const auto tables = tables_of(*a, "dkim", ctx.diag);
  for (std::size_t i = 0; i < tables.size(); ++i) {
    if (tables[i] == nullptr) continue;
    TableReader r(*tables[i], kDkimSection, fmt::format("dkim[{}]", i), ctx.diag);
    Dkim d;
    d.line = r.line();
    if (!r.has("domain")) r.missing("domain");
    read_domain(r, "domain", d.domain);
    // RFC 6376 §3.1: a selector is one or more dot-separated labels.
    if (!r.has("selector")) r.missing("selector");
    read_domain(r, "selector", d.selector);
    if (!r.read("key_file", d.key_file)) {
      if (!r.has("key_file")) r.missing("key_file");
    } else if (d.key_file.empty()) {
      r.error("key_file", "must not be empty");
    }
    std::string alg;
    if (r.read("algorithm", alg)) {
      if (alg == "rsa-sha256") {
        d.algorithm = DkimAlgorithm::RsaSha256;
      } else if (alg == "ed25519-sha256") {
        d.algorithm = DkimAlgorithm::Ed25519Sha256;
      } else {
        r.error("algorithm", fmt::format("unknown value '{}' (rsa-sha256 or ed25519-sha256)", alg));
      }
    }
    std::vector<TableReader::Item> items;
    if (r.read_strings("headers", items)) {
      if (items.empty()) r.error("headers", "needs at least one field name (From is always signed)");
      for (const auto& item : items) {
        // RFC 5322 field-name: printable US-ASCII but ':'.
        const bool ok = !item.value.empty() &&
                        std::all_of(item.value.begin(), item.value.end(),
                                    [](char c) { return c > 32 && c < 127 && c != ':'; });
        if (!ok) {
          ctx.diag.error(item.path, fmt::format("'{}' is not a header field name", item.value),
                         item.line);
          continue;
        }
        std::string name = item.value;
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (std::find(d.headers.begin(), d.headers.end(), name) == d.headers.end()) {
          d.headers.push_back(std::move(name));
        }
      }
    }
    for (const auto& other : out) {
      if (!d.domain.empty() && other.domain == d.domain && other.selector == d.selector) {
        r.error("selector", fmt::format("'{}' for '{}' is already defined at line {}", d.selector,
                                        d.domain, other.line));
      }
    }
    out.push_back(std::move(d));
  }
}

}  // namespace salvo::config::detail
