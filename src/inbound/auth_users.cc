// SPDX-License-Identifier: Apache-2.0
// AuthUsers: loading the credentials (start-up) and the check (shards): crypt(3) hashes
// through libxcrypt, plaintext by a constant-time comparison.
#include <salvo/inbound/auth_users.h>

#include <crypt.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

namespace salvo::inbound {
namespace {

// Compares over max(a, b) bytes so the time does not reveal a common prefix or length.
bool equal_constant_time(std::string_view a, std::string_view b) noexcept {
  std::size_t n = a.size() > b.size() ? a.size() : b.size();
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (std::size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned>(x ^ y);
  }
  return diff == 0;
}

// crypt(3) hashes `password` with the method, cost and salt that `hash` names and compares
// the result with it. crypt_rn is reentrant (its state lives in `data`, 32 KiB, so on the
// heap rather than a shard's stack) and returns null for a setting it cannot use.
bool crypt_matches(std::string_view password, const std::string& hash) noexcept {
  // A C string ends at NUL: "secret\0junk" must not pass for "secret".
  if (password.find('\0') != std::string_view::npos) return false;
  const std::string phrase(password);
  auto data = std::make_unique<crypt_data>();
  const char* out = crypt_rn(phrase.c_str(), hash.c_str(), data.get(), sizeof(crypt_data));
  return out != nullptr && equal_constant_time(out, hash);
}

// "y" for "$y$j9T$...", "2b" for "$2b$05$...": the method a hash names.
std::string_view method_of(std::string_view hash) noexcept {
  std::string_view rest = hash.substr(1);
  return rest.substr(0, rest.find('$'));
}

}  // namespace

AuthUsers AuthUsers::from_config(const config::Listener& listener, std::size_t index) {
  // The config reader refuses auth_users together with auth_users_file.
  if (listener.auth_users_file.empty()) {
    AuthUsers users;
    users.source_ = fmt::format("listen[{}].auth_users", index);
    for (const auto& [user, password] : listener.auth_users) {
      users.add(user, password, users.source_ + "." + user);
    }
    users.seal();
    return users;
  }
  std::ifstream f(listener.auth_users_file, std::ios::binary);
  if (!f) {
    throw std::runtime_error("auth_users_file " + listener.auth_users_file + ": cannot be read");
  }
  std::ostringstream text;
  text << f.rdbuf();
  return parse_file_text(text.str(), listener.auth_users_file);
}

AuthUsers AuthUsers::parse_file_text(std::string_view text, std::string_view name) {
  AuthUsers users;
  users.source_ = "auth_users_file " + std::string(name);
  std::size_t line_no = 0;
  while (!text.empty()) {
    std::size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    std::size_t colon = line.find(':');
    const std::string where = users.source_ + ": line " + std::to_string(line_no);
    if (colon == 0 || colon == std::string_view::npos) {
      throw std::runtime_error(where + ": expected user:password");
    }
    users.add(std::string(line.substr(0, colon)), std::string(line.substr(colon + 1)), where);
  }
  users.seal();
  return users;
}

void AuthUsers::add(std::string user, std::string password, std::string_view where) {
  const bool hashed = !password.empty() && password.front() == '$';
  if (hashed) {
    // Only a setting libxcrypt can read is refused here (checking each hash in full would
    // cost a hash per user at start-up); one that reads but is cut short never matches.
    const int ok = crypt_checksalt(password.c_str());
    if (ok == CRYPT_SALT_INVALID || ok == CRYPT_SALT_METHOD_DISABLED) {
      throw std::runtime_error(std::string(where) +
                               ": not a crypt(3) hash this system's libcrypt can check "
                               "(a plaintext password may not begin with '$')");
    }
  }
  users_.insert_or_assign(std::move(user), Secret{std::move(password), hashed});
}

void AuthUsers::seal() {
  plaintext_ = 0;
  std::map<std::string_view, std::size_t> methods;
  for (const auto& [user, secret] : users_) {
    if (secret.hashed) {
      ++methods[method_of(secret.text)];
    } else {
      ++plaintext_;
    }
  }
  // The unknown user's check costs what most users' checks cost: the same method and
  // parameters (crypt's cost is in them, not in the password).
  dummy_hash_.clear();
  std::string_view common;
  std::size_t most = 0;
  for (const auto& [method, n] : methods) {
    if (n > most) {
      most = n;
      common = method;
    }
  }
  for (const auto& [user, secret] : users_) {
    if (secret.hashed && method_of(secret.text) == common) {
      dummy_hash_ = secret.text;
      break;
    }
  }
}

bool AuthUsers::check(std::string_view user, std::string_view password) const noexcept {
  static constexpr std::string_view kDummy = "salvo-no-such-user-placeholder-secret";
  auto it = users_.find(user);
  const Secret* s = it == users_.end() ? nullptr : &it->second;
  const bool hashed = s != nullptr && s->hashed;
  const bool hash_match =
      !dummy_hash_.empty() && crypt_matches(password, hashed ? s->text : dummy_hash_);
  const bool plain_match =
      equal_constant_time(s != nullptr && !hashed ? std::string_view(s->text) : kDummy, password);
  return s != nullptr && (hashed ? hash_match : plain_match);
}

}  // namespace salvo::inbound
