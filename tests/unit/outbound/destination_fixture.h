// SPDX-License-Identifier: Apache-2.0
// The destination side on fakes, shared by the outbound unit tests: FakeEnv (a DeliveryEnv
// with a test clock, an in-memory spool, scripted MX answers, and ScriptedChannels for
// connections unless a test opens its own) and the DestinationTest fixture that builds a
// DestinationSide on it from a TOML snippet. No sockets, no threads.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <salvo/queue/verdict.h>
#include <salvo/spool/records.h>

#include "outbound/destination.h"
#include "outbound/destination_side.h"
#include "outbound/slot.h"
#include "support/test_clock.h"

namespace salvo::outbound {

using namespace std::chrono_literals;

// A connection as the destination sees it; the test decides when it is ready, what each
// transaction's answer is, and when it closes.
class ScriptedChannel final : public Channel {
 public:
  ScriptedChannel(Destination& d, Host h, Origination o, std::size_t window)
      : origination(std::move(o)), d_(d), host_(std::move(h)), window_(window) {}
  // Transactions still open when a test ends go with their connection (as a
  // DeliveryConnection's do).
  ~ScriptedChannel() override {
    for (Slot* s : slots) delete s;
  }

  bool ready() const noexcept override { return is_ready && !closed; }
  bool connecting() const noexcept override { return !is_ready && !closed; }
  std::size_t load() const noexcept override { return slots.size(); }
  const Host& host() const noexcept override { return host_; }
  void fill() noexcept override {
    while (ready() && !quitting && slots.size() < window_) {
      Slot* s = d_.take(this);
      if (s == nullptr) break;
      if (s->conn != this) continue;  // resolved locally
      slots.push_back(s);
      ++taken;
    }
  }
  void submit(Slot* s) noexcept override { submitted.push_back(s); }
  void quit() noexcept override {
    quitting = true;
    ++quits;
  }
  void slot_detached(Slot* s) noexcept override {
    std::erase(slots, s);
    s->conn = nullptr;
  }
  std::string tls_version() const override { return tls; }
  bool plaintext_fallback() const noexcept override { return false; }
  bool remote_dsn() const noexcept override { return false; }

  // The oldest submitted transaction gets `final` (every recipient accepted with 250).
  void answer(const smtp::Reply& final) {
    ASSERT_FALSE(submitted.empty());
    Slot* s = submitted.front();
    submitted.pop_front();
    std::erase(slots, s);
    smtp::TransactionResult r;
    r.mail_reply = smtp::Reply(250, {2, 1, 0}, "ok");
    r.rcpt_replies.assign(s->rcpts.size(), smtp::Reply(250, {2, 1, 5}, "ok"));
    r.final_reply = final;
    d_.finish(s, &r);
  }
  void answer_all(const smtp::Reply& final) {
    while (!submitted.empty()) answer(final);
  }
  // The session came up.
  void up() {
    is_ready = true;
    d_.on_ready(*this);
  }
  // The session failed before it was ready (connect refused, 554 greeting ...).
  void fail(const smtp::Reply& reply, bool local = false) {
    d_.session_failed(*this, reply, /*before_ready=*/true, local);
    close();
  }
  void close() {
    closed = true;
    for (Slot* s : std::vector<Slot*>(slots)) {
      std::erase(submitted, s);
      slot_detached(s);
      d_.requeue(s);
    }
    slots.clear();
    d_.connection_gone(this);
  }
  std::vector<std::uint64_t> submitted_messages() const {
    std::vector<std::uint64_t> out;
    for (const Slot* s : submitted) out.push_back(s->message());
    return out;
  }

  bool is_ready = false;
  bool closed = false;
  bool quitting = false;
  int quits = 0;
  std::size_t taken = 0;
  std::string tls;
  std::vector<Slot*> slots;
  std::deque<Slot*> submitted;
  Origination origination;

