// SPDX-License-Identifier: Apache-2.0
// Duration and size parsers: number then unit, overflow-checked.
#include <salvo/base/units.h>

#include <charconv>
#include <fmt/format.h>

namespace salvo {
namespace {

struct NumberUnit {
  std::uint64_t number;
  std::string_view unit;
};

Result<NumberUnit> split(std::string_view text) {
  std::uint64_t n = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec == std::errc::result_out_of_range) return fail(std::errc::value_too_large);
  if (ec != std::errc() || p == text.data()) return fail(std::errc::invalid_argument);
  return NumberUnit{n, std::string_view(p, static_cast<std::size_t>(text.data() + text.size() - p))};
}

Result<std::uint64_t> scale(std::uint64_t n, std::uint64_t mul) {
  if (mul != 0 && n > UINT64_MAX / mul) return fail(std::errc::value_too_large);
  return n * mul;
}

}  // namespace

Result<Duration> parse_duration(std::string_view text) {
  auto nu = split(text);
  if (!nu) return std::unexpected(nu.error());
  std::uint64_t mul_ns;
  std::string_view u = nu->unit;
  if (u == "ns") mul_ns = 1;
  else if (u == "us") mul_ns = 1'000;
  else if (u == "ms") mul_ns = 1'000'000;
  else if (u == "s") mul_ns = 1'000'000'000ull;
  else if (u == "m") mul_ns = 60'000'000'000ull;
  else if (u == "h") mul_ns = 3'600'000'000'000ull;
  else if (u == "d") mul_ns = 86'400'000'000'000ull;
  else return fail(std::errc::invalid_argument);
  auto ns = scale(nu->number, mul_ns);
  if (!ns || *ns > static_cast<std::uint64_t>(INT64_MAX)) return fail(std::errc::value_too_large);
  return Duration(static_cast<std::int64_t>(*ns));
}

Result<std::uint64_t> parse_size(std::string_view text) {
  auto nu = split(text);
  if (!nu) return std::unexpected(nu.error());
  std::string_view u = nu->unit;
  std::uint64_t mul;
  if (u.empty() || u == "B") mul = 1;
  else if (u == "KB" || u == "kB" || u == "K") mul = 1000;
  else if (u == "MB" || u == "M") mul = 1000 * 1000;
  else if (u == "GB" || u == "G") mul = 1000ull * 1000 * 1000;
  else if (u == "KiB") mul = 1024;
  else if (u == "MiB") mul = 1024 * 1024;
  else if (u == "GiB") mul = 1024ull * 1024 * 1024;
  else return fail(std::errc::invalid_argument);
  return scale(nu->number, mul);
}

Result<Rate> parse_rate(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return fail(std::errc::invalid_argument);
  auto count_text = text.substr(0, slash);
  auto period_text = text.substr(slash + 1);
  auto nu = split(count_text);
  if (!nu) return std::unexpected(nu.error());
  if (!nu->unit.empty() || nu->number == 0) return fail(std::errc::invalid_argument);
  Result<Duration> period = fail(std::errc::invalid_argument);
  if (!period_text.empty() && period_text.front() >= '0' && period_text.front() <= '9') {
    period = parse_duration(period_text);
  } else if (!period_text.empty()) {
    period = parse_duration(std::string("1").append(period_text));
  }
  if (!period) return std::unexpected(period.error());
  if (period->count() <= 0) return fail(std::errc::invalid_argument);
  return Rate{nu->number, *period};
}

double Rate::per_second() const noexcept {
  if (period.count() <= 0) return 0;
  return static_cast<double>(count) * 1e9 / static_cast<double>(period.count());
}

std::string format_duration(Duration d) {
  auto ns = d.count();
  if (ns >= 1'000'000'000) return fmt::format("{:.3g}s", static_cast<double>(ns) / 1e9);
  if (ns >= 1'000'000) return fmt::format("{:.3g}ms", static_cast<double>(ns) / 1e6);
  if (ns >= 1'000) return fmt::format("{:.3g}us", static_cast<double>(ns) / 1e3);
  return fmt::format("{}ns", ns);
}

}  // namespace salvo
