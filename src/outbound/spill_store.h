// SPDX-License-Identifier: Apache-2.0
// SpillStore: where a shard's destinations put the queued recipients they need not hold in
// RAM (ready ones beyond [delivery] queue_in_memory, deferred ones due after
// queue_horizon). A recipient on disk is a self-contained 72-byte SpillEntry (what an
// Enqueue carries but the domain), written in chunks appended to the shard's spill files;
// a destination keeps only the SpillChunk handles (file, offset, count, earliest due), so
// its RAM is O(chunks), not O(recipients).
//
// Not the source of truth: the spool is. Nothing is synced; the directory is wiped when
// the store opens (recovery routes everything from the spool again) and when it closes.
// A chunk is read once: reading it frees it, and a file whose chunks are all read is
// removed (the file being appended to is truncated instead). A write that fails leaves the
// recipients in RAM; a read that fails loses them from the queue until the next start
// routes them from the spool again (counted, logged).
//
// IO is plain pwrite/pread on the shard thread, a chunk (at most kMaxChunk entries,
// 320 KiB) at a time: a write when a destination's buffer fills (one per chunk of
// arrivals or far deferrals), reads from its pump; not io_uring.
//
// Owner: one shard (DestinationSide). Unit tests: tests/unit/outbound/spill_test.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <salvo/base/clock.h>
#include <salvo/base/result.h>
#include <salvo/spool/packed_location.h>

namespace salvo::outbound {

// One queued recipient on disk: everything needed to queue it again.
struct SpillEntry {
  std::uint64_t message = 0;
  std::uint32_t recipient = 0;
  std::uint32_t attempts = 0;
  std::int64_t next_attempt_unix_ns = 0;  // 0: due now
  std::int64_t received_unix_ns = 0;
  std::uint32_t origin = 0;
  std::uint32_t index_in_record = 0;  // jobs: the recipient's place in its batch record
  spool::PackedLocation record;       // the Message record, or the job batch holding it
  spool::PackedLocation job_template;  // jobs only
  std::uint32_t is_job = 0;
  std::uint32_t reserved = 0;
};
static_assert(sizeof(SpillEntry) == 80);

// A chunk on disk, as its destination keeps it.
struct SpillChunk {
  std::uint64_t offset = 0;
  std::uint32_t file = 0;
  std::uint32_t count = 0;
  WallTime earliest = WallTime::max();  // the earliest next attempt in it (deferred chunks)
};

class SpillStore {
 public:
  static constexpr std::size_t kMaxChunk = 4096;
  // A file is closed for appends past this size; it is removed once all its chunks are read.
  static constexpr std::uint64_t kFileBytes = std::uint64_t{64} << 20;

  // Opens `dir` (made if missing) after removing whatever an earlier run left there.
  [[nodiscard]] static Result<std::unique_ptr<SpillStore>> open(std::string dir);
  ~SpillStore();
  SpillStore(const SpillStore&) = delete;
  SpillStore& operator=(const SpillStore&) = delete;

  // Appends a chunk (1 to kMaxChunk entries); nullopt when the write failed (logged).
  [[nodiscard]] std::optional<SpillChunk> write(std::span<const SpillEntry> entries) noexcept;
  // Reads a chunk back and frees it; an error when it could not be read whole (logged).
  [[nodiscard]] Result<std::vector<SpillEntry>> read(const SpillChunk& c) noexcept;
  // Frees a chunk without reading it.
  void drop(const SpillChunk& c) noexcept;

  std::uint64_t recipients() const noexcept { return recipients_; }  // in chunks not read
  std::uint64_t bytes() const noexcept { return bytes_; }            // in files on disk
  std::uint64_t chunks_written() const noexcept { return chunks_written_; }
  std::uint64_t chunks_read() const noexcept { return chunks_read_; }
  std::uint64_t errors() const noexcept { return errors_; }
  const std::string& dir() const noexcept { return dir_; }

 private:
  struct File {
    int fd = -1;
    std::uint64_t size = 0;
    std::uint32_t live = 0;  // chunks not yet read
  };
  explicit SpillStore(std::string dir) : dir_(std::move(dir)) {}
  std::string path(std::uint32_t file) const;
  File* current() noexcept;
  void release(std::uint32_t file, std::uint32_t count) noexcept;
  void close_file(std::uint32_t file) noexcept;

  std::string dir_;
  std::vector<File> files_;  // by number; a removed one keeps its place with fd -1
  std::uint32_t current_ = 0;
  bool have_current_ = false;
  std::uint64_t recipients_ = 0;
  std::uint64_t bytes_ = 0;
  std::uint64_t chunks_written_ = 0;
  std::uint64_t chunks_read_ = 0;
  std::uint64_t errors_ = 0;
};

}  // namespace salvo::outbound
