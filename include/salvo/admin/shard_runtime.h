// SPDX-License-Identifier: Apache-2.0
// ShardRuntime: what salvod runs on one shard — the net stack, the spool writer over the
// recovered index, one InjectionListener per [[listen]] entry, the PickupWatcher, the
// accounting writer — and its graceful stop.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <salvo/accounting/accounting.h>
#include <salvo/config/config.h>
#include <salvo/inbound/injection_listener.h>
#include <salvo/inbound/pickup_watcher.h>
#include <salvo/net/stack.h>
#include <salvo/outbound/outbound.h>
#include <salvo/shard/shard.h>
#include <salvo/spool/recovery.h>
#include <salvo/spool/spool_writer.h>

#include <salvo/admin/control.h>
#include <salvo/admin/http_shared.h>
#include <salvo/admin/web.h>

namespace salvo::admin {

class HttpServer;
class BackgroundRecovery;
class SpoolPuncher;

// The start-up recovery over every shard, for the one log line that ends it. Thread-safe.
struct RecoveryTally {
  explicit RecoveryTally(std::uint32_t shards) : left(shards) {}
  std::atomic<std::uint32_t> left;
  std::atomic<std::uint64_t> messages{0};
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  // Each shard once its recovered mail is in its index (messages: how many it found); the
  // last logs "spool recovery finished: recovered_messages=N seconds=S".
  void shard_done(std::uint64_t recovered) noexcept;
};

// Owner: its shard. Built on the shard thread in ShardSet::start's init (the rings are
// SINGLE_ISSUER: engine-bound objects are created, used and destroyed on that thread).
// Stop: begin_stop() from the shard's stop hook holds the shard; poll() releases it once
// every session is gone and the writer is idle, after tearing everything down on the
// shard thread. The recovery result (and so the index) outlives the writer.
class ShardRuntime final : public shard::Poller, public metrics::Source {
 public:
  // files and pickup may be null (no accounting log / no pickup directory).
  ShardRuntime(shard::Shard& shard, const config::Config& config,
               spool::RecoveryResult recovered, std::string spool_dir,
               accounting::Files* files, const inbound::PickupShared* pickup,
               outbound::OutboundShared& outbound, outbound::Mailbox& mailbox,
               WebGateway* gateway);
  ~ShardRuntime();
  ShardRuntime(const ShardRuntime&) = delete;
  ShardRuntime& operator=(const ShardRuntime&) = delete;

  // Before start(): the segments to scan in the background (then the recovery result
  // given to the constructor is empty but for the next segment and id), or nullopt when
  // they were scanned before the shards started. tally: node-wide, outlives the shards.
  // checkpoint: with a background start, the index a clean stop's checkpoint gave: the
  // background thread then only plans its delivery (no segment is scanned).
  // take_checkpoint: with a background start and no such index, the background thread
  // takes the checkpoint itself (true: to use it; false: only to remove it).
  void set_recovery(std::optional<spool::SpoolListing> background, RecoveryTally* tally,
                    std::optional<spool::RecoveryResult> checkpoint = std::nullopt,
                    std::optional<bool> take_checkpoint = std::nullopt);
  // Phase 1: the writer, the accounting writer and delivery (every shard runs this before
  // any shard takes mail, so cross-shard deliveries always find their receiver).
  [[nodiscard]] Status start(std::string* why);
  // Phase 2: starts routing what the spool still owes (read back in the background, a
  // slice per loop turn), listens on every address (addresses[i] for listen[i], port
  // already fixed) and watches the pickup directory. why names the address on failure;
  // http: what [http] needs (shared by every shard, outliving them), or null without it.
  // Start-up only. With a background scan, the old mail is routed and the pickup directory
  // watched once the scan is handed over (finish_recovery).
  [[nodiscard]] Status open(const std::vector<inbound::ListenerShared>& shared,
                            const std::vector<net::SocketAddress>& addresses,
                            const HttpShared* http, std::string* why);
  // The mailbox handler: null once torn down (late messages are dropped; the spool still
  // has what they described).
  outbound::Outbound* outbound() noexcept { return outbound_.get(); }
  // The control plane's questions and verbs, answered on this shard (attached by main in
  // the shard's init, detached at teardown).
  void attach_control(ControlInbox* inbox);
  ShardAnswer answer(const ShardRequest& r);
  // The spool index: messages and recipients not final yet.
  void report(metrics::Snapshot& s) const override;
  void begin_stop() noexcept;
  bool poll() noexcept override;

