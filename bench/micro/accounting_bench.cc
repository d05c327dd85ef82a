// SPDX-License-Identifier: Apache-2.0
// Accounting micro-benchmarks: format_line events/s for a typical delivery
// line (every field, plain ASCII), a bounce whose response needs escaping and holds
// non-ASCII and invalid UTF-8, and a minimal "received" line. The target is >100k
// events/s per shard; the per-line cost here is the formatting share of that budget.
#include <string>

#include <benchmark/benchmark.h>

#include <salvo/accounting/accounting.h>

namespace {

using namespace salvo::accounting;

Event delivered() {
  Event ev;
  ev.type = EventType::Delivered;
  ev.ts_unix_ns = 1795383600123000000;
  ev.id = "00000000000abcde";
  ev.from = "newsletter@bulk.example.org";
  ev.rcpt = "firstname.lastname@example.com";
  ev.domain = "example.com";
  ev.mx = "mx1.mail.example.com";
  ev.ip = "192.0.2.25";
  ev.code = 250;
  ev.enhanced = "2.0.0";
  ev.response = "2.0.0 Ok: queued as 4Bxyz12abcD";
  ev.attempt = 1;
  ev.tls = "TLSv1.3";
  ev.size = 48213;
  ev.queued_s = 1.734;
  ev.source = "smtp";
  ev.job = "campaign-2026-11";
  return ev;
}

void run(benchmark::State& state, const Event& ev) {
  std::string out;
  out.reserve(64 * 1024);
  std::size_t bytes = 0;
  for (auto _ : state) {
    // Like the Writer: many lines appended into one buffer, cleared when "written".
    if (out.size() > 60 * 1024) out.clear();
    std::size_t before = out.size();
    format_line(ev, out);
    bytes += out.size() - before;
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}

void BM_FormatLineDelivered(benchmark::State& state) { run(state, delivered()); }
BENCHMARK(BM_FormatLineDelivered);

void BM_FormatLineBounceEscaped(benchmark::State& state) {
  Event ev = delivered();
  ev.type = EventType::Bounced;
  ev.code = 550;
  ev.enhanced = "5.1.1";
  ev.response =
      "5.1.1 <firstname.lastname@example.com>: \"Recipient\" address rejected:\r\n"
      "user unknown in virtual mailbox table \xC3\xA9t\xC3\xA9 \xFF\xFE\t(see \\help)";
  ev.category = "bad-mailbox";
  run(state, ev);
}
BENCHMARK(BM_FormatLineBounceEscaped);

void BM_FormatLineReceivedMinimal(benchmark::State& state) {
  Event ev;
  ev.type = EventType::Received;
  ev.ts_unix_ns = 1795383600123000000;
  ev.id = "00000000000abcde";
  ev.from = "";
  ev.size = 1024;
  ev.source = "pickup";
  run(state, ev);
}
BENCHMARK(BM_FormatLineReceivedMinimal);

}  // namespace
