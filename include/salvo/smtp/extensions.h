// SPDX-License-Identifier: Apache-2.0
// ESMTP extensions (RFC 5321 §4.1.1.1 EHLO keywords) as a small bit set, and the parser
// that reads them from a server's EHLO reply.
#pragma once

#include <cstdint>
#include <string_view>

#include <salvo/smtp/reply.h>

namespace salvo::smtp {

enum class Extension : std::uint16_t {
  Pipelining = 1u << 0,           // RFC 2920
  Size = 1u << 1,                 // RFC 1870
  EightBitMime = 1u << 2,         // RFC 6152
  SmtpUtf8 = 1u << 3,             // RFC 6531
  EnhancedStatusCodes = 1u << 4,  // RFC 2034
  Dsn = 1u << 5,                  // RFC 3461
  Chunking = 1u << 6,             // RFC 3030
  StartTls = 1u << 7,             // RFC 3207
  Auth = 1u << 8,                 // RFC 4954
};

enum class AuthMechanism : std::uint8_t { Plain = 1u << 0, Login = 1u << 1 };

class ExtensionSet {
 public:
  constexpr ExtensionSet() = default;
  constexpr explicit ExtensionSet(std::uint16_t bits) : bits_(bits) {}
  constexpr bool has(Extension e) const noexcept {
    return (bits_ & static_cast<std::uint16_t>(e)) != 0;
  }
  constexpr ExtensionSet& add(Extension e) noexcept {
    bits_ |= static_cast<std::uint16_t>(e);
    return *this;
  }
  constexpr ExtensionSet& remove(Extension e) noexcept {
    bits_ &= static_cast<std::uint16_t>(~static_cast<std::uint16_t>(e));
    return *this;
  }
  constexpr std::uint16_t bits() const noexcept { return bits_; }
  constexpr bool operator==(const ExtensionSet&) const = default;

  // PIPELINING SIZE 8BITMIME SMTPUTF8 ENHANCEDSTATUSCODES DSN CHUNKING: what a server
  // advertises by default (STARTTLS and AUTH depend on TLS state, see ServerConfig).
  static constexpr ExtensionSet server_default() noexcept { return ExtensionSet(0x7f); }

 private:
  std::uint16_t bits_ = 0;
};

class AuthMechanisms {
 public:
  constexpr AuthMechanisms() = default;
  constexpr explicit AuthMechanisms(std::uint8_t bits) : bits_(bits) {}
  constexpr bool has(AuthMechanism m) const noexcept {
    return (bits_ & static_cast<std::uint8_t>(m)) != 0;
  }
  constexpr AuthMechanisms& add(AuthMechanism m) noexcept {
    bits_ |= static_cast<std::uint8_t>(m);
    return *this;
  }
  constexpr bool empty() const noexcept { return bits_ == 0; }
  constexpr bool operator==(const AuthMechanisms&) const = default;

 private:
  std::uint8_t bits_ = 0;
};

// What a server said in its EHLO reply.
struct ServerCapabilities {
  ExtensionSet extensions;
  std::uint64_t max_size = 0;  // SIZE argument; 0 = no fixed limit announced
  AuthMechanisms auth;         // PLAIN/LOGIN among the AUTH keywords
};

// Reads the keyword lines of a 250 EHLO reply (the first line is the greeting name).
// Unknown keywords are ignored; a malformed SIZE argument leaves max_size at 0.
ServerCapabilities parse_ehlo_reply(const Reply& reply);

}  // namespace salvo::smtp
