// SPDX-License-Identifier: Apache-2.0
// spool-dump SPOOL_DIR [--json]: the queued messages of a spool (one shard directory, or a
// directory of shard-N/ directories) with their recipients' states, like Postfix postcat.
// Read-only. Exit 0 on success, 2 with one line on bad input.
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <salvo/base/log.h>
#include <salvo/spool/recovery.h>
#include <salvo/spool/spool_reader.h>

namespace {

using namespace salvo::spool;
using nlohmann::json;

struct Printed {
  json messages = json::array();
};

std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c != 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

json recipient_json(std::string_view addr, RecipientState st) {
  return json{{"address", printable(addr)}, {"state", std::string(to_string(st))}};
}

// One message or job as JSON; an "error" member when its records cannot be read.
json describe(const std::string& dir, const RecoveryResult& r, MessageId id,
              const SpoolIndex::Entry& e) {
  json m{{"id", id.value()}, {"segment", e.loc.segment.value()}, {"offset", e.loc.offset}};
  auto rec = read_record(dir, e.loc);
  if (!rec) {
    m["error"] = rec.error().message();
    return m;
  }
  json rcpts = json::array();
  if (!e.is_job) {
    auto msg = decode_message(rec->raw.payload);
    if (!msg) {
      m["error"] = msg.error().message();
      return m;
    }
    m["kind"] = "message";
    m["source"] = std::string(to_string(msg->source));
    m["job"] = printable(msg->job);
    m["from"] = printable(msg->reverse_path);
    m["envid"] = printable(msg->envid);
    m["client"] = printable(msg->client_info);
    m["size"] = msg->body.size();
    m["received_unix_ns"] = msg->received_unix_ns;
    if (msg->pickup) {
      m["pickup"] = printable(msg->pickup->name);
      if (!msg->pickup->claim.empty()) m["pickup_claim"] = printable(msg->pickup->claim);
    }
    for (std::size_t i = 0; i < msg->recipients.size(); ++i) {
      rcpts.push_back(
          recipient_json(msg->recipients[i].address,
                         r.index.state(id, RecipientIndex(static_cast<std::uint32_t>(i)))));
    }
  } else {
    auto t = decode_job_template(rec->raw.payload);
    if (!t) {
      m["error"] = t.error().message();
      return m;
    }
    m["kind"] = "job";
    m["source"] = std::string(to_string(t->source));
    m["job"] = printable(t->job);
    m["from"] = printable(t->from);
    m["size"] = t->content.size();
    m["received_unix_ns"] = t->received_unix_ns;
    m["recipient_count"] = e.state.size();
    for (const auto& b : e.batches) {
      auto brec = read_record(dir, b.loc);
      if (!brec) continue;
      auto batch = decode_job_recipients(brec->raw.payload);
      if (!batch) continue;
      for (std::size_t i = 0; i < batch->recipients.size(); ++i) {
        auto idx = static_cast<std::uint32_t>(batch->first_index + i);
        rcpts.push_back(
            recipient_json(batch->recipients[i].address, r.index.state(id, RecipientIndex(idx))));
      }
    }
  }
  m["recipients"] = std::move(rcpts);
  return m;
}

bool has_segments(const std::filesystem::path& p) {
  std::error_code ec;
  for (const auto& ent : std::filesystem::directory_iterator(p, ec)) {
    std::string n = ent.path().filename().string();
    if (n.starts_with("seg-") && n.ends_with(".spool")) return true;
  }
  return false;
}

int usage_error(const std::string& why) {
  std::fprintf(stderr, "spool-dump: %s\n", why.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  bool as_json = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--json") {
      as_json = true;
    } else if (a == "-h" || a == "--help") {
      std::printf("usage: spool-dump SPOOL_DIR [--json]\n");
      return 0;
    } else if (a.starts_with("-") || !dir.empty()) {
      return usage_error("unexpected argument '" + std::string(a) +
                         "' (usage: spool-dump SPOOL_DIR [--json])");
    } else {
      dir = std::string(a);
    }
  }
  if (dir.empty()) return usage_error("missing SPOOL_DIR (usage: spool-dump SPOOL_DIR [--json])");
  struct stat sb {};
  if (::stat(dir.c_str(), &sb) != 0 || !S_ISDIR(sb.st_mode)) {
    return usage_error("'" + dir + "' is not a directory");
  }
  salvo::log::init(salvo::log::Level::Off);
  std::vector<std::string> shard_dirs;
  if (has_segments(dir)) {
    shard_dirs.push_back(dir);
  } else {
    std::error_code ec;
    for (const auto& ent : std::filesystem::directory_iterator(dir, ec)) {
      if (ent.is_directory() && ent.path().filename().string().starts_with("shard-")) {
        shard_dirs.push_back(ent.path().string());
      }
    }
    std::sort(shard_dirs.begin(), shard_dirs.end());
  }
  json out = json::array();
  for (const std::string& sd : shard_dirs) {
    auto r = recover(sd, 0);
    if (!r) return usage_error(sd + ": " + r.error().message());
    // Views into the index, which does not change while they are used.
    std::vector<std::pair<std::uint64_t, SpoolIndex::Entry>> entries;
    r->index.for_each(
        [&](MessageId id, const SpoolIndex::Entry& e) { entries.emplace_back(id.value(), e); });
    std::sort(entries.begin(), entries.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    json shard{{"dir", sd},
               {"segments", r->report.segments},
               {"torn_segments", r->report.torn_segments},
               {"bad_segments", r->report.bad_segments},
               {"damaged_segments", r->report.quarantined_segments},
               {"skipped_bytes", r->report.skipped_bytes},
               {"messages", json::array()}};
    for (const auto& [id, e] : entries) {
      shard["messages"].push_back(describe(sd, *r, MessageId(id), e));
    }
    out.push_back(std::move(shard));
  }
  if (as_json) {
    std::printf("%s\n", out.dump(2, ' ', false, json::error_handler_t::replace).c_str());
    return 0;
  }
  for (const auto& shard : out) {
    std::printf("*** %s: %zu segment(s), %zu torn, %zu bad, %zu damaged (%zu bytes skipped)\n",
                shard["dir"].get<std::string>().c_str(), shard["segments"].get<std::size_t>(),
                shard["torn_segments"].get<std::size_t>(), shard["bad_segments"].get<std::size_t>(),
                shard["damaged_segments"].get<std::size_t>(),
                shard["skipped_bytes"].get<std::size_t>());
    for (const auto& m : shard["messages"]) {
      std::printf("message %llu (segment %llu offset %llu)\n",
                  static_cast<unsigned long long>(m["id"].get<std::uint64_t>()),
                  static_cast<unsigned long long>(m["segment"].get<std::uint64_t>()),
                  static_cast<unsigned long long>(m["offset"].get<std::uint64_t>()));
      if (m.contains("error")) {
        std::printf("  error: %s\n", m["error"].get<std::string>().c_str());
        continue;
      }
      std::printf("  kind: %s  source: %s  size: %zu\n", m["kind"].get<std::string>().c_str(),
                  m["source"].get<std::string>().c_str(), m["size"].get<std::size_t>());
      std::printf("  from: <%s>  job: %s\n", m["from"].get<std::string>().c_str(),
                  m["job"].get<std::string>().c_str());
      for (const auto& rc : m["recipients"]) {
        std::printf("  to: <%s> %s\n", rc["address"].get<std::string>().c_str(),
                    rc["state"].get<std::string>().c_str());
      }
    }
  }
  return 0;
}
