// SPDX-License-Identifier: Apache-2.0
// smtp micro-benchmarks: command and reply parsing, dot-stuffing and DATA decoding
// throughput, and whole pipelined server transactions of a 1 KiB message (the work
// salvo-sink does per message in its null mode, minus the IO).
//   build-smtp/bench/bench_smtp --benchmark_format=json
#include <benchmark/benchmark.h>

#include <salvo/smtp/client_session.h>
#include <salvo/smtp/command.h>
#include <salvo/smtp/data_codec.h>
#include <salvo/smtp/reply.h>
#include <salvo/smtp/server_session.h>

#include <string>

namespace {

using namespace salvo;
using namespace salvo::smtp;

std::string make_body(std::size_t size) {
  std::string body = "From: a@example.org\r\nTo: b@example.com\r\nSubject: bench\r\n\r\n";
  int i = 0;
  while (body.size() < size) {
    if (i % 10 == 0) body += ".";  // some lines need stuffing
    body += "The quick brown fox jumps over the lazy dog, line " + std::to_string(i++) + "\r\n";
  }
  return body;
}

void BM_ParseCommand(benchmark::State& state) {
  const std::string lines[] = {
      "MAIL FROM:<sender.name@example.org> SIZE=1024 BODY=8BITMIME",
      "RCPT TO:<recipient.name@example.com> NOTIFY=SUCCESS,FAILURE",
      "RCPT TO:<other@example.net>",
      "DATA",
  };
  CommandOptions opts;
  Command cmd;
  CommandError err;
  std::size_t bytes = 0;
  for (auto _ : state) {
    for (const auto& l : lines) {
      bool ok = parse_command(l, opts, &cmd, &err);
      benchmark::DoNotOptimize(ok);
      bytes += l.size() + 2;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 4);
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}
BENCHMARK(BM_ParseCommand);

void BM_ParseReply(benchmark::State& state) {
  const std::string wire =
      "250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 36700160\r\n250-8BITMIME\r\n"
      "250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250 CHUNKING\r\n"
      "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
      "250 2.0.0 Ok: queued as 0123456789ABCDEF\r\n";
  ReplyParser p;
  Reply r;
  for (auto _ : state) {
    std::string_view in = wire;
    while (!in.empty()) {
      std::size_t used = 0;
      p.parse(in, &used, &r);
      in.remove_prefix(used);
    }
    benchmark::DoNotOptimize(r.code);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 5);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * wire.size()));
}
BENCHMARK(BM_ParseReply);

void BM_DotStuff(benchmark::State& state) {
  const std::string body = make_body(static_cast<std::size_t>(state.range(0)));
  ByteBuffer out(body.size() * 2);
  for (auto _ : state) {
    out.clear();
    dot_stuff(body, out);
    benchmark::DoNotOptimize(out.view().data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_DotStuff)->Arg(1024)->Arg(1 << 20);

// What BDAT intake (ContentChecker) and delivery's local check (find_bare_line_ending)
// cost per body: both walk every line ending.
void BM_ContentCheck(benchmark::State& state) {
  const std::string body = make_body(static_cast<std::size_t>(state.range(0)));
  ContentChecker c(ContentLimits{0, kMaxTextLine});
  for (auto _ : state) {
    c.reset();
    c.update(body);
    c.finish();
    benchmark::DoNotOptimize(c.error());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_ContentCheck)->Arg(10 * 1024)->Arg(100 * 1024);

void BM_FindBareLineEnding(benchmark::State& state) {
  const std::string body = make_body(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(find_bare_line_ending(body));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_FindBareLineEnding)->Arg(10 * 1024)->Arg(100 * 1024);

void BM_DataDecode(benchmark::State& state) {
  const std::string body = make_body(static_cast<std::size_t>(state.range(0)));
  ByteBuffer wire;
  dot_stuff(body, wire);
  const bool keep = state.range(1) != 0;
  DataDecoder d(ContentLimits{0, kMaxTextLine});
  ByteBuffer out(body.size() + 16);
  for (auto _ : state) {
    d.reset();
    out.clear();
    std::size_t used = 0;
    auto st = d.decode(wire.view(), &used, keep ? &out : nullptr);
    benchmark::DoNotOptimize(st);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * wire.size()));
}
BENCHMARK(BM_DataDecode)->Args({1024, 0})->Args({1 << 20, 0})->Args({1 << 20, 1});

// One pipelined transaction per iteration on a long-lived session (connection reuse, as
// salvo-blast drives salvo-sink): MAIL+RCPT+DATA in one read, body + end in the next.
void BM_ServerTransaction1KiB(benchmark::State& state) {
  ServerConfig cfg;
  cfg.hostname = "sink.test";
  cfg.keep_body = state.range(0) != 0;
  ServerPolicy policy;
  ServerSession s(cfg, policy);
  s.greet();
  ByteBuffer in;
  in.append("EHLO blast.test\r\n");
  s.feed(in);
  s.output().clear();
  const std::string envelope =
      "MAIL FROM:<sender@example.org> SIZE=1024\r\nRCPT TO:<rcpt@example.com>\r\nDATA\r\n";
  ByteBuffer stuffed;
  dot_stuff(make_body(1024), stuffed);
  const std::string body(stuffed.view());
  std::size_t bytes = 0;
  for (auto _ : state) {
    in.append(envelope);
    s.feed(in);
    in.append(body);
    if (s.feed(in) != ServerEvent::MessageReady) {
      state.SkipWithError("no message");
      break;
    }
    s.complete_message(250, {2, 0, 0}, "Ok: queued");
    s.output().clear();
    bytes += envelope.size() + body.size();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}
BENCHMARK(BM_ServerTransaction1KiB)->Arg(0)->Arg(1);

// Client and server in memory: both state machines per 1 KiB message.
void BM_ClientServerTransaction1KiB(benchmark::State& state) {
  ServerConfig scfg;
  scfg.hostname = "sink.test";
  ServerPolicy policy;
  ServerSession server(scfg, policy);
  ClientConfig ccfg;
  ccfg.pipeline_across_messages = true;
  ClientSession client(ccfg);
  ByteBuffer to_server, to_client;
  server.greet();
  const std::string body = make_body(1024);
  auto shuttle = [&]() {
    std::size_t events = 0;
    for (int round = 0; round < 8; ++round) {
      to_client.append(server.output().view());
      server.output().clear();
      while (client.feed(to_client).kind != ClientEventKind::None) ++events;
      if (client.output().empty()) break;
      to_server.append(client.output().view());
      client.output().clear();
      while (true) {
        ServerEvent ev = server.feed(to_server);
        if (ev != ServerEvent::MessageReady) break;
        server.complete_message(250, {2, 0, 0}, "Ok");
      }
    }
    return events;
  };
  shuttle();  // greeting + EHLO
  std::uint64_t cookie = 0;
  for (auto _ : state) {
    Transaction t;
    t.cookie = ++cookie;
    t.reverse_path = "sender@example.org";
    t.recipients.push_back({"rcpt@example.com", {}, ""});
    t.body = body;
    client.submit(std::move(t));
    benchmark::DoNotOptimize(shuttle());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_ClientServerTransaction1KiB);

}  // namespace
