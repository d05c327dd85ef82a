// SPDX-License-Identifier: Apache-2.0
// Route: hosts, MX answers, [routes] hops, per-host memory and MX rollup.
#include "outbound/route.h"

#include <algorithm>
#include <utility>

#include <salvo/base/log.h>

namespace salvo::outbound {
namespace {

constexpr auto kRollupRetry = std::chrono::seconds(5);
constexpr auto kRouteRetry = std::chrono::seconds(60);

}  // namespace

Route::Route(std::string key, const OwnListeners* own)
    : key_(std::move(key)), own_(own), rollup_(key_.starts_with(kRollupPrefix)) {}

bool Route::stale(TimePoint now) const noexcept {
  if (state_ == State::None) return true;
  return (state_ == State::Ok || state_ == State::Failed) && now >= expires_;
}

void Route::reset() noexcept {
  state_ = State::None;
  rollup_key_.clear();
}

const std::string& Route::lookup_name() const noexcept {
  return rollup_ ? resolve_domain_ : key_;
}

void Route::note_domain(std::string_view domain) {
  if (!rollup_) return;
  if (resolve_domain_.empty()) resolve_domain_ = std::string(domain);
  latest_domain_ = std::string(domain);
}

void Route::fail(smtp::Reply reply, queue::Stage stage, TimePoint expires) {
  LocalFailure f;
  f.stage = stage;
  f.reply = std::move(reply);
  failure_ = std::move(f);
  state_ = State::Failed;
  expires_ = expires;
}

bool Route::drop_own(std::vector<Host>& hosts) const {
  if (own_ == nullptr) return false;
  std::string dropped;
  std::erase_if(hosts, [&](const Host& h) {
    if (!own_->reached_by(h.address)) return false;
    dropped += (dropped.empty() ? "" : ", ") + h.name + " (" + h.address.to_string() + ")";
    return true;
  });
  if (dropped.empty()) return false;
  log::warn("outbound: {}: not connecting to {}: this node's own listener (a mail loop)", key_,
            dropped);
  return true;
}

void Route::fail_loop(TimePoint expires) {
  // Every next hop is this node: delivering would relay the mail back to itself at every
  // hop. A verdict about the destination (as Postfix's "loops back to myself"): it bounces.
  fail(smtp::Reply(554, {5, 4, 4}, "mail for " + key_ + " loops back to myself"),
       queue::Stage::Rcpt, expires);
  failure_->loop = true;
}

std::vector<std::size_t> Route::apply_routes(const std::vector<config::HostPort>& hops,
                                             TimePoint now) {
  hops_ = hops;
  hop_hosts_.assign(hops.size(), {});
  hop_answered_.assign(hops.size(), true);
  hop_failure_.clear();
  std::vector<std::size_t> names;
  for (std::size_t i = 0; i < hops.size(); ++i) {
    if (auto a = net::SocketAddress::parse(hops[i].host, hops[i].port)) {
      a->set_port(hops[i].port);
      hop_hosts_[i].push_back(Host{hops[i].host, *a, static_cast<std::uint16_t>(i), {}, {}});
    } else {
      hop_answered_[i] = false;
      names.push_back(i);
    }
  }
  // Literal routes never expire; named ones when their addresses' time is up.
  expires_ = TimePoint::max();
  state_ = State::Resolving;
  if (names.empty()) resolve_hop(hops.size(), dns::MxResult{}, now);  // nothing to wait for
  return names;
}

void Route::resolve_hop(std::size_t hop, const dns::MxResult& answer, TimePoint now) {
  if (hop < hops_.size()) {
    hop_answered_[hop] = true;
    expires_ = std::min(expires_, answer.expires);
    if (answer.status == dns::MxStatus::Ok) {
      for (const auto& h : answer.hosts) {
        for (auto a : h.addresses) {
          a.set_port(hops_[hop].port);
          // Hops are tried in their order: each its own preference.
          hop_hosts_[hop].push_back(Host{hops_[hop].host, a, static_cast<std::uint16_t>(hop), {}, {}});
        }
      }
    } else {
      hop_failure_ = "route " + hops_[hop].to_string() + ": " + answer.detail;
    }
  }
  if (std::find(hop_answered_.begin(), hop_answered_.end(), false) != hop_answered_.end()) return;
  std::vector<Host> hosts;
  for (const auto& v : hop_hosts_) hosts.insert(hosts.end(), v.begin(), v.end());
  // Only a loop when every hop answered: one that did not resolve may yet be another host.
  if (drop_own(hosts) && hosts.empty() && hop_failure_.empty()) {
    fail_loop(expires_);
    return;
  }
  if (hosts.empty()) {
    // A route whose targets do not resolve is the operator's to fix: defer, never bounce.
    fail(smtp::Reply(451, {4, 4, 3}, hop_failure_.empty() ? "route: no usable host" : hop_failure_),
         queue::Stage::Connect, std::min(expires_, now + kRouteRetry));
    return;
  }
  for (auto& h : hosts) {
    for (const auto& old : hosts_) {
      if (old.address == h.address) {
        h.down_until = old.down_until;
        h.tls_failed_until = old.tls_failed_until;
      }
    }
  }
  hosts_ = std::move(hosts);
  state_ = State::Ok;
}

std::vector<Host> Route::hosts_from(const dns::MxResult& a, std::uint16_t port) const {
  std::vector<Host> hosts;
  for (const auto& h : a.hosts) {
    for (const auto& addr : h.addresses) {
      Host host{h.name, addr, h.preference, {}, {}};
      host.address.set_port(port);
      host.authenticated = h.authenticated;
      // A host's down and TLS marks survive refreshes.
      for (const auto& old : hosts_) {
        if (old.address == host.address) {
          host.down_until = old.down_until;
          host.tls_failed_until = old.tls_failed_until;
        }
      }
      hosts.push_back(std::move(host));
    }
  }
  return hosts;
}

bool Route::apply_mx(const dns::MxResult& a, const config::Config& config, TimePoint now) {
  expires_ = a.expires;
  if (rollup_) {
    // A rollup stands for many domains: one domain's DNS trouble (or move away from the
    // provider) must not bounce or defer the others. Take the hosts only from an answer
    // that still matches the suffix; otherwise try the latest domain next time, soon.
    const std::string_view suffix = std::string_view(key_).substr(kRollupPrefix.size());
    const bool matches = a.status == dns::MxStatus::Ok && !a.hosts.empty() &&
                         a.hosts.front().name.ends_with(suffix);
    if (!matches) {
      if (!latest_domain_.empty()) resolve_domain_ = latest_domain_;
      if (!hosts_.empty()) {
        state_ = State::Ok;  // keep serving the hosts we had
        expires_ = now + kRollupRetry;
      } else {
        fail(smtp::Reply(451, {4, 4, 3}, "MX rollup " + key_ + ": no host yet (" + a.detail + ")"),
             queue::Stage::Connect, now + kRollupRetry);
      }
      return false;
    }
  } else if (a.status == dns::MxStatus::Temporary && state_ == State::Ok && !hosts_.empty()) {
    // A failed refresh: keep delivering to the hosts we know (serve stale) and ask again
    // when the failure's cache time is up.
    return false;
  }
  if (a.status != dns::MxStatus::Ok) {
    if (a.status == dns::MxStatus::Permanent) {
      // RFC 7505 null MX, NXDOMAIN, no address: the domain does not take mail. A verdict
      // about the recipient's domain: it bounces.
      fail(smtp::Reply(550, {5, 1, 2}, "bad destination domain: " + a.detail), queue::Stage::Rcpt,
           a.expires);
    } else {
      fail(smtp::Reply(451, {4, 4, 3}, "DNS lookup failed: " + a.detail), queue::Stage::Connect,
           a.expires);
    }
    return false;
  }
  std::vector<Host> hosts = hosts_from(a, config.delivery.smtp_port);
  if (drop_own(hosts) && hosts.empty()) {
    fail_loop(a.expires);
    return false;
  }
  hosts_ = std::move(hosts);
  if (hosts_.empty()) {
    fail(smtp::Reply(550, {5, 1, 2}, key_ + ": no usable MX host address"),
         queue::Stage::Connect, a.expires);
    return false;
  }
  state_ = State::Ok;
  if (rollup_) return false;
  const bool was_forwarding = !rollup_key_.empty();
  choose_rollup(config);
  return !rollup_key_.empty() && !was_forwarding;
}

void Route::choose_rollup(const config::Config& config) {
  // An mx_suffix entry applies when the most preferred MX matches it and the domain has no
  // entry of its own; the limit is then the rollup destination's, for every domain on it.
  rollup_key_.clear();
  if (config.find_shaping_for_domain(key_) != nullptr) return;
  if (const auto* s = config.find_shaping_for_mx(hosts_.front().name)) {
    rollup_key_ = std::string(kRollupPrefix) + s->mx_suffix;
  }
}

const Host* Route::pick(TimePoint now) noexcept {
  // The most preferred usable hosts, in turn (RFC 5321 §5.1: spread over equal preference).
  const Host* first = nullptr;
  std::size_t usable = 0;
  for (const Host& h : hosts_) {
    if (h.down_until > now) continue;
    if (first == nullptr) first = &h;
    if (h.preference != first->preference) break;
    ++usable;
  }
  if (first == nullptr) return nullptr;
  std::size_t k = next_host_++ % usable;
  for (const Host& h : hosts_) {
    if (h.down_until > now || h.preference != first->preference) continue;
    if (k-- == 0) return &h;
  }
  return first;
}

void Route::mark_down(const net::SocketAddress& a, TimePoint until) noexcept {
  for (Host& h : hosts_) {
    if (h.address == a) h.down_until = until;
  }
}

void Route::tls_failed(const net::SocketAddress& a, TimePoint until) noexcept {
  for (Host& h : hosts_) {
    if (h.address == a) h.tls_failed_until = until;
  }
}

void Route::tls_needed(const net::SocketAddress& a) noexcept {
  for (Host& h : hosts_) {
    if (h.address == a) h.tls_failed_until = {};
  }
}

}  // namespace salvo::outbound
