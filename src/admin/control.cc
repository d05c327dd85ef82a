// SPDX-License-Identifier: Apache-2.0
// The control socket: per-shard inboxes and the server thread (see control.h).
#include <salvo/admin/control.h>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <unistd.h>

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <chrono>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include <salvo/base/log.h>
#include <salvo/io/engine.h>
#include <salvo/spool/records.h>

#include "admin/metrics.h"

namespace salvo::admin {
namespace {

using nlohmann::json;

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Reads one line (up to 64 KiB) or until EOF, bounded by a 5 s timeout per read.
bool read_line(int fd, std::string* out) {
  char buf[4096];
  while (out->size() < 65536) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) return false;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return !out->empty();
    out->append(buf, static_cast<std::size_t>(n));
    if (out->find('\n') != std::string::npos) {
      out->resize(out->find('\n'));
      return true;
    }
  }
  return false;
}

void write_all(int fd, const std::string& s) {
  std::size_t done = 0;
  while (done < s.size()) {
    ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
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

std::uint64_t directory_bytes(const std::string& dir) {
  std::uint64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code e2;
    if (it->is_regular_file(e2)) total += it->file_size(e2);
  }
  return total;
}

}  // namespace

void ControlInbox::attach(shard::Shard& shard, Handler handler) {
  std::lock_guard lock(mu_);
  shard_ = &shard;
  wake_ = shard.engine().any_thread_wake_target();
  handler_ = std::move(handler);
  shard.add_poller(this);
}

void ControlInbox::detach() noexcept {
  std::deque<std::pair<ShardRequest, std::promise<ShardAnswer>>> left;
  {
    std::lock_guard lock(mu_);
    if (shard_ == nullptr) return;
    shard_->remove_poller(this);
    shard_ = nullptr;
    handler_ = nullptr;
    left.swap(queue_);
  }
  for (auto& [req, p] : left) p.set_value(ShardAnswer{});
}

std::future<ShardAnswer> ControlInbox::post(ShardRequest request) {
  std::promise<ShardAnswer> p;
  auto f = p.get_future();
  std::lock_guard lock(mu_);
  if (shard_ == nullptr) {
    p.set_value(ShardAnswer{});
    return f;
  }
  queue_.emplace_back(std::move(request), std::move(p));
  pending_.store(true, std::memory_order_release);
  io::wake_from_any_thread(wake_);
  return f;
}

bool ControlInbox::poll() noexcept {
  if (!pending_.load(std::memory_order_acquire)) return false;
  std::deque<std::pair<ShardRequest, std::promise<ShardAnswer>>> work;
  Handler handler;
  {
    std::lock_guard lock(mu_);
    work.swap(queue_);
    pending_.store(false, std::memory_order_relaxed);
    handler = handler_;
  }
  for (auto& [req, p] : work) {
    ShardAnswer a;
    if (handler) {
      a = handler(req);
      a.answered = true;
    }
    p.set_value(std::move(a));
  }
  return !work.empty();
}

ControlServer::ControlServer(std::string path, std::vector<ControlInbox*> inboxes,
                             std::string spool_dir, std::string log_dir,
                             std::function<json()> reload)
    : path_(std::move(path)),
      inboxes_(std::move(inboxes)),
      spool_dir_(std::move(spool_dir)),
      log_dir_(std::move(log_dir)),
      reload_(std::move(reload)) {
  web_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

ControlServer::~ControlServer() {
  stop();
  if (web_fd_ >= 0) ::close(web_fd_);
}

void ControlServer::render(std::uint32_t shard, std::uint64_t token, WebPage page) noexcept {
  {
    std::lock_guard lock(web_mu_);
    web_jobs_.push_back(WebJob{shard, token, page});
  }
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(web_fd_, &one, sizeof one);
}

bool ControlServer::start(std::string* why) {
  if (web_fd_ < 0) {
    *why = std::string("control: eventfd: ") + std::strerror(errno);
    return false;
  }
  // Without its socket the thread still runs: it samples and renders the HTTP pages.
  const bool ok = path_.empty() || bind_socket(why);
  thread_ = std::thread([this] { run(); });
  return ok;
}

bool ControlServer::bind_socket(std::string* why) {
  sockaddr_un addr{};
  if (path_.size() >= sizeof addr.sun_path) {
    *why = "control_socket " + path_ + ": path too long for a unix socket";
    return false;
  }
  std::error_code ec;
  auto parent = std::filesystem::path(path_).parent_path();
  if (!parent.empty() && !std::filesystem::exists(parent, ec)) {
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      *why = "control_socket " + path_ + ": " + ec.message();
      return false;
    }
    ::chmod(parent.c_str(), 0750);
  }
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    *why = std::string("control socket: ") + std::strerror(errno);
    return false;
  }
  // A socket left by a crashed salvod is stale: the spool lock proves no other daemon
  // owns this node, so the name may be taken over.
  ::unlink(path_.c_str());
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
  // Owner-only from the start: no window in which others may connect.
  const mode_t old = ::umask(0177);
  int rc = ::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  ::umask(old);
  if (rc != 0 || ::listen(fd_, 64) != 0) {
    *why = "control_socket " + path_ + ": " + std::strerror(errno);
    ::close(fd_);
    fd_ = -1;
    return false;
  }
  ::chmod(path_.c_str(), 0600);
  return true;
}

