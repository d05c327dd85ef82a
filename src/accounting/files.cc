// SPDX-License-Identifier: Apache-2.0
// Files: the node's accounting.jsonl and its rotation. Writers never open the path: they
// dup the descriptor held here (open_current), so a rotation (new file created under a
// temporary name, current renamed away, new one renamed into place, generation bumped,
// all under one lock) can never leave a writer on an unlinked or half-made file.
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <string>
#include <system_error>

#include <fmt/format.h>

#include <salvo/accounting/accounting.h>
#include <salvo/base/log.h>

namespace salvo::accounting {
namespace {

// maybe_rotate() looks at the file at most this often (one fstat).
constexpr Duration kCheckInterval = std::chrono::seconds(1);
constexpr int kOpenFlags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC;
constexpr int kMaxSuffix = 10000;

std::string rotated_base(const std::string& dir, WallTime wall) {
  std::time_t t = std::chrono::system_clock::to_time_t(wall);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char stamp[32];
  std::size_t n = std::strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
  return dir + "/accounting-" + std::string(stamp, n);
}

// rename(2) that never replaces `to`: RENAME_NOREPLACE, or a check first on file systems
// without it (a single process rotates, under Files::mu_, so the check is not racy here).
int rename_noreplace(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS) return -1;
  if (::access(to.c_str(), F_OK) == 0) {
    errno = EEXIST;
    return -1;
  }
  return ::rename(from.c_str(), to.c_str());
}

}  // namespace

Files::Files(std::string dir, RotateOptions o, const Clock& clock)
    : dir_(std::move(dir)), options_(o), clock_(clock) {}

Files::~Files() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<Files>> Files::open(std::string dir, RotateOptions o,
                                           const Clock& clock) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return std::unexpected(ec);
  std::unique_ptr<Files> f(new Files(std::move(dir), o, clock));
  f->fd_ = ::open(f->current_path().c_str(), kOpenFlags, 0644);
  if (f->fd_ < 0) return fail_errno(errno);
  // A file left by the previous run ages from now: its birth time is not portable, and
  // the clock may be a test clock.
  f->opened_ = clock.now();
  f->next_check_.store((f->opened_ + kCheckInterval).time_since_epoch().count(),
                       std::memory_order_relaxed);
  return f;
}

std::string Files::current_path() const { return dir_ + "/accounting.jsonl"; }

Result<int> Files::open_current(std::uint64_t* generation) {
  std::lock_guard lk(mu_);
  int fd = ::fcntl(fd_, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return fail_errno(errno);
  *generation = generation_.load(std::memory_order_relaxed);
  return fd;
}

bool Files::due_locked(TimePoint now) {
  struct stat st{};
  if (::fstat(fd_, &st) != 0) return false;
  bool old = options_.max_age > Duration::zero() && now - opened_ >= options_.max_age;
  if (st.st_size == 0) {
    // Nothing to rotate: restart the age so a quiet node does not produce empty files,
    // nor rotate away its first line after a long pause.
    if (old) opened_ = now;
    return false;
  }
  bool big = options_.max_bytes != 0 && static_cast<std::uint64_t>(st.st_size) >= options_.max_bytes;
  return big || old;
}

bool Files::maybe_rotate() {
  if (options_.max_bytes == 0 && options_.max_age <= Duration::zero()) return false;
  // Lock-free early out: the common call finds the next check still in the future.
  if (clock_.now().time_since_epoch().count() < next_check_.load(std::memory_order_relaxed)) {
    return false;
  }
  std::lock_guard lk(mu_);
  TimePoint now = clock_.now();
  if (now.time_since_epoch().count() < next_check_.load(std::memory_order_relaxed)) return false;
  next_check_.store((now + kCheckInterval).time_since_epoch().count(), std::memory_order_relaxed);
  if (!due_locked(now)) return false;
  Status st = rotate_locked();
  if (!st) {
    if (!rotate_failing_) {
      log::error("accounting: cannot rotate {}: {} (keeps appending; retried every {}s)",
                 current_path(), st.error().message(),
                 std::chrono::duration_cast<std::chrono::seconds>(kCheckInterval).count());
    }
    rotate_failing_ = true;
    return false;
  }
  rotate_failing_ = false;
  return true;
}

Status Files::rotate() {
  std::lock_guard lk(mu_);
  return rotate_locked();
}

Status Files::rotate_locked() {
  const std::string cur = current_path();
  const std::string tmp = dir_ + "/.accounting.jsonl.new";
  int nfd = ::open(tmp.c_str(), kOpenFlags | O_TRUNC, 0644);
  if (nfd < 0) return fail_errno(errno);
  auto undo = [&](int err) {
    ::close(nfd);
    ::unlink(tmp.c_str());
    return fail_errno(err);
  };

  const std::string base = rotated_base(dir_, clock_.wall_now());
  std::string target;
  bool moved = false;
  bool missing = false;
  int n = base == last_base_ ? last_suffix_ + 1 : 0;
  for (; n < kMaxSuffix && !moved && !missing; ++n) {
    target = n == 0 ? base + ".jsonl" : fmt::format("{}-{}.jsonl", base, n);
    if (rename_noreplace(cur, target) == 0) {
      moved = true;
      last_base_ = base;
      last_suffix_ = n;
    } else if (errno == ENOENT) {
      missing = true;  // deleted behind our back: just put a new one in place
    } else if (errno != EEXIST) {
      return undo(errno);
    }
  }
  if (!moved && !missing) return undo(EEXIST);
  if (::rename(tmp.c_str(), cur.c_str()) != 0) {
    int err = errno;
    if (moved) (void)::rename(target.c_str(), cur.c_str());
    return undo(err);
  }
  ::close(fd_);
  fd_ = nfd;
  opened_ = clock_.now();
  generation_.fetch_add(1, std::memory_order_acq_rel);
  return {};
}

}  // namespace salvo::accounting
