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
#include <tuple>

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

// A control client's request line is at most this long.
constexpr std::size_t kMaxRequestLine = 65536;

// The sizes of every file under dir, and the disk space they take (st_blocks: less than
// the sizes where segments were punched).
std::pair<std::uint64_t, std::uint64_t> directory_bytes(const std::string& dir) {
  std::uint64_t total = 0, allocated = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    struct stat sb {};
    if (::lstat(it->path().c_str(), &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
    total += static_cast<std::uint64_t>(sb.st_size);
    allocated += static_cast<std::uint64_t>(sb.st_blocks) * 512;
  }
  return {total, allocated};
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
  // Non-blocking: the control thread accepts until EAGAIN and never waits on a client.
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
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
  std::tie(f.bytes, f.allocated_bytes) = directory_bytes(spool_dir_);
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
  // A background recovery still running has old mail the counts do not show yet.
  const bool recovering = std::any_of(answers.begin(), answers.end(),
                                      [](const ShardAnswer& a) { return a.recovering; });
  if (draining_.load() && all && !recovering && s.queued == 0 && s.in_flight == 0) {
    log::info("salvod: drained: nothing left to deliver; stopping");
    draining_.store(false);
    ::kill(::getpid(), SIGTERM);  // main's sigwait takes it: the ordinary graceful stop
  }
}

void ControlServer::run() noexcept {
  double next_sample = 0;
  std::vector<pollfd> p;
  while (!stop_.load()) {
    const double now = steady_seconds();
    if (now >= next_sample) {
      sample();
      next_sample = now + 1.0;
    }
    // Clients whose time is up are dropped (a salvoctl that never sends its line or never
    // reads its answer); the rest are waited on with the wakeup and the listening socket.
    std::erase_if(clients_, [&](Client& c) {
      if (now < c.deadline) return false;
      ++clients_timed_out_;
      log::warn("control socket: a client neither sent its request nor read its answer in "
                "{:.0f} s; dropped ({} so far)", kClientSeconds, clients_timed_out_);
      ::close(c.fd);
      return true;
    });
    p.clear();
    p.push_back({web_fd_, POLLIN, 0});
    const bool listening = fd_ >= 0 && clients_.size() < kMaxClients;
    p.push_back({listening ? fd_ : -1, POLLIN, 0});
    for (const Client& c : clients_) {
      p.push_back({c.fd, static_cast<short>(c.out.empty() ? POLLIN : POLLOUT), 0});
    }
    int n = ::poll(p.data(), p.size(), 200);
    if (n <= 0) continue;
    if ((p[0].revents & POLLIN) != 0) serve_web();
    // Clients first (their pollfds match clients_ as it is now), then the new ones.
    for (std::size_t i = 0; i < clients_.size(); ++i) {
      if (p[2 + i].revents != 0) serve_client(clients_[i], p[2 + i].revents);
    }
    std::erase_if(clients_, [](const Client& c) { return c.fd < 0; });
    if (listening && (p[1].revents & POLLIN) != 0) accept_clients();
  }
  for (Client& c : clients_) ::close(c.fd);
  clients_.clear();
}

void ControlServer::accept_clients() noexcept {
  while (clients_.size() < kMaxClients) {
    int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    clients_.push_back(Client{fd, {}, {}, 0, steady_seconds() + kClientSeconds});
  }
}

void ControlServer::serve_client(Client& c, short revents) noexcept {
  if (c.out.empty()) {
    // Reading the request line: whatever is there, without waiting.
    bool eof = false;
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(c.fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) eof = true;
        break;
      }
      if (n == 0) {
        eof = true;
        break;
      }
      c.in.append(buf, static_cast<std::size_t>(n));
      if (c.in.find('\n') != std::string::npos || c.in.size() > kMaxRequestLine) break;
    }
    const std::size_t nl = c.in.find('\n');
    if (nl == std::string::npos && !eof && c.in.size() <= kMaxRequestLine &&
        (revents & (POLLHUP | POLLERR)) == 0) {
      return;  // more to come
    }
    json reply;
    if (nl == std::string::npos && (c.in.empty() || c.in.size() > kMaxRequestLine)) {
      reply = json{{"ok", false},
                   {"error", c.in.empty() ? "no request line" : "request line too long"}};
    } else {
      if (nl != std::string::npos) c.in.resize(nl);
      json req = json::parse(c.in, nullptr, false);
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
    c.in.clear();
    c.out = dump_json(reply) + "\n";
  }
  // Writing the answer: as much as the socket takes now; the rest when it has room.
  while (c.sent < c.out.size()) {
    ssize_t n = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) break;  // the client went away
    c.sent += static_cast<std::size_t>(n);
  }
  ::close(c.fd);
  c.fd = -1;
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
  bool recovering = false;
  for (const auto& a : ask(*parsed)) {
    touched += a.touched;
    recovering = recovering || a.recovering;
  }
  if (const auto* b = std::get_if<request::BounceMessage>(&*parsed)) {
    const std::string text = spool::format_id(b->id);
    if (touched == 0) {
      return json{{"ok", false},
                  {"error", fmt::format("message {} has no queued recipients (delivered, "
                                        "bounced, in a transaction now, or unknown){}",
                                        text,
                                        recovering ? "; the start-up recovery is still "
                                                     "reading the spool: an older message "
                                                     "is not known yet, try again later"
                                                   : "")}};
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
