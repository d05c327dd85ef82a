// SPDX-License-Identifier: Apache-2.0
// DirectoryWatch (inotify + tick), DirectorySync and FileRead over io::Engine.
#include <salvo/spool/pickup_io.h>

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <salvo/base/assert.h>
#include <salvo/base/log.h>
#include <salvo/io/engine.h>

namespace salvo::spool {

DirectoryWatch::DirectoryWatch(io::Engine& engine, Listener& listener)
    : engine_(engine), listener_(listener) {}

DirectoryWatch::~DirectoryWatch() {
  stop();
  if (events_ != nullptr) events_->release(engine_);
  if (tick_op_ != nullptr) tick_op_->release(engine_);
  if (fd_ >= 0) ::close(fd_);
}

Status DirectoryWatch::start(const std::string& dir, Duration tick) {
  // Blocking fd: io_uring waits for events (a non-blocking one could spin on -EAGAIN).
  fd_ = ::inotify_init1(IN_CLOEXEC);
  if (fd_ < 0) return fail_errno(errno);
  if (::inotify_add_watch(fd_, dir.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR) < 0) {
    return fail_errno(errno);
  }
  tick_ = tick;
  events_ = new EventsOp(this);
  tick_op_ = new TickOp(this);
  arm_events();
  arm_tick();
  return {};
}

void DirectoryWatch::stop() noexcept {
  if (stopped_) return;
  stopped_ = true;
  if (events_ != nullptr && events_->armed()) engine_.cancel(events_);
  if (tick_op_ != nullptr && tick_op_->armed()) engine_.cancel(tick_op_);
}

void DirectoryWatch::arm_events() noexcept {
  events_->arm();
  engine_.read(fd_, std::span<char>(events_->payload()), 0, events_);
}

void DirectoryWatch::arm_tick() noexcept {
  tick_op_->arm();
  engine_.timeout(tick_, tick_op_);
}

void DirectoryWatch::on_events(std::int32_t res) noexcept {
  if (stopped_) return;
  if (res < 0) {
    if (res != -EAGAIN && res != -EINTR) {
      log::warn("pickup: inotify read: {}; relying on rescans", std::strerror(-res));
      listener_.on_overflow();
      return;  // the tick keeps the directory covered
    }
  } else {
    const char* p = events_->payload().data();
    const char* end = p + res;
    while (p + sizeof(inotify_event) <= end) {
      inotify_event ev;
      std::memcpy(&ev, p, sizeof ev);
      if (ev.mask & IN_Q_OVERFLOW) {
        listener_.on_overflow();
      } else if (ev.len > 0 && p + sizeof(inotify_event) + ev.len <= end) {
        const char* name = p + sizeof(inotify_event);
        listener_.on_name(std::string_view(name, ::strnlen(name, ev.len)));
      }
      p += sizeof(inotify_event) + ev.len;
    }
  }
  if (!stopped_) arm_events();
}

void DirectoryWatch::on_tick(std::int32_t) noexcept {
  if (stopped_) return;
  listener_.on_tick();
  if (!stopped_) arm_tick();
}

// ---- DirectorySync -----------------------------------------------------------------------

DirectorySync::DirectorySync(io::Engine& engine, int dir_fd, Listener& listener)
    : engine_(engine), fd_(dir_fd), listener_(listener), op_(new SyncOp(this)) {}

DirectorySync::~DirectorySync() { op_->release(engine_); }

void DirectorySync::sync() noexcept {
  if (op_->armed()) {
    again_ = true;  // changes made since it started are not covered
    return;
  }
  covering_ = changes_;
  op_->arm();
  engine_.fsync(fd_, op_);
}

void DirectorySync::on_fsync(std::int32_t res) noexcept {
  const std::uint64_t upto = covering_;
  if (again_) {
    again_ = false;
    sync();
  }
  Status status;
  if (res < 0) status = std::unexpected(io::to_error_code(res));
  listener_.on_synced(upto, status);
}

// ---- FileRead ----------------------------------------------------------------------------

class FileRead::Op final : public io::Completion {
 public:
  explicit Op(Done& d) : done(d) {}
  void on_complete(std::int32_t res, std::uint32_t) noexcept override {
    busy = false;
    done.on_read(res);
  }
  Done& done;
  bool busy = false;
};

FileRead::FileRead(io::Engine& engine, Done& done) : engine_(engine), op_(new Op(done)) {}

FileRead::~FileRead() {
  SALVO_ASSERT(!op_->busy);
  delete op_;
}

void FileRead::read(int fd, std::span<char> into, std::uint64_t offset) noexcept {
  SALVO_ASSERT(!op_->busy);
  op_->busy = true;
  engine_.read(fd, into, offset, op_);
}

bool FileRead::busy() const noexcept { return op_->busy; }

}  // namespace salvo::spool
