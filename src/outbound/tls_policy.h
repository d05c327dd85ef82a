// SPDX-License-Identifier: Apache-2.0
// TLS policy per connection: what one connection to one MX host must do about TLS (the
// TlsDemand, decided by its Destination before connecting) and what came of it (the
// TlsOutcome, counted per session, and the accounting line's `tls_policy` text).
//
// Who decides, strongest first (RFC 8461 §2: a usable DANE TLSA record wins over MTA-STS):
//   DANE (TLSA through a validating resolver; applied by DeliveryConnection::session_config,
//   which holds the host's TLSA answer: docs/outbound-tls.md §5)
//   MTA-STS (the destination's policy in enforce or testing mode, see mta_sts.h)
//   [[shaping]] tls / tls_verify ([delivery] tls_verify when the entry does not say)
//
// Owner: values; no state.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <salvo/config/config.h>
#include <salvo/outbound/outbound.h>
#include <salvo/smtp/client_session.h>

namespace salvo::outbound {

// What made the certificate check necessary; it names a verified session's outcome.
enum class TlsAuthority : std::uint8_t { Config, MtaSts, Dane };

// One session's TLS, as counted (salvo_delivery_tls_policy_total{outcome=...}).
enum class TlsOutcome : std::uint8_t {
  None,           // plaintext
  Opportunistic,  // encrypted, certificate not checked
  Verified,       // chain and name checked: [[shaping]] tls = "required"
  MtaSts,         // chain and name checked because the MTA-STS policy enforces it
  Dane,           // authenticated by a TLSA record
  Failed,         // the policy could not be met: nothing sent over this session
  TestingFailed,  // an MTA-STS policy in testing mode was not met: sent all the same
};
static_assert(kTlsOutcomes == 7);  // outbound.h: OutboundStats::tls_outcomes
std::string_view to_string(TlsOutcome o) noexcept;  // "none", ..., "mta-sts-testing-failed"

struct TlsDemand {
  smtp::TlsPolicy starttls = smtp::TlsPolicy::Opportunistic;
  bool verify = false;  // chain against [tls] ca_bundle and the MX host name
  TlsAuthority authority = TlsAuthority::Config;
  // An MTA-STS policy in testing mode that this host does not meet (e.g. "mx-mismatch:
  // ..."): delivery goes ahead and the accounting line reports it. Empty: none.
  std::string testing_failure;
  bool sts_testing = false;  // an MTA-STS testing policy applies: plaintext is reported too
};

// The demand of [[shaping]] alone: tls, and tls_verify (else [delivery] tls_verify) when tls
// is "required".
TlsDemand configured_demand(const config::Config& c, const config::Shaping& sh);

// The accounting line's `tls_policy` of a session: the outcome's name, or for a failure the
// reason ("verify-failed: ...", "starttls-failed: ...", "mx-mismatch: ..."); an MTA-STS
// testing failure is "mta-sts-testing: <reason>".
std::string tls_policy_text(TlsOutcome o, std::string_view failure);

}  // namespace salvo::outbound