 private:
  Destination& d_;
  Host host_;
  std::size_t window_;
};

struct Accounted {
  accounting::EventType type;
  std::string rcpt;
  std::string mx;
  int code = 0;
  std::string enhanced;
  std::string response;
};

class FakeEnv final : public DeliveryEnv {
 public:
  const Clock& clock() const noexcept override { return clock_; }
  void defer(std::function<void()> fn) override { deferred_.push_back(std::move(fn)); }
  void read(std::uint32_t origin, spool::Location loc, spool::RecordWaiter* w) noexcept override {
    reads_.push_back({origin, loc, w});
  }
  dns::MxAnswer lookup_mx(std::string_view domain, dns::MxCache::Callback cb) override {
    ++mx_lookups;
    auto it = mx.find(std::string(domain));
    if (it != mx.end() && !hold_dns) return it->second;
    mx_waiting[std::string(domain)].push_back(std::move(cb));
    return nullptr;
  }
  dns::MxAnswer lookup_host(std::string_view host, dns::MxCache::Callback cb) override {
    ++host_lookups;
    return lookup_mx(host, std::move(cb));
  }
  // DANE: the answer for a host from `tlsa` (none: Insecure, no DANE), given at once.
  dns::TlsaAnswer lookup_tlsa(std::string_view host, dns::TlsaCache::Callback) override {
    ++tlsa_lookups;
    auto it = tlsa.find(std::string(host));
    if (it != tlsa.end()) return it->second;
    auto insecure = std::make_shared<dns::TlsaResult>();
    insecure->status = dns::TlsaStatus::Insecure;
    return insecure;
  }
  Channel* open(Destination& d, const Host& h, const Origination& o) override {
    if (open_with) return open_with(d, h, o);
    channels.push_back(std::make_unique<ScriptedChannel>(d, h, o, window));
    return channels.back().get();
  }
  void to_origin(std::uint32_t origin, Outcomes&& o) noexcept override {
    outcomes.emplace_back(origin, std::move(o));
  }
  void forward(Enqueue&& e) noexcept override { forwarded.push_back(std::move(e)); }
  void account(const accounting::Event& ev) noexcept override {
    events.push_back({ev.type, std::string(ev.rcpt), std::string(ev.mx), ev.code,
                      std::string(ev.enhanced), std::string(ev.response)});
  }

  // Runs deferred work and completes reads until nothing is left (bounded).
  void run() {
    for (int i = 0; i < 100000 && (!deferred_.empty() || !reads_.empty()); ++i) {
      if (!deferred_.empty()) {
        auto fn = std::move(deferred_.front());
        deferred_.pop_front();
        fn();
        continue;
      }
      Read r = reads_.front();
      reads_.pop_front();
      r.waiter->on_record(record(r.origin, r.loc));
    }
  }
  // One loop turn, as a shard runs it: the tasks deferred before it (not those they defer:
  // those wait for the next turn), then the IO completions (reads).
  void turn() {
    std::deque<std::function<void()>> now;
    now.swap(deferred_);
    for (auto& fn : now) fn();
    while (!reads_.empty()) {
      Read r = reads_.front();
      reads_.pop_front();
      r.waiter->on_record(record(r.origin, r.loc));
    }
  }
  // An MX answer that was not there when asked arrives.
  void answer_mx(const std::string& domain) {
    auto waiting = std::move(mx_waiting[domain]);
    mx_waiting.erase(domain);
    for (auto& cb : waiting) cb(mx.at(domain));
  }

  // Stores a framed record; returns where it is.
  spool::Location store(std::uint32_t origin, spool::RecordType type, const std::string& payload) {
    std::string framed;
    spool::frame(type, payload, spool::SegmentSeq{1}, next_offset_, framed);
    spool::Location loc;
    loc.segment = spool::SegmentSeq{1};
    loc.offset = next_offset_;
    loc.length = static_cast<std::uint32_t>(framed.size());
    next_offset_ += framed.size();
    spool_[{origin, loc.offset}] = std::move(framed);
    return loc;
  }
  void corrupt(std::uint32_t origin, spool::Location loc) { spool_[{origin, loc.offset}][20] ^= 1; }

