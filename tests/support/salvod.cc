// SPDX-License-Identifier: Apache-2.0
#include "support/salvod.h"

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

#include <salvo/spool/spool_reader.h>

#include "support/cert_factory.h"

namespace salvo::test {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string tls_section() {
  const auto& certs = CertFactory::shared();
  return "[tls]\ncertificate = \"" + certs.server_cert() + "\"\nkey = \"" + certs.server_key() +
         "\"\n";
}

Salvod::Salvod(const TempDir& dir, const SalvodOptions& o) {
  int n = ++seq_;
  config_ = dir.file("salvod-" + std::to_string(n) + ".toml");
  ready_ = dir.file("salvod-ready-" + std::to_string(n));
  std::string spool = o.spool.empty() ? dir.file("spool") : o.spool;
  {
    std::ofstream cfg(config_);
    cfg << "[node]\nhostname = \"salvo.test\"\ncores = " << o.cores << "\nspool = \"" << spool
        << "\"\ncontrol_socket = \"" << dir.file("ctl.sock") << "\"\nlog_dir = \""
        << dir.file("log") << "\"\n"
        << o.node_keys << "\n";
    if (o.listener) cfg << "[[listen]]\naddress = \"127.0.0.1:0\"\n" << o.listen_keys << "\n";
    cfg << o.extra;
    if (o.hold_delivery) {
      cfg << "\n[dns]\nresolvers = [\"127.0.0.1:9\"]\n[[shaping]]\ndomain = \"*\"\n"
             "max_connections = 0\n";
    }
  }
  std::vector<std::string> argv;
  if (!o.env.empty()) {
    argv.push_back("/usr/bin/env");  // execs salvod: the pid stays salvod's
    argv.insert(argv.end(), o.env.begin(), o.env.end());
  }
  for (const std::string& a : {program_path("salvod"), std::string("--config"), config_,
                               std::string("--ready-file"), ready_, std::string("--log-level"),
                               o.log_level}) {
    argv.push_back(a);
  }
  proc_ = std::make_unique<Process>(argv, dir.path());
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!wait_for_file(ready_, 5ms)) {
    if (!proc_->running() || std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("salvod did not start: " + proc_->stderr_text());
    }
  }
  for (const auto& a : nlohmann::json::parse(read_file(ready_))) address_ = a.get<std::string>();
  const bool logs_info = o.log_level == "info" || o.log_level == "debug";
  if (o.wait_recovery && logs_info && !wait_for_log("spool recovery finished", 20s)) {
    throw std::runtime_error("salvod did not finish its spool recovery: " +
                             proc_->stderr_text());
  }
}

bool Salvod::wait_for_log(const std::string& text, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (log().find(text) == std::string::npos) {
    if (!proc_->running() || std::chrono::steady_clock::now() > deadline) {
      return log().find(text) != std::string::npos;
    }
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

Salvod::~Salvod() = default;

int Salvod::stop() {
  proc_->signal(SIGTERM);
  return proc_->wait(30s).value_or(-1);
}

int Salvod::kill() {
  proc_->signal(SIGKILL);
  return proc_->wait(10s).value_or(-1);
}

long long Salvod::log_number(const std::string& key) const {
  std::string l = log();
  auto pos = l.rfind(key + "=");
  if (pos == std::string::npos) return -1;
  return std::stoll(l.substr(pos + key.size() + 1));
}

void for_each_recovered_shard(
    const std::string& spool,
    const std::function<void(const std::string& dir, spool::RecoveryResult& r)>& fn) {
  if (!fs::exists(spool)) return;
  for (const auto& ent : fs::directory_iterator(spool)) {
    std::string name = ent.path().filename().string();
    if (!ent.is_directory() || !name.starts_with("shard-")) continue;
    auto shard = static_cast<std::uint32_t>(std::stoul(name.substr(6)));
    std::string dir = ent.path().string();
    auto r = spool::recover(dir, shard);
    if (!r) throw std::runtime_error("recover " + dir + ": " + r.error().message());
    fn(dir, *r);
  }
}

std::vector<SpooledItem> read_spool_items(const std::string& spool) {
  std::vector<SpooledItem> out;
  for_each_recovered_shard(spool, [&](const std::string& dir, spool::RecoveryResult& rr) {
    spool::RecoveryResult* r = &rr;
    r->index.for_each([&](spool::MessageId id, const spool::SpoolIndex::Entry& e) {
      SpooledItem item;
      item.id = id.value();
      item.job = e.is_job;
      auto rec = spool::read_record(dir, e.loc);
      if (!rec) throw std::runtime_error("read_record: " + rec.error().message());
      if (!e.is_job) {
        auto m = spool::decode_message(rec->raw.payload);
        if (!m) throw std::runtime_error("decode_message failed");
        item.from = m->reverse_path;
        item.job_name = m->job;
        item.body = m->body;
        item.source = static_cast<std::uint8_t>(m->source);
        for (const auto& rc : m->recipients) item.recipients.emplace_back(rc.address);
        if (m->pickup) {
          item.pickup_name = m->pickup->name;
          item.pickup_claim = m->pickup->claim;
        }
      } else {
        auto t = spool::decode_job_template(rec->raw.payload);
        if (!t) throw std::runtime_error("decode_job_template failed");
        item.from = t->from;
        item.job_name = t->job;
        item.body = t->content;
        item.source = static_cast<std::uint8_t>(t->source);
        for (const auto& b : e.batches) {
          auto br = spool::read_record(dir, b.loc);
          if (!br) throw std::runtime_error("read_record batch: " + br.error().message());
          auto d = spool::decode_job_recipients(br->raw.payload);
          if (!d) throw std::runtime_error("decode_job_recipients failed");
          for (const auto& jr : d->recipients) {
            item.recipients.emplace_back(jr.address);
            std::vector<std::pair<std::string, std::string>> vars;
            for (const auto& [k, v] : jr.vars) vars.emplace_back(k, v);
            item.vars.push_back(std::move(vars));
          }
        }
        auto c = spool::read_record(dir, e.commit_loc);
        if (c) {
          auto jc = spool::decode_job_commit(c->raw.payload);
          if (jc && jc->pickup) {
            item.pickup_name = jc->pickup->name;
            item.pickup_claim = jc->pickup->claim;
          }
        }
      }
      out.push_back(std::move(item));
    });
  });
  return out;
}

Ctl salvoctl(const TempDir& dir, const std::string& config, std::vector<std::string> args) {
  std::vector<std::string> argv = {program_path("salvoctl"), "--config", config};
  argv.insert(argv.end(), args.begin(), args.end());
  Process p(argv, dir.path());
  Ctl c;
  c.rc = p.wait(std::chrono::seconds(30)).value_or(-1);
  c.out = p.stdout_text();
  c.err = p.stderr_text();
  if (c.rc == 0 && std::find(args.begin(), args.end(), "--json") != args.end()) {
    c.j = nlohmann::json::parse(c.out, nullptr, false);
  }
  return c;
}

}  // namespace salvo::test
