// SPDX-License-Identifier: Apache-2.0
// The typed configuration: one struct per section, defaults in the initializers,
// loaded and validated by load_file / load_string. configs/salvo.toml documents every key.
#pragma once

#include <cstdint>
#include <expected>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <salvo/base/clock.h>
#include <salvo/base/units.h>
#include <salvo/config/cidr.h>
#include <salvo/config/host_port.h>

namespace salvo::config {

// [node]: this machine.
struct Node {
  // Default: gethostname(). The greeting, EHLO and Received name.
  std::string hostname;
  std::uint32_t cores = 0;  // shards; 0 = one per CPU
  // Open injection connections of the whole node (every [[listen]]); more get 421 4.7.0 at
  // connect. 0 = no cap.
  std::uint32_t max_connections = 20000;
  // Message text SMTP intake may hold in memory, node-wide (an equal share per shard):
  // bodies being received plus those waiting for their spool commit. Beyond it sessions
  // stop reading until commits make room (a stalled disk slows clients, it does not grow
  // the heap). 0 = no cap.
  std::uint64_t max_pending_bytes = 1ull << 30;
  std::string spool = "/var/spool/salvo";
  std::string pickup;  // "" = no pickup directory
  std::string control_socket = "/run/salvo/salvod.sock";
  std::string log_dir = "/var/log/salvo";
  // accounting.jsonl is rotated when it reaches this size or age (0 = not by that).
  std::uint64_t accounting_max_size = 1ull << 30;
  Duration accounting_max_age = std::chrono::hours(24);
  bool fsync = true;  // false: benchmarks only; the daemon says so loudly at start
  // Listeners open before the spool's segments are read; they are scanned on a thread of
  // each shard's own and their mail is delivered once the scan is done. false: scanned
  // before anything opens (as before; start-up then takes as long as the scan).
  bool background_recovery = true;
  // At a clean stop each shard writes a checkpoint of its spool index; the next start
  // reads it instead of scanning the segments when they are exactly those it describes
  // (docs/spool-format.md §10). false: none is written, and one found is removed unused.
  bool checkpoint = true;
  std::uint64_t spool_segment_size = 64'000'000;
  // How often each shard looks for closed segments whose dead records can be punched out
  // (docs/spool-format.md §7); 0: never.
  Duration spool_punch_interval = std::chrono::seconds(30);
  // Free bytes on the spool's file system below which new mail gets 452 4.3.1.
  std::uint64_t spool_reserve = 1'000'000'000;
  // Group commit: one fsync once the oldest waiting message has waited commit_interval,
  // or commit_max_messages / commit_max_bytes are waiting, whichever comes first.
  Duration commit_interval = Duration(0);
  std::uint32_t commit_max_messages = 256;
  std::uint64_t commit_max_bytes = 16'000'000;
  // Commits in flight per shard: the next batch is written while the last one's fdatasync
  // runs (1: one at a time).
  std::uint32_t commits_in_flight = 2;

  friend bool operator==(const Node&, const Node&) = default;
};

enum class AuthMechanism : std::uint8_t { Plain, Login };
std::string_view to_string(AuthMechanism m);  // "PLAIN", "LOGIN"

// One [[listen]] entry: an ESMTP injection listener.
struct Listener {
  HostPort address;       // IP literal; port 0 = any free port (tests)
  bool starttls = false;  // needs [tls] certificate and key
  std::vector<Cidr> relay_networks = default_relay_networks();
  std::vector<AuthMechanism> auth;  // offered after STARTTLS only; empty = AUTH off
  // user -> password (an inline table), or auth_users_file: "user:password" lines. Not both.
  std::map<std::string, std::string, std::less<>> auth_users;
  std::string auth_users_file;
  std::uint64_t max_message_size = 50'000'000;  // SIZE; larger messages get 552 5.3.4
  std::uint32_t max_recipients = 1000;          // per transaction; RFC 5321 §4.5.3.1.8 >= 100
  std::uint32_t max_connections_per_ip = 1000;
  // Waiting for a command outside a mail transaction (after the greeting, between
  // transactions), inside one (RFC 5321 §4.5.3.2.7: 5 minutes), and for more message text
  // during DATA / BDAT.
  // Each is a whole-command limit a client cannot stretch by trickling bytes.
  Duration idle_timeout = std::chrono::minutes(5);
  Duration command_timeout = std::chrono::minutes(5);
  Duration data_timeout = std::chrono::minutes(5);  // longest pause inside message text
  // Message text must average this many bytes per second once data_timeout has passed
  // (Postfix smtpd_min_data_rate); 0 = no minimum.
  std::uint32_t min_data_rate = 500;
  // A session ends (421 4.4.2) at its first moment outside a transaction after this long;
  // a transaction under way gets at most command_timeout more. Zero = no limit.
  Duration session_timeout = std::chrono::hours(1);
  std::uint32_t hard_error_limit = 20;  // protocol errors before 421 and close (Postfix)
  // Failed AUTH attempts in the last hour, node-wide, from one client (IPv4 address or IPv6
  // /64) and naming one user; past either budget AUTH gets 454 4.7.0 without a password
  // check. 0 = no limit.
  std::uint32_t auth_failures_per_ip = 30;
  std::uint32_t auth_failures_per_user = 10;
  // A refused AUTH's 535 leaves this long after the guess, doubling with each further
  // failure on the connection; 0 = at once.
  Duration auth_failure_delay = std::chrono::seconds(1);
  std::uint32_t line = 0;               // where the entry starts in the file, for messages