  test::TestClock clock_;
  // Opens the connections instead of ScriptedChannels (a test of the real one).
  std::function<Channel*(Destination&, const Host&, const Origination&)> open_with;
  std::size_t window = 4;
  bool hold_dns = false;
  std::map<std::string, dns::MxAnswer> mx;
  std::map<std::string, std::vector<dns::MxCache::Callback>> mx_waiting;
  int mx_lookups = 0;
  int host_lookups = 0;
  int tlsa_lookups = 0;
  std::map<std::string, dns::TlsaAnswer> tlsa;  // by MX host name
  std::vector<std::unique_ptr<ScriptedChannel>> channels;
  std::vector<std::pair<std::uint32_t, Outcomes>> outcomes;
  std::vector<Enqueue> forwarded;
  std::vector<Accounted> events;

 private:
  struct Read {
    std::uint32_t origin;
    spool::Location loc;
    spool::RecordWaiter* waiter;
  };
  Result<spool::RecordBytes> record(std::uint32_t origin, spool::Location loc) {
    auto it = spool_.find({origin, loc.offset});
    if (it == spool_.end()) return std::unexpected(make_error_code(std::errc::no_such_file_or_directory));
    spool::RecordBytes rb;
    rb.bytes.assign(it->second.begin(), it->second.end());
    auto raw = spool::parse_framed(std::string_view(rb.bytes.data(), rb.bytes.size()), loc.segment,
                                   loc.offset);
    if (!raw) return std::unexpected(raw.error());
    rb.raw = *raw;
    return rb;
  }

  std::deque<std::function<void()>> deferred_;
  std::deque<Read> reads_;
  std::map<std::pair<std::uint32_t, std::uint64_t>, std::string> spool_;
  std::uint64_t next_offset_ = 4096;
};

inline dns::MxAnswer mx_answer(const std::string& domain,
                        std::vector<std::pair<std::string, std::string>> hosts,  // name, ip
                        std::vector<std::uint16_t> prefs = {}) {
  auto r = std::make_shared<dns::MxResult>();
  r->status = dns::MxStatus::Ok;
  r->domain = domain;
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    dns::MxHost h;
    h.name = hosts[i].first;
    h.preference = i < prefs.size() ? prefs[i] : 10;
    h.addresses.push_back(*net::SocketAddress::parse(hosts[i].second, 0));
    r->hosts.push_back(std::move(h));
  }
  r->expires = TimePoint::max();
  return r;
}

inline dns::MxAnswer mx_failure(const std::string& domain, dns::MxStatus status, std::string detail) {
  auto r = std::make_shared<dns::MxResult>();
  r->status = status;
  r->domain = domain;
  r->detail = std::move(detail);
  r->expires = TimePoint::max();
  return r;
}

inline const smtp::Reply kOk(250, {2, 0, 0}, "queued");
inline const smtp::Reply kTempFail(451, {4, 3, 0}, "try later");
inline const smtp::Reply kBounce(550, {5, 1, 1}, "no such user");
inline const smtp::Reply kThrottle(421, {4, 7, 0}, "too many connections, slow down");

class DestinationTest : public ::testing::Test {
 protected:
  static std::shared_ptr<const net::TlsContext> client_tls() {
    static const auto ctx = std::make_shared<const net::TlsContext>(net::TlsContextOptions{});
    return ctx;
  }
  DestinationTest()
      : classifier_(std::make_shared<const queue::Classifier>(*queue::Classifier::create({}))) {}

  // Loads `toml` (on top of defaults) and builds the destination side on the env; a.test
  // has one MX host, 127.0.0.2. `signers` sign mail From: news@shop.test if they have its key.
  void start(const std::string& toml = "", SignersPtr signers = nullptr) {
    config::LoadOptions o;
    o.resolv_conf = "/nonexistent/resolv.conf";
    o.hostname = "node.test";
    auto c = config::load_string("[dns]\nresolvers = [\"127.0.0.1\"]\n" + toml, "test.toml", o);
    ASSERT_TRUE(c.has_value()) << c.error().message;
    config_ = *c;
    side_ = std::make_unique<DestinationSide>(
        env_, context(config_, env_.window, std::move(signers)), spill_dir_);
    env_.mx["a.test"] = mx_answer("a.test", {{"mx.a.test", "127.0.0.2"}});
  }

