// SPDX-License-Identifier: Apache-2.0
// Sha256Sink: the canonicalizers' Sink that hashes what they write (SHA-256 through a
// fixed 4 KiB buffer, so wolfCrypt sees large updates, never single bytes).
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "dkim/wolf.h"

namespace salvo::dkim::detail {

class Sha256Sink {
 public:
  Sha256Sink() noexcept { ok_ = wc_InitSha256(&sha_) == 0; }
  ~Sha256Sink() { wc_Sha256Free(&sha_); }
  Sha256Sink(const Sha256Sink&) = delete;
  Sha256Sink& operator=(const Sha256Sink&) = delete;

  void put(char c) noexcept {
    if (n_ == sizeof buf_) flush();
    buf_[n_++] = static_cast<unsigned char>(c);
  }
  void put(std::string_view s) noexcept {
    if (s.size() > sizeof buf_ - n_) {
      flush();
      if (s.size() >= sizeof buf_) {
        update(reinterpret_cast<const unsigned char*>(s.data()), s.size());
        return;
      }
    }
    std::memcpy(buf_ + n_, s.data(), s.size());
    n_ += s.size();
  }
  // The digest; false if wolfCrypt failed anywhere along the way.
  [[nodiscard]] bool finish(std::array<std::uint8_t, WC_SHA256_DIGEST_SIZE>& out) noexcept {
    flush();
    if (ok_) ok_ = wc_Sha256Final(&sha_, out.data()) == 0;
    return ok_;
  }

 private:
  void flush() noexcept {
    if (n_ > 0) update(buf_, n_);
    n_ = 0;
  }
  void update(const unsigned char* p, std::size_t n) noexcept {
    if (ok_) ok_ = wc_Sha256Update(&sha_, p, static_cast<word32>(n)) == 0;
  }

  wc_Sha256 sha_;
  bool ok_ = false;
  std::size_t n_ = 0;
  unsigned char buf_[4096];
};

}  // namespace salvo::dkim::detail
