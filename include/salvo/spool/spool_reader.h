// SPDX-License-Identifier: Apache-2.0
// Reading records back by Location: synchronously (pread; spool-dump, tests, start-up) or
// through io::Engine (shard code). Every read is verified (magic, length, CRC32C) before
// the caller sees it; decode the payload with the decode_* functions of records.h.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include <salvo/base/result.h>
#include <salvo/spool/records.h>

namespace salvo::io {
class Engine;
}

namespace salvo::spool {

// A verified record and the bytes its views point into. Movable (vector storage).
// Record storage: a vector whose growth leaves the new bytes uninitialised (a read
// overwrites them at once; zeroing 100 KiB first cost as much as checking it).
template <class T>
struct UninitializedAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = UninitializedAllocator<U>;
  };
  using std::allocator<T>::allocator;
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
using RecordStorage = std::vector<char, UninitializedAllocator<char>>;

struct RecordBytes {
  RecordStorage bytes;
  RawRecord raw;
};

// Diagnostics: errno (ENOENT: the segment was reclaimed), errc::bad_checksum /
// malformed_record when the bytes at loc are not the record.
[[nodiscard]] Result<RecordBytes> read_record(const std::string& dir, Location loc);
// One segment file open for reading records, as read_record() does, through one
// descriptor: recovery's read-back walks a segment's records in order. Movable, closes
// its descriptor.
class SegmentRecords {
 public:
  // Diagnostics: errno of the open (ENOENT: the segment was reclaimed).
  [[nodiscard]] static Result<SegmentRecords> open(const std::string& dir, SegmentSeq seq);
  SegmentRecords(SegmentRecords&& o) noexcept : fd_(std::exchange(o.fd_, -1)), seq_(o.seq_) {}
  SegmentRecords& operator=(SegmentRecords&& o) noexcept;
  ~SegmentRecords();
  // loc must be in this segment. Diagnostics as read_record().
  [[nodiscard]] Result<RecordBytes> read(Location loc) const;
  SegmentSeq segment() const noexcept { return seq_; }

 private:
  SegmentRecords(int fd, SegmentSeq seq) noexcept : fd_(fd), seq_(seq) {}
  int fd_ = -1;
  SegmentSeq seq_{};
};

class ReadWaiter {
 public:
  // rec's payload views into storage that lives only during this call.
  virtual void on_read(Result<RawRecord> rec) noexcept = 0;

 protected:
  ~ReadWaiter() = default;
};

// The same, handing over the bytes: keep them as long as the record's views are used.
class RecordWaiter {
 public:
  virtual void on_record(Result<RecordBytes> rec) noexcept = 0;

 protected:
  ~RecordWaiter() = default;
};

// Owner: one shard; used with that shard's engine (any shard may read any shard's spool:
// committed records never change). Keeps a few segment fds open (an open fd keeps a
// reclaimed segment readable until it is closed); an fd with a read in flight is never
// closed, so the cap may be passed while many segments are read at once.
class SpoolReader {
 public:
  SpoolReader(io::Engine& engine, std::string dir);
  ~SpoolReader();
  SpoolReader(const SpoolReader&) = delete;
  SpoolReader& operator=(const SpoolReader&) = delete;

  // Calls waiter->on_read exactly once, always from engine.run_once() (errors found before
  // reading, e.g. a segment that cannot be opened, come through a zero timer).
  void read(Location loc, ReadWaiter* waiter) noexcept;
  void read(Location loc, RecordWaiter* waiter) noexcept;
  // Closes the cached fds no read is using (an open fd keeps a deleted segment's space).
  void close_idle() noexcept;

 private:
  class ReadOp;
  friend class ReadOp;
  void start(Location loc, ReadOp* op) noexcept;
  Result<int> fd_for(SegmentSeq seq);
  void on_io(ReadOp& op, std::int32_t res) noexcept;

  static constexpr std::size_t kMaxOpenFds = 16;
  io::Engine& engine_;
  std::string dir_;
  std::deque<std::pair<std::uint64_t, int>> fds_;
  std::vector<ReadOp*> in_flight_;
};

}  // namespace salvo::spool
