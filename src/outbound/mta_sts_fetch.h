// SPDX-License-Identifier: Apache-2.0
// StsFetch: one HTTPS GET of an MTA-STS policy (RFC 8461 §3.3) over the shard's net::Stack:
// connect to one address of mta-sts.<domain>, TLS from the first byte with the verifying
// client context (chain against [tls] ca_bundle, name mta-sts.<domain>), "GET
// /.well-known/mta-sts.txt", the response read with http_parser. Bounded: one deadline for
// the whole exchange, a body of at most 64 KiB, and only a 200 with media type text/plain
// counts (redirects are failures, §3.3). Reports once, then deletes itself.
//
// Owner: the shard whose stack it runs on.
#pragma once

#include <expected>
#include <functional>
#include <memory>
#include <string>

#include <salvo/base/clock.h>
#include <salvo/net/socket_address.h>
#include <salvo/net/stack.h>
#include <salvo/outbound/settings.h>

namespace salvo::outbound {

struct StsFetchRequest {
  std::string host;               // "mta-sts.example.com": SNI, Host: and the name verified
  net::SocketAddress address;     // with the port ([delivery] mta_sts_port)
  SettingsPtr settings;           // held for its verifying TLS context
  Duration timeout{std::chrono::seconds(5)};  // the whole exchange
  const Clock* clock = nullptr;
};

// The body of a 200 text/plain response, or a one-line reason.
using StsFetchResult = std::expected<std::string, std::string>;
using StsFetchCallback = std::function<void(StsFetchResult)>;

// Starts the fetch; `done` is called exactly once, never from inside this call.
void start_sts_fetch(net::Stack& stack, StsFetchRequest request, StsFetchCallback done);

}  // namespace salvo::outbound
