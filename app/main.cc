// SPDX-License-Identifier: Apache-2.0
// salvod: the appliance daemon. Loads the config, locks and recovers the spool,
// starts one shard per core with its SpoolWriter and injection listeners, and stops
// gracefully on SIGTERM/SIGINT. Start-up failures: one line on stderr, exit 2.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <salvo/accounting/accounting.h>
#include <salvo/base/log.h>
#include <salvo/config/config.h>
#include <salvo/inbound/auth_budget.h>
#include <salvo/inbound/auth_users.h>
#include <salvo/inbound/client_limiter.h>
#include <salvo/inbound/injection_listener.h>
#include <salvo/inbound/pickup_watcher.h>
#include <salvo/io/engine.h>
#include <salvo/net/port_reservation.h>
#include <salvo/net/socket_address.h>
#include <salvo/net/tls.h>
#include <salvo/outbound/outbound.h>
#include <salvo/queue/verdict.h>
#include <salvo/shard/shard.h>
#include <salvo/spool/checkpoint.h>
#include <salvo/spool/recovery.h>

#include <salvo/admin/control.h>
#include <salvo/admin/http_access.h>
#include <salvo/admin/http_shared.h>
#include <salvo/admin/reload.h>
#include <salvo/admin/shard_runtime.h>

namespace {

namespace fs = std::filesystem;
using namespace salvo;

// One daemon per spool (docs/reliability.md E14). The lock lives as long as the process
// (the fd is never closed); the kernel drops it when the process dies, so a crash leaves
// no stale lock.
int lock_spool(const std::string& spool) {
  std::string path = spool + "/salvod.lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) throw std::runtime_error(path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      throw std::runtime_error("spool " + spool + " is in use by another salvod (" + path +
                               " is locked)");
    }
    throw std::runtime_error(path + ": " + std::strerror(err));
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) == 0) {
    ssize_t n = ::write(fd, pid.data(), pid.size());
    (void)n;
  }
  return fd;
}

void write_ready_file(const std::string& path, const std::vector<net::SocketAddress>& addrs) {
  std::string text = "[";
  for (std::size_t i = 0; i < addrs.size(); ++i) {
    if (i != 0) text += ",";
    text += "\"" + addrs[i].to_string() + "\"";
  }
  text += "]\n";
  std::string tmp = path + ".tmp";
  std::ofstream(tmp) << text;
  std::rename(tmp.c_str(), path.c_str());
}

// Everything built before the shards start; destroyed after they joined.
struct Daemon {
  config::ConfigPtr config;
  int lock_fd = -1;
  std::unique_ptr<net::TlsContext> tls;
  std::vector<std::unique_ptr<inbound::AuthUsers>> users;
  std::vector<std::unique_ptr<inbound::AuthBudget>> auth_budgets;
  std::vector<std::unique_ptr<inbound::ClientLimiter>> limiters;
  std::unique_ptr<inbound::ConnectionBudget> node_budget;  // [node] max_connections
  std::vector<inbound::ListenerShared> shared;
  std::vector<net::SocketAddress> addresses;
  std::optional<admin::HttpShared> http;  // [http]: address (port fixed), checks, TLS, budget
  std::unique_ptr<admin::HttpAccess> http_access;  // its tokens and checks, for every shard
  std::unique_ptr<admin::BodyBudget> http_bodies;  // [http] max_pending_body_bytes
  std::vector<net::PortReservation> reserved;
  std::unique_ptr<shard::ShardSet> shards;
  std::vector<spool::RecoveryResult> recovered;
  // Per shard: the segments its runtime scans in the background, or none (scanned here).
  std::vector<std::optional<spool::SpoolListing>> background;
  // Per shard with a background start: the index a checkpoint gave (no scan), or none.
  std::vector<std::optional<spool::RecoveryResult>> checkpoints;
  std::vector<std::optional<bool>> take_checkpoints;  // by the background thread
  std::unique_ptr<admin::RecoveryTally> tally;
  std::vector<std::string> shard_dirs;
  SystemClock clock;
  std::unique_ptr<accounting::Files> accounting;
  std::unique_ptr<inbound::PickupShared> pickup;
  std::unique_ptr<outbound::OutboundShared> outbound;
};

