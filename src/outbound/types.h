// SPDX-License-Identifier: Apache-2.0
// Small value types shared by the destination side's parts (backlog, route, pool, slot,
// settle). Everything here is owned by one shard.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <salvo/base/clock.h>
#include <salvo/net/socket_address.h>
#include <salvo/queue/verdict.h>
#include <salvo/smtp/reply.h>
#include <salvo/spool/records.h>
#include <salvo/spool/template.h>

namespace salvo::outbound {

// Where one message's records are, for one transaction (a job: with the batch of its
// recipient). The backlog keeps a compact form per message and builds this (backlog.h).
struct MsgInfo {
  std::uint32_t origin = 0;
  bool is_job = false;
  spool::Location record;        // messages: the Message record
  spool::Location job_template;  // jobs
  std::map<std::uint32_t, spool::Location> batches;  // jobs: first index -> batch record
  std::int64_t received_unix_ns = 0;
  std::uint32_t refs = 0;  // recipients of this message queued or in flight here
};

// A reply decided here rather than by a server (DNS failure, no host reachable, expiry,
// operator cancel, unreadable record).
struct LocalFailure {
  queue::Stage stage = queue::Stage::Connect;
  smtp::Reply reply;
  std::string mx;  // the host the failure concerns, if any
  std::string tls_policy;  // a TLS policy failure of that host ("verify-failed: ..."), or ""
  bool loop = false;  // every next hop is this node's own listener (554 5.4.4)
};

// One address of one MX host (or [routes] hop), with what we learnt about it.
struct Host {
  std::string name;  // MX host name (or the route's target)
  net::SocketAddress address;
  std::uint16_t preference = 0;
  TimePoint down_until{};
  TimePoint tls_failed_until{};  // opportunistic STARTTLS failed: plaintext until then
  // The MX and address answers were DNSSEC-validated (dns::MxHost::authenticated); never
  // for [routes] hops. DANE looks up this host's TLSA records only then.
  bool authenticated = false;
};

// One recipient of a transaction, decoded from its spool record (views into the record).
struct RcptData {
  std::string_view address;
  std::uint8_t notify = 0;
  std::string_view orcpt;
  std::vector<spool::TemplateVar> vars;
};

inline std::int64_t to_ns(WallTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
inline WallTime from_ns(std::int64_t ns) {
  return WallTime(std::chrono::duration_cast<WallTime::duration>(std::chrono::nanoseconds(ns)));
}

// The "From:" domain of a message's header section (lower case), "" when none.
std::string from_domain(std::string_view message);

// "mx:<suffix>": the key of an MX rollup destination.
inline constexpr std::string_view kRollupPrefix = "mx:";

}  // namespace salvo::outbound
