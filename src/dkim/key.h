// SPDX-License-Identifier: Apache-2.0
// PrivateKey: a DKIM signing key, parsed once from PEM. RSA keys are held and used by
// OpenSSL's libcrypto (about three times wolfCrypt's RSA rate on x86-64: see README);
// Ed25519 keys by wolfCrypt (twice OpenSSL's Ed25519 rate here). sign_digest() may be called
// from any number of threads at once. Both kinds are held once per hardware thread, each
// copy behind its own (uncontended) mutex: wolfCrypt's Ed25519 state is per key, and an
// OpenSSL key shared by two signing threads, with a context made per call, signs 23% slower
// than a copy per thread with its context prepared once (3,844 against 4,730 signatures/s
// on this 2-core box with two threads).
#pragma once

#include <openssl/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <salvo/base/result.h>
#include <salvo/dkim/signer.h>

#include "dkim/sha256_sink.h"
#include "dkim/wolf.h"

namespace salvo::dkim::detail {

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
  // 32 digest bytes (RFC 8463 §3). Thread-safe.
  [[nodiscard]] Status sign_digest(const Sha256Digest& digest, std::string& out_base64) const;

  // "v=DKIM1; k=rsa; p=..." / "v=DKIM1; k=ed25519; p=...".
  const std::string& public_key_record() const noexcept { return record_; }
  // Bytes of one signature before base64.
  std::size_t signature_size() const noexcept { return sig_size_; }

 private:
#ifdef SALVO_DKIM_ED25519
  struct EdCopy {
    std::mutex mu;
    ed25519_key key;
    bool ready = false;
  };
#endif

  struct RsaCopy {
    std::mutex mu;
    EVP_PKEY* key = nullptr;      // EVP_PKEY_dup of rsa_
    EVP_PKEY_CTX* ctx = nullptr;  // sign_init'ed: PKCS#1 v1.5, SHA-256
    EVP_MD* md = nullptr;
    ~RsaCopy();
  };

  explicit PrivateKey(Algorithm algorithm) noexcept : algorithm_(algorithm) {}
  [[nodiscard]] Status load_rsa(const unsigned char* der, word32 size);
  [[nodiscard]] Status load_ed25519(const unsigned char* der, word32 size);
  [[nodiscard]] Status sign_rsa(const Sha256Digest& digest, unsigned char* sig,
                                std::size_t* len) const;
  [[nodiscard]] Status sign_ed25519(const Sha256Digest& digest, unsigned char* sig,
                                    std::size_t* len) const;

  Algorithm algorithm_;
  EVP_PKEY* rsa_ = nullptr;  // OpenSSL; read-only once loaded
  std::vector<std::unique_ptr<RsaCopy>> rsa_copies_;
#ifdef SALVO_DKIM_ED25519
  std::vector<std::unique_ptr<EdCopy>> ed_;
#endif
  std::size_t sig_size_ = 0;
  std::string record_;
};

}  // namespace salvo::dkim::detail
