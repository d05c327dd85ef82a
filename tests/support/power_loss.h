// SPDX-License-Identifier: Apache-2.0
// Power-loss emulation at the spool's IO seam (docs/reliability.md, "Power-loss replays"):
// this kernel has no device-mapper (dm-log-writes, dm-flakey), so the emulation sits where
// the spool talks to the disk.
//
//  - RecordingEngine wraps an io::Engine (the FakeEngine in the tests) and logs, on one
//    tick counter, every write and writev (file, offset, bytes, submission and completion),
//    every fdatasync / fsync barrier (submission, completion, result), and the files of one
//    directory as they appear and disappear (the spool's synchronous creates, renames and
//    unlinks, seen by a scan before and after every engine call). The test adds its own
//    ticks (mark()) for what the code under test reported: an append, an acknowledgement.
//  - power_cut() builds the disk as it could be after power was lost at a tick: every
//    write a completed barrier covers, and a seeded random fate for each later one
//    (dropped, whole, torn at a byte, torn into 512-byte sectors kept or lost
//    independently, or a prefix followed by zeros), applied in a random order.
//
// Assumptions: a write no completed barrier covers may land whole, in part (any byte
// prefix, any subset of its 512-byte sectors) or not at all, in any order with the other
// such writes; a covered write is on disk. Files are created, renamed and removed by
// synchronous calls that end with an fsync of the file and of the directory, so only the
// last such event before a cut can be undone (cut off half-way).
// Not modelled: directories other than the watched one (the pickup directory's claims and
// its work-directory fsync), a file system that loses what an fsync it acknowledged
// covered (the barriers are trusted; CutOptions::barriers_hold = false shows what that
// costs), and media errors that change synced bytes (the damage tests in
// recovery_test.cc).
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstdint>
#include <map>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <salvo/base/result.h>
#include <salvo/io/engine.h>

namespace salvo::test {

using Tick = std::uint64_t;
inline constexpr Tick kNever = ~Tick{0};

// A file of the watched directory, from the scan that first saw it to the one that no
// longer did.
struct RecordedFile {
  std::string name;
  std::string initial;     // its bytes when first seen, trailing zeros trimmed
  std::uint64_t size = 0;  // its size when first seen
  Tick created = 0;
  Tick removed = kNever;
  dev_t dev = 0;
  ino_t ino = 0;
};

struct RecordedWrite {
  std::size_t file = 0;  // index into IoRecording::files
  std::uint64_t offset = 0;
  std::string bytes;
  Tick submitted = 0;
  Tick completed = kNever;
  std::int32_t res = 0;  // the completion's result
};

struct RecordedBarrier {
  std::size_t file = 0;
  bool metadata = false;  // fsync rather than fdatasync
  Tick submitted = 0;
  Tick completed = kNever;
  std::int32_t res = 0;
};

struct IoRecording {
  std::vector<RecordedFile> files;
  std::vector<RecordedWrite> writes;
  std::vector<RecordedBarrier> barriers;
  Tick next = 0;  // the next tick to be handed out; cuts lie in [0, next]
};

// Owner: the test thread, like the engine it wraps. File operations on descriptors outside
// the watched directory are passed on unrecorded; cancel() of a file operation is not
// supported (the spool never cancels one).
class RecordingEngine final : public io::Engine {
 public:
  RecordingEngine(io::Engine& inner, std::string dir);
  ~RecordingEngine() override;

  const IoRecording& recording() const noexcept { return rec_; }
  // Scans the directory (creations and removals become ticks) and returns a fresh tick.
  Tick mark();
  // Scans the directory only.
  void observe();

  std::string_view name() const noexcept override { return "recording"; }
  const io::Features& features() const noexcept override { return inner_.features(); }
  void accept_multishot(int fd, io::Completion* c) noexcept override;
  void connect(int fd, const sockaddr* addr, socklen_t len, io::Completion* c) noexcept override;
  void recv(int fd, std::span<char> buf, io::Completion* c) noexcept override;
  void recv_multishot(int fd, io::BufferRing& ring, io::Completion* c) noexcept override;
  void send(int fd, std::span<const char> buf, io::Completion* c) noexcept override;
  void sendmsg(int fd, const msghdr* msg, io::Completion* c) noexcept override;
  void send_zc(int fd, std::span<const char> buf, io::Completion* c) noexcept override;
  void shutdown(int fd, int how, io::Completion* c) noexcept override;
  void close(int fd, io::Completion* c) noexcept override;
  void read(int fd, std::span<char> buf, std::uint64_t offset, io::Completion* c) noexcept override;
  void write(int fd, std::span<const char> buf, std::uint64_t offset,
             io::Completion* c) noexcept override;
  void writev(int fd, std::span<const iovec> iov, std::uint64_t offset,
              io::Completion* c) noexcept override;
  void fdatasync(int fd, io::Completion* c) noexcept override;
  void fsync(int fd, io::Completion* c) noexcept override;
  void timeout(Duration after, io::Completion* c) noexcept override;
  void cancel(io::Completion* c) noexcept override;
  Result<io::BufferRing*> create_buffer_ring(std::uint16_t count, std::uint32_t size) override;
  io::WakeTarget wake_target() const noexcept override { return inner_.wake_target(); }
  void wake(io::WakeTarget target) noexcept override { inner_.wake(target); }
  io::WakeTarget any_thread_wake_target() const noexcept override {
    return inner_.any_thread_wake_target();
  }
  void bind_to_current_thread() noexcept override { inner_.bind_to_current_thread(); }
  int run_once(Duration max_wait) noexcept override;

 private:
  class Tap;
  enum class TapKind : std::uint8_t { Write, Barrier };
  // The recorded file fd refers to (scanning first), or -1 when it is not in the directory.
  std::ptrdiff_t file_of(int fd) noexcept;
  void record_write(int fd, std::string bytes, std::uint64_t offset, io::Completion*& c) noexcept;
  void record_barrier(int fd, bool metadata, io::Completion*& c) noexcept;
  void on_tap(TapKind kind, std::size_t index, std::int32_t res) noexcept;

  io::Engine& inner_;
  std::string dir_;
  IoRecording rec_;
};

// What power_cut() chose for the writes it did not have to keep.
struct CutStats {
  std::uint64_t durable = 0;  // writes a completed barrier covers: always applied
  std::uint64_t dropped = 0;
  std::uint64_t whole = 0;
  std::uint64_t torn = 0;        // kept in part (a byte prefix, sectors, or a prefix + zeros)
  std::uint64_t files_lost = 0;  // a file created or removed by the last event: undone
};

struct CutOptions {
  // Random: each write no barrier covers gets a random fate, and the last event, if it
  // created or removed a file, is undone in half the cuts. Drop: every such write is lost
  // and no file event undone, the least a power cut can leave.
  enum class Unsynced : std::uint8_t { Random, Drop };
  Unsynced unsynced = Unsynced::Random;
  // False: barriers count for nothing, as on a disk whose cache ignores flushes. Only to
  // show that the checks of a replay see what such a disk loses.
  bool barriers_hold = true;
};

// The watched directory's files (name -> bytes) as they could be after power was lost just
// before `cut` (every event with a smaller tick happened; none from `cut` on). One random
// outcome per call, drawn from rng.
std::map<std::string, std::string> power_cut(const IoRecording& rec, Tick cut, std::mt19937_64& rng,
                                             CutStats* stats = nullptr,
                                             const CutOptions& options = {});

// Replaces the files of dir (created if missing) with image.
[[nodiscard]] Status write_image(const std::string& dir,
                                 const std::map<std::string, std::string>& image);

}  // namespace salvo::test