std::vector<std::string> read_prewarm(const std::string& path) {
  std::vector<std::string> out;
  if (path.empty()) return out;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("dns.prewarm " + path + ": cannot be read");
  std::string line;
  while (std::getline(in, line)) {
    auto hash = line.find('#');
    if (hash != std::string::npos) line.erase(hash);
    std::string d;
    for (char c : line) {
      if (c != ' ' && c != '\t' && c != '\r') d.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    if (!d.empty()) out.push_back(d);
  }
  return out;
}

void prepare_outbound(Daemon& d) {
  const config::Config& cfg = *d.config;
  auto settings = outbound::DeliverySettings::build(d.config);
  if (!settings) throw std::runtime_error(settings.error());
  auto o = std::make_unique<outbound::OutboundShared>();
  o->settings = std::move(*settings);
  o->shards = d.shards->size();
  o->spool_dirs = d.shard_dirs;
  // Not the source of truth (the spool is): wiped here (a shard of an earlier run with more
  // cores included) and by each shard as it starts.
  o->spill_dir = cfg.node.spool + "/spill";
  std::error_code spill_error;
  std::filesystem::remove_all(o->spill_dir, spill_error);
  if (spill_error) {
    throw std::runtime_error("spool " + o->spill_dir + ": " + spill_error.message());
  }
  o->hostname = cfg.node.hostname;
  o->prewarm = read_prewarm(cfg.dns.prewarm);
  // The listeners' ports are known by now (port 0 is reserved above), and listeners never
  // change on reload: delivery gets this once, like the rest of OutboundShared.
  auto interfaces = outbound::OwnListeners::interface_addresses();
  if (!interfaces) throw std::runtime_error("getifaddrs: " + interfaces.error().message());
  o->own_listeners = outbound::OwnListeners(d.addresses, std::move(*interfaces));
  o->delivering.store(d.shards->size());
  d.outbound = std::move(o);
}

void prepare(Daemon& d) {
  const config::Config& cfg = *d.config;
  const std::string& spool = cfg.node.spool;
  std::error_code ec;
  fs::create_directories(spool, ec);
  if (ec) throw std::runtime_error("spool " + spool + ": " + ec.message());
  d.lock_fd = lock_spool(spool);

  bool need_tls = cfg.http.address && cfg.http.tls;
  for (const auto& l : cfg.listen) need_tls |= l.starttls;
  if (need_tls) {
    net::TlsContextOptions to;
    to.role = net::TlsRole::Server;
    to.certificate_file = cfg.tls.certificate;
    to.key_file = cfg.tls.key;
    d.tls = std::make_unique<net::TlsContext>(to);
  }
  for (std::size_t i = 0; i < cfg.listen.size(); ++i) {
    const config::Listener& l = cfg.listen[i];
    d.users.push_back(std::make_unique<inbound::AuthUsers>(inbound::AuthUsers::from_config(l, i)));
    if (const std::size_t n = d.users.back()->plaintext(); n != 0) {
      log::warn("{}: {} plaintext password{}; store crypt(3) hashes: mkpasswd -m yescrypt",
                d.users.back()->source(), n, n == 1 ? "" : "s");
    }
    d.auth_budgets.push_back(
        std::make_unique<inbound::AuthBudget>(l.auth_failures_per_ip, l.auth_failures_per_user));
    d.limiters.push_back(std::make_unique<inbound::ClientLimiter>(l.max_connections_per_ip));
    auto addr = net::SocketAddress::parse(l.address.to_string());
    if (!addr) {
      throw std::runtime_error("listen " + l.address.to_string() + ": " +
                               addr.error().message());
    }
    if (addr->port() == 0) {
      std::string asked = addr->to_string();
      auto r = net::PortReservation::reserve(*addr);
      if (!r) throw std::runtime_error("listen " + asked + ": " + r.error().message());
      d.reserved.push_back(std::move(*r));
    }
    d.addresses.push_back(*addr);
  }
  if (cfg.http.address) {
    auto addr = net::SocketAddress::parse(cfg.http.address->to_string());
    if (!addr) {
      throw std::runtime_error("[http] address " + cfg.http.address->to_string() + ": " +
                               addr.error().message());
    }
    if (addr->port() == 0) {
      std::string asked = addr->to_string();
      auto r = net::PortReservation::reserve(*addr);
      if (!r) throw std::runtime_error("[http] address " + asked + ": " + r.error().message());
      d.reserved.push_back(std::move(*r));
    }
    // The tokens are read once, here (a rotation needs a restart, like any [http] change).
    d.http_access = std::make_unique<admin::HttpAccess>(admin::HttpAccess::from_config(cfg.http));
    d.http_bodies = std::make_unique<admin::BodyBudget>(cfg.http.max_pending_body_bytes);
    admin::HttpShared h;
    h.address = *addr;
    h.access = d.http_access.get();
    h.tls = cfg.http.tls ? d.tls.get() : nullptr;
    h.bodies = d.http_bodies.get();
    d.http = h;
  }
  if (cfg.node.max_connections != 0) {
    d.node_budget = std::make_unique<inbound::ConnectionBudget>(cfg.node.max_connections);
  }
  for (std::size_t i = 0; i < cfg.listen.size(); ++i) {
    inbound::ListenerShared s;
    s.config = &cfg.listen[i];
    s.hostname = cfg.node.hostname;
    s.tls = cfg.listen[i].starttls ? d.tls.get() : nullptr;
    s.users = d.users[i].get();
    s.auth_budget = d.auth_budgets[i].get();
    s.limiter = d.limiters[i].get();
    s.node_budget = d.node_budget.get();
    s.max_hops = cfg.delivery.max_hops;
    d.shared.push_back(std::move(s));
  }

  shard::ShardSetOptions so;
  so.count = cfg.node.cores;
  d.shards = std::make_unique<shard::ShardSet>(so);

  // Recovery (docs/spool-format.md §7). Each shard's directory is listed here, before any
  // shard loop. Where new mail can be written before the old is read (the id mark is
  // known), the shard scans its segments in the background once it takes mail; otherwise,
  // or with [node] background_recovery = false, they are scanned here.
  d.tally = std::make_unique<admin::RecoveryTally>(d.shards->size());
  for (std::uint32_t i = 0; i < d.shards->size(); ++i) {
    std::string dir = spool + "/shard-" + std::to_string(i);
    if (auto st = spool::remove_unfinished_segments(dir); !st) {
      throw std::runtime_error("spool " + dir + ": " + st.error().message());
    }
    auto listing = spool::list_spool(dir, i);
    if (!listing) {
      throw std::runtime_error("spool " + dir + ": recovery failed: " +
                               listing.error().message());
    }
    if (cfg.node.background_recovery && listing->ids_known && !listing->segments.empty()) {
      // The shard opens at once; its background thread takes the checkpoint (or scans):
      // loading one of millions of messages must not delay the listeners.
      spool::RecoveryResult empty;  // new mail only, until the scan is handed over
      empty.next_segment = listing->next_segment;
      empty.next_id = listing->next_id;
      d.recovered.push_back(std::move(empty));
      d.background.push_back(std::move(*listing));
      d.checkpoints.push_back(std::nullopt);
      d.take_checkpoints.push_back(cfg.node.checkpoint);
      d.shard_dirs.push_back(dir);
      continue;
    }
    d.take_checkpoints.push_back(std::nullopt);
    // A clean stop's checkpoint stands in for the scan when it describes exactly these
    // segments; it is removed here either way, before the shard writes anything.
    spool::CheckpointLoad ckpt = spool::take_checkpoint(*listing, cfg.node.checkpoint);
    const bool from_checkpoint = ckpt.result.has_value();
    if (cfg.node.background_recovery && from_checkpoint && !listing->segments.empty()) {
      // Ids unknown without the checkpoint: it gives them, and its index is handed over
      // as if scanned.
      spool::RecoveryResult empty;
      empty.next_segment = listing->next_segment;
      empty.next_id = ckpt.result->next_id;
      empty.report.checkpoint = ckpt.use;
      d.recovered.push_back(std::move(empty));
      d.background.push_back(std::move(*listing));
      d.checkpoints.push_back(std::move(ckpt.result));
    } else if (from_checkpoint) {
      d.recovered.push_back(std::move(*ckpt.result));
      d.background.push_back(std::nullopt);
      d.checkpoints.push_back(std::nullopt);
    } else {
      auto r = spool::recover_segments(*listing, nullptr);
      if (!r) {
        throw std::runtime_error("spool " + dir + ": recovery failed: " + r.error().message());
      }
      spool::log_report(dir, r->report);
      r->report.checkpoint = ckpt.use;
      d.recovered.push_back(std::move(*r));
      d.background.push_back(std::nullopt);
      d.checkpoints.push_back(std::nullopt);
    }
    d.shard_dirs.push_back(dir);
  }

  accounting::RotateOptions rotate;
  rotate.max_bytes = cfg.node.accounting_max_size;
  rotate.max_age = cfg.node.accounting_max_age;
  auto files = accounting::Files::open(cfg.node.log_dir, rotate, d.clock);
  if (!files) {
    throw std::runtime_error("log_dir " + cfg.node.log_dir + ": " + files.error().message());
  }
  d.accounting = std::move(*files);

  if (!cfg.node.pickup.empty()) {
    auto p = std::make_unique<inbound::PickupShared>();
    p->dir = cfg.node.pickup;
    p->hostname = cfg.node.hostname;
    p->shards = d.shards->size();
    p->limits.max_hops = cfg.delivery.max_hops;
    d.pickup = std::move(p);
  }
  prepare_outbound(d);
}

// Every connection is a descriptor: take the hard limit of open files (the unit file sets
// it high; a shell's soft 1024 would refuse connections long before [node]
// max_connections), and say so when even that is below the cap.
void raise_open_files_limit(std::uint32_t max_connections) {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return;
  if (r.rlim_cur < r.rlim_max) {
    rlimit raised = r;
    raised.rlim_cur = r.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) r = raised;
  }
  // Spool segments, deliveries, HTTP and the control socket need descriptors too; this
  // only catches the plain mistake (a shell's 1024 under a 20,000 cap).
  if (max_connections != 0 && r.rlim_cur < max_connections) {
    log::warn("open files limit {} is below [node] max_connections {}: connections beyond it "
              "are refused by the kernel (raise LimitNOFILE / ulimit -n)",
              static_cast<unsigned long long>(r.rlim_cur), max_connections);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path, level_text = "info", ready_file;
  CLI::App app{"salvod: the salvo bulk email delivery daemon"};
  app.add_option("--config", config_path, "configuration file (TOML)")->required();
  app.add_option("--log-level", level_text, "debug | info | warn | error | off (default info)");
  app.add_option("--ready-file", ready_file,
                 "once listening, write the bound listener addresses (JSON list) here");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "salvod: %s\n", e.what());
    return 2;
  }
  log::Level level{};
  if (!log::parse_level(level_text, &level)) {
    std::fprintf(stderr, "salvod: --log-level %s: expected debug, info, warn, error or off\n",
                 level_text.c_str());
    return 2;
  }
  log::init(level);

  auto loaded = config::load_file(config_path);
  if (!loaded) {
    std::fprintf(stderr, "%s\n", loaded.error().message.c_str());
    return 2;
  }

  // Signals are taken by this thread only (sigwait); the shards inherit the mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  Daemon d;
  d.config = *loaded;
  const config::Config& cfg = *d.config;
  try {
    prepare(d);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "salvod: %s\n", e.what());
    return 2;
  }
  raise_open_files_limit(cfg.node.max_connections);
  if (!cfg.node.fsync) {
    log::warn("*** [node] fsync = false: the spool is NOT durable; acknowledged mail can be "
              "lost on a crash or power failure. Benchmarks only. ***");
  }

  const std::uint32_t n = d.shards->size();
  std::vector<std::unique_ptr<admin::ShardRuntime>> runtimes(n);
  std::latch started(n);
  std::latch built(n);
  std::vector<std::unique_ptr<admin::ControlInbox>> inboxes;
  for (std::uint32_t i = 0; i < n; ++i) inboxes.push_back(std::make_unique<admin::ControlInbox>());
  std::mutex err_mu;
  std::string start_error;
  std::vector<admin::ControlInbox*> boxes;
  for (auto& b : inboxes) boxes.push_back(b.get());
  // Built before the shards: their HTTP servers render pages through it. It answers once
  // started (after every shard runs); the reloader it calls exists by then.
  std::unique_ptr<admin::Reloader> reloader;
  auto control = std::make_unique<admin::ControlServer>(
      cfg.node.control_socket, boxes, cfg.node.spool, cfg.node.log_dir, [&reloader] {
        return reloader ? reloader->reload()
                        : nlohmann::json{{"ok", false}, {"error", "salvod is starting"}};
      });
  // Cross-shard delivery messages go to the receiving shard's Outbound (dropped once it
  // is torn down at stop: the spool keeps what they described).
  outbound::Mailbox mailbox(*d.shards, [&runtimes](shard::ShardId from, outbound::Message&& m) {
    auto& rt = runtimes[shard::this_shard()->id().value()];
    if (rt && rt->outbound() != nullptr) rt->outbound()->on_message(from, std::move(m));
  });
  d.shards->start([&](shard::Shard& s) {
    std::uint32_t i = s.id().value();
    auto& rt = runtimes[i];
    rt = std::make_unique<admin::ShardRuntime>(s, cfg, std::move(d.recovered[i]), d.shard_dirs[i],
                                             d.accounting.get(), d.pickup.get(), *d.outbound,
                                             mailbox, control.get());
    rt->set_recovery(std::move(d.background[i]), d.tally.get(), std::move(d.checkpoints[i]),
                     d.take_checkpoints[i]);
    std::string why;
    auto st = rt->start(&why);
    // Every shard's delivery exists before any shard routes mail to it.
    built.arrive_and_wait();
    if (st) {
      st = rt->open(d.shared, d.addresses, d.http ? &*d.http : nullptr, &why);
    }
    if (!st) {
      std::lock_guard lock(err_mu);
      if (start_error.empty()) start_error = why;
    }
    admin::ShardRuntime* p = rt.get();
    p->attach_control(inboxes[i].get());
    s.on_stop([p] { p->begin_stop(); });
    started.count_down();
  });
  started.wait();
  d.reserved.clear();

  int rc = 0;
  if (!start_error.empty()) {
    std::fprintf(stderr, "salvod: %s\n", start_error.c_str());
    rc = 2;
  } else {
    bool background = false;
    for (const auto& b : d.background) background = background || b.has_value();
    std::string listeners;
    for (const auto& a : d.addresses) listeners += (listeners.empty() ? "" : ",") + a.to_string();
    // One parseable start-up line (tests and operators grep it).
    std::string http_at = "off";
    if (d.http) http_at = (d.http->tls != nullptr ? "https://" : "") + d.http->address.to_string();
    log::info("salvod started: shards={} engine={} features=[{}] listeners=[{}] http={} "
              "spool={} recovery={} fsync={}",
              n, d.shards->shard(shard::ShardId(0)).engine().name(),
              d.shards->shard(shard::ShardId(0)).engine().features().describe(), listeners,
              http_at, cfg.node.spool, background ? "background" : "done",
              cfg.node.fsync ? "on" : "OFF");
    if (d.http && d.http_access->token_count() == 0) {
      log::warn("[http] has no token_file: every page but /healthz answers 401 (see "
                "configs/salvo.toml)");
    }
    reloader = std::make_unique<admin::Reloader>(config_path, config::LoadOptions{}, boxes, d.config);
    std::string why;
    if (!control->start(&why)) {
      log::error("salvod: {}: salvoctl will not reach this daemon", why);
    }
    if (!ready_file.empty()) write_ready_file(ready_file, d.addresses);
    for (;;) {
      int sig = 0;
      if (sigwait(&sigs, &sig) != 0) continue;
      if (sig == SIGHUP) {
        log::info("salvod: SIGHUP: reloading {}", config_path);
        (void)reloader->reload();
        continue;
      }
      log::info("salvod: {} received: stopping (listeners closed, finishing commits)",
                sig == SIGTERM ? "SIGTERM" : "SIGINT");
      break;
    }
  }
  control->stop();
  d.shards->request_stop();
  d.shards->join();

  inbound::InboundStats total;
  inbound::PickupStats pickup;
  spool::Stats spool_stats;
  outbound::OutboundStats out;
  admin::HttpStats http;
  for (const auto& rt : runtimes) {
    if (rt) {
      http += rt->final_http_stats();
      total += rt->final_stats();
      pickup += rt->final_pickup_stats();
      spool_stats += rt->final_spool_stats();
      out += rt->final_outbound_stats();
    }
  }
  if (rc == 0) {
    log::info("salvod stopped: connections={} messages_queued={} recipients_queued={} "
              "commit_failures={} orphaned_commits={} relay_denied={} auth_ok={} auth_failed={} "
              "refused_per_ip={}",
              total.connections, total.messages_queued, total.recipients_queued,
              total.commit_failures, total.orphaned_commits, total.relay_denied, total.auth_ok, total.auth_failed,
              total.refused_per_ip);
    // Group commit at a glance (bench/load/ingest.sh reads this line).
    const auto& fs = spool_stats.fsync_latency_ns;
    const auto& per = spool_stats.messages_per_commit;
    log::info("spool stopped: commits={} messages={} bytes={} failed_batches={} "
              "msgs_per_commit_mean={:.1f} msgs_per_commit_p50={} msgs_per_commit_p99={} "
              "msgs_per_commit_max={} fsync_us_mean={:.0f} fsync_us_p50={} fsync_us_p90={} "
              "fsync_us_p99={} fsync_us_p999={} fsync_us_max={} segments_created={} "
              "segments_made_ahead={}",
              spool_stats.commits, spool_stats.messages, spool_stats.bytes,
              spool_stats.failed_batches, per.mean(), per.quantile(0.5), per.quantile(0.99),
              per.max(), fs.mean() / 1000.0, fs.quantile(0.5) / 1000, fs.quantile(0.9) / 1000,
              fs.quantile(0.99) / 1000, fs.quantile(0.999) / 1000, fs.max() / 1000,
              spool_stats.segments_created, spool_stats.segments_ahead);
    log::info("delivery stopped: dispatched={} delivered={} deferred={} bounced={} expired={} "
              "dsns={} transactions={} connections={} connect_failures={} tls_sessions={} "
              "state_errors={} read_errors={}",
              out.dispatched, out.delivered, out.deferred, out.bounced, out.expired, out.dsns,
              out.transactions, out.connections, out.connect_failures, out.tls_sessions,
              out.state_errors, out.read_errors);
    if (d.http) {
      log::info("http stopped: connections={} refused={} requests={} bad_requests={} "
                "injected_messages={} injected_recipients={} inject_failures={} "
                "unauthorized={} forbidden_host={} forbidden_origin={} unsupported_media={} "
                "request_timeouts={} body_budget={} response_timeouts={}",
                http.connections, http.refused, http.requests, http.bad_requests,
                http.injected_messages, http.injected_recipients, http.inject_failures,
                http.unauthorized, http.forbidden_host, http.forbidden_origin,
                http.unsupported_media, http.request_timeouts, http.body_budget,
                http.response_timeouts);
    }
    if (d.pickup) {
      log::info("pickup stopped: files_queued={} jobs_queued={} recipients_queued={} "
                "files_failed={} spool_retries={} rescans={}",
                pickup.files_queued, pickup.jobs_queued, pickup.recipients_queued,
                pickup.files_failed, pickup.spool_retries, pickup.rescans);
    }
  }
  return rc;
}
