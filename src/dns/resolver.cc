// SPDX-License-Identifier: Apache-2.0
// Resolver: queries, tries and their kernel operations. An Attempt is one try against one
// server over one transport; it owns its socket and completions and outlives its query
// until the engine has delivered the last of them (a Completion lives until its last call).
#include <salvo/dns/resolver.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <utility>

#include <salvo/dns/errc.h>

#include "dns/random.h"

namespace salvo::dns {

namespace {

constexpr std::size_t kUdpBuffer = 4096;  // > any EDNS payload we advertise
constexpr std::size_t kTcpChunk = 4096;
constexpr std::size_t kTcpMax = 2 + 65535;  // RFC 1035 §4.2.2 length prefix + message
constexpr int kMaxRestarts = 8;             // CNAME chains continued across answers

// Routes an engine completion to a member of its owner.
template <class Owner>
class Op final : public io::Completion {
 public:
  using Handler = void (Owner::*)(std::int32_t res) noexcept;
  Op(Owner* owner, Handler handler) noexcept : owner_(owner), handler_(handler) {}
  Op(const Op&) = delete;
  Op& operator=(const Op&) = delete;
  void on_complete(std::int32_t res, std::uint32_t) noexcept override { (owner_->*handler_)(res); }

 private:
  Owner* owner_;
  Handler handler_;
};

}  // namespace

ResolverStats& ResolverStats::operator+=(const ResolverStats& o) noexcept {
  queries += o.queries;
  udp_tries += o.udp_tries;
  tcp_tries += o.tcp_tries;
  timeouts += o.timeouts;
  ignored += o.ignored;
  server_errors += o.server_errors;
  edns_fallbacks += o.edns_fallbacks;
  overloaded += o.overloaded;
  return *this;
}

struct Resolver::Query {
  Question question;
  std::string wire;  // the encoded query (re-encoded when EDNS is dropped)
  Callback cb;
  std::uint16_t edns = 0;
  std::size_t tries = 0;  // tries started (UDP; a TCP retry continues its try)
  int restarts = 0;       // CNAME targets asked after an incomplete chain
  Attempt* attempt = nullptr;
  Result<Answer> last = fail(errc::timeout);
};

// One try: a socket, its operations and a timer. Detached (query_ == nullptr) once its
// outcome is known; freed when no operation is pending and no handler runs.
class Resolver::Attempt {
 public:
  Attempt(Resolver* resolver, Query* query, Transport transport, const net::SocketAddress& server)
      : resolver_(resolver),
        engine_(resolver->engine_),
        query_(query),
        transport_(transport),
        server_(server),
        connect_op_(this, &Attempt::on_connect),
        send_op_(this, &Attempt::on_send),
        recv_op_(this, &Attempt::on_recv),
        timer_op_(this, &Attempt::on_timer) {
    if (server_.port() == 0) server_.set_port(53);
  }

  Transport transport() const noexcept { return transport_; }
  Query* query() const noexcept { return query_; }
  int pending() const noexcept { return pending_; }
  void orphan() noexcept { resolver_ = nullptr; }

  // Opens the socket and starts the exchange. False (with *error set): the try failed at
  // once; the caller detaches and moves on.
  bool begin(std::error_code* error) noexcept {
    const int type = transport_ == Transport::Udp ? SOCK_DGRAM : SOCK_STREAM;
    fd_ = ::socket(server_.family(), type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      *error = std::error_code(errno, std::system_category());
      return false;
    }
    if (transport_ == Transport::Udp) {
      // A connected UDP socket: the kernel picks a random ephemeral port and drops datagrams
      // from any other address or port (RFC 5452 §9.1). connect(2) on UDP does not block.
      if (::connect(fd_, server_.sa(), server_.len()) != 0) {
        *error = std::error_code(errno, std::system_category());
        return false;
      }
      out_ = query_->wire;
      in_.resize(kUdpBuffer);
      arm(timer_op_);
      engine_.timeout(resolver_->options_.timeout, &timer_op_);
      arm(send_op_);
      engine_.send(fd_, out_, &send_op_);
      arm(recv_op_);
      engine_.recv(fd_, std::span<char>(in_.data(), in_.size()), &recv_op_);
    } else {
      const std::size_t n = query_->wire.size();
      out_.clear();
      out_.push_back(static_cast<char>(n >> 8));
      out_.push_back(static_cast<char>(n & 0xff));
      out_ += query_->wire;
      arm(timer_op_);
      engine_.timeout(resolver_->options_.timeout, &timer_op_);
      arm(connect_op_);
      engine_.connect(fd_, server_.sa(), server_.len(), &connect_op_);
    }
    return true;
  }

