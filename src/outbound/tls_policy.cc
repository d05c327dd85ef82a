// SPDX-License-Identifier: Apache-2.0
// TLS policy per connection (see tls_policy.h).
#include "outbound/tls_policy.h"

namespace salvo::outbound {

std::string_view to_string(TlsOutcome o) noexcept {
  switch (o) {
    case TlsOutcome::None: return "none";
    case TlsOutcome::Opportunistic: return "opportunistic";
    case TlsOutcome::Verified: return "verified";
    case TlsOutcome::MtaSts: return "mta-sts";
    case TlsOutcome::Dane: return "dane";
    case TlsOutcome::Failed: return "failed";
    case TlsOutcome::TestingFailed: return "mta-sts-testing-failed";
  }
  return "none";
}

TlsDemand configured_demand(const config::Config& c, const config::Shaping& sh) {
  TlsDemand d;
  switch (sh.tls) {
    case config::TlsPolicy::Required: d.starttls = smtp::TlsPolicy::Required; break;
    case config::TlsPolicy::Off: d.starttls = smtp::TlsPolicy::Off; break;
    case config::TlsPolicy::Opportunistic: d.starttls = smtp::TlsPolicy::Opportunistic; break;
  }
  d.verify = sh.tls == config::TlsPolicy::Required &&
             sh.tls_verify.value_or(c.delivery.tls_verify);
  return d;
}

std::string tls_policy_text(TlsOutcome o, std::string_view failure) {
  if (o == TlsOutcome::Failed) return std::string(failure);
  if (o == TlsOutcome::TestingFailed) return "mta-sts-testing: " + std::string(failure);
  return std::string(to_string(o));
}

}  // namespace salvo::outbound
