// SPDX-License-Identifier: Apache-2.0
// JobSpooler: puts one bulk job (.json pickup file / HTTP inject) into the shard's spool:
// template with a Received: line, recipient batches with back-pressure on the writer, the
// commit record, then the "received" accounting lines, read back from the spool (what was
// queued, not what was parsed), and the hand-off to delivery (spool::Dispatch::job_queued:
// delivery reads the batches itself, a window at a time). The caller parses; this only
// spools, so every way in queues a job the same way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <salvo/accounting/accounting.h>
#include <salvo/base/clock.h>
#include <salvo/base/result.h>
#include <salvo/inbound/pickup_format.h>
#include <salvo/shard/owned_by.h>
#include <salvo/spool/records.h>
#include <salvo/spool/spool_reader.h>
#include <salvo/spool/spool_writer.h>

namespace salvo::spool {
class SpoolIndex;
class Dispatch;
}  // namespace salvo::spool


namespace salvo::inbound {

// Owner: one shard (every call and every callback on its thread). One object per job.
// Lifecycle:
//
//   begin(header) -> add(recipient)* [wait while !wants_more()] -> finish(identity)
//        |                  |                                          |
//        +---- abandon() ---+-- (a failed batch: error(); abandon()) --+-> on_job_committed
//                                                                             | ok: replay
//                                                                             v
//                                                                  idle(): may be destroyed
//
// Callbacks (Owner) come only from the writer's commit or the reader's completions, never
// from inside a JobSpooler call, and each is the spooler's last action: the owner may
// destroy the spooler from a callback once idle(). Destroying it while !idle() is a bug (a
// write or read callback would reach freed memory); destroying an open job (begun, neither
// finished nor abandoned) abandons it.
class JobSpooler {
 public:
  // The shard's spool and sinks, shared by every job of one intake and outliving them.
  struct Services {
    const Clock& clock;                 // the shard's: the job's received time
    spool::SpoolWriter& writer;
    const spool::SpoolIndex& index;
    spool::SpoolReader& reader;         // the job's batches are read back after the commit
    accounting::Writer* accounting;     // null = no accounting log
    spool::Dispatch* dispatch;          // null = nobody delivers (tests)
  };
  // How the job came in. The views must outlive the spooler.
  struct Origin {
    spool::Source source = spool::Source::Pickup;  // stored in the template record
    std::string_view via;       // "pickup" / "http": Received: "(salvo VIA)" and accounting
    std::string_view hostname;  // Received: "by"
    std::uint32_t batch_recipients = 1000;  // recipients per JobRecipientsRecord
  };

  class Owner {
   public:
    // A recipient batch's group commit came back: wants_more() may be true again, error()
    // may now be set, and after the job ended (abandon, failure, replay) idle() may now be
    // true. Called in every state; the owner looks at what it is waiting for.
    virtual void on_job_progress() noexcept = 0;
    // Exactly once after finish() succeeded. ok: the job is durable and queued (answer the
    // client, remove the file); the replay to accounting and delivery follows, and
    // on_job_progress() reports its end. An error: the writer dropped the job, nothing of
    // it will be delivered (errc::job_failed, EIO, no space ...).
    virtual void on_job_committed(Status status) noexcept = 0;

   protected:
    ~Owner() = default;
  };

  // log_name prefixes this job's log lines ("pickup NAME", "http ADDR").
  JobSpooler(const Services& services, const Origin& origin, Owner& owner,
             std::string log_name);
  ~JobSpooler();
  JobSpooler(const JobSpooler&) = delete;
  JobSpooler& operator=(const JobSpooler&) = delete;

  // Allocates the job's id and appends the template (Received: line + header.content).
  // header.content is released once stored (memory stays flat for the rest of the job).
  // Diagnostics: the writer's append errors; the job was not started.
  [[nodiscard]] Status begin(JobHeader& header);
  // Takes the next recipient (file order). A full batch is appended to the writer; a
  // failure is kept in error() and later recipients are dropped: the owner checks error()
  // after each chunk it feeds and abandons.
  void add(JobRecipientData&& recipient);
  // Back-pressure: false while enough batches or buffered bytes wait for the group commit;
  // on_job_progress() tells when to ask again.
  bool wants_more() const noexcept;
  // Appends the last batch and the commit record, which carries the pickup file's identity
  // (null for a job that is not a file). Diagnostics: error(), or the writer refused a
  // record; the job is then already abandoned and on_job_committed never comes.
  [[nodiscard]] Status finish(const spool::PickupIdentity* identity);
  // Gives the job up before its commit (malformed input, stop, a failed batch). Idempotent.
  void abandon() noexcept;

  // No write callback and no read can reach this object any more.
  bool idle() const noexcept;
  std::error_code error() const noexcept { return batch_failed_; }
  spool::MessageId id() const noexcept { return job_id_; }
  // Recipients taken so far (all of them once finish() was called).
  std::uint32_t recipients() const noexcept {
    return next_index_ + static_cast<std::uint32_t>(batch_.size());
  }
  std::int64_t received_unix_ns() const noexcept { return received_ns_; }

 private:
  enum class State : std::uint8_t { New, Open, Committing, Replay, Ended };

  // Separate waiters: recipient batches (many) and the final commit (one).
  struct BatchWaiter final : spool::CommitWaiter {
    JobSpooler* self = nullptr;
    void on_committed(Status st) noexcept override { self->on_batch(st); }
  };
  struct FinalWaiter final : spool::CommitWaiter {
    JobSpooler* self = nullptr;
    void on_committed(Status st) noexcept override { self->on_final(st); }
  };
  struct ReplayWaiter final : spool::ReadWaiter {
    JobSpooler* self = nullptr;
    void on_read(Result<spool::RawRecord> rec) noexcept override {
      self->on_replay(std::move(rec));
    }
  };

  Status append_batch() noexcept;
  void on_batch(Status st) noexcept;
  void on_final(Status st) noexcept;
  bool start_replay() noexcept;
  void on_room() noexcept;
  void hand_to_delivery() noexcept;
  void next_replay() noexcept;
  void on_replay(Result<spool::RawRecord> rec) noexcept;

  Services svc_;
  Origin origin_;
  Owner& owner_;
  std::string log_name_;
  shard::OwnedBy owned_;
  State state_ = State::New;
  spool::MessageId job_id_{};
  std::int64_t received_ns_ = 0;
  std::uint64_t size_stored_ = 0;  // template content as stored (Received: included)
  std::string from_, job_;         // for the accounting lines
  std::vector<JobRecipientData> batch_;
  std::uint32_t next_index_ = 0;   // first index of the next batch
  std::uint32_t outstanding_ = 0;  // batch commits not yet come back
  std::error_code batch_failed_;
  bool reading_ = false;
  bool handed_ = false;  // job_queued() was called
  bool waiting_room_ = false;  // the accounting writer is full: the next read waits
  BatchWaiter batch_waiter_;
  FinalWaiter final_waiter_;
  ReplayWaiter replay_waiter_;
  struct RoomWaiter final : accounting::RoomWaiter {
    JobSpooler* self = nullptr;
    void on_room() noexcept override { self->on_room(); }
  };
  RoomWaiter room_waiter_;
  std::vector<spool::Location> replay_;
  std::size_t replay_next_ = 0;
  std::string replay_id_;
};

}  // namespace salvo::inbound
