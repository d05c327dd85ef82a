// SPDX-License-Identifier: Apache-2.0
// Writer: one shard's accounting lines, formatted into a buffer and written on the shard's
// io::Engine with one write in flight (O_APPEND, offset -1: "current position", which for
// O_APPEND is the end of the file; io_uring_prep_write passes it through).
//
//   append() --> buffer --(size | timer | flush)--> in_flight --engine.write--> file
//
// Everything lives in a heap Core so the write and timer Completions survive the Writer
// when it is destroyed with work outstanding (a Completion lives until its
// last call); the Core frees itself on its last completion.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <salvo/accounting/accounting.h>
#include <salvo/base/assert.h>
#include <salvo/base/log.h>
#include <salvo/io/engine.h>

namespace salvo::accounting {
namespace {

// accounting.h: lines are dropped once this many buffer_bytes wait behind a slow write.
constexpr std::size_t kMaxBufferedFactor = 64;
// A buffer keeps its capacity between writes unless a burst left it this much too large.
constexpr std::size_t kShrinkFactor = 4;

// The io_uring offset meaning "the file position" (IORING_FEAT_RW_CUR_POS, Linux 5.6);
// with O_APPEND every write lands at the end of the file whatever the offset.
constexpr std::uint64_t kCurrentPosition = ~std::uint64_t{0};
// One write carries at most this much (engines take 32-bit lengths); the rest follows as
// after a short write.
constexpr std::size_t kMaxWriteBytes = std::size_t{1} << 30;

std::uint64_t count_lines(std::string_view s) {
  return static_cast<std::uint64_t>(std::count(s.begin(), s.end(), '\n'));
}

}  // namespace

struct Writer::Core {
  class WriteOp final : public io::Completion {
   public:
    explicit WriteOp(Core& c) : core(c) {}
    void on_complete(std::int32_t res, std::uint32_t) noexcept override { core.on_written(res); }
    Core& core;
  };
  class TimerOp final : public io::Completion {
   public:
    explicit TimerOp(Core& c) : core(c) {}
    void on_complete(std::int32_t res, std::uint32_t) noexcept override { core.on_timer(res); }
    Core& core;
  };

  Core(io::Engine& e, const Clock& c, Files& f, WriterOptions o)
      : engine(e), clock(c), files(f), options(o) {
    options.buffer_bytes = std::max<std::size_t>(options.buffer_bytes, 1);
    max_buffered = kMaxBufferedFactor * options.buffer_bytes;
    buffer.reserve(options.buffer_bytes + 4096);
  }
  ~Core() {
    if (fd >= 0) ::close(fd);
  }

  void append(const Event& ev);
  void flush() noexcept;
  void detach() noexcept;
  bool idle() const noexcept { return buffer.empty() && !writing && !timer_armed; }

  void start_write() noexcept;
  void submit() noexcept;
  void on_written(std::int32_t res) noexcept;
  void on_timer(std::int32_t res) noexcept;
  void arm_timer() noexcept;
  // Tells the room waiters once the buffer is down to half the bound; keeps them waiting
  // on a write or the timer otherwise.
  void tell_room() noexcept {
    if (room_waiters.empty() || detached) return;
    if (buffer.size() > max_buffered / 2) {
      if (!writing && !timer_armed) arm_timer();
      return;
    }
    std::vector<RoomWaiter*> told;
    told.swap(room_waiters);
    for (RoomWaiter* w : told) w->on_room();  // may append: a write or the timer follows
  }
  void reopen_if_rotated() noexcept;
  void fail_in_flight(std::int32_t res) noexcept;
  void release_in_flight() noexcept;
  // Last step of every completion: frees the Core once the Writer is gone and no op is
  // outstanding. Nothing may touch *this after it.
  void maybe_free() noexcept {
    if (detached && !writing && !timer_armed) delete this;
  }

