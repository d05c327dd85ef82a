// SPDX-License-Identifier: Apache-2.0
// Parsers for the human units used in configs and flags (SPEC §3): durations "250ms",
// "30s", "5m", "2h", "4d"; sizes "512", "10KB", "50MB", "1GiB". Strict: no sign, no
// spaces inside, overflow-checked. std::errc::invalid_argument / value_too_large.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <salvo/base/clock.h>
#include <salvo/base/result.h>

namespace salvo {

[[nodiscard]] Result<Duration> parse_duration(std::string_view text);
[[nodiscard]] Result<std::uint64_t> parse_size(std::string_view text);
std::string format_duration(Duration d);  // "1.5s", "250ms", "3us"

}  // namespace salvo
