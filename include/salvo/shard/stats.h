// SPDX-License-Identifier: Apache-2.0
// Per-shard counters of the loop and the mailboxes: plain integers,
// written by the owning shard only, summed across shards with operator+=.
#pragma once

#include <cstdint>

#include <salvo/base/strong_id.h>

namespace salvo::shard {

using ShardId = StrongId<struct ShardTag, std::uint32_t>;

struct Stats {
  std::uint64_t loop_iterations = 0;
  std::uint64_t sleeps = 0;            // run_once calls that were allowed to block
  std::uint64_t wakeups = 0;           // wakes received from other shards or threads
  std::uint64_t deferred_tasks = 0;
  std::uint64_t mailbox_sent = 0;      // messages this shard sent (ring or overflow)
  std::uint64_t mailbox_received = 0;  // messages this shard handled
  std::uint64_t mailbox_overflows = 0; // sends that found the ring full (kept locally)
  std::uint64_t mailbox_wakes_sent = 0;
  std::uint64_t mailbox_wakes_skipped = 0;  // the target was known awake
  // Reads of SMTP injection connections (data arrived): the DKIM signing stage gives way
  // to intake while it grows (outbound/signing_pace.h).
  std::uint64_t intake_reads = 0;

  Stats& operator+=(const Stats& o) noexcept {
    loop_iterations += o.loop_iterations;
    sleeps += o.sleeps;
    wakeups += o.wakeups;
    deferred_tasks += o.deferred_tasks;
    mailbox_sent += o.mailbox_sent;
    mailbox_received += o.mailbox_received;
    mailbox_overflows += o.mailbox_overflows;
    mailbox_wakes_sent += o.mailbox_wakes_sent;
    mailbox_wakes_skipped += o.mailbox_wakes_skipped;
    intake_reads += o.intake_reads;
    return *this;
  }
};

}  // namespace salvo::shard
