// SPDX-License-Identifier: Apache-2.0
// HttpAccess and TokenSet (see http_access.h): the token file, and the checks the admin
// HTTP server makes before a request reaches a page.
#include <salvo/admin/http_access.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include <salvo/base/ascii.h>
#include <salvo/config/cidr.h>

namespace salvo::admin {
namespace {

constexpr std::size_t kMaxFileSize = 1 << 20;

using ascii::iequals;
using ascii::istarts_with;

// RFC 9110 §5.6.3 optional whitespace.
std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
bool is_b64token(std::string_view s) noexcept {
  std::size_t i = 0;
  auto body = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
  };
  while (i < s.size() && body(s[i])) ++i;
  if (i == 0) return false;
  while (i < s.size() && s[i] == '=') ++i;
  return i == s.size();
}

std::string token_error(std::string_view name, std::string_view what) {
  return fmt::format("http.token_file {}: {}", name, what);
}

}  // namespace

// ---- TokenSet ---------------------------------------------------------------------------

TokenSet TokenSet::parse(std::string_view text, std::string_view name) {
  TokenSet set;
  std::size_t line_no = 0;
  while (!text.empty()) {
    const std::size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    line = trim(line);
    if (line.empty() || line.front() == '#') continue;
    if (!is_b64token(line) || line.size() < kMinLength || line.size() > kMaxLength) {
      // The token itself is never printed: the line number is enough to find it.
      throw std::runtime_error(token_error(
          name, fmt::format("line {}: a token is {} to {} characters of A-Z a-z 0-9 - . _ ~ + / "
                            "(then any '='); make one with: openssl rand -hex 32",
                            line_no, kMinLength, kMaxLength)));
    }
    set.tokens_.emplace_back(line);
  }
  return set;
}

TokenSet TokenSet::load(const std::string& path) {
  // O_NONBLOCK: a FIFO in its place must not hang the start (it is refused below).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    throw std::runtime_error(
        token_error(path, fmt::format("cannot be read: {}", std::strerror(errno))));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    throw std::runtime_error(
        token_error(path, fmt::format("cannot be read: {}", std::strerror(errno))));
  }
  if (!S_ISREG(st.st_mode)) throw std::runtime_error(token_error(path, "not a regular file"));
  // Secrets files are 0600 (or 0640 with a group such as salvo, as the Debian package's
  // user reads /etc/salvo): a file others can read, or group or others can change, is
  // refused, as sshd refuses such a private key, rather than trusted.
  const unsigned mode = st.st_mode & 07777;
  if ((mode & (S_IWGRP | S_IRWXO)) != 0) {
    throw std::runtime_error(token_error(
        path, fmt::format("mode {:04o} lets {} it; chmod 0600 (or 0640 for salvod's group)", mode,
                          (mode & S_IRWXO) != 0 ? "others read or change" : "the group change")));
  }
  if (static_cast<std::uint64_t>(st.st_size) > kMaxFileSize) {
    throw std::runtime_error(token_error(path, "larger than 1 MiB"));
  }
  std::string text;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      throw std::runtime_error(
          token_error(path, fmt::format("cannot be read: {}", std::strerror(errno))));
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > kMaxFileSize)
      throw std::runtime_error(token_error(path, "larger than 1 MiB"));
  }
  TokenSet set = parse(text, path);
  if (set.empty()) {
    throw std::runtime_error(
        token_error(path, "holds no token (one a line; blank lines and # comments are skipped)"));
  }
  return set;
}

bool TokenSet::contains(std::string_view token) const noexcept {
  // The presented token's length is the client's own business: an impossible one is
  // refused at once. Every stored token is then compared over kMaxLength zero-padded bytes,
  // so neither its contents nor its length shape the time taken.
  if (token.empty() || token.size() > kMaxLength) return false;
  unsigned char presented[kMaxLength] = {};
  std::memcpy(presented, token.data(), token.size());
  unsigned char stored[kMaxLength];
  unsigned found = 0;
  for (const auto& t : tokens_) {
    std::memset(stored, 0, sizeof stored);
    std::memcpy(stored, t.data(), t.size());
    unsigned diff = t.size() == token.size() ? 0u : 1u;
    for (std::size_t i = 0; i < kMaxLength; ++i)
      diff |= static_cast<unsigned>(stored[i] ^ presented[i]);
    found |= diff == 0 ? 1u : 0u;
  }
  return found != 0;
}

// ---- HttpAccess -------------------------------------------------------------------------

HttpAccess::HttpAccess(TokenSet tokens, std::vector<std::string> allowed_origins, Listener listener)
    : tokens_(std::move(tokens)),
      allowed_origins_(std::move(allowed_origins)),
      listener_(listener) {}

