// SPDX-License-Identifier: Apache-2.0
// Relaxed canonicalization (RFC 6376 §3.4.2 and §3.4.4) and the header-section scan.
//
// The canonicalizers stream into a Sink (anything with put(char) and put(string_view)):
// one pass over the input, no allocation of their own, so the signer feeds SHA-256 through
// a fixed buffer and tests collect the output in a string. Only CRLF ends a line: a bare CR
// or LF is content, as every verifier we know treats it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <salvo/base/ascii.h>
#include <salvo/base/result.h>

namespace salvo::dkim::detail {

constexpr bool is_wsp(char c) noexcept { return c == ' ' || c == '\t'; }
using salvo::ascii::iequals;
constexpr char ascii_lower(char c) noexcept { return salvo::ascii::to_lower(c); }

// A message split at its first empty line. `header` keeps each field's CRLF; `body` starts
// after the empty line. No empty line: all of it is header and the body is empty.
struct MessageParts {
  std::string_view header;
  std::string_view body;
};
MessageParts split_message(std::string_view message) noexcept;

struct HeaderField {
  std::string_view name;  // as written, trailing WSP removed
  std::string_view raw;   // the whole field: name, colon, value, folds and its CRLF
};

// The fields of a header section, top to bottom, appended to `out`. Lines that are not
// fields (no colon, empty name, a continuation with no field above) are skipped: they cannot
// be signed. A line ending in a bare LF fails with errc::bare_lf.
[[nodiscard]] Status parse_header_fields(std::string_view header, std::vector<HeaderField>& out);

// "name:value" of one field (raw as in HeaderField), relaxed: name lower-cased, unfolded,
// WSP runs to one SP, WSP around the colon and at the end removed; then CRLF if asked.
enum class WithCrlf : bool { No, Yes };
template <class Sink>
void canon_header_relaxed(std::string_view raw, Sink& sink, WithCrlf crlf) {
  const std::size_t n = raw.size();
  std::size_t colon = raw.find(':');
  if (colon == std::string_view::npos) colon = n;
  std::size_t name_end = colon;
  while (name_end > 0 && is_wsp(raw[name_end - 1])) --name_end;
  for (std::size_t i = 0; i < name_end; ++i) sink.put(ascii_lower(raw[i]));
  sink.put(':');
  bool any = false;
  bool space = false;
  for (std::size_t i = colon + 1; i < n; ++i) {
    const char c = raw[i];
    if (c == '\r' && i + 1 < n && raw[i + 1] == '\n') {  // unfold
      ++i;
      continue;
    }
    if (is_wsp(c)) {
      space = true;
      continue;
    }
    if (space && any) sink.put(' ');
    space = false;
    any = true;
    sink.put(c);
  }
  if (crlf == WithCrlf::Yes) sink.put(std::string_view("\r\n", 2));
}

// Where a run that canonicalizes to itself ends: the first HTAB, CR or SP followed by WSP or
// CR (or ending the input) in [p, end), or end. Sixteen bytes a step where SSE2 is there
// (every x86-64): at 100 KiB this scan was most of the canonicalizer's time.
inline const char* end_of_run(const char* p, const char* end) noexcept {
#if defined(__SSE2__)
  const __m128i sp = _mm_set1_epi8(' ');
  const __m128i tab = _mm_set1_epi8('\t');
  const __m128i cr = _mm_set1_epi8('\r');
  while (end - p >= 17) {  // the byte after each of the sixteen is read too
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i next = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 1));
    const __m128i next_breaks = _mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(next, sp), _mm_cmpeq_epi8(next, tab)),
        _mm_cmpeq_epi8(next, cr));
    const __m128i stop = _mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(v, tab), _mm_cmpeq_epi8(v, cr)),
        _mm_and_si128(_mm_cmpeq_epi8(v, sp), next_breaks));
    const auto mask = static_cast<unsigned>(_mm_movemask_epi8(stop));
    if (mask != 0) return p + __builtin_ctz(mask);
    p += 16;
  }
#endif
  for (; p < end; ++p) {
    const char d = *p;
    if (d == '\t' || d == '\r') return p;
    if (d == ' ' && (p + 1 == end || p[1] == ' ' || p[1] == '\t' || p[1] == '\r')) return p;
  }
  return end;
}

// The body, relaxed: WSP at line ends removed, other WSP runs to one SP, empty lines at the
// end removed, a final CRLF added to a last line without one. An empty body (or one of
// only empty lines) canonicalizes to nothing at all (§3.4.4; not CRLF as in "simple").
template <class Sink>
void canon_body_relaxed(std::string_view body, Sink& sink) {
  static constexpr std::string_view kCrlfs = "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n";
  const char* p = body.data();
  const char* const end = p + body.size();
  std::size_t pending_crlf = 0;  // line ends held back until content follows them
  bool space = false;            // a WSP run held back until content follows it
  bool any = false;
  while (p < end) {
    const char c = *p;
    if (c == '\r' && p + 1 < end && p[1] == '\n') {
      ++pending_crlf;
      space = false;  // WSP at the end of a line is dropped
      p += 2;
      continue;
    }
    if (is_wsp(c)) {
      space = true;
      ++p;
      continue;
    }
    // A run that canonicalizes to itself: content and lone SPs between content, up to the
    // next HTAB, CR or SP run (usually a whole line: one copy per line, not per word).
    const char* const q = end_of_run(p + 1, end);
    while (pending_crlf > 0) {
      const std::size_t k = pending_crlf < kCrlfs.size() / 2 ? pending_crlf : kCrlfs.size() / 2;
      sink.put(kCrlfs.substr(0, 2 * k));
      pending_crlf -= k;
    }
    if (space) sink.put(' ');
    space = false;
    sink.put(std::string_view(p, static_cast<std::size_t>(q - p)));
    any = true;
    p = q;
  }
  // Either the held-back end of the last content line or the CRLF a last line lacks.
  if (any) sink.put(std::string_view("\r\n", 2));
}

// A Sink that appends to a string (tests and the signature field itself).
struct StringSink {
  std::string& out;
  void put(char c) { out.push_back(c); }
  void put(std::string_view s) { out.append(s); }
};

}  // namespace salvo::dkim::detail
