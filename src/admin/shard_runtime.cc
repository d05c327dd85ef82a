// SPDX-License-Identifier: Apache-2.0
// ShardRuntime: per-shard wiring of net, spool and inbound; drain and teardown at stop.
#include <salvo/admin/shard_runtime.h>

#include "admin/http_server.h"

#include <chrono>

#include <salvo/base/log.h>
#include <salvo/io/engine.h>

namespace salvo::admin {

ShardRuntime::ShardRuntime(shard::Shard& shard, const config::Config& config,
                           spool::RecoveryResult recovered, std::string spool_dir,
                           accounting::Files* files, const inbound::PickupShared* pickup,
                           outbound::OutboundShared& outbound, outbound::Mailbox& mailbox,
                           WebGateway* gateway)
    : shard_(shard),
      config_(config),
      recovered_(std::move(recovered)),
      dir_(std::move(spool_dir)),
      files_(files),
      pickup_(pickup),
      gateway_(gateway),
      outbound_shared_(outbound),
      mailbox_(mailbox) {
  recovered_messages_ = recovered_.report.messages;
}

ShardRuntime::~ShardRuntime() = default;

Status ShardRuntime::start(std::string* why) {
  const config::Node& node = config_.node;
  stack_ = net::make_kernel_stack(shard_.engine());
  spool::WriterOptions wo;
  wo.dir = dir_;
  wo.shard = shard_.id().value();
  wo.segment_size = node.spool_segment_size;
  wo.batch_max_records = node.commit_max_messages;
  wo.batch_max_bytes = node.commit_max_bytes;
  wo.batch_max_delay = node.commit_interval;
  wo.sync = node.fsync ? spool::SyncMode::Fdatasync : spool::SyncMode::None;
  wo.reserve_bytes = node.spool_reserve;
  writer_ = std::make_unique<spool::SpoolWriter>(shard_.engine(), shard_.clock(), wo,
                                                 recovered_.index, recovered_.next_segment,
                                                 recovered_.next_id);
  if (files_ != nullptr) {
    accounting_ = std::make_unique<accounting::Writer>(shard_.engine(), shard_.clock(), *files_);
  }
  outbound_ = std::make_unique<outbound::Outbound>(shard_, outbound_shared_, mailbox_, *writer_,
                                                   recovered_.index, *stack_, accounting_.get());
  return outbound_->start(why);
}

Status ShardRuntime::open(const std::vector<inbound::ListenerShared>& shared,
                          const std::vector<net::SocketAddress>& addresses,
                          const net::SocketAddress* http, std::string* why) {
  outbound_->recover(recovered_, dir_);
  for (std::size_t i = 0; i < shared.size(); ++i) {
    auto l = std::make_unique<inbound::InjectionListener>(shard_, *stack_, *writer_, shared[i],
                                                          accounting_.get());
    l->set_dispatch(outbound_.get());
    if (auto st = l->start(addresses[i]); !st) {
      *why = "listen " + addresses[i].to_string() + ": " + st.error().message();
      return st;
    }
    listeners_.push_back(std::move(l));
  }
  if (pickup_ != nullptr) {
    watcher_ = std::make_unique<inbound::PickupWatcher>(shard_, *writer_, recovered_.index, dir_,
                                                        *pickup_, accounting_.get());
    watcher_->set_dispatch(outbound_.get());
    if (auto st = watcher_->start(); !st) {
      *why = "pickup " + pickup_->dir + ": " + st.error().message();
      return st;
    }
  }
  if (http != nullptr && gateway_ != nullptr) {
    InjectDeps deps;
    deps.writer = writer_.get();
    deps.index = &recovered_.index;
    deps.accounting = accounting_.get();
    deps.dispatch = outbound_.get();
    deps.spool_dir = dir_;
    deps.hostname = config_.node.hostname;
    if (pickup_ != nullptr) {
      deps.limits = pickup_->limits;
      deps.batch_recipients = pickup_->job_batch_recipients;
    }
    http_ = std::make_unique<HttpServer>(shard_, *stack_, *gateway_, std::move(deps),
                                         config_.http.max_request_size);
    if (auto st = http_->start(*http); !st) {
      *why = "[http] address " + http->to_string() + ": " + st.error().message();
      return st;
    }
  }
  return {};
}

void ShardRuntime::attach_control(ControlInbox* inbox) {
  control_ = inbox;
  control_->attach(shard_, [this](const ShardRequest& r) { return answer(r); });
}

ShardAnswer ShardRuntime::answer(const ShardRequest& r) {
  ShardAnswer a;
  if (r.kind == ShardRequest::Kind::HttpReply) {
    if (http_) http_->complete(r.token, r.http);
    return a;
  }
  if (!outbound_) return a;
  switch (r.kind) {
    case ShardRequest::Kind::HttpReply: break;  // answered above
    case ShardRequest::Kind::Snapshot: break;
    case ShardRequest::Kind::Pause: a.touched = outbound_->pause(r.domain); break;
    case ShardRequest::Kind::Resume: a.touched = outbound_->resume(r.domain); break;
    case ShardRequest::Kind::Flush: a.touched = outbound_->flush(r.domain); break;
    case ShardRequest::Kind::Bounce:
      a.touched = r.message != 0 ? outbound_->bounce_message(r.message) : outbound_->bounce(r.domain);
      break;
    case ShardRequest::Kind::Drain:
      // No new mail; what is queued is still delivered.
      for (auto& l : listeners_) l->begin_stop();
      if (watcher_) watcher_->begin_stop();
      if (http_) http_->stop_intake();
      a.touched = 1;
      break;
    case ShardRequest::Kind::Reload:
      outbound_->reload(*r.config, *r.classifier, r.signers);
      a.touched = 1;
      break;
    case ShardRequest::Kind::Trace:
      if (const auto* e = recovered_.index.find(spool::MessageId(r.message))) {
        a.trace_found = true;
        a.trace_is_job = e->is_job;
        a.trace_states = e->state;
      }
      break;
  }
  for (const auto& l : listeners_) {
    a.smtp += l->stats();
    a.connections_in += l->session_count();
  }
  a.received_messages += a.smtp.messages_queued;
  a.received_recipients += a.smtp.recipients_queued;
  if (watcher_) {
    a.pickup = watcher_->stats();
    a.received_messages += a.pickup.messages_queued;
    a.received_recipients += a.pickup.recipients_queued;
  }
  if (http_) {
    const HttpStats& h = http_->stats();
    a.http_requests = h.requests;
    a.http_injected_messages = h.injected_messages;
    a.http_injected_recipients = h.injected_recipients;
    a.connections_http = http_->connection_count();
    a.received_messages += h.injected_messages;
    a.received_recipients += h.injected_recipients;
  }
  if (writer_) a.spool = writer_->stats();
  a.blocked_ns = shard_.engine().blocked_ns();
  a.spool_messages = recovered_.index.message_count();
  a.spool_recipients = recovered_.index.live_recipients();
  a.outbound = outbound_->snapshot();
  return a;
}

void ShardRuntime::begin_stop() noexcept {
  for (auto& l : listeners_) l->begin_stop();
  if (watcher_) watcher_->begin_stop();
  if (http_) http_->begin_stop();
  if (outbound_) outbound_->begin_stop();
  if (writer_) writer_->flush();
  stop_started_ = shard_.clock().now();
  shard_.hold();
  draining_ = true;
  polling_ = true;
  shard_.add_poller(this);
}

bool ShardRuntime::poll() noexcept {
  if (!draining_) return false;
  for (auto& l : listeners_) {
    if (!l->drained()) return false;
  }
  if (watcher_ && !watcher_->drained()) return false;
  if (http_ && !http_->drained()) return false;
  // Deliveries finish their transactions; past the grace time the rest is cut off (the
  // recipients stay queued: the attempt counts as a connection loss).
  if (outbound_ && !outbound_drained_) {
    if (!outbound_->drained()) {
      if (!aborted_ && shard_.clock().now() - stop_started_ > std::chrono::seconds(5)) {
        aborted_ = true;
        log::warn("shard {}: deliveries still running 5s into the stop: closing them",
                  shard_.id().value());
        if (stack_) stack_->close_all();
      }
      return false;
    }
    outbound_drained_ = true;
    outbound_shared_.delivering.fetch_sub(1, std::memory_order_acq_rel);
  }
  // Every shard's outcomes for this spool must have arrived before the writer goes.
  if (outbound_shared_.delivering.load(std::memory_order_acquire) != 0 ||
      outbound_shared_.in_transit.load(std::memory_order_acquire) != 0) {
    return false;
  }
  if (stack_ && stack_->connection_count() != 0) return false;
  if (writer_ && !writer_->idle()) {
    writer_->flush();  // in-flight commits finish; nothing waits for the batch delay
    return false;
  }
  if (accounting_ && !accounting_->idle()) {
    accounting_->flush();
    return false;
  }
  draining_ = false;
  // Not from inside the poller loop: remove the poller and free engine-bound objects from
  // a deferred task, still on this shard's thread.
  shard_.defer([this] { teardown(); });
  return true;
}

void ShardRuntime::teardown() noexcept {
  if (control_ != nullptr) {
    control_->detach();
    control_ = nullptr;
  }
  if (polling_) {
    shard_.remove_poller(this);
    polling_ = false;
  }
  for (auto& l : listeners_) final_stats_ += l->stats();
  listeners_.clear();
  if (watcher_) final_pickup_ += watcher_->stats();
  watcher_.reset();
  if (http_) final_http_ = http_->stats();
  http_.reset();
  if (outbound_) {
    final_outbound_ = outbound_->stats();
    outbound_->shutdown();
    outbound_.reset();
  }
  accounting_.reset();
  if (writer_) final_spool_ = writer_->stats();
  writer_.reset();
  // ~SpoolWriter cancels its batch timer and leaves the Timer to the cancellation's final
  // completion: let the engine deliver it before the loop exits, or the
  // timer object is never freed. Bounded: a few short waits.
  for (int i = 0; i < 20; ++i) {
    if (shard_.engine().run_once(std::chrono::milliseconds(1)) == 0 && i >= 1) break;
  }
  stack_.reset();
  shard_.release();
}

}  // namespace salvo::admin
