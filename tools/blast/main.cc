// SPDX-License-Identifier: Apache-2.0
// salvo-blast: load generator. --smtp HOST:PORT injects over ESMTP from many
// connections on every core and reports the achieved rate and latency percentiles;
// --pickup DIR writes .eml or .json pickup files instead.
#include <signal.h>

#include <cstdio>
#include <thread>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <salvo/base/log.h>
#include <salvo/base/units.h>
#include <salvo/net/tls.h>
#include <salvo/shard/shard.h>

#include "blast_pickup.h"
#include "blast_smtp.h"

namespace {

using namespace salvo::blast;
using salvo::Duration;

double ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }

int run_smtp(SmtpLoadOptions& o, const MessageFactory& factory,
             salvo::shard::ShardSetOptions so, const std::string& tls_ca, Duration timeout,
             bool json) {
  std::unique_ptr<salvo::net::TlsContext> tls;
  std::unique_ptr<salvo::shard::ShardSet> shards;
  try {
    if (o.starttls) {
      salvo::net::TlsContextOptions to;
      to.role = salvo::net::TlsRole::Client;
      to.ca_file = tls_ca;
      to.verify = tls_ca.empty() ? salvo::net::TlsVerify::None : salvo::net::TlsVerify::Peer;
      tls = std::make_unique<salvo::net::TlsContext>(to);
    }
    if (so.count == 0)
      so.count = std::min<unsigned>(std::thread::hardware_concurrency(), o.connections);
    shards = std::make_unique<salvo::shard::ShardSet>(so);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "salvo-blast: %s\n", e.what());
    return 2;
  }
  LoadShared shared;
  shared.options = &o;
  shared.factory = &factory;
  shared.tls = tls.get();
  std::vector<std::unique_ptr<LoadShard>> per_shard(shards->size());
  unsigned n = shards->size();
  auto t0 = salvo::MonoClock::now();
  shards->start([&](salvo::shard::Shard& s) {
    unsigned id = s.id().value();
    unsigned mine = o.connections / n + (id < o.connections % n ? 1 : 0);
    auto& ls = per_shard[id];
    ls = std::make_unique<LoadShard>(s, shared, mine);
    LoadShard* p = ls.get();
    s.on_stop([p] { p->begin_stop(); });
    p->start();
  });

  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  bool timed_out = false;
  auto deadline = t0 + timeout;
  while (shared.finished_connections.load(std::memory_order_acquire) < o.connections) {
    if (salvo::MonoClock::now() >= deadline) {
      timed_out = true;
      break;
    }
    timespec ts{0, 5'000'000};
    if (sigtimedwait(&sigs, nullptr, &ts) > 0) {
      timed_out = true;
      break;
    }
  }
  auto t1 = salvo::MonoClock::now();
  shards->request_stop();
  shards->join();

  LoadCounters all;
  for (auto& s : per_shard) {
    if (s) all.merge(s->counters());
  }
  double secs = std::chrono::duration<double>(t1 - t0).count();
  double rate = secs > 0 ? static_cast<double>(all.accepted) / secs : 0;
  double mbps = secs > 0 ? static_cast<double>(all.bytes) / secs / 1e6 : 0;
  if (json) {
    nlohmann::json j = {
        {"messages", all.submitted},
        {"accepted", all.accepted},
        {"deferred", all.deferred},
        {"rejected", all.rejected},
        {"lost", all.lost},
        {"recipients",
         {{"accepted", all.rcpt_accepted},
          {"deferred", all.rcpt_deferred},
          {"rejected", all.rcpt_rejected}}},
        {"connections", all.connections},
        {"connect_failures", all.connect_failures},
        {"tls_sessions", all.tls_sessions},
        {"bytes", all.bytes},
        {"seconds", secs},
        {"msgs_per_s", rate},
        {"mb_per_s", mbps},
        {"latency_ms",
         {{"p50", ms(all.latency.quantile(0.5))},
          {"p99", ms(all.latency.quantile(0.99))},
          {"p999", ms(all.latency.quantile(0.999))},
          {"max", ms(all.latency.max())}}},
        {"timed_out", timed_out}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf(
        "salvo-blast: %llu messages in %.3fs: %llu accepted, %llu deferred, %llu rejected, "
        "%llu lost\n  %.0f msgs/s, %.1f MB/s over %llu connections\n"
        "  latency p50 %.3fms p99 %.3fms p999 %.3fms max %.3fms%s\n",
        static_cast<unsigned long long>(all.submitted), secs,
        static_cast<unsigned long long>(all.accepted),
        static_cast<unsigned long long>(all.deferred),
        static_cast<unsigned long long>(all.rejected), static_cast<unsigned long long>(all.lost),
        rate, mbps, static_cast<unsigned long long>(all.connections),
        ms(all.latency.quantile(0.5)), ms(all.latency.quantile(0.99)),
        ms(all.latency.quantile(0.999)), ms(all.latency.max()),
        timed_out ? " (TIMED OUT)" : "");
  }
  std::fflush(stdout);
  return timed_out ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  SmtpLoadOptions smtp;
  MessageShape shape;
  PickupOptions pickup;
  std::string target, format = "eml", timeout_text = "10m", tls_ca, size_text = "1024";
  std::string pin_text = "off", idle_poll_text, zerocopy_text;
  unsigned cores = 0;
  bool no_pipelining = false, json = false;
  CLI::App app{"salvo-blast: SMTP injection load generator and pickup-file writer"};
  auto* smtp_opt = app.add_option("--smtp", target, "inject over ESMTP to HOST:PORT");
  auto* pickup_opt = app.add_option("--pickup", pickup.dir, "write pickup files into DIR");
  smtp_opt->excludes(pickup_opt);
  app.add_option("--connections", smtp.connections, "client connections (default 10)")
      ->check(CLI::Range(1u, 100000u));
  app.add_option("--messages", smtp.messages, "messages to send (default 10000)");
  app.add_option("--rcpts", shape.rcpts, "recipients per message (default 1)")
      ->check(CLI::Range(1u, 100000u));
  app.add_option("--size", size_text, "message size in bytes (default 1024; 10KB, 1MiB...)");
  app.add_option("--domains", shape.domains, "recipient domains d0..d{N-1} (default 1)")
      ->check(CLI::Range(1u, 10000000u));
  app.add_option("--domain-suffix", shape.domain_suffix, "recipient domain suffix");
  app.add_option("--from", shape.from, "envelope sender");
  app.add_flag("--no-pipelining", no_pipelining, "one command per round trip (like smtp-source)");
  app.add_flag("--unique", smtp.unique,
               "every message its own To:, Subject: and Message-ID: (as real mail; DKIM "
               "signatures cannot be shared); default: one shared body");
  app.add_flag("--chunking", smtp.chunking, "use BDAT when the server offers CHUNKING");
  app.add_option("--window", smtp.window,
                 "messages in flight per connection when pipelining (default 2)")
      ->check(CLI::Range(1u, 1000u));
  app.add_flag("--starttls", smtp.starttls, "require STARTTLS");
  app.add_option("--tls-ca", tls_ca, "verify the server against this CA bundle");
  app.add_option("--format", format, "pickup file format: eml | json")
      ->check(CLI::IsMember({"eml", "json"}));
  app.add_option("--job-size", pickup.job_size, "json pickup: recipients per job file");
  app.add_option("--cores", cores, "shards (default: min(CPUs, connections))");
  app.add_option("--pin", pin_text, "pin shard i to CPU i: on | off (default off)")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--idle-poll", idle_poll_text, "busy-poll this long before sleeping (default 20us)");
  app.add_option("--timeout", timeout_text, "give up after this long (default 10m)");
  app.add_option("--zerocopy-threshold", zerocopy_text,
                 "send_zc for writes of at least BYTES, also over loopback; 0 = off "
                 "(default: the net stack's, 16KiB, not to local peers)");
  app.add_flag("--json", json, "print one JSON object");
  try {
    app.parse(argc, argv);
    if (target.empty() && pickup.dir.empty())
      throw CLI::ValidationError("--smtp", "one of --smtp HOST:PORT or --pickup DIR is required");
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "salvo-blast: %s\n", e.what());
    return 2;
  }
  auto size = salvo::parse_size(size_text);
  auto timeout = salvo::parse_duration(timeout_text);
  if (!size || !timeout) {
    std::fprintf(stderr, "salvo-blast: %s: bad value\n", !size ? "--size" : "--timeout");
    return 2;
  }
  shape.size = *size;
  if (!zerocopy_text.empty()) {
    auto zc = salvo::parse_size(zerocopy_text);
    if (!zc) {
      std::fprintf(stderr, "salvo-blast: --zerocopy-threshold %s: not a size\n",
                   zerocopy_text.c_str());
      return 2;
    }
    smtp.zerocopy_threshold = *zc;
    smtp.zerocopy_to_local_peers = true;  // asked for explicitly: loopback included
  }
  salvo::log::init(salvo::log::Level::Warn);
  ::signal(SIGPIPE, SIG_IGN);
  MessageFactory factory(shape);

  if (!pickup.dir.empty()) {
    pickup.format = format == "json" ? PickupFormat::Json : PickupFormat::Eml;
    pickup.messages = smtp.messages;
    std::string why;
    auto t0 = salvo::MonoClock::now();
    auto r = write_pickup(pickup, factory, &why);
    if (!r) {
      std::fprintf(stderr, "salvo-blast: %s\n", why.c_str());
      return 2;
    }
    double secs = std::chrono::duration<double>(salvo::MonoClock::now() - t0).count();
    if (json) {
      std::printf("%s\n", nlohmann::json{{"files", r->files},
                                         {"messages", r->messages},
                                         {"recipients", r->recipients},
                                         {"bytes", r->bytes},
                                         {"seconds", secs}}
                              .dump()
                              .c_str());
    } else {
      std::printf("salvo-blast: wrote %llu files (%llu recipients, %llu bytes) in %.3fs\n",
                  static_cast<unsigned long long>(r->files),
                  static_cast<unsigned long long>(r->recipients),
                  static_cast<unsigned long long>(r->bytes), secs);
    }
    return 0;
  }

  auto addr = salvo::net::SocketAddress::parse(target, 25);
  if (!addr) {
    std::fprintf(stderr, "salvo-blast: --smtp %s: not an IP:port address\n", target.c_str());
    return 2;
  }
  smtp.target = *addr;
  smtp.server_name = addr->ip();
  smtp.pipelining = !no_pipelining;
  // Signals are read by the main thread (sigtimedwait); shards inherit the mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  salvo::shard::ShardSetOptions so;
  so.count = cores;
  // A load generator usually shares the machine with what it measures: let the kernel
  // place its threads unless asked otherwise.
  so.pin = pin_text == "on";
  if (!idle_poll_text.empty()) {
    auto d = salvo::parse_duration(idle_poll_text);
    if (!d) {
      std::fprintf(stderr, "salvo-blast: --idle-poll %s: not a duration\n", idle_poll_text.c_str());
      return 2;
    }
    so.idle_poll = *d;
  }
  return run_smtp(smtp, factory, so, tls_ca, *timeout, json);
}
