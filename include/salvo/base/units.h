// SPDX-License-Identifier: Apache-2.0
// Parsers for the human units used in configs and flags: durations "250ms",
// "30s", "5m", "2h", "4d"; sizes "512", "10KB", "50MB", "1GiB"; rates "500/s", "20000/h",
// "100/m", "10/5s". Strict: no sign, no spaces inside, overflow-checked.
// std::errc::invalid_argument / value_too_large.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <salvo/base/clock.h>
#include <salvo/base/result.h>

namespace salvo {

// A rate: `count` events per `period` (both > 0). "500/s" is {500, 1s}.
struct Rate {
  std::uint64_t count = 0;
  Duration period{};

  double per_second() const noexcept;
  friend bool operator==(const Rate&, const Rate&) = default;
};

[[nodiscard]] Result<Duration> parse_duration(std::string_view text);
[[nodiscard]] Result<std::uint64_t> parse_size(std::string_view text);
// COUNT "/" PERIOD, where PERIOD is a unit alone ("s", "m", "h", "d" meaning one of it) or
// a duration ("5m"). Zero counts and zero periods are invalid_argument.
[[nodiscard]] Result<Rate> parse_rate(std::string_view text);
std::string format_duration(Duration d);  // "1.5s", "250ms", "3us"

}  // namespace salvo
