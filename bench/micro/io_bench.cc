// SPDX-License-Identifier: Apache-2.0
// io micro-benchmarks: the price of one virtual on_complete dispatch
// (a NOP round trip through the ring, and the bare virtual call), and send vs send_zc on
// loopback TCP for 1 KiB and 100 KiB payloads ("zero-copy where it pays — measure it").
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include <salvo/io/engine.h>

#include "io/uring/uring_engine.h"

namespace {

using namespace salvo;

std::unique_ptr<io::uring::UringEngine> make_engine() {
  std::string why;
  io::EngineOptions o;
  o.queue_depth = 1024;
  auto e = io::uring::UringEngine::create(o, &why);
  if (!e) return nullptr;
  (*e)->bind_to_current_thread();
  return std::move(*e);
}

class Counter final : public io::Completion {
 public:
  void on_complete(std::int32_t res, std::uint32_t flags) noexcept override {
    ++calls;
    if (res > 0) bytes += static_cast<std::uint64_t>(res);
    if (res < 0) ++errors;
    if ((flags & io::kNotification) != 0) ++notifications;
    else if ((flags & io::kMore) == 0 || res < 0) ++finished;  // plain send, or zc failure
    else ++results_with_more;
  }
  std::uint64_t calls = 0, bytes = 0, errors = 0, notifications = 0, finished = 0,
                results_with_more = 0;
};

// Bare virtual call through Completion*: the dispatch cost on its own.
__attribute__((noinline)) void dispatch(io::Completion* c, int i) { c->on_complete(i, 0); }

void BM_VirtualOnComplete(benchmark::State& state) {
  Counter c;
  int i = 0;
  for (auto _ : state) {
    dispatch(&c, ++i);
    benchmark::DoNotOptimize(c.calls);
  }
}
BENCHMARK(BM_VirtualOnComplete);

// One NOP SQE -> io_uring_enter -> CQE -> on_complete, `batch` at a time; per item.
void BM_NopRoundTrip(benchmark::State& state) {
  auto e = make_engine();
  if (!e) {
    state.SkipWithError("io_uring unavailable");
    return;
  }
  const auto batch = static_cast<int>(state.range(0));
  Counter c;
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) e->nop(&c);
    int got = 0;
    while (got < batch) got += e->run_once(std::chrono::milliseconds(1));
  }
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_NopRoundTrip)->Arg(1)->Arg(32);

// A loopback TCP pair; a reader thread drains the far end as fast as it can.
struct LoopbackSink {
  int client = -1;
  int server = -1;
  std::atomic<bool> stop{false};
  std::thread reader;

  bool open() {
    int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(l, 1) != 0) {
      return false;
    }
    ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
    client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(client, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return false;
    server = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
    ::close(l);
    int one = 1;
    ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    reader = std::thread([this] {
      std::vector<char> buf(1 << 20);
      while (::recv(server, buf.data(), buf.size(), 0) > 0) {
      }
    });
    return server >= 0;
  }
  ~LoopbackSink() {
    if (client >= 0) ::shutdown(client, SHUT_RDWR);
    if (reader.joinable()) reader.join();
    if (client >= 0) ::close(client);
    if (server >= 0) ::close(server);
  }
};

enum class Mode { Copy, ZeroCopy };

// range(0): payload bytes; range(1): sends in flight. Each buffer is reused only after its
// send completed (copy) or its notification arrived (zero-copy), as the contract says.
void send_bench(benchmark::State& state, Mode mode) {
  auto e = make_engine();
  if (!e) {
    state.SkipWithError("io_uring unavailable");
    return;
  }
  if (mode == Mode::ZeroCopy && !e->features().send_zc) {
    state.SkipWithError("kernel lacks IORING_OP_SEND_ZC");
    return;
  }
  LoopbackSink sink;
  if (!sink.open()) {
    state.SkipWithError("loopback socket setup failed");
    return;
  }
  const auto size = static_cast<std::size_t>(state.range(0));
  const auto inflight = static_cast<int>(state.range(1));
  std::vector<std::string> bufs(static_cast<std::size_t>(inflight), std::string(size, 'x'));
  std::vector<Counter> done(static_cast<std::size_t>(inflight));
  std::uint64_t total_bytes = 0;
  for (auto _ : state) {
    for (int i = 0; i < inflight; ++i) {
      auto& c = done[static_cast<std::size_t>(i)];
      c = Counter{};
      const std::string& b = bufs[static_cast<std::size_t>(i)];
      if (mode == Mode::Copy) {
        e->send(sink.client, b, &c);
      } else {
        e->send_zc(sink.client, b, &c);
      }
    }
    for (int i = 0; i < inflight; ++i) {
      auto& c = done[static_cast<std::size_t>(i)];
      auto released = [&] {
        if (c.errors != 0) return true;
        return mode == Mode::Copy ? c.finished == 1 : c.notifications == 1;
      };
      while (!released()) e->run_once(std::chrono::milliseconds(10));
      if (c.errors != 0) {
        state.SkipWithError("send failed");
        return;
      }
      total_bytes += c.bytes;
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(total_bytes));
  state.SetItemsProcessed(state.iterations() * inflight);
}

void BM_Send(benchmark::State& state) { send_bench(state, Mode::Copy); }
void BM_SendZc(benchmark::State& state) { send_bench(state, Mode::ZeroCopy); }

// 1 KiB and 100 KiB are the required points; 4/16/32 KiB locate the crossover.
void send_args(benchmark::internal::Benchmark* b) {
  for (long size : {1024L, 4096L, 16384L, 32768L, 102400L}) {
    for (long inflight : {1L, 8L}) b->Args({size, inflight});
  }
  b->UseRealTime();
}
BENCHMARK(BM_Send)->Apply(send_args);
BENCHMARK(BM_SendZc)->Apply(send_args);

}  // namespace