void ControlServer::stop() noexcept {
  if (stop_.exchange(true)) return;
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(path_.c_str());
    fd_ = -1;
  }
}

std::vector<ShardAnswer> ControlServer::ask(const ShardRequest& r) {
  std::vector<std::future<ShardAnswer>> futures;
  for (ControlInbox* in : inboxes_) futures.push_back(in->post(r));
  std::vector<ShardAnswer> out;
  for (auto& f : futures) {
    if (f.wait_for(std::chrono::seconds(5)) == std::future_status::ready) {
      out.push_back(f.get());
    } else {
      out.push_back(ShardAnswer{});  // a shard that did not answer in time
    }
  }
  return out;
}

void ControlServer::sample() noexcept {
  auto answers = ask(ShardRequest{});
  Sample s;
  s.t = steady_seconds();
  s.wall = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
               .count();
  bool all = true;
  for (const auto& a : answers) {
    all &= a.answered;
    s.blocked.push_back(a.blocked_ns);
    s.in += a.received_recipients;
    s.out += a.outbound.stats.delivered;
    s.queued += a.spool_recipients;
    for (const auto& d : a.outbound.destinations) s.in_flight += d.in_flight;
  }
  // A shard that did not answer would make the sums (and so the rates) jump down and
  // back: such a sample is not kept.
  if (all) {
    std::lock_guard lock(samples_mu_);
    samples_.push_back(s);
    while (samples_.size() > 62) samples_.pop_front();
  }
  if (draining_.load() && all && s.queued == 0 && s.in_flight == 0) {
    log::info("salvod: drained: nothing left to deliver; stopping");
    draining_.store(false);
    ::kill(::getpid(), SIGTERM);  // main's sigwait takes it: the ordinary graceful stop
  }
}

void ControlServer::run() noexcept {
  double next_sample = 0;
  while (!stop_.load()) {
    const double now = steady_seconds();
    if (now >= next_sample) {
      sample();
      next_sample = now + 1.0;
    }
    pollfd p[2] = {{web_fd_, POLLIN, 0}, {fd_, POLLIN, 0}};
    int n = ::poll(p, fd_ >= 0 ? 2 : 1, 200);
    if (n <= 0) continue;
    if ((p[0].revents & POLLIN) != 0) serve_web();
    if (fd_ < 0 || (p[1].revents & POLLIN) == 0) continue;
    int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    std::string line;
    json reply;
    if (!read_line(c, &line)) {
      reply = json{{"ok", false}, {"error", "no request line"}};
    } else {
      json req = json::parse(line, nullptr, false);
      if (req.is_discarded() || !req.is_object()) {
        reply = json{{"ok", false}, {"error", "the request is not a JSON object"}};
      } else {
        try {
          reply = handle(req);
        } catch (const std::exception& e) {  // e.g. {"cmd": 5}: a wrong type
          reply = json{{"ok", false}, {"error", std::string("bad request: ") + e.what()}};
        }
      }
    }
    write_all(c, dump_json(reply) + "\n");
    ::close(c);
  }
}

