// SPDX-License-Identifier: Apache-2.0
// TLS policy per connection: what [[shaping]] and [delivery] demand, and how outcomes and
// failures are named in the accounting line's tls_policy.
#include "outbound/tls_policy.h"

#include <gtest/gtest.h>

namespace salvo::outbound {
namespace {

TEST(TlsPolicyText, NamesOutcomesAndFailures) {
  EXPECT_EQ(tls_policy_text(TlsOutcome::None, ""), "none");
  EXPECT_EQ(tls_policy_text(TlsOutcome::Verified, ""), "verified");
  EXPECT_EQ(tls_policy_text(TlsOutcome::MtaSts, ""), "mta-sts");
  EXPECT_EQ(tls_policy_text(TlsOutcome::Dane, ""), "dane");
  EXPECT_EQ(tls_policy_text(TlsOutcome::Failed, "verify-failed: x"), "verify-failed: x");
  EXPECT_EQ(tls_policy_text(TlsOutcome::TestingFailed, "mx-mismatch: m"),
            "mta-sts-testing: mx-mismatch: m");
}

TEST(TlsPolicyDemand, RequiredVerifiesUnlessTurnedOff) {
  config::Config c;
  config::Shaping sh;
  sh.tls = config::TlsPolicy::Required;
  EXPECT_TRUE(configured_demand(c, sh).verify);
  c.delivery.tls_verify = false;
  EXPECT_FALSE(configured_demand(c, sh).verify);
  sh.tls_verify = true;  // the entry overrides [delivery]
  EXPECT_TRUE(configured_demand(c, sh).verify);
  c.delivery.tls_verify = true;
  sh.tls_verify = false;
  EXPECT_FALSE(configured_demand(c, sh).verify);
  sh.tls = config::TlsPolicy::Opportunistic;
  sh.tls_verify = true;
  EXPECT_FALSE(configured_demand(c, sh).verify) << "opportunistic never verifies";
  EXPECT_EQ(configured_demand(c, sh).starttls, smtp::TlsPolicy::Opportunistic);
}

}  // namespace
}  // namespace salvo::outbound
