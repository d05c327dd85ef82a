// SPDX-License-Identifier: Apache-2.0
// DeliverySettings: one configuration and everything built from it that delivery uses —
// the reply classifier (bounce rules), the DKIM keys, the client TLS contexts. Built once
// per configuration (at start-up, and by each reload), off the shard loops, and shared
// read-only: every shard holds the one in force (and each open connection the one it
// started with), so an old configuration is freed once nothing uses it.
#pragma once

#include <expected>
#include <memory>
#include <string>

#include <salvo/config/config.h>
#include <salvo/net/tls.h>
#include <salvo/outbound/signers.h>
#include <salvo/queue/verdict.h>

namespace salvo::outbound {

struct DeliverySettings {
  config::ConfigPtr config;
  std::shared_ptr<const queue::Classifier> classifier;
  SignersPtr signers;
  std::shared_ptr<const net::TlsContext> tls;           // client, no verification
  // Verifies the chain against [tls] ca_bundle and the server's name: tls = "required" (unless
  // tls_verify = false), MTA-STS and DANE.
  std::shared_ptr<const net::TlsContext> tls_verified;

  // Compiles the bounce rules, reads the DKIM keys and the CA bundle (blocking file IO: call
  // it before the shards run or from a control thread). The error is one line naming what
  // failed.
  static std::expected<std::shared_ptr<const DeliverySettings>, std::string> build(
      config::ConfigPtr config);
};

using SettingsPtr = std::shared_ptr<const DeliverySettings>;

}  // namespace salvo::outbound