json ControlServer::handle(const json& request) {
  const std::string cmd = request.value("cmd", "");
  const std::string domain = request.value("domain", "");
  if (cmd == "status") return status();
  if (cmd == "domains") return domains(request);
  if (cmd == "trace") return trace(request.value("id", ""));
  if (cmd == "reload") {
    if (!reload_) return json{{"ok", false}, {"error", "reload is not available"}};
    return reload_();
  }
  if (cmd == "drain") {
    ShardRequest r;
    r.kind = ShardRequest::Kind::Drain;
    ask(r);
    draining_.store(true);
    log::info("salvod: drain: intake stopped; stopping once the queue is empty");
    return json{{"ok", true}, {"cmd", cmd}};
  }
  ShardRequest r;
  if (cmd == "pause") {
    r.kind = ShardRequest::Kind::Pause;
  } else if (cmd == "resume") {
    r.kind = ShardRequest::Kind::Resume;
  } else if (cmd == "flush") {
    r.kind = ShardRequest::Kind::Flush;
  } else if (cmd == "bounce") {
    r.kind = ShardRequest::Kind::Bounce;
  } else {
    return json{{"ok", false}, {"error", "unknown command '" + cmd + "'"}};
  }
  if (r.kind == ShardRequest::Kind::Bounce && request.contains("id")) {
    // One message (or job): its queued recipients on every shard.
    const std::string text = request.value("id", "");
    r.message = spool::parse_id(text).value_or(0);
    if (r.message == 0) {
      return json{{"ok", false}, {"error", "bounce --id needs a message id (16 hex digits)"}};
    }
    std::size_t recipients = 0;
    for (const auto& a : ask(r)) recipients += a.touched;
    if (recipients == 0) {
      return json{{"ok", false},
                  {"error", fmt::format("message {} has no queued recipients (delivered, "
                                        "bounced, in a transaction now, or unknown)", text)}};
    }
    return json{{"ok", true}, {"cmd", cmd}, {"id", text}, {"recipients", recipients}};
  }
  if (domain.empty() && r.kind != ShardRequest::Kind::Flush) {
    return json{{"ok", false}, {"error", cmd + " needs a domain"}};
  }
  r.domain = domain;
  std::size_t touched = 0;
  for (const auto& a : ask(r)) touched += a.touched;
  return json{{"ok", true}, {"cmd", cmd}, {"domain", domain}, {"destinations", touched}};
}

json ControlServer::status() { return status_of(ask(ShardRequest{})); }

json ControlServer::status_of(const std::vector<ShardAnswer>& answers) {
  const std::vector<double> util = utilisation();
  json shards = json::array();
  std::uint64_t in = 0, out = 0, spool_msgs = 0, spool_rcpts = 0, ready = 0, deferred = 0,
                in_flight = 0, conns_out = 0, conns_in = 0, deferrals = 0, bounced = 0,
                expired = 0, dsns = 0, destinations = 0;
  for (std::size_t i = 0; i < answers.size(); ++i) {
    const auto& a = answers[i];
    std::uint64_t r = 0, d = 0, f = 0, c = 0;
    for (const auto& dest : a.outbound.destinations) {
      r += dest.ready;
      d += dest.deferred;
      f += dest.in_flight;
      c += dest.connections;
    }
    shards.push_back(json{{"shard", i},
                          {"answered", a.answered},
                          {"destinations", a.outbound.destinations.size()},
                          {"ready", r},
                          {"deferred", d},
                          {"in_flight", f},
                          {"connections_out", c},
                          {"connections_in", a.connections_in},
                          {"delivered", a.outbound.stats.delivered},
                          {"spool_recipients", a.spool_recipients}});
    if (i < util.size() && util[i] >= 0) shards.back()["utilisation"] = util[i];
    in += a.received_recipients;
    out += a.outbound.stats.delivered;
    deferrals += a.outbound.stats.deferred;
    bounced += a.outbound.stats.bounced;
    expired += a.outbound.stats.expired;
    dsns += a.outbound.stats.dsns;
    spool_msgs += a.spool_messages;
    spool_rcpts += a.spool_recipients;
    ready += r;
    deferred += d;
    in_flight += f;
    conns_out += c;
    conns_in += a.connections_in;
    destinations += a.outbound.destinations.size();
  }
  // Rates from the once-a-second samples: the last second, and the last minute.
  double in_1s = 0, out_1s = 0, in_1m = 0, out_1m = 0;
  {
    std::lock_guard lock(samples_mu_);
    if (samples_.size() >= 2) {
      const Sample& last = samples_.back();
      const Sample& prev = samples_[samples_.size() - 2];
      const double dt = std::max(1e-3, last.t - prev.t);
      in_1s = static_cast<double>(last.in - prev.in) / dt;
      out_1s = static_cast<double>(last.out - prev.out) / dt;
      const Sample& first = samples_.size() > 61 ? samples_[samples_.size() - 61] : samples_.front();
      const double dm = std::max(1e-3, last.t - first.t);
      in_1m = static_cast<double>(last.in - first.in) / dm;
      out_1m = static_cast<double>(last.out - first.out) / dm;
    }
  }
  const std::uint64_t free_bytes = spool_free_bytes();
  return json{
      {"ok", true},
      {"shards", answers.size()},
      {"queue",
       {{"messages", spool_msgs},
        {"recipients", spool_rcpts},
        {"ready", ready},
        {"deferred", deferred},
        {"in_flight", in_flight},
        {"destinations", destinations}}},
      {"in", {{"recipients", in}, {"rate_1s", in_1s}, {"rate_1m", in_1m}}},
      {"out",
       {{"delivered", out},
        {"deferrals", deferrals},
        {"bounced", bounced},
        {"expired", expired},
        {"dsns", dsns},
        {"rate_1s", out_1s},
        {"rate_1m", out_1m}}},
      {"connections", {{"in", conns_in}, {"out", conns_out}}},
      {"spool", {{"dir", spool_dir_}, {"bytes", directory_bytes(spool_dir_)},
                 {"free_bytes", free_bytes}}},
      {"per_shard", shards}};
}

