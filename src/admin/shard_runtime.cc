// SPDX-License-Identifier: Apache-2.0
// ShardRuntime: per-shard wiring of net, spool and inbound; drain and teardown at stop.
#include <salvo/admin/shard_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <new>
#include <string>
#include <utility>
#include <variant>

#include <salvo/base/log.h>
#include <salvo/io/engine.h>
#include <salvo/spool/checkpoint.h>

#include "admin/background_recovery.h"
#include "admin/http_server.h"
#include "admin/spool_puncher.h"

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

void RecoveryTally::shard_done(std::uint64_t recovered) noexcept {
  const std::uint64_t total = messages.fetch_add(recovered) + recovered;
  if (left.fetch_sub(1) != 1) return;
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
  // One parseable line (tests and operators grep it).
  log::info("spool recovery finished: recovered_messages={} seconds={:.3f}", total,
            took.count());
}

void ShardRuntime::set_recovery(std::optional<spool::SpoolListing> background,
                                RecoveryTally* tally,
                                std::optional<spool::RecoveryResult> checkpoint,
                                std::optional<bool> take_checkpoint) {
  background_listing_ = std::move(background);
  tally_ = tally;
  checkpoint_ = std::move(checkpoint);
  take_checkpoint_ = take_checkpoint;
}

namespace {

constexpr metrics::Family kIntakeBytes{
    "salvo_smtp_intake_bytes", metrics::Type::Gauge,
    "Message text SMTP intake holds in memory now: bodies being received plus those "
    "waiting for their spool commit ([node] max_pending_bytes caps it)."};
constexpr metrics::Family kIntakePeak{
    "salvo_smtp_intake_peak_bytes", metrics::Type::Gauge,
    "The most salvo_smtp_intake_bytes has been since start (summed over shards)."};

}  // namespace

namespace {

// The spool's test seams, read from the environment: integration tests emulate a stalled
// disk with SALVO_TEST_SYNC_DELAY_MS (WriterOptions::test_sync_delay) and a slow
// background recovery with SALVO_TEST_RECOVERY_DELAY_MS (ScanProgress); nothing else sets
// them. `what` says what the delay does, for the warning shard 0 logs.
Duration test_delay(const char* name, std::uint32_t shard, const char* what) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return Duration::zero();
  char* end = nullptr;
  const unsigned long ms = std::strtoul(v, &end, 10);
  if (*end != '\0' || ms == 0) return Duration::zero();
  if (shard == 0) log::warn("{}={}: {} waits {} ms (tests only)", name, ms, what, ms);
  return std::chrono::milliseconds(ms);
}

}  // namespace

Status ShardRuntime::start(std::string* why) {
  const config::Node& node = config_.node;
  stack_ = net::make_kernel_stack(shard_.engine());
  spool::WriterOptions wo;
  wo.dir = dir_;
  wo.shard = shard_.id().value();
  wo.segment_size = node.spool_segment_size;
  wo.batch_max_records = node.commit_max_messages;
  wo.batch_max_bytes = node.commit_max_bytes;
  wo.commits_in_flight = node.commits_in_flight;
  wo.batch_max_delay = node.commit_interval;
  wo.sync = node.fsync ? spool::SyncMode::Fdatasync : spool::SyncMode::None;
  wo.reserve_bytes = node.spool_reserve;
  wo.make_segments_ahead = true;
  wo.test_sync_delay =
      test_delay("SALVO_TEST_SYNC_DELAY_MS", shard_.id().value(), "every spool commit");
  writer_ = std::make_unique<spool::SpoolWriter>(shard_.engine(), shard_.clock(), wo,
                                                 recovered_.index, recovered_.next_segment,
                                                 recovered_.next_id);
  // What a checkpoint at stop needs of the recovered deferred recipients.
  writer_->seed_deferred(recovered_.deferred);
  // The index knows none of the old segments yet: none may go before it does.
  if (background_listing_) writer_->hold_reclaim(true);
  if (files_ != nullptr) {
    accounting_ = std::make_unique<accounting::Writer>(shard_.engine(), shard_.clock(), *files_);
  }
  outbound_ = std::make_unique<outbound::Outbound>(shard_, outbound_shared_, mailbox_, *writer_,
                                                   recovered_.index, *stack_, accounting_.get());
  registry_.add(writer_.get());
  SpoolPuncher::Options po;
  po.dir = dir_;
  po.interval = node.spool_punch_interval;
  po.segment_size = node.spool_segment_size;
  po.min_new_bytes = std::min<std::uint64_t>(po.min_new_bytes, node.spool_segment_size / 16);
  puncher_ = std::make_unique<SpoolPuncher>(shard_, *writer_, recovered_.index, po);
  registry_.add(puncher_.get());
  puncher_->start();
  registry_.add(outbound_.get());
  registry_.add(this);
  return outbound_->start(why);
}

