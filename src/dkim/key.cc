// SPDX-License-Identifier: Apache-2.0
// PrivateKey over wolfCrypt: PEM to DER (wc_KeyPemToDer), DER to RsaKey or ed25519_key,
// the public key for the DNS record, and the two signature schemes DKIM uses.
#include "dkim/key.h"

#include <cstring>
#include <string.h>  // explicit_bzero
#include <vector>

#include "dkim/base64.h"

namespace salvo::dkim::detail {
namespace {

// Largest PEM we look at: an RSA-8192 PKCS#8 key is under 7 KiB.
constexpr std::size_t kMaxPem = 64 * 1024;

// DER SEQUENCE { SEQUENCE { OID sha256, NULL }, OCTET STRING (32) }: the prefix of the
// SHA-256 DigestInfo that EMSA-PKCS1-v1_5 signs (RFC 8017 §9.2, note 1).
constexpr unsigned char kSha256DigestInfo[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                               0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                               0x01, 0x05, 0x00, 0x04, 0x20};

void init_wolfcrypt() {
  // Once per process, thread-safe; wolfSSL_Init (net/) calls it too, and it counts.
  static const int rc = wolfCrypt_Init();
  (void)rc;
}

bool der_is_rsa(const unsigned char* der, word32 size) {
  RsaKey k;
  if (wc_InitRsaKey(&k, nullptr) != 0) return false;
  word32 idx = 0;
  const bool ok = wc_RsaPrivateKeyDecode(der, &idx, &k, size) == 0;
  wc_FreeRsaKey(&k);
  return ok;
}

bool der_is_ed25519([[maybe_unused]] const unsigned char* der, [[maybe_unused]] word32 size) {
#ifdef SALVO_DKIM_ED25519
  ed25519_key k;
  if (wc_ed25519_init(&k) != 0) return false;
  word32 idx = 0;
  const bool ok = wc_Ed25519PrivateKeyDecode(der, &idx, &k, size) == 0;
  wc_ed25519_free(&k);
  return ok;
#else
  return false;
#endif
}

}  // namespace

Result<std::unique_ptr<PrivateKey>> PrivateKey::load(std::string_view pem, Algorithm algorithm) {
  init_wolfcrypt();
  // "BEGIN ENCRYPTED PRIVATE KEY" (PKCS#8) or "Proc-Type: 4,ENCRYPTED" (legacy PEM).
  if (pem.find("ENCRYPTED") != std::string_view::npos) return fail(errc::encrypted_key);
  if (pem.size() > kMaxPem || pem.find("-----BEGIN ") == std::string_view::npos) {
    return fail(errc::bad_pem);
  }
  std::vector<unsigned char> der(pem.size());
  const int n = wc_KeyPemToDer(reinterpret_cast<const unsigned char*>(pem.data()),
                               static_cast<int>(pem.size()), der.data(),
                               static_cast<int>(der.size()), nullptr);
  std::unique_ptr<PrivateKey> key(new PrivateKey(algorithm));
  Status st = fail(errc::bad_pem);
  if (n > 0) {
    const auto size = static_cast<word32>(n);
    st = algorithm == Algorithm::RsaSha256 ? key->load_rsa(der.data(), size)
                                           : key->load_ed25519(der.data(), size);
  }
  explicit_bzero(der.data(), der.size());
  if (!st) return std::unexpected(st.error());
  return key;
}

PrivateKey::~PrivateKey() {
  if (rsa_ready_) wc_FreeRsaKey(&rsa_);
  if (rng_ready_) wc_FreeRng(&rng_);
#ifdef SALVO_DKIM_ED25519
  if (ed_ready_) wc_ed25519_free(&ed_);
#endif
}

Status PrivateKey::load_rsa(const unsigned char* der, word32 size) {
  if (wc_InitRsaKey(&rsa_, nullptr) != 0) return fail(errc::sign_failed);
  rsa_ready_ = true;
  word32 idx = 0;
  if (wc_RsaPrivateKeyDecode(der, &idx, &rsa_, size) != 0) {
    return fail(der_is_ed25519(der, size) ? errc::wrong_key_type : errc::unsupported_key);
  }
  const int bytes = wc_RsaEncryptSize(&rsa_);
  if (bytes < 1024 / 8) return fail(errc::rsa_key_too_small);
  sig_size_ = static_cast<std::size_t>(bytes);
  // RSA blinding (WC_RSA_BLINDING in Debian's build) draws from this RNG on every signature.
  if (wc_InitRng(&rng_) != 0) return fail(errc::rng_failure);
  rng_ready_ = true;
  unsigned char pub[2048];  // SubjectPublicKeyInfo of up to RSA-8192 is ~1.1 KiB
  const int pub_len = wc_RsaKeyToPublicDer(&rsa_, pub, sizeof pub);
  if (pub_len <= 0) return fail(errc::unsupported_key);
  record_ = "v=DKIM1; k=rsa; p=";
  base64_append({pub, static_cast<std::size_t>(pub_len)}, record_);
  return {};
}

Status PrivateKey::load_ed25519([[maybe_unused]] const unsigned char* der,
                                [[maybe_unused]] word32 size) {
#ifdef SALVO_DKIM_ED25519
  if (wc_ed25519_init(&ed_) != 0) return fail(errc::sign_failed);
  ed_ready_ = true;
  word32 idx = 0;
  if (wc_Ed25519PrivateKeyDecode(der, &idx, &ed_, size) != 0) {
    return fail(der_is_rsa(der, size) ? errc::wrong_key_type : errc::unsupported_key);
  }
  // PKCS#8 keys from OpenSSL carry no public key; wolfCrypt signs only with both halves.
  unsigned char priv[ED25519_KEY_SIZE];
  unsigned char pub[ED25519_PUB_KEY_SIZE];
  word32 priv_len = sizeof priv;
  int rc = wc_ed25519_export_private_only(&ed_, priv, &priv_len);
  if (rc == 0) rc = wc_ed25519_make_public(&ed_, pub, sizeof pub);
  if (rc == 0) rc = wc_ed25519_import_private_key(priv, priv_len, pub, sizeof pub, &ed_);
  explicit_bzero(priv, sizeof priv);
  if (rc != 0) return fail(errc::unsupported_key);
  sig_size_ = ED25519_SIG_SIZE;
  record_ = "v=DKIM1; k=ed25519; p=";
  base64_append({pub, sizeof pub}, record_);
  return {};
#else
  (void)der_is_rsa;
  return fail(errc::algorithm_unavailable);
#endif
}

Status PrivateKey::sign_digest(const Sha256Digest& digest, std::string& out_base64) {
  unsigned char sig[RSA_MAX_SIZE / 8 > 64 ? RSA_MAX_SIZE / 8 : 64];
  std::size_t sig_len = 0;
  if (algorithm_ == Algorithm::RsaSha256) {
    if (sig_size_ > sizeof sig) return fail(errc::sign_failed);
    unsigned char info[sizeof kSha256DigestInfo + WC_SHA256_DIGEST_SIZE];
    std::memcpy(info, kSha256DigestInfo, sizeof kSha256DigestInfo);
    std::memcpy(info + sizeof kSha256DigestInfo, digest.data(), digest.size());
    const int rc =
        wc_RsaSSL_Sign(info, sizeof info, sig, static_cast<word32>(sizeof sig), &rsa_, &rng_);
    if (rc <= 0) return fail(errc::sign_failed);
    sig_len = static_cast<std::size_t>(rc);
  } else {
#ifdef SALVO_DKIM_ED25519
    word32 len = sizeof sig;
    if (wc_ed25519_sign_msg(digest.data(), static_cast<word32>(digest.size()), sig, &len, &ed_) !=
        0) {
      return fail(errc::sign_failed);
    }
    sig_len = len;
#else
    return fail(errc::algorithm_unavailable);
#endif
  }
  base64_append({sig, sig_len}, out_base64);
  return {};
}

}  // namespace salvo::dkim::detail
