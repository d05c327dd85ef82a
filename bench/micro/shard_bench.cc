// SPDX-License-Identifier: Apache-2.0
// Mailbox ping-pong between two shards (cf. Seastar tests/perf/smp_submit_to_perf.cc):
// one message in flight, so this is the cross-core round trip including wake-ups when the
// peer sleeps. Items/s = round trips/s; messages/s is twice that.
#include <atomic>
#include <chrono>
#include <thread>
#include <variant>

#include <benchmark/benchmark.h>

#include <salvo/shard/mailbox.h>
#include <salvo/shard/shard.h>

namespace {

using namespace salvo;
using namespace salvo::shard;

struct Ping {
  std::uint64_t left;
};
struct Pong {
  std::uint64_t left;
};
using Msg = std::variant<Ping, Pong>;

// range(0): round trips per batch; range(1): 1 = pin shards to CPUs; range(2): idle_poll
// in microseconds (0 = block as soon as idle, so every message needs a wake-up).
void BM_MailboxPingPong(benchmark::State& state) {
  ShardSetOptions o;
  o.count = 2;
  o.queue_depth = 256;
  o.pin = state.range(1) != 0;
  o.idle_poll = std::chrono::microseconds(state.range(2));
  ShardSet set(o);
  const auto batch = static_cast<std::uint64_t>(state.range(0));
  std::atomic<std::uint64_t> batches_done{0};
  MessageMatrix<Msg>* mm = nullptr;
  MessageMatrix<Msg> matrix(set, [&](ShardId from, Msg&& m) {
    ShardId me = this_shard()->id();
    if (auto* p = std::get_if<Ping>(&m)) {
      mm->send(me, from, Pong{p->left});
    } else if (std::uint64_t left = std::get<Pong>(m).left; left > 1) {
      mm->send(me, from, Ping{left - 1});
    } else {
      batches_done.fetch_add(1, std::memory_order_release);
      batches_done.notify_one();
    }
  });
  mm = &matrix;
  // Shard 0 starts a batch whenever the main thread asks, through a deferred poller.
  struct Kick final : Poller {
    std::atomic<std::uint64_t> requested{0};
    std::uint64_t started = 0;
    MessageMatrix<Msg>* m = nullptr;
    std::uint64_t batch = 0;
    bool poll() noexcept override {
      if (started == requested.load(std::memory_order_acquire)) return false;
      ++started;
      m->send(ShardId(0), ShardId(1), Ping{batch});
      return true;
    }
  } kick;
  kick.m = &matrix;
  kick.batch = batch;
  set.shard(ShardId(0)).add_poller(&kick);
  set.start([](Shard&) {});
  std::uint64_t want = 0;
  for (auto _ : state) {
    ++want;
    kick.requested.store(want, std::memory_order_release);
    // Shard 0 may be asleep: wake it from this (non-shard) thread.
    io::wake_from_any_thread(set.shard(ShardId(0)).engine().any_thread_wake_target());
    // Block (futex) rather than spin: on small machines a spinning main thread steals the
    // pinned shards' CPUs.
    for (std::uint64_t seen = batches_done.load(std::memory_order_acquire); seen < want;
         seen = batches_done.load(std::memory_order_acquire)) {
      batches_done.wait(seen, std::memory_order_acquire);
    }
  }
  set.request_stop();
  set.join();
  set.shard(ShardId(0)).remove_poller(&kick);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch));
  Stats total;
  total += set.shard(ShardId(0)).stats();
  total += set.shard(ShardId(1)).stats();
  state.counters["wakes_per_msg"] =
      static_cast<double>(total.mailbox_wakes_sent) / static_cast<double>(total.mailbox_sent);
  state.counters["msgs_per_s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * static_cast<double>(batch) * 2,
      benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MailboxPingPong)
    ->Args({10000, 0, 0})
    ->Args({10000, 1, 0})
    ->Args({10000, 0, 20})
    ->Args({10000, 1, 20})
    ->Args({10000, 1, 200})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
