// SPDX-License-Identifier: Apache-2.0
// Command-line parser (RFC 5321 §4.1 grammar, ESMTP parameters of RFC 1870, 6152, 6531,
// 3461, 4954). Every failure maps to one fixed reply (docs/reliability.md table A).
#include <salvo/smtp/command.h>

#include <cstring>

#include "smtp/ascii.h"

namespace salvo::smtp {
namespace {

constexpr std::uint32_t pack4(const char* p) noexcept {
  return static_cast<std::uint32_t>(static_cast<unsigned char>(to_lower(p[0]))) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(to_lower(p[1]))) << 8 |
         static_cast<std::uint32_t>(static_cast<unsigned char>(to_lower(p[2]))) << 16 |
         static_cast<std::uint32_t>(static_cast<unsigned char>(to_lower(p[3]))) << 24;
}

Verb lookup_verb(std::string_view w) noexcept {
  if (w.size() == 4) {
    switch (pack4(w.data())) {
      case pack4("helo"): return Verb::Helo;
      case pack4("ehlo"): return Verb::Ehlo;
      case pack4("mail"): return Verb::Mail;
      case pack4("rcpt"): return Verb::Rcpt;
      case pack4("data"): return Verb::Data;
      case pack4("bdat"): return Verb::Bdat;
      case pack4("rset"): return Verb::Rset;
      case pack4("noop"): return Verb::Noop;
      case pack4("quit"): return Verb::Quit;
      case pack4("vrfy"): return Verb::Vrfy;
      case pack4("expn"): return Verb::Expn;
      case pack4("help"): return Verb::Help;
      case pack4("auth"): return Verb::Auth;
      case pack4("etrn"): return Verb::Etrn;
      case pack4("turn"): return Verb::Turn;
      default: return Verb::Unknown;
    }
  }
  if (w.size() == 8 && iequals(w, "starttls")) return Verb::StartTls;
  return Verb::Unknown;
}

struct Err {
  std::uint16_t code;
  std::uint8_t k, s, d;
  const char* text;
  bool fatal = false;
};

bool set_error(CommandError* err, const Err& e) {
  err->code = e.code;
  err->status = {e.k, e.s, e.d};
  err->text = e.text;
  err->fatal = e.fatal;
  return false;
}

constexpr Err kNul{501, 5, 5, 2, "Error: NUL character in command"};
constexpr Err kBareEol{500, 5, 5, 2, "Error: bare <CR> or <LF> received"};
constexpr Err kBadUtf8{500, 5, 5, 2, "Error: invalid UTF-8 in command"};
constexpr Err kUnknown{500, 5, 5, 1, "Error: command not recognized"};
constexpr Err kHeloSyntax{501, 5, 5, 4, "Syntax: EHLO hostname"};
constexpr Err kNoArgs{501, 5, 5, 4, "Syntax error: no parameters allowed"};
constexpr Err kNeedArg{501, 5, 5, 4, "Syntax error: argument required"};
constexpr Err kMailSyntax{501, 5, 5, 4, "Syntax: MAIL FROM:<address>"};
constexpr Err kRcptSyntax{501, 5, 5, 4, "Syntax: RCPT TO:<address>"};
constexpr Err kBadSender{501, 5, 1, 7, "Bad sender address syntax"};
constexpr Err kBadRecipient{501, 5, 1, 3, "Bad recipient address syntax"};
constexpr Err kNonAscii{553, 5, 6, 7, "Must declare SMTPUTF8 to send unicode address"};
constexpr Err kUnknownParam{555, 5, 5, 4, "Unsupported option"};
constexpr Err kDupParam{501, 5, 5, 4, "Duplicate parameter"};
constexpr Err kBadParam{501, 5, 5, 4, "Bad parameter syntax"};
constexpr Err kBadSize{501, 5, 5, 4, "Bad SIZE syntax"};
constexpr Err kTooBig{552, 5, 3, 4, "Message size exceeds fixed limit"};
constexpr Err kBadBody{501, 5, 5, 4, "Bad BODY value"};
constexpr Err kBadRet{501, 5, 5, 4, "Bad RET value"};
constexpr Err kBadEnvid{501, 5, 5, 4, "Bad ENVID value"};
constexpr Err kBadAuthParam{501, 5, 5, 4, "Bad AUTH parameter"};
constexpr Err kBadNotify{501, 5, 5, 4, "Bad NOTIFY value"};
constexpr Err kBadOrcpt{501, 5, 5, 4, "Bad ORCPT value"};
constexpr Err kBdatSyntax{501, 5, 5, 4, "Syntax: BDAT count [LAST]", true};
constexpr Err kBdatTooBig{552, 5, 3, 4, "Message size exceeds fixed limit", true};

bool valid_param_value(std::string_view v) noexcept {
  if (v.empty()) return false;
  bool high = false;
  for (char ch : v) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '=' || c < 33 || c == 127) return false;
    high |= c >= 0x80;
  }
  return !high || valid_utf8(v);
}

