// SPDX-License-Identifier: Apache-2.0
// FNV-1a (64-bit): the one hash salvo uses to spread names over shards (destinations by
// domain, pickup files by name). Stable across runs and builds: a name's shard depends
// only on the name and the shard count.
#pragma once

#include <cstdint>
#include <string_view>

namespace salvo {

constexpr std::uint64_t fnv1a64(std::string_view s) noexcept {
  std::uint64_t h = 1469598103934665603ull;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

// The shard of `name` among `shards` (0 when there are none).
constexpr std::uint32_t shard_of_name(std::string_view name, std::uint32_t shards) noexcept {
  return shards == 0 ? 0 : static_cast<std::uint32_t>(fnv1a64(name) % shards);
}

}  // namespace salvo