  static std::vector<Cidr> default_relay_networks();  // 127.0.0.0/8, ::1/128
  friend bool operator==(const Listener&, const Listener&) = default;
};

// [tls]: the listener's certificate; the CA bundle for verifying servers we deliver to.
struct Tls {
  std::string certificate;  // PEM chain; required by any listener with starttls = true
  std::string key;          // PEM private key
  std::string ca_bundle = "/etc/ssl/certs/ca-certificates.crt";

  friend bool operator==(const Tls&, const Tls&) = default;
};

// [dns]
struct Dns {
  // Default: the nameservers of /etc/resolv.conf, else 127.0.0.1:53.
  std::vector<HostPort> resolvers;
  Duration timeout = std::chrono::seconds(5);  // per query attempt
  std::string prewarm;  // file of domains (one a line) resolved at start; "" = none
  // Record TTLs are clamped into [min_ttl, max_ttl]; negative answers (NXDOMAIN, no data,
  // SERVFAIL) are cached for negative_ttl.
  Duration min_ttl = std::chrono::minutes(1);
  Duration max_ttl = std::chrono::hours(24);
  Duration negative_ttl = std::chrono::minutes(5);
  // The resolvers validate DNSSEC and the path to them is trusted (loopback, or a secured
  // link): their AD bit is believed, which DANE needs (RFC 7672 §2.1; Postfix's
  // smtp_dns_support_level = dnssec). False: AD is ignored and DANE never applies.
  bool validating = false;

  friend bool operator==(const Dns&, const Dns&) = default;
};

// The accounting-log vocabulary of bounce categories (the "category" of bounced lines).
inline constexpr std::string_view kBounceCategories[] = {"bad-mailbox", "bad-domain", "quota",
                                                         "spam-block",  "policy",     "routing",
                                                         "protocol",    "transient",  "other"};

// One [[delivery.bounce_rules]] entry. `pattern` is an ECMAScript regular expression, matched
// case-insensitively against "CODE ENHANCED TEXT" of the final reply (e.g. "550 5.1.1 No such
// user"); the first matching rule wins and the operator's rules are tried before the built-in
// table. Validated (compiled) at load; the consumer compiles it again for its own use.
struct BounceRule {
  std::string pattern;
  std::string category;  // one of kBounceCategories
  std::uint32_t line = 0;

