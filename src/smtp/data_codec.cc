// SPDX-License-Identifier: Apache-2.0
// DATA/BDAT content framing and the client-side dot-stuffer. The DATA decoder is a
// five-state machine over bytes, so CRLF "." CRLF is found across any split of the input
// and nothing else ever ends the data (no SMTP smuggling).
#include <salvo/smtp/data_codec.h>

#include <array>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <salvo/base/ascii.h>

namespace salvo::smtp {
namespace {

constexpr std::array<bool, 256> make_special() {
  std::array<bool, 256> t{};
  t['\r'] = true;
  t['\n'] = true;
  t[0] = true;
  return t;
}
constexpr std::array<bool, 256> kSpecial = make_special();

inline bool special(char c) noexcept { return kSpecial[static_cast<unsigned char>(c)]; }

// The first CR, LF or NUL in [p, end), or end: sixteen bytes a step where SSE2 is there
// (every x86-64), which is most of the cost of taking a large body.
const char* find_special(const char* p, const char* end) noexcept {
#if defined(__SSE2__)
  const __m128i cr = _mm_set1_epi8('\r');
  const __m128i lf = _mm_set1_epi8('\n');
  const __m128i nul = _mm_setzero_si128();
  while (end - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i hit =
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)),
                     _mm_cmpeq_epi8(v, nul));
    const auto mask = static_cast<unsigned>(_mm_movemask_epi8(hit));
    if (mask != 0) return p + __builtin_ctz(mask);
    p += 16;
  }
#endif
  while (p < end && !special(*p)) ++p;
  return p;
}

#if defined(__SSE2__)
// CR, LF and NUL of 64 bytes, one bit each.
struct LineMasks {
  std::uint64_t cr = 0, lf = 0, nul = 0;
};
inline LineMasks line_masks(const char* p) noexcept {
  LineMasks m;
  for (int k = 0; k < 4; ++k) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * k));
    auto bits = [&](__m128i x) {
      return std::uint64_t{static_cast<std::uint16_t>(_mm_movemask_epi8(x))} << (16 * k);
    };
    m.cr |= bits(_mm_cmpeq_epi8(v, _mm_set1_epi8('\r')));
    m.lf |= bits(_mm_cmpeq_epi8(v, _mm_set1_epi8('\n')));
    m.nul |= bits(_mm_cmpeq_epi8(v, _mm_setzero_si128()));
  }
  return m;
}
// Whether 64 bytes, the first after a CR when cr_before, hold a bare line ending: a LF not
// after a CR, a CR not before a LF. A CR in the last byte is the next step's to judge.
inline bool has_bare_line_ending(const LineMasks& m, bool cr_before) noexcept {
  const std::uint64_t after_cr = (m.cr << 1) | (cr_before ? 1u : 0u);
  const std::uint64_t before_lf = m.lf >> 1;
  return (m.lf & ~after_cr) != 0 || (m.cr & ~before_lf & ~(std::uint64_t{1} << 63)) != 0 ||
         (cr_before && (m.lf & 1u) == 0);
}
#endif

void append_limited(ByteBuffer* body, const char* p, std::size_t n, std::uint64_t before,
                    std::uint64_t max) {
  if (body == nullptr || n == 0) return;
  if (max != 0) {
    if (before >= max) return;
    if (n > max - before) n = static_cast<std::size_t>(max - before);
  }
  body->append(std::string_view(p, n));
}

}  // namespace

void ContentChecker::reset() noexcept {
  size_ = 0;
  line_ = 0;
  cr_ = false;
  error_ = ContentError::None;
}

