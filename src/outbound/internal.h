// SPDX-License-Identifier: Apache-2.0
// Outbound internals: Outbound::Impl (the shard's delivery state), Destination (one routing
// domain's queue, shaping, route and connections), Slot (one transaction from record read to
// verdicts) and DeliveryConnection (smtp::ClientSession over net::Connection). Everything
// here is owned by one shard and used on its thread.
//
//   Destination::pump ─► open DeliveryConnection (host, egress) ─► Ready
//        │                      │ fill(): take_transaction ─► Slot ─► spool reads
//        │                      ▼                                     │
//        │              ClientSession.submit ◄── compose (template, DKIM) ◄┘
//        ▼                      │ TransactionDone
//   fail_ready (DNS/all hosts down) ─► Slot (local reply) ─► Destination::finish ─► Outcomes
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <salvo/accounting/accounting.h>
#include <salvo/base/clock.h>
#include <salvo/dkim/signer.h>
#include <salvo/dns/mx_cache.h>
#include <salvo/dns/resolver.h>
#include <salvo/io/detachable_op.h>
#include <salvo/net/stack.h>
#include <salvo/outbound/outbound.h>
#include <salvo/queue/destination_queue.h>
#include <salvo/queue/shaping.h>
#include <salvo/queue/verdict.h>
#include <salvo/smtp/client_session.h>
#include <salvo/spool/spool_index.h>
#include <salvo/spool/spool_reader.h>
#include <salvo/spool/spool_writer.h>
#include <salvo/spool/template.h>

namespace salvo::outbound {

class Destination;
class DeliveryConnection;

// Where one message's records are (per destination, shared by its queued recipients).
struct MsgInfo {
  std::uint32_t origin = 0;
  bool is_job = false;
  spool::Location record;        // messages: the Message record
  spool::Location job_template;  // jobs
  std::map<std::uint32_t, spool::Location> batches;  // jobs: first index -> batch record
  std::int64_t received_unix_ns = 0;
  std::uint32_t refs = 0;  // recipients of this message queued or in flight here
};

// A reply decided here rather than by a server (DNS failure, no host reachable, expiry).
struct LocalFailure {
  queue::Stage stage = queue::Stage::Connect;
  smtp::Reply reply;
  std::string mx;  // the host the failure concerns, if any
};

// One transaction: recipients of one message taken from a destination's queue, the record
// reads, the composed body, and (once sent) the session's answer. Owner: Outbound::Impl
// (heap; deleted by Destination::finish or requeue).
class Slot {
 public:
  struct Part final : spool::RecordWaiter {
    Slot* slot = nullptr;
    int which = 0;  // 0: message record / job batch, 1: job template
    void on_record(Result<spool::RecordBytes> rec) noexcept override;
  };

  Destination* dest = nullptr;
  DeliveryConnection* conn = nullptr;  // null: resolve locally, or the connection is gone
  std::optional<LocalFailure> local;
  std::uint64_t message = 0;
  MsgInfo info;  // a copy (batches: only the one needed)
  std::vector<queue::QueuedRecipient> rcpts;
  std::uint64_t cookie = 0;
  Part parts[2];
  int reads_pending = 0;
  std::error_code read_error;
  spool::RecordBytes bytes[2];
  // Decoded (views into bytes[]).
  std::string_view reverse_path, envid, job, body_source;
  spool::Ret ret = spool::Ret::Unspecified;
  std::uint8_t flags = 0;
  struct Rcpt {
    std::string_view address;
    std::uint8_t notify = 0;
    std::string_view orcpt;
    std::vector<spool::TemplateVar> vars;
  };
  std::vector<Rcpt> rcpt_data;  // parallel to rcpts
  // The envelope fields a Message record and a JobTemplate record share (their sender and
  // body are named differently).
  template <class Record>
  void set_envelope(const Record& r, std::string_view from, std::string_view content) {
    reverse_path = from;
    envid = r.envid;
    job = r.job;
    ret = r.ret;
    flags = r.flags;
    source = r.source;
    body_source = content;
  }
  spool::Source source = spool::Source::Smtp;
  std::string expanded;         // jobs: the template expanded for the recipient
  std::string body;             // DKIM signature + the message, when signed
  std::string_view original;    // the message before signing (DSN returns it)
  std::string_view send;        // the bytes sent
};

// Per-shard delivery state. Destinations are never freed while the shard runs (their
// count is bounded by the domains mail goes to), so MX callbacks and wake lists may hold
// plain pointers to them.
struct Outbound::Impl {
  Impl(shard::Shard& s, OutboundShared& sh, Mailbox& mb, spool::SpoolWriter& w,
       const spool::SpoolIndex& idx, net::Stack& st, accounting::Writer* acc);