  io::Engine& engine;
  const Clock& clock;
  Files& files;
  WriterOptions options;
  std::size_t max_buffered = 0;
  int fd = -1;
  std::uint64_t generation = 0;
  std::string buffer;     // lines not yet handed to the engine
  std::string in_flight;  // the lines of the write in flight; [0, done) are on disk
  std::size_t done = 0;
  bool writing = false;
  bool timer_armed = false;  // the timer op is outstanding (maybe being cancelled)
  bool cancel_sent = false;
  bool flush_due = false;    // write buffer as soon as no write is in flight
  std::vector<RoomWaiter*> room_waiters;  // told once the buffer is down to half the bound
  bool detached = false;     // the Writer is gone
  bool error_burst = false;  // a write error was logged; cleared by the next success
  bool drop_burst = false;   // a full buffer was logged; cleared once it drains
  WriterStats stats;
  WriteOp write_op{*this};
  TimerOp timer_op{*this};
};

void Writer::Core::append(const Event& ev) {
  if (buffer.size() >= max_buffered) {
    ++stats.dropped;
    if (!drop_burst) {
      log::error("accounting: writes to {} are too slow; dropping lines ({} bytes waiting)",
                 files.current_path(), buffer.size());
      drop_burst = true;
    }
    return;
  }
  format_line(ev, buffer);
  ++stats.events;
  if (buffer.size() >= options.buffer_bytes || options.flush_interval <= Duration::zero()) {
    flush_due = true;
  }
  if (flush_due) {
    if (!writing) start_write();
  } else if (!timer_armed) {
    arm_timer();
  }
}

void Writer::Core::flush() noexcept {
  if (!buffer.empty()) {
    flush_due = true;
    if (!writing) start_write();
  }
  // Nothing is left for the timer to do; cancel it so idle() can become true.
  if (timer_armed && !cancel_sent) {
    engine.cancel(&timer_op);
    cancel_sent = true;
  }
}

void Writer::Core::detach() noexcept {
  detached = true;
  flush();
  maybe_free();
}

void Writer::Core::arm_timer() noexcept {
  SALVO_ASSERT(!timer_armed);
  timer_armed = true;
  engine.timeout(options.flush_interval, &timer_op);
}

void Writer::Core::on_timer(std::int32_t res) noexcept {
  timer_armed = false;
  cancel_sent = false;
  if (!detached && !buffer.empty() && !flush_due) {
    if (res == -ECANCELED) {
      arm_timer();  // cancelled by flush(), and lines arrived since: time them afresh
    } else {
      flush_due = true;
      if (!writing) start_write();
    }
  }
  tell_room();
  maybe_free();
}

void Writer::Core::reopen_if_rotated() noexcept {
  if (fd >= 0 && files.generation() == generation) return;
  std::uint64_t gen = 0;
  Result<int> r = files.open_current(&gen);
  if (!r) {
    // Keep the old descriptor if there is one: lines then land in the rotated file,
    // which beats losing them.
    if (!error_burst) {
      log::error("accounting: cannot open {}: {}", files.current_path(), r.error().message());
      error_burst = true;
    }
    return;
  }
  if (fd >= 0) {
    ::close(fd);
    ++stats.reopened;
  }
  fd = *r;
  generation = gen;
}

void Writer::Core::start_write() noexcept {
  SALVO_ASSERT(!writing && !buffer.empty());
  (void)files.maybe_rotate();  // once per write, not per line; cheap when not due
  reopen_if_rotated();
  flush_due = false;
  if (fd < 0) {
    stats.write_errors += count_lines(buffer);
    buffer.clear();
    return;
  }
  in_flight.swap(buffer);
  done = 0;
  if (buffer.size() < max_buffered) drop_burst = false;
  submit();
}

void Writer::Core::submit() noexcept {
  writing = true;
  std::string_view rest = std::string_view(in_flight).substr(done, kMaxWriteBytes);
  engine.write(fd, std::span<const char>(rest.data(), rest.size()), kCurrentPosition, &write_op);
}

void Writer::Core::release_in_flight() noexcept {
  in_flight.clear();
  if (in_flight.capacity() > kShrinkFactor * options.buffer_bytes + 4096) {
    std::string().swap(in_flight);
  }
  done = 0;
}

void Writer::Core::fail_in_flight(std::int32_t res) noexcept {
  std::uint64_t lost = count_lines(std::string_view(in_flight).substr(done));
  stats.write_errors += lost;
  if (!error_burst) {
    log::error("accounting: write to {} failed: {}; {} lines lost (later failures are only "
               "counted until a write succeeds)",
               files.current_path(), std::strerror(-res), lost);
    error_burst = true;
  }
  // The descriptor may be what is broken (EBADF, EIO): take a fresh one next time.
  ::close(fd);
  fd = -1;
  release_in_flight();
}

void Writer::Core::on_written(std::int32_t res) noexcept {
  writing = false;
  if (res == -EINTR || res == -EAGAIN) {
    submit();
    return;
  }
  if (res <= 0) {
    // 0 bytes for a non-empty write would repeat forever: treat it as an IO error.
    fail_in_flight(res == 0 ? -EIO : res);
  } else {
    done += static_cast<std::size_t>(res);
    stats.bytes_written += static_cast<std::uint64_t>(res);
    ++stats.writes;
    if (done < in_flight.size()) {
      // Short write (ENOSPC on the way, a signal): continue with the rest. Another
      // shard's line may land in between, so the split line may read as two bad lines;
      // on a local file system a regular-file append is normally whole.
      submit();
      return;
    }
    error_burst = false;
    release_in_flight();
  }
  if (!buffer.empty()) {
    if (flush_due || buffer.size() >= options.buffer_bytes) {
      start_write();
    } else if (!timer_armed && !detached) {
      arm_timer();
    }
  }
  tell_room();
  maybe_free();
}

Writer::Writer(io::Engine& engine, const Clock& clock, Files& files, WriterOptions o)
    : core_(new Core(engine, clock, files, o)) {}

Writer::~Writer() {
  owner_.check();
  core_->detach();  // may free it at once
}

void Writer::append(const Event& ev) {
  owner_.check();
  core_->append(ev);
}

void Writer::flush() noexcept {
  owner_.check();
  core_->flush();
}

bool Writer::idle() const noexcept { return core_->idle(); }

bool Writer::has_room(std::size_t bytes) const noexcept {
  return core_->buffer.size() + bytes <= core_->max_buffered;
}

void Writer::wait_for_room(RoomWaiter* w) noexcept {
  owner_.check();
  Core& c = *core_;
  c.room_waiters.push_back(w);
  // A completion must come to tell it: a write, or else the timer.
  if (!c.writing && !c.buffer.empty()) c.start_write();
  if (!c.writing && !c.timer_armed && !c.detached) c.arm_timer();
}

void Writer::cancel_wait(RoomWaiter* w) noexcept {
  owner_.check();
  std::erase(core_->room_waiters, w);
}

const WriterStats& Writer::stats() const noexcept { return core_->stats; }

}  // namespace salvo::accounting
