// SPDX-License-Identifier: Apache-2.0
// dkim::errc: why a Signer could not be made (bad options or key) or a message could not be
// signed. Each message names the problem in one line for the config loader.
#pragma once

#include <system_error>

namespace salvo::dkim {

enum class errc {
  bad_domain = 1,         // d= empty or not a domain name
  bad_selector,           // s= empty or not a sub-domain
  bad_header_name,        // a name in SignerOptions::headers is empty or not a field name
  bad_pem,                // the private key is not a PEM private key wolfCrypt can read
  encrypted_key,          // a passphrase-protected PEM key
  wrong_key_type,         // e.g. an Ed25519 key for rsa-sha256
  unsupported_key,        // PEM whose content is not an RSA or Ed25519 private key
  rsa_key_too_small,      // under 1024 bits (RFC 8301 §3.2)
  algorithm_unavailable,  // this wolfSSL build lacks the algorithm
  rng_failure,            // the RNG for RSA blinding could not be seeded
  no_from_header,         // the message has no From field (RFC 6376 §5.4)
  bare_lf,                // a header line ends in LF without CR
  sign_failed,            // wolfCrypt returned an error while hashing or signing
};

const std::error_category& error_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

}  // namespace salvo::dkim

template <>
struct std::is_error_code_enum<salvo::dkim::errc> : std::true_type {};
