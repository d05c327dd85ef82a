// SPDX-License-Identifier: Apache-2.0
// Prometheus text format rendering (see metrics.h). Names follow the Prometheus naming
// guide: salvo_ prefix, base units (seconds, bytes), _total for counters.
#include "admin/metrics.h"

#include <array>
#include <map>

#include <fmt/format.h>

namespace salvo::admin {
namespace {

// Label values: backslash, double quote and line feed escaped (exposition format 0.0.4).
std::string escape(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void header(std::string& out, std::string_view name, std::string_view type,
            std::string_view help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void sample(std::string& out, std::string_view name, std::string_view labels, double v) {
  if (labels.empty()) {
    out += fmt::format("{} {}\n", name, v);
  } else {
    out += fmt::format("{}{{{}}} {}\n", name, labels, v);
  }
}

void sample(std::string& out, std::string_view name, std::string_view labels, std::uint64_t v) {
  if (labels.empty()) {
    out += fmt::format("{} {}\n", name, v);
  } else {
    out += fmt::format("{}{{{}}} {}\n", name, labels, v);
  }
}

void single(std::string& out, std::string_view name, std::string_view type,
            std::string_view help, std::uint64_t v) {
  header(out, name, type, help);
  sample(out, name, "", v);
}

constexpr std::array<double, 17> kBounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                            0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                            1,      2.5,     5,      10,    30};

}  // namespace

void append_histogram(std::string& out, const std::string& name, const std::string& help,
                      const LatencyHistogram& h) {
  header(out, name, "histogram", help);
  std::array<std::uint64_t, kBounds.size()> counts{};
  for (unsigned b = 0; b < LatencyHistogram::kBuckets; ++b) {
    const std::uint64_t n = h.bucket_count(b);
    if (n == 0) continue;
    const double upper_s = static_cast<double>(LatencyHistogram::upper_bound(b)) / 1e9;
    for (std::size_t i = 0; i < kBounds.size(); ++i) {
      if (upper_s <= kBounds[i]) {
        counts[i] += n;
        break;
      }
    }
  }
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += counts[i];
    sample(out, name + "_bucket", fmt::format("le=\"{}\"", kBounds[i]), cumulative);
  }
  sample(out, name + "_bucket", "le=\"+Inf\"", h.count());
  sample(out, name + "_sum", "", h.mean() * static_cast<double>(h.count()) / 1e9);
  sample(out, name + "_count", "", h.count());
}

std::string render_metrics(const std::vector<ShardAnswer>& shards, const MetricsExtras& extras) {
  std::string out;
  out.reserve(16 * 1024);

  // Intake.
  std::uint64_t http_msgs = 0, http_rcpts = 0;
  inbound::InboundStats smtp;
  inbound::PickupStats pickup;
  spool::Stats spool;
  outbound::OutboundStats ob;
  dns::MxCacheStats mx;
  std::uint64_t spool_messages = 0, spool_recipients = 0, ready = 0, deferred = 0,
                in_flight = 0, conns_out = 0, conns_in = 0, conns_http = 0, destinations = 0,
                http_requests = 0;
  std::map<std::string, outbound::ClassCounters> classes;
  for (const auto& a : shards) {
    smtp += a.smtp;
    pickup += a.pickup;
    spool += a.spool;
    ob += a.outbound.stats;
    mx += a.outbound.mx_cache;
    http_msgs += a.http_injected_messages;
    http_rcpts += a.http_injected_recipients;
    http_requests += a.http_requests;
    spool_messages += a.spool_messages;
    spool_recipients += a.spool_recipients;
    conns_in += a.connections_in;
    conns_http += a.connections_http;
    destinations += a.outbound.destinations.size();
    for (const auto& d : a.outbound.destinations) {
      ready += d.ready;
      deferred += d.deferred;
      in_flight += d.in_flight;
      conns_out += d.connections;
    }
    for (const auto& c : a.outbound.classes) {
      auto& t = classes[c.name];
      t.delivered += c.delivered;
      t.deferred += c.deferred;
      t.bounced += c.bounced;
      t.expired += c.expired;
    }
  }

  header(out, "salvo_received_messages_total", "counter",
         "Messages (and bulk jobs) queued durably, by intake.");
  sample(out, "salvo_received_messages_total", "source=\"smtp\"", smtp.messages_queued);
  sample(out, "salvo_received_messages_total", "source=\"pickup\"", pickup.messages_queued);
  sample(out, "salvo_received_messages_total", "source=\"http\"", http_msgs);
  header(out, "salvo_received_recipients_total", "counter", "Recipients queued, by intake.");
  sample(out, "salvo_received_recipients_total", "source=\"smtp\"", smtp.recipients_queued);
  sample(out, "salvo_received_recipients_total", "source=\"pickup\"", pickup.recipients_queued);
  sample(out, "salvo_received_recipients_total", "source=\"http\"", http_rcpts);
  single(out, "salvo_smtp_commit_failures_total", "counter",
         "Messages answered 4xx at end of data because the spool commit failed.",
         smtp.commit_failures);
  single(out, "salvo_pickup_files_failed_total", "counter",
         "Pickup files moved to pickup/failed/ as malformed.", pickup.files_failed);

  // Outcomes per destination class.
  header(out, "salvo_delivery_outcomes_total", "counter",
         "Delivery attempt outcomes per recipient, by outcome and destination class (the "
         "[[shaping]] entry governing the destination: its domain, mx:<suffix>, or *).");
  for (const auto& [name, c] : classes) {
    const std::string cls = escape(name);
    const std::pair<const char*, std::uint64_t> outcomes[] = {
        {"delivered", c.delivered}, {"deferred", c.deferred}, {"bounced", c.bounced},
        {"expired", c.expired}};
    for (const auto& [outcome, n] : outcomes) {
      sample(out, "salvo_delivery_outcomes_total",
             fmt::format("outcome=\"{}\",class=\"{}\"", outcome, cls), n);
    }
  }
  single(out, "salvo_dsns_total", "counter", "Delivery status notifications queued.", ob.dsns);
  single(out, "salvo_delivery_transactions_total", "counter", "SMTP transactions attempted.",
         ob.transactions);
  single(out, "salvo_delivery_connections_opened_total", "counter",
         "Outbound SMTP connections opened.", ob.connections);
  single(out, "salvo_delivery_connect_failures_total", "counter",
         "Outbound connections that failed before the session was ready.",
         ob.connect_failures);
  single(out, "salvo_delivery_tls_sessions_total", "counter",
         "Outbound sessions that used STARTTLS.", ob.tls_sessions);

  // Queue depth.
  single(out, "salvo_queue_messages", "gauge",
         "Messages and jobs in the spool with recipients still to finish.", spool_messages);
  header(out, "salvo_queue_recipients", "gauge",
         "Recipients queued for delivery, by state (ready: due now; deferred: waiting for "
         "the next attempt; in_flight: in a transaction).");
  sample(out, "salvo_queue_recipients", "state=\"ready\"", ready);
  sample(out, "salvo_queue_recipients", "state=\"deferred\"", deferred);
  sample(out, "salvo_queue_recipients", "state=\"in_flight\"", in_flight);
  single(out, "salvo_spool_recipients", "gauge",
         "Recipients in the spool that are not final yet.", spool_recipients);
  single(out, "salvo_destinations", "gauge", "Destinations (domains and MX rollups) known.",
         destinations);

  // Connections.
  header(out, "salvo_connections", "gauge", "Open connections, by direction and protocol.");
  sample(out, "salvo_connections", "direction=\"in\",protocol=\"smtp\"", conns_in);
  sample(out, "salvo_connections", "direction=\"out\",protocol=\"smtp\"", conns_out);
  sample(out, "salvo_connections", "direction=\"in\",protocol=\"http\"", conns_http);
  single(out, "salvo_http_requests_total", "counter", "HTTP requests answered or in progress.",
         http_requests);

  // DNS.
  header(out, "salvo_dns_mx_cache_lookups_total", "counter",
         "MX cache lookups by result (miss: the lookup had to wait for DNS).");
  sample(out, "salvo_dns_mx_cache_lookups_total", "result=\"hit\"", mx.hits);
  sample(out, "salvo_dns_mx_cache_lookups_total", "result=\"miss\"", mx.misses);
  single(out, "salvo_dns_mx_resolutions_total", "counter",
         "MX resolutions started (misses, prewarm and refresh-ahead).", mx.resolutions);
  single(out, "salvo_dns_queries_total", "counter", "DNS queries sent.", mx.queries);

  // Spool.
  single(out, "salvo_spool_commits_total", "counter", "Group commits (write + fdatasync).",
         spool.commits);
  single(out, "salvo_spool_committed_bytes_total", "counter", "Bytes committed to the spool.",
         spool.bytes);
  single(out, "salvo_spool_failed_batches_total", "counter",
         "Group commits whose write or fdatasync failed.", spool.failed_batches);
  single(out, "salvo_spool_free_bytes", "gauge",
         "Free space on the spool's file system (for unprivileged users).",
         extras.spool_free_bytes);
  append_histogram(out, "salvo_spool_fsync_seconds", "Spool fdatasync latency.",
                   spool.fsync_latency_ns);
  append_histogram(out, "salvo_smtp_end_of_data_reply_seconds",
                   "SMTP injection: end of DATA to the reply (250 after the group commit).",
                   smtp.end_of_data_reply_ns);

  // Shards.
  header(out, "salvo_shard_blocked_seconds_total", "counter",
         "Time each shard's loop spent blocked waiting for IO (idle).");
  for (std::size_t i = 0; i < shards.size(); ++i) {
    sample(out, "salvo_shard_blocked_seconds_total", fmt::format("shard=\"{}\"", i),
           static_cast<double>(shards[i].blocked_ns) / 1e9);
  }
  header(out, "salvo_shard_loop_utilisation", "gauge",
         "Fraction of the last second each shard's loop was not blocked waiting for IO.");
  for (std::size_t i = 0; i < shards.size(); ++i) {
    const double u = i < extras.utilisation.size() ? extras.utilisation[i] : -1.0;
    if (u < 0) continue;  // not known yet (fewer than two samples)
    sample(out, "salvo_shard_loop_utilisation", fmt::format("shard=\"{}\"", i), u);
  }
  header(out, "salvo_shard_up", "gauge", "1 when the shard answered this scrape.");
  for (std::size_t i = 0; i < shards.size(); ++i) {
    sample(out, "salvo_shard_up", fmt::format("shard=\"{}\"", i),
           std::uint64_t{shards[i].answered ? 1u : 0u});
  }
  return out;
}

}  // namespace salvo::admin