json ControlServer::trace(const std::string& id_text) {
  const auto parsed = spool::parse_id(id_text);
  if (!parsed) {
    return json{{"ok", false}, {"error", "trace needs a message id (16 hex digits, as in "
                                         "\"queued as ...\" and the accounting log)"}};
  }
  const std::uint64_t id = *parsed;
  const std::string id_hex = spool::format_id(id);
  ShardRequest r;
  r.kind = ShardRequest::Kind::Trace;
  r.message = id;
  json spool = json{{"found", false}};
  for (const auto& a : ask(r)) {
    if (!a.trace_found) continue;
    json states = json::array();
    static constexpr const char* kNames[] = {"pending", "delivered", "bounced", "expired",
                                             "deferred"};
    for (std::size_t i = 0; i < a.trace_states.size(); ++i) {
      const auto st = a.trace_states[i];
      states.push_back(json{{"recipient", i}, {"state", st < 5 ? kNames[st] : "unknown"}});
    }
    spool = json{{"found", true}, {"job", a.trace_is_job}, {"recipients", states}};
  }
  // The accounting log, current file first then the rotated ones, oldest lines first;
  // bounded so a huge job cannot flood the answer.
  const std::string key = fmt::format("\"id\":\"{}\"", id_hex);
  std::vector<std::filesystem::path> files;
  std::error_code ec2;
  for (const auto& e : std::filesystem::directory_iterator(log_dir_, ec2)) {
    const auto name = e.path().filename().string();
    if (name.starts_with("accounting") && name.ends_with(".jsonl")) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) {
    // accounting-<time>.jsonl sort by time; the current accounting.jsonl is the newest.
    const bool ac = a.filename() == "accounting.jsonl", bc = b.filename() == "accounting.jsonl";
    if (ac != bc) return bc;
    return a < b;
  });
  json events = json::array();
  bool truncated = false;
  for (const auto& f : files) {
    std::ifstream in(f);
    std::string line;
    while (std::getline(in, line)) {
      if (line.find(key) == std::string::npos) continue;
      if (events.size() >= 1000) {
        truncated = true;
        break;
      }
      json j = json::parse(line, nullptr, false);
      if (!j.is_discarded()) events.push_back(std::move(j));
    }
  }
  if (!spool["found"].get<bool>() && events.empty()) {
    return json{{"ok", false}, {"error", fmt::format("no message {} in the spool or the "
                                                     "accounting log", id_hex)}};
  }
  return json{{"ok", true},
              {"id", id_hex},
              {"spool", spool},
              {"events", events},
              {"truncated", truncated}};
}

json ControlServer::domains(const json& request) {
  auto answers = ask(ShardRequest{});
  std::vector<json> rows;
  for (const auto& a : answers) {
    for (const auto& d : a.outbound.destinations) rows.push_back(destination_json(d));
  }
  const std::string sort = request.value("sort", "queued");
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
  const std::size_t top = request.value("top", std::size_t{0});
  if (top != 0 && rows.size() > top) rows.resize(top);
  return json{{"ok", true}, {"sort", sort}, {"domains", rows}};
}