bool valid_param_key(std::string_view k) noexcept {
  if (k.empty() || !is_alnum(static_cast<unsigned char>(k[0]))) return false;
  for (char ch : k) {
    auto c = static_cast<unsigned char>(ch);
    if (!is_alnum(c) && c != '-') return false;
  }
  return true;
}

enum ParamBit : unsigned {
  kSize = 1, kBody = 2, kUtf8 = 4, kRet = 8, kEnvid = 16, kAuth = 32, kNotify = 64, kOrcpt = 128
};

bool parse_notify(std::string_view v, NotifyFlags* out) noexcept {
  NotifyFlags f;
  while (true) {
    std::size_t comma = v.find(',');
    std::string_view t = v.substr(0, comma);
    Notify n;
    if (iequals(t, "NEVER")) {
      n = Notify::Never;
    } else if (iequals(t, "SUCCESS")) {
      n = Notify::Success;
    } else if (iequals(t, "FAILURE")) {
      n = Notify::Failure;
    } else if (iequals(t, "DELAY")) {
      n = Notify::Delay;
    } else {
      return false;
    }
    if (f.has(n)) return false;
    f.add(n);
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  if (f.has(Notify::Never) && f.bits() != static_cast<std::uint8_t>(Notify::Never)) return false;
  *out = f;
  return true;
}

bool valid_orcpt(std::string_view v) noexcept {
  if (v.size() > kMaxOrcpt) return false;
  std::size_t semi = v.find(';');
  if (semi == 0 || semi == std::string_view::npos || semi + 1 == v.size()) return false;
  std::string_view type = v.substr(0, semi);
  if (!valid_param_key(type)) return false;
  std::string_view addr = v.substr(semi + 1);
  if (iequals(type, "utf-8")) return valid_utf8(addr);  // utf-8-addr-xtext (RFC 6533)
  return xtext_valid(addr);
}

bool parse_params(std::string_view rest, Verb verb, const CommandOptions& opts, Command* out,
                  CommandError* err) {
  unsigned seen = 0;
  const ExtensionSet ext = opts.extensions;
  while (true) {
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    if (rest.empty()) return true;
    std::size_t sp = rest.find(' ');
    std::string_view token = rest.substr(0, sp);
    rest.remove_prefix(sp == std::string_view::npos ? rest.size() : sp);
    std::size_t eq = token.find('=');
    std::string_view key = token.substr(0, eq);
    bool has_value = eq != std::string_view::npos;
    std::string_view value = has_value ? token.substr(eq + 1) : std::string_view();
    if (!valid_param_key(key) || (has_value && !valid_param_value(value)))
      return set_error(err, kBadParam);
    unsigned bit = 0;
    if (verb == Verb::Mail) {
      if (iequals(key, "SIZE") && ext.has(Extension::Size)) {
        bit = kSize;
      } else if (iequals(key, "BODY") && ext.has(Extension::EightBitMime)) {
        bit = kBody;
      } else if (iequals(key, "SMTPUTF8") && ext.has(Extension::SmtpUtf8)) {
        bit = kUtf8;
      } else if (iequals(key, "RET") && ext.has(Extension::Dsn)) {
        bit = kRet;
      } else if (iequals(key, "ENVID") && ext.has(Extension::Dsn)) {
        bit = kEnvid;
      } else if (iequals(key, "AUTH") && ext.has(Extension::Auth)) {
        bit = kAuth;
      }
    } else if (ext.has(Extension::Dsn)) {
      if (iequals(key, "NOTIFY")) {
        bit = kNotify;
      } else if (iequals(key, "ORCPT")) {
        bit = kOrcpt;
      }
    }
    if (bit == 0) return set_error(err, kUnknownParam);
    if (seen & bit) return set_error(err, kDupParam);
    seen |= bit;
    switch (bit) {
      case kSize: {
        if (!has_value) return set_error(err, kBadSize);
        bool digits = true;
        for (char c : value) digits &= is_digit(static_cast<unsigned char>(c));
        if (!digits) return set_error(err, kBadSize);
        std::uint64_t n = 0;
        if (!parse_u64(value, &n)) return set_error(err, kTooBig);  // overflow: too big
        if (opts.max_message_size != 0 && n > opts.max_message_size)
          return set_error(err, kTooBig);
        out->mail.has_size = true;
        out->mail.size = n;
        break;
      }
      case kBody:
        if (iequals(value, "7BIT")) {
          out->mail.body = BodyType::SevenBit;
        } else if (iequals(value, "8BITMIME")) {
          out->mail.body = BodyType::EightBitMime;
        } else {
          return set_error(err, kBadBody);
        }
        break;
      case kUtf8:
        if (has_value) return set_error(err, kBadParam);
        out->mail.smtputf8 = true;
        break;
      case kRet:
        if (iequals(value, "FULL")) {
          out->mail.ret = DsnRet::Full;
        } else if (iequals(value, "HDRS")) {
          out->mail.ret = DsnRet::Hdrs;
        } else {
          return set_error(err, kBadRet);
        }
        break;
      case kEnvid:
        if (value.empty() || value.size() > kMaxEnvid || !xtext_valid(value))
          return set_error(err, kBadEnvid);
        out->mail.envid.assign(value);
        break;
      case kAuth:
        if (value != "<>" && (value.empty() || value.size() > kMaxOrcpt || !xtext_valid(value)))
          return set_error(err, kBadAuthParam);
        out->mail.auth.assign(value);
        break;
      case kNotify:
        if (!parse_notify(value, &out->rcpt.notify)) return set_error(err, kBadNotify);
        break;
      case kOrcpt:
        if (!valid_orcpt(value)) return set_error(err, kBadOrcpt);
        out->rcpt.orcpt.assign(value);
        break;
      default:
        break;
    }
  }
}

bool parse_mail_rcpt(std::string_view rest, const CommandOptions& opts, Command* out,
                     CommandError* err) {
  const bool mail = out->verb == Verb::Mail;
  std::string_view prefix = mail ? "FROM:" : "TO:";
  if (!istarts_with(rest, prefix)) return set_error(err, mail ? kMailSyntax : kRcptSyntax);
  rest.remove_prefix(prefix.size());
  if (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);  // tolerated (reliability A7)
  std::size_t used = 0;
  PathError pe = parse_path(rest, mail ? PathKind::Reverse : PathKind::Forward,
                            AllowUtf8::kYes, &out->path, &used);
  const Err& bad = mail ? kBadSender : kBadRecipient;
  if (pe != PathError::None) return set_error(err, bad);
  rest.remove_prefix(used);
  if (!rest.empty() && rest.front() != ' ') return set_error(err, bad);
  if (!parse_params(rest, out->verb, opts, out, err)) return false;
  const bool utf8 = mail ? out->mail.smtputf8 : opts.transaction_smtputf8;
  if (out->path.non_ascii && !utf8) return set_error(err, kNonAscii);
  return true;
}

bool parse_bdat(std::string_view rest, Command* out, CommandError* err) {
  std::size_t sp = rest.find(' ');
  std::string_view count = rest.substr(0, sp);
  if (count.empty()) return set_error(err, kBdatSyntax);
  for (char c : count)
    if (!is_digit(static_cast<unsigned char>(c))) return set_error(err, kBdatSyntax);
  if (!parse_u64(count, &out->bdat_size)) return set_error(err, kBdatTooBig);
  out->bdat_last = false;
  if (sp != std::string_view::npos) {
    std::string_view tail = rest.substr(sp + 1);
    while (!tail.empty() && tail.back() == ' ') tail.remove_suffix(1);
    if (!iequals(tail, "LAST")) return set_error(err, kBdatSyntax);
    out->bdat_last = true;
  }
  return true;
}

bool valid_helo_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 255) return false;
  bool high = false;
  for (char ch : name) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 33 || c == 127) return false;
    high |= c >= 0x80;
  }
  return !high || valid_utf8(name);
}

}  // namespace

