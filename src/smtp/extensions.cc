// SPDX-License-Identifier: Apache-2.0
// EHLO reply keywords (RFC 5321 §4.1.1.1) into ServerCapabilities.
#include <salvo/smtp/extensions.h>

#include "smtp/ascii.h"

namespace salvo::smtp {
namespace {

void add_auth_mechanisms(std::string_view rest, ServerCapabilities* caps) {
  while (!rest.empty()) {
    std::size_t sp = rest.find(' ');
    std::string_view mech = rest.substr(0, sp);
    if (iequals(mech, "PLAIN")) caps->auth.add(AuthMechanism::Plain);
    if (iequals(mech, "LOGIN")) caps->auth.add(AuthMechanism::Login);
    if (sp == std::string_view::npos) break;
    rest.remove_prefix(sp + 1);
  }
}

}  // namespace

ServerCapabilities parse_ehlo_reply(const Reply& reply) {
  ServerCapabilities caps;
  auto lines = reply.lines();
  for (std::size_t i = 1; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    std::size_t sp = line.find(' ');
    std::string_view kw = line.substr(0, sp);
    std::string_view rest = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
    if (iequals(kw, "PIPELINING")) {
      caps.extensions.add(Extension::Pipelining);
    } else if (iequals(kw, "SIZE")) {
      caps.extensions.add(Extension::Size);
      std::uint64_t v = 0;
      if (parse_u64(rest, &v)) caps.max_size = v;
    } else if (iequals(kw, "8BITMIME")) {
      caps.extensions.add(Extension::EightBitMime);
    } else if (iequals(kw, "SMTPUTF8")) {
      caps.extensions.add(Extension::SmtpUtf8);
    } else if (iequals(kw, "ENHANCEDSTATUSCODES")) {
      caps.extensions.add(Extension::EnhancedStatusCodes);
    } else if (iequals(kw, "DSN")) {
      caps.extensions.add(Extension::Dsn);
    } else if (iequals(kw, "CHUNKING")) {
      caps.extensions.add(Extension::Chunking);
    } else if (iequals(kw, "STARTTLS")) {
      caps.extensions.add(Extension::StartTls);
    } else if (iequals(kw, "AUTH")) {
      caps.extensions.add(Extension::Auth);
      add_auth_mechanisms(rest, &caps);
    } else if (istarts_with(kw, "AUTH=")) {  // pre-RFC 4954 form
      caps.extensions.add(Extension::Auth);
      add_auth_mechanisms(kw.substr(5), &caps);
      add_auth_mechanisms(rest, &caps);
    }
  }
  return caps;
}

}  // namespace salvo::smtp
