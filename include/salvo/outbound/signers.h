// SPDX-License-Identifier: Apache-2.0
// Signers: the DKIM keys of one configuration, loaded once off the shard loops (at start-up
// and by a reload) and shared read-only by every shard. A From: domain with several
// [[dkim]] entries (an RSA and an Ed25519 selector, as receivers recommend) is signed with
// each of them.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <string_view>
#include <vector>

#include <salvo/base/result.h>
#include <salvo/config/config.h>
#include <salvo/dkim/signer.h>

namespace salvo::outbound {

// What one shard remembers of the signing it did, so the same work is not done twice: the
// body hash of a body already hashed (a message to many recipients, a job whose body has no
// per-recipient variables) and signatures over exactly the same header data (see
// dkim::SignatureCache). Owner: one shard.
class SigningCache {
 public:
  explicit SigningCache(std::size_t capacity = 4096) : signatures(capacity), capacity_(capacity) {}

  // The body hash remembered for `body`, or null.
  const std::string* body_hash(std::uint64_t body);
  void remember(std::uint64_t body, std::string hash);

  dkim::SignatureCache signatures;
  std::uint64_t body_hashes_computed = 0;
  std::uint64_t body_hashes_reused = 0;

 private:
  std::size_t capacity_;
  std::unordered_map<std::uint64_t, std::string> bodies_;
  std::deque<std::uint64_t> order_;
};

class Signers {
 public:
  Signers() = default;
  explicit Signers(std::vector<dkim::Signer> signers) : signers_(std::move(signers)) {}

  // Reads and parses every [[dkim]] key_file of `config` (blocking file IO: call it before
  // the shards run or from a control thread). why: one line naming the entry that failed.
  [[nodiscard]] static Result<std::shared_ptr<const Signers>> load(const config::Config& config,
                                                                  std::string* why);

  // The signers for mail whose From: domain is `from_domain`, in configuration order.
  std::vector<const dkim::Signer*> for_domain(std::string_view from_domain) const;
  // Whether `message` is signed at all (a key for its From: domain).
  bool signs(std::string_view message) const;
  // The DKIM-Signature fields of every key for the From: domain of `message`, in
  // configuration order, to prepend to it ("" when no key applies).
  [[nodiscard]] Result<std::string> sign(std::string_view message, std::int64_t unix_time) const;
  // The same, reusing what `cache` remembers. `body` names the message's body (0: a body
  // of its own, not remembered): equal names promise equal bodies.
  [[nodiscard]] Result<std::string> sign(std::string_view message, std::int64_t unix_time,
                                         SigningCache& cache, std::uint64_t body) const;
  std::size_t size() const noexcept { return signers_.size(); }

 private:
  std::vector<dkim::Signer> signers_;
};

using SignersPtr = std::shared_ptr<const Signers>;

}  // namespace salvo::outbound
