// SPDX-License-Identifier: Apache-2.0
// Little-endian field writer and a bounds-checked reader for spool payloads. The reader
// never reads past its input: every failure sets ok() false and yields zeros.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace salvo::spool::wire {

inline void put_u8(std::string& out, std::uint8_t v) { out.push_back(static_cast<char>(v)); }
inline void put_u16(std::string& out, std::uint16_t v) {
  char b[2] = {static_cast<char>(v), static_cast<char>(v >> 8)};
  out.append(b, 2);
}
inline void put_u32(std::string& out, std::uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out.append(b, 4);
}
inline void put_u64(std::string& out, std::uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out.append(b, 8);
}
inline void put_i64(std::string& out, std::int64_t v) {
  put_u64(out, static_cast<std::uint64_t>(v));
}
inline void put_str(std::string& out, std::string_view s) {
  put_u32(out, static_cast<std::uint32_t>(s.size()));
  out.append(s);
}

inline std::uint32_t load_u32(const char* p) noexcept {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
inline void store_u32(char* p, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const noexcept { return ok_; }
  bool at_end() const noexcept { return pos_ == in_.size(); }
  void invalidate() noexcept { ok_ = false; }
  std::size_t remaining() const noexcept { return in_.size() - pos_; }

  std::uint64_t uint(int bytes) noexcept {
    if (!ok_ || remaining() < static_cast<std::size_t>(bytes)) return bad();
    std::uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) {
      v = (v << 8) | static_cast<unsigned char>(in_[pos_ + static_cast<std::size_t>(i)]);
    }
    pos_ += static_cast<std::size_t>(bytes);
    return v;
  }
  std::uint8_t u8() noexcept { return static_cast<std::uint8_t>(uint(1)); }
  std::uint16_t u16() noexcept { return static_cast<std::uint16_t>(uint(2)); }
  std::uint32_t u32() noexcept { return static_cast<std::uint32_t>(uint(4)); }
  std::uint64_t u64() noexcept { return uint(8); }
  std::int64_t i64() noexcept { return static_cast<std::int64_t>(uint(8)); }
  std::string_view str() noexcept {
    std::uint32_t n = u32();
    if (!ok_ || remaining() < n) {
      bad();
      return {};
    }
    std::string_view s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  // A count of items each at least min_item_size bytes: rejects counts the input cannot
  // hold, so a forged count never drives a huge allocation.
  std::uint32_t count(std::size_t min_item_size) noexcept {
    std::uint32_t n = u32();
    if (ok_ && min_item_size > 0 && n > remaining() / min_item_size) bad();
    return ok_ ? n : 0;
  }

 private:
  std::uint64_t bad() noexcept {
    ok_ = false;
    return 0;
  }
  std::string_view in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace salvo::spool::wire
