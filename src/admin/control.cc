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
#include <nlohmann/json.hpp>

#include <salvo/base/log.h>
#include <salvo/io/engine.h>
#include <salvo/spool/records.h>

#include "admin/metrics.h"
#include "admin/sampler.h"
#include "admin/views.h"

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

std::string dump_json(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

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
      reload_(std::move(reload)),
      sampler_(std::make_unique<Sampler>()) {
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

SpoolFacts ControlServer::spool_facts() const {
  SpoolFacts f;
  f.dir = spool_dir_;
  f.bytes = directory_bytes(spool_dir_);
  struct statvfs vfs{};
  if (::statvfs(spool_dir_.c_str(), &vfs) == 0) {
    f.free_bytes = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  }
  return f;
}

void ControlServer::sample() noexcept {
  const auto answers = ask(request::Snapshot{});
  const double wall =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const Sampler::Sample s = sampler_->add(answers, steady_seconds(), wall);
  const bool all = std::all_of(answers.begin(), answers.end(),
                               [](const ShardAnswer& a) { return a.answered; });
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
    if (fd_ >= 0 && (p[1].revents & POLLIN) != 0) serve_socket();
  }
}

void ControlServer::serve_socket() noexcept {
  int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (c < 0) return;
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

json ControlServer::handle(const json& request) {
  const std::string cmd = request.value("cmd", "");
  if (cmd == "status") return status_json(ask(request::Snapshot{}), *sampler_, spool_facts());
  if (cmd == "domains") {
    return domains_json(ask(request::Snapshot{}), request.value("sort", "queued"),
                        request.value("top", std::size_t{0}));
  }
  if (cmd == "trace") {
    const auto id = spool::parse_id(request.value("id", ""));
    if (!id) {
      return json{{"ok", false}, {"error", "trace needs a message id (16 hex digits, as in "
                                           "\"queued as ...\" and the accounting log)"}};
    }
    return trace_json(*id, ask(request::Trace{*id}), log_dir_);
  }
  if (cmd == "reload") {
    if (!reload_) return json{{"ok", false}, {"error", "reload is not available"}};
    return reload_();
  }
  if (cmd == "drain") {
    ask(request::Drain{});
    draining_.store(true);
    log::info("salvod: drain: intake stopped; stopping once the queue is empty");
    return json{{"ok", true}, {"cmd", cmd}};
  }
  return verb(request);
}

json ControlServer::verb(const json& request) {
  auto parsed = parse_verb(request);
  if (!parsed) return json{{"ok", false}, {"error", parsed.error()}};
  const std::string cmd = request.value("cmd", "");
  std::size_t touched = 0;
  for (const auto& a : ask(*parsed)) touched += a.touched;
  if (const auto* b = std::get_if<request::BounceMessage>(&*parsed)) {
    const std::string text = spool::format_id(b->id);
    if (touched == 0) {
      return json{{"ok", false},
                  {"error", fmt::format("message {} has no queued recipients (delivered, "
                                        "bounced, in a transaction now, or unknown)", text)}};
    }
    return json{{"ok", true}, {"cmd", cmd}, {"id", text}, {"recipients", touched}};
  }
  return json{{"ok", true},
              {"cmd", cmd},
              {"domain", std::get<request::Destinations>(*parsed).domain},
              {"destinations", touched}};
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
  const auto answers = ask(request::Snapshot{});
  std::string prometheus, status;
  for (const auto& job : jobs) {
    if (job.shard >= inboxes_.size()) continue;
    request::Page r;
    r.token = job.token;
    try {
      const auto silent = std::find_if(answers.begin(), answers.end(),
                                       [](const ShardAnswer& a) { return !a.answered; });
      if (job.page == WebPage::Metrics && silent != answers.end()) {
        // Partial sums would read as counter resets: no scrape rather than a wrong one.
        r.reply = HttpReply{503, "text/plain; charset=utf-8",
                            fmt::format("shard {} did not answer in time; try again\n",
                                        silent - answers.begin())};
      } else if (job.page == WebPage::Metrics) {
        if (prometheus.empty()) {
          prometheus = render_prometheus(node_metrics(
              answers, sampler_->utilisation(answers.size()), spool_facts().free_bytes));
        }
        r.reply = HttpReply{200, "text/plain; version=0.0.4; charset=utf-8", prometheus};
      } else {
        if (status.empty()) status = dump_json(dashboard_json(answers, *sampler_, spool_facts())) + "\n";
        r.reply = HttpReply{200, "application/json", status};
      }
    } catch (const std::exception& e) {
      r.reply = HttpReply{500, "application/json",
                          dump_json(json{{"ok", false}, {"error", e.what()}}) + "\n"};
    }
    (void)inboxes_[job.shard]->post(std::move(r));
  }
}

}  // namespace salvo::admin
