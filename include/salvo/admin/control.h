// SPDX-License-Identifier: Apache-2.0
// The control plane of salvod (what salvoctl talks to): a unix socket served by one control
// thread, which asks the shards for their state and hands them operator verbs through one
// ControlInbox per shard (typed requests, answered on the shard's own thread). Nothing
// here runs on a shard's hot path: a shard only drains its inbox between loop iterations.
//
//   salvoctl ──unix socket──► ControlServer thread ──ShardRequest──► ControlInbox (shard i)
//                                   ▲                                     │ on the shard
//                                   └────────── std::future<ShardAnswer> ◄┘
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include <salvo/base/metrics.h>
#include <salvo/config/config.h>
#include <salvo/outbound/outbound.h>
#include <salvo/queue/verdict.h>
#include <salvo/shard/shard.h>

#include <salvo/admin/web.h>

namespace salvo::admin {

// JSON text for the wire: strings from the network (SMTP replies, URLs, job bodies) may
// hold invalid UTF-8, which nlohmann's dump() would throw on; such bytes become U+FFFD.
std::string dump_json(const nlohmann::json& j);

// What the control thread asks of a shard: one of these, answered on the shard's thread.
namespace request {
struct Snapshot {};  // the shard's counters and destinations
enum class Verb : std::uint8_t { Pause, Resume, Flush, Bounce };
struct Destinations {  // an operator verb on the destination `domain` ("" = every one)
  Verb verb = Verb::Flush;
  std::string domain;
};
struct BounceMessage {  // every queued recipient of one message (or job)
  std::uint64_t id = 0;
};
struct Drain {};  // intake stops; what is queued is still delivered
struct Trace {    // the message's recipient states in this shard's spool
  std::uint64_t id = 0;
};
struct Reload {  // a validated configuration and what was built from it, off the shards
  outbound::SettingsPtr settings;
};
struct Page {  // the control thread's answer to an HTTP page this shard asked for
  std::uint64_t token = 0;
  HttpReply reply;
};
}  // namespace request

using ShardRequest = std::variant<request::Snapshot, request::Destinations, request::BounceMessage,
                                  request::Drain, request::Trace, request::Reload,
                                  request::Page>;

class Sampler;
struct SpoolFacts;

// One shard's answer: every counter it has (its metrics registry), its destinations, and
// what a verb touched.
struct ShardAnswer {
  bool answered = false;      // false: the shard is stopping (or gone)
  std::uint64_t blocked_ns = 0;  // the shard's loop, blocked waiting (io::Engine)
  metrics::Snapshot metrics;
  outbound::OutboundSnapshot outbound;
  std::size_t touched = 0;    // destinations (verbs) or recipients (BounceMessage) affected
  // A background recovery still reads this shard's old spool, or routes what it found:
  // older messages are not known yet or not counted yet (trace, bounce by id, the drain's
  // end; docs/spool-format.md §7).
  bool recovering = false;
  // Trace: the message's recipient states in this shard's spool (spool::RecipientState).
  bool trace_found = false;
  bool trace_is_job = false;
  std::vector<std::uint8_t> trace_states;
};

// Owner: shared by the control thread (post) and one shard (poll). Lifecycle: built by
// main before the shards start; attach() on the shard in its init; detach() on the shard
// at teardown (pending requests are answered "not answered"); destroyed after join.
class ControlInbox final : public shard::Poller {
 public:
  using Handler = std::function<ShardAnswer(const ShardRequest&)>;

  // On the shard's thread.
  void attach(shard::Shard& shard, Handler handler);
  void detach() noexcept;

  // Any thread: queues the request and wakes the shard.
  std::future<ShardAnswer> post(ShardRequest request);

  bool poll() noexcept override;

 private:
  std::mutex mu_;
  std::deque<std::pair<ShardRequest, std::promise<ShardAnswer>>> queue_;
  std::atomic<bool> pending_{false};
  shard::Shard* shard_ = nullptr;  // null: not attached (requests answered empty)
  io::WakeTarget wake_{};
  Handler handler_;
};

// The unix-socket server: one request line of JSON per connection, one reply line back;
// also the renderer of the HTTP pages that need every shard (WebGateway).
// Owner: main; built before the shards start (their HTTP servers hold it as gateway),
// start() after the shards run, stop() before they are stopped.
class ControlServer final : public WebGateway {
 public:
  // reload: the daemon's reload (also run on SIGHUP), answering {"ok", "error"/"warnings"}.
  // path "": no control socket (the thread still samples and renders HTTP pages).
  ControlServer(std::string path, std::vector<ControlInbox*> inboxes, std::string spool_dir,
                std::string log_dir, std::function<nlohmann::json()> reload);
  ~ControlServer() override;
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Binds (owner-only permissions: 0600, the directory made 0750 if created). why: a
  // one-line reason on failure.
  [[nodiscard]] bool start(std::string* why);
  void stop() noexcept;

  // WebGateway: queued for the control thread (answered after start()).
  void render(std::uint32_t shard, std::uint64_t token, WebPage page) noexcept override;

 private:
  struct WebJob {
    std::uint32_t shard;
    std::uint64_t token;
    WebPage page;
  };
  // A salvoctl connection: its request line coming in, then its answer going out. Each
  // has kClientSeconds in all; the control thread never blocks on one (a client that does
  // not send or does not read would otherwise freeze /metrics, the dashboard, drain and
  // the daemon's stop).
  struct Client {
    int fd = -1;
    std::string in;
    std::string out;
    std::size_t sent = 0;
    double deadline = 0;  // steady seconds
  };
  static constexpr std::size_t kMaxClients = 64;  // more wait in the listen backlog
  static constexpr double kClientSeconds = 10.0;

  bool bind_socket(std::string* why);
  void serve_web() noexcept;
  void accept_clients() noexcept;
  void serve_client(Client& c, short revents) noexcept;
  void run() noexcept;
  void sample() noexcept;
  nlohmann::json handle(const nlohmann::json& request);
  nlohmann::json verb(const nlohmann::json& request);
  std::vector<ShardAnswer> ask(const ShardRequest& r);
  SpoolFacts spool_facts() const;

  std::string path_;
  std::vector<ControlInbox*> inboxes_;
  std::string spool_dir_;
  std::string log_dir_;
  std::function<nlohmann::json()> reload_;
  int fd_ = -1;
  int web_fd_ = -1;  // eventfd: a WebJob is queued
  std::mutex web_mu_;
  std::deque<WebJob> web_jobs_;
  // salvoctl drain: intake stopped; once nothing is queued the daemon stops itself.
  std::atomic<bool> draining_{false};
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::unique_ptr<Sampler> sampler_;  // the control thread's only
  std::vector<Client> clients_;       // the control thread's only
  std::uint64_t clients_timed_out_ = 0;
};

}  // namespace salvo::admin
