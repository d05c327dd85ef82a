// SPDX-License-Identifier: Apache-2.0
// DANE for SMTP (RFC 7672, RFC 7671, RFC 6698): which TLSA records are usable, and whether a
// server's certificate chain matches them. Pure over DER certificates: the TLS session hands
// in the chain it received (TlsSession::peer_chain), the DNS side hands in the records.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace salvo::net {

// One TLSA record's fields (RFC 6698 §2.1); `data` is binary.
struct Tlsa {
  std::uint8_t usage = 0;          // 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE
  std::uint8_t selector = 0;       // 0 full certificate, 1 SubjectPublicKeyInfo
  std::uint8_t matching_type = 0;  // 0 exact, 1 SHA-256, 2 SHA-512
  std::string data;
  friend bool operator==(const Tlsa&, const Tlsa&) = default;
};

inline constexpr std::uint8_t kDaneTa = 2;
inline constexpr std::uint8_t kDaneEe = 3;

// RFC 7672 §3.1.3: PKIX-TA(0) and PKIX-EE(1) are unusable for SMTP; unknown selectors and
// matching types are unusable (RFC 6698 §4.1), and so is a digest of the wrong length
// (RFC 7671 §5.1 treats such data as not matching anything).
bool tlsa_usable(const Tlsa& record) noexcept;

struct DaneMatch {
  bool matched = false;
  // Matched: "DANE-EE" or "DANE-TA". Otherwise why nothing matched, one line.
  std::string detail;
};

// Checks a server chain (DER, leaf first, as the server sent it) against `records` (the
// unusable ones are skipped). DANE-EE(3): the leaf's certificate or SPKI matches; no name
// and no validity check (RFC 7672 §3.1.1). DANE-TA(2): a certificate the server sent after
// its leaf matches (RFC 7672 §3.1.2: the server must include the trust anchor), the leaf
// verifies up to it through the certificates between them (signatures and validity
// dates), and the leaf names `host` (RFC 7672 §3.2.2: the MX host name; wildcards as
// RFC 6125). A bare public key as TA that the server did not send is not supported.
// Bad input (undecodable certificates, an empty chain) never matches and never crashes.
DaneMatch dane_match(std::span<const Tlsa> records, std::span<const std::string> chain,
                     std::string_view host);

// The association data for a certificate: its DER or SPKI (selector), digested by the
// matching type; "" when the certificate does not decode or the fields are unknown.
std::string tlsa_association(std::string_view der_certificate, std::uint8_t selector,
                             std::uint8_t matching_type);

}  // namespace salvo::net
