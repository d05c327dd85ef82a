// SPDX-License-Identifier: Apache-2.0
// MTA-STS records, policies and MX matching (see mta_sts.h).
#include "outbound/mta_sts.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

#include <salvo/base/ascii.h>

namespace salvo::outbound {
namespace {

constexpr std::string_view kWsp = " \t";

std::string_view trim(std::string_view s) {
  const auto b = s.find_first_not_of(kWsp);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(kWsp) - b + 1);
}

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// A host name or pattern without its final dot, lower case.
std::string canonical(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  return ascii::lower(name);
}

// §3.2 sts-policy-mx-value: a domain name, optionally with a leading "*." wildcard label.
bool valid_mx_pattern(std::string_view p) {
  if (p.starts_with("*.")) p.remove_prefix(2);
  if (p.empty() || p.size() > 253) return false;
  std::size_t label = 0;
  for (std::size_t i = 0; i <= p.size(); ++i) {
    if (i == p.size() || p[i] == '.') {
      if (label == 0 || label > 63) return false;
      label = 0;
      continue;
    }
    const char c = p[i];
    if (!is_alnum(c) && c != '-' && c != '_') return false;
    ++label;
  }
  return true;
}

}  // namespace

std::string_view to_string(StsMode m) noexcept {
  switch (m) {
    case StsMode::Enforce: return "enforce";
    case StsMode::Testing: return "testing";
    case StsMode::None: return "none";
  }
  return "none";
}

std::expected<std::string, std::string> parse_sts_record(std::span<const std::string> records) {
  const std::string* found = nullptr;
  for (const auto& r : records) {
    // §3.1: "v=STSv1" followed by a field delimiter (or the end).
    if (!r.starts_with("v=STSv1")) continue;
    const std::string_view after = trim(std::string_view(r).substr(7));
    if (!after.empty() && after.front() != ';') continue;
    if (found != nullptr) return std::unexpected("more than one v=STSv1 TXT record");
    found = &r;
  }
  if (found == nullptr) return std::unexpected("no v=STSv1 TXT record");
  std::string_view rest = std::string_view(*found).substr(7);
  std::string id;
  while (!rest.empty()) {
    const auto semi = rest.find(';');
    const std::string_view field = trim(rest.substr(0, semi));
    rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
    if (field.empty()) continue;
    const auto eq = field.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return std::unexpected(fmt::format("bad field '{}'", field.substr(0, 64)));
    }
    if (field.substr(0, eq) != "id") continue;  // extension fields are ignored
    const std::string_view v = field.substr(eq + 1);
    if (v.empty() || v.size() > 32 || !std::all_of(v.begin(), v.end(), is_alnum)) {
      return std::unexpected(fmt::format("bad id '{}'", v.substr(0, 64)));
    }
    if (!id.empty()) return std::unexpected("more than one id");
    id = v;
  }
  if (id.empty()) return std::unexpected("no id");
  return id;
}

std::expected<StsPolicy, std::string> parse_sts_policy(std::string_view body) {
  if (body.size() > kMaxPolicyBytes) return std::unexpected("policy larger than 64 KiB");
  StsPolicy p;
  bool version = false, mode = false, max_age = false;
  std::size_t line_no = 0;
  while (!body.empty()) {
    ++line_no;
    const auto nl = body.find('\n');
    std::string_view line = body.substr(0, nl);
    body = nl == std::string_view::npos ? std::string_view() : body.substr(nl + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    line = trim(line);
    if (line.empty()) continue;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return std::unexpected(fmt::format("line {}: not 'key: value'", line_no));
    }
    const std::string_view key = trim(line.substr(0, colon));
    const std::string_view value = trim(line.substr(colon + 1));
    if (key == "version") {
      if (value != "STSv1") {
        return std::unexpected(fmt::format("unknown version '{}'", value.substr(0, 64)));
      }
      version = true;
    } else if (key == "mode") {
      if (value == "enforce") {
        p.mode = StsMode::Enforce;
      } else if (value == "testing") {
        p.mode = StsMode::Testing;
      } else if (value == "none") {
        p.mode = StsMode::None;
      } else {
        return std::unexpected(fmt::format("unknown mode '{}'", value.substr(0, 64)));
      }
      mode = true;
    } else if (key == "max_age") {
      std::uint64_t v = 0;
      const auto r = std::from_chars(value.data(), value.data() + value.size(), v);
      if (value.empty() || value.size() > 10 || r.ec != std::errc() ||
          r.ptr != value.data() + value.size()) {
        return std::unexpected(fmt::format("bad max_age '{}'", value.substr(0, 64)));
      }
      p.max_age = static_cast<std::uint32_t>(std::min<std::uint64_t>(v, kMaxPolicyAge));
      max_age = true;
    } else if (key == "mx") {
      if (!valid_mx_pattern(canonical(value))) {
        return std::unexpected(fmt::format("bad mx '{}'", value.substr(0, 64)));
      }
      p.mx.push_back(canonical(value));
    }
  }
  if (!version) return std::unexpected("no version: STSv1");
  if (!mode) return std::unexpected("no mode");
  if (!max_age) return std::unexpected("no max_age");
  if (p.mode != StsMode::None && p.mx.empty()) return std::unexpected("no mx");
  return p;
}

bool mx_pattern_matches(std::string_view pattern, std::string_view host) {
  const std::string h = canonical(host);
  if (h.empty()) return false;
  if (!pattern.starts_with("*.")) return ascii::iequals(pattern, h);
  // "*.example.com": exactly one label, non-empty, before ".example.com".
  const std::string_view rest = pattern.substr(1);  // ".example.com"
  if (h.size() <= rest.size()) return false;
  const std::string_view tail = std::string_view(h).substr(h.size() - rest.size());
  const std::string_view head = std::string_view(h).substr(0, h.size() - rest.size());
  return ascii::iequals(tail, rest) && !head.empty() && head.find('.') == std::string_view::npos;
}

bool mx_allowed(const StsPolicy& p, std::string_view host) {
  return std::any_of(p.mx.begin(), p.mx.end(),
                     [&](const std::string& pat) { return mx_pattern_matches(pat, host); });
}

}  // namespace salvo::outbound
