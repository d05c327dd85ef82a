// SPDX-License-Identifier: Apache-2.0
// Checkpoint: what a clean stop leaves so the next start need not scan (docs/spool-format.md
// §10). At a clean stop, once the shard's writer has committed its last batch, the shard
// writes DIR/checkpoint: the RecoveryResult a scan of DIR would give (index, deferred
// recipients, next id) and the identity of every segment file, punch note and the id mark it
// describes. The next start takes it instead of recover_segments() only if it is whole (CRC),
// of this format version and shard, and names exactly the files listed at start with the id
// mark then; it is removed durably whatever it held, so it is used at most once. A scan-first
// start takes it before the shard writes anything; a background recovery on its thread, after
// the listeners opened: what the shard writes meanwhile (a newer segment, a moved mark) makes
// a checkpoint a crash left behind stale. Anything else: the scan, as without one. Nothing is
// ever lost because of a checkpoint.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include <salvo/base/result.h>
#include <salvo/spool/recovery.h>
#include <salvo/spool/spool_index.h>

namespace salvo::spool {

// DIR/checkpoint.
std::string checkpoint_path(const std::string& dir);

// Writes DIR/checkpoint durably (a temporary file, fsync, rename over, fsync of DIR): the
// committed entries of `index` with their segments' reclamation bookkeeping, `deferred`
// (the recipients whose last state is Deferred, sorted by message and recipient; others
// are left out), `next_id`, and the identity of the segment files, punch notes and id mark
// in DIR now. Call only when nothing more will be written to DIR by this process: the
// writer idle and about to close (SpoolWriter::checkpoint_written() guards the rest).
[[nodiscard]] Status save_checkpoint(const std::string& dir, std::uint32_t shard,
                                     const SpoolIndex& index,
                                     std::span<const PendingRecipient> deferred,
                                     MessageId next_id);

struct CheckpointLoad {
  CheckpointUse use = CheckpointUse::None;
  std::string why;  // Stale or Bad: what did not match, for the log line
  // Used only: the index, deferred recipients and next ids, as recover_segments() would
  // give them (the report counts segments, bad and quarantined ones, and messages; no
  // pickup claim is kept: a checkpoint is written only with no claimed file left).
  std::optional<RecoveryResult> result;
};

// Takes DIR/checkpoint at start: reads it against `listing` (list_spool() of DIR at start:
// the segments it names must be as they were then, and the id mark it read is the one
// compared; a writer may meanwhile add a newer segment and move the mark on) and removes
// it durably (unlink, fsync of DIR) whatever it held. One that cannot be removed is not used. use false: only removes it
// ([node] checkpoint = false). Never fails: the caller scans unless `use` is Used. Logs the
// outcome: how long a load took, or why one was not used.
[[nodiscard]] CheckpointLoad take_checkpoint(const SpoolListing& listing, bool use);

// Removes DIR/checkpoint (absent is fine) and fsyncs DIR.
[[nodiscard]] Status remove_checkpoint(const std::string& dir);

}  // namespace salvo::spool
