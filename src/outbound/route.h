// SPDX-License-Identifier: Apache-2.0
// Route: where one destination's mail goes — its hosts in preference order (from the MX
// cache, or the [routes] hops in their order), per-host memory (down until, STARTTLS
// failed until), rotation among the best usable hosts, the MX rollup a domain belongs to,
// and the local failure that holds while no host is known. Pure: answers and time are
// passed in; the Destination asks the resolver and applies what this decides. An address
// that is one of this node's own listeners is never a host: connecting there would loop
// (a destination with only such addresses fails 554 5.4.4).
//
// Owner: the destination's shard.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <salvo/base/clock.h>
#include <salvo/config/config.h>
#include <salvo/dns/mx_cache.h>
#include <salvo/outbound/own_listeners.h>

#include "outbound/types.h"

namespace salvo::outbound {

class Route {
 public:
  enum class State : std::uint8_t { None, Resolving, Ok, Failed };

  // `key`: the destination's name (a domain, or "mx:<suffix>" for a rollup). `own`: this
  // node's listeners, to be kept out of the hosts (it outlives the route); null: none.
  explicit Route(std::string key, const OwnListeners* own = nullptr);

  bool is_rollup() const noexcept { return rollup_; }
  State state() const noexcept { return state_; }
  // A lookup is due: never resolved, or the answer's time is up.
  bool stale(TimePoint now) const noexcept;
  // Forget what was resolved (after a reload: routes and rollups may have changed).
  void reset() noexcept;

  // The name whose MX is looked up: the domain; for a rollup, the first domain it was
  // given (the latest after a failed lookup).
  const std::string& lookup_name() const noexcept;
  // A rollup was given mail of `domain`.
  void note_domain(std::string_view domain);

  // [routes] hops of this domain, tried in their order: IP literals are used as they are;
  // returns the indexes of hops given by name, each to be resolved (resolve_hop) before
  // the route is Ok (none: Ok at once).
  std::vector<std::size_t> apply_routes(const std::vector<config::HostPort>& hops,
                                        TimePoint now);
  // The addresses of one named [routes] hop (its A/AAAA, from an MX-cache answer of the
  // host name: its implicit MX). The route is Ok once every hop answered.
  void resolve_hop(std::size_t hop, const dns::MxResult& answer, TimePoint now);
  void begin_lookup() noexcept { state_ = State::Resolving; }
  // An MX answer. `config` decides the rollup; `smtp_port` is the port used.
  // Returns true when the domain just joined a rollup (its own pool should wind down).
  bool apply_mx(const dns::MxResult& answer, const config::Config& config, TimePoint now);

  // The most preferred usable host, rotating among equal preferences (RFC 5321 §5.1);
  // null when every host is down.
  const Host* pick(TimePoint now) noexcept;
  // The host failed before a session was ready: not used again until `until`.
  void mark_down(const net::SocketAddress& a, TimePoint until) noexcept;
  // Opportunistic STARTTLS with that host failed: plaintext until `until`; or the host
  // refused plaintext after all: STARTTLS again.
  void tls_failed(const net::SocketAddress& a, TimePoint until) noexcept;
  void tls_needed(const net::SocketAddress& a) noexcept;

  const std::vector<Host>& hosts() const noexcept { return hosts_; }
  // Failed: why (the local failure every ready recipient gets).
  const std::optional<LocalFailure>& failure() const noexcept { return failure_; }
  // Non-empty: this domain's mail goes to that rollup destination.
  const std::string& rollup_key() const noexcept { return rollup_key_; }

 private:
  void fail(smtp::Reply reply, queue::Stage stage, TimePoint expires);
  // Takes the addresses that are this node's own listeners out of `hosts`; true when there
  // were any.
  bool drop_own(std::vector<Host>& hosts) const;
  void fail_loop(TimePoint expires);
  std::vector<Host> hosts_from(const dns::MxResult& a, std::uint16_t port) const;
  void choose_rollup(const config::Config& config);

  std::string key_;
  const OwnListeners* own_;
  bool rollup_ = false;
  State state_ = State::None;
  TimePoint expires_{};
  std::vector<Host> hosts_;
  std::size_t next_host_ = 0;
  std::optional<LocalFailure> failure_;
  std::string rollup_key_;      // domain routes: the rollup to forward to, or ""
  std::string resolve_domain_;  // rollups: the domain whose MX is used
  std::string latest_domain_;   // rollups: the domain most recently given
  // [routes] with host names: each hop's addresses as they resolve, in hop order.
  std::vector<config::HostPort> hops_;
  std::vector<std::vector<Host>> hop_hosts_;
  std::vector<bool> hop_answered_;
  std::string hop_failure_;  // the last hop that did not resolve, and why
};

}  // namespace salvo::outbound
