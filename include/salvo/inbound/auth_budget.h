// SPDX-License-Identifier: Apache-2.0
// AuthBudget: the node-wide count of failed SMTP AUTH attempts in the last hour per client
// (IPv4 address or IPv6 /64) and per user name, for [[listen]] auth_failures_per_ip and
// auth_failures_per_user (docs/reliability.md B12c). Thread-safe.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include <salvo/base/clock.h>
#include <salvo/config/cidr.h>

namespace salvo::inbound {

// Failures per key over the last hour, in six 10-minute buckets (a failure counts for 50 to
// 60 minutes), under one of kStripes mutexes chosen by the key's hash, as ClientLimiter.
// Bounded: a stripe holds at most max_keys / kStripes keys and forgets the one whose last
// failure is the oldest to make room, so a flood of addresses or names costs a fixed amount
// of memory (about 150 bytes a key) and at worst lets its own oldest entries be forgotten.
// Time is passed in (the shards' clock, or a test's).
class FailureWindow {
 public:
  static constexpr Duration kWindow = std::chrono::hours(1);
  static constexpr std::size_t kBuckets = 6;
  static constexpr std::size_t kStripes = 16;

  // limit 0 = no limit (nothing is counted).
  FailureWindow(std::uint32_t limit, std::size_t max_keys);
  FailureWindow(const FailureWindow&) = delete;
  FailureWindow& operator=(const FailureWindow&) = delete;

  // True when `key` has had `limit` or more failures in the window.
  [[nodiscard]] bool spent(const std::string& key, TimePoint now);
  // One more failure for `key`.
  void add(const std::string& key, TimePoint now);
  std::size_t size_for_test();

 private:
  struct Entry {
    std::string key;
    std::int64_t newest = 0;  // the bucket number of counts' newest slot
    std::array<std::uint32_t, kBuckets> counts{};
  };
  using Lru = std::list<Entry>;  // front: the oldest last failure
  struct Stripe {
    std::mutex mu;
    Lru lru;
    std::unordered_map<std::string_view, Lru::iterator> index;  // views of Entry::key
  };
  Stripe& stripe_for(const std::string& key);
  static std::uint32_t sum(const Entry& e, std::int64_t bucket) noexcept;

  const std::uint32_t limit_;
  const std::size_t per_stripe_;
  std::array<Stripe, kStripes> stripes_;
};

// One per [[listen]] entry, shared by every shard's InjectionListener of that entry. Asked
// before a password is checked (refusal) and told of each failure (failed); a success resets
// neither count: an attacker may own an account of his own, and the owner of a busy account
// (an application logging in all day) would otherwise hand a distributed guesser a fresh
// budget with each login. Check and count are separate steps, so concurrent guesses on
// different shards may overshoot a budget by one per other shard.
class AuthBudget {
 public:
  // Keys kept per table (clients, users).
  static constexpr std::size_t kMaxKeys = 65536;
  enum class Refusal : std::uint8_t { None, Ip, User };

  AuthBudget(std::uint32_t per_ip, std::uint32_t per_user, std::size_t max_keys = kMaxKeys)
      : ips_(per_ip, max_keys), users_(per_user, max_keys) {}

  // Which budget, if any, is spent for an AUTH from `ip` naming `user` (the client's first).
  [[nodiscard]] Refusal refusal(const config::IpAddress& ip, std::string_view user, TimePoint now);
  // A wrong password or an unknown user: counted against both.
  void failed(const config::IpAddress& ip, std::string_view user, TimePoint now);

  FailureWindow& ips_for_test() noexcept { return ips_; }
  FailureWindow& users_for_test() noexcept { return users_; }

 private:
  // Names of any length (up to the 12288-octet AUTH line) cost the same: a 64-bit hash.
  // Unknown names are counted like known ones, so a refusal tells nothing about who exists.
  static std::string user_key(std::string_view user);

  FailureWindow ips_;
  FailureWindow users_;
};

}  // namespace salvo::inbound