void ContentChecker::update(std::string_view bytes) noexcept {
  const char* p = bytes.data();
  const std::size_t n = bytes.size();
  std::size_t i = 0;
#if defined(__SSE2__)
  // 64 bytes a step while they hold no NUL and no bare CR or LF: then only the line length
  // can be wrong, and lines between two LFs of one step are no longer than the limits this
  // applies to. The first step with anything else goes to the byte loop below, which notes
  // problems in the order they come.
  if (limits_.max_line >= 64) {
    std::size_t line = line_;  // locals: the loads below may alias the members
    bool cr = cr_;
    bool too_long = false;
    while (n - i >= 64) {
      const LineMasks m = line_masks(p + i);
      if (m.nul != 0 || has_bare_line_ending(m, cr)) break;
      if (m.lf != 0) {
        // The first LF ends the line in progress (CR and LF counted); after the last one
        // the next begins.
        too_long |= line + static_cast<std::size_t>(__builtin_ctzll(m.lf)) + 1 > limits_.max_line;
        line = static_cast<std::size_t>(__builtin_clzll(m.lf));
      } else {
        line += 64;
      }
      cr = (m.cr >> 63) != 0;
      too_long |= line - (cr ? 1 : 0) > limits_.max_line;  // a CR counts with its LF
      i += 64;
    }
    line_ = line;
    cr_ = cr;
    if (too_long) note(ContentError::LineTooLong);
  }
#endif
  while (i < n) {
    if (cr_) {
      cr_ = false;
      if (p[i] == '\n') {
        if (++line_ > limits_.max_line) note(ContentError::LineTooLong);
        line_ = 0;
        ++i;
        continue;
      }
      if (line_ > limits_.max_line) note(ContentError::LineTooLong);  // the CR made it long
      note(ContentError::BareCr);
    }
    const std::size_t j = static_cast<std::size_t>(find_special(p + i, p + n) - p);
    line_ += j - i;
    // Noted where it happens, before what follows the run: the same answer for any split.
    if (line_ > limits_.max_line) note(ContentError::LineTooLong);
    i = j;
    if (i == n) break;
    ++line_;
    if (p[i] == '\r') {
      cr_ = true;
    } else if (p[i] == '\n') {
      note(ContentError::BareLf);
    } else {
      note(ContentError::Nul);
    }
    ++i;
  }
  if (line_ > limits_.max_line) note(ContentError::LineTooLong);
  size_ += n;
  if (limits_.max_size != 0 && size_ > limits_.max_size) note(ContentError::TooBig);
}

void ContentChecker::finish() noexcept {
  if (cr_) note(ContentError::BareCr);
  cr_ = false;
}

void DataDecoder::reset() noexcept {
  state_ = State::LineStart;
  line_ = 0;
  size_ = 0;
  error_ = ContentError::None;
}

void DataDecoder::emit(const char* p, std::size_t n, ByteBuffer* body) {
  if (n == 0) return;
  append_limited(body, p, n, size_, limits_.max_size);
  size_ += n;
  if (limits_.max_size != 0 && size_ > limits_.max_size) note(ContentError::TooBig);
}

DataDecoder::Status DataDecoder::decode(std::string_view in, std::size_t* consumed,
                                        ByteBuffer* body) {
  const char* p = in.data();
  const std::size_t n = in.size();
  std::size_t i = 0;
  std::size_t run = 0;  // start of the pending output run
  while (i < n) {
    switch (state_) {
      case State::Mid: {
        const std::size_t j = static_cast<std::size_t>(find_special(p + i, p + n) - p);
        line_ += j - i;
        // Noted where it happens, before what follows the run: the same for any split.
        if (line_ > limits_.max_line) note(ContentError::LineTooLong);
        i = j;
        if (i == n) break;
        ++line_;
        if (p[i] == '\r') {
          state_ = State::Cr;
        } else if (p[i] == '\n') {
          note(ContentError::BareLf);  // kept as content; never a line end
        } else {
          note(ContentError::Nul);
        }
        ++i;
        break;
      }
      case State::Cr:
        if (p[i] == '\n') {
          if (++line_ > limits_.max_line) note(ContentError::LineTooLong);
          line_ = 0;
          state_ = State::LineStart;
          ++i;
        } else {
          note(ContentError::BareCr);
          state_ = State::Mid;  // reprocess p[i]
        }
        break;
      case State::LineStart:
        if (p[i] == '.') {
          emit(p + run, i - run, body);
          ++i;
          run = i;  // the leading dot is removed (RFC 5321 §4.5.2)
          line_ = 1;
          state_ = State::Dot;
        } else {
          state_ = State::Mid;
        }
        break;
      case State::Dot:
        if (p[i] == '\r') {
          emit(p + run, i - run, body);
          ++i;
          run = i;  // the CR is held back until we know this is not the end
          ++line_;
          state_ = State::DotCr;
        } else {
          state_ = State::Mid;
        }
        break;
      case State::DotCr:
        if (p[i] == '\n') {
          emit(p + run, i - run, body);
          *consumed = i + 1;
          if (line_ > limits_.max_line) note(ContentError::LineTooLong);
          if (line_ > limits_.max_line) note(ContentError::LineTooLong);
          return Status::Done;
        }
        emit("\r", 1, body);
        note(ContentError::BareCr);
        state_ = State::Mid;
        break;
    }
    if (line_ > limits_.max_line) note(ContentError::LineTooLong);
  }
  emit(p + run, n - run, body);
  *consumed = n;
  return Status::NeedMore;
}