  friend bool operator==(const BounceRule&, const BounceRule&) = default;
};

// [delivery]: the outbound SMTP client and the retry policy. Reply timeouts default to the
// RFC 5321 §4.5.3.2 minimums; each is a deadline for the whole reply, not an idle time.
struct Delivery {
  std::uint16_t smtp_port = 25;
  // Waits between attempts; the last one repeats until expiry.
  std::vector<Duration> retry_schedule = {std::chrono::minutes(5),  std::chrono::minutes(10),
                                          std::chrono::minutes(30), std::chrono::hours(1),
                                          std::chrono::hours(2),    std::chrono::hours(4)};
  // A recipient still undelivered this long after arrival bounces.
  Duration expiry = std::chrono::hours(96);
  Duration connect_timeout = std::chrono::seconds(30);
  Duration greeting_timeout = std::chrono::minutes(5);    // §4.5.3.2.1 initial 220
  Duration helo_timeout = std::chrono::minutes(5);        // EHLO / HELO reply
  Duration tls_timeout = std::chrono::minutes(5);         // STARTTLS reply and handshake
  Duration mail_timeout = std::chrono::minutes(5);        // §4.5.3.2.2
  Duration rcpt_timeout = std::chrono::minutes(5);        // §4.5.3.2.3
  Duration data_init_timeout = std::chrono::minutes(2);   // §4.5.3.2.4
  Duration data_block_timeout = std::chrono::minutes(3);  // §4.5.3.2.5 a write, stalled
  Duration data_done_timeout = std::chrono::minutes(10);  // §4.5.3.2.6
  std::uint32_t max_recipients = 100;  // per outbound transaction (RFC 5321 §4.5.3.1.8)
  // A message arriving with this many Received: fields is refused (554 5.4.6 over SMTP; a
  // pickup file goes to failed/): it is looping (RFC 5321 §6.3).
  std::uint32_t max_hops = 100;
  // Recipients of bulk jobs each shard keeps dispatched and not yet final; the rest of a
  // job stays in the spool until places free (outbound::Origin).
  std::uint32_t job_window = 20'000;
  // Ready recipients a destination keeps in RAM; more go to the shard's spill files on disk
  // and come back as it sends (outbound::Backlog). 0: all in RAM.
  std::uint32_t queue_in_memory = 10'000;
  // Deferred recipients due later than this go to disk until they come within it.
  Duration queue_horizon = std::chrono::minutes(5);
  // DSN From: header (the envelope sender is always <>). Default: MAILER-DAEMON@hostname.
  std::string dsn_from;
  // NOTIFY=DELAY threshold; 0 = never send delay DSNs.
  Duration delay_dsn_after = std::chrono::hours(4);
  std::vector<BounceRule> bounce_rules;
  // A pooled connection with no work for this long is closed (QUIT).
  Duration idle_timeout = std::chrono::seconds(5);
  // Verify the certificate (chain against [tls] ca_bundle, and the MX host name) of servers
  // of destinations whose tls policy is "required", unless set to false (then "required"
  // only encrypts); [[shaping]] tls_verify overrides it per destination. Opportunistic TLS
  // never verifies (RFC 7435: any encryption beats none).
  bool tls_verify = true;
  // MTA-STS (RFC 8461): the port of the HTTPS policy host mta-sts.<domain> (443; tests
  // point it at a local server).
  std::uint16_t mta_sts_port = 443;
  // Back-off (421 / 4.7.x throttling): the first pause of the destination; it doubles
  // with each further throttle while backed off, up to 30 times this.
  Duration backoff_pause = std::chrono::minutes(1);

  friend bool operator==(const Delivery&, const Delivery&) = default;
};

enum class TlsPolicy : std::uint8_t { Opportunistic, Required, Off };
std::string_view to_string(TlsPolicy p);  // "opportunistic", "required", "off"

// One [[shaping]] entry: limits for one destination, for the node as a whole. Exactly one of
// `domain` / `mx_suffix`. The entry with domain = "*" gives the defaults that every other
// entry (and every unlisted destination) inherits key by key.
struct Shaping {
  std::string domain;     // lower-case recipient domain, or "*"
  std::string mx_suffix;  // lower-case, with a leading dot: ".google.com"
  std::uint32_t max_connections = 20;  // 0 = hold: queue, but open no connections
  std::uint32_t max_messages_per_connection = 100;
  std::optional<Rate> max_message_rate;     // unset = unlimited
  std::optional<Rate> max_connection_rate;  // unset = unlimited
  TlsPolicy tls = TlsPolicy::Opportunistic;
  // Verify the certificate when tls is "required"; unset: [delivery] tls_verify.
  std::optional<bool> tls_verify;
  // Look up and apply the destination's MTA-STS policy (RFC 8461); never for [routes].
  bool mta_sts = true;
  std::string egress;  // [[egress]] pool name; "" = the kernel's source address, node.hostname
  // DANE (RFC 7672) for this destination's MX hosts when [dns] validating; never for
  // [routes] destinations.
  bool dane = true;
  std::uint32_t line = 0;

  friend bool operator==(const Shaping&, const Shaping&) = default;
};

// One [[egress]] pool of source addresses.
struct Egress {
  std::string name;
  std::vector<IpAddress> addresses;  // at least one
  std::string ehlo;                  // default: node.hostname
  std::uint32_t line = 0;

  friend bool operator==(const Egress&, const Egress&) = default;
};

enum class DkimAlgorithm : std::uint8_t { RsaSha256, Ed25519Sha256 };
std::string_view to_string(DkimAlgorithm a);  // "rsa-sha256", "ed25519-sha256"

// One [[dkim]] signing key; (domain, selector) is unique.
struct Dkim {
  std::string domain;  // lower-case; signs mail whose From: domain is this
  std::string selector;
  std::string key_file;  // PEM private key
  DkimAlgorithm algorithm = DkimAlgorithm::RsaSha256;
  // The header fields it signs (lower case); empty: the default list (From, To, Cc,
  // Subject, Date, Message-ID, ...). From is signed whatever the list says.
  std::vector<std::string> headers;
  std::uint32_t line = 0;

