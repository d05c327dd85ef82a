// SPDX-License-Identifier: Apache-2.0
// Parsing of "ADDR[,key=value...]" listener specs.
#include "sink_options.h"

#include <charconv>
#include <cstdlib>
#include <string_view>

#include <salvo/base/units.h>

namespace salvo::sink {
namespace {

bool parse_rate(std::string_view v, double* out) {
  std::string s(v);
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !(d >= 0.0 && d <= 1.0)) return false;
  *out = d;
  return true;
}

}  // namespace

bool parse_defer_status(std::string_view text, smtp::EnhancedStatus* out) {
  smtp::EnhancedStatus st = smtp::parse_enhanced_status(text);
  if (st.klass != 4) return false;
  *out = st;
  return true;
}

bool parse_trickle_at(std::string_view text, TrickleAt* out) {
  if (text == "all") {
    *out = TrickleAt::All;
  } else if (text == "greeting") {
    *out = TrickleAt::Greeting;
  } else if (text == "ehlo") {
    *out = TrickleAt::Ehlo;
  } else if (text == "data") {
    *out = TrickleAt::Data;
  } else {
    return false;
  }
  return true;
}

Result<ListenerSpec> parse_listener(const std::string& text, const Faults& defaults,
                                    std::string* why) {
  ListenerSpec spec;
  spec.text = text;
  spec.faults = defaults;
  std::string_view rest(text);
  auto comma = rest.find(',');
  std::string_view addr = rest.substr(0, comma);
  auto parsed = net::SocketAddress::parse(addr, 25);
  if (!parsed) {
    *why = std::string(addr) + ": not an IP:port address";
    return std::unexpected(parsed.error());
  }
  spec.address = *parsed;
  rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  while (!rest.empty()) {
    comma = rest.find(',');
    std::string_view kv = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    auto eq = kv.find('=');
    std::string_view key = kv.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? std::string_view() : kv.substr(eq + 1);
    bool ok = eq != std::string_view::npos;
    Duration* duration = key == "latency"      ? &spec.faults.latency
                         : key == "trickle"    ? &spec.faults.trickle
                         : key == "stall-data" ? &spec.faults.stall_data
                                               : nullptr;
    if (ok && duration != nullptr) {
      auto d = parse_duration(value);
      ok = d.has_value();
      if (ok) *duration = *d;
    } else if (ok && key == "trickle-at") {
      ok = parse_trickle_at(value, &spec.faults.trickle_at);
    } else if (ok && key == "defer-rate") {
      ok = parse_rate(value, &spec.faults.defer_rate);
    } else if (ok && key == "defer-status") {
      ok = parse_defer_status(value, &spec.faults.defer_status);
    } else if (ok && key == "reject-rate") {
      ok = parse_rate(value, &spec.faults.reject_rate);
    } else if (ok && key == "drop-rate") {
      ok = parse_rate(value, &spec.faults.drop_rate);
    } else if (ok && key == "421-after") {
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(),
                                     spec.faults.fail_after);
      ok = ec == std::errc() && p == value.data() + value.size();
    } else {
      *why = std::string(kv) + ": unknown listener option (latency, defer-rate, "
                               "defer-status, reject-rate, drop-rate, 421-after, trickle, "
                               "trickle-at, stall-data)";
      return fail(std::errc::invalid_argument);
    }
    if (!ok) {
      *why = std::string(kv) + ": bad value";
      return fail(std::errc::invalid_argument);
    }
  }
  return spec;
}

}  // namespace salvo::sink
