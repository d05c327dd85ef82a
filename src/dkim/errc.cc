// SPDX-License-Identifier: Apache-2.0
// The dkim error category.
#include <string>

#include <salvo/dkim/errc.h>

namespace salvo::dkim {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "dkim"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::bad_domain:
        return "DKIM domain (d=) is empty or not a domain name";
      case errc::bad_selector:
        return "DKIM selector (s=) is empty or not a domain label";
      case errc::bad_header_name:
        return "a signed header name is empty or not a field name";
      case errc::bad_pem:
        return "DKIM private key is not a PEM private key";
      case errc::encrypted_key:
        return "DKIM private key is encrypted (passphrases unsupported)";
      case errc::wrong_key_type:
        return "DKIM private key type does not match the algorithm";
      case errc::unsupported_key:
        return "DKIM private key is not an RSA or Ed25519 private key";
      case errc::rsa_key_too_small:
        return "DKIM RSA key is shorter than 1024 bits (RFC 8301)";
      case errc::algorithm_unavailable:
        return "DKIM algorithm not available in this wolfSSL";
      case errc::rng_failure:
        return "cannot seed the random number generator";
      case errc::no_from_header:
        return "message has no From header field";
      case errc::bare_lf:
        return "message header has a bare LF (CRLF line ends required)";
      case errc::sign_failed:
        return "DKIM signing failed in wolfCrypt";
    }
    return "unknown dkim error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const Category kCategory;
  return kCategory;
}

}  // namespace salvo::dkim
