// SPDX-License-Identifier: Apache-2.0
// Pickup file formats: .eml envelope lines + message, and the two-pass streaming .json job
// reader. The reader only frames the top-level object and the recipients array (strings,
// nesting, commas); every value inside is parsed and type-checked by nlohmann::json.
#include <salvo/inbound/pickup_format.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <salvo/base/ascii.h>
#include <salvo/smtp/address.h>
#include <salvo/spool/records.h>

namespace salvo::inbound {
namespace {

constexpr std::size_t kMaxLine = 998;  // RFC 5322 §2.1.1, without CRLF

using ascii::iequals;

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

PickupError error_at(std::string reason, std::uint64_t line, std::uint64_t offset,
                     std::string field = {}) {
  return PickupError{std::move(reason), line, offset, std::move(field)};
}

std::string_view path_error_text(smtp::PathError e) {
  switch (e) {
    case smtp::PathError::None: return "ok";
    case smtp::PathError::Syntax: return "not a valid mailbox (local@domain)";
    case smtp::PathError::TooLong: return "address too long (RFC 5321 §4.5.3.1)";
    case smtp::PathError::NonAscii: return "non-ASCII address";
    case smtp::PathError::BadUtf8: return "invalid UTF-8 in address";
  }
  return "bad address";
}

// "addr", "<addr>" or "<>" / "" (null, when allowed). Returns the mailbox text.
std::optional<std::string> parse_addr(std::string_view v, bool allow_null, bool* non_ascii,
                                      std::string* why) {
  v = trim(v);
  if (v.size() >= 2 && v.front() == '<' && v.back() == '>') v = v.substr(1, v.size() - 2);
  if (v.empty()) {
    if (allow_null) return std::string();
    *why = "empty address";
    return std::nullopt;
  }
  smtp::Path p;
  smtp::PathError e = smtp::parse_mailbox(v, smtp::AllowUtf8::kYes, &p);
  if (e != smtp::PathError::None || p.domain.empty()) {
    *why = e == smtp::PathError::None ? "address has no domain" : std::string(path_error_text(e));
    return std::nullopt;
  }
  *non_ascii |= p.non_ascii;
  return p.mailbox();
}

// RFC 3461 NOTIFY: "NEVER" or a comma list of SUCCESS, FAILURE, DELAY (any case).
std::optional<std::uint8_t> parse_notify(std::string_view v) {
  std::uint8_t bits = 0;
  while (!v.empty()) {
    std::size_t comma = v.find(',');
    std::string_view item = trim(v.substr(0, comma));
    if (iequals(item, "never")) bits |= spool::kNotifyNever;
    else if (iequals(item, "success")) bits |= spool::kNotifySuccess;
    else if (iequals(item, "failure")) bits |= spool::kNotifyFailure;
    else if (iequals(item, "delay")) bits |= spool::kNotifyDelay;
    else return std::nullopt;
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  if (bits == 0) return std::nullopt;
  if ((bits & spool::kNotifyNever) && bits != spool::kNotifyNever) return std::nullopt;
  return bits;
}

// The first line of a message must be a header field: RFC 5322 §2.2 field-name ':'.
bool starts_with_header_field(std::string_view msg) {
  std::size_t i = 0;
  while (i < msg.size() && msg[i] >= 33 && msg[i] <= 126 && msg[i] != ':') ++i;
  return i > 0 && i < msg.size() && msg[i] == ':';
}

void append_xtext(std::string_view plain, std::string& out) {
  std::string x;
  smtp::xtext_encode(plain, &x);  // (replaces its output)
  out += x;
}

}  // namespace

std::string PickupError::describe() const {
  std::string s;
  if (line != 0) s += fmt::format("line {}, ", line);
  if (!field.empty()) s += fmt::format("field {}: ", field);
  s += reason;
  return s;
}

std::optional<PickupError> normalize_message(std::string_view text, std::uint64_t first_line,
                                             std::uint64_t base_offset, std::string& out,
                                             bool* eight_bit) {
  if (!starts_with_header_field(text)) {
    return error_at("the message does not start with a header field (Name: value)",
                    first_line, base_offset);
  }
  out.reserve(out.size() + text.size() + text.size() / 32 + 2);
  std::uint64_t line = first_line;
  std::size_t pos = 0;
  bool high = false;
  while (pos < text.size()) {
    const char* nl = static_cast<const char*>(std::memchr(text.data() + pos, '\n', text.size() - pos));
    std::size_t end = nl != nullptr ? static_cast<std::size_t>(nl - text.data()) : text.size();
    std::string_view seg = text.substr(pos, end - pos);
    if (!seg.empty() && seg.back() == '\r' && nl != nullptr) seg.remove_suffix(1);
    for (std::size_t i = 0; i < seg.size(); ++i) {
      auto c = static_cast<unsigned char>(seg[i]);
      if (c >= 0x80) {
        high = true;
      } else if (c == '\r') {
        return error_at("bare CR (a CR not followed by LF) in the message", line,
                        base_offset + pos + i);
      } else if (c == 0) {
        return error_at("NUL byte in the message", line, base_offset + pos + i);
      }
    }
    if (seg.size() > kMaxLine) {
      return error_at(fmt::format("line longer than {} octets (RFC 5322 §2.1.1)", kMaxLine),
                      line, base_offset + pos);
    }
    out.append(seg);
    out.append("\r\n");
    pos = end + 1;
    ++line;
  }
  *eight_bit |= high;
  return std::nullopt;
}

// ---- .eml ---------------------------------------------------------------------------

std::optional<PickupError> parse_eml(std::string_view file, const PickupLimits& limits,
                                     EmlEnvelope* env, std::string& body_out) {
  *env = EmlEnvelope{};
  body_out.clear();
  if (file.size() >= 3 && file.substr(0, 3) == "\xEF\xBB\xBF") {
    return error_at("byte order mark at the start of the file", 1, 0);
  }
  std::size_t pos = 0;
  std::uint64_t line = 1;
  bool have_sender = false;
  while (pos < file.size()) {
    std::size_t nl = file.find('\n', pos);
    std::size_t end = nl == std::string_view::npos ? file.size() : nl;
    std::string_view l = file.substr(pos, end - pos);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    std::size_t colon = l.find(':');
    std::string_view name = colon == std::string_view::npos ? l : l.substr(0, colon);
    bool sender = iequals(name, "x-sender"), receiver = iequals(name, "x-receiver");
    bool envid = iequals(name, "x-envid"), job = iequals(name, "x-job");
    if (colon == std::string_view::npos || !(sender || receiver || envid || job)) break;
    std::string field(name);
    std::string_view value = trim(l.substr(colon + 1));
    if (value.find_first_of(std::string_view("\r\0", 2)) != std::string_view::npos) {
      return error_at("CR or NUL in an envelope line", line, pos, field);
    }
    std::string why;
    if (sender) {
      if (have_sender) return error_at("more than one X-Sender line", line, pos, field);
      auto a = parse_addr(value, true, &env->smtputf8, &why);
      if (!a) return error_at(why, line, pos, field);
      env->sender = std::move(*a);
      have_sender = true;
    } else if (receiver) {
      if (env->receivers.size() >= limits.max_recipients_eml) {
        return error_at(fmt::format("more than {} X-Receiver lines", limits.max_recipients_eml),
                        line, pos, field);
      }
      auto a = parse_addr(value, false, &env->smtputf8, &why);
      if (!a) return error_at(why, line, pos, field);
      env->receivers.push_back(std::move(*a));
    } else if (envid) {
      if (!env->envid.empty()) return error_at("more than one X-Envid line", line, pos, field);
      if (value.empty() || value.size() > 100) {
        return error_at("ENVID must be 1 to 100 characters (RFC 3461 §4.4)", line, pos, field);
      }
      append_xtext(value, env->envid);
    } else {
      if (!env->job.empty()) return error_at("more than one X-Job line", line, pos, field);
      if (value.empty() || value.size() > 255) {
        return error_at("job name must be 1 to 255 characters", line, pos, field);
      }
      env->job = std::string(value);
    }
    if (nl == std::string_view::npos) {
      pos = file.size();
    } else {
      pos = nl + 1;
    }
    ++line;
  }
  if (!have_sender) return error_at("no X-Sender line before the message", 1, 0, "X-Sender");
  if (env->receivers.empty()) {
    return error_at("no X-Receiver line before the message", 1, 0, "X-Receiver");
  }
  std::string_view message = file.substr(pos);
  if (message.empty()) return error_at("no message after the envelope lines", line, pos);
  if (message.size() > limits.max_message_size) {
    return error_at(fmt::format("message larger than {} bytes", limits.max_message_size), line,
                    pos);
  }
  return normalize_message(message, line, pos, body_out, &env->eight_bit);
}

// ---- .json --------------------------------------------------------------------------

namespace {

// Frames one JSON value of any type inside a chunked stream: strings (with escapes),
// nesting, and scalars (which end at a delimiter). Does not validate: nlohmann does.
class ValueFrame {
 public:
  void reset() noexcept { *this = ValueFrame{}; }
  bool started() const noexcept { return started_; }
  // Consumes from s[i]; returns the index after the value's last byte, or npos when the
  // value continues in the next chunk. For scalars the delimiter is not consumed.
  std::size_t consume(std::string_view s, std::size_t i) noexcept {
    if (!started_) {
      started_ = true;
      char c = s[i];
      if (c == '{' || c == '[') {
        kind_ = Kind::Nested;
        depth_ = 1;
        ++i;
      } else if (c == '"') {
        kind_ = Kind::String;
        in_string_ = true;
        ++i;
      } else {
        kind_ = Kind::Scalar;
      }
    }
    for (; i < s.size(); ++i) {
      char c = s[i];
      if (in_string_) {
        if (escape_) {
          escape_ = false;
        } else if (c == '\\') {
          escape_ = true;
        } else if (c == '"') {
          in_string_ = false;
          if (kind_ == Kind::String) return i + 1;
        }
        continue;
      }
      if (kind_ == Kind::Scalar) {
        if (c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\r' ||
            c == '\n') {
          return i;
        }
        continue;
      }
      if (c == '"') {
        in_string_ = true;
      } else if (c == '{' || c == '[') {
        ++depth_;
      } else if (c == '}' || c == ']') {
        if (--depth_ == 0) return i + 1;
      }
    }
    return std::string_view::npos;
  }

