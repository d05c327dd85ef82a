// SPDX-License-Identifier: Apache-2.0
// DATA/BDAT framing: the decoder must give the same end-of-data position and body for any
// split of the input (reliability C5), only CRLF.CRLF may end data (smuggling), and dot_stuff must
// round-trip any body that has no bare CR/LF.
#include <salvo/smtp/data_codec.h>

#include <cstdint>
#include <cstdlib>
#include <string>

namespace {

using namespace salvo;
using namespace salvo::smtp;

struct Result {
  bool done = false;
  std::size_t consumed = 0;
  std::string body;
  bool error = false;
};

Result decode(std::string_view input, std::size_t step, ContentLimits limits) {
  DataDecoder d(limits);
  ByteBuffer body;
  Result r;
  std::size_t pos = 0;
  while (pos < input.size()) {
    std::size_t n = input.size() - pos < step ? input.size() - pos : step;
    std::size_t used = 0;
    auto st = d.decode(input.substr(pos, n), &used, &body);
    if (used > n) std::abort();
    pos += used;
    if (st == DataDecoder::Status::Done) {
      r.done = true;
      break;
    }
    if (used != n) std::abort();
  }
  r.consumed = pos;
  r.body = std::string(body.view());
  r.error = d.error() != ContentError::None;
  if (limits.max_size && r.body.size() > limits.max_size) std::abort();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t step = 1 + data[0] % 67;
  ContentLimits limits{(data[1] & 1) ? 512u : 0u, (data[1] & 2) ? 80u : kMaxTextLine};
  std::string_view input(reinterpret_cast<const char*>(data + 2), size - 2);

  Result whole = decode(input, input.size() + 1, limits);
  Result split = decode(input, step, limits);
  if (whole.done != split.done || whole.consumed != split.consumed || whole.body != split.body ||
      whole.error != split.error)
    std::abort();
  if (whole.done) {
    // The end is exactly CRLF "." CRLF, preceded by a line start.
    std::string_view seen = input.substr(0, whole.consumed);
    if (!seen.ends_with(".\r\n")) std::abort();
    if (seen.size() > 3 && !seen.substr(0, seen.size() - 3).ends_with("\r\n")) std::abort();
  }

  // BDAT: same content policy as a checker over the raw bytes, in any split.
  {
    BdatDecoder a(limits), b(limits);
    a.take(input, input.size(), nullptr);
    std::size_t pos = 0;
    while (pos < input.size()) pos += b.take(input.substr(pos), step, nullptr);
    a.finish();
    b.finish();
    if ((a.error() == ContentError::None) != (b.error() == ContentError::None)) std::abort();
    if (a.size() != input.size() || b.size() != input.size()) std::abort();
  }

  // Client side: stuff, then decode; the body must come back unchanged.
  if (find_bare_line_ending(input) == std::string_view::npos) {
    ByteBuffer wire;
    std::size_t n = dot_stuff(input, wire);
    if (n != wire.size() || n != dot_stuffed_size(input)) std::abort();
    Result back = decode(wire.view(), step, ContentLimits{0, static_cast<std::size_t>(-1)});
    std::string expect(input);
    if (!expect.empty() && !expect.ends_with("\r\n")) expect += "\r\n";
    if (!back.done || back.consumed != wire.size() || back.body != expect) std::abort();
    if (back.error && expect.find('\0') == std::string::npos) std::abort();
  }
  return 0;
}
