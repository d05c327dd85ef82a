// SPDX-License-Identifier: Apache-2.0
// SpoolWriter: appends records to one shard's spool with group commit (docs/spool-format.md §5):
// records accumulate in a batch; a batch is written (write, continued on short writes) and
// then fdatasync'ed; only when the fdatasync CQE returns 0 are its waiters told success.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include <salvo/base/clock.h>
#include <salvo/base/metrics.h>
#include <salvo/base/result.h>
#include <salvo/io/detachable_op.h>
#include <salvo/shard/owned_by.h>
#include <salvo/spool/records.h>
#include <salvo/spool/recovery.h>
#include <salvo/spool/spool_index.h>
#include <salvo/spool/stats.h>

namespace salvo::io {
class Engine;
}

namespace salvo::spool {

// Told once per append whether its records are durable. Success (an empty Status) only
// after the batch's fdatasync returned 0; any error means "not accepted" (451 4.3.0, or
// 452 4.3.1 for std::errc::no_space_on_device). Called on the writer's shard, from inside
// engine.run_once() (or from ~SpoolWriter with errc::writer_closed).
class CommitWaiter {
 public:
  virtual void on_committed(Status status) noexcept = 0;

 protected:
  ~CommitWaiter() = default;
};

enum class SyncMode : std::uint8_t { Fdatasync, None /* benchmarks only: not durable */ };

struct WriterOptions {
  std::string dir;  // this shard's spool directory (exists; recovery ran on it)
  std::uint32_t shard = 0;
  std::uint64_t segment_size = 64ull << 20;
  std::uint32_t batch_max_records = 256;
  std::uint64_t batch_max_bytes = 4ull << 20;
  Duration batch_max_delay = std::chrono::milliseconds(1);
  // Commits in flight at once (docs/spool-format.md §5): a second batch of the same segment
  // is written while the first one's fdatasync runs. 1: one commit at a time.
  std::uint32_t commits_in_flight = 2;
  SyncMode sync = SyncMode::Fdatasync;
  // free_space_ok() is false below this many free bytes on the spool filesystem.
  std::uint64_t reserve_bytes = 256ull << 20;
  // Make the next segment while the current one fills, with its fsyncs through the engine
  // (salvod does): a roll-over then only switches files. Off, the segment is made when it
  // is needed, on the loop, which waits for its two fsyncs (journal commits: fast on an
  // idle SSD, much slower on a busy or slow disk).
  bool make_segments_ahead = false;
  // Tests only (salvod reads SALVO_TEST_SYNC_DELAY_MS): every commit waits this long after
  // its write, before its fdatasync, as on a stalled disk. Zero in production.
  Duration test_sync_delay{0};
};

// Owner: the shard whose engine it runs on; single-threaded, no locks. Lifecycle: create
// after recovery (with its index and next ids), append from shard code, destroy on the
// same shard (pending waiters then get errc::writer_closed; IO in flight finishes alone).
// Limits: options.commits_in_flight commits at once, each started once the write of the one
// before it is done and in the same segment; waiters are told in commit order. Appends made
// meanwhile form the next batch(es). A record never spans segments; a record larger than
// segment_size gets a segment sized to fit.
// Back-pressure is the caller's: watch buffered_bytes().
class SpoolWriter final : public metrics::Source {
 public:
  SpoolWriter(io::Engine& engine, const Clock& clock, WriterOptions options, SpoolIndex& index,
              SegmentSeq next_segment, MessageId next_id);
  ~SpoolWriter();
  SpoolWriter(const SpoolWriter&) = delete;
  SpoolWriter& operator=(const SpoolWriter&) = delete;

  // A fresh id (shard-unique, never reused after recovery).
  MessageId allocate_id() noexcept;

  // Each append either fails at once (the waiter is never called) or queues the record
  // and calls waiter->on_committed() exactly once later; waiter may be null. Records
  // whose id is 0 get allocate_id(). Diagnostics: errc::record_too_large; a segment could
  // not be created (std::errc::no_space_on_device, EIO ...); errc::job_failed /
  // unknown_job for a job whose earlier record failed or that has no template.
  [[nodiscard]] Result<MessageId> append_message(MessageRecord& m, CommitWaiter* w);
  [[nodiscard]] Result<MessageId> append_job_template(JobTemplateRecord& t, CommitWaiter* w);
  // Batches of one job must be appended in index order (first_index = count so far).
  [[nodiscard]] Status append_job_recipients(const JobRecipientsRecord& b, CommitWaiter* w);
  // Written only once every earlier record of the job is durable (so a durable commit
  // implies a complete job); its waiter is the job's acceptance.
  [[nodiscard]] Status append_job_commit(const JobCommitRecord& c, CommitWaiter* w);
  // Gives up a job before its commit (the pickup file turned out malformed half-way):
  // nothing of it will ever commit; its records become garbage that recovery drops.
  [[nodiscard]] Status abandon_job(MessageId job);
  // Recipient-state changes (finals matter for durability). Append a DSN message before
  // the final states that caused it: recovery keeps a prefix, never a later record alone.
  [[nodiscard]] Status append_states(std::span<const StateUpdate> updates, CommitWaiter* w);

