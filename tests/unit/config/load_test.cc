// SPDX-License-Identifier: Apache-2.0
// load_string / load_file on good input: the reference config, defaults, every section's
// typed result, inheritance from the "*" shaping entry, and the lookups.
#include <fstream>
#include <set>
#include <sstream>
#include <unistd.h>

#include <gtest/gtest.h>
#include <toml++/toml.h>

#include <salvo/config/config.h>

namespace salvo::config {
namespace {

using namespace std::chrono_literals;

const std::filesystem::path kReference = SALVO_SOURCE_DIR "/configs/salvo.toml";

LoadOptions test_options() {
  LoadOptions o;
  o.resolv_conf = "/nonexistent/resolv.conf";
  o.hostname = "mta.test";
  return o;
}

ConfigPtr load_ok(std::string_view text, const LoadOptions& options = test_options()) {
  auto r = load_string(text, "test.toml", options);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
  return r ? *r : std::make_shared<const Config>();
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The reference with every "#key = ..." / "#[[table]]" example line switched on.
std::string uncomment_examples(const std::string& text) {
  std::istringstream in(text);
  std::string out;
  for (std::string line; std::getline(in, line);) {
    if (line.size() >= 2 && line[0] == '#' && line[1] != ' ' && line[1] != '#' && line[1] != '-') {
      line.erase(0, 1);
    }
    out += line;
    out += '\n';
  }
  return out;
}

void collect_paths(const toml::table& t, const std::string& prefix, std::set<std::string>& out) {
  for (auto&& [k, v] : t) {
    const std::string path =
        prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    out.insert(path);
    if (const auto* sub = v.as_table(); sub != nullptr && !sub->is_inline()) {
      collect_paths(*sub, path, out);
    } else if (const auto* a = v.as_array(); a != nullptr && a->is_array_of_tables()) {
      for (const auto& e : *a) collect_paths(*e.as_table(), path, out);
    }
  }
}

TEST(Reference, LoadsFromFile) {
  auto r = load_file(kReference, test_options());
  ASSERT_TRUE(r.has_value()) << r.error().message;
}

TEST(Reference, AsShippedItSetsExactlyTheDefaults) {
  auto reference = load_ok(read_text(kReference));
  auto defaults = load_ok("");
  EXPECT_TRUE(*reference == *defaults)
      << "an active line of configs/salvo.toml differs from the built-in default";
}

TEST(Reference, ExamplesLoadWhenUncommented) {
  auto text = uncomment_examples(read_text(kReference));
  auto c = load_ok(text);
  EXPECT_EQ(c->listen.size(), 2u);
  EXPECT_EQ(c->shaping.size(), 1u);
  EXPECT_EQ(c->default_shaping.domain, "*");
  EXPECT_EQ(c->egress.size(), 1u);
  EXPECT_EQ(c->dkim.size(), 1u);
  EXPECT_EQ(c->delivery.bounce_rules.size(), 1u);
  EXPECT_EQ(c->routes.size(), 1u);
  EXPECT_TRUE(c->http.address.has_value());
}

// Docs cannot drift: every key the parser knows is written in the reference (as an
// active line or an example), and loading it proves no key there is unknown.
TEST(Reference, DocumentsEveryKnownKey) {
  const auto doc = toml::parse(uncomment_examples(read_text(kReference)));
  std::set<std::string> present;
  collect_paths(doc, "", present);
  for (const auto& key : known_keys()) {
    EXPECT_TRUE(present.count(key)) << key << " is not documented in configs/salvo.toml";
  }
  for (const auto& section : known_sections()) {
    EXPECT_TRUE(present.count(section)) << "[" << section << "] is missing from salvo.toml";
  }
  EXPECT_GT(known_keys().size(), 60u);
}

TEST(Load, Defaults) {
  auto c = load_ok("");
  EXPECT_EQ(c->node.hostname, "mta.test");
  EXPECT_EQ(c->node.cores, 0u);
  EXPECT_EQ(c->node.spool, "/var/spool/salvo");
  EXPECT_EQ(c->node.pickup, "");
  EXPECT_TRUE(c->node.fsync);
  EXPECT_TRUE(c->node.background_recovery);
  EXPECT_TRUE(c->node.checkpoint);
  EXPECT_EQ(c->node.spool_segment_size, 64'000'000u);
  EXPECT_EQ(c->node.spool_reserve, 1'000'000'000u);
  EXPECT_EQ(c->node.spool_punch_interval, std::chrono::seconds(30));
  EXPECT_EQ(c->node.commit_interval, Duration(0));
  EXPECT_EQ(c->node.commits_in_flight, 2u);
  EXPECT_TRUE(c->listen.empty());
  EXPECT_EQ(c->tls.certificate, "");
  ASSERT_EQ(c->dns.resolvers.size(), 1u);  // no resolv.conf: what glibc does
  EXPECT_EQ(c->dns.resolvers[0].to_string(), "127.0.0.1:53");
  EXPECT_EQ(c->dns.min_ttl, 1min);
  EXPECT_FALSE(c->dns.validating);
  EXPECT_TRUE(c->default_shaping.dane);
  EXPECT_EQ(c->delivery.smtp_port, 25);
  EXPECT_EQ(c->delivery.retry_schedule.size(), 6u);
  EXPECT_EQ(c->delivery.expiry, 96h);
  EXPECT_EQ(c->delivery.job_window, 20'000u);
  EXPECT_EQ(c->delivery.queue_in_memory, 10'000u);
  EXPECT_EQ(c->delivery.queue_horizon, 5min);
  // RFC 5321 §4.5.3.2 minimums.
  EXPECT_EQ(c->delivery.greeting_timeout, 5min);
  EXPECT_EQ(c->delivery.mail_timeout, 5min);
  EXPECT_EQ(c->delivery.rcpt_timeout, 5min);
  EXPECT_EQ(c->delivery.data_init_timeout, 2min);
  EXPECT_EQ(c->delivery.data_block_timeout, 3min);
  EXPECT_EQ(c->delivery.data_done_timeout, 10min);
  EXPECT_EQ(c->delivery.dsn_from, "MAILER-DAEMON@mta.test");
  EXPECT_EQ(c->default_shaping.max_connections, 20u);
  EXPECT_EQ(c->default_shaping.tls, TlsPolicy::Opportunistic);
  EXPECT_FALSE(c->default_shaping.max_message_rate.has_value());
  EXPECT_FALSE(c->http.address.has_value());
}

TEST(Load, MachineDefaults) {
  char dir_template[] = "/tmp/salvo-config-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::filesystem::path dir = dir_template;
  std::ofstream(dir / "resolv.conf") << "nameserver 192.0.2.53\nnameserver 2001:db8::53\n";
  LoadOptions o;
  o.resolv_conf = dir / "resolv.conf";
  auto c = load_ok("", o);
  ASSERT_EQ(c->dns.resolvers.size(), 2u);
  EXPECT_EQ(c->dns.resolvers[1].to_string(), "[2001:db8::53]:53");
  EXPECT_FALSE(c->node.hostname.empty());  // gethostname()
  std::filesystem::remove_all(dir);
}

TEST(Load, FullListener) {
  auto c = load_ok(R"(
[tls]
certificate = "/etc/salvo/cert.pem"
key = "/etc/salvo/key.pem"

[[listen]]
address = "[::]:587"
starttls = true
relay_networks = ["10.0.0.0/8", "2001:db8::/32"]
auth = ["plain", "LOGIN"]
auth_users = { alice = "s3cret", "bob@example.com" = "pw" }
max_message_size = "25MB"
max_recipients = 500
max_connections_per_ip = 10
idle_timeout = "30s"
command_timeout = "1m"
data_timeout = "2m"
min_data_rate = 1000
session_timeout = "0s"
hard_error_limit = 5
auth_failures_per_ip = 0
auth_failures_per_user = 3
auth_failure_delay = "250ms"

[[listen]]
address = "127.0.0.1:0"
)");
  ASSERT_EQ(c->listen.size(), 2u);
  const auto& l = c->listen[0];
  EXPECT_EQ(l.address, (HostPort{"::", 587}));
  EXPECT_TRUE(l.starttls);
  ASSERT_EQ(l.relay_networks.size(), 2u);
  EXPECT_TRUE(l.relay_networks[0].contains("10.9.8.7"));
  EXPECT_EQ(l.auth, (std::vector{AuthMechanism::Plain, AuthMechanism::Login}));
  EXPECT_EQ(l.auth_users.at("bob@example.com"), "pw");
  EXPECT_EQ(l.max_message_size, 25'000'000u);
  EXPECT_EQ(l.max_recipients, 500u);
  EXPECT_EQ(l.max_connections_per_ip, 10u);
  EXPECT_EQ(l.idle_timeout, 30s);
  EXPECT_EQ(l.command_timeout, 1min);
  EXPECT_EQ(l.data_timeout, 2min);
  EXPECT_EQ(l.min_data_rate, 1000u);
  EXPECT_EQ(l.session_timeout, 0s);  // no limit
  EXPECT_EQ(c->listen[1].min_data_rate, 500u);
  EXPECT_EQ(c->listen[1].session_timeout, 1h);
  EXPECT_EQ(l.hard_error_limit, 5u);
  EXPECT_EQ(l.auth_failures_per_ip, 0u);  // no limit
  EXPECT_EQ(l.auth_failures_per_user, 3u);
  EXPECT_EQ(l.auth_failure_delay, 250ms);
  EXPECT_EQ(c->listen[1].auth_failures_per_ip, 30u);
  EXPECT_EQ(c->listen[1].auth_failures_per_user, 10u);
  EXPECT_EQ(c->listen[1].auth_failure_delay, 1s);
  EXPECT_EQ(l.line, 6u);
  EXPECT_EQ(c->listen[1].address.port, 0);
  EXPECT_EQ(c->listen[1].relay_networks, Listener::default_relay_networks());
  EXPECT_TRUE(c->listen[1].auth.empty());
}

TEST(Load, DeliveryRoutesAndBounceRules) {
  auto c = load_ok(R"(
[delivery]
smtp_port = 2525
retry_schedule = ["1s", "30s", "4d"]
expiry = "1h"
delay_dsn_after = "0s"
dsn_from = "postmaster@bounces.example.com"
job_window = 50
queue_in_memory = 0
queue_horizon = "1h"

[[delivery.bounce_rules]]
pattern = "mailbox (is )?full"
category = "quota"

[routes]
"Example.COM" = ["127.0.0.2", "[::1]:26", "MX.example.net"]
"smart.test." = ["10.0.0.1:587"]
)");
  EXPECT_EQ(c->delivery.retry_schedule, (std::vector<Duration>{1s, 30s, 96h}));
  EXPECT_EQ(c->delivery.expiry, 1h);
  EXPECT_EQ(c->delivery.delay_dsn_after, Duration(0));
  EXPECT_EQ(c->delivery.dsn_from, "postmaster@bounces.example.com");
  EXPECT_EQ(c->delivery.job_window, 50u);
  EXPECT_EQ(c->delivery.queue_in_memory, 0u) << "0: everything in RAM";
  EXPECT_EQ(c->delivery.queue_horizon, 1h);
  ASSERT_EQ(c->delivery.bounce_rules.size(), 1u);
  EXPECT_EQ(c->delivery.bounce_rules[0].category, "quota");
  const auto* hops = c->find_route("example.com");
  ASSERT_NE(hops, nullptr);
  ASSERT_EQ(hops->size(), 3u);
  EXPECT_EQ((*hops)[0], (HostPort{"127.0.0.2", 2525}));  // port from smtp_port
  EXPECT_EQ((*hops)[1], (HostPort{"::1", 26}));
  EXPECT_EQ((*hops)[2], (HostPort{"mx.example.net", 2525}));
  EXPECT_NE(c->find_route("smart.test"), nullptr);
  EXPECT_EQ(c->find_route("other.test"), nullptr);
}

TEST(Load, ShapingInheritsFromStarEntry) {
  auto c = load_ok(R"(
[[shaping]]
domain = "Gmail.com"
max_messages_per_connection = 10

[[shaping]]
domain = "*"
max_connections = 5
max_message_rate = "100/s"
tls = "required"
egress = "pool-a"
dane = false

[[shaping]]
mx_suffix = "google.com"
max_connections = 50
tls = "off"
egress = ""
dane = true

[[shaping]]
mx_suffix = ".l.google.com"
max_connection_rate = "20000/h"

[[egress]]
name = "pool-a"
addresses = ["192.0.2.10", "2001:db8::10"]

[[egress]]
name = "pool-b"
addresses = ["192.0.2.20"]
ehlo = "Out-B.example.com"
)");
  EXPECT_EQ(c->default_shaping.max_connections, 5u);
  ASSERT_EQ(c->shaping.size(), 3u);
  const auto* gmail = c->find_shaping_for_domain("gmail.com");
  ASSERT_NE(gmail, nullptr);
  EXPECT_EQ(gmail->max_connections, 5u);  // inherited
  EXPECT_EQ(gmail->max_messages_per_connection, 10u);
  EXPECT_EQ(gmail->max_message_rate, (Rate{100, 1s}));
  EXPECT_EQ(gmail->tls, TlsPolicy::Required);
  EXPECT_EQ(gmail->egress, "pool-a");
  EXPECT_FALSE(gmail->dane);  // inherited
  EXPECT_TRUE(c->default_shaping.dane == false);
  EXPECT_EQ(gmail->line, 2u);
  EXPECT_EQ(c->find_shaping_for_domain("yahoo.com"), nullptr);
  const auto* google = c->find_shaping_for_mx("mx1.google.com.");
  ASSERT_NE(google, nullptr);
  EXPECT_EQ(google->mx_suffix, ".google.com");
  EXPECT_EQ(google->max_connections, 50u);
  EXPECT_EQ(google->tls, TlsPolicy::Off);
  EXPECT_EQ(google->egress, "");
  EXPECT_TRUE(google->dane);
  EXPECT_EQ(c->find_shaping_for_mx("google.com"), google);
  const auto* longest = c->find_shaping_for_mx("aspmx.l.google.com");
  ASSERT_NE(longest, nullptr);
  EXPECT_EQ(longest->mx_suffix, ".l.google.com");
  EXPECT_EQ(longest->max_connection_rate, (Rate{20000, 1h}));
  EXPECT_EQ(c->find_shaping_for_mx("notgoogle.com"), nullptr);
  ASSERT_NE(c->find_egress("pool-b"), nullptr);
  EXPECT_EQ(c->find_egress("pool-b")->ehlo, "out-b.example.com");
  EXPECT_EQ(c->find_egress("pool-a")->ehlo, "mta.test");  // node.hostname
  EXPECT_EQ(c->find_egress("pool-a")->addresses[1].to_string(), "2001:db8::10");
  EXPECT_EQ(c->find_egress("pool-c"), nullptr);
}

TEST(Load, NodeDnsDkimHttp) {
  auto c = load_ok(R"(
[node]
hostname = "MTA1.Example.com"
cores = 4
spool = "spool"
pickup = "pickup"
fsync = false
background_recovery = false
checkpoint = false
spool_segment_size = "128MiB"
spool_reserve = 0
spool_punch_interval = "0s"
commit_interval = "0s"
commit_max_messages = 1
commit_max_bytes = 1048576
commits_in_flight = 3

[dns]
resolvers = ["127.0.0.53", "[::1]:5353"]
timeout = "500ms"
validating = true
min_ttl = "0s"
max_ttl = "1h"
negative_ttl = "30s"

[[dkim]]
domain = "Example.com"
selector = "s1"
key_file = "/k/rsa.pem"

[[dkim]]
domain = "example.com"
selector = "ed1"
key_file = "/k/ed.pem"
algorithm = "ed25519-sha256"

[http]
address = "127.0.0.1:8080"
)");
  EXPECT_EQ(c->node.hostname, "mta1.example.com");
  EXPECT_EQ(c->node.cores, 4u);
  EXPECT_FALSE(c->node.fsync);
  EXPECT_FALSE(c->node.background_recovery);
  EXPECT_FALSE(c->node.checkpoint);
  EXPECT_EQ(c->node.spool_segment_size, 128u << 20);
  EXPECT_EQ(c->node.spool_reserve, 0u);
  EXPECT_EQ(c->node.spool_punch_interval, Duration(0));
  EXPECT_EQ(c->node.commit_interval, Duration(0));
  EXPECT_EQ(c->node.commit_max_bytes, 1u << 20);
  EXPECT_EQ(c->node.commits_in_flight, 3u);
  EXPECT_EQ(c->delivery.dsn_from, "MAILER-DAEMON@mta1.example.com");
  ASSERT_EQ(c->dns.resolvers.size(), 2u);
  EXPECT_EQ(c->dns.resolvers[0].to_string(), "127.0.0.53:53");
  EXPECT_EQ(c->dns.resolvers[1].to_string(), "[::1]:5353");
  EXPECT_EQ(c->dns.timeout, 500ms);
  EXPECT_TRUE(c->dns.validating);
  ASSERT_EQ(c->dkim.size(), 2u);
  EXPECT_EQ(c->dkim[0].domain, "example.com");
  EXPECT_EQ(c->dkim[0].algorithm, DkimAlgorithm::RsaSha256);
  EXPECT_EQ(c->dkim[1].algorithm, DkimAlgorithm::Ed25519Sha256);
  EXPECT_EQ(to_string(c->dkim[1].algorithm), "ed25519-sha256");
  EXPECT_EQ(c->http.address->to_string(), "127.0.0.1:8080");
}

TEST(Load, HttpTokenFileAndAllowedOrigins) {
  ConfigPtr c = load_ok(R"(
[http]
address = "0.0.0.0:8080"
token_file = "/etc/salvo/http-tokens"
allowed_origins = ["HTTPS://Ops.Example.COM:443", "http://grafana.example.net:3000",
                   "http://[2001:DB8::1]:80", "http://192.0.2.7:8080"]
)");
  EXPECT_EQ(c->http.token_file, "/etc/salvo/http-tokens");
  EXPECT_FALSE(c->http.loopback());
  // As browsers send them: lower case, the scheme's default port left out.
  EXPECT_EQ(c->http.allowed_origins,
            (std::vector<std::string>{"https://ops.example.com", "http://grafana.example.net:3000",
                                      "http://[2001:db8::1]", "http://192.0.2.7:8080"}));
  // Loopback addresses need no token file (every page but /healthz then answers 401).
  for (const char* address : {"127.0.0.1:8080", "127.9.8.7:0", "[::1]:8080"}) {
    ConfigPtr l = load_ok(std::string("[http]\naddress = \"") + address + "\"\n");
    EXPECT_TRUE(l->http.loopback()) << address;
    EXPECT_TRUE(l->http.token_file.empty());
    EXPECT_TRUE(l->http.allowed_origins.empty());
  }
  EXPECT_FALSE(load_ok("[http]\n")->http.loopback());  // no address at all
}

TEST(Load, HttpTlsTimeoutsAndBodyBudget) {
  ConfigPtr d = load_ok("");
  EXPECT_FALSE(d->http.tls);
  EXPECT_EQ(d->http.request_timeout, 10s);
  EXPECT_EQ(d->http.response_timeout, 60s);
  EXPECT_EQ(d->http.max_pending_body_bytes, 256u << 20);
  ConfigPtr c = load_ok(R"(
[tls]
certificate = "/etc/salvo/cert.pem"
key = "/etc/salvo/key.pem"

[http]
address = "127.0.0.1:8443"
tls = true
request_timeout = "1500ms"
response_timeout = "2m"
max_request_size = "1MiB"
max_pending_body_bytes = "3MiB"
)");
  EXPECT_TRUE(c->http.tls);
  EXPECT_EQ(c->http.request_timeout, 1500ms);
  EXPECT_EQ(c->http.response_timeout, 120s);
  EXPECT_EQ(c->http.max_pending_body_bytes, 3u << 20);
  // Equal to one request is enough; left out, the budget grows with max_request_size.
  EXPECT_EQ(load_ok("[http]\nmax_request_size = \"1GiB\"\nmax_pending_body_bytes = \"1GiB\"\n")
                ->http.max_pending_body_bytes,
            1u << 30);
  EXPECT_EQ(load_ok("[http]\nmax_request_size = \"1GiB\"\n")->http.max_pending_body_bytes,
            1u << 30);
}

TEST(Load, ResultIsSharedAndImmutable) {
  ConfigPtr c = load_ok("[node]\ncores = 2\n");
  static_assert(std::is_same_v<decltype(c), std::shared_ptr<const Config>>);
  auto copy = c;
  EXPECT_EQ(copy.use_count(), 2);
  EXPECT_EQ(to_string(TlsPolicy::Required), "required");
  EXPECT_EQ(to_string(AuthMechanism::Login), "LOGIN");
}

}  // namespace
}  // namespace salvo::config