  // Summed over the listeners; valid after the shard has stopped (read after join()).
  const inbound::InboundStats& final_stats() const noexcept { return final_stats_; }
  const inbound::PickupStats& final_pickup_stats() const noexcept { return final_pickup_; }
  const spool::Stats& final_spool_stats() const noexcept { return final_spool_; }
  const outbound::OutboundStats& final_outbound_stats() const noexcept { return final_outbound_; }
  const HttpStats& final_http_stats() const noexcept { return final_http_; }
  std::uint64_t recovered_messages() const noexcept { return recovered_messages_; }

 private:
  void teardown() noexcept;
  Status start_pickup(std::string* why);
  // The background scan is done: its index joins the live one, the pickup watcher starts,
  // reclamation resumes and its jobs are routed; its messages' recipients follow, a slice
  // per loop turn, as the read-back hands them over (route_recovered).
  void finish_recovery(spool::RecoveryResult&& old, std::vector<outbound::RecoveredJob>&& jobs,
                       Duration took);
  // Reads back and routes, in the background, what recovered_ owes (and the background
  // scan, when background_listing_ is set).
  void start_background_recovery();
  void route_recovered(std::vector<outbound::RecoveredRecipient>&& slice) noexcept;
  void recovery_routed(std::uint64_t unreadable) noexcept;
  // At the end of a clean stop (writer idle, every outcome written): the spool's
  // checkpoint, unless it would not describe the whole spool (spool/checkpoint.h).
  void save_checkpoint() noexcept;
  // A verb or the trace, on this shard's objects.
  void act(const ShardRequest& r, ShardAnswer& a);

  shard::Shard& shard_;
  const config::Config& config_;
  spool::RecoveryResult recovered_;
  std::string dir_;
  std::unique_ptr<net::Stack> stack_;
  accounting::Files* files_;
  const inbound::PickupShared* pickup_;
  std::unique_ptr<spool::SpoolWriter> writer_;
  std::unique_ptr<accounting::Writer> accounting_;
  std::unique_ptr<inbound::IntakeBudget> intake_budget_;  // before the listeners that use it
  std::vector<std::unique_ptr<inbound::InjectionListener>> listeners_;
  std::unique_ptr<inbound::PickupWatcher> watcher_;
  WebGateway* gateway_;
  std::unique_ptr<HttpServer> http_;
  outbound::OutboundShared& outbound_shared_;
  outbound::Mailbox& mailbox_;
  std::unique_ptr<outbound::Outbound> outbound_;
  // Every counter of this shard: the writer, the listeners, the watcher, the HTTP server,
  // outbound and the index register here once; answers carry a snapshot.
  metrics::Registry registry_;
  outbound::OutboundStats final_outbound_;
  TimePoint stop_started_{};
  bool outbound_drained_ = false;
  ControlInbox* control_ = nullptr;
  bool aborted_ = false;
  inbound::InboundStats final_stats_;
  inbound::PickupStats final_pickup_;
  spool::Stats final_spool_;
  HttpStats final_http_;
  std::uint64_t recovered_messages_ = 0;
  std::optional<spool::SpoolListing> background_listing_;
  std::optional<spool::RecoveryResult> checkpoint_;  // handed to the background thread
  std::optional<bool> take_checkpoint_;
  RecoveryTally* tally_ = nullptr;
  std::unique_ptr<BackgroundRecovery> background_;
  std::unique_ptr<SpoolPuncher> puncher_;
  std::uint64_t routed_recipients_ = 0;  // of the recovered messages, so far
  bool intake_stopped_ = false;  // salvoctl drain
  bool draining_ = false;
  bool polling_ = false;
};

}  // namespace salvo::admin