Status ShardRuntime::open(const std::vector<inbound::ListenerShared>& shared,
                          const std::vector<net::SocketAddress>& addresses,
                          const HttpShared* http, std::string* why) {
  if (!background_listing_) start_background_recovery();  // the read-back only
  if (!shared.empty()) {
    // Also without a cap (0): then it only measures (salvo_smtp_intake_bytes).
    const std::uint64_t cap = config_.node.max_pending_bytes;
    const spool::SpoolWriter* w = writer_.get();
    intake_budget_ = std::make_unique<inbound::IntakeBudget>(
        cap == 0 ? 0 : std::max<std::uint64_t>(cap / shard_.count(), 1),
        [w] { return w->buffered_bytes(); });
    shard_.add_poller(intake_budget_.get());
  }
  for (std::size_t i = 0; i < shared.size(); ++i) {
    auto l = std::make_unique<inbound::InjectionListener>(shard_, *stack_, *writer_, shared[i],
                                                          accounting_.get(), intake_budget_.get());
    l->set_dispatch(outbound_.get());
    if (auto st = l->start(addresses[i]); !st) {
      *why = "listen " + addresses[i].to_string() + ": " + st.error().message();
      return st;
    }
    registry_.add(l.get());
    listeners_.push_back(std::move(l));
  }
  // Claims are settled against the spool: with a background recovery, once it is read.
  if (!background_listing_) {
    if (auto st = start_pickup(why); !st) return st;
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
                                         config_.http, *http);
    registry_.add(http_.get());
    if (auto st = http_->start(); !st) {
      *why = "[http] address " + http->address.to_string() + ": " + st.error().message();
      return st;
    }
  }
  if (background_listing_) start_background_recovery();
  return {};
}

void ShardRuntime::start_background_recovery() {
  BackgroundRecovery::Hooks hooks;
  hooks.on_scanned = [this](BackgroundRecovery::Done&& d) {
    if (!d.recovered) {
      log::error("spool {}: background recovery failed: {}; its mail stays on disk, "
                 "undelivered until salvod is restarted",
                 dir_, d.recovered.error().message());
      return;
    }
    finish_recovery(std::move(*d.recovered), std::move(d.jobs), d.took);
  };
  hooks.on_recipients = [this](std::vector<outbound::RecoveredRecipient>&& slice) {
    route_recovered(std::move(slice));
  };
  hooks.on_finished = [this](std::uint64_t unreadable) { recovery_routed(unreadable); };
  background_ = std::make_unique<BackgroundRecovery>(shard_, std::move(hooks));
  registry_.add(background_.get());
  if (!background_listing_) {
    outbound::RecoveryPlanner planner(recovered_, dir_);
    outbound_->recover_jobs(planner.take_jobs());
    background_->start_read_back(std::move(planner));
    return;
  }
  log::info("spool {}: {} segment(s), {} bytes: recovering in the background", dir_,
            background_listing_->segments.size(), background_listing_->bytes);
  background_->start(*background_listing_,
                     test_delay("SALVO_TEST_RECOVERY_DELAY_MS", shard_.id().value(),
                                "each segment of the background recovery"),
                     std::exchange(checkpoint_, std::nullopt), take_checkpoint_);
}

