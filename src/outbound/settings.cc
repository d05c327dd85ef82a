// SPDX-License-Identifier: Apache-2.0
// DeliverySettings::build (see settings.h).
#include <salvo/outbound/settings.h>

#include <stdexcept>

namespace salvo::outbound {

std::expected<SettingsPtr, std::string> DeliverySettings::build(config::ConfigPtr config) {
  auto s = std::make_shared<DeliverySettings>();
  const config::Config& c = *config;
  std::vector<queue::BounceRuleSpec> rules;
  for (const auto& r : c.delivery.bounce_rules) rules.push_back({r.pattern, r.category});
  auto classifier = queue::Classifier::create(rules);
  if (!classifier) {
    return std::unexpected(std::string("delivery.bounce_rules: a pattern does not compile"));
  }
  s->classifier = std::make_shared<const queue::Classifier>(std::move(*classifier));
  std::string why;
  auto signers = Signers::load(c, &why);
  if (!signers) return std::unexpected(why);
  s->signers = std::move(*signers);
  try {
    net::TlsContextOptions to;
    to.role = net::TlsRole::Client;
    s->tls = std::make_shared<const net::TlsContext>(to);
    // Always: tls = "required" verifies by default, and an MTA-STS policy may ask any
    // destination for it. A CA bundle that does not load refuses the configuration.
    to.verify = net::TlsVerify::Peer;
    to.ca_file = c.tls.ca_bundle;
    s->tls_verified = std::make_shared<const net::TlsContext>(to);
  } catch (const std::exception& e) {
    return std::unexpected(std::string("delivery TLS: ") + e.what());
  }
  s->config = std::move(config);
  return s;
}

}  // namespace salvo::outbound
