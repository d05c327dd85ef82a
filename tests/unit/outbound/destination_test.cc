// SPDX-License-Identifier: Apache-2.0
// Destination and DestinationSide on fakes: a DeliveryEnv with a test clock, an in-memory
// spool, scripted MX answers and scripted connections (channels). Each test names one
// behaviour of the destination side — the order work is taken in, limits that must never
// be passed, back-off, MX fallback, rollups, expiry, operator verbs — and fails when it
// breaks. No sockets, no threads: the env runs deferred work and reads in order.
#include "outbound/destination.h"

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

#include "outbound/destination_side.h"
#include "outbound/slot.h"
#include "support/test_clock.h"
#include "unit/dkim/dkim_test_util.h"

namespace salvo::outbound {
namespace {

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
  Channel* open(Destination& d, const Host& h, const Origination& o) override {
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
    spool::frame(type, payload, framed);
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
  std::size_t window = 4;
  bool hold_dns = false;
  std::map<std::string, dns::MxAnswer> mx;
  std::map<std::string, std::vector<dns::MxCache::Callback>> mx_waiting;
  int mx_lookups = 0;
  int host_lookups = 0;
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
    auto raw = spool::parse_framed(std::string_view(rb.bytes.data(), rb.bytes.size()), loc.offset);
    if (!raw) return std::unexpected(raw.error());
    rb.raw = *raw;
    return rb;
  }

