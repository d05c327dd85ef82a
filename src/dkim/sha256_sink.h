// SPDX-License-Identifier: Apache-2.0
// Sha256Sink: the canonicalizers' Sink that hashes what they write: SHA-256 by OpenSSL's
// libcrypto (its SHA-NI / AVX2 code hashes about five times faster than wolfCrypt's C on
// x86-64; it matters at 100 KiB), through a fixed 4 KiB buffer so it sees large updates,
// never single bytes. One per hash; safe on any thread.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace salvo::dkim::detail {

inline constexpr std::size_t kSha256Size = 32;
using Sha256Digest = std::array<std::uint8_t, kSha256Size>;

class Sha256Sink {
 public:
  Sha256Sink() noexcept : ctx_(EVP_MD_CTX_new()) {
    ok_ = ctx_ != nullptr && md() != nullptr && EVP_DigestInit_ex(ctx_, md(), nullptr) == 1;
  }
  ~Sha256Sink() { EVP_MD_CTX_free(ctx_); }
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
  // The digest; false if libcrypto failed anywhere along the way.
  [[nodiscard]] bool finish(Sha256Digest& out) noexcept {
    flush();
    unsigned int len = 0;
    if (ok_) ok_ = EVP_DigestFinal_ex(ctx_, out.data(), &len) == 1 && len == out.size();
    return ok_;
  }

 private:
  // Fetched once per process (an implicit fetch per hash costs a lookup each time).
  static const EVP_MD* md() noexcept {
    static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return sha256;
  }
  void flush() noexcept {
    if (n_ > 0) update(buf_, n_);
    n_ = 0;
  }
  void update(const unsigned char* p, std::size_t n) noexcept {
    if (ok_) ok_ = EVP_DigestUpdate(ctx_, p, n) == 1;
  }

  EVP_MD_CTX* ctx_;
  bool ok_ = false;
  std::size_t n_ = 0;
  unsigned char buf_[4096];
};

}  // namespace salvo::dkim::detail
