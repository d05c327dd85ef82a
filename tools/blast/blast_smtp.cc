// SPDX-License-Identifier: Apache-2.0
// BlastConnection: one client connection slot. Connects, runs a ClientSession, keeps one
// transaction in flight (two with pipelining: the next MAIL/RCPT/DATA rides behind the
// previous end of data), reconnects after a drop while budget remains, quits when the
// budget is spent.
#include "blast_smtp.h"

#include <algorithm>
#include <deque>
#include <unordered_map>

#include <salvo/base/log.h>

namespace salvo::blast {

void LoadCounters::merge(const LoadCounters& o) {
  submitted += o.submitted;
  accepted += o.accepted;
  deferred += o.deferred;
  rejected += o.rejected;
  lost += o.lost;
  rcpt_accepted += o.rcpt_accepted;
  rcpt_deferred += o.rcpt_deferred;
  rcpt_rejected += o.rcpt_rejected;
  connections += o.connections;
  connect_failures += o.connect_failures;
  tls_sessions += o.tls_sessions;
  bytes += o.bytes;
  latency.merge(o.latency);
}

class BlastConnection final : public net::ConnectHandler, public net::ConnectionHandler {
 public:
  explicit BlastConnection(LoadShard& shard) : shard_(shard) {}

  void start() noexcept {
    const auto& o = *shard_.shared().options;
    connecting_ = true;
    shard_.stack().connect(o.target, nullptr, o.connect_timeout, *this);
  }

  void stop() noexcept { stopping_ = true; }

  void on_connect(net::Connection* c, std::error_code why) noexcept override {
    connecting_ = false;
    if (c == nullptr) {
      ++shard_.counters().connect_failures;
      log::debug("blast: connect failed: {}", why.message());
      if (++consecutive_failures_ >= 3 || stopping_ || budget_spent()) return finish();
      return start();
    }
    consecutive_failures_ = 0;
    ++shard_.counters().connections;
    conn_ = c;
    const auto& o = *shard_.shared().options;
    smtp::ClientConfig cfg;
    cfg.helo_name = o.helo;
    cfg.use_pipelining = o.pipelining;
    cfg.pipeline_across_messages = o.pipelining;
    cfg.use_chunking = o.chunking;
    cfg.tls = o.starttls ? smtp::TlsPolicy::Required : smtp::TlsPolicy::Off;
    session_ = std::make_unique<smtp::ClientSession>(cfg);
    quitting_ = false;
    c->set_handler(this);
  }

  void on_data(net::Connection&, ByteBuffer& in) noexcept override {
    drive(in);
  }

  void on_tls_ready(net::Connection&) noexcept override {
    ++shard_.counters().tls_sessions;
    session_->tls_established();
    ByteBuffer none(0);
    drive(none);
  }

  void on_close(net::Connection&, std::error_code) noexcept override {
    conn_ = nullptr;
    if (session_) {
      session_->connection_lost();
      ByteBuffer none(0);
      drain_events(none);
      session_.reset();
    }
    inflight_.clear();
    bodies_.clear();
    if (!quitting_ && !stopping_ && !budget_spent()) return start();
    finish();
  }

  bool finished() const noexcept { return finished_; }
  bool idle() const noexcept { return conn_ == nullptr && !connecting_; }

 private:
  bool budget_spent() const noexcept {
    return shard_.shared().next_message.load(std::memory_order_relaxed) >=
           shard_.shared().options->messages;
  }

  void finish() noexcept {
    if (finished_) return;
    finished_ = true;
    shard_.shared().finished_connections.fetch_add(1, std::memory_order_release);
  }

  void drive(ByteBuffer& in) noexcept {
    if (!drain_events(in)) return;
    top_up();
    flush();
  }

  // Handles every pending event; false when the connection is going away.
  bool drain_events(ByteBuffer& in) noexcept {
    for (;;) {
      smtp::ClientEvent ev = session_->feed(in);
      switch (ev.kind) {
        case smtp::ClientEventKind::None:
          return true;
        case smtp::ClientEventKind::Ready:
          break;
        case smtp::ClientEventKind::NeedTls:
          flush();
          if (conn_) conn_->start_tls(*shard_.shared().tls, shard_.shared().options->server_name);
          return false;
        case smtp::ClientEventKind::TransactionDone:
          record(ev.result);
          break;
        case smtp::ClientEventKind::Failed:
        case smtp::ClientEventKind::Closed:
          flush();
          if (conn_) conn_->close();
          return false;
      }
    }
  }

