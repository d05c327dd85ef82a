// SPDX-License-Identifier: Apache-2.0
// ShardSet: creates every shard's engine up front (failures surface before any thread
// starts), starts one pinned thread per shard, and stops them on request.
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <barrier>
#include <stdexcept>
#include <thread>
#include <vector>

#include <salvo/base/assert.h>
#include <salvo/base/log.h>
#include <salvo/shard/shard.h>

#include "shard/shard_impl.h"

namespace salvo::shard {
namespace {

std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int i = 0; i < CPU_SETSIZE; ++i) {
      if (CPU_ISSET(i, &set)) cpus.push_back(i);
    }
  }
  if (cpus.empty()) {
    unsigned n = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < n; ++i) cpus.push_back(static_cast<int>(i));
  }
  return cpus;
}

void pin_to(int cpu, std::uint32_t shard) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  if (rc != 0) log::warn("shard {}: cannot pin to cpu {} (error {}); running unpinned", shard, cpu, rc);
}

}  // namespace

struct ShardSet::Impl {
  ShardSetOptions options;
  std::atomic<bool> stop_requested{false};
  std::vector<std::unique_ptr<ShardImpl>> shards;
  // Read by request_stop(), possibly from a signal handler: fixed after construction.
  std::vector<io::WakeTarget> stop_targets;
  std::vector<std::thread> threads;
  std::vector<int> cpus;
};

ShardSet::ShardSet(const ShardSetOptions& options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  impl_->cpus = allowed_cpus();
  std::uint32_t n = options.count != 0 ? options.count
                                       : static_cast<std::uint32_t>(impl_->cpus.size());
  for (std::uint32_t i = 0; i < n; ++i) {
    auto s = std::make_unique<ShardImpl>(ShardId(i), n, &impl_->stop_requested,
                                         options.idle_poll);
    std::string why;
    if (!s->init_engine(options.engine, options.queue_depth, &why)) {
      throw std::runtime_error(why.empty() ? "io engine creation failed" : why);
    }
    impl_->stop_targets.push_back(s->engine().any_thread_wake_target());
    impl_->shards.push_back(std::move(s));
  }
}

ShardSet::~ShardSet() {
  if (!impl_->threads.empty()) {
    request_stop();
    join();
  }
}

std::uint32_t ShardSet::size() const noexcept {
  return static_cast<std::uint32_t>(impl_->shards.size());
}

std::uint32_t ShardSet::mailbox_capacity() const noexcept {
  return impl_->options.mailbox_capacity;
}

Shard& ShardSet::shard(ShardId id) noexcept {
  SALVO_ASSERT(id.value() < impl_->shards.size());
  return *impl_->shards[id.value()];
}

void ShardSet::start(std::function<void(Shard&)> init) {
  SALVO_CHECK(impl_->threads.empty());
  const std::size_t n = impl_->shards.size();
  // Every ring is enabled on its own thread before any init() may wake a peer.
  auto ready = std::make_shared<std::barrier<>>(static_cast<std::ptrdiff_t>(n));
  auto shared_init = std::make_shared<std::function<void(Shard&)>>(std::move(init));
  for (std::size_t i = 0; i < n; ++i) {
    ShardImpl* s = impl_->shards[i].get();
    int cpu = impl_->cpus[i % impl_->cpus.size()];
    bool pin = impl_->options.pin;
    impl_->threads.emplace_back([this, s, cpu, pin, ready, shared_init] {
      detail::set_this_shard(s);
      if (pin) pin_to(cpu, s->id().value());
      s->engine().bind_to_current_thread();
      ready->arrive_and_wait();
      try {
        if (*shared_init) (*shared_init)(*s);
      } catch (const std::exception& e) {
        // No exceptions on shard threads: a failed init stops the whole set.
        log::error("shard {}: init failed: {}", s->id().value(), e.what());
        request_stop();
      }
      s->run();
      detail::set_this_shard(nullptr);
    });
  }
}

void ShardSet::request_stop() noexcept {
  impl_->stop_requested.store(true, std::memory_order_seq_cst);
  for (const auto& t : impl_->stop_targets) io::wake_from_any_thread(t);
}

void ShardSet::join() {
  for (auto& t : impl_->threads) {
    if (t.joinable()) t.join();
  }
  impl_->threads.clear();
}

}  // namespace salvo::shard
