// SPDX-License-Identifier: Apache-2.0
// Dispatch: the hand-off from intake (SMTP listener, pickup) to delivery. Intake calls it on
// the message's own shard once recipients are durable in that shard's spool; delivery
// (outbound::Outbound) routes each recipient to its destination's shard. Declared here
// because both sides depend on spool and neither may depend on the other.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include <salvo/spool/records.h>

namespace salvo::spool {

class Dispatch {
 public:
  // Recipients first .. first + addresses.size() - 1 of message (or job) `id`, received at
  // received_unix_ns, are committed and due now. The views are read during the call only.
  virtual void queued(MessageId id, std::int64_t received_unix_ns, std::uint32_t first,
                      std::span<const std::string_view> addresses) noexcept = 0;
  // Bulk job `id`, received at received_unix_ns, is committed: delivery reads its recipient
  // batches from the spool itself, a bounded window at a time (it never takes the whole job
  // into memory).
  virtual void job_queued(MessageId id, std::int64_t received_unix_ns) noexcept = 0;

 protected:
  ~Dispatch() = default;
};

}  // namespace salvo::spool