std::uint64_t ControlServer::spool_free_bytes() const {
  struct statvfs vfs{};
  if (::statvfs(spool_dir_.c_str(), &vfs) != 0) return 0;
  return static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

// Per shard, over the last sample interval: 1 - blocked time / elapsed time; -1 before two
// samples exist.
std::vector<double> ControlServer::utilisation() {
  std::lock_guard lock(samples_mu_);
  std::vector<double> out(inboxes_.size(), -1.0);
  if (samples_.size() < 2) return out;
  const Sample& last = samples_.back();
  const Sample& prev = samples_[samples_.size() - 2];
  const double dt = last.t - prev.t;
  if (dt <= 0) return out;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (i >= last.blocked.size() || i >= prev.blocked.size()) continue;
    const double idle =
        static_cast<double>(last.blocked[i] - std::min(last.blocked[i], prev.blocked[i])) / 1e9;
    out[i] = std::clamp(1.0 - idle / dt, 0.0, 1.0);
  }
  return out;
}

// GET /api/v1/status: the status (as salvoctl status --json), the busiest destinations,
// the latest bounces and the last minute of samples, from one set of answers.
json ControlServer::dashboard(const std::vector<ShardAnswer>& answers) {
  std::vector<const outbound::DestinationInfo*> dests;
  std::vector<const outbound::BounceInfo*> bounces;
  for (const auto& a : answers) {
    for (const auto& d : a.outbound.destinations) dests.push_back(&d);
    for (const auto& b : a.outbound.recent_bounces) bounces.push_back(&b);
  }
  auto queued = [](const outbound::DestinationInfo* d) { return d->ready + d->deferred + d->in_flight; };
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
  {
    std::lock_guard lock(samples_mu_);
    for (std::size_t i = 1; i < samples_.size(); ++i) {
      const Sample& p = samples_[i - 1];
      const Sample& c = samples_[i];
      const double dt = std::max(1e-3, c.t - p.t);
      history.push_back(json{{"t", c.wall},
                             {"in", static_cast<double>(c.in - std::min(c.in, p.in)) / dt},
                             {"out", static_cast<double>(c.out - std::min(c.out, p.out)) / dt},
                             {"queued", c.queued}});
    }
  }
  return json{{"ok", true},
              {"status", status_of(answers)},
              {"domains", top},
              {"bounces", recent},
              {"history", history}};
}

void ControlServer::serve_web() noexcept {
  std::uint64_t count = 0;
  [[maybe_unused]] auto n = ::read(web_fd_, &count, sizeof count);
  std::deque<WebJob> jobs;
  {
    std::lock_guard lock(web_mu_);
    jobs.swap(web_jobs_);
  }
  if (jobs.empty()) return;
  // One set of answers serves every page asked for meanwhile.
  const auto answers = ask(ShardRequest{});
  std::string metrics, status;
  for (const auto& job : jobs) {
    if (job.shard >= inboxes_.size()) continue;
    ShardRequest r;
    r.kind = ShardRequest::Kind::HttpReply;
    r.token = job.token;
    try {
      const auto silent = std::find_if(answers.begin(), answers.end(),
                                       [](const ShardAnswer& a) { return !a.answered; });
      if (job.page == WebPage::Metrics && silent != answers.end()) {
        // Partial sums would read as counter resets: no scrape rather than a wrong one.
        r.http = HttpReply{503, "text/plain; charset=utf-8",
                           fmt::format("shard {} did not answer in time; try again\n",
                                       silent - answers.begin())};
      } else if (job.page == WebPage::Metrics) {
        if (metrics.empty()) {
          MetricsExtras extras;
          extras.utilisation = utilisation();
          extras.spool_free_bytes = spool_free_bytes();
          metrics = render_metrics(answers, extras);
        }
        r.http = HttpReply{200, "text/plain; version=0.0.4; charset=utf-8", metrics};
      } else {
        if (status.empty()) status = dump_json(dashboard(answers)) + "\n";
        r.http = HttpReply{200, "application/json", status};
      }
    } catch (const std::exception& e) {
      r.http = HttpReply{500, "application/json",
                         dump_json(json{{"ok", false}, {"error", e.what()}}) + "\n"};
    }
    (void)inboxes_[job.shard]->post(std::move(r));
  }
}

}  // namespace salvo::admin
