// SPDX-License-Identifier: Apache-2.0
// AuthUsers: the SMTP AUTH credentials of one [[listen]] entry (auth_users inline table or
// auth_users_file of "user:password" lines). Built at start-up, then read-only.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

#include <salvo/config/config.h>

namespace salvo::inbound {

// A password field starting with '$' is a crypt(3) hash ($y$ yescrypt, $6$ SHA-512, $5$
// SHA-256, $2b$ bcrypt, ... whatever this system's libxcrypt takes), checked with crypt_rn;
// anything else is a plaintext password (accepted; plaintext() counts them for salvod's
// start-up warning).
//
// Shared read-only by every shard once built; check() runs on the calling shard's thread
// and, with hashes, costs what one hash costs (yescrypt: ~15 ms on the development box),
// which is why [[listen]] auth_failures_per_ip bounds how often a client may make us pay
// it. Every check does the same work whoever the user is, so neither the reply nor its
// timing tells an unknown user from a wrong password: one crypt(3) when any entry is
// hashed (against the user's hash, or else against the stored hash of an entry of the most
// common kind), and one constant-time comparison of plaintext.
class AuthUsers {
 public:
  AuthUsers() = default;
  // Start-up only: throws std::runtime_error with one line naming the file and line
  // ("auth_users_file /etc/salvo/users: line 3: expected user:password"), or the inline
  // entry ("listen[0].auth_users.alice: ..."; `index` is the listener's).
  static AuthUsers from_config(const config::Listener& listener, std::size_t index);
  // Parses "user:password" lines; '#' comments and blank lines are skipped. Throws as above.
  static AuthUsers parse_file_text(std::string_view text, std::string_view name);

  bool empty() const noexcept { return users_.empty(); }
  std::size_t size() const noexcept { return users_.size(); }
  // Entries stored in plaintext, and where they came from ("auth_users_file PATH",
  // "listen[0].auth_users").
  std::size_t plaintext() const noexcept { return plaintext_; }
  const std::string& source() const noexcept { return source_; }
  bool check(std::string_view user, std::string_view password) const noexcept;

 private:
  struct Secret {
    std::string text;  // the password, or its crypt(3) hash
    bool hashed = false;
  };
  // `where` names the entry in the error thrown for a '$' field libxcrypt cannot read.
  void add(std::string user, std::string password, std::string_view where);
  // After the last add(): counts plaintext entries and picks the unknown user's hash.
  void seal();

  std::map<std::string, Secret, std::less<>> users_;
  std::string dummy_hash_;  // "" when no entry is hashed
  std::size_t plaintext_ = 0;
  std::string source_;
};

}  // namespace salvo::inbound