  std::deque<std::function<void()>> deferred_;
  std::deque<Read> reads_;
  std::map<std::pair<std::uint32_t, std::uint64_t>, std::string> spool_;
  std::uint64_t next_offset_ = 4096;
};

dns::MxAnswer mx_answer(const std::string& domain,
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

dns::MxAnswer mx_failure(const std::string& domain, dns::MxStatus status, std::string detail) {
  auto r = std::make_shared<dns::MxResult>();
  r->status = status;
  r->domain = domain;
  r->detail = std::move(detail);
  r->expires = TimePoint::max();
  return r;
}

const smtp::Reply kOk(250, {2, 0, 0}, "queued");
const smtp::Reply kTempFail(451, {4, 3, 0}, "try later");
const smtp::Reply kBounce(550, {5, 1, 1}, "no such user");
const smtp::Reply kThrottle(421, {4, 7, 0}, "too many connections, slow down");

class DestinationTest : public ::testing::Test {
 protected:
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
    side_ = std::make_unique<DestinationSide>(env_, context(config_, env_.window, std::move(signers)));
    env_.mx["a.test"] = mx_answer("a.test", {{"mx.a.test", "127.0.0.2"}});
  }

  // What a shard's Outbound would give its destinations for `config`.
  DeliveryContext context(config::ConfigPtr config, std::size_t window,
                          SignersPtr signers = nullptr) {
    auto settings = std::make_shared<DeliverySettings>();
    settings->config = config;
    settings->classifier = classifier_;
    settings->signers = std::move(signers);
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
  std::uint64_t message(const std::string& domain, int rcpts = 1, Duration age = 0s) {
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
  std::unique_ptr<DestinationSide> side_;
  std::uint64_t next_id_ = 0x100;
  std::map<std::uint64_t, spool::Location> locations_;
};

// --- pump and fill ----------------------------------------------------------------------

TEST_F(DestinationTest, NothingOpensBeforeTheMxAnswerArrives) {
  start();
  env_.hold_dns = true;
  message("a.test");
  env_.run();
  EXPECT_TRUE(env_.channels.empty());
  EXPECT_EQ(env_.mx_lookups, 1);
  env_.hold_dns = false;
  env_.answer_mx("a.test");
  env_.run();
  ASSERT_EQ(env_.channels.size(), 1u);
  EXPECT_EQ(env_.channels[0]->host().name, "mx.a.test");
  EXPECT_EQ(env_.channels[0]->host().address.ip(), "127.0.0.2");
  EXPECT_EQ(env_.channels[0]->host().address.port(), 25);
}

TEST_F(DestinationTest, OpensOnlyAsManyConnectionsAsTheReadyWorkNeeds) {
  start();
  queue(10);
  // window 4: a connection being opened counts for four transactions; 10 need three.
  EXPECT_EQ(env_.channels.size(), 3u);
  for (auto& c : env_.channels) c->up();
  env_.run();
  std::size_t taken = 0;
  for (auto& c : env_.channels) taken += c->taken;
  EXPECT_EQ(taken, 10u);
}

TEST_F(DestinationTest, NeverMoreConnectionsThanMaxConnections) {
  start("[[shaping]]\ndomain = \"a.test\"\nmax_connections = 2\n");
  queue(100);
  EXPECT_EQ(env_.channels.size(), 2u);
  tick_for(200ms);
  EXPECT_EQ(env_.channels.size(), 2u);
}

TEST_F(DestinationTest, AClosedConnectionsPlaceIsKeptForTheLinger) {
  start("[[shaping]]\ndomain = \"a.test\"\nmax_connections = 1\n");
  queue(10);
  ASSERT_EQ(env_.channels.size(), 1u);
  up(0);
  env_.channels[0]->answer_all(kOk);
  env_.channels[0]->close();
  env_.run();
  side_->tick();
  env_.run();
  EXPECT_EQ(env_.channels.size(), 1u) << "a new connection while the old one may still be closing";
  tick_for(Pool::kLinger + 10ms);
  EXPECT_EQ(env_.channels.size(), 2u);
}

TEST_F(DestinationTest, MessagesAreTakenInTheOrderTheyArrived) {
  env_.window = 8;
  start("[[shaping]]\ndomain = \"a.test\"\nmax_connections = 1\n");
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(message("a.test"));
  env_.run();
  up(0);
  EXPECT_EQ(env_.channels[0]->submitted_messages(), ids);
}

TEST_F(DestinationTest, AConnectionTakesNoMoreThanItsWindow) {
  start("[[shaping]]\ndomain = \"a.test\"\nmax_connections = 1\n");
  queue(9);
  auto& c = up(0);
  EXPECT_EQ(c.submitted.size(), 4u);
  c.answer(kOk);
  c.fill();
  env_.run();
  EXPECT_EQ(c.submitted.size(), 4u);
  EXPECT_EQ(c.taken, 5u);
}

TEST_F(DestinationTest, RecipientsOfOneMessageShareATransactionUpToMaxRecipients) {
  start("[delivery]\nmax_recipients = 2\n");
  const auto id = message("a.test", 5);
  env_.run();
  up(0);
  auto& c = *env_.channels[0];
  ASSERT_EQ(c.submitted.size(), 3u);
  EXPECT_EQ(c.submitted[0]->rcpts.size(), 2u);
  EXPECT_EQ(c.submitted[1]->rcpts.size(), 2u);
  EXPECT_EQ(c.submitted[2]->rcpts.size(), 1u);
  EXPECT_EQ(c.submitted[0]->rcpt_data[1].address, "u1@a.test");
  for (Slot* s : c.submitted) EXPECT_EQ(s->message(), id);
}

TEST_F(DestinationTest, TheMessageSentIsTheSpooledOne) {
  start();
  const auto id = message("a.test");
  env_.run();
  up(0);
  Slot* s = env_.channels[0]->submitted.at(0);
  EXPECT_EQ(s->reverse_path, "sender@shop.test");
  EXPECT_EQ(s->send, fmt::format("From: news@shop.test\r\nSubject: {}\r\n\r\nhello\r\n", id));
}

TEST_F(DestinationTest, SigningGoesAFewAtATimeBetweenLoopTurns) {
  dkim::SignerOptions o;
  o.domain = "shop.test";
  o.selector = "s1";
  o.algorithm = dkim::Algorithm::Ed25519Sha256;
  o.private_key_pem = dkim::test::keys().ed25519;
  auto signer = dkim::Signer::create(o);
  ASSERT_TRUE(signer.has_value());
  std::vector<dkim::Signer> list;
  list.push_back(std::move(*signer));
  env_.window = 40;
  start("[[shaping]]\ndomain = \"a.test\"\nmax_connections = 1\n",
        std::make_shared<const Signers>(std::move(list)));
  queue(40);
  auto& c = *env_.channels.at(0);
  c.up();  // takes 40 transactions: their reads are in flight
  env_.turn();  // reads done: 40 wait for signatures
  EXPECT_TRUE(c.submitted.empty());
  env_.turn();
  EXPECT_EQ(c.submitted.size(), static_cast<std::size_t>(DestinationSide::kSignBatch))
      << "the signing stage's share of one loop turn";
  env_.turn();
  EXPECT_EQ(c.submitted.size(), 2u * DestinationSide::kSignBatch);
  env_.run();
  ASSERT_EQ(c.submitted.size(), 40u);
  for (const Slot* s : c.submitted) {
    EXPECT_TRUE(s->send.starts_with("DKIM-Signature: v=1; a=ed25519-sha256;")) << s->send;
    EXPECT_TRUE(s->send.ends_with(s->original));
  }
}

// --- shaping --------------------------------------------------------------------------

TEST_F(DestinationTest, MessageRateIsNeverExceeded) {
  start("[[shaping]]\ndomain = \"a.test\"\nmax_message_rate = \"20/s\"\n");
  queue(200);
  for (auto& c : env_.channels) c->up();
  env_.run();
  // Answer everything as it is submitted, for two seconds of ticks.
  std::size_t sent = 0;
  for (int step = 0; step < 200; ++step) {
    env_.clock_.advance(10ms);
    side_->tick();
    env_.run();
    for (auto& c : env_.channels) {
      sent += c->submitted.size();
      c->answer_all(kOk);
    }
    env_.run();
  }
  // 20/s over 2 s, plus the burst of a tenth of a second (2) the bucket starts with.
  EXPECT_LE(sent, 42u);
  EXPECT_GE(sent, 38u);
}

TEST_F(DestinationTest, ConnectionRateIsNeverExceeded) {
  start("[[shaping]]\ndomain = \"a.test\"\nmax_connection_rate = \"10/s\"\n");
  queue(500);
  EXPECT_EQ(env_.channels.size(), 1u);  // burst of one
  tick_for(1s);
  EXPECT_GE(env_.channels.size(), 10u);
  EXPECT_LE(env_.channels.size(), 11u);
}

TEST_F(DestinationTest, HeldDestinationQueuesButOpensNothing) {
  start("[[shaping]]\ndomain = \"a.test\"\nmax_connections = 0\n");
  message("a.test", 3);
  env_.run();
  tick_for(100ms);
  EXPECT_TRUE(env_.channels.empty());
  EXPECT_TRUE(env_.outcomes.empty());
  EXPECT_EQ(dest("a.test").info().state, "held");
  EXPECT_EQ(dest("a.test").info().ready, 3u);
}

// --- back-off -------------------------------------------------------------------------

TEST_F(DestinationTest, AThrottlingReplyEntersBackOffAndNoConnectionOpensDuringIt) {
  start("[delivery]\nbackoff_pause = \"10s\"\n");
  queue(2);
  ASSERT_EQ(env_.channels.size(), 1u);
  up(0);
  env_.channels[0]->answer(kThrottle);
  env_.channels[0]->close();
  env_.run();
  EXPECT_EQ(dest("a.test").info().state, "backoff");
  tick_for(5s, 100ms);
  EXPECT_EQ(env_.channels.size(), 1u) << "a connection opened during the back-off pause";
  tick_for(6s, 100ms);
  EXPECT_GE(env_.channels.size(), 2u) << "the pause did not end";
  EXPECT_EQ(dest("a.test").info().state, "recovering");
}

TEST_F(DestinationTest, BackOffRecoveryAllowsOneConnectionThenGrowsWithDeliveries) {
  start("[delivery]\nbackoff_pause = \"1s\"\n[[shaping]]\ndomain = \"a.test\"\nmax_connections = 4\n");
  queue(200);
  ASSERT_EQ(env_.channels.size(), 4u);
  for (auto& c : env_.channels) {
    c->up();
    env_.run();
    c->answer(kThrottle);
    c->close();
  }
  env_.run();
  tick_for(1100ms, 100ms);
  ASSERT_EQ(open_channels().size(), 1u) << "recovery starts with one connection";
  ScriptedChannel* c = open_channels()[0];
  c->up();
  env_.run();
  for (int i = 0; i < 60 && !c->submitted.empty(); ++i) {
    c->answer_all(kOk);
    c->fill();
    env_.run();
  }
  tick_for(100ms);
  EXPECT_GT(open_channels().size(), 1u) << "deliveries did not widen the window";
  EXPECT_LE(open_channels().size(), 4u);
}

TEST_F(DestinationTest, TheSameThrottleEpisodeIsCountedOnce) {
  start("[delivery]\nbackoff_pause = \"10s\"\n[[shaping]]\ndomain = \"a.test\"\nmax_connections = 3\n");
  queue(30);
  ASSERT_EQ(env_.channels.size(), 3u);
  for (auto& c : env_.channels) {  // three at once: one episode
    c->up();
    env_.run();
    c->answer(kThrottle);
    c->close();
  }
  env_.run();
  tick_for(10s + 100ms, 100ms);
  EXPECT_EQ(dest("a.test").info().state, "recovering") << "the pause doubled";
}

// --- MX fallback ------------------------------------------------------------------------

TEST_F(DestinationTest, AHostThatFailsBeforeReadyIsSkippedForTheNextMx) {
  start();
  env_.mx["a.test"] =
      mx_answer("a.test", {{"mx1.a.test", "127.0.0.2"}, {"mx2.a.test", "127.0.0.3"}}, {10, 20});
  message("a.test");
  env_.run();
  ASSERT_EQ(env_.channels.size(), 1u);
  EXPECT_EQ(env_.channels[0]->host().name, "mx1.a.test");
  env_.channels[0]->fail(smtp::Reply(421, {4, 4, 1}, "connection refused"), /*local=*/true);
  env_.run();
  tick_for(100ms);
  ASSERT_EQ(env_.channels.size(), 2u);
  EXPECT_EQ(env_.channels[1]->host().name, "mx2.a.test");
  up(1);
  env_.channels[1]->answer(kOk);
  EXPECT_EQ(states_of(0x100), std::vector{spool::RecipientState::Delivered});
}

TEST_F(DestinationTest, EveryHostDownDefersWithWhatTheLastHostSaid) {
  start();
  env_.mx["a.test"] = mx_answer("a.test", {{"mx1.a.test", "127.0.0.2"}});
  const auto id = message("a.test", 2);
  env_.run();
  ASSERT_EQ(env_.channels.size(), 1u);
  env_.channels[0]->fail(smtp::Reply(554, {5, 7, 1}, "go away"));
  env_.run();
  tick_for(100ms);
  EXPECT_EQ(env_.channels.size(), 1u);
  EXPECT_EQ(states_of(id),
            (std::vector{spool::RecipientState::Deferred, spool::RecipientState::Deferred}));
  ASSERT_FALSE(env_.events.empty());
  EXPECT_EQ(env_.events.back().code, 451);
  EXPECT_EQ(env_.events.back().enhanced, "4.4.0");
  EXPECT_NE(env_.events.back().response.find("mx1.a.test said: 554 go away"), std::string::npos)
      << env_.events.back().response;
}

TEST_F(DestinationTest, EqualPreferenceHostsShareTheConnections) {
  start();
  env_.mx["a.test"] =
      mx_answer("a.test", {{"mx1.a.test", "127.0.0.2"}, {"mx2.a.test", "127.0.0.3"}}, {10, 10});
  queue(16);
  ASSERT_EQ(env_.channels.size(), 4u);
  int first = 0;
  for (auto& c : env_.channels) first += c->host().name == "mx1.a.test";
  EXPECT_EQ(first, 2);
}

TEST_F(DestinationTest, NxDomainBouncesAndServfailDefers) {
  start();
  env_.mx["gone.test"] = mx_failure("gone.test", dns::MxStatus::Permanent, "gone.test: NXDOMAIN");
  env_.mx["flaky.test"] = mx_failure("flaky.test", dns::MxStatus::Temporary, "flaky.test: SERVFAIL");
  const auto gone = message("gone.test");
  const auto flaky = message("flaky.test");
  env_.run();
  EXPECT_TRUE(env_.channels.empty());
  EXPECT_EQ(states_of(gone), std::vector{spool::RecipientState::Bounced});
  EXPECT_EQ(states_of(flaky), std::vector{spool::RecipientState::Deferred});
}

TEST_F(DestinationTest, AnMxThatIsThisNodeBouncesAsALoopWithoutConnecting) {
  const std::vector<net::SocketAddress> listening = {*net::SocketAddress::parse("127.0.0.2:25")};
  own_ = OwnListeners(listening, {});
  start();  // a.test's one MX host is 127.0.0.2
  env_.mx["b.test"] =
      mx_answer("b.test", {{"mx.a.test", "127.0.0.2"}, {"mx2.b.test", "127.0.0.3"}}, {10, 20});
  const auto looped = message("a.test", 2);
  const auto other = message("b.test");
  env_.run();
  EXPECT_EQ(states_of(looped),
            (std::vector{spool::RecipientState::Bounced, spool::RecipientState::Bounced}));
  ASSERT_EQ(env_.channels.size(), 1u) << "only b.test's other host";
  EXPECT_EQ(env_.channels[0]->host().name, "mx2.b.test");
  EXPECT_TRUE(states_of(other).empty()) << "still on its way";
  ASSERT_EQ(count_events(accounting::EventType::Bounced), 2u);
  for (const auto& e : env_.events) {
    EXPECT_EQ(e.code, 554);
    EXPECT_EQ(e.enhanced, "5.4.4");
    EXPECT_EQ(e.response, "mail for a.test loops back to myself");
  }
  const Outcomes& o = env_.outcomes.back().second;
  EXPECT_EQ(o.dsn_to, "sender@shop.test");
  EXPECT_NE(o.dsn.find("Status: 5.4.4"), std::string::npos);
  EXPECT_EQ(side_->stats().loops, 2u);
  EXPECT_EQ(side_->stats().bounced, 2u);
}

// --- [routes] -----------------------------------------------------------------------------

TEST_F(DestinationTest, RoutesByAddressSkipTheMxLookup) {
  start("[routes]\n\"a.test\" = [\"127.0.0.9:2525\"]\n");
  message("a.test");
  env_.run();
  EXPECT_EQ(env_.mx_lookups, 0);
  ASSERT_EQ(env_.channels.size(), 1u);
  EXPECT_EQ(env_.channels[0]->host().address.to_string(), "127.0.0.9:2525");
}

TEST_F(DestinationTest, RoutesByHostNameAreResolvedFirst) {
  start("[routes]\n\"a.test\" = [\"relay.test:2525\"]\n");
  env_.mx["relay.test"] = mx_answer("relay.test", {{"relay.test", "127.0.0.7"}});
  env_.hold_dns = true;
  message("a.test");
  env_.run();
  EXPECT_EQ(env_.host_lookups, 1);
  EXPECT_TRUE(env_.channels.empty());
  env_.hold_dns = false;
  env_.answer_mx("relay.test");
  env_.run();
  ASSERT_EQ(env_.channels.size(), 1u);
  EXPECT_EQ(env_.channels[0]->host().address.to_string(), "127.0.0.7:2525");
  EXPECT_EQ(env_.channels[0]->host().name, "relay.test");
}

// --- rollup ---------------------------------------------------------------------------

TEST_F(DestinationTest, ADomainWhoseMxMatchesARollupForwardsItsMailThere) {
  start("[[shaping]]\nmx_suffix = \".bigmail.test\"\nmax_connections = 3\n");
  env_.mx["a.test"] = mx_answer("a.test", {{"in1.bigmail.test", "127.0.0.2"}});
  env_.mx["b.test"] = mx_answer("b.test", {{"in2.bigmail.test", "127.0.0.2"}});
  for (int i = 0; i < 20; ++i) {
    message("a.test");
    message("b.test");
  }
  env_.run();
  EXPECT_TRUE(env_.channels.empty()) << "the domain opened its own connections";
  ASSERT_EQ(env_.forwarded.size(), 40u);
  for (auto& e : env_.forwarded) EXPECT_EQ(e.key, "mx:.bigmail.test");
  for (auto& e : std::exchange(env_.forwarded, {})) side_->accept(std::move(e));
  env_.run();
  // One limit for both domains.
  EXPECT_EQ(env_.channels.size(), 3u);
  tick_for(100ms);
  EXPECT_EQ(env_.channels.size(), 3u);
  EXPECT_EQ(dest("mx:.bigmail.test").info().ready, 40u);
  EXPECT_EQ(dest("a.test").info().ready, 0u);
}

TEST_F(DestinationTest, LaterMailOfARolledUpDomainIsForwardedToo) {
  start("[[shaping]]\nmx_suffix = \".bigmail.test\"\n");
  env_.mx["a.test"] = mx_answer("a.test", {{"in1.bigmail.test", "127.0.0.2"}});
  message("a.test");
  env_.run();
  ASSERT_EQ(env_.forwarded.size(), 1u);
  message("a.test");
  env_.run();
  EXPECT_EQ(env_.forwarded.size(), 2u);
  EXPECT_EQ(env_.mx_lookups, 1) << "the answer was not remembered";
}

// --- outcomes ---------------------------------------------------------------------------

TEST_F(DestinationTest, ADeliveryReportsDeliveredToTheOriginAndAccountsIt) {
  start();
  const auto id = message("a.test", 2);
  env_.run();
  up(0);
  env_.channels[0]->answer(kOk);
  env_.run();
  EXPECT_EQ(states_of(id),
            (std::vector{spool::RecipientState::Delivered, spool::RecipientState::Delivered}));
  EXPECT_EQ(count_events(accounting::EventType::Delivered), 2u);
  EXPECT_EQ(env_.events[0].mx, "mx.a.test");
  EXPECT_EQ(side_->stats().delivered, 2u);
  EXPECT_EQ(dest("a.test").backlog().messages(), 0u) << "the message info was not released";
}

TEST_F(DestinationTest, ATemporaryFailureIsRetriedOnTheSchedule) {
  start("[delivery]\nretry_schedule = [\"10s\", \"1m\"]\n");
  const auto id = message("a.test");
  env_.run();
  auto& c = up(0);
  c.answer(kTempFail);
  env_.run();
  ASSERT_EQ(states_of(id), std::vector{spool::RecipientState::Deferred});
  EXPECT_EQ(env_.outcomes[0].second.recipients[0].attempts, 1u);
  EXPECT_EQ(env_.outcomes[0].second.recipients[0].next_attempt_unix_ns,
            to_ns(env_.clock_.wall_now() + 10s));
  EXPECT_EQ(dest("a.test").info().deferred, 1u);
  tick_for(9s, 500ms);
  EXPECT_TRUE(c.submitted.empty());
  tick_for(1500ms, 500ms);
  c.fill();
  env_.run();
  ASSERT_EQ(c.submitted.size(), 1u) << "not retried when due";
  c.answer(kOk);
  EXPECT_EQ(states_of(id).back(), spool::RecipientState::Delivered);
  EXPECT_EQ(env_.outcomes.back().second.recipients[0].attempts, 2u);
}

TEST_F(DestinationTest, APermanentFailureBouncesWithADsnToTheSender) {
  start();
  const auto id = message("a.test");
  env_.run();
  up(0);
  env_.channels[0]->answer(kBounce);
  ASSERT_EQ(states_of(id), std::vector{spool::RecipientState::Bounced});
  const Outcomes& o = env_.outcomes.back().second;
  EXPECT_EQ(o.dsn_to, "sender@shop.test");
  EXPECT_NE(o.dsn.find("Status: 5.1.1"), std::string::npos);
  EXPECT_NE(o.dsn.find("Reporting-MTA: dns; node.test"), std::string::npos);
  EXPECT_EQ(side_->stats().bounced, 1u);
}

TEST_F(DestinationTest, AnUnreadableRecordDefersWithoutAConnectionAttemptUsed) {
  start();
  const auto id = message("a.test");
  env_.corrupt(0, locations_[id]);
  env_.run();
  up(0);
  EXPECT_TRUE(env_.channels[0]->submitted.empty());
  EXPECT_EQ(states_of(id), std::vector{spool::RecipientState::Deferred});
  EXPECT_EQ(env_.events.back().enhanced, "4.3.0");
  EXPECT_EQ(side_->stats().read_errors, 1u);
}

TEST_F(DestinationTest, RecipientsOfAClosedConnectionGoBackToTheQueue) {
  start("[[shaping]]\ndomain = \"a.test\"\nmax_connections = 1\n");
  queue(3);
  up(0);
  ASSERT_EQ(env_.channels[0]->submitted.size(), 3u);
  env_.channels[0]->close();
  env_.run();
  EXPECT_TRUE(env_.outcomes.empty()) << "an attempt was counted";
  EXPECT_EQ(dest("a.test").info().ready, 3u);
  tick_for(Pool::kLinger + 10ms);
  ASSERT_EQ(env_.channels.size(), 2u);
  up(1);
  EXPECT_EQ(env_.channels[1]->submitted.size(), 3u);
}

// --- expiry -----------------------------------------------------------------------------

TEST_F(DestinationTest, AMessagePastItsExpiryExpiresWithoutBeingSent) {
  start("[delivery]\nexpiry = \"1h\"\n");
  const auto old = message("a.test", 1, 2h);
  const auto fresh = message("a.test");
  env_.run();
  up(0);
  EXPECT_EQ(env_.channels[0]->submitted_messages(), std::vector{fresh});
  EXPECT_EQ(states_of(old), std::vector{spool::RecipientState::Expired});
  EXPECT_EQ(count_events(accounting::EventType::Expired), 1u);
  EXPECT_EQ(env_.events.back().enhanced, "4.4.7");
}

TEST_F(DestinationTest, AHeldDestinationStillExpiresWhatIsTooOld) {
  start("[delivery]\nexpiry = \"1h\"\n[[shaping]]\ndomain = \"a.test\"\nmax_connections = 0\n");
  const auto id = message("a.test", 1, 30min);
  env_.run();
  EXPECT_TRUE(states_of(id).empty());
  env_.clock_.advance(31min);
  side_->tick();
  env_.run();
  EXPECT_TRUE(env_.channels.empty());
  EXPECT_EQ(states_of(id), std::vector{spool::RecipientState::Expired});
  EXPECT_NE(env_.events.back().response.find("destination held"), std::string::npos);
}

TEST_F(DestinationTest, ADeferredRecipientPastExpiryExpiresAtItsNextAttempt) {
  start("[delivery]\nexpiry = \"1h\"\nretry_schedule = [\"50m\"]\n");
  const auto id = message("a.test", 1, 30min);
  env_.run();
  auto& c = up(0);
  c.answer(kTempFail);
  env_.run();
  env_.clock_.advance(51min);
  side_->tick();
  env_.run();
  c.fill();
  env_.run();
  EXPECT_TRUE(c.submitted.empty());
  EXPECT_EQ(states_of(id).back(), spool::RecipientState::Expired);
}

// --- operator verbs ---------------------------------------------------------------------

TEST_F(DestinationTest, PauseQuitsIdleConnectionsAndResumeOpensAgain) {
  start();
  message("a.test");
  env_.run();
  auto& c = up(0);
  c.answer(kOk);
  env_.run();
  EXPECT_EQ(side_->pause("a.test", 0, 1), 1u);
  EXPECT_EQ(c.quits, 1);
  c.close();
  message("a.test");
  tick_for(200ms);
  EXPECT_EQ(env_.channels.size(), 1u);
  EXPECT_EQ(dest("a.test").info().state, "paused");
  EXPECT_EQ(side_->resume("a.test"), 1u);
  tick_for(20ms);
  EXPECT_EQ(env_.channels.size(), 2u);
}

TEST_F(DestinationTest, FlushRetriesDeferredRecipientsNow) {
  start("[delivery]\nretry_schedule = [\"1h\"]\n");
  message("a.test");
  env_.run();
  auto& c = up(0);
  c.answer(kTempFail);
  env_.run();
  EXPECT_EQ(dest("a.test").info().deferred, 1u);
  EXPECT_EQ(side_->flush("a.test"), 1u);
  tick_for(20ms);
  c.fill();
  env_.run();
  EXPECT_EQ(c.submitted.size(), 1u);
}

TEST_F(DestinationTest, BounceFailsEverythingQueuedForTheDestination) {
  start("[[shaping]]\ndomain = \"a.test\"\nmax_connections = 0\n");
  const auto a = message("a.test", 2);
  const auto b = message("a.test");
  env_.run();
  EXPECT_EQ(side_->bounce("a.test"), 1u);
  tick_for(20ms);
  EXPECT_EQ(states_of(a), (std::vector{spool::RecipientState::Bounced, spool::RecipientState::Bounced}));
  EXPECT_EQ(states_of(b), std::vector{spool::RecipientState::Bounced});
  EXPECT_EQ(env_.events.back().response, "delivery cancelled by the operator");
  // Mail that arrives afterwards is not bounced.
  const auto c = message("a.test");
  tick_for(20ms);
  EXPECT_TRUE(states_of(c).empty());
}

TEST_F(DestinationTest, BounceOfOneMessageLeavesTheOthersQueued) {
  start("[[shaping]]\ndomain = \"a.test\"\nmax_connections = 0\n");
  const auto a = message("a.test", 3);
  const auto b = message("a.test");
  env_.run();
  EXPECT_EQ(side_->bounce_message(a), 3u);
  tick_for(20ms);
  EXPECT_EQ(states_of(a).size(), 3u);
  EXPECT_TRUE(states_of(b).empty());
  EXPECT_EQ(dest("a.test").info().ready, 1u);
}

// --- reload and stop --------------------------------------------------------------------

TEST_F(DestinationTest, ReloadAppliesNewLimitsToQueuedMail) {
  start("[[shaping]]\ndomain = \"a.test\"\nmax_connections = 0\n");
  queue(10);
  EXPECT_TRUE(env_.channels.empty());
  auto c = config::load_string(
      "[dns]\nresolvers = [\"127.0.0.1\"]\n[[shaping]]\ndomain = \"a.test\"\nmax_connections = 2\n",
      "test.toml", config::LoadOptions{.resolv_conf = "/nonexistent", .hostname = "node.test"});
  ASSERT_TRUE(c.has_value());
  side_->reload(context(*c, 4));
  env_.run();
  tick_for(20ms);
  EXPECT_EQ(env_.channels.size(), 2u);
}

TEST_F(DestinationTest, ReloadAppliesANewBackOffPause) {
  start("[delivery]\nbackoff_pause = \"1h\"\n");
  queue(2);
  auto c = config::load_string(
      "[dns]\nresolvers = [\"127.0.0.1\"]\n[delivery]\nbackoff_pause = \"2s\"\n", "test.toml",
      config::LoadOptions{.resolv_conf = "/nonexistent", .hostname = "node.test"});
  ASSERT_TRUE(c.has_value());
  side_->reload(context(*c, 4));
  env_.run();
  ASSERT_EQ(env_.channels.size(), 1u);
  up(0).answer(kThrottle);
  env_.channels[0]->close();
  env_.run();
  EXPECT_EQ(dest("a.test").info().state, "backoff");
  tick_for(2100ms, 100ms);
  EXPECT_EQ(env_.channels.size(), 2u) << "the pause was not the reloaded one";
}

TEST_F(DestinationTest, StoppingSendsNothingNewAndRequeuesWhatWasBeingRead) {
  start();
  queue(3);
  auto& c = *env_.channels.at(0);
  c.is_ready = true;
  c.fill();             // reads start
  side_->begin_stop();  // ... and the shard begins to stop before they complete
  env_.run();
  EXPECT_TRUE(c.submitted.empty());
  EXPECT_TRUE(env_.outcomes.empty());
  EXPECT_EQ(dest("a.test").info().in_flight, 0u);
  EXPECT_EQ(dest("a.test").info().ready, 3u) << "what was being read is not queued again";
}

}  // namespace
}  // namespace salvo::outbound
