// SPDX-License-Identifier: Apache-2.0
// Bad configurations: each gives exactly one line naming the key and its line, as salvod
// prints it before exiting 2.
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <salvo/config/config.h>

namespace salvo::config {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::StartsWith;

LoadOptions test_options() {
  LoadOptions o;
  o.resolv_conf = "/nonexistent/resolv.conf";
  o.hostname = "mta.test";
  return o;
}

ConfigError load_bad(std::string_view text) {
  auto r = load_string(text, "test.toml", test_options());
  EXPECT_FALSE(r.has_value()) << "loaded:\n" << text;
  return r ? ConfigError{} : r.error();
}

struct BadCase {
  const char* name;
  const char* text;
  const char* message;
};

constexpr BadCase kBadCases[] = {
    // Unknown keys, everywhere keys are fixed.
    {"unknown key", "[delivery]\nsmtp_port = 25\nmax_conections = 5\n",
     "config: unknown key 'delivery.max_conections' (line 3)"},
    {"unknown section", "\n[delivry]\nsmtp_port = 25\n", "config: unknown key 'delivry' (line 2)"},
    {"unknown top-level key", "cores = 4\n", "config: unknown key 'cores' (line 1)"},
    {"unknown key in second listener",
     "[[listen]]\naddress = \"127.0.0.1:25\"\n\n[[listen]]\naddress = \"127.0.0.1:26\"\n"
     "adress = \"x\"\n",
     "config: unknown key 'listen[1].adress' (line 6)"},
    {"unknown key in inline array entry", "shaping = [{domain = \"a.com\", max_conns = 3}]\n",
     "config: unknown key 'shaping[0].max_conns' (line 1)"},
    {"unknown key in bounce rule",
     "[[delivery.bounce_rules]]\npattern = \"x\"\ncategory = \"quota\"\ncolor = 1\n",
     "config: unknown key 'delivery.bounce_rules[0].color' (line 4)"},
    {"unknown sub-table", "[node]\ncores = 1\n[node.extra]\nx = 1\n",
     "config: unknown key 'node.extra' (line 3)"},
    {"unknown key dotted", "node.corse = 1\n", "config: unknown key 'node.corse' (line 1)"},
    {"unknown key egress", "[[egress]]\nname = \"a\"\naddresses = [\"192.0.2.1\"]\nhelo = \"x\"\n",
     "config: unknown key 'egress[0].helo' (line 4)"},
    {"unknown key dkim",
     "[[dkim]]\ndomain = \"a.com\"\nselector = \"s\"\nkey_file = \"k\"\nalgo = \"x\"\n",
     "config: unknown key 'dkim[0].algo' (line 5)"},
    {"unknown key http", "[http]\nport = 80\n", "config: unknown key 'http.port' (line 2)"},

    // Wrong shapes and types.
    {"section not a table", "node = 5\n",
     "config: node: expected a table ([node]), got an integer (line 1)"},
    {"listen as a single table", "[listen]\naddress = \"127.0.0.1:25\"\n",
     "config: listen: expected an array of tables ([[listen]]), got a table (line 1)"},
    {"array element not a table", "listen = [1]\n",
     "config: listen[0]: expected a table, got an integer (line 1)"},
    {"integer as string", "[node]\ncores = \"4\"\n",
     "config: node.cores: expected an integer, got a string (line 2)"},
    {"integer as float", "[node]\ncores = 4.0\n",
     "config: node.cores: expected an integer, got a number (line 2)"},
    {"bool as string", "[node]\nfsync = \"no\"\n",
     "config: node.fsync: expected true or false, got a string (line 2)"},
    {"background_recovery as string", "[node]\nbackground_recovery = \"yes\"\n",
     "config: node.background_recovery: expected true or false, got a string (line 2)"},
    {"checkpoint as string", "[node]\ncheckpoint = \"on\"\n",
     "config: node.checkpoint: expected true or false, got a string (line 2)"},
    {"string as int", "[node]\nspool = 5\n",
     "config: node.spool: expected a string, got an integer (line 2)"},
    {"list expected", "[[listen]]\naddress = \"127.0.0.1:25\"\nrelay_networks = \"10.0.0.0/8\"\n",
     "config: listen[0].relay_networks: expected a list of strings, got a string (line 3)"},
    {"list element type", "[dns]\nresolvers = [\"127.0.0.1\",\n  53]\n",
     "config: dns.resolvers[1]: expected a string, got an integer (line 3)"},
    {"auth_users not a table", "[[listen]]\naddress = \"127.0.0.1:25\"\nauth_users = \"a:b\"\n",
     "config: listen[0].auth_users: expected a table, got a string (line 3)"},
    {"auth_users password type",
     "[tls]\ncertificate = \"c\"\nkey = \"k\"\n[[listen]]\naddress = \"127.0.0.1:25\"\n"
     "starttls = true\nauth = [\"PLAIN\"]\nauth_users = { alice = 1 }\n",
     "config: listen[0].auth_users.alice: expected the password as a non-empty string (line 8)"},

    // Units.
    {"size",
     "[[listen]]\naddress = \"127.0.0.1:25\"\n[[listen]]\naddress = \"127.0.0.1:26\"\n"
     "max_message_size = \"50 MB\"\n",
     "config: listen[1].max_message_size: expected a size like \"50MB\" (line 5)"},
    {"size too small", "[[listen]]\naddress = \"127.0.0.1:25\"\nmax_message_size = 10\n",
     "config: listen[0].max_message_size: must be between 1000 and 4000000000 bytes, got 10 "
     "(line 3)"},
    {"min_data_rate", "[[listen]]\naddress = \"127.0.0.1:25\"\nmin_data_rate = \"fast\"\n",
     "config: listen[0].min_data_rate: expected an integer, got a string (line 3)"},
    {"session_timeout", "[[listen]]\naddress = \"127.0.0.1:25\"\nsession_timeout = 60\n",
     "config: listen[0].session_timeout: expected a duration like \"30s\" (line 3)"},
    {"auth_failures_per_ip", "[[listen]]\naddress = \"127.0.0.1:25\"\nauth_failures_per_ip = -1\n",
     "config: listen[0].auth_failures_per_ip: must be between 0 and 1000000, got -1 (line 3)"},
    {"auth_failures_per_user",
     "[[listen]]\naddress = \"127.0.0.1:25\"\nauth_failures_per_user = \"10/h\"\n",
     "config: listen[0].auth_failures_per_user: expected an integer, got a string (line 3)"},
    {"auth_failure_delay", "[[listen]]\naddress = \"127.0.0.1:25\"\nauth_failure_delay = \"1m\"\n",
     "config: listen[0].auth_failure_delay: must be at most 10s (line 3)"},
    {"negative size", "[node]\nspool_reserve = -1\n",
     "config: node.spool_reserve: expected a size like \"50MB\" (line 2)"},
    {"size overflow", "[node]\nspool_reserve = \"99999999999GiB\"\n",
     "config: node.spool_reserve: size is too large (line 2)"},
    {"duration", "[delivery]\nexpiry = \"4 days\"\n",
     "config: delivery.expiry: expected a duration like \"30s\" (line 2)"},
    {"validating not a bool", "[dns]\nvalidating = \"yes\"\n",
     "config: dns.validating: expected true or false, got a string (line 2)"},
    {"dane not a bool", "[[shaping]]\ndomain = \"*\"\ndane = 1\n",
     "config: shaping[0].dane: expected true or false, got an integer (line 3)"},
    {"duration as integer", "[dns]\ntimeout = 5\n",
     "config: dns.timeout: expected a duration like \"30s\" (line 2)"},
    {"zero duration", "[delivery]\nconnect_timeout = \"0s\"\n",
     "config: delivery.connect_timeout: must be at least 1ms (line 2)"},
    {"duration too long", "[node]\ncommit_interval = \"2s\"\n",
     "config: node.commit_interval: must be at most 1s (line 2)"},
    {"punch interval not a duration", "[node]\nspool_punch_interval = \"often\"\n",
     "config: node.spool_punch_interval: expected a duration like \"30s\" (line 2)"},
    {"no commit in flight", "[node]\ncommits_in_flight = 0\n",
     "config: node.commits_in_flight: must be between 1 and 16, got 0 (line 2)"},
    {"duration overflow", "[delivery]\nexpiry = \"999999999d\"\n",
     "config: delivery.expiry: duration is too large (line 2)"},
    {"retry element", "[delivery]\nretry_schedule = [\"5m\",\n  \"1x\"]\n",
     "config: delivery.retry_schedule[1]: expected a duration like \"10m\" (line 3)"},
    {"retry empty", "[delivery]\nretry_schedule = []\n",
     "config: delivery.retry_schedule: needs at least one interval (line 2)"},
    {"retry too short", "[delivery]\nretry_schedule = [\"10ms\"]\n",
     "config: delivery.retry_schedule[0]: must be at least 1s (line 2)"},
    {"rate", "[[shaping]]\ndomain = \"gmail.com\"\nmax_message_rate = \"500/sec\"\n",
     "config: shaping[0].max_message_rate: expected a rate like \"500/s\" or \"20000/h\" (line 3)"},
    {"zero rate", "[[shaping]]\ndomain = \"gmail.com\"\nmax_connection_rate = \"0/s\"\n",
     "config: shaping[0].max_connection_rate: expected a rate like \"500/s\" or \"20000/h\" "
     "(line 3)"},

    // Ranges and enums.
    {"negative integer", "[node]\ncores = -1\n",
     "config: node.cores: must be between 0 and 1024, got -1 (line 2)"},
    {"zero not allowed", "[[shaping]]\ndomain = \"a.com\"\nmax_messages_per_connection = 0\n",
     "config: shaping[0].max_messages_per_connection: must be between 1 and 1000000, got 0 "
     "(line 3)"},
    {"job window", "[delivery]\njob_window = 0\n",
     "config: delivery.job_window: must be between 1 and 10000000, got 0 (line 2)"},
    {"queue in memory", "[delivery]\nqueue_in_memory = -5\n",
     "config: delivery.queue_in_memory: must be between 0 and 100000000, got -5 (line 2)"},
    {"queue horizon", "[delivery]\nqueue_horizon = \"500ms\"\n",
     "config: delivery.queue_horizon: must be at least 1s (line 2)"},
    {"port", "[delivery]\nsmtp_port = 65536\n",
     "config: delivery.smtp_port: must be between 1 and 65535, got 65536 (line 2)"},
    {"tls enum", "[[shaping]]\ndomain = \"a.com\"\ntls = \"yes\"\n",
     "config: shaping[0].tls: unknown value 'yes' (opportunistic, required or off) (line 3)"},
    {"dkim algorithm",
     "[[dkim]]\ndomain = \"a.com\"\nselector = \"s\"\nkey_file = \"k\"\nalgorithm = \"rsa-sha1\"\n",
     "config: dkim[0].algorithm: unknown value 'rsa-sha1' (rsa-sha256 or ed25519-sha256) (line 5)"},
    {"dkim header name",
     "[[dkim]]\ndomain = \"a.com\"\nselector = \"s\"\nkey_file = \"k\"\nheaders = [\"from\", \"to:\"]\n",
     "config: dkim[0].headers[1]: 'to:' is not a header field name (line 5)"},
    {"dkim empty headers",
     "[[dkim]]\ndomain = \"a.com\"\nselector = \"s\"\nkey_file = \"k\"\nheaders = []\n",
     "config: dkim[0].headers: needs at least one field name (From is always signed) (line 5)"},
    {"auth mechanism", "[[listen]]\naddress = \"127.0.0.1:25\"\nauth = [\"PLAIN\", \"CRAM-MD5\"]\n",
     "config: listen[0].auth[1]: unknown mechanism 'CRAM-MD5' (PLAIN or LOGIN) (line 3)"},
    {"bounce category",
     "[[delivery.bounce_rules]]\npattern = \"full\"\ncategory = \"mailbox-full\"\n",
     "config: delivery.bounce_rules[0].category: unknown category 'mailbox-full' (one of: "
     "bad-mailbox, bad-domain, quota, spam-block, policy, routing, protocol, transient, other) "
     "(line 3)"},
    {"min_ttl above max_ttl", "[dns]\nmin_ttl = \"2h\"\nmax_ttl = \"1h\"\n",
     "config: dns.min_ttl: min_ttl (2h) is greater than max_ttl (1h) (line 2)"},
    {"max_ttl below default min", "[dns]\nmax_ttl = \"30s\"\n",
     "config: dns.max_ttl: min_ttl (1m) is greater than max_ttl (30s) (line 2)"},
    {"control socket too long",
     "[node]\ncontrol_socket = "
     "\"/run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\"\n",
     "config: node.control_socket: longer than 107 bytes, the limit of a unix socket path "
     "(line 2)"},
    {"empty spool", "[node]\nspool = \"\"\n", "config: node.spool: must not be empty (line 2)"},
    {"bad hostname", "[node]\nhostname = \"mta_1 .example\"\n",
     "config: node.hostname: 'mta_1 .example' is not a valid host name (line 2)"},

    // Addresses and networks.
    {"cidr host bits",
     "[[listen]]\naddress = \"127.0.0.1:25\"\nrelay_networks = [\"10.0.0.1/8\"]\n",
     "config: listen[0].relay_networks[0]: '10.0.0.1/8' is not a CIDR network: host bits set "
     "after the prefix length (line 3)"},
    {"cidr prefix",
     "[[listen]]\naddress = \"127.0.0.1:25\"\nrelay_networks = [\"::1/128\", "
     "\"2001:db8::/129\"]\n",
     "config: listen[0].relay_networks[1]: '2001:db8::/129' is not a CIDR network: prefix "
     "length must be 0-128 (line 3)"},
    {"address without port", "[[listen]]\naddress = \"127.0.0.1\"\n",
     "config: listen[0].address: '127.0.0.1': missing ':port' (line 2)"},
    {"address host name", "[[listen]]\naddress = \"localhost:25\"\n",
     "config: listen[0].address: 'localhost:25': expected an IP address, not a host name (line 2)"},
    {"address port range", "[[listen]]\naddress = \"[::1]:70000\"\n",
     "config: listen[0].address: '[::1]:70000': port must be 0-65535 (line 2)"},
    {"duplicate listen address",
     "[[listen]]\naddress = \"127.0.0.1:25\"\n[[listen]]\naddress = \"127.0.0.1:25\"\n",
     "config: listen[1].address: 127.0.0.1:25 is already used by listen[0] (line 4)"},
    {"missing address", "[[listen]]\nstarttls = false\n",
     "config: listen[0].address: required key missing (line 1)"},
    {"resolver host name", "[dns]\nresolvers = [\"dns.google:53\"]\n",
     "config: dns.resolvers[0]: 'dns.google:53': expected an IP address, not a host name (line 2)"},
    {"resolvers empty", "[dns]\nresolvers = []\n",
     "config: dns.resolvers: empty; leave the key out to use /etc/resolv.conf (line 2)"},
    {"route port", "[routes]\n\"example.com\" = [\"mx.example.com:99999\"]\n",
     "config: routes.\"example.com\"[0]: 'mx.example.com:99999': port must be 1-65535 (line 2)"},
    {"route not a list", "[routes]\n\"example.com\" = \"mx.example.com\"\n",
     "config: routes.\"example.com\": expected a list of next hops like [\"mx.example.net:25\"] "
     "(line 2)"},
    {"route domain", "[routes]\n\"exa mple.com\" = [\"mx.example.com\"]\n",
     "config: routes.\"exa mple.com\": not a domain name (line 2)"},
    {"route twice", "[routes]\n\"example.com\" = [\"a.test\"]\n\"EXAMPLE.com\" = [\"b.test\"]\n",
     "config: routes.\"EXAMPLE.com\": 'example.com' has two entries (domains are "
     "case-insensitive) (line 3)"},
    {"egress address", "[[egress]]\nname = \"a\"\naddresses = [\"192.0.2.300\"]\n",
     "config: egress[0].addresses[0]: '192.0.2.300' is not an IP address (line 3)"},
    {"egress no addresses", "[[egress]]\nname = \"a\"\naddresses = []\n",
     "config: egress[0].addresses: needs at least one source address (line 3)"},
    {"http address", "[http]\naddress = \"127.0.0.1\"\n",
     "config: http.address: '127.0.0.1': missing ':port' (line 2)"},
    {"http non-loopback without tokens", "[http]\naddress = \"0.0.0.0:8080\"\n",
     "config: http.token_file: required when http.address ('0.0.0.0:8080') is not a loopback "
     "address (line 2)"},
    {"http v6 any without tokens", "[http]\nmax_request_size = \"1MiB\"\naddress = \"[::]:8080\"\n",
     "config: http.token_file: required when http.address ('[::]:8080') is not a loopback "
     "address (line 3)"},
    {"http empty token_file off loopback",
     "[http]\naddress = \"192.0.2.10:8080\"\ntoken_file = \"\"\n",
     "config: http.token_file: required when http.address ('192.0.2.10:8080') is not a "
     "loopback address (line 3)"},
    {"http origin star", "[http]\nallowed_origins = [\"*\"]\n",
     "config: http.allowed_origins[0]: '*': '*' would let any web page use the API; list the "
     "origins (line 2)"},
    {"http origin with path",
     "[http]\nallowed_origins = [\"https://ops.example.com\",\n  \"https://x.example/\"]\n",
     "config: http.allowed_origins[1]: 'https://x.example/': an origin has no path, query or "
     "user name: write SCHEME://HOST[:PORT] (line 3)"},
    {"http origin scheme", "[http]\nallowed_origins = [\"ftp://ops.example.com\"]\n",
     "config: http.allowed_origins[0]: 'ftp://ops.example.com': the scheme must be http or "
     "https (line 2)"},
    {"http origin bare host", "[http]\nallowed_origins = [\"ops.example.com\"]\n",
     "config: http.allowed_origins[0]: 'ops.example.com': expected http://HOST[:PORT] or "
     "https://... (line 2)"},
    {"http origin null", "[http]\nallowed_origins = [\"null\"]\n",
     "config: http.allowed_origins[0]: 'null': 'null' is the origin of sandboxed and local "
     "pages (line 2)"},
    {"http origin bad port", "[http]\nallowed_origins = [\"http://ops.example.com:99999\"]\n",
     "config: http.allowed_origins[0]: 'http://ops.example.com:99999': port must be 1-65535 "
     "(line 2)"},
    {"http origins not a list", "[http]\nallowed_origins = \"https://ops.example.com\"\n",
     "config: http.allowed_origins: expected a list of strings, got a string (line 2)"},
    {"http tls not a bool", "[http]\ntls = \"yes\"\n",
     "config: http.tls: expected true or false, got a string (line 2)"},
    {"http request_timeout zero", "[http]\nrequest_timeout = \"0s\"\n",
     "config: http.request_timeout: must be at least 100ms (line 2)"},
    {"http request_timeout not a duration", "[http]\nrequest_timeout = 10\n",
     "config: http.request_timeout: expected a duration like \"30s\" (line 2)"},
    {"http request_timeout too long", "[http]\n\nrequest_timeout = \"2h\"\n",
     "config: http.request_timeout: must be at most 1h (line 3)"},
    {"http response_timeout zero", "[http]\nresponse_timeout = \"0ms\"\n",
     "config: http.response_timeout: must be at least 1ms (line 2)"},
    {"http body budget not a size", "[http]\nmax_pending_body_bytes = \"lots\"\n",
     "config: http.max_pending_body_bytes: expected a size like \"50MB\" (line 2)"},
    {"http body budget below one request",
     "[http]\nmax_request_size = \"64MiB\"\nmax_pending_body_bytes = \"16MiB\"\n",
     "config: http.max_pending_body_bytes: 16777216 bytes is less than http.max_request_size "
     "(67108864 bytes): a request that large could never be taken (line 3)"},
    {"dsn_from", "[delivery]\ndsn_from = \"bounces\"\n",
     "config: delivery.dsn_from: expected an address like \"MAILER-DAEMON@example.com\" (line 2)"},

    // Relations between keys.
    {"duplicate egress name",
     "[[egress]]\nname = \"pool\"\naddresses = [\"192.0.2.1\"]\n\n"
     "[[egress]]\nname = \"pool\"\naddresses = [\"192.0.2.2\"]\n",
     "config: egress[1].name: duplicate egress name 'pool', first defined at line 1 (line 6)"},
    {"unknown egress", "[[shaping]]\ndomain = \"a.com\"\negress = \"pool9\"\n",
     "config: shaping[0].egress: no [[egress]] named 'pool9' (line 3)"},
    {"unknown egress in star entry", "[[shaping]]\ndomain = \"*\"\n\negress = \"pool9\"\n",
     "config: shaping[0].egress: no [[egress]] named 'pool9' (line 4)"},
    {"shaping needs a match", "[[shaping]]\nmax_connections = 3\n",
     "config: shaping[0]: needs domain or mx_suffix (line 1)"},
    {"shaping both", "[[shaping]]\ndomain = \"a.com\"\nmx_suffix = \".google.com\"\n",
     "config: shaping[0].mx_suffix: give domain or mx_suffix, not both (line 3)"},
    {"shaping duplicate", "[[shaping]]\ndomain = \"a.com\"\n[[shaping]]\ndomain = \"A.com\"\n",
     "config: shaping[1].domain: 'a.com' already has an entry at line 1 (line 4)"},
    {"two star entries", "[[shaping]]\ndomain = \"*\"\n[[shaping]]\ndomain = \"*\"\n",
     "config: shaping[1].domain: a second domain = \"*\" entry (the first is shaping[0]) (line 4)"},
    {"auth users both",
     "[tls]\ncertificate = \"c\"\nkey = \"k\"\n[[listen]]\naddress = \"127.0.0.1:25\"\n"
     "starttls = true\nauth = [\"PLAIN\"]\nauth_users = { a = \"b\" }\n"
     "auth_users_file = \"/etc/salvo/users\"\n",
     "config: listen[0].auth_users_file: auth_users and auth_users_file are mutually exclusive "
     "(line 9)"},
    {"auth without starttls",
     "[[listen]]\naddress = \"127.0.0.1:25\"\nauth = [\"PLAIN\"]\nauth_users = { a = \"b\" }\n",
     "config: listen[0].auth: AUTH is offered only after STARTTLS; set starttls = true (line 3)"},
    {"auth without users",
     "[tls]\ncertificate = \"c\"\nkey = \"k\"\n[[listen]]\naddress = \"127.0.0.1:25\"\n"
     "starttls = true\nauth = [\"LOGIN\"]\n",
     "config: listen[0].auth: needs auth_users or auth_users_file (line 7)"},
    {"auth listed twice", "[[listen]]\naddress = \"127.0.0.1:25\"\nauth = [\"PLAIN\", \"plain\"]\n",
     "config: listen[0].auth[1]: 'plain' is listed twice (line 3)"},
    {"users without auth", "[[listen]]\naddress = \"127.0.0.1:25\"\nauth_users_file = \"/u\"\n",
     "config: listen[0].auth_users_file: users given but auth is empty; list the mechanisms, "
     "e.g. auth = [\"PLAIN\"] (line 3)"},
    {"starttls without certificate", "[[listen]]\naddress = \"127.0.0.1:25\"\nstarttls = true\n",
     "config: listen[0].starttls: needs [tls] certificate and key (line 3)"},
    {"http tls without certificate", "[http]\naddress = \"127.0.0.1:8443\"\ntls = true\n",
     "config: http.tls: needs [tls] certificate and key (line 3)"},
    {"certificate without key", "[tls]\ncertificate = \"/c.pem\"\n",
     "config: tls.certificate: needs tls.key as well (line 2)"},
    {"dkim selector", "[[dkim]]\ndomain = \"a.com\"\nselector = \"s 1\"\nkey_file = \"k\"\n",
     "config: dkim[0].selector: 's 1' is not a valid selector (dot-separated labels) (line 3)"},
    {"shaping domain", "[[shaping]]\ndomain = \"*.example.com\"\n",
     "config: shaping[0].domain: '*.example.com' is not a domain name (line 2)"},
    {"dkim missing key_file", "[[dkim]]\ndomain = \"a.com\"\nselector = \"s\"\n",
     "config: dkim[0].key_file: required key missing (line 1)"},
    {"dkim duplicate selector",
     "[[dkim]]\ndomain = \"a.com\"\nselector = \"s\"\nkey_file = \"k\"\n"
     "[[dkim]]\ndomain = \"A.com\"\nselector = \"s\"\nkey_file = \"k2\"\n",
     "config: dkim[1].selector: 's' for 'a.com' is already defined at line 1 (line 7)"},
    {"bounce rule missing pattern", "[[delivery.bounce_rules]]\ncategory = \"quota\"\n",
     "config: delivery.bounce_rules[0].pattern: required key missing (line 1)"},

    // The first problem in file order wins, whatever the section order in the parser.
    {"first by line", "[delivery]\nsmtp_port = 0\n[node]\ncores = -1\n",
     "config: delivery.smtp_port: must be between 1 and 65535, got 0 (line 2)"},
    {"first by line 2", "[node]\ncores = -1\n[delivery]\nsmtp_prot = 0\n",
     "config: node.cores: must be between 0 and 1024, got -1 (line 2)"},
};

class BadConfig : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfig, GivesOneLineNamingKeyAndLine) {
  const auto& c = GetParam();
  const auto e = load_bad(c.text);
  EXPECT_EQ(e.message, c.message) << "config:\n" << c.text;
  EXPECT_EQ(e.message.find('\n'), std::string::npos);
}

