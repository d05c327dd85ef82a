// SPDX-License-Identifier: Apache-2.0
// Base64 (RFC 4648 §4, with padding) for bh=, b= and p=.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace salvo::dkim::detail {

// Appends the encoding of `data` to `out`.
void base64_append(std::span<const std::uint8_t> data, std::string& out);

inline std::size_t base64_size(std::size_t n) noexcept { return (n + 2) / 3 * 4; }

}  // namespace salvo::dkim::detail
