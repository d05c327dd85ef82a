// SPDX-License-Identifier: Apache-2.0
// Who may use salvod's admin HTTP surface ([http] token_file, allowed_origins): the bearer
// tokens, and the checks of a request's Host, Origin, Content-Type and Authorization made
// before it reaches a page. Sans-IO apart from loading the token file at start.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <salvo/config/config.h>

namespace salvo::admin {

// The bearer tokens of [http] token_file. Immutable once loaded; shared read-only by every
// shard's HTTP server.
class TokenSet {
 public:
  // RFC 6750 §2.1 b64token; at least kMinLength characters (a guessable token is no
  // token), at most kMaxLength (the comparison runs over that many bytes every time).
  static constexpr std::size_t kMinLength = 16;
  static constexpr std::size_t kMaxLength = 256;

  TokenSet() = default;
  // Start-up only. Reads the file and checks it (throws std::runtime_error with the one
  // line to print, naming http.token_file): a regular file, not writable by group or
  // others and not readable by others (0600, 0640, 0400, 0440 pass; 0644 fails), at most
  // 1 MiB, at least one token.
  static TokenSet load(const std::string& path);
  // One token a line; blank lines and lines starting with '#' are skipped, spaces and tabs
  // around a token ignored, CRLF accepted. Throws std::runtime_error naming `name` and the
  // line of a malformed token; an empty result is not an error here.
  static TokenSet parse(std::string_view text, std::string_view name);

  // Whether `token` is one of them, in time that depends on neither the tokens' contents
  // nor their lengths (every token is compared over kMaxLength bytes, without an early
  // exit): only on how many there are.
  bool contains(std::string_view token) const noexcept;
  std::size_t size() const noexcept { return tokens_.size(); }
  bool empty() const noexcept { return tokens_.empty(); }

 private:
  std::vector<std::string> tokens_;
};

// What the admin HTTP server knows about a request when its headers are complete. Absent
// headers are nullopt (an empty header is present and empty).
struct RequestHead {
  bool post = false;
  std::string_view path;  // without the query string
  std::optional<std::string_view> host, origin, authorization, content_type;
  bool duplicate = false;  // Host, Origin, Authorization or Content-Type given twice
};

enum class Access : std::uint8_t {
  Allowed,
  Ambiguous,         // 400: one of the checked headers twice
  ForbiddenHost,     // 403: loopback listener, Host not a loopback name (DNS rebinding)
  ForbiddenOrigin,   // 403: an Origin that is neither the server's own nor allowed
  UnsupportedMedia,  // 415: POST /api/v1/inject without Content-Type: application/json
  NoTokens,          // 401: no [http] token_file: nothing but /healthz is served
  MissingToken,      // 401: no Authorization: Bearer
  InvalidToken,      // 401: a token that is not in the file (or not a bearer credential)
};

// The checks, in this order: Host, Origin, Content-Type, token. GET /healthz is not
// checked at all (the server answers it first). Immutable; shared by every shard.
class HttpAccess {
 public:
  enum class Listener : std::uint8_t { Loopback, Other };

  HttpAccess(TokenSet tokens, std::vector<std::string> allowed_origins, Listener listener);
  // Start-up only: the tokens from http.token_file (TokenSet::load; none when it is ""),
  // the origins, and whether the address is a loopback one.
  static HttpAccess from_config(const config::Http& http);

  Access check(const RequestHead& r) const noexcept;
  std::size_t token_count() const noexcept { return tokens_.size(); }

  // The pieces of check(), for tests and the comments' sake.
  // "localhost", a 127.0.0.0/8 or [::1] literal, each with an optional ":port".
  static bool is_loopback_host(std::string_view host) noexcept;
  // Origin equals "http://" or "https://" + Host, or is one of allowed_origins (ASCII
  // case-insensitive both).
  bool origin_allowed(std::string_view origin, std::optional<std::string_view> host) const noexcept;
  // "application/json", any case, with or without parameters.
  static bool is_json(std::string_view content_type) noexcept;
  // The token of "Bearer <token>" (scheme in any case), or "" when it is not one.
  static std::string_view bearer_token(std::string_view authorization) noexcept;

 private:
  TokenSet tokens_;
  std::vector<std::string> allowed_origins_;
  Listener listener_;
};

}  // namespace salvo::admin