  Outbound* self = nullptr;
  shard::Shard& shard;
  OutboundShared& shared;
  // The configuration in force (swapped by reload(); every one stays alive while salvod
  // runs, so a pointer held across a reload stays valid).
  const config::Config* config;
  const config::Config& cfg() const noexcept { return *config; }
  const queue::Classifier* classifier;
  Mailbox& mailbox;
  spool::SpoolWriter& writer;
  const spool::SpoolIndex& index;
  net::Stack& stack;
  accounting::Writer* accounting;
  std::uint32_t me = 0;
  queue::RetrySchedule retry;
  std::unique_ptr<dns::Resolver> resolver;
  std::unique_ptr<dns::MxCache> mx;
  std::vector<std::unique_ptr<spool::SpoolReader>> readers;  // per origin shard
  std::vector<dkim::Signer> signers;
  std::unordered_map<std::string, std::unique_ptr<Destination>> destinations;
  std::vector<Destination*> active;  // destinations with work or connections
  std::vector<Destination*> dirty;   // to pump after the current callback
  bool pump_scheduled = false;
  std::uint64_t next_cookie = 1;
  std::size_t slots = 0;             // Slots alive
  std::size_t dsn_commits = 0;       // DSN appends waiting for their commit
  bool stopping = false;
  bool stopped = false;
  TimePoint last_dns_tick{};
  void on_tick(std::int32_t res) noexcept;
  using Timer = io::DetachableOp<Impl, &Impl::on_tick>;
  Timer* timer = nullptr;
  OutboundStats stats;
  // Per destination class (never erased: names come from configs, so the set is bounded
  // and counters stay monotonic across reloads). std::map: Destinations keep pointers.
  std::map<std::string, ClassCounters, std::less<>> classes;
  std::deque<BounceInfo> recent_bounces;  // newest last, at most kRecentBounces

  Destination& destination(const std::string& domain);
  ClassCounters& class_counters(const config::Shaping& s);
  void mark_dirty(Destination& d);
  void run_dirty() noexcept;
  void arm_timer() noexcept;
  // One committed recipient of this shard's spool, to its destination's shard.
  void dispatch(std::uint64_t id, std::uint32_t recipient,
                const spool::SpoolIndex::RecipientRef& ref, std::int64_t received_unix_ns,
                std::string_view address, std::uint32_t attempts,
                std::int64_t next_attempt_unix_ns) noexcept;
  void route(Enqueue&& e) noexcept;       // to its destination shard (or here)
  void accept(Enqueue&& e) noexcept;      // on the destination shard
  void on_outcomes(Outcomes&& o) noexcept;
  void send_outcomes(std::uint32_t origin, Outcomes&& o) noexcept;
  const dkim::Signer* signer_for(std::string_view from_domain) const noexcept;
  spool::SpoolReader& reader(std::uint32_t origin) { return *readers[origin]; }
  Slot* new_slot();
  void free_slot(Slot* s) noexcept;
};

struct Host {
  std::string name;  // MX host name (or the route's literal)
  net::SocketAddress address;
  std::uint16_t preference = 0;
  TimePoint down_until{};
  TimePoint tls_failed_until{};  // opportunistic STARTTLS failed: plaintext until then
};

// One routing domain on its owner shard.
class Destination {
 public:
  Destination(Outbound::Impl& ob, std::string domain);

