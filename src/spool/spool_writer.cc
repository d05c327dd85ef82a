// SPDX-License-Identifier: Apache-2.0
// SpoolWriter: batching, the write -> fdatasync pipeline, fsyncgate handling (a failed
// write or fdatasync fails its batch and retires the segment, never retried), deferred job
// commits and segment reclamation.
#include <salvo/spool/spool_writer.h>

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include <salvo/base/log.h>
#include <salvo/io/engine.h>
#include <salvo/spool/checkpoint.h>
#include <salvo/spool/errc.h>

#include "spool/segment_file.h"

namespace salvo::spool {

struct SpoolWriter::Effect {
  enum class Kind : std::uint8_t { Message, JobTemplate, JobBatch, JobCommit, States };
  Kind kind = Kind::Message;
  MessageId id{};
  std::uint32_t first = 0;
  std::uint32_t count = 0;
  std::uint64_t rel_offset = 0;  // within the batch: relocation keeps it valid
  std::uint32_t length = 0;
  std::vector<StateUpdate> updates;
  CommitWaiter* waiter = nullptr;
};

struct SpoolWriter::Batch {
  SegmentSeq seg{};
  std::uint64_t offset = 0;
  std::string buf;
  std::vector<Effect> effects;
  std::uint32_t messages = 0;
  bool sealed = false;
  std::error_code doom;  // set when it could not be moved off a retired segment
};

struct SpoolWriter::OpenSegment {
  int fd = -1;
  std::uint64_t capacity = 0;
  std::uint64_t next_offset = 0;
  std::uint32_t batches = 0;  // pending or in flight
  bool retired = false;
};

struct SpoolWriter::JobProgress {
  std::uint32_t outstanding = 0;  // appended records not yet committed
  std::uint32_t next_index = 0;
  bool failed = false;
  bool commit_requested = false;
  bool abandoned = false;  // the caller gave up: drop once nothing is outstanding
  JobCommitRecord commit;
  CommitWaiter* commit_waiter = nullptr;
};

namespace {
// Closes a segment's fd once the last commit still using it after ~SpoolWriter is done.
struct FdCloser {
  int fd;
  ~FdCloser() { ::close(fd); }
};
}  // namespace

class SpoolWriter::CommitOp final : public io::Completion {
 public:
  void on_complete(std::int32_t res, std::uint32_t) noexcept override {
    if (owner != nullptr) {
      owner->on_io(*this, res);
      return;
    }
    // The writer is gone: let the kernel finish, then free (the fd with the last user).
    delete this;
  }
  SpoolWriter* owner = nullptr;
  std::unique_ptr<Batch> batch;
  int fd = -1;
  std::size_t written = 0;
  bool write_done = false;  // the whole batch is written: a next commit may start
  bool syncing = false;
  bool delaying = false;  // WriterOptions::test_sync_delay is running
  bool done = false;      // finished, waiting for the commits before it
  std::error_code err;    // its outcome, or a failure of its segment
  std::shared_ptr<FdCloser> fd_keeper;  // after ~SpoolWriter only
  TimePoint sync_start{};
};

// The next segment, made while the current one fills (WriterOptions::make_segments_ahead):
// detail::begin_segment on the loop (open, fallocate, the header: microseconds), then the
// file's fsync, the link into place and the directory's fsync, the two fsyncs through the
// engine. Each fsync is a journal commit (about 0.2 ms for both on an idle SSD, far more
// on a busy or slow disk); create_segment spends them on the loop, so every connection of
// the shard waits at each roll-over.
class SpoolWriter::SpareOp final : public io::Completion {
 public:
  enum class Step : std::uint8_t { FileSync, DirSync, Ready };
  void on_complete(std::int32_t res, std::uint32_t) noexcept override {
    if (owner != nullptr) {
      owner->on_spare(res);
      return;
    }
    // Discarded (its name is gone already) or the writer is gone (what is on disk is what
    // a crash at this point leaves: a *.new file, or an empty segment).
    delete this;
  }
  ~SpareOp() {
    if (fd >= 0) ::close(fd);
    if (dir_fd >= 0) ::close(dir_fd);
  }
  SpoolWriter* owner = nullptr;
  SegmentSeq seq{};
  std::uint64_t capacity = 0;
  std::uint64_t header_length = 0;
  int fd = -1;
  int dir_fd = -1;
  Step step = Step::FileSync;
};

namespace {
using Calls = std::vector<std::pair<CommitWaiter*, Status>>;
std::int64_t unix_ns(WallTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
}  // namespace

SpoolWriter::SpoolWriter(io::Engine& engine, const Clock& clock, WriterOptions options,
                         SpoolIndex& index, SegmentSeq next_segment, MessageId next_id)
    : engine_(engine),
      clock_(clock),
      options_(std::move(options)),
      index_(index),
      next_segment_(next_segment.value() == 0 ? SegmentSeq(1) : next_segment),
      next_id_(next_id.value() == 0 ? 1 : next_id.value()),
      timer_(new Timer(this)) {
  options_.batch_max_records = std::max<std::uint32_t>(options_.batch_max_records, 1);
}

SpoolWriter::~SpoolWriter() {
  timer_->release(engine_);
  if (spare_ != nullptr) {  // left on disk as a crash would leave it
    if (spare_->step == SpareOp::Step::Ready) {
      delete spare_;
    } else {
      spare_->owner = nullptr;
    }
  }
  std::map<std::uint64_t, std::shared_ptr<FdCloser>> keepers;
  for (CommitOp* op : in_flight_) {
    op->owner = nullptr;
    auto it = segments_.find(op->batch->seg.value());
    if (it == segments_.end()) continue;
    auto& keeper = keepers[it->first];
    if (keeper == nullptr && it->second->fd >= 0) {
      keeper = std::make_shared<FdCloser>(it->second->fd);
      it->second->fd = -1;
    }
    op->fd_keeper = keeper;
  }
  Status closed = fail(errc::writer_closed);
  for (auto& b : pending_) {
    for (auto& e : b->effects) {
      if (e.waiter != nullptr) e.waiter->on_committed(closed);
    }
  }
  for (auto& [id, job] : jobs_) {
    if (job->commit_requested && job->commit_waiter != nullptr) {
      job->commit_waiter->on_committed(closed);
    }
  }
  for (auto& [seq, seg] : segments_) {
    if (seg->fd >= 0) ::close(seg->fd);
  }
}

MessageId SpoolWriter::allocate_id() noexcept {
  if (next_id_ >= id_mark_) reserve_ids();
  return MessageId(next_id_++);
}

// Ids are handed out below a durable high-water mark (docs/spool-format.md §6), a block at
// a time: one small synchronous file write and fsync per kIdBlock ids.
void SpoolWriter::reserve_ids() noexcept {
  const std::uint64_t mark = next_id_ + kIdBlock;
  if (auto st = detail::write_id_mark(options_.dir, mark); !st) {
    // Not a durability matter (no mail depends on it): ids stay unique while this process
    // runs; only a restart with every higher id reclaimed could repeat one. Try again at
    // the next block.
    ++stats_.id_mark_failures;
    log::error("spool: next-id mark in {}: {}", options_.dir, st.error().message());
    // The old mark is now below ids in use. Remove it, so the next start scans the whole
    // spool for the highest id before it takes mail instead of trusting the mark
    // (list_spool: ids_known).
    if (auto rm = detail::remove_id_mark(options_.dir); !rm) {
      log::error("spool: cannot remove the stale next-id mark in {}: {}; the next start "
                 "may repeat message ids",
                 options_.dir, rm.error().message());
    }
  }
  id_mark_ = mark;
}

Status SpoolWriter::ensure_segment(std::uint64_t framed) {
  if (current_.value() != 0) {
    OpenSegment& cur = *segments_.at(current_.value());
    if (!cur.retired && cur.next_offset + framed <= cur.capacity) return {};
  }
  std::uint64_t need = (framed + 8191) / 4096 * 4096;
  std::uint64_t cap = std::max(options_.segment_size, need);
  SegmentSeq seq;
  detail::CreatedSegment made;
  if (spare_ != nullptr && spare_->step == SpareOp::Step::Ready && spare_->capacity >= cap) {
    seq = spare_->seq;
    cap = spare_->capacity;
    made = detail::CreatedSegment{std::exchange(spare_->fd, -1), spare_->header_length};
    delete std::exchange(spare_, nullptr);
    ++stats_.segments_ahead;
  } else {
    // Not made yet (or too small for this record): one is made now, with a higher number,
    // so the spare would come after it; it goes.
    discard_spare();
    seq = next_segment_;
    auto created =
        detail::create_segment(options_.dir, seq, options_.shard, cap, unix_ns(clock_.wall_now()));
    if (!created) {
      if (created.error() == std::errc::no_space_on_device) ++stats_.no_space;
      log::error("spool: cannot create segment {}: {}", detail::segment_path(options_.dir, seq),
                 created.error().message());
      return std::unexpected(created.error());
    }
    made = *created;
    next_segment_ = SegmentSeq(seq.value() + 1);
  }
  auto seg = std::make_unique<OpenSegment>();
  seg->fd = made.fd;
  seg->capacity = cap;
  seg->next_offset = made.header_length;
  segments_.emplace(seq.value(), std::move(seg));
  index_.add_segment(seq);
  ++stats_.segments_created;
  SegmentSeq old = current_;
  current_ = seq;
  if (!pending_.empty()) pending_.back()->sealed = true;
  if (old.value() != 0) release_segment(old);
  start_spare();
  return {};
}

void SpoolWriter::start_spare() noexcept {
  if (!options_.make_segments_ahead || spare_ != nullptr) return;
  const SegmentSeq seq = next_segment_;
  auto made = detail::begin_segment(options_.dir, seq, options_.shard, options_.segment_size,
                                    unix_ns(clock_.wall_now()));
  int dir_fd = -1;
  if (made) {
    dir_fd = ::open(options_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
      made = fail_errno(errno);
      ::unlink(detail::unfinished_path(options_.dir, seq).c_str());
    }
  }
  if (!made) {  // the next roll-over makes its segment then, and reports what fails
    ++stats_.spare_failures;
    log::warn("spool: cannot make segment {} ahead: {}", detail::segment_path(options_.dir, seq),
              made.error().message());
    return;
  }
  next_segment_ = SegmentSeq(seq.value() + 1);
  spare_ = new SpareOp;
  spare_->owner = this;
  spare_->seq = seq;
  spare_->capacity = options_.segment_size;
  spare_->header_length = made->header_length;
  spare_->fd = made->fd;
  spare_->dir_fd = dir_fd;
  engine_.fsync(spare_->fd, spare_);
}

void SpoolWriter::on_spare(std::int32_t res) noexcept {
  SpareOp& op = *spare_;
  Status st;
  if (res != 0) {
    st = std::unexpected(io::to_error_code(res < 0 ? res : -EIO));
    ::unlink((op.step == SpareOp::Step::FileSync ? detail::unfinished_path(options_.dir, op.seq)
                                                 : detail::segment_path(options_.dir, op.seq))
                 .c_str());
  } else if (op.step == SpareOp::Step::FileSync) {
    st = detail::finish_segment(options_.dir, op.seq);
    if (st) {
      op.step = SpareOp::Step::DirSync;
      engine_.fsync(op.dir_fd, &op);
      return;
    }
  } else {
    op.step = SpareOp::Step::Ready;
    ::close(std::exchange(op.dir_fd, -1));
    return;
  }
  ++stats_.spare_failures;
  log::warn("spool: cannot make segment {} ahead: {}",
            detail::segment_path(options_.dir, op.seq), st.error().message());
  delete std::exchange(spare_, nullptr);
}

void SpoolWriter::discard_spare() noexcept {
  if (spare_ == nullptr) return;
  SpareOp* op = std::exchange(spare_, nullptr);
  // A crash before the removal is durable leaves a *.new file or an empty segment, both
  // harmless (the next start removes the one, reclaims the other).
  ::unlink((op->step == SpareOp::Step::FileSync ? detail::unfinished_path(options_.dir, op->seq)
                                                : detail::segment_path(options_.dir, op->seq))
               .c_str());
  if (op->step == SpareOp::Step::Ready) {
    delete op;
  } else {
    op->owner = nullptr;  // frees itself at its completion, and links nothing
  }
}

SpoolWriter::Batch& SpoolWriter::batch_for(std::uint64_t framed) {
  if (!pending_.empty()) {
    Batch& back = *pending_.back();
    if (!back.sealed && back.seg == current_ &&
        back.buf.size() + framed <= options_.batch_max_bytes) {
      return back;
    }
    back.sealed = true;
  }
  OpenSegment& seg = *segments_.at(current_.value());
  auto b = std::make_unique<Batch>();
  if (!spare_bufs_.empty()) {  // a committed batch's storage, pages already mapped
    b->buf.swap(spare_bufs_.back());
    spare_bufs_.pop_back();
  }
  b->buf.clear();
  b->seg = current_;
  b->offset = seg.next_offset;
  ++seg.batches;
  pending_.push_back(std::move(b));
  return *pending_.back();
}

Status SpoolWriter::append_record(RecordType type, Effect effect, CommitWaiter* w) {
  return append_record(
      type, scratch_.size(), [this](std::string& out) { out.append(scratch_); },
      std::move(effect), w);
}

Status SpoolWriter::append_record(RecordType type, std::size_t payload_size,
                                  const std::function<void(std::string&)>& put, Effect effect,
                                  CommitWaiter* w) {
  if (payload_size > kMaxPayload) return fail(errc::record_too_large);
  if (checkpoint_written_) {
    // Not expected (the checkpoint is written once the stop has drained everything), but
    // a checkpoint must never describe a spool with more in it: it goes first.
    if (auto st = remove_checkpoint(options_.dir); !st) {
      log::error("spool: cannot remove the checkpoint in {}: {}; not appending",
                 options_.dir, st.error().message());
      return st;
    }
    checkpoint_written_ = false;
  }
  std::uint64_t framed = payload_size + kFrameOverhead;
  if (auto st = ensure_segment(framed); !st) return st;
  Batch& b = batch_for(framed);
  effect.rel_offset = b.buf.size();
  effect.length = static_cast<std::uint32_t>(framed);
  effect.waiter = w;
  frame(type, payload_size, put, b.seg, b.offset + effect.rel_offset, b.buf);
  segments_.at(current_.value())->next_offset += framed;
  buffered_bytes_ += framed;
  if (type == RecordType::Message || type == RecordType::JobCommit) ++b.messages;
  b.effects.push_back(std::move(effect));
  if (b.effects.size() >= options_.batch_max_records || b.buf.size() >= options_.batch_max_bytes) {
    b.sealed = true;
  }
  maybe_start_commit(false);
  if (!pending_.empty() && can_start_commit()) arm_timer();
  return {};
}

Result<MessageId> SpoolWriter::append_message(MessageRecord& m, CommitWaiter* w) {
  owner_.check();
  if (m.id.value() == 0) m.id = allocate_id();
  Effect e{.kind = Effect::Kind::Message,
           .id = m.id,
           .count = static_cast<std::uint32_t>(m.recipients.size())};
  // Encoded straight into the batch: the body is copied once on its way to the disk.
  if (auto st = append_record(RecordType::Message, encoded_size(m),
                              [&m](std::string& out) { encode(m, out); }, std::move(e), w);
      !st) {
    return std::unexpected(st.error());
  }
  return m.id;
}

Result<MessageId> SpoolWriter::append_job_template(JobTemplateRecord& t, CommitWaiter* w) {
  owner_.check();
  if (t.job_id.value() == 0) t.job_id = allocate_id();
  scratch_.clear();
  encode(t, scratch_);
  if (auto st = append_record(RecordType::JobTemplate,
                              Effect{.kind = Effect::Kind::JobTemplate, .id = t.job_id}, w);
      !st) {
    return std::unexpected(st.error());
  }
  auto& job = jobs_[t.job_id.value()];
  job = std::make_unique<JobProgress>();
  job->outstanding = 1;
  return t.job_id;
}

Status SpoolWriter::append_job_recipients(const JobRecipientsRecord& b, CommitWaiter* w) {
  owner_.check();
  auto it = jobs_.find(b.job_id.value());
  if (it == jobs_.end()) return fail(errc::unknown_job);
  JobProgress& job = *it->second;
  if (job.failed) return fail(errc::job_failed);
  if (job.commit_requested || b.first_index != job.next_index || b.recipients.empty()) {
    return fail(errc::malformed_record);
  }
  scratch_.clear();
  encode(b, scratch_);
  auto n = static_cast<std::uint32_t>(b.recipients.size());
  Effect e{.kind = Effect::Kind::JobBatch, .id = b.job_id, .first = b.first_index, .count = n};
  if (auto st = append_record(RecordType::JobRecipients, std::move(e), w); !st) return st;
  job.next_index += n;
  ++job.outstanding;
  return {};
}

Status SpoolWriter::append_job_commit(const JobCommitRecord& c, CommitWaiter* w) {
  owner_.check();
  auto it = jobs_.find(c.job_id.value());
  if (it == jobs_.end()) return fail(errc::unknown_job);
  JobProgress& job = *it->second;
  if (job.failed) {
    abandon(it);
    return fail(errc::job_failed);
  }
  if (job.commit_requested || c.recipient_count != job.next_index) {
    return fail(errc::malformed_record);
  }
  if (job.outstanding == 0) {  // everything before it is durable: append it now
    jobs_.erase(it);
    scratch_.clear();
    encode(c, scratch_);
    Status st = append_record(RecordType::JobCommit,
                              Effect{.kind = Effect::Kind::JobCommit, .id = c.job_id}, w);
    if (!st) index_.drop(c.job_id);
    return st;
  }
  job.commit_requested = true;
  job.commit = c;
  job.commit_waiter = w;
  return {};
}

Status SpoolWriter::append_states(std::span<const StateUpdate> updates, CommitWaiter* w) {
  owner_.check();
  RecipientStateRecord rec;
  rec.updates.assign(updates.begin(), updates.end());
  scratch_.clear();
  encode(rec, scratch_);
  return append_record(RecordType::RecipientState,
                       Effect{.kind = Effect::Kind::States, .updates = std::move(rec.updates)}, w);
}

Status SpoolWriter::abandon_job(MessageId id) {
  owner_.check();
  auto it = jobs_.find(id.value());
  if (it == jobs_.end()) return fail(errc::unknown_job);
  if (it->second->commit_requested) return fail(errc::job_failed);
  abandon(it);
  return {};
}

void SpoolWriter::abandon(JobMap::iterator it) noexcept {
  // Records still in flight would add the job back to the index when they land: drop it
  // only once nothing is outstanding (run_deferred_job_commits).
  if (it->second->outstanding == 0) {
    index_.drop(MessageId(it->first));
    jobs_.erase(it);
    return;
  }
  it->second->abandoned = true;
  it->second->commit_requested = false;
  it->second->commit_waiter = nullptr;
}

void SpoolWriter::run_deferred_job_commits() noexcept {
  std::vector<std::uint64_t> ready;
  for (auto& [id, job] : jobs_) {
    if (job->outstanding == 0 && (job->commit_requested || job->abandoned)) ready.push_back(id);
  }
  for (std::uint64_t id : ready) {
    auto it = jobs_.find(id);
    std::unique_ptr<JobProgress> job = std::move(it->second);
    jobs_.erase(it);
    Status st;
    if (job->abandoned) {
      index_.drop(MessageId(id));
      continue;
    }
    if (job->failed) {
      index_.drop(MessageId(id));
      st = fail(errc::job_failed);
    } else {
      scratch_.clear();
      encode(job->commit, scratch_);
      st = append_record(RecordType::JobCommit,
                         Effect{.kind = Effect::Kind::JobCommit, .id = MessageId(id)},
                         job->commit_waiter);
      if (!st) index_.drop(MessageId(id));
    }
    if (!st && job->commit_waiter != nullptr) job->commit_waiter->on_committed(st);
  }
}

void SpoolWriter::flush() noexcept { maybe_start_commit(true); }

bool SpoolWriter::idle() const noexcept {
  return in_flight_.empty() && pending_.empty() &&
         (spare_ == nullptr || spare_->step == SpareOp::Step::Ready);
}

void SpoolWriter::arm_timer() noexcept {
  if (timer_->armed()) return;
  timer_->arm();
  engine_.timeout(options_.batch_max_delay, timer_);
}

void SpoolWriter::on_timer(std::int32_t) noexcept { maybe_start_commit(true); }

// A commit may start when none is in flight, or when fewer than commits_in_flight are, the
// last one's write is done and the next batch is in the same segment (its fdatasync then
// covers the earlier batch too, and a crash cannot leave a hole before written data).
bool SpoolWriter::can_start_commit() const noexcept {
  if (pending_.empty()) return false;
  if (in_flight_.empty()) return true;
  const CommitOp& last = *in_flight_.back();
  if (in_flight_.size() >= options_.commits_in_flight || !last.write_done || last.err) {
    return false;
  }
  const Batch& front = *pending_.front();
  return !front.doom && front.seg == last.batch->seg;
}

void SpoolWriter::maybe_start_commit(bool force) noexcept {
  while (can_start_commit()) {
    Batch& front = *pending_.front();
    if (front.doom) {  // only with nothing in flight: failures are told in order too
      std::unique_ptr<Batch> b = std::move(pending_.front());
      pending_.pop_front();
      std::error_code ec = b->doom;
      finish_batch(std::move(b), std::unexpected(ec));
      return;  // finish_batch restarts the pipeline
    }
    if (!front.sealed && !force) return;
    if (front.effects.empty()) {  // nothing appended (all moved away)
      std::unique_ptr<Batch> b = std::move(pending_.front());
      pending_.pop_front();
      release_segment(b->seg);
      continue;
    }
    front.sealed = true;
    auto* op = new CommitOp;
    op->owner = this;
    op->batch = std::move(pending_.front());
    pending_.pop_front();
    op->fd = segments_.at(op->batch->seg.value())->fd;
    in_flight_.push_back(op);
    const std::string& buf = op->batch->buf;
    engine_.write(op->fd, std::span<const char>(buf.data(), buf.size()), op->batch->offset, op);
  }
}

void SpoolWriter::start_sync(CommitOp& op) noexcept {
  op.syncing = true;
  op.sync_start = clock_.now();
  engine_.fdatasync(op.fd, &op);
}

void SpoolWriter::on_io(CommitOp& op, std::int32_t res) noexcept {
  const std::string& buf = op.batch->buf;
  std::error_code err;
  if (op.delaying) {
    op.delaying = false;
    if (options_.sync == SyncMode::Fdatasync) {
      start_sync(op);
      return;
    }
  } else if (!op.syncing) {
    if (res == -EINTR || res == -EAGAIN) {
      engine_.write(op.fd, std::span<const char>(buf.data() + op.written, buf.size() - op.written),
                    op.batch->offset + op.written, &op);
      return;
    }
    if (res > 0) {
      op.written += static_cast<std::size_t>(res);
      if (op.written < buf.size()) {  // short write: continue, never silent
        ++stats_.short_writes;
        engine_.write(op.fd,
                      std::span<const char>(buf.data() + op.written, buf.size() - op.written),
                      op.batch->offset + op.written, &op);
        return;
      }
      op.write_done = true;
      if (options_.test_sync_delay > Duration::zero()) {
        op.delaying = true;  // the test seam's slow disk: wait, then sync as usual
        engine_.timeout(options_.test_sync_delay, &op);
      } else if (options_.sync == SyncMode::Fdatasync) {
        start_sync(op);
      }
      if (op.delaying || op.syncing) {
        // The next batch is written while this one syncs (after the delay, if it is not
        // full yet: it gathers appends meanwhile, as a batch does while nothing is in flight).
        maybe_start_commit(false);
        if (can_start_commit()) arm_timer();
        return;
      }
    } else {
      ++stats_.write_failures;
      err = res == 0 ? make_error_code(errc::short_write) : io::to_error_code(res);
    }
  } else {
    auto lat = std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.now() - op.sync_start);
    stats_.fsync_latency_ns.record(
        static_cast<std::uint64_t>(std::max<std::int64_t>(lat.count(), 0)));
    if (res != 0) {
      // fsyncgate: the kernel may have dropped the dirty pages; a later fdatasync could
      // "succeed" without the data. Never retry, never trust this segment again.
      ++stats_.fsync_failures;
      err = io::to_error_code(res < 0 ? res : -EIO);
    }
  }
  op.done = true;
  if (err) fail_segment(op.batch->seg, err);
  finish_in_order();
}

// A failed write or fdatasync retires its segment, and fails every commit on it still in
// flight, before or after this one: the kernel reports a writeback error to one fdatasync
// of the file only, so another commit's success proves nothing (fsyncgate).
void SpoolWriter::fail_segment(SegmentSeq seg, std::error_code err) noexcept {
  for (CommitOp* op : in_flight_) {
    if (op->batch->seg == seg && !op->err) op->err = err;
  }
  OpenSegment& s = *segments_.at(seg.value());
  if (!s.retired) {
    s.retired = true;
    ++stats_.segments_retired;
    std::size_t records = 0;
    for (CommitOp* op : in_flight_) {
      if (op->batch->seg == seg) records += op->batch->effects.size();
    }
    log::error("spool: {} on {}; segment retired, {} records failed", err.message(),
               detail::segment_path(options_.dir, seg), records);
  }
  if (current_ == seg) current_ = SegmentSeq{};
  relocate_pending(seg);
}

// Commits finish in the order they started, so waiters (and the index) see them in
// append order whichever fdatasync the kernel completes first.
void SpoolWriter::finish_in_order() noexcept {
  while (!in_flight_.empty() && in_flight_.front()->done) {
    CommitOp* op = in_flight_.front();
    in_flight_.pop_front();
    std::unique_ptr<Batch> batch = std::move(op->batch);
    std::error_code err = op->err;
    delete op;
    if (err) {
      if (err == std::errc::no_space_on_device) ++stats_.no_space;
      finish_batch(std::move(batch), std::unexpected(err));
    } else {
      finish_batch(std::move(batch), Status{});
    }
  }
}

void SpoolWriter::relocate_pending(SegmentSeq retired) noexcept {
  const bool hit = std::any_of(pending_.begin(), pending_.end(),
                               [&](const auto& b) { return b->seg == retired && !b->doom; });
  if (!hit) return;
  // Every queued batch moves to one fresh segment, in queue order: those of the retired
  // segment, and those queued behind them in a newer one. Recovery reads records in
  // (segment, offset) order and relies on it being the order of the appends: a job's
  // commit after its template, a message's states after it, a recipient's later state after
  // its earlier one. Moving only the retired segment's batches put them after newer ones
  // (a higher sequence number): a job commit was read before its template (the job was
  // dropped), states before their message (the recipient pending again), and a recipient's
  // older state after its newer one. One fresh segment also means no write lands after an
  // unwritten gap (which recovery would take for damage). Appends then continue there.
  std::uint64_t bytes = 0;
  for (const auto& b : pending_) {
    if (!b->doom) bytes += b->buf.size();
  }
  const SegmentSeq keep_current = current_;
  current_ = SegmentSeq{};
  Status st = ensure_segment(bytes);
  std::vector<SegmentSeq> left;
  for (auto& b : pending_) {
    if (b->doom) continue;
    if (!st) {
      // Never written: fail them. Those of newer segments stay there, still in order.
      if (b->seg == retired) b->doom = st.error();
      continue;
    }
    if (left.empty() || left.back() != b->seg) left.push_back(b->seg);
    --segments_.at(b->seg.value())->batches;
    OpenSegment& seg = *segments_.at(current_.value());
    b->seg = current_;
    b->offset = seg.next_offset;
    seg.next_offset += b->buf.size();
    ++seg.batches;
    b->sealed = true;
    // Each record's CRC covers its place (docs/spool-format.md §3): recompute it for the
    // new one.
    for (const Effect& e : b->effects) {
      rebind(std::span<char>(b->buf.data() + e.rel_offset, e.length), b->seg,
             b->offset + e.rel_offset);
    }
  }
  if (!st) {
    if (keep_current != retired) current_ = keep_current;
    return;
  }
  // Nothing was written to the newer segments after their headers (their batches were
  // queued behind the retired segment's): they are closed, and reclaimed like any segment
  // without live mail. The retired one closes once its failed batch is finished.
  for (SegmentSeq seq : left) release_segment(seq);
}

void SpoolWriter::release_segment(SegmentSeq seq) noexcept {
  auto it = segments_.find(seq.value());
  if (it == segments_.end()) return;
  if (it->second->batches > 0 || seq == current_) return;
  if (it->second->fd >= 0) ::close(it->second->fd);
  segments_.erase(it);
}

void SpoolWriter::finish_batch(std::unique_ptr<Batch> batch, Status status) noexcept {
  buffered_bytes_ -= batch->buf.size();
  Calls calls;
  calls.reserve(batch->effects.size());
  auto job_of = [&](MessageId id) -> JobProgress* {
    auto it = jobs_.find(id.value());
    return it == jobs_.end() ? nullptr : it->second.get();
  };
  for (Effect& e : batch->effects) {
    Location loc{batch->seg, batch->offset + e.rel_offset, e.length};
    Status st = status;
    switch (e.kind) {
      case Effect::Kind::Message:
        if (status) index_.add_message(e.id, loc, e.count);
        break;
      case Effect::Kind::JobTemplate:
      case Effect::Kind::JobBatch: {
        JobProgress* job = job_of(e.id);
        if (job != nullptr) --job->outstanding;
        if (status) {
          if (e.kind == Effect::Kind::JobTemplate) {
            index_.add_job_template(e.id, loc);
          } else if (!index_.add_job_batch(e.id, e.first, e.count, loc)) {
            st = fail(errc::job_failed);
          }
        }
        if (!st && job != nullptr && !job->failed) {
          job->failed = true;
          index_.drop(e.id);
        }
        break;
      }
      case Effect::Kind::JobCommit:
        if (status && !index_.commit_job(e.id, loc)) st = fail(errc::unknown_job);
        if (!st) index_.drop(e.id);
        break;
      case Effect::Kind::States:
        if (status) {
          for (const StateUpdate& u : e.updates) {
            if (index_.apply(u, batch->seg)) note_deferred(u);
          }
        }
        break;
    }
    if (e.waiter != nullptr) calls.emplace_back(e.waiter, std::move(st));
  }
  if (status) {
    ++stats_.commits;
    stats_.records += batch->effects.size();
    stats_.messages += batch->messages;
    stats_.bytes += batch->buf.size();
    stats_.messages_per_commit.record(batch->messages);
  } else {
    ++stats_.failed_batches;
  }
  SegmentSeq seg = batch->seg;
  auto it = segments_.find(seg.value());
  if (it != segments_.end()) --it->second->batches;
  release_segment(seg);
  if (batch->buf.capacity() <= 2 * options_.batch_max_bytes &&
      spare_bufs_.size() <= options_.commits_in_flight) {
    spare_bufs_.push_back(std::move(batch->buf));
  }
  batch.reset();
  run_deferred_job_commits();
  if (status) reclaim();
  maybe_start_commit(in_flight_.empty());
  if (can_start_commit()) arm_timer();
  for (auto& [w, st] : calls) w->on_committed(st);
}

void SpoolWriter::note_deferred(const StateUpdate& u) {
  const DeferredKey key{u.message.value(), u.recipient.value()};
  if (u.state == RecipientState::Deferred) {
    deferred_.insert_or_assign(key, DeferredUntil{u.attempts, u.next_attempt_unix_ns});
  } else {
    deferred_.erase(key);
  }
}

void SpoolWriter::seed_deferred(std::span<const PendingRecipient> recovered) {
  owner_.check();
  deferred_.reserve(deferred_.size() + recovered.size());
  for (const PendingRecipient& p : recovered) {
    // A state written since the start is newer than the recovered one.
    deferred_.try_emplace(DeferredKey{p.message.value(), p.recipient.value()},
                          DeferredUntil{p.attempts, p.next_attempt_unix_ns});
  }
}

std::vector<PendingRecipient> SpoolWriter::deferred() const {
  std::vector<PendingRecipient> out;
  for (const auto& [key, d] : deferred_) {
    const PendingRecipient p{MessageId(key.first), RecipientIndex(key.second), d.attempts,
                             d.next_attempt_unix_ns};
    if (index_.state(p.message, p.recipient) == RecipientState::Deferred) out.push_back(p);
  }
  std::sort(out.begin(), out.end(), [](const PendingRecipient& a, const PendingRecipient& b) {
    return std::pair(a.message, a.recipient) < std::pair(b.message, b.recipient);
  });
  return out;
}

void SpoolWriter::checkpoint_written() noexcept {
  owner_.check();
  checkpoint_written_ = true;
}

void SpoolWriter::hold_reclaim(bool held) noexcept {
  owner_.check();
  reclaim_held_ = held;
  if (!held) reclaim();
}

SegmentSeq SpoolWriter::first_open_segment() const noexcept {
  SegmentSeq keep = next_segment_;
  if (!segments_.empty()) keep = SegmentSeq(segments_.begin()->first);
  if (current_.value() != 0) keep = std::min(keep, current_);
  return keep;
}

void SpoolWriter::reclaim() noexcept {
  if (reclaim_held_) return;
  // Never the open segments (current, or with batches pending/in flight) or later ones.
  for (SegmentSeq seq : index_.reclaimable(first_open_segment())) {
    std::string path = detail::segment_path(options_.dir, seq);
    // A segment recovery found damage in is kept for inspection: renamed out of recovery's
    // way (which reads only seg-*.spool), never deleted.
    const bool quarantined = index_.quarantined(seq);
    const std::string damaged = path + ".damaged";
    if ((quarantined ? ::rename(path.c_str(), damaged.c_str()) : ::unlink(path.c_str())) != 0 &&
        errno != ENOENT) {
      log::warn("spool: cannot {} {}: {}", quarantined ? "rename" : "delete", path,
                std::strerror(errno));
      return;
    }
    // Each unlink or rename is made durable before the next: a segment holding final states
    // for an older one goes after it, and a crash must not reorder the two.
    if (auto st = detail::fsync_dir(options_.dir); !st) {
      log::warn("spool: fsync of {} failed: {}", options_.dir, st.error().message());
    }
    index_.remove_segment(seq);
    detail::remove_punch_note(options_.dir, seq);
    if (quarantined) {
      ++stats_.segments_quarantined;
      log::warn("spool: every recipient of damaged segment {} is final; kept as {}", path, damaged);
    } else {
      ++stats_.segments_deleted;
    }
  }
}

bool SpoolWriter::free_space_ok() const noexcept {
  TimePoint now = clock_.now();
  if (space_checked_ != TimePoint{} && now - space_checked_ < std::chrono::milliseconds(100)) {
    return space_ok_;
  }
  space_checked_ = now;
  struct statvfs sv {};
  if (::statvfs(options_.dir.c_str(), &sv) != 0) {
    space_ok_ = false;
    return space_ok_;
  }
  std::uint64_t free_bytes = static_cast<std::uint64_t>(sv.f_bavail) * sv.f_frsize;
  space_ok_ = free_bytes >= options_.reserve_bytes;
  return space_ok_;
}

namespace {

constexpr metrics::Family kCommits{"salvo_spool_commits_total", metrics::Type::Counter,
                                   "Group commits (write + fdatasync)."};
constexpr metrics::Family kCommittedBytes{"salvo_spool_committed_bytes_total",
                                          metrics::Type::Counter, "Bytes committed to the spool."};
constexpr metrics::Family kFailedBatches{"salvo_spool_failed_batches_total",
                                         metrics::Type::Counter,
                                         "Group commits whose write or fdatasync failed."};
constexpr metrics::Family kFsync{"salvo_spool_fsync_seconds", metrics::Type::Histogram,
                                 "Spool fdatasync latency."};
constexpr metrics::Family kSegments{
    "salvo_spool_segments_created_total", metrics::Type::Counter,
    "Segments created: made ahead while the one before filled, or at the roll-over."};

}  // namespace

void SpoolWriter::report(metrics::Snapshot& s) const {
  s.add(kCommits, {}, stats_.commits);
  s.add(kCommittedBytes, {}, stats_.bytes);
  s.add(kFailedBatches, {}, stats_.failed_batches);
  s.add(kFsync, {}, stats_.fsync_latency_ns);
  s.add(kSegments, metrics::label("made", "ahead"), stats_.segments_ahead);
  s.add(kSegments, metrics::label("made", "at_rollover"),
        stats_.segments_created - stats_.segments_ahead);
}

}  // namespace salvo::spool
