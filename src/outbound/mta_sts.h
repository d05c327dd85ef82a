// SPDX-License-Identifier: Apache-2.0
// MTA-STS (RFC 8461), the pure part: the `_mta-sts.<domain>` TXT record, the policy body
// served at https://mta-sts.<domain>/.well-known/mta-sts.txt, and MX host matching.
// Sans-IO: strings in, values or a one-line error out; every input is bounded and nothing
// in it can crash the parser (unit tests: tests/unit/outbound/mta_sts_test.cc).
//
// Owner: values; no state.
#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace salvo::outbound {

enum class StsMode : std::uint8_t { Enforce, Testing, None };
std::string_view to_string(StsMode m) noexcept;  // "enforce", "testing", "none"

// RFC 8461 §3.2: a policy body is at most 64 KiB; max_age at most 31557600 s (a year).
inline constexpr std::size_t kMaxPolicyBytes = 64 * 1024;
inline constexpr std::uint32_t kMaxPolicyAge = 31'557'600;

struct StsPolicy {
  StsMode mode = StsMode::None;
  std::vector<std::string> mx;  // lower case; "*.example.com" matches one leftmost label
  std::uint32_t max_age = 0;    // seconds
  std::string id;               // the TXT record's id it was fetched for
};
using StsPolicyPtr = std::shared_ptr<const StsPolicy>;

// The id of the one `v=STSv1` record among `records` (TXT texts, strings joined). Records
// not starting with "v=STSv1" are ignored (§3.1); none, more than one, or a bad one: error.
std::expected<std::string, std::string> parse_sts_record(std::span<const std::string> records);

// The policy body (§3.2): "key: value" lines, CRLF or LF; version STSv1, mode, max_age and
// (unless mode is none) at least one mx are required; unknown keys are ignored.
std::expected<StsPolicy, std::string> parse_sts_policy(std::string_view body);

// §4.1: `host` (an MX host name, any case, with or without the final dot) matches
// `pattern`: equal, or the pattern is "*.<rest>" and host is one label before <rest>.
bool mx_pattern_matches(std::string_view pattern, std::string_view host);
bool mx_allowed(const StsPolicy& p, std::string_view host);

}  // namespace salvo::outbound
