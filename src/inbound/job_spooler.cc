// SPDX-License-Identifier: Apache-2.0
// JobSpooler: one bulk job through the SpoolWriter (template, recipient batches with
// back-pressure, commit), then its batches read back through the SpoolReader for the
// "received" accounting lines; delivery (spool::Dispatch::job_queued) reads them itself.
#include <salvo/inbound/job_spooler.h>

#include <chrono>
#include <span>
#include <utility>

#include <salvo/accounting/accounting.h>
#include <salvo/base/assert.h>
#include <salvo/base/log.h>
#include <salvo/spool/dispatch.h>
#include <salvo/spool/spool_index.h>

#include "inbound/message_builder.h"

namespace salvo::inbound {
namespace {

// Back-pressure: the writer holds at most this much of one job before the caller pauses.
// Enough batches for a few group commits in flight, bounded in memory whatever the job.
constexpr std::uint32_t kMaxOutstandingBatches = 16;
constexpr std::uint64_t kMaxWriterBacklog = 16ull << 20;
// The read-back waits while the accounting writer could not take another batch's lines
// (a batch of 1000 recipients is about 250 KB of lines): none is dropped, however fast
// the spool reads and however slow the log's disk.
constexpr std::size_t kReplayRoom = 4u << 20;

}  // namespace

JobSpooler::JobSpooler(const Services& services, const Origin& origin, Owner& owner,
                       std::string log_name)
    : svc_(services), origin_(origin), owner_(owner), log_name_(std::move(log_name)) {
  batch_waiter_.self = this;
  final_waiter_.self = this;
  replay_waiter_.self = this;
  room_waiter_.self = this;
}

JobSpooler::~JobSpooler() {
  SALVO_ASSERT(idle());
  abandon();
}

Status JobSpooler::begin(JobHeader& h) {
  owned_.check();
  SALVO_ASSERT(state_ == State::New);
  job_id_ = svc_.writer.allocate_id();
  received_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(
                     svc_.clock.wall_now().time_since_epoch())
                     .count();
  std::string content;
  content.reserve(h.content.size() + 200);
  append_local_received(origin_.hostname, origin_.via, job_id_.value(),
                        received_ns_ / 1'000'000'000, content);
  content += h.content;
  size_stored_ = content.size();
  spool::JobTemplateRecord t;
  t.job_id = job_id_;
  t.received_unix_ns = received_ns_;
  t.source = origin_.source;
  t.flags = message_flags(h.smtputf8, h.eight_bit);
  t.ret = static_cast<spool::Ret>(h.ret);
  t.job = h.job;
  t.from = h.from;
  t.envid = h.envid;
  t.content = content;
  auto r = svc_.writer.append_job_template(t, &batch_waiter_);
  if (!r) {
    state_ = State::Ended;
    return std::unexpected(r.error());
  }
  state_ = State::Open;
  ++outstanding_;
  from_ = h.from;
  job_ = h.job;
  h.content = std::string();  // stored; keep memory flat for the rest of the job
  return {};
}

void JobSpooler::add(JobRecipientData&& r) {
  owned_.check();
  if (batch_failed_ || state_ != State::Open) return;  // the job stops after this chunk
  batch_.push_back(std::move(r));
  if (batch_.size() >= origin_.batch_recipients) {
    if (auto st = append_batch(); !st) batch_failed_ = st.error();
  }
}

bool JobSpooler::wants_more() const noexcept {
  return outstanding_ < kMaxOutstandingBatches &&
         !(outstanding_ > 0 && svc_.writer.buffered_bytes() >= kMaxWriterBacklog);
}

Status JobSpooler::append_batch() noexcept {
  if (batch_.empty()) return {};
  spool::JobRecipientsRecord b;
  b.job_id = job_id_;
  b.first_index = next_index_;
  b.recipients.reserve(batch_.size());
  for (const auto& r : batch_) {
    spool::JobRecipient jr;
    jr.address = r.email;
    jr.notify = r.notify;
    jr.orcpt = r.orcpt;
    jr.vars.reserve(r.vars.size());
    for (const auto& [k, v] : r.vars) jr.vars.emplace_back(k, v);
    b.recipients.push_back(std::move(jr));
  }
  if (auto st = svc_.writer.append_job_recipients(b, &batch_waiter_); !st) return st;
  ++outstanding_;
  next_index_ += static_cast<std::uint32_t>(batch_.size());
  batch_.clear();
  return {};
}

Status JobSpooler::finish(const spool::PickupIdentity* identity) {
  owned_.check();
  SALVO_ASSERT(state_ == State::Open);
  if (batch_failed_) {
    abandon();
    return std::unexpected(batch_failed_);
  }
  if (auto st = append_batch(); !st) {
    abandon();
    return st;
  }
  spool::JobCommitRecord c;
  c.job_id = job_id_;
  c.recipient_count = next_index_;
  if (identity != nullptr) c.pickup = *identity;
  if (auto st = svc_.writer.append_job_commit(c, &final_waiter_); !st) {
    state_ = State::Ended;  // the writer dropped the job
    return st;
  }
  state_ = State::Committing;
  return {};
}

void JobSpooler::abandon() noexcept {
  owned_.check();
  if (state_ == State::Open) (void)svc_.writer.abandon_job(job_id_);
  if (state_ == State::New || state_ == State::Open) state_ = State::Ended;
}

bool JobSpooler::idle() const noexcept {
  return outstanding_ == 0 && !reading_ && !waiting_room_ && state_ != State::Committing &&
         state_ != State::Replay;
}

void JobSpooler::on_batch(Status st) noexcept {
  --outstanding_;
  if (!st) batch_failed_ = st.error();
  owner_.on_job_progress();  // last: the owner may destroy us once idle()
}

void JobSpooler::on_final(Status st) noexcept {
  state_ = st && start_replay() ? State::Replay : State::Ended;
  // Without accounting there is nothing to write first: delivery may start now.
  if (st && state_ == State::Ended) hand_to_delivery();
  owner_.on_job_committed(st);  // last: the owner may destroy us once idle()
}

void JobSpooler::hand_to_delivery() noexcept {
  if (svc_.dispatch == nullptr || handed_) return;
  handed_ = true;
  svc_.dispatch->job_queued(job_id_, received_ns_);
}

// The "received" accounting lines: the job's recipients are read back from the spool
// (what was queued), batch by batch, so memory stays flat however large the job. False
// when there is nothing to do. The first read completes from the engine, after the caller
// has told the owner about the commit.
bool JobSpooler::start_replay() noexcept {
  if (svc_.accounting == nullptr) return false;
  const auto e = svc_.index.find(job_id_);
  if (!e || e->batches.empty()) return false;
  replay_.clear();
  for (const auto& b : e->batches) replay_.push_back(b.loc);
  replay_next_ = 0;
  replay_id_ = format_id(job_id_.value());
  next_replay();
  return true;
}

void JobSpooler::on_room() noexcept {
  waiting_room_ = false;
  next_replay();
}

void JobSpooler::next_replay() noexcept {
  reading_ = true;
  svc_.reader.read(replay_[replay_next_++], &replay_waiter_);
}

void JobSpooler::on_replay(Result<spool::RawRecord> rec) noexcept {
  reading_ = false;
  if (rec) {
    if (auto b = spool::decode_job_recipients(rec->payload)) {
      accounting::Event ev;
      ev.ts_unix_ns = received_ns_;
      ev.id = replay_id_;
      ev.from = from_;
      ev.size = size_stored_;
      ev.source = origin_.via;
      ev.job = job_;
      for (const auto& r : b->recipients) account_received(*svc_.accounting, ev, r.address);
    }
  } else {
    log::warn("{}: accounting read-back: {}", log_name_, rec.error().message());
  }
  // Delivery starts once the first batch's "received" lines are written: it reads the
  // batches itself, a window at a time, well behind this replay at disk speed.
  hand_to_delivery();
  // The reader always answers from the engine: no recursion.
  if (replay_next_ < replay_.size()) {
    if (svc_.accounting->has_room(kReplayRoom)) return next_replay();
    waiting_room_ = true;
    return svc_.accounting->wait_for_room(&room_waiter_);  // on_room() reads on
  }
  state_ = State::Ended;
  replay_ = {};
  owner_.on_job_progress();  // last: the owner may destroy us now
}

}  // namespace salvo::inbound
