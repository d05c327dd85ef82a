// SPDX-License-Identifier: Apache-2.0
// The verdict classifier and the built-in bounce-category table.
#include <salvo/queue/verdict.h>

#include <string>

#include <fmt/format.h>

namespace salvo::queue {
namespace {

// Tried in order after the operator's rules; matched against "CODE ENHANCED TEXT".
// PowerMTA-style categories (config::kBounceCategories).
struct BuiltIn {
  const char* pattern;
  const char* category;
};
constexpr BuiltIn kBuiltIn[] = {
    {R"(^5\d\d 5\.1\.[1036]\b)", "bad-mailbox"},
    {R"(^5\d\d 5\.1\.2\b)", "bad-domain"},
    {R"(^5\d\d 5\.2\.2\b)", "quota"},
    {R"(over ?quota|mailbox (is )?full|quota exceeded|insufficient storage)", "quota"},
    {R"(spam|block ?list|blacklist|\brbl\b|spamhaus|reputation|\blisted\b|\bblocked\b)",
     "spam-block"},
    {R"(user unknown|no such (user|mailbox|recipient)|unknown (user|recipient)|)"
     R"(mailbox (unavailable|not found)|does not exist|invalid (recipient|mailbox)|)"
     R"(recipient (address )?rejected|address rejected)",
     "bad-mailbox"},
    {R"(domain (not found|does not exist)|host (or domain name )?not found|no mx)", "bad-domain"},
    {R"(^5\d\d 5\.7\.\d)", "policy"},
    {R"(policy|not (authorized|permitted)|\bdmarc\b|\bspf\b|\bdkim\b|authentication)", "policy"},
    {R"(^5\d\d 5\.4\.\d)", "routing"},
    {R"(relay (access )?denied|relaying denied|mail loop|routing)", "routing"},
    {R"(^5\d\d 5\.5\.\d)", "protocol"},
    {R"(^50[0-4] )", "protocol"},
    {R"(^5\d\d 5\.6\.\d)", "protocol"},
};

constexpr auto kFlags = std::regex::ECMAScript | std::regex::icase | std::regex::optimize;

std::string subject_of(const smtp::Reply& r) {
  const std::string enhanced = r.status.to_string();
  std::string s = fmt::format("{} {}", r.code, enhanced.empty() ? std::string_view("-") : enhanced);
  s += ' ';
  s.append(std::string_view(r.text).substr(0, 1000));
  return s;
}

bool connection_stage(Stage s) noexcept {
  return s == Stage::Connect || s == Stage::Greeting || s == Stage::Ehlo || s == Stage::StartTls;
}

}  // namespace

std::string_view to_string(Verdict v) noexcept {
  switch (v) {
    case Verdict::Delivered: return "delivered";
    case Verdict::Deferred: return "deferred";
    case Verdict::Bounced: return "bounced";
  }
  return "deferred";
}

Result<Classifier> Classifier::create(const std::vector<BounceRuleSpec>& operator_rules) {
  Classifier c;
  try {
    for (const auto& r : operator_rules) c.rules_.push_back({std::regex(r.pattern, kFlags), r.category});
    for (const auto& b : kBuiltIn) c.rules_.push_back({std::regex(b.pattern, kFlags), b.category});
  } catch (const std::regex_error&) {
    return fail(std::errc::invalid_argument);
  }
  return c;
}

std::string Classifier::category_of(const smtp::Reply& reply) const {
  std::string subject = subject_of(reply);
  for (const auto& r : rules_) {
    if (std::regex_search(subject, r.re)) return r.category;
  }
  return "other";
}

Decision Classifier::classify(Stage stage, const smtp::Reply& reply) const {
  Decision d;
  const std::uint16_t klass = reply.code / 100;
  if (klass == 2 && stage != Stage::Connect) {
    d.verdict = Verdict::Delivered;
    return d;
  }
  if (klass == 4) {
    d.verdict = Verdict::Deferred;
    d.category = "transient";
    d.throttled = reply.code == 421 || (reply.status.klass == 4 && reply.status.subject == 7);
    d.next_mx = connection_stage(stage) || reply.code == 421;
    return d;
  }
  if (klass == 5) {
    // A 5xx before MAIL says nothing about the recipient: that host will not take mail
    // from us now. Defer to the next MX rather than bounce on one host's word.
    if (connection_stage(stage)) {
      d.verdict = Verdict::Deferred;
      d.category = "routing";
      d.next_mx = true;
      return d;
    }
    d.verdict = Verdict::Bounced;
    d.category = category_of(reply);
    return d;
  }
  // No reply, 1xx, 3xx where a final reply was due: the conversation broke.
  d.verdict = Verdict::Deferred;
  d.category = "protocol";
  d.next_mx = true;
  return d;
}

Decision Classifier::transport_failure() const {
  Decision d;
  d.verdict = Verdict::Deferred;
  d.category = "transient";
  d.next_mx = true;
  return d;
}

}  // namespace salvo::queue
