// SPDX-License-Identifier: Apache-2.0
// salvoctl: the operator CLI. Finds salvod's control socket through its config
// (or --socket), sends one JSON request line, prints the answer as a table (or --json).
// Exit: 0 done, 1 the daemon refused or is unreachable, 2 bad usage.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <salvo/config/config.h>

namespace {

using nlohmann::json;

struct Failure {
  std::string message;
};

json call(const std::string& path, const json& request) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Failure{std::string("socket: ") + std::strerror(errno)};
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) throw Failure{path + ": path too long"};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    ::close(fd);
    if (err == ENOENT || err == ECONNREFUSED) {
      throw Failure{"salvod is not running (nothing listens on " + path + ")"};
    }
    if (err == EACCES || err == EPERM) {
      throw Failure{"cannot open " + path + ": permission denied (run as the salvo user or root)"};
    }
    throw Failure{"cannot connect to " + path + ": " + std::strerror(err)};
  }
  timeval tv{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string line = request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    ::close(fd);
    throw Failure{"cannot send to " + path + ": " + std::strerror(errno)};
  }
  std::string reply;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    reply.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  json j = json::parse(reply, nullptr, false);
  if (j.is_discarded()) throw Failure{"salvod sent no answer (it may be stopping)"};
  return j;
}

std::string num(double v) {
  if (v >= 100 || v == static_cast<double>(static_cast<long long>(v))) {
    return fmt::format("{:.0f}", v);
  }
  return fmt::format("{:.1f}", v);
}

void print_status(const json& s) {
  const auto& q = s["queue"];
  const auto& in = s["in"];
  const auto& out = s["out"];
  fmt::print("shards        {}\n", s["shards"].get<int>());
  fmt::print("queue         {} recipients in {} messages: {} ready, {} deferred, {} in flight; "
             "{} destinations\n",
             q["recipients"].get<std::uint64_t>(), q["messages"].get<std::uint64_t>(),
             q["ready"].get<std::uint64_t>(), q["deferred"].get<std::uint64_t>(),
             q["in_flight"].get<std::uint64_t>(), q["destinations"].get<std::uint64_t>());
  fmt::print("in            {} recipients; {}/s (1 s), {}/s (1 min)\n",
             in["recipients"].get<std::uint64_t>(), num(in["rate_1s"].get<double>()),
             num(in["rate_1m"].get<double>()));
  fmt::print("out           {} delivered, {} deferrals, {} bounced, {} expired, {} DSNs; "
             "{}/s (1 s), {}/s (1 min)\n",
             out["delivered"].get<std::uint64_t>(), out["deferrals"].get<std::uint64_t>(),
             out["bounced"].get<std::uint64_t>(), out["expired"].get<std::uint64_t>(),
             out["dsns"].get<std::uint64_t>(), num(out["rate_1s"].get<double>()),
             num(out["rate_1m"].get<double>()));
  fmt::print("connections   {} in, {} out\n", s["connections"]["in"].get<std::uint64_t>(),
             s["connections"]["out"].get<std::uint64_t>());
  const auto& sp = s["spool"];
  fmt::print("spool         {} bytes used in {} ({} allocated on disk, {} given back by "
             "punching dead records), {} bytes free\n",
             sp["bytes"].get<std::uint64_t>(), sp["dir"].get<std::string>(),
             sp["allocated_bytes"].get<std::uint64_t>(), sp["punched_bytes"].get<std::uint64_t>(),
             sp["free_bytes"].get<std::uint64_t>());
  const auto& rec = s["recovery"];
  if (rec["running"].get<std::uint64_t>() != 0) {
    // Counts above leave out the old mail until it is read (docs/spool-format.md §7).
    fmt::print("recovery      IN PROGRESS on {} shard(s): {} segment(s), {} bytes left to "
               "scan; {} messages found so far (queue counts leave them out until then)\n",
               rec["running"].get<std::uint64_t>(), rec["segments_left"].get<std::uint64_t>(),
               rec["bytes_left"].get<std::uint64_t>(), rec["messages"].get<std::uint64_t>());
  }
  const auto& ckpt = rec["checkpoint"];
  if (ckpt["used"].get<std::uint64_t>() + ckpt["stale"].get<std::uint64_t>() +
          ckpt["bad"].get<std::uint64_t>() !=
      0) {
    // docs/spool-format.md §10: a clean stop's checkpoint stands in for the scan.
    fmt::print("recovery      from the clean stop's checkpoint on {} shard(s); {} found it "
               "stale and {} unreadable (scanned)\n",
               ckpt["used"].get<std::uint64_t>(), ckpt["stale"].get<std::uint64_t>(),
               ckpt["bad"].get<std::uint64_t>());
  }
  if (rec["quarantined_segments"].get<std::uint64_t>() != 0) {
    fmt::print(
        "recovery      DAMAGE at start: {} stretch(es), {} bytes skipped in {} quarantined "
        "segment(s); {} records after them recovered (salvod's log names the "
        "segments)\n",
        rec["damaged_regions"].get<std::uint64_t>(), rec["skipped_bytes"].get<std::uint64_t>(),
        rec["quarantined_segments"].get<std::uint64_t>(),
        rec["records_after_damage"].get<std::uint64_t>());
  } else if (rec["running"].get<std::uint64_t>() == 0) {
    fmt::print("recovery      no damage found at start\n");
  }
  fmt::print("\n{:>5} {:>12} {:>9} {:>9} {:>9} {:>8} {:>8} {:>11}\n", "shard", "destinations",
             "ready", "deferred", "inflight", "conn in", "conn out", "delivered");
  for (const auto& p : s["per_shard"]) {
    fmt::print("{:>5} {:>12} {:>9} {:>9} {:>9} {:>8} {:>8} {:>11}\n", p["shard"].get<int>(),
               p["destinations"].get<std::uint64_t>(), p["ready"].get<std::uint64_t>(),
               p["deferred"].get<std::uint64_t>(), p["in_flight"].get<std::uint64_t>(),
               p["connections_in"].get<std::uint64_t>(),
               p["connections_out"].get<std::uint64_t>(), p["delivered"].get<std::uint64_t>());
  }
}