  // The outcome is known: cancel what is still pending; free when the last call arrived.
  void detach() noexcept {
    query_ = nullptr;
    for (io::Completion* c :
         {static_cast<io::Completion*>(&connect_op_), static_cast<io::Completion*>(&send_op_),
          static_cast<io::Completion*>(&recv_op_), static_cast<io::Completion*>(&timer_op_)}) {
      if (armed(c)) engine_.cancel(c);
    }
    free_if_idle();
  }

 private:
  ~Attempt() {
    if (fd_ >= 0) ::close(fd_);
  }

  void arm(io::Completion& c) noexcept {
    ++pending_;
    mark(&c, true);
  }
  void disarm(io::Completion& c) noexcept {
    --pending_;
    mark(&c, false);
  }
  void mark(io::Completion* c, bool on) noexcept {
    if (c == &connect_op_) connect_armed_ = on;
    if (c == &send_op_) send_armed_ = on;
    if (c == &recv_op_) recv_armed_ = on;
    if (c == &timer_op_) timer_armed_ = on;
  }
  bool armed(io::Completion* c) const noexcept {
    if (c == &connect_op_) return connect_armed_;
    if (c == &send_op_) return send_armed_;
    if (c == &recv_op_) return recv_armed_;
    return timer_armed_;
  }

  void free_if_idle() noexcept {
    if (query_ != nullptr || pending_ != 0 || in_handler_) return;
    if (resolver_ != nullptr) resolver_->attempts_.erase(this);
    delete this;
  }

  // Every handler runs inside enter()/leave() so a detach from within cannot free `this`.
  void enter() noexcept { in_handler_ = true; }
  void leave() noexcept {
    in_handler_ = false;
    free_if_idle();
  }

  void failed(std::error_code error) noexcept {
    if (query_ != nullptr && resolver_ != nullptr) resolver_->on_try_failed(*this, error);
  }

  void on_connect(std::int32_t res) noexcept {
    enter();
    disarm(connect_op_);
    if (query_ != nullptr) {
      if (res < 0) {
        failed(io::to_error_code(res));
      } else {
        send_more();
      }
    }
    leave();
  }

  void send_more() noexcept {
    arm(send_op_);
    engine_.send(fd_, std::span<const char>(out_).subspan(sent_), &send_op_);
  }

  void on_send(std::int32_t res) noexcept {
    enter();
    disarm(send_op_);
    if (query_ != nullptr) {
      if (res < 0) {
        failed(io::to_error_code(res));
      } else if (transport_ == Transport::Udp) {
        if (static_cast<std::size_t>(res) != out_.size()) failed(make_error_code(errc::malformed));
      } else {
        sent_ += static_cast<std::size_t>(res);
        if (sent_ < out_.size()) {
          send_more();
        } else {
          recv_more();
        }
      }
    }
    leave();
  }

  void recv_more() noexcept {
    if (transport_ == Transport::Udp) {
      arm(recv_op_);
      engine_.recv(fd_, std::span<char>(in_.data(), in_.size()), &recv_op_);
      return;
    }
    const std::size_t need = got_ < 2 ? kTcpChunk : std::min(kTcpChunk, frame_size() - got_);
    in_.resize(got_ + need);
    arm(recv_op_);
    engine_.recv(fd_, std::span<char>(in_.data() + got_, need), &recv_op_);
  }

  std::size_t frame_size() const noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(in_.data());
    return 2 + ((std::size_t{p[0]} << 8) | p[1]);
  }

  void on_recv(std::int32_t res) noexcept {
    enter();
    disarm(recv_op_);
    if (query_ != nullptr) {
      if (res < 0) {
        failed(io::to_error_code(res));
      } else if (transport_ == Transport::Udp) {
        on_datagram(static_cast<std::size_t>(res));
      } else {
        on_stream(static_cast<std::size_t>(res));
      }
    }
    leave();
  }