  // Starts a commit of what is buffered now (else it waits for a full batch or the delay).
  void flush() noexcept;
  // Nothing buffered and nothing in flight (a segment being made ahead included).
  bool idle() const noexcept;
  // Removes the segment made ahead, if any (before a checkpoint, at a stop: the next start
  // should not find an empty segment that no record needs). Its name goes at once; an
  // fsync of it still running finishes alone.
  void discard_spare() noexcept;
  std::uint64_t buffered_bytes() const noexcept { return buffered_bytes_; }
  // statvfs(dir) free bytes >= reserve_bytes (cached for 100 ms): when false, SMTP MAIL
  // gets 452 4.3.1 and the pickup watcher waits.
  bool free_space_ok() const noexcept;
  const Stats& stats() const noexcept { return stats_; }
  // Commits, bytes, failed batches, the fdatasync latency histogram.
  void report(metrics::Snapshot& s) const override;
  SegmentSeq current_segment() const noexcept { return current_; }
  // While held, no segment is reclaimed: a background recovery is still scanning segments
  // the index does not know yet (docs/spool-format.md §7). Releasing reclaims at once.
  void hold_reclaim(bool held) noexcept;
  bool reclaim_held() const noexcept { return reclaim_held_; }
  // Checkpoint (checkpoint.h). The writer keeps the last Deferred state (attempts, next
  // attempt) of every recipient whose last state it committed was Deferred (about 40 bytes
  // each; a final or other state frees it), seeded with the recovered ones: deferred()
  // gives those still Deferred in the index, sorted, as recover_segments() would.
  void seed_deferred(std::span<const PendingRecipient> recovered);
  std::vector<PendingRecipient> deferred() const;
  // The next id it would hand out (below its durable id mark).
  MessageId next_id() const noexcept { return MessageId(next_id_); }
  // A checkpoint of this spool was just written: should anything be appended after all,
  // the checkpoint is removed (durably) before the append goes on.
  void checkpoint_written() noexcept;

  // The oldest segment still open (current, or with batches queued or in flight): every
  // segment before it is closed for good, so it may be punched (punch.h).
  SegmentSeq first_open_segment() const noexcept;

 private:
  struct Batch;
  struct Effect;
  struct OpenSegment;
  struct JobProgress;
  class CommitOp;
  friend class CommitOp;
  class SpareOp;
  friend class SpareOp;

  // Appends the record whose payload is in scratch_.
  Status append_record(RecordType type, Effect effect, CommitWaiter* w);
  // Appends a record whose payload `put` writes (payload_size bytes) straight into the batch.
  Status append_record(RecordType type, std::size_t payload_size,
                       const std::function<void(std::string&)>& put, Effect effect,
                       CommitWaiter* w);
  Status ensure_segment(std::uint64_t framed);
  void start_spare() noexcept;
  void on_spare(std::int32_t res) noexcept;
  Batch& batch_for(std::uint64_t framed);
  void maybe_start_commit(bool force) noexcept;
  void on_io(CommitOp& op, std::int32_t res) noexcept;
  void start_sync(CommitOp& op) noexcept;
  bool can_start_commit() const noexcept;
  void fail_segment(SegmentSeq seg, std::error_code err) noexcept;
  void finish_in_order() noexcept;
  void on_timer(std::int32_t res) noexcept;
  using Timer = io::DetachableOp<SpoolWriter, &SpoolWriter::on_timer>;
  void finish_batch(std::unique_ptr<Batch> batch, Status status) noexcept;
  void relocate_pending(SegmentSeq retired) noexcept;
  void release_segment(SegmentSeq seq) noexcept;
  using JobMap = std::unordered_map<std::uint64_t, std::unique_ptr<JobProgress>>;
  void abandon(JobMap::iterator it) noexcept;
  void run_deferred_job_commits() noexcept;
  void reclaim() noexcept;
  void arm_timer() noexcept;

  shard::OwnedBy owner_;
  io::Engine& engine_;
  const Clock& clock_;
  WriterOptions options_;
  SpoolIndex& index_;
  SegmentSeq next_segment_;
  std::uint64_t next_id_;
  std::uint64_t id_mark_ = 0;  // ids below it are covered by the durable next-id mark
  static constexpr std::uint64_t kIdBlock = 1 << 20;
  void reserve_ids() noexcept;
  SegmentSeq current_{};
  SpareOp* spare_ = nullptr;  // the next segment, being made or ready (make_segments_ahead)
  std::map<std::uint64_t, std::unique_ptr<OpenSegment>> segments_;  // open fds
  std::deque<std::unique_ptr<Batch>> pending_;
  std::deque<CommitOp*> in_flight_;  // in commit order; finished from the front
  // The buffer of the last committed batch, kept for the next one (if no larger than twice
  // batch_max_bytes): a fresh buffer costs a page fault per 4 KiB written into it.
  // Storage of committed batches, kept for the next ones (one per commit that can be in
  // flight, plus the one filling): a batch never fills fresh memory, whose page faults cost
  // more than the copy itself.
  std::vector<std::string> spare_bufs_;
  Timer* timer_ = nullptr;
  JobMap jobs_;
  std::string scratch_;
  std::uint64_t buffered_bytes_ = 0;
  bool reclaim_held_ = false;
  bool checkpoint_written_ = false;
  using DeferredKey = std::pair<std::uint64_t, std::uint32_t>;  // message, recipient
  struct DeferredUntil {
    std::uint32_t attempts = 0;
    std::int64_t next_attempt_unix_ns = 0;
  };
  void note_deferred(const StateUpdate& u);
  absl::flat_hash_map<DeferredKey, DeferredUntil> deferred_;
  Stats stats_;
  mutable TimePoint space_checked_{};
  mutable bool space_ok_ = true;
};

}  // namespace salvo::spool
