// SPDX-License-Identifier: Apache-2.0
// The IO half of pickup-directory intake (here because inbound may not use io): a DirectoryWatch
// (inotify on the directory plus a periodic tick for rescans), DirectorySync (fsync of the
// directory that claimed files are renamed into) and FileRead (one chunk of a file at a
// time), all through the shard's io::Engine. Claiming, parsing, queueing and the failed/
// directory are the caller's (inbound::PickupWatcher).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include <salvo/base/clock.h>
#include <salvo/base/result.h>
#include <salvo/io/detachable_op.h>

namespace salvo::io {
class Engine;
}

namespace salvo::spool {

// Owner: one shard. Lifecycle: start(), then stop() before destruction (cancels the
// inotify read and the timer; their final completions free the op objects, so let the
// engine run a few more times after destroying it).
class DirectoryWatch {
 public:
  class Listener {
   public:
    // A file appeared: renamed in (IN_MOVED_TO) or closed after writing (IN_CLOSE_WRITE).
    virtual void on_name(std::string_view name) noexcept = 0;
    // The kernel dropped events (IN_Q_OVERFLOW) or inotify failed: rescan the directory.
    virtual void on_overflow() noexcept = 0;
    // Every `tick`: the periodic rescan.
    virtual void on_tick() noexcept = 0;

   protected:
    ~Listener() = default;
  };

  DirectoryWatch(io::Engine& engine, Listener& listener);
  ~DirectoryWatch();
  DirectoryWatch(const DirectoryWatch&) = delete;
  DirectoryWatch& operator=(const DirectoryWatch&) = delete;

  [[nodiscard]] Status start(const std::string& dir, Duration tick);
  void stop() noexcept;

 private:
  void arm_events() noexcept;
  void arm_tick() noexcept;
  void on_events(std::int32_t res) noexcept;
  void on_tick(std::int32_t res) noexcept;
  using EventsOp =
      io::DetachableOp<DirectoryWatch, &DirectoryWatch::on_events, std::array<char, 16 * 1024>>;
  using TickOp = io::DetachableOp<DirectoryWatch, &DirectoryWatch::on_tick>;

  io::Engine& engine_;
  Listener& listener_;
  int fd_ = -1;
  Duration tick_{};
  EventsOp* events_ = nullptr;
  TickOp* tick_op_ = nullptr;
  bool stopped_ = false;
};

// Makes the names renamed into one directory durable before anything relies on them (a
// pickup claim, before the commit that records it): an fsync of the directory through the
// engine. Changes are numbered (changed(), after each rename into it) and sync() asks for
// them to be made durable: one fsync covers every change numbered before it started, and a
// sync() while one runs starts another when it ends. Owner: one shard. Destroying it while
// an fsync runs is fine: the op frees itself at its completion (let the engine run a few
// more times).
class DirectorySync {
 public:
  class Listener {
   public:
    // An fsync ended: every change up to `upto` is durable, or, on an error, may not be.
    virtual void on_synced(std::uint64_t upto, Status status) noexcept = 0;

   protected:
    ~Listener() = default;
  };

  // dir_fd stays the caller's and must outlive this object.
  DirectorySync(io::Engine& engine, int dir_fd, Listener& listener);
  ~DirectorySync();
  DirectorySync(const DirectorySync&) = delete;
  DirectorySync& operator=(const DirectorySync&) = delete;

  // The number of a change just made.
  std::uint64_t changed() noexcept { return ++changes_; }
  void sync() noexcept;

 private:
  void on_fsync(std::int32_t res) noexcept;
  using SyncOp = io::DetachableOp<DirectorySync, &DirectorySync::on_fsync>;

  io::Engine& engine_;
  int fd_;
  Listener& listener_;
  SyncOp* op_;
  std::uint64_t changes_ = 0;
  std::uint64_t covering_ = 0;  // the newest change the running fsync covers
  bool again_ = false;          // sync() was called while it ran
};

// One read at a time from a file through the engine. Owner: one shard. The object must
// outlive its read: destroy it only when !busy() (reads are never cancelled).
class FileRead {
 public:
  class Done {
   public:
    // res: bytes read (0 = end of file) or -errno.
    virtual void on_read(std::int32_t res) noexcept = 0;

   protected:
    ~Done() = default;
  };

  FileRead(io::Engine& engine, Done& done);
  ~FileRead();
  FileRead(const FileRead&) = delete;
  FileRead& operator=(const FileRead&) = delete;

  void read(int fd, std::span<char> into, std::uint64_t offset) noexcept;
  bool busy() const noexcept;

 private:
  class Op;
  io::Engine& engine_;
  Op* op_;
};

}  // namespace salvo::spool
