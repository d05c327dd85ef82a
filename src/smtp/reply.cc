// SPDX-License-Identifier: Apache-2.0
// Reply formatting and the incremental reply parser (hostile input: CVE-2020-8794 class).
#include <salvo/smtp/reply.h>

#include <cstring>

#include "smtp/ascii.h"

namespace salvo::smtp {
namespace {

bool parse_status_number(std::string_view s, std::uint16_t* out) noexcept {
  if (s.empty() || s.size() > 3) return false;
  std::uint16_t v = 0;
  for (char ch : s) {
    if (!is_digit(static_cast<unsigned char>(ch))) return false;
    v = static_cast<std::uint16_t>(v * 10 + (ch - '0'));
  }
  *out = v;
  return true;
}

void append_u16(std::string& s, unsigned v) {
  char buf[8];
  int n = 0;
  do {
    buf[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v && n < 8);
  while (n) s.push_back(buf[--n]);
}

}  // namespace

std::string EnhancedStatus::to_string() const {
  std::string s;
  if (!present()) return s;
  append_u16(s, klass);
  s.push_back('.');
  append_u16(s, subject);
  s.push_back('.');
  append_u16(s, detail);
  return s;
}

EnhancedStatus parse_enhanced_status(std::string_view s) noexcept {
  if (s.size() < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.') return {};
  std::size_t dot = s.find('.', 2);
  if (dot == std::string_view::npos) return {};
  EnhancedStatus st;
  st.klass = static_cast<std::uint8_t>(s[0] - '0');
  if (!parse_status_number(s.substr(2, dot - 2), &st.subject)) return {};
  if (!parse_status_number(s.substr(dot + 1), &st.detail)) return {};
  return st;
}

std::vector<std::string_view> Reply::lines() const {
  std::vector<std::string_view> v;
  std::string_view t = text;
  while (true) {
    std::size_t nl = t.find('\n');
    v.push_back(t.substr(0, nl));
    if (nl == std::string_view::npos) break;
    t.remove_prefix(nl + 1);
  }
  return v;
}

void Reply::append_to(ByteBuffer& out) const {
  char code_buf[4] = {static_cast<char>('0' + code / 100 % 10),
                      static_cast<char>('0' + code / 10 % 10),
                      static_cast<char>('0' + code % 10), 0};
  std::string st = status.to_string();
  std::string_view t = text;
  while (true) {
    std::size_t nl = t.find('\n');
    std::string_view line = t.substr(0, nl);
    bool last = nl == std::string_view::npos;
    out.append(std::string_view(code_buf, 3));
    out.append(last ? " " : "-");
    if (!st.empty()) {
      out.append(st);
      if (!line.empty()) out.append(" ");
    }
    out.append(line);
    out.append("\r\n");
    if (last) break;
    t.remove_prefix(nl + 1);
  }
}

std::string Reply::to_wire() const {
  ByteBuffer b(256);
  append_to(b);
  return std::string(b.view());
}

Reply make_reply(std::uint16_t code, std::string_view status, std::string_view text) {
  return Reply(code, parse_enhanced_status(status), text);
}

void ReplyParser::reset() noexcept {
  code_ = 0;
  lines_ = 0;
  error_ = ErrorKind::None;
}

ReplyParser::Status ReplyParser::parse(ByteBuffer& in, Reply* out) {
  std::size_t used = 0;
  Status s = parse(in.view(), &used, out);
  in.consume(used);
  return s;
}

ReplyParser::Status ReplyParser::parse(std::string_view in, std::size_t* consumed,
                                       Reply* out) {
  *consumed = 0;
  if (error_ != ErrorKind::None) return Status::Error;
  std::size_t pos = 0;
  auto fail = [&](ErrorKind k) {
    error_ = k;
    *consumed = pos;
    return Status::Error;
  };
  while (true) {
    std::size_t avail = in.size() - pos;
    std::size_t scan = avail < limits_.max_line ? avail : limits_.max_line;
    const void* nlp = scan ? std::memchr(in.data() + pos, '\n', scan) : nullptr;
    if (nlp == nullptr) {
      if (avail >= limits_.max_line) return fail(ErrorKind::LineTooLong);
      *consumed = pos;
      return Status::NeedMore;
    }
    std::size_t nl = static_cast<std::size_t>(static_cast<const char*>(nlp) - in.data());
    if (nl == pos || in[nl - 1] != '\r') return fail(ErrorKind::BareLineEnding);
    std::string_view line = in.substr(pos, nl - 1 - pos);
    for (char c : line) {
      if (c == '\r' || c == '\n') return fail(ErrorKind::BareLineEnding);
      if (c == '\0') return fail(ErrorKind::NulByte);
    }
    if (line.size() < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
        line[2] < '0' || line[2] > '9')
      return fail(ErrorKind::BadCode);
    auto code = static_cast<std::uint16_t>((line[0] - '0') * 100 + (line[1] - '0') * 10 +
                                           (line[2] - '0'));
    char sep = line.size() > 3 ? line[3] : ' ';
    if (sep != ' ' && sep != '-') return fail(ErrorKind::BadCode);
    if (lines_ == 0) {
      code_ = code;
      out->text.clear();
      out->status = {};
    } else if (code != code_) {
      return fail(ErrorKind::CodeMismatch);
    }
    if (++lines_ > limits_.max_lines) return fail(ErrorKind::TooManyLines);
    std::string_view text = line.size() > 4 ? line.substr(4) : std::string_view();
    // Enhanced status (RFC 2034): only when its class matches the reply's.
    if (!text.empty() && text[0] == static_cast<char>('0' + code / 100)) {
      std::size_t sp = text.find(' ');
      EnhancedStatus st = parse_enhanced_status(text.substr(0, sp));
      if (st.present()) {
        if (lines_ == 1) out->status = st;
        text = sp == std::string_view::npos ? std::string_view() : text.substr(sp + 1);
      }
    }
    if (lines_ > 1) out->text.push_back('\n');
    out->text.append(text);
    pos = nl + 1;
    if (sep == ' ') {
      out->code = code_;
      code_ = 0;
      lines_ = 0;
      *consumed = pos;
      return Status::Complete;
    }
  }
}

}  // namespace salvo::smtp
