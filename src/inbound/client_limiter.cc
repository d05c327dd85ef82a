// SPDX-License-Identifier: Apache-2.0
// ClientLimiter: striped, mutex-protected per-IP connection counts (node-wide).
#include <salvo/inbound/client_limiter.h>

#include <functional>

namespace salvo::inbound {

std::string client_key(const config::IpAddress& ip) {
  const auto& b = ip.bytes();
  std::size_t n = ip.family() == config::IpAddress::Family::V4 ? 4 : 8;
  std::string k(1, ip.family() == config::IpAddress::Family::V4 ? '4' : '6');
  k.append(reinterpret_cast<const char*>(b.data()), n);
  return k;
}

ClientLimiter::Stripe& ClientLimiter::stripe_for(const std::string& k) {
  return stripes_[std::hash<std::string>{}(k) % kStripes];
}

bool ClientLimiter::try_acquire(const config::IpAddress& ip) {
  if (limit_ == 0) return true;
  std::string k = client_key(ip);
  Stripe& s = stripe_for(k);
  std::lock_guard lock(s.mu);
  std::uint32_t& n = s.open[k];
  if (n >= limit_) return false;
  ++n;
  return true;
}

void ClientLimiter::release(const config::IpAddress& ip) {
  if (limit_ == 0) return;
  std::string k = client_key(ip);
  Stripe& s = stripe_for(k);
  std::lock_guard lock(s.mu);
  auto it = s.open.find(k);
  if (it == s.open.end()) return;
  if (--it->second == 0) s.open.erase(it);
}

std::uint32_t ClientLimiter::open(const config::IpAddress& ip) {
  std::string k = client_key(ip);
  Stripe& s = stripe_for(k);
  std::lock_guard lock(s.mu);
  auto it = s.open.find(k);
  return it == s.open.end() ? 0 : it->second;
}

}  // namespace salvo::inbound
