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
