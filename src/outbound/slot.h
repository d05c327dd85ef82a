// SPDX-License-Identifier: Apache-2.0
// Slot: one transaction — recipients of one message taken from a destination's backlog,
// the reads of its records from the origin's spool (any shard may read committed
// records), the decoded envelope, and the message as it goes out (a job's template
// expanded for its recipient, DKIM signatures in front).
//
// Owner: the destination's shard; created by Destination::make_slot, deleted once settled
// or requeued.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <salvo/outbound/signers.h>
#include <salvo/queue/destination_queue.h>
#include <salvo/spool/spool_reader.h>

#include "outbound/types.h"

namespace salvo::outbound {

class Destination;
class Channel;

class Slot {
 public:
  struct Part final : spool::RecordWaiter {
    Slot* slot = nullptr;
    int which = 0;  // 0: message record / job batch, 1: job template
    void on_record(Result<spool::RecordBytes> rec) noexcept override;
  };

  Slot(Destination& d, Channel* c, std::vector<queue::QueuedRecipient> r, MsgInfo i)
      : dest(&d), conn(c), rcpts(std::move(r)), info(std::move(i)) {}

  // Decodes the records read into the envelope and rcpt_data; sets read_error when they
  // are not what the index said.
  void decode() noexcept;
  // The bytes to send, unsigned: a job's template expanded for its recipient.
  void compose();
  // A signature of each DKIM key of the From: domain in front of what compose() made, t=
  // the time the message was queued (so every transaction of one message signs the same
  // data, and `cache` can hand out signatures already made). Signing failures send it
  // unsigned (logged).
  void sign(const Signers& signers, SigningCache& cache);
  // What names this transaction's body for the cache: the message, or the job when its
  // body has no per-recipient variables; 0 when the body is its recipient's own.
  std::uint64_t body_key() const noexcept { return body_key_; }

  Destination* dest;
  Channel* conn;  // null: resolved locally, or the connection is gone
  std::optional<LocalFailure> local;
  std::vector<queue::QueuedRecipient> rcpts;
  MsgInfo info;  // batches: only the one needed
  std::uint64_t cookie = 0;
  Part parts[2];
  int reads_pending = 0;
  std::error_code read_error;
  spool::RecordBytes bytes[2];
  // Decoded (views into bytes[]).
  std::string_view reverse_path, envid, job, body_source;
  spool::Ret ret = spool::Ret::Unspecified;
  spool::Source source = spool::Source::Smtp;
  std::uint8_t flags = 0;
  std::vector<RcptData> rcpt_data;  // parallel to rcpts
  std::string expanded;       // jobs: the template expanded for the recipient
  std::string body;           // DKIM signatures + the message, when signed
  std::string_view original;  // the message before signing (a DSN returns it)
  std::string_view send;      // the bytes sent

  std::uint64_t message() const noexcept { return rcpts.front().message; }

 private:
  std::uint64_t body_key_ = 0;

 public:

 private:
  // The envelope fields a Message record and a JobTemplate record share.
  template <class Record>
  void set_envelope(const Record& r, std::string_view from, std::string_view content) {
    reverse_path = from;
    envid = r.envid;
    job = r.job;
    ret = r.ret;
    flags = r.flags;
    source = r.source;
    body_source = content;
    original = content;
  }
  void decode_message();
  void decode_job();
};

}  // namespace salvo::outbound