 private:
  enum class Kind : std::uint8_t { Nested, String, Scalar };
  Kind kind_ = Kind::Scalar;
  std::uint32_t depth_ = 0;
  bool started_ = false;
  bool in_string_ = false;
  bool escape_ = false;
};

bool is_ws(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

}  // namespace

struct JobReader::Impl {
  enum class St : std::uint8_t {
    Start, KeyOrEnd, Key, Colon, Value, AfterValue, Done,
    // second pass
    ArrayStart, ElementOrEnd, Element, AfterElement, ArrayDone,
  };

  PickupLimits limits;
  JobHeader header;
  St st = St::Start;
  bool first_member = true;
  bool first_element = true;
  bool skipping = false;  // the value being framed is the recipients array (pass 1)
  bool value_started = false;
  ValueFrame frame;
  std::string capture;
  std::string key;
  std::uint64_t offset = 0;  // file offset of the next byte fed
  std::uint64_t line = 1;
  std::uint64_t value_line = 0, value_offset = 0;
  std::uint64_t array_offset = 0, array_line = 0;
  bool have_recipients = false, have_from = false, have_content = false;
  std::uint32_t seen_keys = 0;  // header keys met so far (duplicates are errors)
  std::uint64_t counted = 0;   // pass 1: elements skimmed
  std::uint64_t delivered = 0; // pass 2
  std::size_t capture_limit = 0;
  // pass-1 skim of the recipients array: depth and element starts at depth 1
  std::uint32_t skim_depth = 0;
  bool skim_in_string = false, skim_escape = false;