  void on_datagram(std::size_t n) noexcept {
    auto answer = decode_response(std::span<const char>(in_.data(), n), query_->question);
    if (!answer) {
      // Not our answer (spoofed id or question) or garbage: drop it and keep listening until
      // the timer; the real answer may still come (RFC 5452 §9.1; docs/reliability.md G10).
      ++resolver_->stats_.ignored;
      recv_more();
      return;
    }
    resolver_->on_answer(*this, std::move(*answer));
  }

  void on_stream(std::size_t n) noexcept {
    if (n == 0) {
      failed(std::error_code(ECONNRESET, std::system_category()));
      return;
    }
    got_ += n;
    in_.resize(got_);
    if (got_ < 2 || got_ < frame_size()) {
      if (got_ >= kTcpMax) {
        failed(make_error_code(errc::malformed));
        return;
      }
      recv_more();
      return;
    }
    const std::size_t size = frame_size();
    auto answer =
        decode_response(std::span<const char>(in_.data() + 2, size - 2), query_->question);
    if (!answer) {
      // Over TCP the peer is the server itself: a wrong answer fails this try.
      ++resolver_->stats_.ignored;
      failed(answer.error());
      return;
    }
    resolver_->on_answer(*this, std::move(*answer));
  }

  void on_timer(std::int32_t res) noexcept {
    enter();
    disarm(timer_op_);
    // -ETIME when it fires; anything but a cancellation ends the try, so it cannot hang.
    if (query_ != nullptr && res != -ECANCELED) {
      ++resolver_->stats_.timeouts;
      failed(make_error_code(errc::timeout));
    }
    leave();
  }

  Resolver* resolver_;
  io::Engine& engine_;
  Query* query_;
  Transport transport_;
  net::SocketAddress server_;
  int fd_ = -1;
  std::string out_;
  std::size_t sent_ = 0;
  std::string in_;
  std::size_t got_ = 0;
  int pending_ = 0;
  bool in_handler_ = false;
  bool connect_armed_ = false, send_armed_ = false, recv_armed_ = false, timer_armed_ = false;
  Op<Attempt> connect_op_;
  Op<Attempt> send_op_;
  Op<Attempt> recv_op_;
  Op<Attempt> timer_op_;
};

// kicker_: a zero-length timer that delivers immediate failures outside the query() call.

Resolver::Resolver(io::Engine& engine, ResolverOptions options)
    : engine_(engine), options_(std::move(options)), kicker_(new Kicker(this)) {
  options_.attempts = std::max(options_.attempts, 1u);
  options_.max_in_flight = std::max<std::size_t>(options_.max_in_flight, 1);
}

Resolver::~Resolver() {
  stop();
  for (Attempt* a : attempts_) a->orphan();
  attempts_.clear();
  kicker_->release(engine_);
}

std::size_t Resolver::operations_pending() const noexcept {
  std::size_t n = kicker_->armed() ? 1 : 0;
  for (const Attempt* a : attempts_) n += static_cast<std::size_t>(a->pending());
  return n;
}

void Resolver::stop() noexcept {
  stopped_ = true;
  waiting_.clear();
  kicked_.clear();
  auto active = std::move(active_);
  active_.clear();
  for (auto& [q, owned] : active) {
    if (q->attempt != nullptr) {
      Attempt* a = q->attempt;
      q->attempt = nullptr;
      a->detach();
    }
  }
}

void Resolver::query(std::string_view name, RrType type, Callback cb) {
  owner_.check();
  ++stats_.queries;
  if (stopped_) return fail_later(std::move(cb), make_error_code(errc::cancelled));
  if (options_.servers.empty()) return fail_later(std::move(cb), make_error_code(errc::no_servers));
  auto q = std::make_unique<Query>();
  q->question = {normalize_name(name), type, 0};
  q->edns = options_.edns_payload;
  auto wire = encode_query(q->question, q->edns);
  if (!wire) return fail_later(std::move(cb), wire.error());
  q->cb = std::move(cb);
  if (active_.size() >= options_.max_in_flight) {
    if (waiting_.size() >= options_.max_queued) {
      ++stats_.overloaded;
      return fail_later(std::move(q->cb), make_error_code(errc::overloaded));
    }
    waiting_.push_back(std::move(q));
    return;
  }
  Query& ref = *q;
  active_.emplace(q.get(), std::move(q));
  // Every try can fail synchronously (socket()/connect() errors): the Querier contract
  // says callbacks never run inside query(), so complete() defers them while this runs.
  ++in_query_;
  start(ref);
  --in_query_;
}