Status ShardRuntime::start_pickup(std::string* why) {
  if (pickup_ == nullptr) return {};
  watcher_ = std::make_unique<inbound::PickupWatcher>(shard_, *writer_, recovered_.index, dir_,
                                                      *pickup_, accounting_.get());
  watcher_->set_dispatch(outbound_.get());
  registry_.add(watcher_.get());
  // Needed only to settle what was claimed before the restart: given away, so freed.
  if (auto st = watcher_->start(std::move(recovered_.pickup_claims)); !st) {
    *why = "pickup " + pickup_->dir + ": " + st.error().message();
    return st;
  }
  return {};
}

void ShardRuntime::finish_recovery(spool::RecoveryResult&& old,
                                   std::vector<outbound::RecoveredJob>&& jobs, Duration took) {
  spool::log_report(dir_, old.report);
  // The old ids are all below the mark the new mail's ids started from: no id is in both.
  const std::vector<spool::MessageId> clashes = recovered_.index.absorb(std::move(old.index));
  if (!clashes.empty()) {
    log::error("spool {}: {} message id(s) of the old spool were given to new mail too (the "
               "next-id mark was behind); their old copies are kept on disk, not delivered, "
               "first {}",
               dir_, clashes.size(), spool::format_id(clashes.front().value()));
    // Their messages' recipients are left out as they are routed: the live entry's record
    // is not theirs (Origin::recover).
    std::erase_if(jobs, [&](const outbound::RecoveredJob& j) {
      return std::find(clashes.begin(), clashes.end(), spool::MessageId(j.id)) != clashes.end();
    });
  }
  writer_->seed_deferred(old.deferred);
  spool::add(recovered_.report, old.report);
  recovered_.pickup_claims = std::move(old.pickup_claims);
  recovered_messages_ = old.report.messages;
  writer_->hold_reclaim(false);
  log::info("spool {}: recovered {} message(s) and {} job(s) in {:.3f} s; their recipients "
            "are routed as they are read back",
            dir_, recovered_messages_, jobs.size(), std::chrono::duration<double>(took).count());
  if (stop_started_ == TimePoint{} && !intake_stopped_) {
    std::string why;
    if (auto st = start_pickup(&why); !st) {
      log::error("{}: the pickup directory is not watched", why);
    }
  }
  // Jobs are cursors, not lists: all of them at once; their window paces them.
  if (stop_started_ == TimePoint{}) outbound_->recover_jobs(std::move(jobs));
}

void ShardRuntime::route_recovered(std::vector<outbound::RecoveredRecipient>&& slice) noexcept {
  if (stop_started_ != TimePoint{} || !outbound_) return;  // the spool keeps the rest
  for (const outbound::RecoveredRecipient& r : slice) {
    routed_recipients_ += outbound_->recover(r) ? 1 : 0;
  }
}

void ShardRuntime::recovery_routed(std::uint64_t unreadable) noexcept {
  if (outbound_) outbound_->recovery_unreadable(unreadable, dir_);
  log::info("spool {}: the recovered messages are read back: {} recipient(s) routed", dir_,
            routed_recipients_);
  if (tally_ != nullptr) tally_->shard_done(recovered_messages_);
}

void ShardRuntime::attach_control(ControlInbox* inbox) {
  control_ = inbox;
  control_->attach(shard_, [this](const ShardRequest& r) { return answer(r); });
}

namespace {

constexpr metrics::Family kQueueMessages{
    "salvo_queue_messages", metrics::Type::Gauge,
    "Messages and jobs in the spool with recipients still to finish."};
constexpr metrics::Family kSpoolRecipients{"salvo_spool_recipients", metrics::Type::Gauge,
                                           "Recipients in the spool that are not final yet."};

constexpr metrics::Family kNetEvents{
    "salvo_net_events_total", metrics::Type::Counter,
    "Socket events of the shards' network stacks: accepted, connects, connect_failures, "
    "recv_rearms, recv_enobufs (the receive buffer ring ran dry), paused_overflows, "
    "idle_timeouts (an idle timer or a deadline), zerocopy_fallbacks, tls_handshakes, "
    "tls_failures."};
constexpr metrics::Family kNetBytes{"salvo_net_bytes_total", metrics::Type::Counter,
                                    "Bytes received from and sent to sockets (TLS: ciphertext)."};

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;  // clang 16 does not deduce aggregates yet

}  // namespace