std::size_t BdatDecoder::take(std::string_view in, std::uint64_t remaining, ByteBuffer* body) {
  std::size_t n = in.size();
  if (remaining < n) n = static_cast<std::size_t>(remaining);
  std::string_view chunk = in.substr(0, n);
  append_limited(body, chunk.data(), n, checker_.size(), checker_.limits().max_size);
  checker_.update(chunk);
  return n;
}

std::size_t dot_stuff(std::string_view body, ByteBuffer& out) {
  std::size_t total = 0;
  const char* p = body.data();
  std::size_t n = body.size();
  std::size_t pos = 0;
  while (pos < n) {
    if (p[pos] == '.') {
      out.append(".");
      ++total;
    }
    const void* nl = std::memchr(p + pos, '\n', n - pos);
    std::size_t end = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - p) + 1 : n;
    out.append(body.substr(pos, end - pos));
    total += end - pos;
    pos = end;
  }
  if (n != 0 && !body.ends_with("\r\n")) {
    out.append("\r\n");
    total += 2;
  }
  out.append(".\r\n");
  return total + 3;
}

std::size_t dot_stuffed_size(std::string_view body) noexcept {
  std::size_t total = body.size() + 3;
  if (!body.empty() && !body.ends_with("\r\n")) total += 2;
  const char* p = body.data();
  std::size_t n = body.size();
  std::size_t pos = 0;
  while (pos < n) {
    if (p[pos] == '.') ++total;
    const void* nl = std::memchr(p + pos, '\n', n - pos);
    if (!nl) break;
    pos = static_cast<std::size_t>(static_cast<const char*>(nl) - p) + 1;
  }
  return total;
}

std::size_t count_received(std::string_view message, std::size_t limit) noexcept {
  constexpr std::string_view kName = "received";
  std::size_t n = 0;
  std::size_t pos = 0;
  while (pos < message.size() && n < limit) {
    std::size_t eol = message.find('\n', pos);
    if (eol == std::string_view::npos) eol = message.size();
    std::string_view line = message.substr(pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // the end of the header section
    if (ascii::istarts_with(line, kName)) {
      std::size_t i = kName.size();
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;  // obs- form
      if (i < line.size() && line[i] == ':') ++n;
    }
    pos = eol + 1;
  }
  return n;
}

std::size_t find_bare_line_ending(std::string_view body) noexcept {
  const char* const begin = body.data();
  const char* const end = begin + body.size();
  const char* from = begin;
#if defined(__SSE2__)
  // 64 bytes a step while none is bare; the byte loop finds where in the step it is.
  bool cr_before = false;
  while (end - from >= 64) {
    const LineMasks m = line_masks(from);
    if (has_bare_line_ending(m, cr_before)) break;
    cr_before = (m.cr >> 63) != 0;
    from += 64;
  }
  if (cr_before) --from;  // the byte loop judges that CR with what follows it
#endif
  for (const char* p = find_special(from, end); p != end; p = find_special(p, end)) {
    if (*p == '\r') {
      if (p + 1 == end || p[1] != '\n') return static_cast<std::size_t>(p - begin);
      p += 2;
    } else if (*p == '\n') {
      return static_cast<std::size_t>(p - begin);
    } else {
      ++p;  // NUL: not a line ending
    }
  }
  return std::string_view::npos;
}

}  // namespace salvo::smtp
