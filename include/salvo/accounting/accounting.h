// SPDX-License-Identifier: Apache-2.0
// The accounting log: one JSON line per recipient event in
// LOG_DIR/accounting.jsonl, written by every shard through its own io::Engine, rotated by
// size and age. Lines are whole: each write carries complete lines only, on an O_APPEND
// descriptor, so the shards' lines never interleave inside a line.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <salvo/base/clock.h>
#include <salvo/base/result.h>
#include <salvo/shard/owned_by.h>

namespace salvo::io {
class Engine;
}

namespace salvo::accounting {

enum class EventType : std::uint8_t { Received, Delivered, Deferred, Bounced, Expired, Dsn };
std::string_view to_string(EventType t) noexcept;  // "received", "delivered", ...

// One event. Views must stay valid only for the duration of Writer::append (it formats
// at once). Empty strings and the "unset" sentinels are left out of the line.
struct Event {
  EventType type = EventType::Received;
  std::int64_t ts_unix_ns = 0;   // "ts": RFC 3339 UTC with milliseconds
  std::string_view id;           // message id as shown to users ("00000000000abcde")
  std::string_view from;         // envelope sender ("" for the null sender: written as "")
  std::string_view rcpt;
  std::string_view domain;       // recipient domain (as routed)
  std::string_view mx;           // delivery attempts
  std::string_view ip;
  int code = 0;                  // SMTP reply code; 0 = unset
  std::string_view enhanced;     // "5.1.1"
  std::string_view response;     // reply text (control characters escaped)
  std::uint32_t attempt = 0;     // 0 = unset
  std::string_view tls;          // "TLSv1.3" / "" (none)
  std::string_view tls_policy;   // attempts: "none", "opportunistic", "verified", "mta-sts",
                                 // "dane", or the failure ("verify-failed: ...")
  std::uint64_t size = 0;        // message size in bytes; 0 = unset
  double queued_s = -1;          // seconds since received; < 0 = unset
  std::string_view source;       // "smtp" | "pickup" | "http" | "dsn"
  std::string_view job;
  std::string_view category;     // bounces: config::kBounceCategories
};

// Appends ev as one JSON object and '\n' to out (RFC 8259; strings escaped, invalid UTF-8
// replaced by U+FFFD so every line parses). Always "ts", "type", "id"; "from" whenever
// the type is received/delivered/bounced/expired/dsn (the null sender as ""); the rest
// only when set.
void format_line(const Event& ev, std::string& out);

struct RotateOptions {
  std::uint64_t max_bytes = 1ull << 30;  // rotate when the file reaches this size; 0 = never
  Duration max_age = std::chrono::hours(24);  // and when it is this old; 0 = never
};

// The node's accounting file: shared by every shard's Writer (thread-safe). Rotation
// renames accounting.jsonl to accounting-YYYYMMDDTHHMMSS[-N].jsonl and opens a new one;
// writers notice through generation() and reopen. Lifecycle: open() at start-up before
// the shards, destroyed after they joined.
class Files {
 public:
  // Creates dir if needed and opens (O_APPEND|O_CREAT) dir/accounting.jsonl.
  [[nodiscard]] static Result<std::unique_ptr<Files>> open(std::string dir, RotateOptions o,
                                                           const Clock& clock);
  ~Files();
  Files(const Files&) = delete;
  Files& operator=(const Files&) = delete;

  const std::string& dir() const noexcept { return dir_; }
  std::string current_path() const;
  // Bumped by each rotation; a writer holding an older one takes open_current() again.
  std::uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }
  // Rotates if size or age says so (any thread; cheap when nothing is due: one fstat at
  // most every second). Returns true when it rotated.
  bool maybe_rotate();
  // Rotates now (salvoctl / tests). Error: rename or open failed (old file kept in use).
  [[nodiscard]] Status rotate();
  // For Writer: a new descriptor (O_APPEND, CLOEXEC; the caller closes it) of the current
  // file and, in *generation, the generation it belongs to, taken under one lock so the
  // pair is consistent. Error: dup failed (EMFILE).
  [[nodiscard]] Result<int> open_current(std::uint64_t* generation);

 private:
  Files(std::string dir, RotateOptions o, const Clock& clock);
  bool due_locked(TimePoint now);
  Status rotate_locked();

  std::string dir_;
  RotateOptions options_;
  const Clock& clock_;
  std::mutex mu_;
  int fd_ = -1;  // the current file; writers hold dups of it
  TimePoint opened_{};
  bool rotate_failing_ = false;  // log a failing rotation once, not every second
  std::string last_base_;        // the last rotated name without suffix, and its suffix:
  int last_suffix_ = -1;         // many rotations in one second do not probe -1, -2, ...
  std::atomic<TimePoint::rep> next_check_{0};  // maybe_rotate() returns at once before it
  std::atomic<std::uint64_t> generation_{0};
};

struct WriterOptions {
  std::size_t buffer_bytes = 256 * 1024;  // a write starts when this much is buffered
  Duration flush_interval = std::chrono::milliseconds(100);  // ... or this old
};

struct WriterStats {
  std::uint64_t events = 0;
  std::uint64_t bytes_written = 0;
  std::uint64_t writes = 0;
  std::uint64_t write_errors = 0;  // lines lost to a failed write (logged, counted)
  std::uint64_t dropped = 0;       // lines refused because the buffer was full (slow disk)
  std::uint64_t reopened = 0;
};

// Told when a Writer has room again (Writer::wait_for_room).
class RoomWaiter {
 public:
  virtual void on_room() noexcept = 0;

 protected:
  ~RoomWaiter() = default;
};

// Owner: one shard (all calls on its thread, on its engine). append() formats into a
// buffer; writes go out on the engine (one in flight; the rest waits in a second
// buffer). Accounting is a record, not the durability boundary: no fsync per line; a
// crash may lose the last flush_interval of lines (the spool still has the states).
// Lifecycle: destroy once idle() (after flush()) on the same shard; bounded memory: if a
// write is slow and the buffer passes 64 × buffer_bytes, new lines are dropped and counted.
// State and the in-flight ops live in a heap block: destroyed while not idle, the Writer
// hands that block its remaining lines, and it frees itself after its last completion
// (the engine must keep running until then, or the block leaks).
class Writer {
 public:
  Writer(io::Engine& engine, const Clock& clock, Files& files, WriterOptions o = {});
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  void append(const Event& ev);
  void flush() noexcept;        // start writing what is buffered now
  bool idle() const noexcept;   // nothing buffered, nothing in flight, no timer armed
  // Producers that can wait (a job's read-back of its recipients) pace themselves so no
  // line is dropped: has_room(bytes) says whether `bytes` more fit under the bound now;
  // wait_for_room(w) calls w->on_room() once, from a write's completion, when the buffer
  // has drained to half the bound (never from inside this call). A waiter must outlive
  // its call or be cancelled (cancel_wait) first.
  bool has_room(std::size_t bytes) const noexcept;
  void wait_for_room(RoomWaiter* w) noexcept;
  void cancel_wait(RoomWaiter* w) noexcept;
  const WriterStats& stats() const noexcept;

 private:
  struct Core;  // src/accounting/writer.cc

  shard::OwnedBy owner_;
  Core* core_;  // owned; outlives *this only when destroyed while not idle
};

}  // namespace salvo::accounting
