// SPDX-License-Identifier: Apache-2.0
// CRC32C (Castagnoli, reflected 0x82F63B78): slicing-by-8 tables built at compile time,
// and the SSE4.2 crc32 instruction when the CPU has it (checked once at run time), three
// streams at a time on long inputs.
#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>

#include <salvo/spool/records.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace salvo::spool {
namespace {

constexpr std::uint32_t kPoly = 0x82F63B78u;

constexpr std::array<std::array<std::uint32_t, 256>, 8> make_tables() {
  std::array<std::array<std::uint32_t, 256>, 8> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    t[0][i] = c;
  }
  for (std::size_t s = 1; s < 8; ++s) {
    for (std::uint32_t i = 0; i < 256; ++i) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
  }
  return t;
}
constexpr auto kTables = make_tables();

std::uint32_t crc_table(const unsigned char* p, std::size_t n, std::uint32_t c) noexcept {
  while (n >= 8) {
    std::uint32_t lo = c ^ (std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 |
                            std::uint32_t{p[2]} << 16 | std::uint32_t{p[3]} << 24);
    c = kTables[7][lo & 0xFF] ^ kTables[6][(lo >> 8) & 0xFF] ^ kTables[5][(lo >> 16) & 0xFF] ^
        kTables[4][lo >> 24] ^ kTables[3][p[4]] ^ kTables[2][p[5]] ^ kTables[1][p[6]] ^
        kTables[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) c = kTables[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
  return c;
}

#if defined(__x86_64__)
// The crc32 instruction takes three cycles but can start one every cycle: three streams
// over three neighbouring blocks of a long input run about three times as fast as one.
// The streams are joined by "shifting" a CRC over a block of zeros: processing n zero
// bytes is linear in the CRC register, so it is four table lookups, one per CRC byte,
// with tables made at start-up by running the instruction itself over zeros.
constexpr std::size_t kLong = 8192;  // block of the long loop (inputs of 24 KiB and more)
constexpr std::size_t kShort = 256;  // block of the short loop (768 bytes and more)

using ShiftTable = std::array<std::array<std::uint32_t, 256>, 4>;

__attribute__((target("sse4.2"))) std::uint32_t crc_u64_run(std::uint64_t c, std::size_t words,
                                                             const unsigned char* p) noexcept {
  for (std::size_t i = 0; i < words; ++i) {
    std::uint64_t v = 0;
    if (p != nullptr) std::memcpy(&v, p + 8 * i, 8);
    c = _mm_crc32_u64(c, v);
  }
  return static_cast<std::uint32_t>(c);
}

ShiftTable make_shift(std::size_t block) noexcept {
  ShiftTable t{};
  for (std::size_t k = 0; k < 4; ++k) {
    for (std::uint32_t b = 0; b < 256; ++b) {
      t[k][b] = crc_u64_run(std::uint64_t{b} << (8 * k), block / 8, nullptr);
    }
  }
  return t;
}

inline std::uint32_t shift(const ShiftTable& t, std::uint32_t c) noexcept {
  return t[0][c & 0xFF] ^ t[1][(c >> 8) & 0xFF] ^ t[2][(c >> 16) & 0xFF] ^ t[3][c >> 24];
}

// Three streams over [p, p + 3 * block), repeated while the input lasts.
template <std::size_t kBlock>
__attribute__((target("sse4.2"))) std::uint32_t crc_three(const unsigned char*& p, std::size_t& n,
                                                          std::uint32_t c,
                                                          const ShiftTable& t) noexcept {
  while (n >= 3 * kBlock) {
    std::uint64_t c0 = c, c1 = 0, c2 = 0;
    for (std::size_t i = 0; i < kBlock; i += 8) {
      std::uint64_t v0, v1, v2;
      std::memcpy(&v0, p + i, 8);
      std::memcpy(&v1, p + kBlock + i, 8);
      std::memcpy(&v2, p + 2 * kBlock + i, 8);
      c0 = _mm_crc32_u64(c0, v0);
      c1 = _mm_crc32_u64(c1, v1);
      c2 = _mm_crc32_u64(c2, v2);
    }
    c = shift(t, shift(t, static_cast<std::uint32_t>(c0)) ^ static_cast<std::uint32_t>(c1)) ^
        static_cast<std::uint32_t>(c2);
    p += 3 * kBlock;
    n -= 3 * kBlock;
  }
  return c;
}

struct Shifts {
  ShiftTable long_block;
  ShiftTable short_block;
};

const bool kHaveSse42 = __builtin_cpu_supports("sse4.2");
const Shifts* const kShifts =
    kHaveSse42 ? new Shifts{make_shift(kLong), make_shift(kShort)} : nullptr;

__attribute__((target("sse4.2"))) std::uint32_t crc_sse42(const unsigned char* p, std::size_t n,
                                                          std::uint32_t c) noexcept {
  c = crc_three<kLong>(p, n, c, kShifts->long_block);
  c = crc_three<kShort>(p, n, c, kShifts->short_block);
  std::uint64_t c64 = c;
  while (n >= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    c64 = _mm_crc32_u64(c64, v);
    p += 8;
    n -= 8;
  }
  c = static_cast<std::uint32_t>(c64);
  while (n-- > 0) c = _mm_crc32_u8(c, *p++);
  return c;
}
#endif

}  // namespace

std::uint32_t crc32c(std::string_view data, std::uint32_t crc) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  std::uint32_t c = ~crc;
#if defined(__x86_64__)
  if (kHaveSse42) return ~crc_sse42(p, data.size(), c);
#endif
  return ~crc_table(p, data.size(), c);
}

// For tests: the portable path must agree with the hardware one.
std::uint32_t crc32c_portable_for_test(std::string_view data) noexcept {
  return ~crc_table(reinterpret_cast<const unsigned char*>(data.data()), data.size(), ~0u);
}

}  // namespace salvo::spool
