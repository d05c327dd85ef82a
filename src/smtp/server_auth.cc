// SPDX-License-Identifier: Apache-2.0
// ServerSession: STARTTLS (RFC 3207, CVE-2011-0411 rule) and AUTH PLAIN/LOGIN (RFC 4954,
// RFC 4616). Credentials go to ServerPolicy::on_auth; nothing here compares secrets.
#include <salvo/smtp/server_session.h>

#include <salvo/base/assert.h>

#include "smtp/ascii.h"
#include "smtp/base64.h"

namespace salvo::smtp {
namespace {

constexpr EnhancedStatus st(std::uint8_t k, std::uint16_t s, std::uint16_t d) {
  return EnhancedStatus{k, s, d};
}
constexpr EnhancedStatus kNoStatus{};

}  // namespace

bool ServerSession::auth_offered() const noexcept {
  return !cfg_.auth_mechanisms.empty() && (tls_ || !cfg_.auth_requires_tls);
}

ServerEvent ServerSession::on_starttls(const Command&, ByteBuffer& in) {
  if (tls_) return error(503, st(5, 5, 1), "Error: TLS already active");
  if (!cfg_.starttls_available) return error(502, st(5, 5, 1), "Error: command not implemented");
  if (!helo_done_ || !esmtp_) return error(503, st(5, 5, 1), "Error: send EHLO first");
  if (in_mail_) return error(503, st(5, 5, 1), "Error: MAIL transaction in progress");
  if (!in.empty()) {  // plaintext pipelined after STARTTLS: never executed
    stats_.injected_octets += in.size();
    in.clear();
    if (cfg_.starttls_injection == StarttlsInjection::Reject) {
      ++stats_.sync_violations;
      return close_with(554, st(5, 5, 0), "Error: SMTP protocol synchronization");
    }
  }
  reply(220, st(2, 0, 0), "Ready to start TLS");
  phase_ = Phase::TlsPending;
  return ServerEvent::StartTls;
}

void ServerSession::tls_established() {
  if (phase_ != Phase::TlsPending) {
    SALVO_BUG("ServerSession::tls_established without STARTTLS");
    return;
  }
  // RFC 3207 §4.2: forget everything learnt from the client.
  tls_ = true;
  helo_done_ = false;
  esmtp_ = false;
  helo_.clear();
  auth_user_.clear();
  auth_step_ = AuthStep::None;
  reset_transaction();
  phase_ = Phase::Command;
}

ServerEvent ServerSession::on_auth(const Command& c) {
  if (cfg_.auth_mechanisms.empty()) return error(502, st(5, 5, 1), "Error: authentication not enabled");
  if (!helo_done_ || !esmtp_) return error(503, st(5, 5, 1), "Error: send EHLO first");
  if (!auth_offered()) return error(530, st(5, 7, 0), "Must issue a STARTTLS command first");
  if (authenticated()) return error(503, st(5, 5, 1), "Error: already authenticated");
  if (in_mail_) return error(503, st(5, 5, 1), "Error: MAIL transaction in progress");
  std::string_view arg = c.argument;
  std::size_t sp = arg.find(' ');
  std::string_view mech = arg.substr(0, sp);
  std::string_view initial;
  bool has_initial = false;
  if (sp != std::string_view::npos) {
    initial = arg.substr(sp + 1);
    while (!initial.empty() && initial.front() == ' ') initial.remove_prefix(1);
    has_initial = true;
    if (initial.find(' ') != std::string_view::npos)
      return error(501, st(5, 5, 4), "Syntax: AUTH mechanism [initial-response]");
  }
  AuthMechanism m;
  if (iequals(mech, "PLAIN") && cfg_.auth_mechanisms.has(AuthMechanism::Plain)) {
    m = AuthMechanism::Plain;
  } else if (iequals(mech, "LOGIN") && cfg_.auth_mechanisms.has(AuthMechanism::Login)) {
    m = AuthMechanism::Login;
  } else {
    return error(504, st(5, 5, 4), "Error: unsupported authentication mechanism");
  }
  if (!has_initial) {
    if (m == AuthMechanism::Plain) {
      auth_step_ = AuthStep::PlainResponse;
      reply(334, kNoStatus, "");
    } else {
      auth_step_ = AuthStep::LoginUser;
      reply(334, kNoStatus, "VXNlcm5hbWU6");  // "Username:"
    }
    phase_ = Phase::AuthResponse;
    return ServerEvent::None;
  }
  auth_step_ = m == AuthMechanism::Plain ? AuthStep::PlainResponse : AuthStep::LoginUser;
  if (initial == "=") initial = {};  // RFC 4954 §4: "=" is an empty initial response
  else if (initial.empty()) return error(501, st(5, 5, 2), "Error: invalid base64 data");
  return on_auth_response(initial);
}

ServerEvent ServerSession::on_auth_response(std::string_view line) {
  const AuthStep step = auth_step_;
  phase_ = Phase::Command;
  auth_step_ = AuthStep::None;
  if (line == "*") return error(501, st(5, 7, 0), "Error: authentication aborted");
  if (!base64_decode(line, &scratch_)) return error(501, st(5, 5, 2), "Error: invalid base64 data");
  switch (step) {
    case AuthStep::PlainResponse: {
      // authzid NUL authcid NUL passwd (RFC 4616 §2)
      std::string_view msg = scratch_;
      std::size_t a = msg.find('\0');
      std::size_t b = a == std::string_view::npos ? a : msg.find('\0', a + 1);
      if (b == std::string_view::npos || msg.find('\0', b + 1) != std::string_view::npos ||
          b == a + 1)
        return error(501, st(5, 5, 2), "Error: invalid authentication data");
      std::string user(msg.substr(a + 1, b - a - 1));
      std::string authzid(msg.substr(0, a));
      std::string password(msg.substr(b + 1));
      return finish_auth(AuthMechanism::Plain, authzid, user, password);
    }
    case AuthStep::LoginUser:
      if (scratch_.empty()) return error(501, st(5, 5, 2), "Error: invalid authentication data");
      auth_login_user_ = scratch_;
      auth_step_ = AuthStep::LoginPassword;
      phase_ = Phase::AuthResponse;
      reply(334, kNoStatus, "UGFzc3dvcmQ6");  // "Password:"
      return ServerEvent::None;
    case AuthStep::LoginPassword: {
      std::string password = scratch_;
      std::string user = std::move(auth_login_user_);
      auth_login_user_.clear();
      return finish_auth(AuthMechanism::Login, {}, user, password);
    }
    case AuthStep::None:
      break;
  }
  return error(503, st(5, 5, 1), "Error: no authentication in progress");
}

ServerEvent ServerSession::finish_auth(AuthMechanism mech, std::string_view authzid,
                                       std::string_view authcid, std::string_view password) {
  if (auto r = policy_.on_auth(*this, mech, authzid, authcid, password)) {
    const ServerEvent ev = policy_reject(*r);
    if (ev == ServerEvent::Close) return ev;
    if (cfg_.max_auth_failures != 0 && ++auth_failures_ >= cfg_.max_auth_failures) {
      scratch_.assign(cfg_.hostname);
      scratch_.append(" Error: too many authentication failures");
      return close_with(421, st(4, 7, 0), scratch_);
    }
    return cfg_.pause_after_auth_failure ? ServerEvent::AuthFailed : ev;
  }
  auth_user_.assign(authcid);
  reply(235, st(2, 7, 0), "Authentication successful");
  return ServerEvent::None;
}

}  // namespace salvo::smtp
