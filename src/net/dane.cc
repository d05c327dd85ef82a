// SPDX-License-Identifier: Apache-2.0
// DANE matching over wolfSSL: SPKI extraction, SHA-256/512 digests, and DANE-TA chain
// verification with a throw-away certificate manager holding only the matched anchor.
#include <salvo/net/dane.h>

#include <memory>
#include <string>
#include <vector>

#include "net/wolf.h"

namespace salvo::net {
namespace {

constexpr std::uint8_t kSelectorCert = 0;
constexpr std::uint8_t kSelectorSpki = 1;
constexpr std::uint8_t kMatchExact = 0;
constexpr std::uint8_t kMatchSha256 = 1;
constexpr std::uint8_t kMatchSha512 = 2;

struct X509Deleter {
  void operator()(WOLFSSL_X509* x) const noexcept { wolfSSL_X509_free(x); }
};
struct PkeyDeleter {
  void operator()(WOLFSSL_EVP_PKEY* k) const noexcept { wolfSSL_EVP_PKEY_free(k); }
};
struct CmDeleter {
  void operator()(WOLFSSL_CERT_MANAGER* m) const noexcept { wolfSSL_CertManagerFree(m); }
};
using X509Ptr = std::unique_ptr<WOLFSSL_X509, X509Deleter>;

const unsigned char* bytes(std::string_view s) noexcept {
  return reinterpret_cast<const unsigned char*>(s.data());
}

X509Ptr decode(std::string_view der) {
  if (der.empty() || der.size() > 1 << 20) return nullptr;
  return X509Ptr(wolfSSL_X509_load_certificate_buffer(bytes(der), static_cast<int>(der.size()),
                                                      WOLFSSL_FILETYPE_ASN1));
}

// The DER SubjectPublicKeyInfo of a certificate; "" when it cannot be had.
std::string spki_of(std::string_view der) {
  X509Ptr x = decode(der);
  if (!x) return {};
  std::unique_ptr<WOLFSSL_EVP_PKEY, PkeyDeleter> key(wolfSSL_X509_get_pubkey(x.get()));
  if (!key) return {};
  unsigned char* out = nullptr;
  const int n = wolfSSL_i2d_PUBKEY(key.get(), &out);
  if (n <= 0 || out == nullptr) return {};
  std::string spki(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
  XFREE(out, nullptr, DYNAMIC_TYPE_OPENSSL);
  return spki;
}

std::string digest(std::string_view data, std::uint8_t matching_type) {
  if (matching_type == kMatchExact) return std::string(data);
  if (data.size() > 0xffffffffu) return {};
  const auto len = static_cast<word32>(data.size());
  if (matching_type == kMatchSha256) {
    std::string out(WC_SHA256_DIGEST_SIZE, '\0');
    if (wc_Sha256Hash(bytes(data), len, reinterpret_cast<byte*>(out.data())) != 0) return {};
    return out;
  }
  if (matching_type == kMatchSha512) {
    std::string out(WC_SHA512_DIGEST_SIZE, '\0');
    if (wc_Sha512Hash(bytes(data), len, reinterpret_cast<byte*>(out.data())) != 0) return {};
    return out;
  }
  return {};
}

bool matches(const Tlsa& r, std::string_view der) {
  const std::string a = tlsa_association(der, r.selector, r.matching_type);
  return !a.empty() && a == r.data;
}

// RFC 7672 §3.2.2 / RFC 6125: the leaf names the MX host (SAN dNSName, wildcards allowed in
// the left-most label; the CN only when there is no SAN, as wolfSSL does).
bool names_host(std::string_view leaf, std::string_view host) {
  X509Ptr x = decode(leaf);
  if (!x || host.empty()) return false;
  const std::string h(host);
  return wolfSSL_X509_check_host(x.get(), h.c_str(), h.size(), 0, nullptr) == WOLFSSL_SUCCESS;
}

// The leaf verifies up to chain[anchor] through chain[anchor-1] ... chain[1]: each is
// checked against the certificates above it (signature, validity) before it may sign.
bool chains_to(std::span<const std::string> chain, std::size_t anchor) {
  std::unique_ptr<WOLFSSL_CERT_MANAGER, CmDeleter> cm(wolfSSL_CertManagerNew());
  if (!cm) return false;
  const std::string& ta = chain[anchor];
  if (wolfSSL_CertManagerLoadCABuffer(cm.get(), bytes(ta), static_cast<long>(ta.size()),
                                      WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS) {
    return false;
  }
  for (std::size_t i = anchor; i-- > 0;) {
    const std::string& c = chain[i];
    if (wolfSSL_CertManagerVerifyBuffer(cm.get(), bytes(c), static_cast<long>(c.size()),
                                        WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS) {
      return false;
    }
    if (i == 0) return true;
    if (wolfSSL_CertManagerLoadCABuffer(cm.get(), bytes(c), static_cast<long>(c.size()),
                                        WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS) {
      return false;
    }
  }
  return false;  // anchor 0: a leaf is not its own trust anchor here
}

}  // namespace

bool tlsa_usable(const Tlsa& r) noexcept {
  if (r.usage != kDaneTa && r.usage != kDaneEe) return false;
  if (r.selector != kSelectorCert && r.selector != kSelectorSpki) return false;
  switch (r.matching_type) {
    case kMatchExact:
      return !r.data.empty();
    case kMatchSha256:
      return r.data.size() == WC_SHA256_DIGEST_SIZE;
    case kMatchSha512:
      return r.data.size() == WC_SHA512_DIGEST_SIZE;
    default:
      return false;
  }
}

std::string tlsa_association(std::string_view der, std::uint8_t selector,
                             std::uint8_t matching_type) {
  if (selector == kSelectorCert) {
    if (!decode(der)) return {};
    return digest(der, matching_type);
  }
  if (selector == kSelectorSpki) {
    const std::string spki = spki_of(der);
    if (spki.empty()) return {};
    return digest(spki, matching_type);
  }
  return {};
}

DaneMatch dane_match(std::span<const Tlsa> records, std::span<const std::string> chain,
                     std::string_view host) {
  if (chain.empty()) return {false, "the server sent no certificate"};
  bool any_ta = false;
  bool ta_found = false;
  for (const Tlsa& r : records) {
    if (!tlsa_usable(r)) continue;
    if (r.usage == kDaneEe) {
      if (matches(r, chain[0])) return {true, "DANE-EE"};
      continue;
    }
    any_ta = true;
    for (std::size_t i = 1; i < chain.size(); ++i) {
      if (!matches(r, chain[i])) continue;
      ta_found = true;
      if (chains_to(chain, i) && names_host(chain[0], host)) return {true, "DANE-TA"};
    }
  }
  if (ta_found) {
    return {false, "the chain holds the DANE-TA trust anchor, but does not verify up to it "
                   "or does not name " + std::string(host)};
  }
  return {false, any_ta ? "no certificate of the chain matches a TLSA record"
                        : "the certificate does not match a TLSA record"};
}

}  // namespace salvo::net
