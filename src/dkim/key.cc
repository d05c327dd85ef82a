// SPDX-License-Identifier: Apache-2.0
// PrivateKey: PEM to DER (wolfCrypt's wc_KeyPemToDer, for both types), DER to an OpenSSL
// EVP_PKEY (RSA) or wolfCrypt ed25519_keys, the public key for the DNS record, and the two
// signature schemes DKIM uses.
#include "dkim/key.h"

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string.h>  // explicit_bzero
#include <thread>
#include <vector>

#include "dkim/base64.h"

namespace salvo::dkim::detail {
namespace {

// Largest PEM we look at: an RSA-8192 PKCS#8 key is under 7 KiB.
constexpr std::size_t kMaxPem = 64 * 1024;

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

// Copies of a key kept for concurrent signing: one per hardware thread.
std::size_t copies_per_key() {
  return std::clamp<std::size_t>(std::thread::hardware_concurrency(), 1, 64);
}

// This thread's copy index (taken on its first signature, then kept).
unsigned thread_slot() {
  static std::atomic<unsigned> next{0};
  thread_local const unsigned slot = next.fetch_add(1, std::memory_order_relaxed);
  return slot;
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
  EVP_PKEY_free(rsa_);
#ifdef SALVO_DKIM_ED25519
  for (auto& c : ed_) {
    if (c->ready) wc_ed25519_free(&c->key);
  }
#endif
}

Status PrivateKey::load_rsa(const unsigned char* der, word32 size) {
  const unsigned char* p = der;
  rsa_ = d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(size));
  if (rsa_ == nullptr) {
    return fail(der_is_ed25519(der, size) ? errc::wrong_key_type : errc::unsupported_key);
  }
  if (EVP_PKEY_get_base_id(rsa_) != EVP_PKEY_RSA) {
    return fail(EVP_PKEY_get_base_id(rsa_) == EVP_PKEY_ED25519 ? errc::wrong_key_type
                                                               : errc::unsupported_key);
  }
  if (EVP_PKEY_get_bits(rsa_) < 1024) return fail(errc::rsa_key_too_small);
  sig_size_ = static_cast<std::size_t>(EVP_PKEY_get_size(rsa_));
  for (std::size_t i = 0; i < copies_per_key(); ++i) {
    auto c = std::make_unique<RsaCopy>();
    c->key = EVP_PKEY_dup(rsa_);
    c->md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    c->ctx = c->key != nullptr ? EVP_PKEY_CTX_new(c->key, nullptr) : nullptr;
    const bool ok = c->ctx != nullptr && c->md != nullptr && EVP_PKEY_sign_init(c->ctx) == 1 &&
                    EVP_PKEY_CTX_set_rsa_padding(c->ctx, RSA_PKCS1_PADDING) == 1 &&
                    EVP_PKEY_CTX_set_signature_md(c->ctx, c->md) == 1;
    if (!ok) return fail(errc::unsupported_key);
    rsa_copies_.push_back(std::move(c));
  }
  // SubjectPublicKeyInfo, as the p= of k=rsa records carries it.
  unsigned char* pub = nullptr;
  const int pub_len = i2d_PUBKEY(rsa_, &pub);
  if (pub_len <= 0) return fail(errc::unsupported_key);
  record_ = "v=DKIM1; k=rsa; p=";
  base64_append({pub, static_cast<std::size_t>(pub_len)}, record_);
  OPENSSL_free(pub);
  return {};
}

Status PrivateKey::load_ed25519([[maybe_unused]] const unsigned char* der,
                                [[maybe_unused]] word32 size) {
#ifdef SALVO_DKIM_ED25519
  ed25519_key first;
  if (wc_ed25519_init(&first) != 0) return fail(errc::sign_failed);
  word32 idx = 0;
  if (wc_Ed25519PrivateKeyDecode(der, &idx, &first, size) != 0) {
    wc_ed25519_free(&first);
    return fail(der_is_rsa(der, size) ? errc::wrong_key_type : errc::unsupported_key);
  }
  // PKCS#8 keys from OpenSSL carry no public key; wolfCrypt signs only with both halves.
  unsigned char priv[ED25519_KEY_SIZE];
  unsigned char pub[ED25519_PUB_KEY_SIZE];
  word32 priv_len = sizeof priv;
  int rc = wc_ed25519_export_private_only(&first, priv, &priv_len);
  if (rc == 0) rc = wc_ed25519_make_public(&first, pub, sizeof pub);
  wc_ed25519_free(&first);
  // One copy per hardware thread: wolfCrypt keeps per-key state while signing.
  for (std::size_t i = 0; rc == 0 && i < copies_per_key(); ++i) {
    auto c = std::make_unique<EdCopy>();
    rc = wc_ed25519_init(&c->key);
    if (rc != 0) break;
    c->ready = true;
    rc = wc_ed25519_import_private_key(priv, priv_len, pub, sizeof pub, &c->key);
    ed_.push_back(std::move(c));
  }
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

PrivateKey::RsaCopy::~RsaCopy() {
  EVP_PKEY_CTX_free(ctx);
  EVP_PKEY_free(key);
  EVP_MD_free(md);
}

Status PrivateKey::sign_rsa(const Sha256Digest& digest, unsigned char* sig,
                            std::size_t* len) const {
  // Each thread keeps to one copy (its prepared context is reused): the mutex is only ever
  // contended when there are more signing threads than copies.
  RsaCopy& c = *rsa_copies_[thread_slot() % rsa_copies_.size()];
  std::lock_guard lock(c.mu);
  const bool ok = EVP_PKEY_sign(c.ctx, sig, len, digest.data(), digest.size()) == 1;
  return ok ? Status{} : fail(errc::sign_failed);
}

Status PrivateKey::sign_ed25519([[maybe_unused]] const Sha256Digest& digest,
                                [[maybe_unused]] unsigned char* sig,
                                [[maybe_unused]] std::size_t* len) const {
#ifdef SALVO_DKIM_ED25519
  // Each thread keeps to one copy: the mutex is only ever contended when there are more
  // signing threads than copies.
  EdCopy& c = *ed_[thread_slot() % ed_.size()];
  std::lock_guard lock(c.mu);
  word32 n = static_cast<word32>(*len);
  if (wc_ed25519_sign_msg(digest.data(), static_cast<word32>(digest.size()), sig, &n, &c.key) !=
      0) {
    return fail(errc::sign_failed);
  }
  *len = n;
  return {};
#else
  return fail(errc::algorithm_unavailable);
#endif
}

Status PrivateKey::sign_digest(const Sha256Digest& digest, std::string& out_base64) const {
  unsigned char sig[1024];  // RSA-8192 signatures are 1 KiB; Ed25519's 64 bytes
  if (sig_size_ > sizeof sig) return fail(errc::sign_failed);
  std::size_t sig_len = sizeof sig;
  const Status st = algorithm_ == Algorithm::RsaSha256 ? sign_rsa(digest, sig, &sig_len)
                                                       : sign_ed25519(digest, sig, &sig_len);
  if (!st) return st;
  base64_append({sig, sig_len}, out_base64);
  return {};
}

}  // namespace salvo::dkim::detail