void ShardRuntime::report(metrics::Snapshot& s) const {
  s.add(kQueueMessages, {}, static_cast<std::uint64_t>(recovered_.index.message_count()));
  s.add(kSpoolRecipients, {}, static_cast<std::uint64_t>(recovered_.index.live_recipients()));
  spool::add_metrics(recovered_.report, s);
  if (intake_budget_) {
    const std::int64_t used =
        intake_budget_->held() + static_cast<std::int64_t>(writer_->buffered_bytes());
    s.add(kIntakeBytes, {}, static_cast<double>(std::max<std::int64_t>(used, 0)));
    s.add(kIntakePeak, {}, static_cast<double>(intake_budget_->peak()));
  }
  if (!stack_) return;
  const net::Stats n = stack_->stats();
  const std::pair<std::string_view, std::uint64_t> events[] = {
      {"accepted", n.accepted},
      {"connects", n.connects},
      {"connect_failures", n.connect_failures},
      {"recv_rearms", n.recv_rearms},
      {"recv_enobufs", n.recv_enobufs},
      {"paused_overflows", n.paused_overflows},
      {"idle_timeouts", n.idle_timeouts},
      {"zerocopy_fallbacks", n.zerocopy_fallbacks},
      {"tls_handshakes", n.tls_handshakes},
      {"tls_failures", n.tls_failures},
  };
  for (const auto& [name, v] : events) {
    s.add(kNetEvents, metrics::label("event", name), static_cast<double>(v));
  }
  s.add(kNetBytes, metrics::label("direction", "in"), static_cast<double>(n.bytes_received));
  s.add(kNetBytes, metrics::label("direction", "out"), static_cast<double>(n.bytes_sent));
}

ShardAnswer ShardRuntime::answer(const ShardRequest& r) {
  ShardAnswer a;
  if (const auto* page = std::get_if<request::Page>(&r)) {
    if (http_) http_->complete(page->token, page->reply);
    return a;
  }
  if (!outbound_) return a;
  act(r, a);
  a.recovering = background_ && background_->running();
  a.blocked_ns = shard_.engine().blocked_ns();
  a.metrics = registry_.snapshot();
  a.outbound = outbound_->snapshot();
  return a;
}

void ShardRuntime::act(const ShardRequest& r, ShardAnswer& a) {
  std::visit(
      Overloaded{
          [](const request::Snapshot&) {},
          [](const request::Page&) {},
          [&](const request::Destinations& d) {
            switch (d.verb) {
              case request::Verb::Pause: a.touched = outbound_->pause(d.domain); break;
              case request::Verb::Resume: a.touched = outbound_->resume(d.domain); break;
              case request::Verb::Flush: a.touched = outbound_->flush(d.domain); break;
              case request::Verb::Bounce: a.touched = outbound_->bounce(d.domain); break;
            }
          },
          [&](const request::BounceMessage& b) { a.touched = outbound_->bounce_message(b.id); },
          [&](const request::Drain&) {
            // No new mail; what is queued is still delivered.
            intake_stopped_ = true;  // the pickup watcher does not start after a recovery
            for (auto& l : listeners_) l->begin_stop();
            if (watcher_) watcher_->begin_stop();
            if (http_) http_->stop_intake();
            a.touched = 1;
          },
          [&](const request::Reload& rl) {
            outbound_->reload(rl.settings);
            a.touched = 1;
          },
          [&](const request::Trace& t) {
            if (const auto e = recovered_.index.find(spool::MessageId(t.id))) {
              a.trace_found = true;
              a.trace_is_job = e->is_job;
              a.trace_states.assign(e->state.begin(), e->state.end());
            }
          },
      },
      r);
}