  void add(Enqueue&& e) noexcept;
  // Opens connections, feeds ready ones, resolves the route, fails what cannot go.
  void pump() noexcept;
  bool active() const noexcept;

  // From DeliveryConnection.
  void on_ready(DeliveryConnection& c) noexcept;
  // Up to max recipients of one message, within the message rate; null when none. The
  // slot is the connection's only if s->conn == c (an expired one resolves locally).
  Slot* take(DeliveryConnection* c) noexcept;
  void slot_ready(Slot* s) noexcept;  // reads done (or failed)
  void finish(Slot* s, const smtp::TransactionResult* result) noexcept;
  void session_failed(DeliveryConnection& c, const smtp::Reply& reply, bool before_ready,
                      bool local) noexcept;
  void connection_gone(DeliveryConnection* c) noexcept;
  // An opportunistic TLS handshake with this host failed: plaintext for a while; or the
  // host refused plaintext after all (tls_needed): STARTTLS again from now.
  void tls_failed(const net::SocketAddress& a) noexcept;
  void tls_needed(const net::SocketAddress& a) noexcept;
  // One throttling episode: back off (once; ignored while already paused).
  void throttle(TimePoint now) noexcept;
  // The recipients of a slot that was never sent go back to the queue (no attempt used).
  void requeue(Slot* s) noexcept;

  std::uint32_t allowed_connections() noexcept;
  const config::Shaping& shaping() const noexcept { return *shaping_; }
  const std::string& domain() const noexcept { return domain_; }
  Outbound::Impl& ob() noexcept { return ob_; }
  bool paused() noexcept;

 private:
  enum class RouteState : std::uint8_t { None, Resolving, Ok, Failed };
  void resolve() noexcept;
  void on_mx(const dns::MxAnswer& a) noexcept;
  void fail_ready(LocalFailure f) noexcept;
  Slot* start_slot(DeliveryConnection* c, std::optional<LocalFailure> local,
                   bool spend_rate) noexcept;
  // A slot for these recipients (one message; one recipient of a job), reading its record.
  Slot* make_slot(DeliveryConnection* c, std::optional<LocalFailure> local,
                  std::vector<queue::QueuedRecipient> rcpts) noexcept;
  // salvoctl bounce --id: the recipients taken out of the queue, failed a slot at a time.
  void fail_cancelled() noexcept;
  void set_rates() noexcept;
  // After a reload: the shaping entry, limits and route are looked up again.
  void reconfigure() noexcept;
  const Host* pick_host() noexcept;
  void open_connection(const Host& h) noexcept;

  friend class DeliveryConnection;
  friend class Outbound;
  Outbound::Impl& ob_;
  std::string domain_;
  const config::Shaping* shaping_;
  ClassCounters* class_;  // ob_.classes[class of shaping_]
  queue::DestinationQueue queue_;
  std::unordered_map<std::uint64_t, MsgInfo> msgs_;
  std::optional<queue::TokenBucket> msg_rate_;
  std::optional<queue::TokenBucket> conn_rate_;
  queue::Backoff backoff_;
  RouteState route_ = RouteState::None;
  TimePoint route_expires_{};
  std::vector<Host> hosts_;
  std::size_t next_host_ = 0;  // rotation among hosts of the best usable preference
  std::optional<LocalFailure> route_failure_;
  std::optional<LocalFailure> last_failure_;  // the last connection-level failure
  std::vector<DeliveryConnection*> conns_;
  std::deque<TimePoint> releasing_;  // closed connections still counted until then
  std::size_t connections_held() noexcept;
  std::size_t egress_next_ = 0;
  // MX rollup: a domain whose MX matches an mx_suffix entry hands its recipients to the
  // rollup destination ("mx:<suffix>", on its own shard); that one resolves the MX of the
  // first domain it was given and sends every domain's mail to those hosts.
  bool is_rollup_ = false;
  std::string rollup_key_;     // domain destinations: where to forward, or ""
  std::string resolve_domain_; // rollup destinations: the domain whose MX is used
  std::string latest_domain_;  // rollup destinations: the domain most recently given
  void forward_to_rollup() noexcept;
  std::size_t slots_ = 0;  // slots of this destination alive
  bool listed_ = false;    // in ob_.active
  bool dirty_ = false;
  // Operator state and counters (salvoctl).
  bool operator_paused_ = false;
  bool bouncing_ = false;  // salvoctl bounce: what is queued bounces until the queue empties
  std::deque<queue::QueuedRecipient> cancelled_;  // salvoctl bounce --id, still to fail
  std::uint64_t delivered_ = 0, deferrals_ = 0, bounced_ = 0;
  std::array<std::uint32_t, 60> per_second_{};  // deliveries per second, a minute's ring
  std::array<std::int64_t, 60> second_of_{};
  std::string last_reply_;
  void note_delivery() noexcept;
  DestinationInfo info() noexcept;
  friend struct Outbound::Impl;
};

// One SMTP connection of a destination's pool.
class DeliveryConnection final : public net::ConnectHandler, public net::ConnectionHandler {
 public:
  DeliveryConnection(Destination& d, const Host& host, const net::SocketAddress* source,
                     std::string helo);
  void start() noexcept;

