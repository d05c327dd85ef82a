// SPDX-License-Identifier: Apache-2.0
// RecordingEngine (the write / barrier log of one directory's files) and power_cut() (the
// disk image after a power loss at any tick of that log).
#include "power_loss.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

namespace salvo::test {

// Stands between the inner engine and the caller's Completion of one file operation: logs
// its completion, then passes it on. File operations complete exactly once.
class RecordingEngine::Tap final : public io::Completion {
 public:
  Tap(RecordingEngine& owner, TapKind kind, std::size_t index, io::Completion* user)
      : owner_(owner), kind_(kind), index_(index), user_(user) {}
  void on_complete(std::int32_t res, std::uint32_t flags) noexcept override {
    owner_.on_tap(kind_, index_, res);
    if (user_ != nullptr) user_->on_complete(res, flags);
    owner_.observe();  // what the callback created or removed
    delete this;
  }

 private:
  RecordingEngine& owner_;
  TapKind kind_;
  std::size_t index_;
  io::Completion* user_;
};

RecordingEngine::RecordingEngine(io::Engine& inner, std::string dir)
    : inner_(inner), dir_(std::move(dir)) {
  observe();
}

RecordingEngine::~RecordingEngine() = default;

Tick RecordingEngine::mark() {
  observe();
  return rec_.next++;
}

void RecordingEngine::observe() {
  struct Entry {
    std::string name;
    struct stat st;
  };
  std::vector<Entry> now;
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return;
  while (dirent* ent = ::readdir(d)) {
    Entry e{ent->d_name, {}};
    if (::fstatat(::dirfd(d), ent->d_name, &e.st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISREG(e.st.st_mode)) now.push_back(std::move(e));
  }
  ::closedir(d);
  std::sort(now.begin(), now.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  auto live = [&](const std::string& name) -> RecordedFile* {
    for (auto& f : rec_.files) {
      if (f.removed == kNever && f.name == name) return &f;
    }
    return nullptr;
  };
  // New files first: a file renamed over another replaces it in one tick (rename(2) is
  // atomic), so no cut sees neither.
  for (const Entry& e : now) {
    RecordedFile* old = live(e.name);
    if (old != nullptr && old->dev == e.st.st_dev && old->ino == e.st.st_ino) continue;
    RecordedFile f;
    f.name = e.name;
    f.size = static_cast<std::uint64_t>(e.st.st_size);
    f.dev = e.st.st_dev;
    f.ino = e.st.st_ino;
    const std::string path = dir_ + "/" + e.name;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      f.initial.resize(f.size);
      std::size_t got = 0;
      while (got < f.size) {
        ssize_t n = ::pread(fd, f.initial.data() + got, f.size - got, static_cast<off_t>(got));
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
      }
      ::close(fd);
      f.initial.resize(got);
      while (!f.initial.empty() && f.initial.back() == '\0') f.initial.pop_back();
    }
    f.created = rec_.next++;
    if (old != nullptr) old->removed = f.created;
    rec_.files.push_back(std::move(f));
  }
  for (auto& f : rec_.files) {
    if (f.removed != kNever) continue;
    const bool there = std::any_of(now.begin(), now.end(), [&](const Entry& e) {
      return e.name == f.name && e.st.st_dev == f.dev && e.st.st_ino == f.ino;
    });
    if (!there) f.removed = rec_.next++;
  }
}

std::ptrdiff_t RecordingEngine::file_of(int fd) noexcept {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return -1;
  for (int attempt = 0; attempt < 2; ++attempt) {
    for (std::size_t i = 0; i < rec_.files.size(); ++i) {
      const RecordedFile& f = rec_.files[i];
      if (f.removed == kNever && f.dev == st.st_dev && f.ino == st.st_ino) {
        return static_cast<std::ptrdiff_t>(i);
      }
    }
    observe();
  }
  return -1;
}

void RecordingEngine::record_write(int fd, std::string bytes, std::uint64_t offset,
                                   io::Completion*& c) noexcept {
  const std::ptrdiff_t file = file_of(fd);
  if (file < 0) return;
  rec_.writes.push_back(RecordedWrite{.file = static_cast<std::size_t>(file),
                                      .offset = offset,
                                      .bytes = std::move(bytes),
                                      .submitted = rec_.next++});
  c = new Tap(*this, TapKind::Write, rec_.writes.size() - 1, c);
}

void RecordingEngine::record_barrier(int fd, bool metadata, io::Completion*& c) noexcept {
  const std::ptrdiff_t file = file_of(fd);
  if (file < 0) return;
  rec_.barriers.push_back(RecordedBarrier{
      .file = static_cast<std::size_t>(file), .metadata = metadata, .submitted = rec_.next++});
  c = new Tap(*this, TapKind::Barrier, rec_.barriers.size() - 1, c);
}

void RecordingEngine::on_tap(TapKind kind, std::size_t index, std::int32_t res) noexcept {
  observe();
  if (kind == TapKind::Write) {
    rec_.writes[index].completed = rec_.next++;
    rec_.writes[index].res = res;
  } else {
    rec_.barriers[index].completed = rec_.next++;
    rec_.barriers[index].res = res;
  }
}

void RecordingEngine::accept_multishot(int fd, io::Completion* c) noexcept {
  inner_.accept_multishot(fd, c);
}
void RecordingEngine::connect(int fd, const sockaddr* addr, socklen_t len,
                              io::Completion* c) noexcept {
  inner_.connect(fd, addr, len, c);
}
void RecordingEngine::recv(int fd, std::span<char> buf, io::Completion* c) noexcept {
  inner_.recv(fd, buf, c);
}
void RecordingEngine::recv_multishot(int fd, io::BufferRing& ring, io::Completion* c) noexcept {
  inner_.recv_multishot(fd, ring, c);
}
void RecordingEngine::send(int fd, std::span<const char> buf, io::Completion* c) noexcept {
  inner_.send(fd, buf, c);
}
void RecordingEngine::sendmsg(int fd, const msghdr* msg, io::Completion* c) noexcept {
  inner_.sendmsg(fd, msg, c);
}
void RecordingEngine::send_zc(int fd, std::span<const char> buf, io::Completion* c) noexcept {
  inner_.send_zc(fd, buf, c);
}
void RecordingEngine::shutdown(int fd, int how, io::Completion* c) noexcept {
  inner_.shutdown(fd, how, c);
}
void RecordingEngine::close(int fd, io::Completion* c) noexcept { inner_.close(fd, c); }
void RecordingEngine::read(int fd, std::span<char> buf, std::uint64_t offset,
                           io::Completion* c) noexcept {
  inner_.read(fd, buf, offset, c);
}

void RecordingEngine::write(int fd, std::span<const char> buf, std::uint64_t offset,
                            io::Completion* c) noexcept {
  record_write(fd, std::string(buf.data(), buf.size()), offset, c);
  inner_.write(fd, buf, offset, c);
}

void RecordingEngine::writev(int fd, std::span<const iovec> iov, std::uint64_t offset,
                             io::Completion* c) noexcept {
  std::string bytes;
  for (const iovec& v : iov) bytes.append(static_cast<const char*>(v.iov_base), v.iov_len);
  record_write(fd, std::move(bytes), offset, c);
  inner_.writev(fd, iov, offset, c);
}

void RecordingEngine::fdatasync(int fd, io::Completion* c) noexcept {
  record_barrier(fd, false, c);
  inner_.fdatasync(fd, c);
}

void RecordingEngine::fsync(int fd, io::Completion* c) noexcept {
  record_barrier(fd, true, c);
  inner_.fsync(fd, c);
}

void RecordingEngine::timeout(Duration after, io::Completion* c) noexcept {
  inner_.timeout(after, c);
}
void RecordingEngine::cancel(io::Completion* c) noexcept { inner_.cancel(c); }
Result<io::BufferRing*> RecordingEngine::create_buffer_ring(std::uint16_t count,
                                                            std::uint32_t size) {
  return inner_.create_buffer_ring(count, size);
}

int RecordingEngine::run_once(Duration max_wait) noexcept {
  observe();
  int n = inner_.run_once(max_wait);
  observe();
  return n;
}

namespace {

constexpr std::uint64_t kSector = 512;

void put(std::string& file, std::uint64_t at, std::string_view bytes) {
  if (file.size() < at + bytes.size()) file.resize(at + bytes.size(), '\0');
  std::copy(bytes.begin(), bytes.end(), file.begin() + static_cast<std::ptrdiff_t>(at));
}

// Writes the part of `bytes` (meant for `at`) that the power cut let through.
void apply_torn(std::string& file, std::uint64_t at, std::string_view bytes, std::mt19937_64& rng,
                CutStats& stats) {
  const std::uint64_t n = bytes.size();
  switch (rng() % 10) {
    case 0:
    case 1:
    case 2:
      ++stats.dropped;
      return;
    case 3:
    case 4:
    case 5:
      ++stats.whole;
      put(file, at, bytes);
      return;
    case 6:
    case 7: {  // a prefix, to any byte
      ++stats.torn;
      put(file, at, bytes.substr(0, rng() % (n + 1)));
      return;
    }
    case 8: {  // sectors, each written or not (pages written back out of order)
      ++stats.torn;
      std::uint64_t from = 0;
      while (from < n) {
        const std::uint64_t end = std::min(n, (at + from) / kSector * kSector + kSector - at);
        if (rng() % 2 == 0) put(file, at + from, bytes.substr(from, end - from));
        from = end;
      }
      return;
    }
    default: {  // a prefix to a sector boundary, then zeros where the rest was to go
      ++stats.torn;
      // The cut falls on one of the sector boundaries inside the write, or at either end.
      const std::uint64_t first = (at + kSector - 1) / kSector * kSector;
      const std::uint64_t inside = at + n > first ? (at + n - first + kSector - 1) / kSector : 0;
      const std::uint64_t pick = rng() % (inside + 2);
      const std::uint64_t keep =
          pick == 0 ? 0 : std::min(n, pick > inside ? n : first + (pick - 1) * kSector - at);
      put(file, at, bytes.substr(0, keep));
      put(file, at + keep, std::string(n - keep, '\0'));
      return;
    }
  }
}

}  // namespace

std::map<std::string, std::string> power_cut(const IoRecording& rec, Tick cut, std::mt19937_64& rng,
                                             CutStats* stats_out, const CutOptions& options) {
  CutStats stats;
  const bool random = options.unsynced == CutOptions::Unsynced::Random;
  // The last event before the cut may be a file appearing or going: a synchronous create,
  // rename or unlink the power cut interrupted. Undone in half the cuts.
  const bool undo_last = random && cut > 0 && rng() % 2 == 0;
  std::vector<int> exists(rec.files.size(), 0);
  std::vector<std::string> bytes(rec.files.size());
  struct Pending {
    std::size_t file;
    std::uint64_t offset;
    std::string_view bytes;
  };
  std::vector<Pending> loose;
  for (std::size_t i = 0; i < rec.files.size(); ++i) {
    const RecordedFile& f = rec.files[i];
    bool here = f.created < cut && !(f.removed < cut);
    if (undo_last && f.removed == cut - 1) here = true;
    if (undo_last && f.created == cut - 1) {
      ++stats.files_lost;
      // A file renamed over another was complete before the rename, which is atomic: the
      // old one is there instead.
      const bool renamed = std::any_of(rec.files.begin(), rec.files.end(), [&](const auto& o) {
        return &o != &f && o.name == f.name && o.removed == f.created;
      });
      if (renamed || rng() % 2 == 0) continue;  // not there at all
      here = true;
      loose.push_back({i, 0, f.initial});  // there, but its first bytes may not be
      bytes[i].assign(f.size, '\0');
      exists[i] = 1;
      continue;
    }
    if (!here) continue;
    exists[i] = 1;
    bytes[i].assign(f.size, '\0');
    put(bytes[i], 0, f.initial);
  }
  // A completed barrier covers the writes of its file that completed before it was
  // submitted: per file, the latest submission of a barrier that completed with 0.
  std::vector<Tick> covered(rec.files.size(), 0);
  for (const RecordedBarrier& b : rec.barriers) {
    if (options.barriers_hold && b.completed < cut && b.res == 0)
      covered[b.file] = std::max(covered[b.file], b.submitted);
  }
  std::vector<const RecordedWrite*> durable;
  for (const RecordedWrite& w : rec.writes) {
    if (w.submitted >= cut || !exists[w.file]) continue;
    const bool done = w.completed < cut && w.res >= 0;
    std::string_view data = w.bytes;
    if (done) data = data.substr(0, static_cast<std::size_t>(w.res));
    if (done && w.completed < covered[w.file]) {
      durable.push_back(&w);
    } else {
      loose.push_back({w.file, w.offset, data});
    }
  }
  // Unsynced writes land in any order, any of them in part; synced ones are on top (the
  // page cache held the newest bytes when the barrier wrote them).
  if (random) {
    std::shuffle(loose.begin(), loose.end(), rng);
    for (const Pending& p : loose) apply_torn(bytes[p.file], p.offset, p.bytes, rng, stats);
  } else {
    stats.dropped += loose.size();
  }
  for (const RecordedWrite* w : durable) {
    ++stats.durable;
    put(bytes[w->file], w->offset, std::string_view(w->bytes).substr(0, w->res));
  }
  std::map<std::string, std::string> image;
  for (std::size_t i = 0; i < rec.files.size(); ++i) {
    if (exists[i]) image[rec.files[i].name] = std::move(bytes[i]);
  }
  if (stats_out != nullptr) {
    stats_out->durable += stats.durable;
    stats_out->dropped += stats.dropped;
    stats_out->whole += stats.whole;
    stats_out->torn += stats.torn;
    stats_out->files_lost += stats.files_lost;
  }
  return image;
}

Status write_image(const std::string& dir, const std::map<std::string, std::string>& image) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return fail_errno(errno);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return fail_errno(errno);
  std::vector<std::string> old;
  while (dirent* ent = ::readdir(d)) {
    std::string_view name = ent->d_name;
    if (name != "." && name != "..") old.emplace_back(name);
  }
  ::closedir(d);
  for (const auto& name : old) ::unlink((dir + "/" + name).c_str());
  for (const auto& [name, data] : image) {
    const std::string path = dir + "/" + name;
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return fail_errno(errno);
    // The zero tail is left to ftruncate (a hole reads as zeros): most of a segment.
    std::size_t end = data.size();
    while (end > 0 && data[end - 1] == '\0') --end;
    if (::ftruncate(fd, static_cast<off_t>(data.size())) != 0) {
      const int err = errno;
      ::close(fd);
      return fail_errno(err);
    }
    std::size_t done = 0;
    while (done < end) {
      ssize_t n = ::write(fd, data.data() + done, end - done);
      if (n <= 0) {
        const int err = n < 0 ? errno : EIO;
        ::close(fd);
        return fail_errno(err);
      }
      done += static_cast<std::size_t>(n);
    }
    ::close(fd);
  }
  return {};
}

}  // namespace salvo::test
