// SPDX-License-Identifier: Apache-2.0
// Origin: the origin role of one shard — for the messages this shard spooled, sends each
// committed recipient to the shard that owns its destination (Enqueue), and makes the
// outcomes that come back durable: recipient states, with a DSN committed before the final
// states that caused it (a final state is never durable before its DSN; if the DSN cannot
// be queued the recipients stay deferred so it is made again after the next start).
//
// Owner: one shard; every call on its thread.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include <salvo/base/clock.h>
#include <salvo/outbound/messages.h>
#include <salvo/outbound/outbound.h>
#include <salvo/spool/recovery.h>
#include <salvo/spool/spool_index.h>

namespace salvo::spool {
class SpoolWriter;
}
namespace salvo::accounting {
class Writer;
}

namespace salvo::outbound {

struct OriginDeps {
  std::uint32_t me = 0;
  std::string hostname;  // routes recipients without a domain
  const Clock* clock = nullptr;
  spool::SpoolWriter* writer = nullptr;
  const spool::SpoolIndex* index = nullptr;
  accounting::Writer* accounting = nullptr;  // may be null (tests)
  // To the destination's shard (or this one's DestinationSide).
  std::function<void(Enqueue&&)> route;
  // The first wait of the retry schedule: a recipient whose DSN could not be queued is
  // tried again after it.
  std::function<Duration()> first_retry;
};

class Origin {
 public:
  Origin(OriginDeps deps, OutboundStats& stats) : d_(std::move(deps)), stats_(stats) {}

  // Committed recipients of message `id`, indexes first.. (intake, after the commit).
  void queued(spool::MessageId id, std::int64_t received_unix_ns, std::uint32_t first,
              std::span<const std::string_view> addresses) noexcept;
  // Recipients the spool still owes (start-up, from plan_recovery()).
  void recover(std::span<const RecoveredRecipient> recipients) noexcept;
  void recovery_unreadable(std::uint64_t records, const std::string& spool_dir) noexcept;
  void on_outcomes(Outcomes&& o) noexcept;

  // DSNs waiting for their commit; stop() makes late commits do nothing.
  std::size_t pending_dsns() const noexcept { return dsn_commits_; }
  void stop() noexcept { stopped_ = true; }

 private:
  friend class DsnCommit;
  void dispatch(std::uint64_t id, std::uint32_t recipient,
                const spool::SpoolIndex::RecipientRef& ref, std::int64_t received_unix_ns,
                std::string domain, std::uint32_t attempts,
                std::int64_t next_attempt_unix_ns) noexcept;
  void write_states(std::uint64_t message, std::span<const spool::StateUpdate> states) noexcept;
  void queue_dsn(Outcomes&& o, std::vector<spool::StateUpdate> states) noexcept;

  OriginDeps d_;
  OutboundStats& stats_;
  std::size_t dsn_commits_ = 0;
  bool stopped_ = false;
};

}  // namespace salvo::outbound
