// SPDX-License-Identifier: Apache-2.0
// Hostile pickup files (bad input from disk never crashes; docs/reliability.md F3/F4): the first
// byte picks the format and a chunk size. .eml: parse_eml on the rest. .json: the two-pass
// JobReader fed whole and fed in chunks must agree exactly (same error position, or the
// same header and recipients): the framing may not depend on where reads end.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include <salvo/inbound/pickup_format.h>

namespace {

using namespace salvo::inbound;

struct Outcome {
  bool ok = false;
  std::uint64_t line = 0, offset = 0;
  std::string reason;
  std::string content;
  std::vector<std::string> emails;
  std::vector<std::size_t> vars;
};

Outcome run(std::string_view file, std::size_t step) {
  Outcome o;
  PickupLimits lim;
  lim.max_recipient_bytes = 512;
  JobReader r(lim);
  std::optional<PickupError> e;
  for (std::size_t i = 0; i < file.size() && !e; i += step) e = r.scan(file.substr(i, step));
  if (!e) e = r.finish_scan();
  if (!e) {
    o.content = r.header().content;
    for (std::size_t i = r.recipients_offset(); i < file.size() && !r.recipients_done() && !e;
         i += step) {
      e = r.feed_recipients(file.substr(i, step), [&](JobRecipientData&& d) {
        o.emails.push_back(d.email);
        o.vars.push_back(d.vars.size());
      });
    }
    if (!e && !r.recipients_done()) std::abort();  // the scan saw a closed array
  }
  if (e) {
    o.line = e->line;
    o.offset = e->offset;
    o.reason = e->reason;
    return o;
  }
  o.ok = true;
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  if ((data[0] & 1) == 0) {
    EmlEnvelope env;
    std::string body;
    if (!parse_eml(in, PickupLimits{}, &env, body)) {
      // Stored bodies are CRLF-only with no bare CR or LF.
      for (std::size_t i = 0; i < body.size(); ++i) {
        if (body[i] == '\n' && (i == 0 || body[i - 1] != '\r')) std::abort();
        if (body[i] == '\r' && (i + 1 == body.size() || body[i + 1] != '\n')) std::abort();
      }
      if (env.receivers.empty()) std::abort();
    }
    return 0;
  }
  std::size_t step = 1 + (data[0] >> 1);
  Outcome whole = run(in, in.size() + 1);
  Outcome chunked = run(in, step);
  if (whole.ok != chunked.ok || whole.line != chunked.line || whole.offset != chunked.offset ||
      whole.reason != chunked.reason || whole.content != chunked.content ||
      whole.emails != chunked.emails || whole.vars != chunked.vars) {
    std::abort();
  }
  return 0;
}