void print_domains(const json& s) {
  fmt::print("{:<32} {:>8} {:>8} {:>8} {:>6} {:>9} {:>9} {:>8} {:<10} {}\n", "DOMAIN", "QUEUED",
             "DEFERRED", "INFLIGHT", "CONN", "RATE/1m", "DELIVERED", "BOUNCED", "STATE",
             "LAST REPLY");
  for (const auto& d : s["domains"]) {
    fmt::print("{:<32} {:>8} {:>8} {:>8} {:>3}/{:<2} {:>9} {:>9} {:>8} {:<10} {}\n",
               d["domain"].get<std::string>(), d["queued"].get<std::uint64_t>(),
               d["deferred"].get<std::uint64_t>(), d["in_flight"].get<std::uint64_t>(),
               d["connections"].get<std::uint32_t>(), d["max_connections"].get<std::uint32_t>(),
               num(d["rate_1m"].get<double>()), d["delivered"].get<std::uint64_t>(),
               d["bounced"].get<std::uint64_t>(), d["state"].get<std::string>(),
               d["last_reply"].get<std::string>().substr(0, 60));
  }
}

void print_trace(const json& t) {
  fmt::print("message {}\n", t["id"].get<std::string>());
  const auto& sp = t["spool"];
  if (sp["found"].get<bool>()) {
    fmt::print("spool: {} with {} recipients still owed or known:\n",
               sp["job"].get<bool>() ? "job" : "message", sp["recipients"].size());
    for (const auto& r : sp["recipients"]) {
      fmt::print("  #{:<6} {}\n", r["recipient"].get<std::uint64_t>(),
                 r["state"].get<std::string>());
    }
  } else if (sp.value("recovering", false)) {
    fmt::print("spool: not found yet: the start-up recovery is still reading the spool "
               "(salvoctl status: recovery IN PROGRESS); try again when it is done\n");
  } else {
    fmt::print("spool: no longer queued (every recipient final)\n");
  }
  fmt::print("log:\n");
  for (const auto& e : t["events"]) {
    fmt::print("  {} {:<9} {:<32} {} {}\n", e.value("ts", ""), e.value("type", ""),
               e.value("rcpt", ""), e.contains("code") ? std::to_string(e["code"].get<int>()) : "",
               e.value("response", ""));
  }
  if (t.value("truncated", false)) fmt::print("  ... (first 1000 lines)\n");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"salvoctl: watch and steer a running salvod"};
  std::string config_path = "/etc/salvo/salvo.toml", socket_path;
  bool as_json = false;
  app.add_option("--config", config_path, "salvod's config (finds [node] control_socket)");
  app.add_option("--socket", socket_path, "the control socket (instead of --config)");
  app.add_flag("--json", as_json, "print the daemon's JSON answer");
  app.require_subcommand(1);
  auto* status = app.add_subcommand("status", "queue sizes, rates in and out, per-shard load");
  std::string sort = "queued";
  std::size_t top = 0;
  auto* domains = app.add_subcommand("domains", "per destination: queue, connections, rate, state");
  domains->add_option("--sort", sort, "queued | rate | connections | delivered | bounced | domain")
      ->check(CLI::IsMember({"queued", "rate", "connections", "delivered", "bounced", "domain"}));
  domains->add_option("--top", top, "only the first N");
  std::string domain;
  auto* pause = app.add_subcommand("pause", "stop delivering to DOMAIN (mail stays queued)");
  pause->add_option("domain", domain, "the destination")->required();
  auto* resume = app.add_subcommand("resume", "deliver to DOMAIN again");
  resume->add_option("domain", domain, "the destination")->required();
  auto* flush = app.add_subcommand("flush", "retry deferred mail now (of DOMAIN, or all)");
  flush->add_option("domain", domain, "the destination (default: all)");
  std::string id;
  auto* bounce = app.add_subcommand(
      "bounce", "cancel everything queued for DOMAIN, or one message (--id), with DSNs");
  auto* bounce_domain = bounce->add_option("domain", domain, "the destination");
  bounce->add_option("--id", id, "one message or job (16 hex digits)")->excludes(bounce_domain);
  auto* trace = app.add_subcommand("trace", "one message's history: spool states and log lines");
  trace->add_option("id", id, "the message id (16 hex digits)")->required();
  auto* drain = app.add_subcommand(
      "drain", "stop taking mail in; salvod stops by itself once everything is delivered");
  auto* reload = app.add_subcommand(
      "reload", "apply the config file's shaping, routes, DKIM keys, egress and retry policy");
  for (auto* sub : {status, domains, pause, resume, flush, bounce, trace, drain, reload}) {
    sub->add_flag("--json", as_json, "print the daemon's JSON answer");
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "salvoctl: %s\n", e.what());
    return 2;
  }
  if (bounce->parsed() && domain.empty() && id.empty()) {
    std::fprintf(stderr, "salvoctl: bounce needs a DOMAIN or --id ID\n");
    return 2;
  }
  if (socket_path.empty()) {
    auto cfg = salvo::config::load_file(config_path);
    if (!cfg) {
      std::fprintf(stderr, "salvoctl: %s\n", cfg.error().message.c_str());
      return 2;
    }
    socket_path = (*cfg)->node.control_socket;
  }
  json request;
  const std::string verb = app.get_subcommands().front()->get_name();
  request["cmd"] = verb;
  if (!domain.empty()) request["domain"] = domain;
  if (!id.empty()) request["id"] = id;
  if (verb == "domains") {
    request["sort"] = sort;
    request["top"] = top;
  }
  try {
    json reply = call(socket_path, request);
    if (!reply.value("ok", false)) {
      std::fprintf(stderr, "salvoctl: %s\n", reply.value("error", "refused").c_str());
      return 1;
    }
    if (as_json) {
      std::printf("%s\n", reply.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else if (verb == "status") {
      print_status(reply);
    } else if (verb == "domains") {
      print_domains(reply);
    } else if (verb == "trace") {
      print_trace(reply);
    } else if (verb == "reload") {
      std::printf("reloaded %s\n", reply.value("config", "").c_str());
      for (const auto& w : reply.value("warnings", json::array())) {
        std::printf("warning: %s\n", w.get<std::string>().c_str());
      }
    } else if (verb == "bounce" && !id.empty()) {
      std::printf("bounce %s: %zu recipient(s)\n", id.c_str(),
                  reply.value("recipients", std::size_t{0}));
    } else if (verb == "drain") {
      std::printf("drain: intake stopped; salvod stops once its queue is empty\n");
    } else {
      std::printf("%s %s: %zu destination(s)\n", verb.c_str(),
                  domain.empty() ? "(all)" : domain.c_str(),
                  reply.value("destinations", std::size_t{0}));
    }
  } catch (const Failure& f) {
    std::fprintf(stderr, "salvoctl: %s\n", f.message.c_str());
    return 1;
  }
  return 0;
}
