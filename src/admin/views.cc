// SPDX-License-Identifier: Apache-2.0
// The control thread's views (see views.h).
#include "admin/views.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include <salvo/spool/records.h>

namespace salvo::admin {
namespace {

using nlohmann::json;

std::uint64_t count(const metrics::Snapshot& m, std::string_view family,
                    std::string_view having = {}) {
  return static_cast<std::uint64_t>(m.sum(family, having));
}

json destination_json(const outbound::DestinationInfo& d) {
  return json{{"domain", d.name},
              {"queued", d.ready + d.deferred},
              {"ready", d.ready},
              {"deferred", d.deferred},
              {"in_flight", d.in_flight},
              {"connections", d.connections},
              {"max_connections", d.max_connections},
              {"state", d.state},
              {"delivered", d.delivered},
              {"deferrals", d.deferrals},
              {"bounced", d.bounced},
              {"rate_1s", d.delivered_last_s},
              {"rate_1m", static_cast<double>(d.delivered_last_60s) / 60.0},
              {"last_reply", d.last_reply}};
}

}  // namespace

std::expected<ShardRequest, std::string> parse_verb(const json& request) {
  const std::string cmd = request.value("cmd", "");
  request::Destinations d;
  if (cmd == "pause") {
    d.verb = request::Verb::Pause;
  } else if (cmd == "resume") {
    d.verb = request::Verb::Resume;
  } else if (cmd == "flush") {
    d.verb = request::Verb::Flush;
  } else if (cmd == "bounce") {
    d.verb = request::Verb::Bounce;
  } else {
    return std::unexpected("unknown command '" + cmd + "'");
  }
  if (d.verb == request::Verb::Bounce && request.contains("id")) {
    // One message (or job): its queued recipients on every shard.
    const auto id = spool::parse_id(request.value("id", ""));
    if (!id || *id == 0) {
      return std::unexpected(std::string("bounce --id needs a message id (16 hex digits)"));
    }
    return request::BounceMessage{*id};
  }
  d.domain = request.value("domain", "");
  if (d.domain.empty() && d.verb != request::Verb::Flush) {
    return std::unexpected(cmd + " needs a domain");
  }
  return d;
}

json metrics_json(const metrics::Snapshot& s) {
  json out = json::object();
  for (const auto& m : s.samples()) {
    std::string key(m.family->name);
    if (!m.labels.empty()) key += "{" + m.labels + "}";
    if (m.family->type == metrics::Type::Histogram) {
      const LatencyHistogram empty;
      const LatencyHistogram& h = m.histogram ? *m.histogram : empty;
      out[key] = json{{"count", h.count()},
                      {"mean_seconds", h.mean() / 1e9},
                      {"p99_seconds", static_cast<double>(h.quantile(0.99)) / 1e9}};
    } else {
      out[key] = m.value;
    }
  }
  return out;
}

json status_json(const std::vector<ShardAnswer>& answers, const Sampler& sampler,
                 const SpoolFacts& spool) {
  const std::vector<double> util = sampler.utilisation(answers.size());
  metrics::Snapshot node;
  json shards = json::array();
  for (std::size_t i = 0; i < answers.size(); ++i) {
    const auto& a = answers[i];
    const auto& m = a.metrics;
    shards.push_back(json{{"shard", i},
                          {"answered", a.answered},
                          {"destinations", count(m, "salvo_destinations")},
                          {"ready", count(m, "salvo_queue_recipients", "state=\"ready\"")},
                          {"deferred", count(m, "salvo_queue_recipients", "state=\"deferred\"")},
                          {"in_flight", count(m, "salvo_queue_recipients", "state=\"in_flight\"")},
                          {"connections_out", count(m, "salvo_connections", "direction=\"out\"")},
                          {"connections_in",
                           count(m, "salvo_connections", "direction=\"in\",protocol=\"smtp\"")},
                          {"delivered", delivered_recipients(a)},
                          {"spool_recipients", spool_recipients(a)}});
    if (i < util.size() && util[i] >= 0) shards.back()["utilisation"] = util[i];
    node += m;
  }
  const Sampler::Rates r = sampler.rates();
  const auto outcome = [&](std::string_view o) {
    return count(node, "salvo_delivery_outcomes_total", fmt::format("outcome=\"{}\"", o));
  };
  return json{
      {"ok", true},
      {"shards", answers.size()},
      {"queue",
       {{"messages", count(node, "salvo_queue_messages")},
        {"recipients", count(node, "salvo_spool_recipients")},
        {"ready", count(node, "salvo_queue_recipients", "state=\"ready\"")},
        {"deferred", count(node, "salvo_queue_recipients", "state=\"deferred\"")},
        {"in_flight", count(node, "salvo_queue_recipients", "state=\"in_flight\"")},
        {"destinations", count(node, "salvo_destinations")}}},
      {"in",
       {{"recipients", count(node, "salvo_received_recipients_total")},
        {"rate_1s", r.in_1s},
        {"rate_1m", r.in_1m}}},
      {"out",
       {{"delivered", outcome("delivered")},
        {"deferrals", outcome("deferred")},
        {"bounced", outcome("bounced")},
        {"expired", outcome("expired")},
        {"dsns", count(node, "salvo_dsns_total")},
        {"rate_1s", r.out_1s},
        {"rate_1m", r.out_1m}}},
      {"connections",
       {{"in", count(node, "salvo_connections", "direction=\"in\",protocol=\"smtp\"")},
        {"out", count(node, "salvo_connections", "direction=\"out\"")}}},
      {"spool",
       {{"dir", spool.dir},
        {"bytes", spool.bytes},
        {"allocated_bytes", spool.allocated_bytes},
        // Live records in the closed segments the last punch round looked at, and the
        // disk space punching gave back (docs/spool-format.md §7).
        {"live_bytes", count(node, "salvo_spool_live_bytes")},
        {"punched_bytes", count(node, "salvo_spool_punched_bytes_total")},
        {"free_bytes", spool.free_bytes}}},
      // What the start-up recovery skipped (docs/spool-format.md §7); the log names the
      // segments.
      {"recovery",
       {{"damaged_regions", count(node, "salvo_spool_recovery_damaged_regions")},
        {"skipped_bytes", count(node, "salvo_spool_recovery_skipped_bytes")},
        {"records_after_damage", count(node, "salvo_spool_recovery_records_after_damage")},
        {"quarantined_segments", count(node, "salvo_spool_quarantined_segments")},
        // A background recovery still scanning: shards at it, and what they have left.
        {"running", count(node, "salvo_spool_recovery_running")},
        {"segments_left", count(node, "salvo_spool_recovery_segments_left")},
        {"bytes_left", count(node, "salvo_spool_recovery_bytes_left")},
        {"messages", count(node, "salvo_spool_recovery_messages")},
        // Shards whose start took a clean stop's checkpoint instead of a scan
        // (docs/spool-format.md §10), and those that found one they could not use.
        {"checkpoint",
         {{"used", count(node, "salvo_spool_checkpoint_loads_total", "result=\"used\"")},
          {"stale", count(node, "salvo_spool_checkpoint_loads_total", "result=\"stale\"")},
          {"bad", count(node, "salvo_spool_checkpoint_loads_total", "result=\"bad\"")}}}}},
      {"per_shard", shards},
      {"metrics", metrics_json(node)}};
}

json domains_json(const std::vector<ShardAnswer>& answers, const std::string& sort,
                  std::size_t top) {
  std::vector<json> rows;
  for (const auto& a : answers) {
    for (const auto& d : a.outbound.destinations) rows.push_back(destination_json(d));
  }
  auto key = [&](const json& j) -> double {
    if (sort == "rate") return j["rate_1m"].get<double>();
    if (sort == "connections") return j["connections"].get<double>();
    if (sort == "delivered") return j["delivered"].get<double>();
    if (sort == "bounced") return j["bounced"].get<double>();
    return j["queued"].get<double>();
  };
  if (sort == "domain") {
    std::sort(rows.begin(), rows.end(),
              [](const json& a, const json& b) { return a["domain"] < b["domain"]; });
  } else {
    std::stable_sort(rows.begin(), rows.end(),
                     [&](const json& a, const json& b) { return key(a) > key(b); });
  }
  if (top != 0 && rows.size() > top) rows.resize(top);
  return json{{"ok", true}, {"sort", sort}, {"domains", rows}};
}

json dashboard_json(const std::vector<ShardAnswer>& answers, const Sampler& sampler,
                    const SpoolFacts& spool) {
  std::vector<const outbound::DestinationInfo*> dests;
  std::vector<const outbound::BounceInfo*> bounces;
  for (const auto& a : answers) {
    for (const auto& d : a.outbound.destinations) dests.push_back(&d);
    for (const auto& b : a.outbound.recent_bounces) bounces.push_back(&b);
  }
  auto queued = [](const outbound::DestinationInfo* d) {
    return d->ready + d->deferred + d->in_flight;
  };
  std::stable_sort(dests.begin(), dests.end(), [&](const auto* a, const auto* b) {
    if (a->delivered_last_60s != b->delivered_last_60s) {
      return a->delivered_last_60s > b->delivered_last_60s;
    }
    return queued(a) > queued(b);
  });
  json top = json::array();
  for (std::size_t i = 0; i < dests.size() && i < 15; ++i) top.push_back(destination_json(*dests[i]));
  std::stable_sort(bounces.begin(), bounces.end(),
                   [](const auto* a, const auto* b) { return a->unix_ns > b->unix_ns; });
  json recent = json::array();
  for (std::size_t i = 0; i < bounces.size() && i < 20; ++i) {
    const auto& b = *bounces[i];
    recent.push_back(json{{"time", static_cast<double>(b.unix_ns) / 1e9},
                          {"id", b.id},
                          {"recipient", b.recipient},
                          {"domain", b.domain},
                          {"reply", b.reply},
                          {"category", b.category}});
  }
  json history = json::array();
  for (const auto& p : sampler.history()) {
    history.push_back(json{{"t", p.t}, {"in", p.in}, {"out", p.out}, {"queued", p.queued}});
  }
  return json{{"ok", true},
              {"status", status_json(answers, sampler, spool)},
              {"domains", top},
              {"bounces", recent},
              {"history", history}};
}

json trace_json(std::uint64_t id, const std::vector<ShardAnswer>& answers,
                const std::string& log_dir) {
  const std::string id_hex = spool::format_id(id);
  const bool recovering =
      std::any_of(answers.begin(), answers.end(), [](const auto& a) { return a.recovering; });
  // Not found while a background recovery runs: it may be an old message not read yet.
  json spool = json{{"found", false}, {"recovering", recovering}};
  for (const auto& a : answers) {
    if (!a.trace_found) continue;
    json states = json::array();
    for (std::size_t i = 0; i < a.trace_states.size(); ++i) {
      const auto st = static_cast<spool::RecipientState>(a.trace_states[i]);
      const std::string_view name = a.trace_states[i] <= 4 ? spool::to_string(st) : "unknown";
      states.push_back(json{{"recipient", i}, {"state", name}});
    }
    spool = json{{"found", true}, {"job", a.trace_is_job}, {"recipients", states}};
  }
  // The accounting log, rotated files first (by time), then the current one; bounded so a
  // huge job cannot flood the answer.
  const std::string key = fmt::format("\"id\":\"{}\"", id_hex);
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(log_dir, ec)) {
    const auto name = e.path().filename().string();
    if (name.starts_with("accounting") && name.ends_with(".jsonl")) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) {
    const bool ac = a.filename() == "accounting.jsonl", bc = b.filename() == "accounting.jsonl";
    if (ac != bc) return bc;
    return a < b;
  });
  json events = json::array();
  bool truncated = false;
  for (const auto& f : files) {
    std::ifstream in(f);
    std::string line;
    while (!truncated && std::getline(in, line)) {
      if (line.find(key) == std::string::npos) continue;
      if (events.size() >= 1000) {
        truncated = true;
        break;
      }
      json j = json::parse(line, nullptr, false);
      if (!j.is_discarded()) events.push_back(std::move(j));
    }
  }
  // Shards append to the log through their own buffers, so one message's events (received
  // on one shard, delivered from another) can reach the file out of order: a history is
  // told by time (ISO 8601 to the millisecond sorts as text; ties keep the file's order).
  std::stable_sort(events.begin(), events.end(), [](const json& a, const json& b) {
    return a.value("ts", std::string()) < b.value("ts", std::string());
  });
  if (!spool["found"].get<bool>() && events.empty()) {
    return json{{"ok", false},
                {"error", fmt::format("no message {} in the spool or the accounting log", id_hex)}};
  }
  return json{{"ok", true}, {"id", id_hex}, {"spool", spool}, {"events", events},
              {"truncated", truncated}};
}

}  // namespace salvo::admin
