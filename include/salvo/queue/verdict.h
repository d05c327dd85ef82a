// SPDX-License-Identifier: Apache-2.0
// A reply, or a transport error, becomes a verdict (delivered, deferred, bounced) and, for
// bounces, a category from a pattern table that operators extend in the config
// ([[delivery.bounce_rules]], tried before the built-in table). Pure. policy.h builds the
// rest of reply policy (rewrites, expiry, retry times, delay notices) on top of it.
#pragma once

#include <cstdint>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include <salvo/base/result.h>
#include <salvo/smtp/reply.h>

namespace salvo::queue {

enum class Verdict : std::uint8_t { Delivered, Deferred, Bounced };
std::string_view to_string(Verdict v) noexcept;

// Where in the conversation the reply came (a 5xx greeting is not a bad mailbox).
enum class Stage : std::uint8_t { Connect, Greeting, Ehlo, StartTls, Mail, Rcpt, Data, DataEnd };

struct Decision {
  Verdict verdict = Verdict::Deferred;
  std::string category;  // bounces: one of config::kBounceCategories; deferrals: "transient"
  bool throttled = false;  // 421 or 4.7.x: put the destination into back-off
  bool next_mx = false;    // try the next MX host for this attempt (connection-level failure)
};

struct BounceRuleSpec {
  std::string pattern;   // ECMAScript, case-insensitive, against "CODE ENHANCED TEXT"
  std::string category;
};

// Owner: any shard (immutable once built; share by const reference).
class Classifier {
 public:
  // Operator rules first, then the built-in table. Error: a pattern does not compile.
  [[nodiscard]] static Result<Classifier> create(const std::vector<BounceRuleSpec>& operator_rules);

  Decision classify(Stage stage, const smtp::Reply& reply) const;
  // No reply at all: connection refused/reset/timeout, TLS failure. Always a deferral to
  // the next MX.
  Decision transport_failure() const;
  // The category a permanent failure gets (first matching rule; "other" when none).
  std::string category_of(const smtp::Reply& reply) const;

 private:
  struct Rule {
    std::regex re;
    std::string category;
  };
  std::vector<Rule> rules_;
};

}  // namespace salvo::queue
