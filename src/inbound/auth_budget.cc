// SPDX-License-Identifier: Apache-2.0
// AuthBudget: bucketed one-hour failure counts in striped, size-capped LRU tables.
#include <salvo/inbound/auth_budget.h>

#include <algorithm>
#include <functional>
#include <iterator>

#include <salvo/inbound/client_limiter.h>

namespace salvo::inbound {
namespace {

constexpr Duration kBucketWidth = FailureWindow::kWindow / FailureWindow::kBuckets;

// Bucket numbers count from the clock's epoch (boot, for the steady clock), so they are
// never negative in practice; clamped anyway, as a slot index is derived from them.
std::int64_t bucket_of(TimePoint now) noexcept {
  return std::max<std::int64_t>(0, now.time_since_epoch() / kBucketWidth);
}

std::size_t slot(std::int64_t bucket) noexcept {
  return static_cast<std::size_t>(bucket % static_cast<std::int64_t>(FailureWindow::kBuckets));
}

}  // namespace

FailureWindow::FailureWindow(std::uint32_t limit, std::size_t max_keys)
    : limit_(limit), per_stripe_(std::max<std::size_t>(1, max_keys / kStripes)) {}

FailureWindow::Stripe& FailureWindow::stripe_for(const std::string& key) {
  return stripes_[std::hash<std::string>{}(key) % kStripes];
}

// Failures in the buckets of the window that ends with `bucket` (the current one).
std::uint32_t FailureWindow::sum(const Entry& e, std::int64_t bucket) noexcept {
  std::uint32_t n = 0;
  const std::int64_t oldest = bucket - static_cast<std::int64_t>(kBuckets) + 1;
  for (std::int64_t b = std::max(oldest, e.newest - static_cast<std::int64_t>(kBuckets) + 1);
       b <= e.newest; ++b) {
    n += e.counts[slot(b)];
  }
  return n;
}

bool FailureWindow::spent(const std::string& key, TimePoint now) {
  if (limit_ == 0) return false;
  Stripe& s = stripe_for(key);
  std::lock_guard lock(s.mu);
  auto it = s.index.find(key);
  return it != s.index.end() && sum(*it->second, bucket_of(now)) >= limit_;
}

void FailureWindow::add(const std::string& key, TimePoint now) {
  if (limit_ == 0) return;
  const std::int64_t bucket = bucket_of(now);
  Stripe& s = stripe_for(key);
  std::lock_guard lock(s.mu);
  auto found = s.index.find(key);
  Lru::iterator e;
  if (found != s.index.end()) {
    e = found->second;
    s.lru.splice(s.lru.end(), s.lru, e);  // now the most recent; iterators stay valid
  } else {
    if (s.index.size() >= per_stripe_) {
      s.index.erase(s.lru.front().key);
      s.lru.pop_front();
    }
    s.lru.push_back(Entry{key, bucket, {}});
    e = std::prev(s.lru.end());
    s.index.emplace(e->key, e);
  }
  if (bucket > e->newest) {
    // Empty the slots of the buckets passed since the newest one (at most all of them).
    const std::int64_t stop = std::min(bucket, e->newest + static_cast<std::int64_t>(kBuckets));
    for (std::int64_t b = e->newest + 1; b <= stop; ++b) e->counts[slot(b)] = 0;
    e->newest = bucket;
  }
  // A shard whose clock read came just before another's may land one bucket back; it
  // still counts while that bucket is in the window.
  if (bucket > e->newest - static_cast<std::int64_t>(kBuckets)) ++e->counts[slot(bucket)];
}

std::size_t FailureWindow::size_for_test() {
  std::size_t n = 0;
  for (auto& s : stripes_) {
    std::lock_guard lock(s.mu);
    n += s.index.size();
  }
  return n;
}

std::string AuthBudget::user_key(std::string_view user) {
  const std::size_t h = std::hash<std::string_view>{}(user);
  return std::string(reinterpret_cast<const char*>(&h), sizeof h);
}

AuthBudget::Refusal AuthBudget::refusal(const config::IpAddress& ip, std::string_view user,
                                        TimePoint now) {
  if (ips_.spent(client_key(ip), now)) return Refusal::Ip;
  if (users_.spent(user_key(user), now)) return Refusal::User;
  return Refusal::None;
}

void AuthBudget::failed(const config::IpAddress& ip, std::string_view user, TimePoint now) {
  ips_.add(client_key(ip), now);
  users_.add(user_key(user), now);
}

}  // namespace salvo::inbound
