// SPDX-License-Identifier: Apache-2.0
// Delivery policy hot paths: the rate limiter taken once per message, the verdict
// of a 250 (every delivery) and of a 550 (the category regex table), and a destination
// queue's take_transaction.
#include <chrono>

#include <benchmark/benchmark.h>

#include <salvo/base/units.h>
#include <salvo/queue/destination_queue.h>
#include <salvo/queue/shaping.h>
#include <salvo/queue/verdict.h>

namespace {

using namespace salvo;

void BM_TokenBucketTake(benchmark::State& state) {
  queue::TokenBucket b(Rate{1'000'000'000, std::chrono::seconds(1)}, 1000);
  TimePoint t{};
  std::uint64_t taken = 0;
  for (auto _ : state) {
    t += std::chrono::nanoseconds(1);
    taken += b.try_take(t) ? 1 : 0;
  }
  benchmark::DoNotOptimize(taken);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TokenBucketTake);

void BM_ClassifyDelivered(benchmark::State& state) {
  auto c = queue::Classifier::create({});
  smtp::Reply r(250, {2, 0, 0}, "Ok: queued as 4Xq");
  for (auto _ : state) benchmark::DoNotOptimize(c->classify(queue::Stage::DataEnd, r));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ClassifyDelivered);

void BM_ClassifyBounce(benchmark::State& state) {
  auto c = queue::Classifier::create({});
  smtp::Reply r(550, {5, 7, 1}, "Service unavailable; client host blocked using zen.spamhaus.org");
  for (auto _ : state) benchmark::DoNotOptimize(c->classify(queue::Stage::Rcpt, r));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ClassifyBounce);

void BM_QueueTakeTransaction(benchmark::State& state) {
  const auto per_message = static_cast<std::uint32_t>(state.range(0));
  queue::DestinationQueue q;
  std::uint64_t id = 0;
  for (auto _ : state) {
    state.PauseTiming();
    for (int m = 0; m < 64; ++m) {
      ++id;
      for (std::uint32_t r = 0; r < per_message; ++r) q.push_ready({id, r, 0, {}});
    }
    state.ResumeTiming();
    while (!q.take_transaction(100).empty()) {
    }
  }
  state.SetItemsProcessed(state.iterations() * 64 * per_message);
}
BENCHMARK(BM_QueueTakeTransaction)->Arg(1)->Arg(10);

}  // namespace