  // What a shard's Outbound would give its destinations for `config`.
  DeliveryContext context(config::ConfigPtr config, std::size_t window,
                          SignersPtr signers = nullptr) {
    auto settings = std::make_shared<DeliverySettings>();
    settings->config = config;
    settings->classifier = classifier_;
    settings->signers = std::move(signers);
    // A client context as production has (STARTTLS is tried only when a test's server
    // offers it).
    settings->tls = client_tls();
    DeliveryContext ctx;
    ctx.policy = make_policy(*config, *classifier_);
    ctx.settings = std::move(settings);
    ctx.hostname = "node.test";
    ctx.window = static_cast<std::uint32_t>(window);
    ctx.own_listeners = &own_;
    return ctx;
  }

  // n one-recipient messages for a.test, pumped.
  void queue(int n) {
    for (int i = 0; i < n; ++i) message("a.test");
    env_.run();
  }
  // Connection i comes up and takes what it can.
  ScriptedChannel& up(std::size_t i) {
    ScriptedChannel& c = *env_.channels.at(i);
    c.up();
    env_.run();
    return c;
  }

  // A message of `rcpts` recipients at `domain` on origin shard 0, queued now (or received
  // `age` ago); returns its id.
  // cancelled: as the origin dispatches a job's recipients after salvoctl bounce --id.
  std::uint64_t message(const std::string& domain, int rcpts = 1, Duration age = 0s,
                        bool cancelled = false) {
    const std::uint64_t id = next_id_++;
    std::vector<std::string> addrs;
    for (int i = 0; i < rcpts; ++i) addrs.push_back(fmt::format("u{}@{}", i, domain));
    spool::MessageRecord m;
    m.id = spool::MessageId{id};
    m.received_unix_ns = to_ns(env_.clock_.wall_now() - std::chrono::duration_cast<WallTime::duration>(age));
    m.reverse_path = "sender@shop.test";
    for (const auto& a : addrs) m.recipients.push_back({a, 0, {}});
    const std::string body = fmt::format("From: news@shop.test\r\nSubject: {}\r\n\r\nhello\r\n", id);
    m.body = body;
    std::string payload;
    spool::encode(m, payload);
    const spool::Location loc = env_.store(0, spool::RecordType::Message, payload);
    for (int i = 0; i < rcpts; ++i) {
      Enqueue e;
      e.origin = 0;
      e.message = id;
      e.recipient = static_cast<std::uint32_t>(i);
      e.record = loc;
      e.received_unix_ns = m.received_unix_ns;
      e.domain = domain;
      e.cancelled = cancelled;
      side_->accept(std::move(e));
    }
    locations_[id] = loc;
    return id;
  }

  // Every recipient state reported to the origin so far, as "message:recipient=state".
  std::vector<spool::RecipientState> states_of(std::uint64_t id) const {
    std::vector<spool::RecipientState> out;
    for (const auto& [origin, o] : env_.outcomes) {
      if (o.message != id) continue;
      for (const auto& r : o.recipients) out.push_back(r.state);
    }
    return out;
  }
  std::size_t count_events(accounting::EventType t) const {
    return static_cast<std::size_t>(std::count_if(env_.events.begin(), env_.events.end(),
                                                  [t](const Accounted& a) { return a.type == t; }));
  }
  // Open connections of the env (not closed).
  std::vector<ScriptedChannel*> open_channels() const {
    std::vector<ScriptedChannel*> out;
    for (const auto& c : env_.channels) {
      if (!c->closed) out.push_back(c.get());
    }
    return out;
  }
  Destination& dest(const std::string& key) {
    Destination* d = side_->find(key);
    EXPECT_NE(d, nullptr) << key;
    return *d;
  }
  void tick_for(Duration d, Duration step = 10ms) {
    for (Duration t = 0s; t < d; t += step) {
      env_.clock_.advance(step);
      side_->tick();
      env_.run();
    }
  }

  FakeEnv env_;
  OwnListeners own_;  // this node's listeners: none unless a test sets them before start()
  std::shared_ptr<const queue::Classifier> classifier_;
  config::ConfigPtr config_;
  std::string spill_dir_;  // set before start(): destinations spill there
  std::unique_ptr<DestinationSide> side_;
  std::uint64_t next_id_ = 0x100;
  std::map<std::uint64_t, spool::Location> locations_;
};

}  // namespace salvo::outbound
