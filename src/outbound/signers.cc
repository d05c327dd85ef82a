// SPDX-License-Identifier: Apache-2.0
// Signers: the configuration's DKIM keys, and signing with every key of a From: domain.
#include <salvo/outbound/signers.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "outbound/types.h"

namespace salvo::outbound {

Result<std::shared_ptr<const Signers>> Signers::load(const config::Config& c, std::string* why) {
  std::vector<dkim::Signer> signers;
  for (const auto& k : c.dkim) {
    std::ifstream in(k.key_file);
    if (!in) {
      *why = "dkim " + k.domain + ": key_file " + k.key_file + ": cannot be read";
      return fail(std::errc::no_such_file_or_directory);
    }
    std::stringstream pem;
    pem << in.rdbuf();
    dkim::SignerOptions so;
    so.domain = k.domain;
    so.selector = k.selector;
    so.algorithm = k.algorithm == config::DkimAlgorithm::Ed25519Sha256
                       ? dkim::Algorithm::Ed25519Sha256
                       : dkim::Algorithm::RsaSha256;
    so.private_key_pem = pem.str();
    if (!k.headers.empty()) so.headers = k.headers;
    auto s = dkim::Signer::create(std::move(so));
    if (!s) {
      *why = "dkim " + k.domain + ": key_file " + k.key_file + ": " + s.error().message();
      return std::unexpected(s.error());
    }
    signers.push_back(std::move(*s));
  }
  return std::make_shared<const Signers>(std::move(signers));
}

std::vector<const dkim::Signer*> Signers::for_domain(std::string_view from_domain) const {
  std::vector<const dkim::Signer*> out;
  if (from_domain.empty()) return out;
  for (const auto& s : signers_) {
    if (s.domain() == from_domain) out.push_back(&s);
  }
  return out;
}

bool Signers::signs(std::string_view message) const {
  if (signers_.empty()) return false;
  const std::string domain = from_domain(message);
  if (domain.empty()) return false;
  return std::any_of(signers_.begin(), signers_.end(),
                     [&](const dkim::Signer& s) { return s.domain() == domain; });
}

const std::string* SigningCache::body_hash(std::uint64_t body) {
  auto it = bodies_.find(body);
  return it == bodies_.end() ? nullptr : &it->second;
}

void SigningCache::remember(std::uint64_t body, std::string hash) {
  if (!bodies_.emplace(body, std::move(hash)).second) return;
  order_.push_back(body);
  while (order_.size() > capacity_) {
    bodies_.erase(order_.front());
    order_.pop_front();
  }
}

Result<std::string> Signers::sign(std::string_view message, std::int64_t unix_time,
                                  SigningCache& cache, std::uint64_t body) const {
  std::string fields;
  const auto signers = for_domain(from_domain(message));
  if (signers.empty()) return fields;
  // One body hash for every key (it does not depend on the key or the algorithm), and for
  // every transaction of the same body.
  std::string computed;
  const std::string* bh = body != 0 ? cache.body_hash(body) : nullptr;
  if (bh != nullptr) {
    ++cache.body_hashes_reused;
  } else {
    auto h = dkim::body_hash(message);
    if (!h) return std::unexpected(h.error());
    ++cache.body_hashes_computed;
    computed = std::move(*h);
    if (body != 0) cache.remember(body, computed);
    bh = &computed;
  }
  const dkim::SignContext context{*bh, &cache.signatures};
  for (const dkim::Signer* s : signers) {
    auto sig = s->sign(message, unix_time, context);
    if (!sig) return std::unexpected(sig.error());
    fields += *sig;
  }
  return fields;
}

Result<std::string> Signers::sign(std::string_view message, std::int64_t unix_time) const {
  std::string fields;
  if (signers_.empty()) return fields;
  // Each signature covers the message as queued (none lists DKIM-Signature in h=), so
  // their order does not matter to verifiers.
  for (const dkim::Signer* s : for_domain(from_domain(message))) {
    auto sig = s->sign(message, unix_time);
    if (!sig) return std::unexpected(sig.error());
    fields += *sig;
  }
  return fields;
}

}  // namespace salvo::outbound
