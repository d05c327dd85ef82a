// SPDX-License-Identifier: Apache-2.0
// Pool: a destination's connections, their lingering places and egress rotation.
#include "outbound/pool.h"

#include <algorithm>

namespace salvo::outbound {

std::size_t Pool::held(TimePoint now) noexcept {
  while (!releasing_.empty() && releasing_.front() <= now) releasing_.pop_front();
  return conns_.size() + releasing_.size();
}

std::size_t Pool::capacity(std::size_t window) const noexcept {
  std::size_t n = 0;
  for (const Channel* c : conns_) {
    if (c->connecting()) {
      n += window;
    } else if (c->ready() && window > c->load()) {
      n += window - c->load();
    }
  }
  return n;
}

void Pool::remove(Channel* c, TimePoint now) {
  conns_.erase(std::remove(conns_.begin(), conns_.end(), c), conns_.end());
  releasing_.push_back(now + kLinger);
}

void Pool::quit_idle() noexcept {
  for (Channel* c : std::vector<Channel*>(conns_)) {
    if (c->ready() && c->load() == 0) c->quit();
  }
}

Origination Pool::next_origination(const config::Config& c, const config::Shaping& s,
                                   const std::string& hostname) {
  Origination o;
  o.helo = hostname;
  if (s.egress.empty()) return o;
  const auto* e = c.find_egress(s.egress);
  if (e == nullptr) return o;
  const auto& ip = e->addresses[egress_next_++ % e->addresses.size()];
  if (auto a = net::SocketAddress::parse(ip.to_string(), 0)) {
    o.source = *a;
    o.has_source = true;
  }
  if (!e->ehlo.empty()) o.helo = e->ehlo;
  return o;
}

}  // namespace salvo::outbound
