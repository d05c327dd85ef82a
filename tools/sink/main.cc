// SPDX-License-Identifier: Apache-2.0
// salvo-sink: ESMTP sink for benchmarks and tests. Listens on many addresses
// with a scripted fault plan per listener, counts exactly, optionally keeps what arrived
// in a maildir, and on exit (SIGTERM/SIGINT or --duration) prints one JSON object. With
// --progress-file it also keeps the running totals in a file that scripts can poll.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <latch>
#include <mutex>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <salvo/base/log.h>
#include <salvo/base/units.h>
#include <salvo/net/port_reservation.h>
#include <salvo/net/tls.h>
#include <salvo/shard/shard.h>

#include "sink_server.h"

namespace {

using salvo::Duration;
using namespace salvo::sink;

Duration parse_duration_flag(const std::string& name, const std::string& v) {
  auto d = salvo::parse_duration(v);
  if (!d) throw CLI::ValidationError(name, v + ": not a duration (e.g. 250ms, 10s)");
  return *d;
}

struct Totals {
  std::uint64_t messages = 0, recipients = 0, bytes = 0;
  bool operator==(const Totals&) const = default;
};

// Writes {"messages": N, "recipients": N, "bytes": N} to path via path.tmp + rename, so a
// reader sees the old object or the new one, never a torn one. False if it cannot write.
bool write_progress(const std::string& path, const Totals& t) {
  std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return false;
  int n = std::fprintf(f, "{\"messages\": %llu, \"recipients\": %llu, \"bytes\": %llu}\n",
                       static_cast<unsigned long long>(t.messages),
                       static_cast<unsigned long long>(t.recipients),
                       static_cast<unsigned long long>(t.bytes));
  bool ok = n > 0;
  ok = std::fclose(f) == 0 && ok;
  return ok && std::rename(tmp.c_str(), path.c_str()) == 0;
}

// The running totals over every shard and listener, read while the shards run.
Totals running_totals(const std::vector<std::unique_ptr<SinkShard>>& shards) {
  Totals t;
  for (const auto& s : shards) {
    if (!s) continue;
    const ShardProgress& p = s->progress();
    t.messages += p.messages.load(std::memory_order_acquire);
    t.recipients += p.recipients.load(std::memory_order_relaxed);
    t.bytes += p.bytes.load(std::memory_order_relaxed);
  }
  return t;
}

nlohmann::json report(const SinkOptions& opts, std::vector<ListenerCounters>& merged,
                      std::vector<ListenerGauge>& gauges, double seconds) {
  nlohmann::json j;
  std::uint64_t messages = 0, recipients = 0, bytes = 0, connections = 0, deferred = 0,
                rejected = 0, dropped = 0, throttled = 0;
  nlohmann::json ls = nlohmann::json::array();
  ListenerCounters all;
  for (std::size_t i = 0; i < merged.size(); ++i) {
    const auto& c = merged[i];
    all.merge(c);
    ls.push_back({{"address", opts.listeners[i].address.to_string()},
                  {"messages", c.messages},
                  {"recipients", c.recipients},
                  {"bytes", c.bytes},
                  {"connections", c.connections},
                  {"peak_connections", gauges[i].peak.load()},
                  {"peak_msgs_per_s", c.peak_per_second()},
                  {"deferred", c.deferred},
                  {"rejected", c.rejected},
                  {"dropped", c.dropped},
                  {"throttled", c.throttled},
                  {"tls_sessions", c.tls_sessions}});
    messages += c.messages;
    recipients += c.recipients;
    bytes += c.bytes;
    connections += c.connections;
    deferred += c.deferred;
    rejected += c.rejected;
    dropped += c.dropped;
    throttled += c.throttled;
  }
  j["messages"] = messages;
  j["recipients"] = recipients;
  j["bytes"] = bytes;
  j["connections"] = connections;
  j["deferred"] = deferred;
  j["rejected"] = rejected;
  j["dropped"] = dropped;
  j["throttled"] = throttled;
  j["peak_msgs_per_s"] = all.peak_per_second();
  j["seconds"] = seconds;
  j["listeners"] = ls;
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  SinkOptions opts;
  Faults defaults;
  std::vector<std::string> listen;
  std::string latency, duration, idle, max_size = "100MB", pin_text = "on", idle_poll_text;
  std::string zerocopy_text, defer_status_text, trickle, trickle_at, stall_data;
  CLI::App app{"salvo-sink: ESMTP sink with scripted faults and exact counting"};
  app.add_option("--listen", listen,
                 "ADDR[:PORT][,latency=D,defer-rate=R,defer-status=4.Y.Z,reject-rate=R,drop-rate=R,"
                 "421-after=N,trickle=D,trickle-at=WHICH,stall-data=D]; "
                 "repeatable; port 0 picks a free port")
      ->required();
  app.add_option("--cores", opts.cores, "shards (0 = one per CPU)");
  app.add_option("--latency", latency, "delay before each batch of replies (e.g. 50ms)");
  app.add_option("--defer-rate", defaults.defer_rate, "fraction of RCPTs answered 451 4.7.1")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--defer-status", defer_status_text,
                 "enhanced status of those 451s (default 4.7.1, which MTAs read as throttling; "
                 "e.g. 4.3.0 for a plain temporary failure)");
  app.add_option("--reject-rate", defaults.reject_rate, "fraction of RCPTs answered 550 5.1.1")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--drop-rate", defaults.drop_rate,
                 "fraction of messages whose connection is dropped before the end-of-data reply")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--421-after", defaults.fail_after,
                 "after N messages on a connection, answer MAIL with 421 4.7.0 and close");
  app.add_option("--trickle", trickle,
                 "a tarpit: send replies one byte per D (e.g. 200ms), reading paused meanwhile");
  app.add_option("--trickle-at", trickle_at,
                 "which replies --trickle slows: all (default), greeting, ehlo (the EHLO/HELO "
                 "reply), data (the batch holding the end-of-data reply)");
  app.add_option("--stall-data", stall_data,
                 "once message text starts (after 354, or in a BDAT chunk), stop reading for D: "
                 "the client's writes stall (once per message)");
  app.add_option("--maildir", opts.maildir, "keep every accepted message in this maildir");
  app.add_option("--duration", duration, "exit after this long (e.g. 30s); default: on signal");
  app.add_option("--idle-timeout", idle, "close connections idle this long (default 5m)");
  app.add_option("--tls-cert", opts.tls_certificate, "PEM certificate: offer STARTTLS");
  app.add_option("--tls-key", opts.tls_key, "PEM private key for --tls-cert");
  app.add_option("--hostname", opts.hostname, "name in the greeting and EHLO reply");
  app.add_option("--max-size", max_size, "SIZE limit (default 100MB)");
  bool no_dsn = false;
  app.add_flag("--no-dsn", no_dsn, "do not advertise DSN (an MX without RFC 3461)");
  app.add_option("--pin", pin_text, "pin shard i to CPU i: on | off (default on)")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--idle-poll", idle_poll_text, "busy-poll this long before sleeping (default 20us)");
  app.add_option("--zerocopy-threshold", zerocopy_text,
                 "send_zc for writes of at least BYTES, also over loopback; 0 = off "
                 "(default: the net stack's, 16KiB, not to local peers)");
  app.add_option("--ready-file", opts.ready_file,
                 "write the bound addresses (JSON list) here once listening");
  app.add_option("--progress-file", opts.progress_file,
                 "keep {\"messages\": N, \"recipients\": N, \"bytes\": N} (totals so far) "
                 "in this file: rewritten (tmp + rename) at most every 100ms, and at exit");
  try {
    app.parse(argc, argv);
    if (!latency.empty()) defaults.latency = parse_duration_flag("--latency", latency);
    if (!trickle.empty()) defaults.trickle = parse_duration_flag("--trickle", trickle);
    if (!trickle_at.empty() && !parse_trickle_at(trickle_at, &defaults.trickle_at))
      throw CLI::ValidationError("--trickle-at",
                                 trickle_at + ": expected all, greeting, ehlo or data");
    if (!stall_data.empty()) defaults.stall_data = parse_duration_flag("--stall-data", stall_data);
    if (!defer_status_text.empty() &&
        !parse_defer_status(defer_status_text, &defaults.defer_status))
      throw CLI::ValidationError("--defer-status",
                                 defer_status_text + ": expected 4.Y.Z (e.g. 4.3.0)");
    if (!duration.empty()) opts.duration = parse_duration_flag("--duration", duration);
    if (!idle.empty()) opts.idle_timeout = parse_duration_flag("--idle-timeout", idle);
    auto sz = salvo::parse_size(max_size);
    if (!sz) throw CLI::ValidationError("--max-size", max_size + ": not a size");
    opts.max_message_size = *sz;
    opts.dsn = !no_dsn;
    if (!zerocopy_text.empty() && !salvo::parse_size(zerocopy_text))
      throw CLI::ValidationError("--zerocopy-threshold", zerocopy_text + ": not a size");
    if (opts.tls_certificate.empty() != opts.tls_key.empty())
      throw CLI::ValidationError("--tls-cert", "--tls-cert and --tls-key go together");
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "salvo-sink: %s\n", e.what());
    return 2;
  }
  for (const auto& text : listen) {
    std::string why;
    auto spec = parse_listener(text, defaults, &why);
    if (!spec) {
      std::fprintf(stderr, "salvo-sink: --listen %s\n", why.c_str());
      return 2;
    }
    opts.listeners.push_back(*spec);
  }
  if (!opts.progress_file.empty() && !write_progress(opts.progress_file, Totals{})) {
    std::fprintf(stderr, "salvo-sink: --progress-file %s: %s\n", opts.progress_file.c_str(),
                 std::strerror(errno));
    return 2;
  }
  salvo::log::init(salvo::log::Level::Warn);

  // Signals are taken by this thread only (sigtimedwait); shards inherit the mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  std::vector<salvo::net::PortReservation> reserved;
  std::unique_ptr<salvo::net::TlsContext> tls;
  std::unique_ptr<Maildir> maildir;
  std::unique_ptr<salvo::shard::ShardSet> shards;
  try {
    for (auto& l : opts.listeners) {
      if (l.address.port() != 0) continue;
      std::string asked = l.address.to_string();
      auto r = salvo::net::PortReservation::reserve(l.address);
      if (!r) throw std::runtime_error(asked + ": " + r.error().message());
      reserved.push_back(std::move(*r));
    }
    if (!opts.tls_certificate.empty()) {
      salvo::net::TlsContextOptions to;
      to.role = salvo::net::TlsRole::Server;
      to.certificate_file = opts.tls_certificate;
      to.key_file = opts.tls_key;
      tls = std::make_unique<salvo::net::TlsContext>(to);
    }
    if (!opts.maildir.empty()) {
      auto md = Maildir::open(opts.maildir);
      if (!md) throw std::runtime_error(opts.maildir + ": " + md.error().message());
      maildir = std::move(*md);
    }
    salvo::shard::ShardSetOptions so;
    so.count = opts.cores;
    so.pin = pin_text == "on";
    if (!idle_poll_text.empty()) {
      auto d = salvo::parse_duration(idle_poll_text);
      if (!d) throw std::runtime_error("--idle-poll " + idle_poll_text + ": not a duration");
      so.idle_poll = *d;
    }
    shards = std::make_unique<salvo::shard::ShardSet>(so);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "salvo-sink: %s\n", e.what());
    return 2;
  }

  std::vector<ListenerGauge> gauges(opts.listeners.size());
  SinkShared shared{&opts, tls.get(), maildir.get(), &gauges, salvo::MonoClock::now()};
  if (!zerocopy_text.empty()) {
    shared.zerocopy_threshold = *salvo::parse_size(zerocopy_text);
    shared.zerocopy_to_local_peers = true;  // asked for explicitly: loopback included
  }
  std::vector<std::unique_ptr<SinkShard>> per_shard(shards->size());
  std::latch started(shards->size());
  std::mutex err_mu;
  std::string start_error;

  shards->start([&](salvo::shard::Shard& s) {
    auto& mine = per_shard[s.id().value()];
    mine = std::make_unique<SinkShard>(s, shared);
    std::string why;
    if (auto st = mine->start(&why); !st) {
      std::lock_guard lock(err_mu);
      if (start_error.empty()) start_error = why;
    }
    SinkShard* sp = mine.get();
    s.on_stop([sp] { sp->begin_stop(); });
    started.count_down();
  });
  started.wait();
  reserved.clear();

  auto t0 = salvo::MonoClock::now();
  int rc = 0;
  if (!start_error.empty()) {
    std::fprintf(stderr, "salvo-sink: listen %s\n", start_error.c_str());
    rc = 2;
  } else {
    if (!opts.ready_file.empty()) {
      nlohmann::json addrs = nlohmann::json::array();
      for (const auto& l : opts.listeners) addrs.push_back(l.address.to_string());
      std::string tmp = opts.ready_file + ".tmp";
      std::ofstream(tmp) << addrs.dump() << "\n";
      std::rename(tmp.c_str(), opts.ready_file.c_str());
    }
    const bool progress = !opts.progress_file.empty();
    if (!progress && opts.duration.count() == 0) {
      int sig = 0;
      sigwait(&sigs, &sig);
    } else {
      // Wake at least every 100 ms to refresh the progress file (when it changed), until a
      // signal arrives or --duration has passed.
      const Duration step = std::chrono::milliseconds(100);
      const bool timed = opts.duration.count() > 0;
      const auto deadline = t0 + opts.duration;
      Totals written;
      for (;;) {
        if (progress) {
          Totals now = running_totals(per_shard);
          if (!(now == written) && write_progress(opts.progress_file, now)) written = now;
        }
        Duration wait = step;
        if (timed) {
          auto left = deadline - salvo::MonoClock::now();
          if (left <= Duration::zero()) break;
          if (!progress || left < wait) wait = std::chrono::duration_cast<Duration>(left);
        }
        auto secs = std::chrono::duration_cast<std::chrono::seconds>(wait);
        timespec ts{static_cast<time_t>(secs.count()), static_cast<long>((wait - secs).count())};
        if (sigtimedwait(&sigs, nullptr, &ts) > 0) break;
      }
    }
  }
  shards->request_stop();
  shards->join();
  double seconds = std::chrono::duration<double>(salvo::MonoClock::now() - t0).count();

  if (rc == 0) {
    std::vector<ListenerCounters> merged(opts.listeners.size());
    for (auto& s : per_shard) {
      if (!s) continue;
      for (std::size_t i = 0; i < s->listeners().size(); ++i)
        merged[i].merge(s->listeners()[i]->counters);
    }
    nlohmann::json j = report(opts, merged, gauges, seconds);
    if (!opts.progress_file.empty()) {
      Totals final_totals{j["messages"].get<std::uint64_t>(), j["recipients"].get<std::uint64_t>(),
                          j["bytes"].get<std::uint64_t>()};
      if (!write_progress(opts.progress_file, final_totals))
        std::fprintf(stderr, "salvo-sink: --progress-file %s: %s\n",
                     opts.progress_file.c_str(), std::strerror(errno));
    }
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
  }
  return rc;
}
