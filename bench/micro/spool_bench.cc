// SPDX-License-Identifier: Apache-2.0
// Spool micro-benchmarks: append + group commit throughput with the io_uring
// engine, closed loop: `clients` transactions each append one message and append the next
// only when told it is durable (what the SMTP listener does). On tmpfs (/dev/shm) and on
// the real disk ($SALVO_BENCH_DISK_DIR or /var/tmp), 1 KiB and 10 KiB bodies, fdatasync on
// and off. Counters: msgs_per_fsync (group-commit factor), fsync p50/p99 in microseconds.
// The recovery scan of a 64 MiB segment: sound, empty, damaged, and built to be costly.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <random>
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

// The recovery scan of one 64 MiB segment held in memory (scan_segment, as recover() runs
// it over the mmap'ed file), by what is in it:
//   0 full of 4 KiB message records;
//   1 empty: the header, then the preallocated zero tail, read to its end to be sure it is
//     one;
//   2 every 16th record's header zeroed: a resync each;
//   3 the first record's header zeroed and 64 MiB of random bytes after it: the byte-by-byte
//     search for a magic runs to the end, finds nothing (a torn tail);
//   4 frame lookalikes (magic, sane header, 32 MiB claimed, wrong CRC) every 12 bytes: the
//     resync budget stops it.
void BM_RecoveryScan(benchmark::State& state) {
  constexpr std::uint64_t kCapacity = 64ull << 20;
  const auto what = state.range(0);
  std::string seg, payload;
  encode(SegmentHeaderRecord{.seq = SegmentSeq(1), .capacity = kCapacity}, payload);
  frame(RecordType::SegmentHeader, payload, SegmentSeq(1), 0, seg);
  std::mt19937_64 rng(64);
  if (what == 0 || what == 2) {
    std::string body(4000, 'b');
    for (int i = 0; seg.size() + 4096 < kCapacity; ++i) {
      MessageRecord m;
      m.id = MessageId(static_cast<std::uint64_t>(i) + 1);
      m.source = Source::Smtp;
      m.reverse_path = "bench@example.org";
      m.recipients.push_back({"rcpt@example.com", 0, {}});
      m.body = body;
      payload.clear();
      encode(m, payload);
      const std::size_t at = seg.size();
      frame(RecordType::Message, payload, SegmentSeq(1), at, seg);
      if (what == 2 && i % 16 == 5)
        std::fill_n(seg.begin() + static_cast<std::ptrdiff_t>(at), 12, '\0');
    }
  } else if (what == 3) {
    seg.append(12, '\0');
    while (seg.size() < kCapacity) seg.push_back(static_cast<char>(rng()));
  } else if (what == 4) {
    const char head[] = {'S', 'S', 'P', 'L', 2, 1, 0, 0, 0, 0, 0, 2};  // 32 MiB claimed
    while (seg.size() + sizeof head <= kCapacity) seg.append(head, sizeof head);
  }
  seg.resize(kCapacity, '\0');
  std::uint64_t records = 0;
  SegmentDamage damage;
  for (auto _ : state) {
    SpoolIndex index;
    RecoveryReport report;
    ScanState st{&index, &report, nullptr, nullptr, 0};
    damage = scan_segment(seg, SegmentSeq(1), st).value_or(SegmentDamage{});
    records = report.records;
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kCapacity));
  state.counters["records"] = static_cast<double>(records);
  state.counters["skipped_MiB"] = static_cast<double>(damage.skipped_bytes) / (1 << 20);
  state.counters["gave_up"] = damage.gave_up ? 1 : 0;
}
BENCHMARK(BM_RecoveryScan)->ArgName("what")->DenseRange(0, 4)->Unit(benchmark::kMillisecond);

// recover() of a shard directory holding one empty 64 MiB segment, as the writer creates
// it (fallocate) and as a start-up finds it: a fresh file each time, so the zero tail comes
// from the file system through the mmap, not from the page cache.
void BM_RecoverEmptySegmentFile(benchmark::State& state) {
  std::string header, payload;
  encode(SegmentHeaderRecord{.seq = SegmentSeq(1), .capacity = 64 << 20}, payload);
  frame(RecordType::SegmentHeader, payload, SegmentSeq(1), 0, header);
  for (auto _ : state) {
    state.PauseTiming();
    std::string dir = make_temp(disk_dir());
    int fd = ::open((dir + "/seg-0000000000000001.spool").c_str(), O_RDWR | O_CREAT, 0600);
    const bool made = !dir.empty() && fd >= 0 && ::posix_fallocate(fd, 0, 64 << 20) == 0 &&
                      ::pwrite(fd, header.data(), header.size(), 0) ==
                          static_cast<ssize_t>(header.size());
    if (fd >= 0) ::close(fd);
    state.ResumeTiming();
    auto r = made ? recover(dir, 0) : fail(std::errc::io_error);
    state.PauseTiming();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    if (!r || r->report.segments != 1 || r->report.torn_segments != 0) {
      state.SkipWithError("cannot create or recover the segment");
      break;
    }
    state.ResumeTiming();
  }
}
BENCHMARK(BM_RecoverEmptySegmentFile)->Unit(benchmark::kMillisecond);

BENCHMARK(BM_GroupCommit)
    ->ArgNames({"body", "disk", "clients", "fsync"})
    ->Args({1024, 0, 256, 1})
    ->Args({10240, 0, 256, 1})
    ->Args({1024, 1, 256, 1})
    ->Args({10240, 1, 256, 1})
    ->Args({1024, 1, 16, 1})
    ->Args({1024, 1, 256, 0})
    ->Args({102400, 0, 256, 0})  // the CPU cost of a 100 KiB message: encode, frame, CRC, write
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
