// SPDX-License-Identifier: Apache-2.0
// SignedZone: a DNSSEC-signed zone made at run time with ldnsutils (ldns-keygen, ldns-signzone,
// ECDSA P-256), for unbound to serve as an auth-zone and validate against the zone's DS as
// its trust anchor (UnboundOptions::signed_zones). Also the openssl CLI's TLSA association
// data for a PEM certificate, so DANE tests compute their records independently of salvo.
#pragma once

#include <string>
#include <vector>

#include "support/process.h"

namespace salvo::test {

class SignedZone {
 public:
  static constexpr const char* kKeygen = "/usr/bin/ldns-keygen";
  static constexpr const char* kSignzone = "/usr/bin/ldns-signzone";

  // `zone`: "signed.example." (with the final dot); `records`: zone-file lines with absolute
  // owner names. An SOA and an NS are added. Check ok() / error() (missing tools: error()
  // says so; tests skip).
  SignedZone(std::string zone, const std::vector<std::string>& records);

  bool ok() const noexcept { return error_.empty(); }
  const std::string& error() const noexcept { return error_; }
  const std::string& zone() const noexcept { return zone_; }
  const std::string& signed_file() const noexcept { return signed_file_; }
  const std::string& ds_file() const noexcept { return ds_file_; }  // the trust anchor

  // Changes the data of the signed record(s) of `owner` (absolute) and `type` ("TLSA") after
  // signing, so their signature no longer verifies: a validating resolver answers SERVFAIL
  // (bogus). False when no such record is in the signed file.
  bool break_signature(const std::string& owner, const std::string& type);

 private:
  bool run(const std::vector<std::string>& argv, std::string* out);

  TempDir dir_;
  std::string zone_;
  std::string signed_file_;
  std::string ds_file_;
  std::string error_;
};

// openssl's TLSA association data (RFC 6698 §2.1) for a PEM certificate: selector 0 (the
// certificate) or 1 (SPKI), digest "sha256", "sha512" or "" (exact), as binary. "" on failure.
std::string openssl_tlsa_data(const std::string& pem, int selector, const std::string& digest);
// Lower-case hex, for zone files.
std::string to_hex(const std::string& bytes);

}  // namespace salvo::test
