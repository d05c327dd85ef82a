// SPDX-License-Identifier: Apache-2.0
// PrivateKey: a DKIM signing key held in wolfCrypt form, parsed once from PEM. Owned by the
// Signer that made it (and so by one shard); signing mutates wolfCrypt scratch state.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <salvo/base/result.h>
#include <salvo/dkim/signer.h>

#include "dkim/wolf.h"

namespace salvo::dkim::detail {

using Sha256Digest = std::array<std::uint8_t, WC_SHA256_DIGEST_SIZE>;

class PrivateKey {
 public:
  // Parses a PEM private key of the type `algorithm` needs (errc names what is wrong).
  [[nodiscard]] static Result<std::unique_ptr<PrivateKey>> load(std::string_view pem,
                                                                Algorithm algorithm);
  ~PrivateKey();
  PrivateKey(const PrivateKey&) = delete;
  PrivateKey& operator=(const PrivateKey&) = delete;

  // Signs the SHA-256 of the signed data and appends the signature in base64: RSASSA-
  // PKCS1-v1_5 over the SHA-256 DigestInfo (RFC 8017 §9.2), or PureEdDSA Ed25519 over the
  // 32 digest bytes (RFC 8463 §3).
  [[nodiscard]] Status sign_digest(const Sha256Digest& digest, std::string& out_base64);

  // "v=DKIM1; k=rsa; p=..." / "v=DKIM1; k=ed25519; p=...".
  const std::string& public_key_record() const noexcept { return record_; }
  // Bytes of one signature before base64.
  std::size_t signature_size() const noexcept { return sig_size_; }

 private:
  explicit PrivateKey(Algorithm algorithm) noexcept : algorithm_(algorithm) {}
  [[nodiscard]] Status load_rsa(const unsigned char* der, word32 size);
  [[nodiscard]] Status load_ed25519(const unsigned char* der, word32 size);

  Algorithm algorithm_;
  bool rsa_ready_ = false;
  bool rng_ready_ = false;
  RsaKey rsa_;
  WC_RNG rng_;
#ifdef SALVO_DKIM_ED25519
  bool ed_ready_ = false;
  ed25519_key ed_;
#endif
  std::size_t sig_size_ = 0;
  std::string record_;
};

}  // namespace salvo::dkim::detail
