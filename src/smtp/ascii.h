// SPDX-License-Identifier: Apache-2.0
// Locale-free ASCII helpers for the parsers (private to smtp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <salvo/base/ascii.h>

namespace salvo::smtp {

using ascii::iequals;
using ascii::istarts_with;
using ascii::to_lower;

constexpr bool is_digit(unsigned char c) noexcept { return c >= '0' && c <= '9'; }
constexpr bool is_alpha(unsigned char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
constexpr bool is_alnum(unsigned char c) noexcept { return is_digit(c) || is_alpha(c); }
constexpr bool is_xdigit(unsigned char c) noexcept {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
constexpr bool is_upper_xdigit(unsigned char c) noexcept {
  return is_digit(c) || (c >= 'A' && c <= 'F');
}
constexpr int hex_value(char ch) noexcept {
  auto c = static_cast<unsigned char>(ch);
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
constexpr char to_upper(char c) noexcept {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - ('a' - 'A')) : c;
}


// Parses 1*DIGIT into *out; false on empty, non-digits or overflow of uint64.
constexpr bool parse_u64(std::string_view s, std::uint64_t* out) noexcept {
  if (s.empty()) return false;
  std::uint64_t v = 0;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (!is_digit(c)) return false;
    std::uint64_t d = c - '0';
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

}  // namespace salvo::smtp
