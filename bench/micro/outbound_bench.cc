// SPDX-License-Identifier: Apache-2.0
// What a queued message costs in RAM (issue 15: <= 150 B each): the origin shard's
// spool::SpoolIndex entry and the destination's outbound::Backlog entry (its message info
// and its queued recipients), filled with 1,000,000 messages of one recipient (and of 3
// and 12), and 10,000,000 of one, measured as the growth of the process's resident set.
// salvod links mimalloc, so does this bench. One measurement per process run is the
// cleanest (freed memory of an earlier one may be reused):
//   build/bench/bench_outbound --benchmark_filter=Index/1/1000000
// The counter bytes_per_msg is the figure to quote. The tables double as they grow, so
// the figure depends on where the count falls between two sizes: 1 M is just past a
// doubling (the worst case), 10 M about in the middle. SpilledBacklog: the backlog of one
// held destination with the spill store as salvod runs it (RAM for 10,000 recipients and
// the chunk handles; the rest on disk).
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include <stdlib.h>
#include <unistd.h>

#include <benchmark/benchmark.h>
#include <mimalloc.h>

#include <salvo/spool/spool_index.h>

#include "outbound/backlog.h"
#include "outbound/spill_store.h"

namespace {

using namespace salvo;

std::uint64_t rss_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0;
  unsigned long resident = 0;
  if (std::fscanf(f, "%lu %lu", &size, &resident) != 2) resident = 0;
  std::fclose(f);
  return resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

// Where message i's record would be: 2 KiB messages in 64 MiB segments.
spool::Location location_of(std::uint64_t i) {
  constexpr std::uint64_t kPerSegment = (64u << 20) / 2200;
  return spool::Location{spool::SegmentSeq(1 + i / kPerSegment), (i % kPerSegment) * 2200,
                         2200};
}

void report(benchmark::State& state, std::uint64_t before, std::uint64_t messages) {
  const std::uint64_t after = rss_bytes();
  state.counters["bytes_per_msg"] =
      static_cast<double>(after - before) / static_cast<double>(messages);
  state.counters["rss_mib"] = static_cast<double>(after >> 20);
}

// The origin shard's index: one entry per queued message.
void BM_QueuedMessageBytes_Index(benchmark::State& state) {
  const auto recipients = static_cast<std::uint32_t>(state.range(0));
  const auto messages = static_cast<std::uint64_t>(state.range(1));
  for (auto _ : state) {
    mi_collect(true);
    const std::uint64_t before = rss_bytes();
    auto index = std::make_unique<spool::SpoolIndex>();
    for (std::uint64_t i = 0; i < messages; ++i) {
      index->add_message(spool::MessageId(i + 1), location_of(i), recipients);
    }
    report(state, before, messages);
    benchmark::DoNotOptimize(index->message_count());
  }
}
void sizes(benchmark::internal::Benchmark* b) {
  for (std::int64_t r : {1, 3, 12}) b->Args({r, 1'000'000});
  b->Args({1, 10'000'000});
  b->Iterations(1);
}

BENCHMARK(BM_QueuedMessageBytes_Index)->Apply(sizes);

// Queues `messages` of `recipients` each, due now.
void fill(outbound::Backlog& backlog, std::uint64_t messages, std::uint32_t recipients) {
  const WallTime now{};
  outbound::Enqueue e;
  e.received_unix_ns = 1'760'000'000'000'000'000;
  for (std::uint64_t i = 0; i < messages; ++i) {
    e.message = i + 1;
    e.record = location_of(i);
    for (std::uint32_t r = 0; r < recipients; ++r) {
      e.recipient = r;
      e.index_in_record = r;
      backlog.add(e, now);
    }
  }
}

// The destination's backlog: one message info and its recipients per queued message.
void BM_QueuedMessageBytes_Backlog(benchmark::State& state) {
  const auto recipients = static_cast<std::uint32_t>(state.range(0));
  const auto messages = static_cast<std::uint64_t>(state.range(1));
  for (auto _ : state) {
    mi_collect(true);
    const std::uint64_t before = rss_bytes();
    auto backlog = std::make_unique<outbound::Backlog>();
    fill(*backlog, messages, recipients);
    report(state, before, messages);
    benchmark::DoNotOptimize(backlog->messages());
  }
}
BENCHMARK(BM_QueuedMessageBytes_Backlog)->Apply(sizes);

// The same with spilling as salvod does it ([delivery] queue_in_memory = 10,000, one held
// destination): what is beyond the RAM share goes to a SpillStore in a directory made
// under the current one (the real disk: 80 bytes a recipient), removed afterwards.
void BM_QueuedMessageBytes_SpilledBacklog(benchmark::State& state) {
  const auto recipients = static_cast<std::uint32_t>(state.range(0));
  const auto messages = static_cast<std::uint64_t>(state.range(1));
  char dir[] = "bench-spill-XXXXXX";
  if (::mkdtemp(dir) == nullptr) {
    state.SkipWithError("mkdtemp failed");
    return;
  }
  for (auto _ : state) {
    mi_collect(true);
    const std::uint64_t before = rss_bytes();
    auto store = outbound::SpillStore::open(std::string(dir) + "/shard-0");
    if (!store) {
      state.SkipWithError("spill store");
      break;
    }
    outbound::SpillPolicy policy{store->get(), 10'000, std::chrono::minutes(5)};
    auto backlog = std::make_unique<outbound::Backlog>(&policy);
    fill(*backlog, messages, recipients);
    report(state, before, messages);
    state.counters["spilled"] = static_cast<double>(backlog->spilled());
    state.counters["disk_mib"] = static_cast<double>((*store)->bytes() >> 20);
    benchmark::DoNotOptimize(backlog->messages());
    backlog.reset();
  }
  ::rmdir(dir);
}
void spilled_sizes(benchmark::internal::Benchmark* b) {
  b->Args({1, 1'000'000});
  b->Args({1, 10'000'000});
  b->Iterations(1);
}
BENCHMARK(BM_QueuedMessageBytes_SpilledBacklog)->Apply(spilled_sizes);

}  // namespace