  explicit Impl(const PickupLimits& l) : limits(l) {}

  PickupError err(std::string reason, std::string field = {}) const {
    return PickupError{std::move(reason), line, offset, std::move(field)};
  }
  PickupError err_value(std::string reason, std::string field) const {
    return PickupError{std::move(reason), value_line, value_offset, std::move(field)};
  }

  void advance(std::string_view s, std::size_t from, std::size_t to) noexcept {
    for (std::size_t i = from; i < to; ++i) {
      if (s[i] == '\n') ++line;
    }
    offset += to - from;
  }

  // Line and offset of a position inside capture (from nlohmann's byte index, 1-based).
  PickupError parse_error_in_capture(const nlohmann::json::parse_error& e, std::string field) {
    std::size_t at = e.byte == 0 ? 0 : std::min<std::size_t>(e.byte - 1, capture.size());
    std::uint64_t l = value_line + static_cast<std::uint64_t>(
                                       std::count(capture.begin(), capture.begin() + static_cast<std::ptrdiff_t>(at), '\n'));
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 5: syntax error ..."
    if (auto p = what.find("syntax error"); p != std::string::npos) what = what.substr(p);
    return PickupError{"invalid JSON: " + what, l, value_offset + at, std::move(field)};
  }

  std::optional<PickupError> take_member_value() {
    nlohmann::json v;
    try {
      v = nlohmann::json::parse(capture);
    } catch (const nlohmann::json::parse_error& e) {
      return parse_error_in_capture(e, key);
    } catch (const nlohmann::json::exception& e) {  // e.g. number overflow (406)
      return err_value(std::string("invalid JSON value: ") + e.what(), key);
    }
    auto need_string = [&]() -> std::optional<PickupError> {
      if (!v.is_string()) return err_value("must be a string", key);
      return std::nullopt;
    };
    if (key == "from") {
      if (auto e = need_string()) return e;
      std::string why;
      auto a = parse_addr(v.get_ref<const std::string&>(), true, &header.smtputf8, &why);
      if (!a) return err_value(why, key);
      header.from = std::move(*a);
      have_from = true;
    } else if (key == "content") {
      if (auto e = need_string()) return e;
      const std::string& text = v.get_ref<const std::string&>();
      if (text.empty()) return err_value("content is empty", key);
      if (text.size() > limits.max_message_size) {
        return err_value(fmt::format("content larger than {} bytes", limits.max_message_size), key);
      }
      header.content.clear();
      if (auto e = normalize_message(text, 1, 0, header.content, &header.eight_bit)) {
        // Positions inside the decoded string: report the content's own line.
        e->reason += fmt::format(" (line {} of the content)", e->line);
        e->line = value_line;
        e->offset = value_offset;
        e->field = key;
        return e;
      }
      have_content = true;
    } else if (key == "job") {
      if (auto e = need_string()) return e;
      const std::string& s = v.get_ref<const std::string&>();
      if (s.empty() || s.size() > 255 || s.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
        return err_value("job name must be 1 to 255 characters, no CR, LF or NUL", key);
      }
      header.job = s;
    } else if (key == "envid") {
      if (auto e = need_string()) return e;
      const std::string& s = v.get_ref<const std::string&>();
      if (s.empty() || s.size() > 100) return err_value("envid must be 1 to 100 characters", key);
      header.envid.clear();
      append_xtext(s, header.envid);
    } else if (key == "ret") {
      if (auto e = need_string()) return e;
      const std::string& s = v.get_ref<const std::string&>();
      if (iequals(s, "full")) header.ret = static_cast<std::uint8_t>(spool::Ret::Full);
      else if (iequals(s, "hdrs")) header.ret = static_cast<std::uint8_t>(spool::Ret::Headers);
      else return err_value("ret must be \"FULL\" or \"HDRS\"", key);
    } else if (key == "notify") {
      if (auto e = need_string()) return e;
      auto n = parse_notify(v.get_ref<const std::string&>());
      if (!n) return err_value("notify must be NEVER or a list of SUCCESS, FAILURE, DELAY", key);
      header.notify = *n;
    } else {
      return err_value("unknown key (expected from, content, recipients, job, envid, ret, notify)",
                       key);
    }
    return std::nullopt;
  }