void ShardRuntime::begin_stop() noexcept {
  if (background_) background_->stop();  // its mail stays in the spool for the next start
  if (puncher_) puncher_->stop();
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
  // Sessions and deliveries finish what they are doing; past the grace time the rest is
  // cut off: a client that stops reading its replies would otherwise hold the stop for
  // the whole close linger (an answer owed is still given to the spool: the message is
  // queued, the client retries; a delivery's recipients stay queued as after a
  // connection loss).
  auto cut_off_late = [this](const char* what) {
    if (aborted_ || shard_.clock().now() - stop_started_ <= std::chrono::seconds(5)) return;
    aborted_ = true;
    log::warn("shard {}: {} still open 5s into the stop: closing them", shard_.id().value(),
              what);
    if (stack_) stack_->abort_all();
  };
  for (auto& l : listeners_) {
    if (!l->drained()) {
      cut_off_late("SMTP sessions");
      return false;
    }
  }
  if (watcher_ && !watcher_->drained()) return false;
  if (http_ && !http_->drained()) {
    cut_off_late("HTTP connections");
    return false;
  }
  if (outbound_ && !outbound_drained_) {
    if (!outbound_->drained()) {
      cut_off_late("deliveries");
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
  if (writer_) writer_->discard_spare();
  save_checkpoint();
  // Not from inside the poller loop: remove the poller and free engine-bound objects from
  // a deferred task, still on this shard's thread.
  shard_.defer([this] { teardown(); });
  return true;
}

void ShardRuntime::save_checkpoint() noexcept {
  if (!config_.node.checkpoint || !writer_) return;
  const char* skip = nullptr;
  // Held: a background recovery did not finish, so the index lacks the old segments.
  if (writer_->reclaim_held()) skip = "the start-up recovery had not finished";
  // A failed commit's records may be on disk though the index never took them.
  if (writer_->stats().failed_batches != 0) skip = "a spool commit failed during this run";
  if (pickup_ != nullptr && skip == nullptr) {
    // Claims are not kept in the index: only with no claimed file left to settle.
    std::error_code ec;
    const std::string work = inbound::pickup_work_dir(pickup_->dir, shard_.id().value());
    if (std::filesystem::exists(work, ec) && !std::filesystem::is_empty(work, ec)) {
      skip = "claimed pickup files are left";
    }
    if (ec) skip = "the pickup work directory cannot be read";
  }
  if (skip != nullptr) {
    log::info("spool {}: no checkpoint ({}): the next start reads the segments", dir_, skip);
    return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  Status st;
  try {  // the file is built in memory: about 40 bytes per queued message
    st = spool::save_checkpoint(dir_, shard_.id().value(), recovered_.index,
                                writer_->deferred(), writer_->next_id());
  } catch (const std::bad_alloc&) {
    st = fail(std::errc::not_enough_memory);
  }
  if (!st) {
    log::warn("spool {}: cannot write the checkpoint: {}; the next start reads the segments",
              dir_, st.error().message());
    if (auto rm = spool::remove_checkpoint(dir_); !rm) {
      log::error("spool {}: cannot remove a partial checkpoint: {}", dir_, rm.error().message());
    }
    return;
  }
  writer_->checkpoint_written();
  const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - t0;
  log::info("spool {}: checkpoint of {} messages written in {:.0f} ms", dir_,
            recovered_.index.message_count(), took.count());
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
  for (auto& l : listeners_) {
    registry_.remove(l.get());
    final_stats_ += l->stats();
  }
  listeners_.clear();
  if (intake_budget_) {
    shard_.remove_poller(intake_budget_.get());  // it reads the writer: goes before it
    intake_budget_.reset();
  }
  if (background_) {
    background_->stop();
    registry_.remove(background_.get());
    background_.reset();
  }
  if (puncher_) {
    puncher_->stop();
    registry_.remove(puncher_.get());
    puncher_.reset();
  }
  if (watcher_) {
    registry_.remove(watcher_.get());
    final_pickup_ += watcher_->stats();
  }
  watcher_.reset();
  if (http_) {
    registry_.remove(http_.get());
    final_http_ = http_->stats();
  }
  http_.reset();
  if (outbound_) {
    registry_.remove(outbound_.get());
    final_outbound_ = outbound_->stats();
    outbound_->shutdown();
    outbound_.reset();
  }
  accounting_.reset();
  if (writer_) {
    registry_.remove(writer_.get());
    final_spool_ = writer_->stats();
  }
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
