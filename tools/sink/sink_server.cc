// SPDX-License-Identifier: Apache-2.0
// SinkShard and SinkConnection: accept, run the ServerSession, apply the fault script,
// count. One SinkConnection per accepted connection, deleted after on_close (or after its
// timer's final completion — latency, trickle or stall — whichever is last).
#include "sink_server.h"

#include <algorithm>
#include <cerrno>

#include <salvo/base/log.h>
#include <salvo/io/engine.h>

namespace salvo::sink {

void ListenerGauge::opened() noexcept {
  std::uint32_t n = open.fetch_add(1, std::memory_order_relaxed) + 1;
  std::uint32_t p = peak.load(std::memory_order_relaxed);
  while (n > p && !peak.compare_exchange_weak(p, n, std::memory_order_relaxed)) {
  }
}

void ListenerCounters::merge(const ListenerCounters& o) {
  connections += o.connections;
  messages += o.messages;
  recipients += o.recipients;
  bytes += o.bytes;
  deferred += o.deferred;
  rejected += o.rejected;
  dropped += o.dropped;
  throttled += o.throttled;
  refused += o.refused;
  tls_sessions += o.tls_sessions;
  if (per_second.size() < o.per_second.size()) per_second.resize(o.per_second.size());
  for (std::size_t i = 0; i < o.per_second.size(); ++i) per_second[i] += o.per_second[i];
}

std::uint32_t ListenerCounters::peak_per_second() const noexcept {
  return per_second.empty() ? 0 : *std::max_element(per_second.begin(), per_second.end());
}

// One accepted connection: ServerSession + fault script. Owner: the accepting shard.
class SinkConnection final : public net::ConnectionHandler,
                             public smtp::ServerPolicy,
                             public io::Completion {
 public:
  SinkConnection(SinkShard& shard, SinkShard::Listener& listener, net::Connection& conn)
      : shard_(shard),
        listener_(listener),
        conn_(&conn),
        session_(listener.config, *this),
        faults_(listener.spec->faults) {
    ++listener_.counters.connections;
    (*shard_.shared().gauges)[listener_.index].opened();
    conn.set_handler(this);
    conn.set_idle_timeout(shard_.shared().options->idle_timeout);
    session_.greet();
    trickle_batch_ = faults_.trickle_at == TrickleAt::Greeting;
    reply(After::Nothing, Duration::zero());  // no latency before the greeting
  }

  void on_data(net::Connection&, ByteBuffer& in) noexcept override { run(in); }

  void on_tls_ready(net::Connection& c) noexcept override {
    ++listener_.counters.tls_sessions;
    session_.tls_established();
    (void)c;
  }

  void on_close(net::Connection&, std::error_code) noexcept override {
    conn_ = nullptr;
    (*shard_.shared().gauges)[listener_.index].closed();
    shard_.session_stats() += session_.stats();
    if (timer_armed_) {
      shard_.shard().engine().cancel(this);  // deleted at the timer's final completion
      return;
    }
    delete this;
  }

  // The timer: the latency before a batch of replies, the next byte of a trickle, or the
  // end of a stall.
  void on_complete(std::int32_t, std::uint32_t) noexcept override {
    timer_armed_ = false;
    if (conn_ == nullptr) {
      delete this;
      return;
    }
    if (stalling_) {
      stalling_ = false;
      conn_->resume_reading();
      return;
    }
    if (trickling_) {
      write_out(delayed_.view().substr(0, 1));
      delayed_.consume(1);
      if (!delayed_.empty()) {
        arm(faults_.trickle);
        return;
      }
      trickling_ = false;
    } else {
      write_out(delayed_.view());
      delayed_.clear();
    }
    After a = after_;
    after_ = After::Nothing;
    if (!perform(a)) conn_->resume_reading();
  }

  std::optional<smtp::Reply> on_helo(const smtp::ServerSession&, std::string_view) override {
    if (faults_.trickle_at == TrickleAt::Ehlo) trickle_batch_ = true;
    return std::nullopt;
  }

  // Fault script at RCPT time.
  std::optional<smtp::Reply> on_rcpt(const smtp::ServerSession&, const smtp::Path&,
                                     const smtp::RcptParams&) override {
    if (listener_.reject_acc.hit(faults_.reject_rate)) {
      ++listener_.counters.rejected;
      return smtp::Reply(550, {5, 1, 1}, "Mailbox unavailable (salvo-sink fault script)");
    }
    if (listener_.defer_acc.hit(faults_.defer_rate)) {
      ++listener_.counters.deferred;
      return smtp::Reply(451, faults_.defer_status, "Try again later (salvo-sink fault script)");
    }
    return std::nullopt;
  }

  std::optional<smtp::Reply> on_mail(const smtp::ServerSession&, const smtp::Path&,
                                     const smtp::MailParams&) override {
    if (faults_.fail_after != 0 && messages_ >= faults_.fail_after) {
      throttle_ = true;
      ++listener_.counters.throttled;
      return smtp::Reply(421, {4, 7, 0}, "Too many messages, slow down (salvo-sink)");
    }
    return std::nullopt;
  }

 private:
  enum class After { Nothing, StartTls, Close, Drop };

  void run(ByteBuffer& in) noexcept {
    After after = After::Nothing;
    for (;;) {
      smtp::ServerEvent ev = session_.feed(in);
      if (ev == smtp::ServerEvent::MessageReady) {
        if (on_message()) continue;
        after = After::Drop;
      } else if (ev == smtp::ServerEvent::StartTls) {
        after = After::StartTls;
      } else if (ev == smtp::ServerEvent::Close) {
        after = After::Close;
      }
      break;
    }
    if (throttle_ && after == After::Nothing) after = After::Close;
    if (after == After::Drop) {
      perform(after);
      return;
    }
    reply(after, faults_.latency);
  }

  // Sends the session's replies, at once or after `latency` and/or a byte at a time (the
  // trickle; reading paused until the last byte is out), then does `after`.
  void reply(After after, Duration latency) noexcept {
    const bool trickle = faults_.trickle > Duration::zero() &&
                         (faults_.trickle_at == TrickleAt::All || trickle_batch_);
    if (!session_.output().empty()) trickle_batch_ = false;
    if ((latency > Duration::zero() || trickle) && !session_.output().empty()) {
      delayed_.append(session_.output().view());
      session_.output().clear();
      after_ = after;
      trickling_ = trickle;
      conn_->pause_reading();
      arm(latency > Duration::zero() ? latency : faults_.trickle);
      return;
    }
    flush_session_output();
    if (!perform(after)) maybe_stall();
  }

  // stall-data: once message text is coming, read nothing for a while (once per message),
  // so the client's data fills the socket buffers and its writes stall.
  void maybe_stall() noexcept {
    if (faults_.stall_data <= Duration::zero() || stalled_ || timer_armed_ ||
        !session_.reading_text()) {
      return;
    }
    stalled_ = true;
    stalling_ = true;
    conn_->pause_reading();
    arm(faults_.stall_data);
  }

  void arm(Duration after) noexcept {
    timer_armed_ = true;
    shard_.shard().engine().timeout(after, this);
  }

  // Returns false when the connection is to be dropped instead of answering.
  bool on_message() noexcept {
    stalled_ = false;
    if (faults_.trickle_at == TrickleAt::Data) trickle_batch_ = true;
    const auto& env = session_.envelope();
    if (listener_.drop_acc.hit(faults_.drop_rate)) {
      ++listener_.counters.dropped;
      return false;
    }
    auto& c = listener_.counters;
    ++c.messages;
    ++messages_;
    c.recipients += env.recipients.size();
    c.bytes += session_.body_size();
    shard_.progress().add(env.recipients.size(), session_.body_size());
    auto sec = static_cast<std::size_t>(
        std::chrono::duration_cast<std::chrono::seconds>(shard_.shard().clock().now() -
                                                         shard_.shared().start)
            .count());
    if (c.per_second.size() <= sec) c.per_second.resize(sec + 1);
    ++c.per_second[sec];
    if (Maildir* md = shard_.shared().maildir) {
      std::vector<std::string> rcpts;
      rcpts.reserve(env.recipients.size());
      for (const auto& r : env.recipients) rcpts.push_back(r.address);
      if (auto s = md->deliver(env.reverse_path, rcpts, session_.body().view(),
                               shard_.shard().id().value());
          !s) {
        log::warn("sink: maildir write failed: {}", s.error().message());
        session_.complete_message(451, {4, 3, 0}, "Local write error (salvo-sink maildir)");
        return true;
      }
    }
    session_.complete_message(250, {2, 0, 0}, "Ok: queued by salvo-sink");
    return true;
  }

  // Returns true when the connection is going away (or upgrading) and reading must not
  // be resumed here.
  bool perform(After a) noexcept {
    switch (a) {
      case After::Nothing:
        return false;
      case After::StartTls:
        conn_->start_tls(*shard_.shared().tls, "");
        return true;
      case After::Close:
        conn_->close();
        return true;
      case After::Drop:
        conn_->abort();
        return true;
    }
    return false;
  }

  void flush_session_output() noexcept {
    if (session_.output().empty()) return;
    write_out(session_.output().view());
    session_.output().clear();
  }

  void write_out(std::string_view bytes) noexcept {
    if (bytes.empty() || conn_ == nullptr) return;
    conn_->output().append(bytes);
    conn_->flush();
  }

  SinkShard& shard_;
  SinkShard::Listener& listener_;
  net::Connection* conn_;
  smtp::ServerSession session_;
  const Faults& faults_;
  std::uint64_t messages_ = 0;
  bool throttle_ = false;
  bool timer_armed_ = false;
  bool trickle_batch_ = false;  // the replies due hold the ones trickle-at names
  bool trickling_ = false;      // the timer sends delayed_ a byte at a time
  bool stalling_ = false;       // the timer ends a stall-data pause
  bool stalled_ = false;        // this message's text has had its stall
  After after_ = After::Nothing;
  ByteBuffer delayed_{0};
};

SinkShard::SinkShard(shard::Shard& shard, const SinkShared& shared)
    : shard_(shard),
      shared_(shared),
      stack_(net::make_kernel_stack(shard.engine(), [&] {
        net::KernelStackOptions o;
        o.zerocopy_threshold = shared.zerocopy_threshold;
        o.zerocopy_to_local_peers = shared.zerocopy_to_local_peers;
        return o;
      }())) {}

SinkShard::~SinkShard() = default;

Status SinkShard::start(std::string* why) {
  const SinkOptions& opts = *shared_.options;
  for (std::size_t i = 0; i < opts.listeners.size(); ++i) {
    auto l = std::make_unique<Listener>();
    l->spec = &opts.listeners[i];
    l->index = i;
    l->config.hostname = opts.hostname;
    l->config.greeting = "ESMTP salvo-sink";
    l->config.max_message_size = opts.max_message_size;
    l->config.max_recipients = 100000;
    if (!opts.dsn) l->config.extensions.remove(smtp::Extension::Dsn);
    l->config.starttls_available = shared_.tls != nullptr;
    l->config.keep_body = shared_.maildir != nullptr;
    auto bound = stack_->listen(l->spec->address, net::ReusePort::Yes, *this);
    if (!bound) {
      *why = l->spec->address.to_string() + ": " + bound.error().message();
      return std::unexpected(bound.error());
    }
    l->net_listener = *bound;
    listeners_.push_back(std::move(l));
  }
  return {};
}

void SinkShard::begin_stop() noexcept {
  stack_->close_all();
  shard_.hold();
  draining_ = true;
  shard_.add_poller(this);
}

bool SinkShard::poll() noexcept {
  if (draining_ && stack_->connection_count() == 0) {
    draining_ = false;
    shard_.release();
  }
  return false;
}

std::size_t SinkShard::open_connections() const noexcept { return stack_->connection_count(); }

void SinkShard::on_accept(net::Listener& l, net::Connection& c) noexcept {
  for (auto& mine : listeners_) {
    if (mine->net_listener == &l) {
      new SinkConnection(*this, *mine, c);
      return;
    }
  }
  c.abort();
}

}  // namespace salvo::sink