void Resolver::start(Query& q) { next_try(q); }

// Encodes with a fresh random id: every try is a new question on the wire (RFC 5452 §9.2).
void Resolver::start_try(Query& q, Transport transport) {
  if (transport == Transport::Udp) {
    q.question.id = detail::random_u16();
    auto wire = encode_query(q.question, q.edns);
    if (!wire) {
      complete(q, std::unexpected(wire.error()));
      return;
    }
    q.wire = std::move(*wire);
    ++stats_.udp_tries;
  } else {
    ++stats_.tcp_tries;
  }
  const auto& server = options_.servers[(q.tries - 1) % options_.servers.size()];
  auto* a = new Attempt(this, &q, transport, server);
  attempts_.insert(a);
  q.attempt = a;
  std::error_code error;
  if (!a->begin(&error)) on_try_failed(*a, error);
}

void Resolver::next_try(Query& q) {
  if (q.tries >= options_.servers.size() * options_.attempts) {
    complete(q, std::move(q.last));
    return;
  }
  ++q.tries;
  start_try(q, Transport::Udp);
}

void Resolver::on_answer(Attempt& a, Answer answer) {
  Query& q = *a.query();
  const Transport transport = a.transport();
  q.attempt = nullptr;
  a.detach();  // may free `a`
  if (answer.truncated && transport == Transport::Udp) {
    start_try(q, Transport::Tcp);  // RFC 7766 §5: same server, same try, over TCP
    return;
  }
  if (answer.rcode == Rcode::FormErr && q.edns != 0) {
    // RFC 6891 §7: a server that does not know EDNS answers FORMERR; ask again without.
    ++stats_.edns_fallbacks;
    q.edns = 0;
    start_try(q, Transport::Udp);
    return;
  }
  if (answer.rcode != Rcode::NoError && answer.rcode != Rcode::NxDomain) {
    ++stats_.server_errors;
    q.last = std::move(answer);
    next_try(q);
    return;
  }
  if (answer.rcode == Rcode::NoError && !answer.has_records() && !answer.canonical_name.empty() &&
      q.restarts < kMaxRestarts) {
    // The server gave the CNAME but not what it points to (RFC 1034 §5.3.3: the stub
    // restarts at the canonical name). Bounded, so a loop across answers ends.
    ++q.restarts;
    q.question.name = answer.canonical_name;
    q.tries = 0;
    q.last = fail(errc::timeout);
    next_try(q);
    return;
  }
  if (answer.canonical_name.empty() && q.restarts > 0) answer.canonical_name = q.question.name;
  complete(q, std::move(answer));
}

void Resolver::on_try_failed(Attempt& a, std::error_code error) {
  Query& q = *a.query();
  q.attempt = nullptr;
  a.detach();  // may free `a`
  // A server's answer (SERVFAIL, REFUSED) says more than a later error: keep it.
  if (!q.last.has_value()) q.last = std::unexpected(error);
  next_try(q);
}

void Resolver::complete(Query& q, Result<Answer> result) {
  if (q.attempt != nullptr) {
    Attempt* a = q.attempt;
    q.attempt = nullptr;
    a->detach();
  }
  Callback cb = std::move(q.cb);
  active_.erase(&q);  // frees q
  pump();
  if (!cb) return;
  if (in_query_ > 0 && !result) {
    fail_later(std::move(cb), result.error());
    return;
  }
  cb(std::move(result));
}

void Resolver::pump() {
  while (!stopped_ && active_.size() < options_.max_in_flight && !waiting_.empty()) {
    auto q = std::move(waiting_.front());
    waiting_.pop_front();
    Query& ref = *q;
    active_.emplace(q.get(), std::move(q));
    start(ref);
  }
}

void Resolver::fail_later(Callback cb, std::error_code error) {
  if (stopped_ && error != errc::cancelled) return;
  kicked_.emplace_back(std::move(cb), error);
  if (!kicker_->armed()) {
    kicker_->arm();
    engine_.timeout(Duration::zero(), kicker_);
  }
}

void Resolver::run_kicked(std::int32_t) noexcept {
  auto calls = std::move(kicked_);
  kicked_.clear();
  for (auto& [cb, error] : calls) {
    if (cb) cb(std::unexpected(error));
  }
}

}  // namespace salvo::dns
