// SPDX-License-Identifier: Apache-2.0
// The shard loop: deferred tasks, pollers (mailbox drains), then engine.run_once(), which
// blocks only when nothing else is pending; wake-ups and stop requests interrupt it.
#include "shard/shard_impl.h"

#include <algorithm>

#include <salvo/base/assert.h>
#include <salvo/base/log.h>

namespace salvo::shard {
namespace {
thread_local Shard* g_this_shard = nullptr;
}  // namespace

Shard* this_shard() noexcept { return g_this_shard; }

namespace detail {
void set_this_shard(Shard* s) noexcept { g_this_shard = s; }
}  // namespace detail

ShardImpl::ShardImpl(ShardId id, std::uint32_t count, const std::atomic<bool>* stop_requested,
                     Duration idle_poll)
    : id_(id), count_(count), stop_requested_(stop_requested), idle_poll_(idle_poll) {}

ShardImpl::~ShardImpl() = default;

bool ShardImpl::init_engine(const std::string& backend, unsigned queue_depth,
                            std::string* why) {
  io::EngineOptions opts;
  opts.queue_depth = queue_depth;
  opts.on_wake = &wake_counter_;
  auto e = io::create_engine(backend, opts, why);
  if (!e) return false;
  engine_ = std::move(*e);
  return true;
}

void ShardImpl::defer(std::function<void()> fn) {
  SALVO_ASSERT(g_this_shard == this || g_this_shard == nullptr);
  deferred_.push_back(std::move(fn));
}

void ShardImpl::add_poller(Poller* p) { pollers_.push_back(p); }

void ShardImpl::remove_poller(Poller* p) {
  auto it = std::find(pollers_.begin(), pollers_.end(), p);
  if (it == pollers_.end()) return;
  *it = nullptr;  // compacted after the current poll pass
  pollers_dirty_ = true;
}

void ShardImpl::on_stop(std::function<void()> fn) { stop_hooks_.push_back(std::move(fn)); }

void ShardImpl::release() noexcept {
  if (holds_ == 0) {
    SALVO_BUG("Shard::release() without hold()");
    return;
  }
  --holds_;
}

bool ShardImpl::stopping() const noexcept {
  return stop_begun_ || stop_requested_->load(std::memory_order_acquire);
}

bool ShardImpl::run_deferred() noexcept {
  if (deferred_.empty()) return false;
  // Tasks deferred by these tasks run in the next iteration, after IO had its turn.
  running_.swap(deferred_);
  for (auto& fn : running_) fn();
  stats_.deferred_tasks += running_.size();
  running_.clear();
  return true;
}

bool ShardImpl::run_pollers() noexcept {
  bool busy = false;
  for (std::size_t i = 0; i < pollers_.size(); ++i) {
    if (Poller* p = pollers_[i]) busy |= p->poll();
  }
  if (pollers_dirty_) {
    std::erase(pollers_, nullptr);
    pollers_dirty_ = false;
  }
  return busy;
}

bool ShardImpl::pollers_allow_sleep() noexcept {
  bool ok = true;
  for (Poller* p : pollers_) {
    if (p != nullptr) ok &= p->prepare_to_sleep();
  }
  return ok;
}

void ShardImpl::begin_stop() noexcept {
  stop_begun_ = true;
  auto hooks = std::move(stop_hooks_);
  stop_hooks_.clear();
  for (auto& fn : hooks) fn();
}

void ShardImpl::run() noexcept {
  TimePoint idle_since{};
  bool idle = false;
  for (;;) {
    ++stats_.loop_iterations;
    if (!stop_begun_ && stop_requested_->load(std::memory_order_acquire)) begin_stop();
    bool busy = run_deferred();
    busy |= run_pollers();
    busy |= !deferred_.empty();
    // Graceful stop: hooks ran and every hold (draining connection, pending commit) is
    // released. Messages still queued to this shard after that are dropped with it.
    if (stop_begun_ && holds_ == 0 && deferred_.empty()) break;
    if (busy) {
      idle = false;
    } else if (!idle) {
      idle = true;
      idle_since = MonoClock::now();
    }
    // Block only when idle for longer than idle_poll and every poller agrees.
    bool block = !busy && (idle_poll_ == Duration::zero() ||
                           MonoClock::now() - idle_since >= idle_poll_);
    block = block && pollers_allow_sleep();
    if (block) ++stats_.sleeps;
    int n = engine_->run_once(block ? io::kWaitForever : Duration::zero());
    if (n > 0) idle = false;
  }
}

}  // namespace salvo::shard
