// SPDX-License-Identifier: Apache-2.0
// Strict base64; every index checked (Exim CVE-2018-6789 was an off-by-one here).
#include "smtp/base64.h"

#include <array>
#include <cstdint>

namespace salvo::smtp {
namespace {

constexpr char kAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<std::int8_t, 256> make_table() {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
  return t;
}
constexpr std::array<std::int8_t, 256> kTable = make_table();

}  // namespace

bool base64_decode(std::string_view in, std::string* out) {
  out->clear();
  if (in.size() % 4 != 0) return false;
  out->reserve(in.size() / 4 * 3);
  for (std::size_t i = 0; i < in.size(); i += 4) {
    const bool last = i + 4 == in.size();
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      char c = in[i + static_cast<std::size_t>(k)];
      if (c == '=') {
        if (!last || k < 2) return false;
        v[k] = 0;
        ++pad;
        continue;
      }
      if (pad) return false;  // data after padding
      int d = kTable[static_cast<unsigned char>(c)];
      if (d < 0) return false;
      v[k] = d;
    }
    std::uint32_t w = static_cast<std::uint32_t>(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
    out->push_back(static_cast<char>(w >> 16));
    if (pad == 2) {
      if (w & 0xFFFF) return false;
      break;
    }
    out->push_back(static_cast<char>(w >> 8 & 0xFF));
    if (pad == 1) {
      if (w & 0xFF) return false;
      break;
    }
    out->push_back(static_cast<char>(w & 0xFF));
  }
  return true;
}

void base64_encode(std::string_view in, std::string* out) {
  out->clear();
  out->reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto byte = [&](std::size_t k) { return static_cast<std::uint32_t>(static_cast<unsigned char>(in[k])); };
  for (; i + 3 <= in.size(); i += 3) {
    std::uint32_t w = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out->push_back(kAlphabet[w >> 18 & 63]);
    out->push_back(kAlphabet[w >> 12 & 63]);
    out->push_back(kAlphabet[w >> 6 & 63]);
    out->push_back(kAlphabet[w & 63]);
  }
  std::size_t rest = in.size() - i;
  if (rest == 1) {
    std::uint32_t w = byte(i) << 16;
    out->push_back(kAlphabet[w >> 18 & 63]);
    out->push_back(kAlphabet[w >> 12 & 63]);
    out->append("==");
  } else if (rest == 2) {
    std::uint32_t w = byte(i) << 16 | byte(i + 1) << 8;
    out->push_back(kAlphabet[w >> 18 & 63]);
    out->push_back(kAlphabet[w >> 12 & 63]);
    out->push_back(kAlphabet[w >> 6 & 63]);
    out->push_back('=');
  }
}

}  // namespace salvo::smtp
