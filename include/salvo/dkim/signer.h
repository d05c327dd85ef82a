// SPDX-License-Identifier: Apache-2.0
// DKIM signing (RFC 6376) with rsa-sha256 and ed25519-sha256 (RFC 8463), relaxed/relaxed.
//
// Contract: Signer::create parses and checks the key once; sign() is pure apart from the
// RSA blinding RNG (OpenSSL's, per thread): message bytes and the time come in, one header
// field goes out. sign() may run on several threads at once (shards share one Signer). The message
// is full RFC 5322 text with CRLF line ends; only CRLF ends a line (a bare CR or LF in the
// body is content, a bare LF in the header section is an error). No l= tag, no x=, no i=.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <salvo/base/result.h>
#include <salvo/dkim/errc.h>

namespace salvo::dkim {

enum class Algorithm : std::uint8_t { RsaSha256, Ed25519Sha256 };

std::string_view to_string(Algorithm a) noexcept;  // "rsa-sha256", "ed25519-sha256"

// The header fields signed when present (lower case, in h= order): the ones a receiver or a
// mailbox provider shows, threads or acts on.
std::vector<std::string> default_signed_headers();

// The relaxed body hash of `message` (its bh= value, base64): the same for every key and
// both algorithms, so one computation serves every signature of the same body.
[[nodiscard]] Result<std::string> body_hash(std::string_view message);

// Signatures already made, by exactly what they signed (the key and the SHA-256 of the
// signed header data, t= and bh= included): a field identical to one signed before is
// signed again for free — RSASSA-PKCS1-v1_5 and Ed25519 are deterministic. Bounded: the
// oldest entries go first. Owner: one thread (a shard).
class SignatureCache {
 public:
  explicit SignatureCache(std::size_t capacity = 4096) : capacity_(capacity) {}
  std::uint64_t hits() const noexcept { return hits_; }
  std::uint64_t misses() const noexcept { return misses_; }

 private:
  friend class Signer;
  using Key = std::array<std::uint8_t, 40>;  // signer id (8) + digest (32)
  struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept;
  };
  const std::string* find(const Key& k);
  void insert(const Key& k, std::string signature);

  std::size_t capacity_;
  std::unordered_map<Key, std::string, KeyHash> map_;
  std::deque<Key> order_;
  std::uint64_t hits_ = 0;
  std::uint64_t misses_ = 0;
};

// What a signature may reuse.
struct SignContext {
  std::string_view body_hash;       // from body_hash(message); empty: computed by sign()
  SignatureCache* cache = nullptr;  // signatures made before; null: always sign
};

struct SignerOptions {
  std::string domain;    // d=
  std::string selector;  // s=; the key is published at <selector>._domainkey.<domain>
  Algorithm algorithm = Algorithm::RsaSha256;
  std::string private_key_pem;  // PKCS#8 ("PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY")
  // Field names to sign, case-insensitive. Only those present in a message are signed, each
  // instance of a repeated field bottom-up (§5.4.2); From is always signed.
  std::vector<std::string> headers = default_signed_headers();
  // Lists From once more than it occurs, so a From added in transit breaks the signature.
  bool oversign_from = true;
};

// Signs messages for one (domain, selector, key). Immutable once made; sign() is
// thread-safe, so one Signer serves every shard. Movable.
class Signer {
 public:
  // Checks the options and parses the key; errors name the problem (errc).
  [[nodiscard]] static Result<Signer> create(SignerOptions options);

  Signer(Signer&&) noexcept;
  Signer& operator=(Signer&&) noexcept;
  ~Signer();

  // The complete "DKIM-Signature: ...\r\n" field to prepend to `message`, folded into lines
  // of at most 76 characters (longer only if d= or s= alone is longer). t= is unix_time
  // (seconds since the epoch; verifiers reject a t= in their future).
  // Fails with no_from_header, bare_lf or sign_failed.
  [[nodiscard]] Result<std::string> sign(std::string_view message, std::int64_t unix_time,
                                         const SignContext& context = {}) const;

  const std::string& domain() const noexcept;
  const std::string& selector() const noexcept;
  Algorithm algorithm() const noexcept;
  // The DNS name of the key record: "<selector>._domainkey.<domain>".
  std::string record_name() const;
  // The TXT record value to publish there: "v=DKIM1; k=rsa; p=<base64>" (k=ed25519 for
  // Ed25519 keys, p= the raw 32-byte key as RFC 8463 §4 says; SubjectPublicKeyInfo for RSA).
  // An RSA-2048 record is ~400 octets: a zone file splits it into strings of <= 255.
  const std::string& public_key_record() const noexcept;

 private:
  struct Impl;
  explicit Signer(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

// The DNS TXT value for the public half of a PEM private key (see public_key_record()).
[[nodiscard]] Result<std::string> public_key_record(std::string_view private_key_pem,
                                                    Algorithm algorithm);

}  // namespace salvo::dkim