  void on_connect(net::Connection* c, std::error_code why) noexcept override;
  void on_data(net::Connection& c, ByteBuffer& in) noexcept override;
  void on_tls_ready(net::Connection& c) noexcept override;
  void on_close(net::Connection& c, std::error_code why) noexcept override;
  bool on_idle_timeout(net::Connection& c) noexcept override;

  // Takes transactions from the destination while there is room.
  void fill() noexcept;
  void submit(Slot* s) noexcept;
  void quit() noexcept;
  void slot_detached(Slot* s) noexcept;  // a slot that was reading went back to the queue

  bool ready() const noexcept { return state_ == State::Ready; }
  bool connecting() const noexcept { return state_ == State::Connecting || state_ == State::Greeting; }
  std::size_t load() const noexcept { return slots_.size(); }
  const Host& host() const noexcept { return host_; }
  std::string tls_version() const;
  bool plaintext_fallback() const noexcept { return plaintext_fallback_; }
  // The server offered DSN (RFC 3461): NOTIFY/ORCPT/ENVID went on with the message.
  bool remote_dsn() const noexcept {
    return session_ && session_->capabilities().extensions.has(smtp::Extension::Dsn);
  }
  std::string ip() const { return host_.address.ip(); }

 private:
  enum class State : std::uint8_t { Connecting, Greeting, Ready, Quitting, Closing, Closed };
  void drive(ByteBuffer& in) noexcept;
  void flush() noexcept;
  void update_timeout() noexcept;
  bool can_take() noexcept;

  Destination& d_;
  Host host_;
  std::optional<net::SocketAddress> source_;
  std::string helo_;
  net::Connection* conn_ = nullptr;
  std::unique_ptr<smtp::ClientSession> session_;
  State state_ = State::Connecting;
  std::vector<Slot*> slots_;  // taken: reading or submitted
  std::uint32_t taken_ = 0;   // transactions taken over the connection's life
  bool verified_ = false;     // the verified TLS context is in use
  bool tls_started_ = false;  // STARTTLS accepted: a close now is a handshake failure
  bool plaintext_fallback_ = false;  // STARTTLS skipped after a failed handshake
  bool tls_required_ = false;
};

inline std::int64_t to_ns(WallTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
inline WallTime from_ns(std::int64_t ns) {
  return WallTime(std::chrono::duration_cast<WallTime::duration>(std::chrono::nanoseconds(ns)));
}

// Composition: "From:" domain of a message (lower case), "" when none.
std::string from_domain(std::string_view message);
// The domain of a mailbox, lower case, without a final dot; "" when there is no '@'.
std::string domain_of(std::string_view address);
using spool::format_id;

}  // namespace salvo::outbound
