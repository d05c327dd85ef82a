// SPDX-License-Identifier: Apache-2.0
// Unpredictable 16-bit query ids (RFC 5452 §4, §9.2) from getrandom(2), buffered per thread.
#pragma once

#include <cstdint>

namespace salvo::dns::detail {

// From the kernel CSPRNG; aborts only if getrandom(2) itself is unavailable.
std::uint16_t random_u16() noexcept;
std::uint64_t random_u64() noexcept;

}  // namespace salvo::dns::detail
