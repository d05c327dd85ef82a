// SPDX-License-Identifier: Apache-2.0
// AUTH hardening: AuthUsers with crypt(3) hashes made here with libxcrypt (yescrypt,
// SHA-512-crypt), plaintext, unknown users and malformed hashes; AuthBudget's hour window
// (TestClock), its /64 grouping and its size bound.
#include <crypt.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <salvo/inbound/auth_budget.h>
#include <salvo/inbound/auth_users.h>

#include "support/test_clock.h"

namespace salvo::inbound {
namespace {

using namespace std::chrono_literals;
using Refusal = AuthBudget::Refusal;

// A crypt(3) hash of `password` with the method `prefix` ("$y$", "$6$") at its default cost
// and a random salt, as mkpasswd makes them.
std::string hash_of(const std::string& password, const char* prefix) {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  if (crypt_gensalt_rn(prefix, 0, nullptr, 0, setting, sizeof setting) == nullptr) {
    throw std::runtime_error(std::string("crypt_gensalt_rn ") + prefix);
  }
  auto data = std::make_unique<crypt_data>();
  const char* h = crypt_r(password.c_str(), setting, data.get());
  if (h == nullptr || h[0] == '*') throw std::runtime_error(std::string("crypt_r ") + prefix);
  return h;
}

std::string error_of(std::string_view text) {
  try {
    (void)AuthUsers::parse_file_text(text, "/etc/salvo/users");
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(AuthUsers, ChecksYescryptAndSha512HashesAndPlaintext) {
  const std::string yes = hash_of("alice-pw", "$y$");
  const std::string sha = hash_of("bob-pw", "$6$");
  ASSERT_TRUE(yes.starts_with("$y$")) << yes;
  ASSERT_TRUE(sha.starts_with("$6$")) << sha;
  AuthUsers u = AuthUsers::parse_file_text("alice:" + yes + "\nbob:" + sha + "\ncarol:carol-pw\n",
                                           "/etc/salvo/users");
  EXPECT_EQ(u.size(), 3u);
  EXPECT_EQ(u.plaintext(), 1u);
  EXPECT_EQ(u.source(), "auth_users_file /etc/salvo/users");
  EXPECT_TRUE(u.check("alice", "alice-pw"));
  EXPECT_FALSE(u.check("alice", "alice-pW"));
  EXPECT_FALSE(u.check("alice", ""));
  EXPECT_FALSE(u.check("alice", yes)) << "the hash is not the password";
  EXPECT_FALSE(u.check("alice", std::string("alice-pw\0junk", 13))) << "no C-string cut";
  EXPECT_TRUE(u.check("bob", "bob-pw"));
  EXPECT_FALSE(u.check("bob", "alice-pw"));
  EXPECT_TRUE(u.check("carol", "carol-pw"));
  EXPECT_FALSE(u.check("carol", "carol-p"));
  // Unknown users fail, also with a known user's password or hash.
  EXPECT_FALSE(u.check("dave", "alice-pw"));
  EXPECT_FALSE(u.check("dave", yes));
  EXPECT_FALSE(u.check("", ""));
  EXPECT_FALSE(u.check("Alice", "alice-pw")) << "user names are exact";
}

// The unknown user pays for a hash like everyone else (here: yescrypt, the only method),
// so its check is not measurably faster than a wrong password's. Without a hash for the
// unknown user it would be thousands of times faster.
TEST(AuthUsers, AnUnknownUserCostsWhatAWrongPasswordCosts) {
  AuthUsers u = AuthUsers::parse_file_text(
      "alice:" + hash_of("alice-pw", "$y$") + "\nbob:" + hash_of("bob-pw", "$y$") + "\n", "f");
  auto median_ns = [&](std::string_view user) {
    std::vector<std::int64_t> t;
    for (int i = 0; i < 5; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      EXPECT_FALSE(u.check(user, "wrong"));
      t.push_back((std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(t.begin(), t.end());
    return t[2];
  };
  const std::int64_t known = median_ns("alice");
  const std::int64_t unknown = median_ns("nobody");
  const double ratio = static_cast<double>(unknown) / static_cast<double>(known);
  EXPECT_GT(ratio, 0.3) << "known " << known / 1000 << " us, unknown " << unknown / 1000 << " us";
  EXPECT_LT(ratio, 3.0) << "known " << known / 1000 << " us, unknown " << unknown / 1000 << " us";
  RecordProperty("yescrypt_check_us", static_cast<int>(known / 1000));
}

TEST(AuthUsers, MalformedHashesStopStartUpOrNeverMatch) {
  // Not a method libxcrypt knows, or characters a setting cannot hold: one line naming
  // the entry. A plaintext password may not begin with '$'.
  const std::string why =
      ": not a crypt(3) hash this system's libcrypt can check (a plaintext password may not "
      "begin with '$')";
  EXPECT_EQ(error_of("ok:pw\nalice:$ecret\n"), "auth_users_file /etc/salvo/users: line 2" + why);
  EXPECT_EQ(error_of("alice:$6$salt$bad!hash\n"), "auth_users_file /etc/salvo/users: line 1" + why);
  EXPECT_EQ(error_of("alice:$zz$abc\n"), "auth_users_file /etc/salvo/users: line 1" + why);
  // A setting libxcrypt reads but with the hash cut off: loads, and nothing matches it.
  AuthUsers cut = AuthUsers::parse_file_text("alice:$y$j9T$tooshort\nbob:$y$\n", "f");
  EXPECT_EQ(cut.plaintext(), 0u);
  EXPECT_FALSE(cut.check("alice", "tooshort"));
  EXPECT_FALSE(cut.check("alice", ""));
  EXPECT_FALSE(cut.check("alice", "$y$j9T$tooshort"));
  EXPECT_FALSE(cut.check("bob", ""));
}

TEST(AuthUsers, InlineTableEntriesAreNamedByListener) {
  config::Listener l;
  l.auth_users = {{"alice", hash_of("alice-pw", "$6$")}, {"bob", "bob-pw"}, {"carol", "c"}};
  AuthUsers u = AuthUsers::from_config(l, 2);
  EXPECT_EQ(u.source(), "listen[2].auth_users");
  EXPECT_EQ(u.plaintext(), 2u);
  EXPECT_TRUE(u.check("alice", "alice-pw"));
  EXPECT_TRUE(u.check("bob", "bob-pw"));
  l.auth_users["dave"] = "$nope$x";
  try {
    (void)AuthUsers::from_config(l, 2);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).substr(0, 45), "listen[2].auth_users.dave: not a crypt(3) has");
  }
}

config::IpAddress ip(const char* text) { return *config::IpAddress::parse(text); }

// The hour, in 10-minute buckets: a failure at the start of a bucket counts for 60
// minutes (TestClock starts on a bucket boundary), one at its end for 50.
TEST(AuthBudget, PerIpBudgetHoldsForTheHourThenAgesOut) {
  test::TestClock clock;
  AuthBudget b(3, 0);
  const auto a = ip("192.0.2.1");
  for (int i = 0; i < 2; ++i) b.failed(a, "u" + std::to_string(i), clock.now());
  EXPECT_EQ(b.refusal(a, "x", clock.now()), Refusal::None) << "2 of 3";
  clock.advance(10min);  // the next bucket
  b.failed(a, "x", clock.now());
  EXPECT_EQ(b.refusal(a, "anyone", clock.now()), Refusal::Ip);
  EXPECT_EQ(b.refusal(ip("192.0.2.2"), "anyone", clock.now()), Refusal::None);
  EXPECT_EQ(b.refusal(ip("::ffff:192.0.2.1"), "anyone", clock.now()), Refusal::Ip)
      << "IPv4-mapped is the same client";
  clock.advance(49min);  // 59 minutes after the first two
  EXPECT_EQ(b.refusal(a, "x", clock.now()), Refusal::Ip);
  clock.advance(1min);  // the first two age out; the third still counts
  EXPECT_EQ(b.refusal(a, "x", clock.now()), Refusal::None);
  b.failed(a, "x", clock.now());
  b.failed(a, "x", clock.now());
  EXPECT_EQ(b.refusal(a, "x", clock.now()), Refusal::Ip);
  clock.advance(2h);  // long quiet: everything is gone
  EXPECT_EQ(b.refusal(a, "x", clock.now()), Refusal::None);
  b.failed(a, "x", clock.now());
  EXPECT_EQ(b.refusal(a, "x", clock.now()), Refusal::None) << "1 of 3 after the quiet";
}

TEST(AuthBudget, PerUserBudgetSpansClientsAndUnknownNames) {
  test::TestClock clock;
  AuthBudget b(0, 2);
  b.failed(ip("192.0.2.1"), "alice", clock.now());
  b.failed(ip("2001:db8::1"), "alice", clock.now());
  b.failed(ip("192.0.2.1"), "no-such-user", clock.now());
  EXPECT_EQ(b.refusal(ip("198.51.100.7"), "alice", clock.now()), Refusal::User);
  EXPECT_EQ(b.refusal(ip("198.51.100.7"), "Alice", clock.now()), Refusal::None);
  EXPECT_EQ(b.refusal(ip("198.51.100.7"), "no-such-user", clock.now()), Refusal::None);
  b.failed(ip("198.51.100.7"), "no-such-user", clock.now());
  EXPECT_EQ(b.refusal(ip("192.0.2.1"), "no-such-user", clock.now()), Refusal::User)
      << "an unknown name is counted like a known one";
  EXPECT_EQ(b.ips_for_test().size_for_test(), 0u) << "per_ip 0: nothing counted";
  // The client's budget is asked first.
  AuthBudget both(1, 1);
  both.failed(ip("192.0.2.1"), "alice", clock.now());
  EXPECT_EQ(both.refusal(ip("192.0.2.1"), "alice", clock.now()), Refusal::Ip);
  EXPECT_EQ(both.refusal(ip("192.0.2.9"), "alice", clock.now()), Refusal::User);
}

TEST(AuthBudget, CountsIpv6ByItsSlash64) {
  test::TestClock clock;
  AuthBudget b(2, 0);
  b.failed(ip("2001:db8:0:7::1"), "u", clock.now());
  b.failed(ip("2001:db8:0:7:ffff:1:2:3"), "u", clock.now());  // the same /64
  EXPECT_EQ(b.refusal(ip("2001:db8:0:7::99"), "u", clock.now()), Refusal::Ip);
  EXPECT_EQ(b.refusal(ip("2001:db8:0:8::1"), "u", clock.now()), Refusal::None);  // next /64
  EXPECT_EQ(b.ips_for_test().size_for_test(), 1u);
}

// Failures from more clients than the table holds: it stays at its size, forgetting the
// clients whose last failure is the oldest, never the newest.
TEST(AuthBudget, TableSizeIsBoundedAndForgetsTheOldest) {
  test::TestClock clock;
  constexpr std::size_t kMax = 64;
  AuthBudget b(1, 1, kMax);
  const auto first = ip("10.0.0.1");
  b.failed(first, "user-first", clock.now());
  EXPECT_EQ(b.refusal(first, "x", clock.now()), Refusal::Ip);
  for (int i = 0; i < 10'000; ++i) {
    clock.advance(1ms);
    b.failed(*config::IpAddress::parse(
                 fmt::format("10.{}.{}.{}", 1 + i / 65536, i / 256 % 256, i % 256)),
             "user-" + std::to_string(i), clock.now());
    ASSERT_LE(b.ips_for_test().size_for_test(), kMax);
    ASSERT_LE(b.users_for_test().size_for_test(), kMax);
  }
  EXPECT_GE(b.ips_for_test().size_for_test(), kMax / 2);
  EXPECT_EQ(b.refusal(first, "x", clock.now()), Refusal::None) << "the oldest was forgotten";
  EXPECT_EQ(b.refusal(ip("10.1.39.15"), "x", clock.now()), Refusal::Ip) << "the newest kept";
  EXPECT_EQ(b.refusal(ip("10.9.9.9"), "user-9999", clock.now()), Refusal::User);
}

// Shards count concurrently through the stripes.
TEST(AuthBudget, ConcurrentFailuresAreAllCounted) {
  AuthBudget b(4 * 500, 0);
  const TimePoint now = TimePoint(1h);
  std::vector<std::thread> shards;
  for (int t = 0; t < 4; ++t) {
    shards.emplace_back([&b, now, t] {
      for (int i = 0; i < 500; ++i) {
        b.failed(ip("192.0.2.1"), "u", now);
        b.failed(*config::IpAddress::parse(fmt::format("198.51.{}.{}", t, i % 250)), "u", now);
      }
    });
  }
  for (auto& s : shards) s.join();
  EXPECT_EQ(b.refusal(ip("192.0.2.1"), "u", now), Refusal::Ip) << "all 2000 counted";
  EXPECT_EQ(b.ips_for_test().size_for_test(), 1u + 4 * 250);
}

}  // namespace
}  // namespace salvo::inbound
