// SPDX-License-Identifier: Apache-2.0
// The delivery protocol between shards (typed values over the mailbox matrix): a message's own shard (its origin,
// which spooled it) sends each recipient to the shard that owns the recipient's destination
// (Enqueue); that shard delivers and sends the outcomes back (Outcomes), which the origin
// makes durable in its spool and answers with a DSN when one is due.
//
//   origin shard                              destination shard
//   spool commit ─► Outbound::queued ─Enqueue─► Destination queue ─► connection ─► MX
//   spool states ◄─ Outbound::on_outcomes ◄─Outcomes── verdicts (+ DSN text built there)
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include <salvo/spool/records.h>

namespace salvo::outbound {

// One recipient due for delivery. Everything the destination shard needs to read the
// message from the origin's spool without asking the origin again.
struct Enqueue {
  std::uint32_t origin = 0;          // the shard whose spool holds the message
  std::uint64_t message = 0;         // spool MessageId (message or job)
  std::uint32_t recipient = 0;       // index within it
  spool::Location record;            // the Message record, or the job batch holding it
  std::uint32_t index_in_record = 0;
  spool::Location job_template;      // jobs only
  bool is_job = false;
  std::int64_t received_unix_ns = 0;
  std::uint32_t attempts = 0;        // failed attempts so far
  std::int64_t next_attempt_unix_ns = 0;  // 0 = due now
  std::string domain;                // the recipient's domain (lower case)
  // The destination that queues it: "" = the domain itself; "mx:<suffix>" = an MX rollup
  // ([[shaping]] mx_suffix), forwarded there by the domain's shard once its MX is known.
  std::string key;
  // salvoctl bounce --id of its job reached the origin before this recipient was
  // dispatched: the destination fails it at once, as it fails what it had queued.
  bool cancelled = false;
};

// What happened to one recipient in one attempt.
struct RecipientOutcome {
  std::uint32_t recipient = 0;
  spool::RecipientState state = spool::RecipientState::Deferred;
  std::uint32_t attempts = 0;
  std::int64_t next_attempt_unix_ns = 0;  // Deferred
};

// Outcomes of recipients of one message, plus the DSN to queue first when one is due.
struct Outcomes {
  std::uint64_t message = 0;
  std::vector<RecipientOutcome> recipients;
  std::string dsn;          // RFC 3464 message to the sender, or ""
  std::string dsn_to;       // its one recipient: the original reverse path
  bool dsn_8bit = false;    // queue it with BODY=8BITMIME
  bool dsn_smtputf8 = false;
};

using Message = std::variant<Enqueue, Outcomes>;

}  // namespace salvo::outbound
