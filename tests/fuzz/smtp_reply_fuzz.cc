// SPDX-License-Identifier: Apache-2.0
// Hostile remote servers (CVE-2020-8794 class): ReplyParser over arbitrary bytes in
// arbitrary splits must agree with a one-shot parse, and a ClientSession with queued
// transactions must survive any reply stream.
#include <salvo/smtp/client_session.h>
#include <salvo/smtp/extensions.h>
#include <salvo/smtp/reply.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using namespace salvo;
using namespace salvo::smtp;

struct Parsed {
  std::vector<Reply> replies;
  bool error = false;
};

Parsed parse_in_steps(std::string_view input, std::size_t step) {
  Parsed out;
  ReplyParser p;
  ByteBuffer in;
  Reply r;
  std::size_t pos = 0;
  while (pos < input.size() && !out.error) {
    std::size_t n = input.size() - pos < step ? input.size() - pos : step;
    in.append(input.substr(pos, n));
    pos += n;
    while (true) {
      auto st = p.parse(in, &r);
      if (st == ReplyParser::Status::Complete) {
        out.replies.push_back(r);
        parse_ehlo_reply(r);
        continue;
      }
      if (st == ReplyParser::Status::Error) out.error = true;
      break;
    }
    if (in.size() > 4096) std::abort();  // bounded buffering
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t flags = data[0];
  const std::size_t step = 1 + data[1] % 61;
  std::string_view input(reinterpret_cast<const char*>(data + 2), size - 2);

  Parsed whole = parse_in_steps(input, input.size() + 1);
  Parsed split = parse_in_steps(input, step);
  if (whole.error != split.error || whole.replies.size() != split.replies.size()) std::abort();
  for (std::size_t i = 0; i < whole.replies.size(); ++i)
    if (!(whole.replies[i] == split.replies[i])) std::abort();

  ClientConfig cfg;
  cfg.use_pipelining = flags & 1;
  cfg.use_chunking = flags & 2;
  cfg.pipeline_across_messages = flags & 4;
  cfg.tls = static_cast<TlsPolicy>((flags >> 3) % 3);
  if (flags & 32) cfg.auth = ClientCredentials{"", "user", "pw"};
  cfg.auth_requires_tls = flags & 64;
  ClientSession c(cfg);
  static const std::string kBody = "Subject: x\r\n\r\n.line\r\n..\r\nend\r\n";
  std::size_t submitted = 0;
  for (std::uint64_t i = 0; i < 3; ++i) {
    Transaction t;
    t.cookie = i;
    t.reverse_path = "a@b.c";
    t.recipients.push_back({"x@y.z", NotifyFlags(2), "rfc822;x@y.z"});
    if (i == 1) t.recipients.push_back({"w@y.z", {}, ""});
    t.body = kBody;
    t.needs_smtputf8 = i == 2 && (flags & 128);
    c.submit(std::move(t));
    ++submitted;
  }
  c.quit();
  ByteBuffer in;
  std::size_t pos = 0;
  std::size_t done = 0;
  bool over = false;
  while (!over) {
    std::size_t n = input.size() - pos < step ? input.size() - pos : step;
    in.append(input.substr(pos, n));
    pos += n;
    while (true) {
      ClientEvent ev = c.feed(in);
      if (ev.kind == ClientEventKind::None) break;
      if (ev.kind == ClientEventKind::NeedTls) c.tls_established();
      if (ev.kind == ClientEventKind::TransactionDone) ++done;
      if (ev.kind == ClientEventKind::Failed || ev.kind == ClientEventKind::Closed) over = true;
    }
    c.output().clear();
    if (pos >= input.size()) break;
  }
  if (!over) {
    c.connection_lost();
    while (true) {
      ClientEvent ev = c.feed(in);
      if (ev.kind == ClientEventKind::None) break;
      if (ev.kind == ClientEventKind::TransactionDone) ++done;
    }
  }
  if (done != submitted) std::abort();  // every transaction is reported exactly once
  return 0;
}