HttpAccess HttpAccess::from_config(const config::Http& http) {
  TokenSet tokens;
  if (!http.token_file.empty()) tokens = TokenSet::load(http.token_file);
  return HttpAccess(std::move(tokens), http.allowed_origins,
                    http.loopback() ? Listener::Loopback : Listener::Other);
}

bool HttpAccess::is_loopback_host(std::string_view host) noexcept {
  std::string_view name, port;
  if (!host.empty() && host.front() == '[') {
    const auto close = host.find(']');
    if (close == std::string_view::npos) return false;
    name = host.substr(1, close - 1);
    port = host.substr(close + 1);
  } else {
    const auto colon = host.find(':');
    name = host.substr(0, colon);
    port = colon == std::string_view::npos ? std::string_view{} : host.substr(colon);
  }
  // RFC 9110 §4.2.1: port = *DIGIT.
  if (!port.empty()) {
    if (port.front() != ':' || port.size() > 6) return false;
    for (char c : port.substr(1)) {
      if (c < '0' || c > '9') return false;
    }
  }
  if (iequals(name, "localhost") || iequals(name, "localhost.")) return true;
  const auto ip = config::IpAddress::parse(name);
  return ip && ip->is_loopback();
}

bool HttpAccess::origin_allowed(std::string_view origin,
                                std::optional<std::string_view> host) const noexcept {
  // The server's own origin: the page it served (the dashboard) calling it back. Over
  // https when a TLS proxy in front of salvod passes the Host header on.
  if (host && !host->empty()) {
    for (std::string_view scheme : {std::string_view("http://"), std::string_view("https://")}) {
      if (istarts_with(origin, scheme) &&
          iequals(origin.substr(scheme.size()), *host)) {
        return true;
      }
    }
  }
  return std::any_of(allowed_origins_.begin(), allowed_origins_.end(),
                     [origin](const std::string& o) { return iequals(o, origin); });
}

bool HttpAccess::is_json(std::string_view content_type) noexcept {
  const auto semi = content_type.find(';');
  return iequals(trim(content_type.substr(0, semi)), "application/json");
}

std::string_view HttpAccess::bearer_token(std::string_view authorization) noexcept {
  // RFC 9110 §11.4: credentials = auth-scheme [ 1*SP token68 ]; the scheme in any case.
  std::string_view v = trim(authorization);
  constexpr std::string_view kScheme = "bearer";
  if (!istarts_with(v, kScheme) || v.size() == kScheme.size() || v[kScheme.size()] != ' ') {
    return {};
  }
  v.remove_prefix(kScheme.size());
  v = trim(v);
  if (v.empty() || v.find_first_of(" \t") != std::string_view::npos) return {};
  return v;
}

Access HttpAccess::check(const RequestHead& r) const noexcept {
  if (r.duplicate) return Access::Ambiguous;
  // DNS rebinding: a page on http://evil.example:PORT whose name the attacker then points
  // at 127.0.0.1 reaches a loopback listener as a same-origin page (its Origin header, when
  // sent, is http://evil.example:PORT and the Host evil.example:PORT, which agree). Its
  // Host header still names the attacker's domain, and a loopback listener has no business
  // with any name but localhost or a loopback literal; that check costs nothing. On other
  // addresses salvod cannot know every name it is reached by (DNS aliases, proxies), so
  // there the bearer token does the job: a rebound page never has it (the dashboard keeps
  // it in sessionStorage of its own origin). A request without Host (HTTP/1.0) comes from a
  // program, not a browser, and meets the token check like any other.
  if (listener_ == Listener::Loopback && r.host && !is_loopback_host(*r.host)) {
    return Access::ForbiddenHost;
  }
  // Browsers send Origin on every cross-origin request (and on same-origin POSTs);
  // programs (curl, Prometheus) send none. A page from elsewhere is refused even when a
  // token comes with it.
  if (r.origin && !origin_allowed(*r.origin, r.host)) return Access::ForbiddenOrigin;
  // A cross-site form or no-cors fetch can only send text/plain, multipart/form-data or
  // application/x-www-form-urlencoded without a CORS preflight (which salvod never
  // answers), so requiring JSON refuses them whatever else they carry.
  if (r.post && r.path == "/api/v1/inject" && (!r.content_type || !is_json(*r.content_type))) {
    return Access::UnsupportedMedia;
  }
  if (tokens_.empty()) return Access::NoTokens;
  if (!r.authorization) return Access::MissingToken;
  const std::string_view token = bearer_token(*r.authorization);
  if (token.empty() || !tokens_.contains(token)) return Access::InvalidToken;
  return Access::Allowed;
}

}  // namespace salvo::admin