  std::optional<PickupError> take_recipient(const RecipientFn& fn) {
    std::string field = fmt::format("recipients[{}]", delivered);
    nlohmann::json v;
    try {
      v = nlohmann::json::parse(capture);
    } catch (const nlohmann::json::parse_error& e) {
      return parse_error_in_capture(e, field);
    } catch (const nlohmann::json::exception& e) {  // e.g. number overflow (406)
      return err_value(std::string("invalid JSON value: ") + e.what(), field);
    }
    if (!v.is_object()) return err_value("a recipient must be an object", field);
    JobRecipientData r;
    r.notify = header.notify;
    bool have_email = false;
    for (auto& [k, val] : v.items()) {
      if (k == "email") {
        if (!val.is_string()) return err_value("must be a string", field + ".email");
        std::string why;
        auto a = parse_addr(val.get_ref<const std::string&>(), false, &header.smtputf8, &why);
        if (!a) return err_value(why, field + ".email");
        r.email = std::move(*a);
        have_email = true;
      } else if (k == "vars") {
        if (!val.is_object()) return err_value("must be an object", field + ".vars");
        for (auto& [name, x] : val.items()) {
          std::string text;
          if (x.is_string()) {
            text = x.get<std::string>();
          } else if (x.is_number() || x.is_boolean()) {
            text = x.dump();
          } else if (x.is_null()) {
            text.clear();
          } else {
            return err_value("a variable must be a string, number, boolean or null",
                             field + ".vars." + name);
          }
          if (text.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
            return err_value("CR, LF or NUL in a variable (header injection)",
                             field + ".vars." + name);
          }
          r.vars.emplace_back(name, std::move(text));
        }
      } else if (k == "notify") {
        if (!val.is_string()) return err_value("must be a string", field + ".notify");
        auto n = parse_notify(val.get_ref<const std::string&>());
        if (!n) return err_value("notify must be NEVER or a list of SUCCESS, FAILURE, DELAY",
                                 field + ".notify");
        r.notify = *n;
      } else if (k == "orcpt") {
        if (!val.is_string()) return err_value("must be a string", field + ".orcpt");
        const std::string& s = val.get_ref<const std::string&>();
        std::size_t semi = s.find(';');
        if (semi == std::string::npos || semi == 0 || semi + 1 == s.size() || s.size() > 500) {
          return err_value("orcpt must be \"type;address\" (RFC 3461 §4.2)", field + ".orcpt");
        }
        r.orcpt = s.substr(0, semi + 1);
        append_xtext(std::string_view(s).substr(semi + 1), r.orcpt);
      } else {
        return err_value("unknown key (expected email, vars, notify, orcpt)", field + "." + k);
      }
    }
    if (!have_email) return err_value("missing \"email\"", field);
    ++delivered;
    fn(std::move(r));
    return std::nullopt;
  }