  void top_up() noexcept {
    if (!session_ || quitting_ || stopping_) return;
    const auto& o = *shard_.shared().options;
    std::size_t window = o.pipelining ? std::max<std::uint32_t>(o.window, 1) : 1;
    while (session_->in_flight() < window) {
      std::uint64_t id = shard_.shared().next_message.fetch_add(1, std::memory_order_relaxed);
      if (id >= o.messages) break;
      smtp::Transaction t;
      t.cookie = id;
      t.reverse_path = shard_.shared().factory->shape().from;
      const auto* f = shard_.shared().factory;
      for (unsigned j = 0; j < f->shape().rcpts; ++j) {
        smtp::OutgoingRecipient r;
        r.address = f->recipient(id, j);
        t.recipients.push_back(std::move(r));
      }
      if (o.unique) {
        std::string& b = bodies_[id];
        b = f->body(id, {t.recipients.front().address});
        t.body = b;
      } else {
        t.body = f->shared_body();
      }
      inflight_.push_back({id, shard_.shard().clock().now()});
      ++shard_.counters().submitted;
      session_->submit(std::move(t));
    }
    if (session_->in_flight() == 0 && budget_spent()) {
      quitting_ = true;
      session_->quit();
    }
  }

  void record(const smtp::TransactionResult& r) noexcept {
    auto& c = shard_.counters();
    for (auto it = inflight_.begin(); it != inflight_.end(); ++it) {
      if (it->first == r.cookie) {
        c.latency.record(static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(shard_.shard().clock().now() -
                                                                 it->second)
                .count()));
        inflight_.erase(it);
        break;
      }
    }
    bodies_.erase(r.cookie);
    for (const auto& rr : r.rcpt_replies) {
      if (rr.code == 0) continue;
      if (rr.positive()) ++c.rcpt_accepted;
      else if (rr.transient()) ++c.rcpt_deferred;
      else ++c.rcpt_rejected;
    }
    if (r.delivered()) {
      ++c.accepted;
      c.bytes += shard_.shared().factory->shared_body().size();
    } else if (r.local && conn_lost_reply(r.final_reply)) {
      ++c.lost;
    } else if (r.final_reply.transient()) {
      ++c.deferred;
    } else {
      ++c.rejected;
    }
  }

  static bool conn_lost_reply(const smtp::Reply& r) noexcept {
    return r.code == 451 && r.status == smtp::EnhancedStatus{4, 4, 2};
  }

  void flush() noexcept {
    if (!conn_ || !session_ || session_->output().empty()) return;
    conn_->output().append(session_->output().view());
    session_->output().clear();
    conn_->flush();
  }

  LoadShard& shard_;
  net::Connection* conn_ = nullptr;
  std::unique_ptr<smtp::ClientSession> session_;
  std::deque<std::pair<std::uint64_t, TimePoint>> inflight_;
  std::unordered_map<std::uint64_t, std::string> bodies_;  // --unique: in flight, by cookie
  unsigned consecutive_failures_ = 0;
  bool connecting_ = false;
  bool quitting_ = false;
  bool stopping_ = false;
  bool finished_ = false;
};

LoadShard::LoadShard(shard::Shard& shard, LoadShared& shared, unsigned connections)
    : shard_(shard),
      shared_(shared),
      stack_(net::make_kernel_stack(shard.engine(), [&] {
        net::KernelStackOptions o;
        o.zerocopy_threshold = shared.options->zerocopy_threshold;
        o.zerocopy_to_local_peers = shared.options->zerocopy_to_local_peers;
        return o;
      }())) {
  for (unsigned i = 0; i < connections; ++i)
    conns_.push_back(std::make_unique<BlastConnection>(*this));
}

LoadShard::~LoadShard() = default;

void LoadShard::start() noexcept {
  for (auto& c : conns_) c->start();
}

void LoadShard::begin_stop() noexcept {
  for (auto& c : conns_) c->stop();
  stack_->close_all();
  shard_.hold();
  draining_ = true;
  shard_.add_poller(this);
}

bool LoadShard::poll() noexcept {
  if (!draining_) return false;
  for (auto& c : conns_) {
    if (!c->idle()) return false;
  }
  if (stack_->connection_count() != 0) return false;
  draining_ = false;
  shard_.release();
  return false;
}

}  // namespace salvo::blast