std::string case_name(const ::testing::TestParamInfo<BadCase>& param_info) {
  std::string n = param_info.param.name;
  for (auto& ch : n) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return n;
}

INSTANTIATE_TEST_SUITE_P(Table, BadConfig, ::testing::ValuesIn(kBadCases), case_name);

TEST(ConfigError, CarriesKeyAndLine) {
  const auto e = load_bad("[node]\n\ncores = -1\n");
  EXPECT_EQ(e.key, "node.cores");
  EXPECT_EQ(e.line, 3u);
}

TEST(ConfigError, TomlSyntax) {
  const auto e = load_bad("[node]\ncores = = 4\n");
  EXPECT_THAT(e.message, StartsWith("config: test.toml: "));
  EXPECT_THAT(e.message, EndsWith("(line 2)"));
  EXPECT_EQ(e.line, 2u);
  EXPECT_EQ(e.message.find('\n'), std::string::npos);
  const auto dup = load_bad("[node]\ncores = 1\ncores = 2\n");
  EXPECT_THAT(dup.message, StartsWith("config: test.toml: "));
  EXPECT_THAT(dup.message, EndsWith("(line 3)"));
  const auto unterminated = load_bad("[delivery]\nretry_schedule = [\"5m\",\n");
  EXPECT_THAT(unterminated.message, StartsWith("config: test.toml: "));
  const auto binary = load_bad(std::string_view("a = \"\xff\"\n", 7));
  EXPECT_THAT(binary.message, StartsWith("config: test.toml: "));
}

TEST(ConfigError, BadRegex) {
  const auto e =
      load_bad("[[delivery.bounce_rules]]\npattern = \"(unclosed\"\ncategory = \"quota\"\n");
  EXPECT_THAT(
      e.message,
      StartsWith("config: delivery.bounce_rules[0].pattern: not a valid regular expression"));
  EXPECT_THAT(e.message, EndsWith("(line 2)"));
}

TEST(ConfigError, UnreadableFile) {
  auto missing = load_file("/nonexistent/salvo.toml", test_options());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message, "config: /nonexistent/salvo.toml: No such file or directory");
  auto dir = load_file("/tmp", test_options());
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.error().message, "config: /tmp: Is a directory");
}

TEST(ConfigError, FileSyntaxErrorNamesTheFile) {
  char path[] = "/tmp/salvo-config-test-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string text = "[node]\n\n[node]\n";
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  auto r = load_file(path, test_options());
  unlink(path);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, StartsWith(std::string("config: ") + path + ": "));
  EXPECT_THAT(r.error().message, HasSubstr("(line 3)"));
}

}  // namespace
}  // namespace salvo::config