std::string_view verb_name(Verb v) noexcept {
  switch (v) {
    case Verb::Unknown: return "UNKNOWN";
    case Verb::Helo: return "HELO";
    case Verb::Ehlo: return "EHLO";
    case Verb::Mail: return "MAIL";
    case Verb::Rcpt: return "RCPT";
    case Verb::Data: return "DATA";
    case Verb::Bdat: return "BDAT";
    case Verb::Rset: return "RSET";
    case Verb::Noop: return "NOOP";
    case Verb::Quit: return "QUIT";
    case Verb::Vrfy: return "VRFY";
    case Verb::Expn: return "EXPN";
    case Verb::Help: return "HELP";
    case Verb::StartTls: return "STARTTLS";
    case Verb::Auth: return "AUTH";
    case Verb::Etrn: return "ETRN";
    case Verb::Turn: return "TURN";
  }
  return "UNKNOWN";
}

std::string NotifyFlags::to_string() const {
  std::string s;
  auto add = [&](Notify n, const char* name) {
    if (!has(n)) return;
    if (!s.empty()) s.push_back(',');
    s.append(name);
  };
  add(Notify::Never, "NEVER");
  add(Notify::Success, "SUCCESS");
  add(Notify::Failure, "FAILURE");
  add(Notify::Delay, "DELAY");
  return s;
}