  // Skims the recipients array (pass 1): returns the index after ']' or npos.
  std::size_t skim(std::string_view s, std::size_t i) noexcept {
    for (; i < s.size(); ++i) {
      char c = s[i];
      if (skim_in_string) {
        if (skim_escape) skim_escape = false;
        else if (c == '\\') skim_escape = true;
        else if (c == '"') skim_in_string = false;
        continue;
      }
      if (c == '"') {
        skim_in_string = true;
      } else if (c == '{' || c == '[') {
        if (skim_depth == 1 && c == '{') ++counted;
        ++skim_depth;
      } else if (c == '}' || c == ']') {
        if (--skim_depth == 0) return i + 1;
      }
    }
    return std::string_view::npos;
  }

  std::optional<PickupError> feed(std::string_view s, const RecipientFn* fn) {
    std::size_t i = 0;
    while (i < s.size()) {
      char c = s[i];
      switch (st) {
        case St::Start:
          if (is_ws(c)) break;
          if (c != '{') return err("a job file must be one JSON object ({...})");
          st = St::KeyOrEnd;
          break;
        case St::KeyOrEnd:
          if (is_ws(c)) break;
          if (c == '}' && first_member) {
            st = St::Done;
            break;
          }
          if (c != '"') return err("expected a key in double quotes");
          st = St::Key;
          value_line = line;
          value_offset = offset;
          capture.clear();
          frame.reset();
          continue;  // Key frames the string from its opening quote
        case St::Key: {
          std::size_t end = frame.consume(s, i);
          std::size_t stop = end == std::string_view::npos ? s.size() : end;
          capture.append(s.substr(i, stop - i));
          if (capture.size() > 256) return err_value("key too long", "");
          advance(s, i, stop);
          i = stop;
          if (end != std::string_view::npos) {
            try {
              key = nlohmann::json::parse(capture).get<std::string>();
            } catch (const nlohmann::json::exception&) {
              return err_value("invalid key", "");
            }
            st = St::Colon;
          }
          continue;
        }
        case St::Colon:
          if (is_ws(c)) break;
          if (c != ':') return err("expected ':' after the key", key);
          st = St::Value;
          value_started = false;
          frame.reset();
          break;
        case St::Value: {
          if (!value_started) {
            if (is_ws(c)) break;
            value_started = true;
            value_line = line;
            value_offset = offset;
            capture.clear();
            skipping = key == "recipients";
            if (skipping) {
              if (have_recipients) return err("duplicate key", key);
              if (c != '[') return err("must be an array of recipient objects", key);
              have_recipients = true;
              array_offset = offset;
              array_line = line;
              skim_depth = 0;
              skim_in_string = skim_escape = false;
              capture_limit = 0;
            } else {
              // Every other key takes a string: refuse anything else before capturing it
              // (a 300 MB nested array must not reach the JSON parser).
              static constexpr std::string_view kKeys[] = {"from", "content", "job",
                                                           "envid", "ret", "notify"};
              std::size_t k = 0;
              while (k < std::size(kKeys) && kKeys[k] != key) ++k;
              if (k == std::size(kKeys)) {
                return err_value(
                    "unknown key (expected from, content, recipients, job, envid, ret, notify)",
                    key);
              }
              if (seen_keys & (1u << k)) return err_value("duplicate key", key);
              seen_keys |= 1u << k;
              if (c != '"') return err_value("must be a string", key);
              capture_limit = key == "content" ? limits.max_message_size * 6 + 64 : 64 * 1024;
            }
          }
          std::size_t end = skipping ? skim(s, i) : frame.consume(s, i);
          std::size_t stop = end == std::string_view::npos ? s.size() : end;
          if (!skipping) {
            capture.append(s.substr(i, stop - i));
            if (capture.size() > capture_limit) return err_value("value too large", key);
          }
          advance(s, i, stop);
          i = stop;
          if (end != std::string_view::npos) {
            if (skipping) {
              if (counted > limits.max_recipients_job) {
                return err_value(fmt::format("more than {} recipients", limits.max_recipients_job), key);
              }
            } else if (auto e = take_member_value()) {
              return e;
            }
            st = St::AfterValue;
            first_member = false;
          }
          continue;
        }
        case St::AfterValue:
          if (is_ws(c)) break;
          if (c == ',') {
            st = St::KeyOrEnd;
            first_member = false;
            // a '}' right after ',' is an error: KeyOrEnd accepts '}' only as the first member
            break;
          }
          if (c == '}') {
            st = St::Done;
            break;
          }
          return err("expected ',' or '}' after a value", key);
        case St::Done:
          if (is_ws(c)) break;
          return err("text after the end of the job object");

        case St::ArrayStart:
          if (c != '[') return err("expected '[' at the recorded recipients offset", "recipients");
          st = St::ElementOrEnd;
          first_element = true;
          break;
        case St::ElementOrEnd:
          if (is_ws(c)) break;
          if (c == ']' && first_element) {
            st = St::ArrayDone;
            break;
          }
          value_line = line;
          value_offset = offset;
          capture.clear();
          frame.reset();
          st = St::Element;
          continue;
        case St::Element: {
          std::size_t end = frame.consume(s, i);
          std::size_t stop = end == std::string_view::npos ? s.size() : end;
          capture.append(s.substr(i, stop - i));
          if (capture.size() > limits.max_recipient_bytes) {
            return err_value(fmt::format("recipient object larger than {} bytes",
                                         limits.max_recipient_bytes),
                             fmt::format("recipients[{}]", delivered));
          }
          advance(s, i, stop);
          i = stop;
          if (end != std::string_view::npos) {
            if (auto e = take_recipient(*fn)) return e;
            st = St::AfterElement;
            first_element = false;
          }
          continue;
        }
        case St::AfterElement:
          if (is_ws(c)) break;
          if (c == ',') {
            st = St::ElementOrEnd;
            break;
          }
          if (c == ']') {
            st = St::ArrayDone;
            break;
          }
          return err("expected ',' or ']' after a recipient", "recipients");
        case St::ArrayDone:
          return std::nullopt;  // the rest of the file was checked by the scan
      }
      if (c == '\n') ++line;
      ++offset;
      ++i;
    }
    return std::nullopt;
  }
};

JobReader::JobReader(const PickupLimits& limits) : impl_(new Impl(limits)) {}
JobReader::~JobReader() { delete impl_; }

std::optional<PickupError> JobReader::scan(std::string_view bytes) {
  return impl_->feed(bytes, nullptr);
}

std::optional<PickupError> JobReader::finish_scan() {
  Impl& m = *impl_;
  if (m.st != Impl::St::Done) {
    return m.err(m.st == Impl::St::Start ? "empty file" : "the file ends inside the job object");
  }
  if (!m.have_from) return PickupError{"missing \"from\"", 0, 0, "from"};
  if (!m.have_content) return PickupError{"missing \"content\"", 0, 0, "content"};
  if (!m.have_recipients || m.counted == 0) {
    return PickupError{"no recipients", m.array_line, m.array_offset, "recipients"};
  }
  // Pass 2 starts at the array.
  m.st = Impl::St::ArrayStart;
  m.offset = m.array_offset;
  m.line = m.array_line;
  return std::nullopt;
}

const JobHeader& JobReader::header() const noexcept { return impl_->header; }
JobHeader& JobReader::header() noexcept { return impl_->header; }
std::uint64_t JobReader::recipients_offset() const noexcept { return impl_->array_offset; }
std::uint64_t JobReader::recipient_count() const noexcept { return impl_->counted; }

std::optional<PickupError> JobReader::feed_recipients(std::string_view bytes,
                                                      const RecipientFn& fn) {
  return impl_->feed(bytes, &fn);
}

bool JobReader::recipients_done() const noexcept { return impl_->st == Impl::St::ArrayDone; }

}  // namespace salvo::inbound
