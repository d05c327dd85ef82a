// SPDX-License-Identifier: Apache-2.0
// Drives a whole ServerSession with arbitrary client bytes (commands, DATA, BDAT, AUTH,
// STARTTLS), cut into reads of fuzzer-chosen sizes. Checks: no crash or sanitizer report,
// every output byte is a well-formed reply, buffered input stays bounded, and the command
// and address parsers agree with themselves on the raw input.
#include <salvo/smtp/command.h>
#include <salvo/smtp/server_session.h>

#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

using namespace salvo;
using namespace salvo::smtp;

class FuzzPolicy final : public ServerPolicy {
 public:
  std::optional<Reply> on_rcpt(const ServerSession&, const Path& p, const RcptParams&) override {
    if (p.domain == "deny.test") return Reply(554, {5, 7, 1}, "Relay access denied");
    return std::nullopt;
  }
  std::optional<Reply> on_auth(const ServerSession&, AuthMechanism, std::string_view,
                               std::string_view user, std::string_view) override {
    if (user == "u") return std::nullopt;
    return Reply(535, {5, 7, 8}, "no");
  }
};

void check_output(ByteBuffer& out) {
  ReplyParser p(ReplyLimits{2048, 100000});
  Reply r;
  while (!out.empty()) {
    auto st = p.parse(out, &r);
    if (st == ReplyParser::Status::Error) std::abort();  // the server wrote a bad reply
    if (st == ReplyParser::Status::NeedMore) std::abort();  // a reply without its CRLF
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t flags = data[0];
  const std::size_t step = 1 + data[1] % 97;
  std::string_view input(reinterpret_cast<const char*>(data + 2), size - 2);

  // Stand-alone parsers on every line of the raw input.
  {
    Command cmd;
    CommandError err;
    std::string_view rest = input;
    while (!rest.empty()) {
      std::size_t nl = rest.find('\n');
      std::string_view line = rest.substr(0, nl);
      parse_command(line, CommandOptions{}, &cmd, &err);
      Path path;
      std::size_t used = 0;
      parse_path(line, PathKind::Forward, AllowUtf8::kYes, &path, &used);
      if (used > line.size()) std::abort();
      if (nl == std::string_view::npos) break;
      rest.remove_prefix(nl + 1);
    }
  }

  ServerConfig cfg;
  cfg.hostname = "fuzz.test";
  cfg.max_message_size = (flags & 1) ? 4096 : 0;
  cfg.max_recipients = 8;
  cfg.keep_body = (flags & 2) != 0;
  cfg.starttls_available = (flags & 4) != 0;
  if (flags & 8) cfg.auth_mechanisms.add(AuthMechanism::Plain).add(AuthMechanism::Login);
  cfg.auth_requires_tls = (flags & 16) != 0;
  cfg.starttls_injection = (flags & 32) ? StarttlsInjection::Reject : StarttlsInjection::Discard;
  if (flags & 64) cfg.extensions = ExtensionSet();
  FuzzPolicy policy;
  ServerSession s(cfg, policy);
  s.greet();
  ByteBuffer in;
  std::size_t pos = 0;
  bool closed = false;
  int completions = 0;
  while (pos < input.size() && !closed) {
    std::size_t n = input.size() - pos < step ? input.size() - pos : step;
    in.append(input.substr(pos, n));
    pos += n;
    for (int guard = 0; guard < 100000; ++guard) {
      ServerEvent ev = s.feed(in);
      if (ev == ServerEvent::MessageReady) {
        if (s.envelope().recipients.empty()) std::abort();
        if (cfg.max_message_size && s.body_size() > cfg.max_message_size) std::abort();
        if (cfg.keep_body && s.body().size() != s.body_size()) std::abort();
        if (++completions % 2) {
          s.complete_message(250, {2, 0, 0}, "Ok");
        } else {
          s.complete_message(Reply(451, {4, 3, 0}, "try later"));
        }
        continue;
      }
      if (ev == ServerEvent::StartTls) {
        in.clear();
        s.tls_established();
        continue;
      }
      if (ev == ServerEvent::Close) closed = true;
      break;
    }
    // Pending input is bounded: a partial line, or an AUTH line, never more.
    if (in.size() > kMaxAuthLine + 64) std::abort();
    check_output(s.output());
  }
  return 0;
}
