// SPDX-License-Identifier: Apache-2.0
// settle(): what one finished transaction (or local failure) means, as data. From the
// facts of the attempt and the DeliveryPolicy's decision per recipient it computes the
// recipient outcomes for the origin shard, the accounting lines, the DSN to queue, what
// stays queued here, and the counters — without touching any state. The Destination
// applies the result.
//
//   facts ─► per recipient: reply at its stage ─► DeliveryPolicy::decide ─► fate
//                                                    │
//        Settlement { outcomes, lines, dsn request, requeue, bounces, tally, throttle }
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <salvo/accounting/accounting.h>
#include <salvo/dsn/dsn.h>
#include <salvo/outbound/messages.h>
#include <salvo/outbound/outbound.h>
#include <salvo/queue/destination_queue.h>
#include <salvo/queue/policy.h>
#include <salvo/smtp/client_session.h>

#include "outbound/destination_stats.h"
#include "outbound/types.h"

namespace salvo::outbound {

struct TransactionFacts {
  std::uint64_t message = 0;
  std::string_view destination;  // names the domain of a recipient whose record is unreadable
  std::span<const queue::QueuedRecipient> rcpts;
  std::span<const RcptData> rcpt_data;  // parallel to rcpts; empty when unreadable
  const LocalFailure* local = nullptr;  // set: every recipient gets this reply
  const smtp::TransactionResult* result = nullptr;  // the session's answer otherwise
  // The connection it went over (empty for local failures).
  bool over_connection = false;
  std::string_view mx, ip, tls, tls_policy;
  bool plaintext_fallback = false;
  bool remote_dsn = false;  // the next hop offered DSN and took our NOTIFY
  // The message.
  std::string_view reverse_path, envid, job;
  spool::Source source = spool::Source::Smtp;
  spool::Ret ret = spool::Ret::Unspecified;
  std::uint8_t flags = 0;
  std::string_view original;  // as queued, before signing (a DSN returns it)
  std::int64_t received_unix_ns = 0;
  std::int64_t now_unix_ns = 0;
  std::uint64_t unique = 0;   // makes a DSN's Message-ID unique
  std::string_view reporting_mta, dsn_from;
};

// One accounting line's per-recipient part (the rest comes from the facts).
struct AttemptLine {
  accounting::EventType type = accounting::EventType::Deferred;
  std::string rcpt, domain, enhanced, response, category;
  int code = 0;
  std::uint32_t attempt = 0;
};

struct Settlement {
  Outcomes outcomes;                   // recipient states for the origin; dsn filled by caller
  std::optional<dsn::DsnInput> dsn;    // a DSN is due: build it and send it with the outcomes
  std::vector<AttemptLine> lines;
  std::vector<queue::QueuedRecipient> deferred;  // stay queued here, with their next attempt
  std::vector<std::uint64_t> finished;           // messages of recipients now final (one each)
  std::vector<BounceInfo> bounces;
  Tally tally;
  std::string last_reply;  // "250 2.0.0 Ok", of the last recipient
  bool throttle = false;   // back off the destination
  bool tls_needed = false; // the host wants STARTTLS after all
};

Settlement settle(const TransactionFacts& facts, const queue::DeliveryPolicy& policy);

// The accounting event of `line` (views into line and facts: append it before they go).
accounting::Event to_event(const AttemptLine& line, const TransactionFacts& facts,
                           std::string_view id);

}  // namespace salvo::outbound