  friend bool operator==(const Dkim&, const Dkim&) = default;
};

// [http]: /metrics, /api/v1/inject and the dashboard.
struct Http {
  std::optional<HostPort> address;  // unset ("") = no HTTP listener
  // Largest request accepted (headers + body); /api/v1/inject jobs beyond it get 413.
  std::uint64_t max_request_size = 64ull << 20;
  // The bearer tokens (one a line), read by salvod at start. "" = none: then the address
  // must be a loopback one and every path but GET /healthz answers 401.
  std::string token_file;
  // Origins ("https://ops.example.com", lower case, no default port) whose pages may call
  // the API besides the server's own; a request with any other Origin header gets 403.
  std::vector<std::string> allowed_origins;
  // HTTPS with [tls] certificate and key, from the first byte (no upgrade, no plain HTTP).
  bool tls = false;
  // A request must be in whole, head and body, this long after its first byte (after the
  // accept for a connection's first request, so a TLS handshake counts): else 408 and
  // close. Total time: a client sending a byte now and then does not stretch it.
  Duration request_timeout = std::chrono::seconds(10);
  // How long a complete request may wait for salvod's own work (an inject's spool commit,
  // a page every shard contributes to) before it is answered 503 (nothing done) or 504
  // (an inject whose commit is under way: it may still be queued) and the connection closes.
  Duration response_timeout = std::chrono::seconds(60);
  // Request bodies buffered by every shard's HTTP server together, at most; at least
  // max_request_size (left out: this default or max_request_size, the larger). A request
  // whose body does not fit in what is left is answered 503 with Retry-After before any of
  // it is read.
  std::uint64_t max_pending_body_bytes = 256ull << 20;

  // True when `address` is set and is a loopback address (127.0.0.0/8, ::1).
  bool loopback() const;
  friend bool operator==(const Http&, const Http&) = default;
};


// [routes]: lower-case domain -> next hops, tried in order; bypasses DNS for that domain.
using RouteTable = std::map<std::string, std::vector<HostPort>, std::less<>>;

// The whole configuration. Immutable once loaded: load_* hand out shared_ptr<const Config>,
// shared read-only between shards; a reload builds a new one (the daemon swaps pointers).
struct Config {
  Node node;
  std::vector<Listener> listen;  // none = no SMTP listener (pickup / HTTP only)
  Tls tls;
  Dns dns;
  RouteTable routes;
  Delivery delivery;
  Shaping default_shaping;       // the domain = "*" entry, or the built-in defaults
  std::vector<Shaping> shaping;  // the other entries, in file order, defaults applied
  std::vector<Egress> egress;
  std::vector<Dkim> dkim;
  Http http;

  // Lookups (all inputs lower-case, no trailing dot).
  const Egress* find_egress(std::string_view name) const;
  const std::vector<HostPort>* find_route(std::string_view domain) const;
  // The entry for exactly this domain, else nullptr.
  const Shaping* find_shaping_for_domain(std::string_view domain) const;
  // The entry with the longest mx_suffix that `mx_host` ends with, else nullptr.
  const Shaping* find_shaping_for_mx(std::string_view mx_host) const;

  friend bool operator==(const Config&, const Config&) = default;
};

using ConfigPtr = std::shared_ptr<const Config>;

// A load failure, ready to print: `message` is the whole line, e.g.
//   config: unknown key 'delivery.max_conections' (line 12)
//   config: listen[1].max_message_size: expected a size like "50MB" (line 30)
//   config: /etc/salvo/salvo.toml: No such file or directory
struct ConfigError {
  std::string message;
  std::string key;         // "listen[1].max_message_size"; "" for file and syntax errors
  std::uint32_t line = 0;  // 1-based; 0 when no line applies
};

// What load_* take from the machine; tests replace both.
struct LoadOptions {
  std::filesystem::path resolv_conf = "/etc/resolv.conf";  // [dns] resolvers default
  std::string hostname;  // [node] hostname default; "" = gethostname()
};

// Reads, parses and validates. The first problem in file order is reported.
[[nodiscard]] std::expected<ConfigPtr, ConfigError> load_file(const std::filesystem::path& path,
                                                              const LoadOptions& options = {});
// `name` stands for the file in syntax-error messages.
[[nodiscard]] std::expected<ConfigPtr, ConfigError> load_string(std::string_view text,
                                                                std::string_view name,
                                                                const LoadOptions& options = {});

// Every key the parser accepts, as "section.key" ("node.cores", "listen.address",
// "delivery.bounce_rules.pattern"); [routes] and auth_users take free-form keys and are
// listed by their own path ("routes", "listen.auth_users").
std::vector<std::string> known_keys();
// Every table the parser accepts: "node", "listen", ..., "delivery.bounce_rules".
std::vector<std::string> known_sections();

}  // namespace salvo::config
