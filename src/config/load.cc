// SPDX-License-Identifier: Apache-2.0
// load_file / load_string: read, parse with toml++ (its exceptions stop here), run the
// section parsers, fill machine defaults, cross-check, and publish an immutable Config.
#include <cerrno>
#include <fcntl.h>
#include <system_error>
#include <unistd.h>

#include <fmt/format.h>

#include <salvo/config/resolv_conf.h>

#include "config/reader.h"

namespace salvo::config {
namespace {

using detail::Context;
using detail::Diagnostics;

constexpr std::size_t kMaxFileSize = 16 << 20;

std::uint32_t line_at(const toml::table& root, std::string_view path) {
  const auto* n = root.at_path(path).node();
  return n != nullptr ? detail::line_of(*n) : 0;
}

std::string machine_hostname(const LoadOptions& options) {
  if (!options.hostname.empty()) return detail::lower(options.hostname);
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || !is_domain_name(buf)) return "localhost";
  return detail::lower(buf);
}

std::vector<HostPort> machine_resolvers(const LoadOptions& options) {
  auto r = read_resolv_conf(options.resolv_conf);
  if (r && !r->empty()) return *r;
  return {HostPort{"127.0.0.1", 53}};  // what glibc does without a nameserver line
}

std::expected<ConfigPtr, ConfigError> first_error(const Diagnostics& diag) {
  return std::unexpected(diag.first());
}

ConfigError file_error(const std::filesystem::path& path, int err) {
  return ConfigError{fmt::format("config: {}: {}", path.string(),
                                 std::error_code(err, std::system_category()).message()),
                     "", 0};
}

}  // namespace

namespace detail {

void cross_check(const toml::table& root, Config& config, Context& ctx) {
  auto& diag = ctx.diag;
  for (std::size_t i = 0; i < config.listen.size(); ++i) {
    if (config.listen[i].starttls && (config.tls.certificate.empty() || config.tls.key.empty())) {
      const auto path = fmt::format("listen[{}].starttls", i);
      diag.error(path, "needs [tls] certificate and key", line_at(root, path));
    }
  }
  if (config.http.tls && (config.tls.certificate.empty() || config.tls.key.empty())) {
    diag.error("http.tls", "needs [tls] certificate and key", line_at(root, "http.tls"));
  }
  if (config.tls.certificate.empty() != config.tls.key.empty()) {
    const bool has_cert = !config.tls.certificate.empty();
    const char* path = has_cert ? "tls.certificate" : "tls.key";
    diag.error(path, has_cert ? "needs tls.key as well" : "needs tls.certificate as well",
               line_at(root, path));
  }
  if (config.node.hostname.empty()) config.node.hostname = machine_hostname(ctx.options);
  if (config.dns.resolvers.empty()) config.dns.resolvers = machine_resolvers(ctx.options);
  if (config.delivery.dsn_from.empty()) {
    config.delivery.dsn_from = "MAILER-DAEMON@" + config.node.hostname;
  }
  for (auto& e : config.egress) {
    if (e.ehlo.empty()) e.ehlo = config.node.hostname;
  }
}

}  // namespace detail

std::expected<ConfigPtr, ConfigError> load_string(std::string_view text, std::string_view name,
                                                  const LoadOptions& options) {
  toml::table root;
  try {
    root = toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    const auto line = e.source().begin.line;
    return std::unexpected(ConfigError{
        fmt::format("config: {}: {} (line {})", name, e.description(), line), "", line});
  }
  Diagnostics diag;
  Context ctx{options, diag};
  auto config = std::make_shared<Config>();
  try {
    detail::TableReader top(root, detail::kRootSection, "", diag);
    detail::parse_node(root, config->node, ctx);
    detail::parse_listen(root, config->listen, ctx);
    detail::parse_tls(root, config->tls, ctx);
    detail::parse_dns(root, config->dns, ctx);
    detail::parse_delivery(root, config->delivery, ctx);
    detail::parse_routes(root, config->delivery.smtp_port, config->routes, ctx);
    detail::parse_egress(root, config->egress, ctx);
    detail::parse_shaping(root, config->egress, config->default_shaping, config->shaping, ctx);
    detail::parse_dkim(root, config->dkim, ctx);
    detail::parse_http(root, config->http, ctx);
    if (!diag.empty()) return first_error(diag);
    detail::cross_check(root, *config, ctx);
    if (!diag.empty()) return first_error(diag);
  } catch (const std::exception& e) {  // toml++ or the library; start-up only
    return std::unexpected(ConfigError{fmt::format("config: {}: {}", name, e.what()), "", 0});
  }
  return ConfigPtr(std::move(config));
}

std::expected<ConfigPtr, ConfigError> load_file(const std::filesystem::path& path,
                                                const LoadOptions& options) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::unexpected(file_error(path, errno));
  std::string text;
  char buf[16384];
  int err = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) err = errno;
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > kMaxFileSize) {
      err = EFBIG;
      break;
    }
  }
  ::close(fd);
  if (err != 0) return std::unexpected(file_error(path, err));
  return load_string(text, path.string(), options);
}

std::vector<std::string> known_keys() {
  std::vector<std::string> out;
  for (const auto* s : detail::all_sections()) {
    if (s->free_form) {
      out.emplace_back(s->path);
      continue;
    }
    for (auto k : s->keys) out.push_back(fmt::format("{}.{}", s->path, k));
  }
  return out;
}

std::vector<std::string> known_sections() {
  std::vector<std::string> out;
  for (const auto* s : detail::all_sections()) out.emplace_back(s->path);
  return out;
}

std::vector<Cidr> Listener::default_relay_networks() {
  return {*Cidr::parse("127.0.0.0/8"), *Cidr::parse("::1/128")};
}

bool Http::loopback() const {
  if (!address) return false;
  auto ip = IpAddress::parse(address->host);
  return ip && ip->is_loopback();
}

std::string_view to_string(AuthMechanism m) {
  return m == AuthMechanism::Plain ? "PLAIN" : "LOGIN";
}

std::string_view to_string(TlsPolicy p) {
  switch (p) {
    case TlsPolicy::Opportunistic:
      return "opportunistic";
    case TlsPolicy::Required:
      return "required";
    case TlsPolicy::Off:
      return "off";
  }
  return "?";
}

std::string_view to_string(DkimAlgorithm a) {
  return a == DkimAlgorithm::RsaSha256 ? "rsa-sha256" : "ed25519-sha256";
}

const Egress* Config::find_egress(std::string_view name) const {
  for (const auto& e : egress) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

const std::vector<HostPort>* Config::find_route(std::string_view domain) const {
  auto it = routes.find(domain);
  return it != routes.end() ? &it->second : nullptr;
}

const Shaping* Config::find_shaping_for_domain(std::string_view domain) const {
  for (const auto& s : shaping) {
    if (!s.domain.empty() && s.domain == domain) return &s;
  }
  return nullptr;
}

const Shaping* Config::find_shaping_for_mx(std::string_view mx_host) const {
  if (!mx_host.empty() && mx_host.back() == '.') mx_host.remove_suffix(1);
  const Shaping* best = nullptr;
  for (const auto& s : shaping) {
    if (s.mx_suffix.empty()) continue;
    // ".google.com" matches "aspmx.l.google.com" and "google.com" itself.
    const std::string_view suffix = s.mx_suffix;
    const bool match = mx_host.ends_with(suffix) || mx_host == suffix.substr(1);
    if (match && (best == nullptr || suffix.size() > best->mx_suffix.size())) best = &s;
  }
  return best;
}

}  // namespace salvo::config
