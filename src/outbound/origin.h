// SPDX-License-Identifier: Apache-2.0
// Origin: the origin role of one shard — for the messages this shard spooled, sends each
// committed recipient to the shard that owns its destination (Enqueue), and makes the
// outcomes that come back durable: recipient states, with a DSN committed before the final
// states that caused it (a final state is never durable before its DSN; if the DSN cannot
// be queued the recipients stay deferred so it is made again after the next start).
//
// Bulk jobs are not dispatched whole: each live job is a cursor (the next recipient not
// dispatched, the one batch record being worked through) and the shard keeps at most
// job_window() job recipients dispatched and not final. A final outcome frees a place and
// the cursors read on, one batch record at a time through the shard's SpoolReader; jobs
// take the places in turn (round-robin by id). A deferred recipient keeps its place (it
// waits in its destination). Plain messages and DSNs never wait for the window.
//
// Owner: one shard; every call on its thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <salvo/base/clock.h>
#include <salvo/outbound/messages.h>
#include <salvo/outbound/outbound.h>
#include <salvo/spool/recovery.h>
#include <salvo/spool/spool_index.h>
#include <salvo/spool/spool_reader.h>

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
  // Reads a record of this shard's spool (job batches); completes from the engine.
  std::function<void(spool::Location, spool::ReadWaiter*)> read;
  // [delivery] job_window, as configured now (reloads apply to the next dispatch).
  std::function<std::uint32_t()> job_window;
};

class Origin {
 public:
  Origin(OriginDeps deps, OutboundStats& stats) : d_(std::move(deps)), stats_(stats) {}

  // Committed recipients of message `id`, indexes first.. (intake, after the commit).
  void queued(spool::MessageId id, std::int64_t received_unix_ns, std::uint32_t first,
              std::span<const std::string_view> addresses) noexcept;
  // Job `id` is committed: its recipients are dispatched through the window.
  void job_queued(spool::MessageId id, std::int64_t received_unix_ns) noexcept;
  // A recipient the spool still owes, read back at start-up (RecoveryPlanner): routed
  // unless the index now holds it final or the id for other mail; whether it was.
  bool recover(const RecoveredRecipient& r) noexcept;
  void recover_jobs(std::vector<RecoveredJob>&& jobs) noexcept;
  // salvoctl bounce --id of a job of this shard: its recipients not dispatched yet go out
  // marked cancelled (their destination fails them at once, with DSNs). Returns how many.
  std::size_t cancel_job(std::uint64_t id) noexcept;
  void recovery_unreadable(std::uint64_t records, const std::string& spool_dir) noexcept;
  void on_outcomes(Outcomes&& o) noexcept;

  // DSNs waiting for their commit; stop() makes late commits do nothing.
  std::size_t pending_dsns() const noexcept { return dsn_commits_; }
  // No job recipient is dispatched any more (a graceful stop: the spool keeps them).
  void begin_stop() noexcept { stopping_ = true; }
  void stop() noexcept { stopped_ = true; }
  // A job batch read is in flight (its completion reaches this object).
  bool reading() const noexcept { return reads_ != 0; }
  // Job recipients dispatched and not final; jobs with a cursor.
  std::size_t jobs_in_flight() const noexcept { return in_flight_; }
  std::size_t live_jobs() const noexcept { return jobs_.size(); }

 private:
  friend class DsnCommit;
  void dispatch(std::uint64_t id, std::uint32_t recipient,
                const spool::SpoolIndex::RecipientRef& ref, std::int64_t received_unix_ns,
                std::string domain, std::uint32_t attempts,
                std::int64_t next_attempt_unix_ns, bool cancelled = false) noexcept;
  void record_outcomes(Outcomes&& o) noexcept;
  void write_states(std::uint64_t message, std::span<const spool::StateUpdate> states) noexcept;
  void queue_dsn(Outcomes&& o, std::vector<spool::StateUpdate> states) noexcept;

  // One live job: where its dispatch stands.
  struct JobCursor final : spool::ReadWaiter {
    Origin* self = nullptr;
    std::uint64_t id = 0;
    std::int64_t received_unix_ns = 0;
    std::size_t next_batch = 0;         // the index entry's next batch record to read
    spool::Location batch;              // the batch record being dispatched
    std::uint32_t first = 0;            // its first recipient index
    std::vector<std::string> domains;   // of its recipients
    std::uint32_t next_in_batch = 0;    // the next of them to look at
    std::uint32_t next_recipient = 0;   // first + next_in_batch: nothing from here is out
    std::uint32_t in_flight = 0;        // dispatched, not final
    bool reading = false;
    bool done = false;       // every recipient looked at
    bool cancelled = false;  // salvoctl bounce --id
    // Recovered deferred recipients not reached yet: recipient -> attempts, next attempt.
    std::unordered_map<std::uint32_t, std::pair<std::uint32_t, std::int64_t>> deferred;
    void on_read(Result<spool::RawRecord> rec) noexcept override {
      self->on_batch(*this, std::move(rec));
    }
  };
  void add_job(std::uint64_t id, std::int64_t received_unix_ns,
               const std::vector<RecoveredJob::Deferred>& deferred) noexcept;
  void pump_jobs() noexcept;
  bool step(JobCursor& c) noexcept;
  void on_batch(JobCursor& c, Result<spool::RawRecord> rec) noexcept;
  // Frees the window places of final outcomes of a job; true when any was freed.
  bool settle_job(const Outcomes& o) noexcept;

  OriginDeps d_;
  OutboundStats& stats_;
  std::size_t dsn_commits_ = 0;
  bool stopped_ = false;
  bool stopping_ = false;
  std::map<std::uint64_t, std::unique_ptr<JobCursor>> jobs_;  // by id: the round-robin order
  std::uint64_t turn_ = 0;       // the job served last
  std::size_t in_flight_ = 0;    // job recipients dispatched and not final
  std::size_t reads_ = 0;
  bool pumping_ = false;
};

}  // namespace salvo::outbound
