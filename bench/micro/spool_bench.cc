// SPDX-License-Identifier: Apache-2.0
// Spool micro-benchmarks: append + group commit throughput with the io_uring
// engine, closed loop: `clients` transactions each append one message and append the next
// only when told it is durable (what the SMTP listener does). On tmpfs (/dev/shm) and on
// the real disk ($SALVO_BENCH_DISK_DIR or /var/tmp), 1 KiB and 10 KiB bodies, fdatasync on
// and off. Counters: msgs_per_fsync (group-commit factor), fsync p50/p99 in microseconds.
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include <salvo/base/clock.h>
#include <salvo/base/log.h>
#include <salvo/io/engine.h>
#include <salvo/spool/recovery.h>
#include <salvo/spool/spool_writer.h>
#include <salvo/spool/template.h>

namespace {

using namespace salvo;
using namespace salvo::spool;

std::string make_temp(const char* base) {
  std::string t = std::string(base) + "/salvo_spool_bench_XXXXXX";
  std::vector<char> buf(t.begin(), t.end());
  buf.push_back('\0');
  return ::mkdtemp(buf.data()) != nullptr ? std::string(buf.data()) : std::string();
}

class Client final : public CommitWaiter {
 public:
  void on_committed(Status st) noexcept override {
    ++*done;
    if (!st) ++*errors;
    if (*started < target) send();
  }
  void send() {
    ++*started;
    MessageRecord m;
    m.source = Source::Smtp;
    m.reverse_path = "bench@example.org";
    m.recipients.push_back({"rcpt@example.com", 0, {}});
    m.body = *body;
    if (!writer->append_message(m, this)) {
      ++*errors;
      ++*done;
    }
  }
  SpoolWriter* writer = nullptr;
  const std::string* body = nullptr;
  std::uint64_t* started = nullptr;
  std::uint64_t* done = nullptr;
  std::uint64_t* errors = nullptr;
  std::uint64_t target = 0;
};

// The real disk: $SALVO_BENCH_DISK_DIR, else /var/tmp (ext4 on the dev machines).
const char* disk_dir() {
  const char* e = ::getenv("SALVO_BENCH_DISK_DIR");
  return e != nullptr ? e : "/var/tmp";
}

// Args: body bytes, 0 = /dev/shm | 1 = disk, clients, 1 = fdatasync | 0 = none.
void BM_GroupCommit(benchmark::State& state) {
  const auto body_size = static_cast<std::size_t>(state.range(0));
  const char* base = state.range(1) == 0 ? "/dev/shm" : disk_dir();
  const auto clients = static_cast<std::size_t>(state.range(2));
  const bool sync = state.range(3) != 0;
  std::string why;
  auto engine = io::create_engine("uring", io::EngineOptions{.queue_depth = 256}, &why);
  if (!engine) {
    state.SkipWithError(why.c_str());
    return;
  }
  (*engine)->bind_to_current_thread();
  std::string dir = make_temp(base);
  auto rec = recover(dir + "/shard-0", 0);
  if (dir.empty() || !rec) {
    state.SkipWithError("cannot create spool dir");
    return;
  }
  SystemClock clock;
  WriterOptions o{.dir = dir + "/shard-0", .sync = sync ? SyncMode::Fdatasync : SyncMode::None};
  auto writer = std::make_unique<SpoolWriter>(**engine, clock, o, rec->index, rec->next_segment,
                                              rec->next_id);
  std::string body(body_size, 'x');
  std::uint64_t started = 0, done = 0, errors = 0, total = 0;
  std::vector<Client> cs(clients);
  constexpr std::uint64_t kPerIteration = 4096;
  for (auto _ : state) {
    std::uint64_t target = total + kPerIteration;
    for (auto& c : cs) {
      c = Client{};
      c.writer = writer.get();
      c.body = &body;
      c.started = &started;
      c.done = &done;
      c.errors = &errors;
      c.target = target;
    }
    for (auto& c : cs) {
      if (started < target) c.send();
    }
    while (done < target) (*engine)->run_once(std::chrono::milliseconds(1));
    total = target;
  }
  const Stats& st = writer->stats();
  state.SetItemsProcessed(static_cast<std::int64_t>(total));
  state.SetBytesProcessed(static_cast<std::int64_t>(total * body_size));
  state.counters["msgs_per_fsync"] =
      st.commits ? static_cast<double>(st.messages) / static_cast<double>(st.commits) : 0;
  state.counters["fsync_p50_us"] = static_cast<double>(st.fsync_latency_ns.quantile(0.5)) / 1e3;
  state.counters["fsync_p99_us"] = static_cast<double>(st.fsync_latency_ns.quantile(0.99)) / 1e3;
  state.counters["errors"] = static_cast<double>(errors);
  writer.reset();
  for (int i = 0; i < 5; ++i) (*engine)->run_once(std::chrono::milliseconds(1));
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// Per-recipient expansion of a stored job template at send time: a 10 KiB body with three
// placeholders, expanded into a reused buffer.
void BM_TemplateExpand(benchmark::State& state) {
  std::string content = "From: Shop <shop@esp.example>\r\nTo: <{{email}}>\r\n"
                        "Subject: Hello {{name}}\r\n\r\n";
  while (content.size() < 10 * 1024) {
    content += "Dear {{name}}, your code is {{code}}. Lorem ipsum dolor sit amet.\r\n";
  }
  salvo::spool::Template t = salvo::spool::Template::parse(content);
  std::vector<salvo::spool::TemplateVar> vars = {
      {"email", "ann@one.example"}, {"name", "Ann Example"}, {"code", "123456"}};
  std::string out;
  for (auto _ : state) {
    out.clear();
    t.expand(vars, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(out.size()));
}
BENCHMARK(BM_TemplateExpand);

BENCHMARK(BM_GroupCommit)
    ->ArgNames({"body", "disk", "clients", "fsync"})
    ->Args({1024, 0, 256, 1})
    ->Args({10240, 0, 256, 1})
    ->Args({1024, 1, 256, 1})
    ->Args({10240, 1, 256, 1})
    ->Args({1024, 1, 16, 1})
    ->Args({1024, 1, 256, 0})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