void MailParams::clear() noexcept {
  has_size = false;
  size = 0;
  body = BodyType::Unspecified;
  smtputf8 = false;
  ret = DsnRet::Unspecified;
  envid.clear();
  auth.clear();
}

void RcptParams::clear() noexcept {
  notify = NotifyFlags();
  orcpt.clear();
}

bool parse_command(std::string_view line, const CommandOptions& opts, Command* out,
                   CommandError* err) {
  out->verb = Verb::Unknown;
  out->argument = {};
  if (std::memchr(line.data(), '\0', line.size()) != nullptr) return set_error(err, kNul);
  if (std::memchr(line.data(), '\r', line.size()) != nullptr ||
      std::memchr(line.data(), '\n', line.size()) != nullptr)
    return set_error(err, kBareEol);
  std::size_t sp = line.find(' ');
  std::string_view word = line.substr(0, sp);
  std::string_view rest = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
  Verb v = lookup_verb(word);
  if (v == Verb::Unknown) return set_error(err, valid_utf8(line) ? kUnknown : kBadUtf8);
  out->verb = v;
  std::string_view trimmed = rest;
  while (!trimmed.empty() && trimmed.back() == ' ') trimmed.remove_suffix(1);
  while (!trimmed.empty() && trimmed.front() == ' ') trimmed.remove_prefix(1);
  out->argument = trimmed;
  switch (v) {
    case Verb::Helo:
    case Verb::Ehlo: {
      std::string_view name = trimmed.substr(0, trimmed.find(' '));
      if (!valid_helo_name(name)) return set_error(err, kHeloSyntax);
      out->argument = name;
      return true;
    }
    case Verb::Mail:
      out->mail.clear();
      return parse_mail_rcpt(rest, opts, out, err);
    case Verb::Rcpt:
      out->rcpt.clear();
      return parse_mail_rcpt(rest, opts, out, err);
    case Verb::Bdat:
      return parse_bdat(trimmed, out, err);
    case Verb::Data:
    case Verb::Rset:
    case Verb::Quit:
    case Verb::StartTls:
      if (!trimmed.empty()) return set_error(err, kNoArgs);
      return true;
    case Verb::Vrfy:
    case Verb::Expn:
    case Verb::Auth:
      if (trimmed.empty()) return set_error(err, kNeedArg);
      if (!valid_utf8(trimmed)) return set_error(err, kBadUtf8);
      return true;
    default:  // NOOP, HELP, ETRN, TURN: arguments ignored
      return true;
  }
}

}  // namespace salvo::smtp
