// SPDX-License-Identifier: Apache-2.0
// PickupWatcher: inotify + rescan discovery, the claim (rename into the shard's work
// directory, made durable by an fsync through the engine), per-file intake (read through
// the engine, parse, queue through the SpoolWriter), unlink after the durable commit,
// failed/ with a reason otherwise. Directory operations (openat, fstat, renameat, unlinkat,
// readdir) are synchronous metadata calls on the shard thread; file contents are read and
// the work directory is fsynced with io_uring.
#include <salvo/inbound/pickup_watcher.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include <salvo/accounting/accounting.h>
#include <salvo/base/hash.h>
#include <salvo/base/log.h>
#include <salvo/inbound/job_spooler.h>
#include <salvo/inbound/metrics.h>
#include <salvo/spool/dispatch.h>
#include <salvo/smtp/data_codec.h>
#include <salvo/spool/errc.h>
#include <salvo/spool/pickup_io.h>
#include <salvo/spool/spool_reader.h>
#include <salvo/spool/spool_writer.h>

#include "inbound/message_builder.h"

namespace salvo::inbound {
namespace {

constexpr std::size_t kChunk = 1 << 20;  // .json read size
// A claim is 16 hex digits, '-', then the name, within NAME_MAX (255) bytes.
constexpr std::size_t kIdDigits = 16;
constexpr std::size_t kClaimedNameMax = 255 - kIdDigits - 1;

bool ends_with(std::string_view s, std::string_view suffix) noexcept {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::int64_t unix_ns(const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             clock.wall_now().time_since_epoch())
      .count();
}

// Opens the directory `name` in parent_fd, made first if missing, in which case its name is
// made durable (fsync of the parent): claims are renamed into it and trusted after a crash.
// -1 with errno on failure.
int open_durable_dir(int parent_fd, const char* name) {
  if (::mkdirat(parent_fd, name, 0750) == 0) {
    if (::fsync(parent_fd) != 0) return -1;
  } else if (errno != EEXIST) {
    return -1;
  }
  return ::openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
}

bool write_whole_file(int dir_fd, const std::string& name, std::string_view text) {
  std::string tmp = "." + name + ".tmp";
  int fd = ::openat(dir_fd, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                    0640);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (ok) ok = ::renameat(dir_fd, tmp.c_str(), dir_fd, name.c_str()) == 0;
  if (!ok) ::unlinkat(dir_fd, tmp.c_str(), 0);
  return ok;
}

}  // namespace

std::uint32_t pickup_shard(std::string_view name, std::uint32_t shards) noexcept {
  return shard_of_name(name, shards);
}

bool pickup_candidate(std::string_view name) noexcept {
  if (name.empty() || name.front() == '.') return false;
  return ends_with(name, ".eml") || ends_with(name, ".json");
}

std::string pickup_work_dir(const std::string& dir, std::uint32_t shard) {
  return fmt::format("{}/.work/shard-{}", dir, shard);
}

std::string pickup_claim(spool::MessageId id, std::string_view name) {
  if (name.size() > kClaimedNameMax) name = name.substr(name.size() - kClaimedNameMax);
  return fmt::format("{}-{}", format_id(id.value()), name);
}

std::optional<std::string_view> pickup_claimed_name(std::string_view claim) noexcept {
  if (claim.size() <= kIdDigits + 1 || claim[kIdDigits] != '-') return std::nullopt;
  if (!spool::parse_id(claim.substr(0, kIdDigits))) return std::nullopt;
  std::string_view name = claim.substr(kIdDigits + 1);
  if (!pickup_candidate(name)) return std::nullopt;
  return name;
}

PickupStats& PickupStats::operator+=(const PickupStats& o) noexcept {
  files_queued += o.files_queued;
  jobs_queued += o.jobs_queued;
  messages_queued += o.messages_queued;
  recipients_queued += o.recipients_queued;
  bytes_read += o.bytes_read;
  files_failed += o.files_failed;
  spool_retries += o.spool_retries;
  rescans += o.rescans;
  inotify_overflows += o.inotify_overflows;
  return *this;
}

// ---- one file ------------------------------------------------------------------------

// Owner: the watcher's shard. Lives from its claim to the end of its commit (or failure);
// it starts reading once the claim is durable, a read in flight always completes before it
// is destroyed (it is never cancelled), and a .json job's JobSpooler is idle() before it is.
class PickupWatcher::Intake final : public spool::FileRead::Done, public JobSpooler::Owner {
 public:
  Intake(PickupWatcher& w, Work work, bool json, std::uint64_t change)
      : claim_change(change),
        w_(w),
        name_(std::move(work.name)),
        claim_(std::move(work.claim)),
        json_(json),
        read_(w.shard_.engine(), *this) {}
  ~Intake() {
    if (fd_ >= 0) ::close(fd_);
  }

  Intake* next = nullptr;
  Intake* prev = nullptr;
  std::uint64_t budget_bytes = 0;  // counted in the watcher's bytes_in_flight_
  const std::uint64_t claim_change;  // its number in the work directory's DirectorySync
  bool json() const noexcept { return json_; }
  bool waiting_for_claim() const noexcept { return phase_ == Phase::Claimed; }

  // The claim is durable (or its fsync failed: then the file waits for a retry).
  void claim_synced(Status st) noexcept {
    if (!st) return done(Outcome::Retry);
    start();
  }

  // Stop requested: a job still reading gives up (its file stays claimed for the next
  // start), and so does a file whose claim is not durable yet.
  void stop() noexcept {
    stopping_ = true;
    if (phase_ == Phase::Claimed) return done(Outcome::Stopped);
    if (!reading_ && phase_ == Phase::Recipients && paused_) give_up_job();
  }

  void on_read(std::int32_t res) noexcept override {
    reading_ = false;
    if (stopping_ && (phase_ == Phase::ReadEml || phase_ == Phase::Scan ||
                      phase_ == Phase::Recipients)) {
      return give_up_job();
    }
    if (res < 0) {
      log::warn("pickup {}: read: {}", name_, std::strerror(-res));
      if (phase_ == Phase::Recipients) abandon_job();
      return done(Outcome::Retry);
    }
    w_.stats_.bytes_read += static_cast<std::uint64_t>(res);
    std::string_view chunk(buf_.data(), static_cast<std::size_t>(res));
    bool eof = res == 0;
    switch (phase_) {
      case Phase::ReadEml:
        off_ += static_cast<std::uint64_t>(res);
        if (!eof && off_ < size_) return read_next();
        if (off_ != size_) return truncated();
        return queue_eml();
      case Phase::Scan:
        if (eof) return truncated();
        off_ += static_cast<std::uint64_t>(res);
        if (auto e = reader_->scan(chunk)) return malformed(*e);
        if (off_ < size_) return read_next();
        if (auto e = reader_->finish_scan()) return malformed(*e);
        return queue_template();
      case Phase::Recipients:
        if (eof) {
          abandon_job();
          return truncated();
        }
        off_ += static_cast<std::uint64_t>(res);
        if (auto e = reader_->feed_recipients(
                chunk, [this](JobRecipientData&& r) { job_->add(std::move(r)); })) {
          abandon_job();
          return malformed(*e);
        }
        if (job_->error()) {
          abandon_job();
          return spool_error(job_->error());
        }
        if (reader_->recipients_done() || off_ >= size_) {
          if (!reader_->recipients_done()) {
            abandon_job();
            return malformed({"the recipients array is not closed", 0, size_, "recipients"});
          }
          return finish_job();
        }
        return continue_recipients();
      default:
        return;
    }
  }

 private:
  enum class Phase : std::uint8_t { Claimed, ReadEml, Scan, Recipients, Committing, Done };
  enum class Outcome : std::uint8_t { Queued, Failed, Retry, Gone, Stopped };

  // The claimed file: checked, opened, read.
  void start() noexcept {
    // Look before opening: a FIFO or device is never opened, a link never followed.
    struct stat pre{};
    if (::fstatat(w_.work_fd_, claim_.c_str(), &pre, AT_SYMLINK_NOFOLLOW) != 0) {
      return done(errno == ENOENT ? Outcome::Gone : Outcome::Retry);
    }
    if (S_ISLNK(pre.st_mode)) return malformed({"a symbolic link, not a file", 0, 0, {}});
    if (!S_ISREG(pre.st_mode)) return malformed({"not a regular file", 0, 0, {}});
    if (pre.st_nlink > 1) {
      return malformed({"a hard link (the file has other names): copy it in instead", 0, 0, {}});
    }
    fd_ = ::openat(w_.work_fd_, claim_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd_ < 0) {
      int err = errno;
      if (err == ENOENT) return done(Outcome::Gone);
      if (err == ELOOP) return malformed({"a symbolic link, not a file", 0, 0, {}});
      log::warn("pickup {}: open: {}", name_, std::strerror(err));
      return done(Outcome::Retry);
    }
    struct stat st{};
    if (::fstat(fd_, &st) != 0) return done(Outcome::Retry);
    if (!S_ISREG(st.st_mode)) return malformed({"not a regular file", 0, 0, {}});
    size_ = static_cast<std::uint64_t>(st.st_size);
    const PickupLimits& lim = w_.shared_.limits;
    if (!json_) {
      // The envelope lines add little; allow them a generous margin over the message.
      if (size_ > lim.max_message_size + 64ull * lim.max_recipients_eml + 4096) {
        return malformed({fmt::format("file larger than the message size limit ({} bytes)",
                                      lim.max_message_size),
                          0, 0, {}});
      }
      buf_.resize(size_);
    } else {
      reader_ = std::make_unique<JobReader>(lim);
      buf_.resize(std::min<std::uint64_t>(kChunk, std::max<std::uint64_t>(size_, 1)));
    }
    if (size_ == 0) return malformed({"empty file", 0, 0, {}});
    phase_ = json_ ? Phase::Scan : Phase::ReadEml;
    read_next();
  }

  // The .eml message's commit (a job's commits go to its JobSpooler).
  struct FinalWaiter final : spool::CommitWaiter {
    Intake* self = nullptr;
    void on_committed(Status st) noexcept override { self->on_final(st); }
  };

  void read_next() noexcept {
    std::uint64_t want;
    char* dst;
    if (phase_ == Phase::ReadEml) {
      want = size_ - off_;
      dst = buf_.data() + off_;
    } else {
      want = std::min<std::uint64_t>(buf_.size(), size_ - off_);
      dst = buf_.data();
    }
    // One read returns at most 2 GiB - 4 KiB on Linux; larger files continue.
    want = std::min<std::uint64_t>(want, 1u << 30);
    reading_ = true;
    read_.read(fd_, std::span<char>(dst, want), off_);
  }

  void truncated() noexcept {
    malformed({fmt::format("the file changed size while it was read ({} of {} bytes)", off_,
                           size_),
               0, off_, {}});
  }

  std::int64_t now_ns() const { return unix_ns(w_.shard_.clock()); }

  void queue_eml() noexcept {
    EmlEnvelope env;
    std::string normalised;
    if (auto e = parse_eml(std::string_view(buf_.data(), size_), w_.shared_.limits, &env,
                           normalised)) {
      return malformed(*e);
    }
    if (const std::uint32_t max = w_.shared_.limits.max_hops;
        smtp::count_received(normalised, max) >= max) {
      return malformed(PickupError{
          fmt::format("{} or more Received: lines: the message is looping ([delivery] max_hops)",
                      max),
          0, 0, "Received"});
    }
    spool::SpoolWriter& writer = w_.writer_;
    spool::MessageId id = writer.allocate_id();
    received_ns_ = now_ns();
    std::string received;
    append_local_received(w_.shared_.hostname, "pickup", id.value(), received_ns_ / 1'000'000'000,
                          received);
    client_info_ = "pickup=" + name_;
    spool::MessageRecord m;
    m.id = id;
    m.received_unix_ns = received_ns_;
    m.source = spool::Source::Pickup;
    m.flags = message_flags(env.smtputf8, env.eight_bit);
    m.job = env.job;
    m.reverse_path = env.sender;
    m.envid = env.envid;
    m.client_info = client_info_;
    m.recipients.reserve(env.receivers.size());
    for (const auto& r : env.receivers) m.recipients.push_back(spool::Recipient{r, 0, {}});
    m.pickup = spool::PickupIdentity{name_, claim_};
    m.body_head = received;
    m.body = normalised;
    final_waiter_.self = this;
    auto r = writer.append_message(m, &final_waiter_);
    if (!r) return spool_error(r.error());
    message_id_ = *r;
    size_stored_ = received.size() + normalised.size();
    envelope_ = std::move(env);
    buf_ = std::string();  // the spool has it now
    phase_ = Phase::Committing;
  }

  void queue_template() noexcept {
    JobSpooler::Services services{w_.shard_.clock(), w_.writer_,     w_.index_,
                                  *w_.reader_,       w_.accounting_, w_.dispatch_};
    JobSpooler::Origin origin{spool::Source::Pickup, "pickup", w_.shared_.hostname,
                              w_.shared_.job_batch_recipients};
    job_ = std::make_unique<JobSpooler>(services, origin, *this, "pickup " + name_);
    if (auto st = job_->begin(reader_->header()); !st) return spool_error(st.error());
    phase_ = Phase::Recipients;
    off_ = reader_->recipients_offset();
    return continue_recipients();
  }

  // Next chunk of pass 2, unless the spool has enough in hand (back-pressure).
  void continue_recipients() noexcept {
    if (stopping_) return give_up_job();
    if (!job_->wants_more()) {
      paused_ = true;
      return;
    }
    paused_ = false;
    read_next();
  }

  // A batch came back, or the job's replay ended.
  void on_job_progress() noexcept override {
    if (phase_ == Phase::Done) return maybe_delete();
    if (reading_ || phase_ != Phase::Recipients) return;
    if (job_->error()) {
      abandon_job();
      return spool_error(job_->error());
    }
    if (paused_) continue_recipients();
  }

  void finish_job() noexcept {
    // On failure the job is already given up.
    const spool::PickupIdentity identity{name_, claim_};
    if (auto st = job_->finish(&identity); !st) return spool_error(st.error());
    phase_ = Phase::Committing;
  }

  // Durable; the spooler goes on to the accounting and delivery replay, and this intake
  // waits for it to be idle() before it goes.
  void on_job_committed(Status st) noexcept override {
    if (!st) return spool_error(st.error());
    ++w_.stats_.jobs_queued;
    log::debug("pickup {}: queued job {} with {} recipients", name_,
               format_id(job_->id().value()), job_->recipients());
    file_queued(job_->recipients());
    done(Outcome::Queued);
  }

  void on_final(Status st) noexcept {
    if (!st) return spool_error(st.error());
    account_eml();
    if (w_.dispatch_ != nullptr) {
      std::vector<std::string_view> rcpts(envelope_.receivers.begin(),
                                          envelope_.receivers.end());
      w_.dispatch_->queued(message_id_, received_ns_, 0, rcpts);
    }
    file_queued(envelope_.receivers.size());
    done(Outcome::Queued);
  }

  // Counts a durable file and removes it. A crash before this unlink is caught at the next
  // start by the claim in the commit record; so is a failed unlink (the work directory is
  // only read at start).
  void file_queued(std::uint64_t recipients) noexcept {
    auto& stats = w_.stats_;
    ++stats.files_queued;
    ++stats.messages_queued;
    stats.recipients_queued += recipients;
    if (::unlinkat(w_.work_fd_, claim_.c_str(), 0) != 0 && errno != ENOENT) {
      log::error("pickup {}: queued, but {}/{} cannot be removed ({}); the next start removes "
                 "it", name_, w_.work_dir_, claim_, std::strerror(errno));
    }
  }

  void account_eml() noexcept {
    if (w_.accounting_ == nullptr) return;
    std::string id = format_id(message_id_.value());
    accounting::Event ev;
    ev.ts_unix_ns = received_ns_;
    ev.id = id;
    ev.from = envelope_.sender;
    ev.size = size_stored_;
    ev.source = "pickup";
    ev.job = envelope_.job;
    for (const auto& r : envelope_.receivers) account_received(*w_.accounting_, ev, r);
  }

  void abandon_job() noexcept {
    if (job_) job_->abandon();
  }

  void give_up_job() noexcept {
    abandon_job();
    done(Outcome::Stopped);
  }

  void spool_error(std::error_code ec) noexcept {
    log::warn("pickup {}: not queued ({}); it stays in the pickup directory and is retried",
              name_, ec.message());
    done(Outcome::Retry);
  }

  void malformed(const PickupError& e) noexcept {
    w_.move_to_failed(Work{name_, claim_}, e);
    done(Outcome::Failed);
  }

  // Retry: the claimed file waits in the work directory (never back in pickup/, where a
  // new file may have the name by now).
  void done(Outcome o) noexcept {
    if (o == Outcome::Retry) {
      ++w_.stats_.spool_retries;
      w_.retry_later(Work{name_, claim_});
    }
    phase_ = Phase::Done;
    maybe_delete();
  }

  // Gone once no read and no commit callback can reach it.
  void maybe_delete() noexcept {
    if (reading_ || (job_ && !job_->idle()) || deleting_) return;
    deleting_ = true;
    PickupWatcher& w = w_;
    w.shard_.defer([&w, self = this] { w.finished(self); });
  }

  PickupWatcher& w_;
  std::string name_;   // in pickup/: logs, failed/NAME, the identity
  std::string claim_;  // in the work directory: the file read, the identity
  bool json_;
  spool::FileRead read_;
  int fd_ = -1;
  Phase phase_ = Phase::Claimed;
  std::uint64_t size_ = 0;
  std::uint64_t off_ = 0;
  std::string buf_;
  bool reading_ = false;
  bool stopping_ = false;
  bool deleting_ = false;
  // .eml
  std::int64_t received_ns_ = 0;
  std::uint64_t size_stored_ = 0;
  std::string client_info_;
  EmlEnvelope envelope_;
  spool::MessageId message_id_{};
  // .json
  std::unique_ptr<JobReader> reader_;
  std::unique_ptr<JobSpooler> job_;  // from the end of the scan
  bool paused_ = false;              // waiting for the spooler's back-pressure
  FinalWaiter final_waiter_;         // .eml
};

// ---- the watcher ----------------------------------------------------------------------

PickupWatcher::PickupWatcher(shard::Shard& shard, spool::SpoolWriter& writer,
                             const spool::SpoolIndex& index, std::string spool_dir,
                             const PickupShared& shared, accounting::Writer* accounting)
    : shard_(shard),
      writer_(writer),
      index_(index),
      spool_dir_(std::move(spool_dir)),
      shared_(shared),
      accounting_(accounting),
      me_(shard.id().value()) {}

PickupWatcher::~PickupWatcher() {
  SALVO_ASSERT(intakes_ == nullptr);
  claims_.reset();  // before the descriptor it syncs
  if (dir_fd_ >= 0) ::close(dir_fd_);
  if (failed_fd_ >= 0) ::close(failed_fd_);
  if (work_fd_ >= 0) ::close(work_fd_);
}

Status PickupWatcher::start(std::vector<std::string> queued_claims) {
  const std::string& dir = shared_.dir;
  if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) return fail_errno(errno);
  dir_fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd_ < 0) return fail_errno(errno);
  if (::mkdirat(dir_fd_, "tmp", 0750) != 0 && errno != EEXIST) return fail_errno(errno);
  failed_fd_ = open_durable_dir(dir_fd_, "failed");
  if (failed_fd_ < 0) return fail_errno(errno);
  const int work_parent = open_durable_dir(dir_fd_, ".work");
  if (work_parent < 0) return fail_errno(errno);
  work_fd_ = open_durable_dir(work_parent, fmt::format("shard-{}", me_).c_str());
  const int err = errno;
  ::close(work_parent);
  if (work_fd_ < 0) return fail_errno(err);
  work_dir_ = pickup_work_dir(dir, me_);
  // Files are claimed out of pickup/ and removed once queued: a directory salvod cannot
  // write would queue them again.
  for (int fd : {dir_fd_, failed_fd_, work_fd_}) {
    if (::faccessat(fd, ".", W_OK | X_OK, AT_EACCESS) != 0) return fail_errno(errno);
  }
  reader_ = std::make_unique<spool::SpoolReader>(shard_.engine(), spool_dir_);
  claims_ = std::make_unique<spool::DirectorySync>(shard_.engine(), work_fd_, *this);
  if (auto st = settle(queued_claims); !st) return st;
  watch_ = std::make_unique<spool::DirectoryWatch>(shard_.engine(), *this);
  if (auto st = watch_->start(dir, shared_.rescan_interval); !st) return st;
  rescan(/*initial=*/true);
  pump();  // the files claimed before the restart, when pickup/ had none to start it
  return {};
}

// Claims are only ever made by this shard, so what its work directory holds at start was
// claimed before the restart: queued (the claim is in the spool) or not. One not queued is
// claimed anew (a rename in place) before it is taken: every claim in a commit record is
// then made in the run that commits it, before the record's id is handed out, so it stays
// below the ids the spool hands out next even if the next-id mark is lost.
Status PickupWatcher::settle(const std::vector<std::string>& queued_claims) {
  // Listed first: names renamed in place while the directory is read could be seen again.
  std::vector<std::string> entries;
  int fd = ::openat(work_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail_errno(errno);
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    const int err = errno;
    ::close(fd);
    return fail_errno(err);
  }
  while (dirent* e = ::readdir(d)) {
    if (std::string_view(e->d_name) != "." && std::string_view(e->d_name) != "..") {
      entries.emplace_back(e->d_name);
    }
  }
  ::closedir(d);
  for (const std::string& entry : entries) {
    const auto name = pickup_claimed_name(entry);
    if (!name) {
      log::warn("pickup {}/{}: not a claim salvod made; left alone", work_dir_, entry);
      continue;
    }
    if (std::binary_search(queued_claims.begin(), queued_claims.end(), entry)) {
      if (::unlinkat(work_fd_, entry.c_str(), 0) != 0) {
        // Left there, it would be taken again once its message has left the spool.
        Status st = fail_errno(errno);
        log::error("pickup {}: queued before the restart, but {}/{} cannot be removed: {}", *name,
                   work_dir_, entry, st.error().message());
        return st;
      }
      log::info("pickup {}: queued before the restart; removed", *name);
      continue;
    }
    Work work{std::string(*name), {}};
    if (!claim(work_fd_, entry, work)) {
      log::error("pickup {}: claimed before the restart, not queued, and cannot be claimed "
                 "again ({}); left as {}/{}", *name, std::strerror(errno), work_dir_, entry);
      continue;
    }
    log::info("pickup {}: claimed before the restart but not queued; taken again", *name);
    queue_.push_back(std::move(work));
  }
  return {};
}

void PickupWatcher::on_name(std::string_view name) noexcept { consider(name, false); }

void PickupWatcher::on_overflow() noexcept {
  ++stats_.inotify_overflows;
  rescan(false);
}

void PickupWatcher::on_tick() noexcept {
  if (stopping_) return;
  const TimePoint now = shard_.clock().now();
  while (!retries_.empty() && retries_.front().first <= now) {
    queue_.push_back(std::move(retries_.front().second));
    retries_.pop_front();
  }
  rescan(false);
  pump();  // files waiting for space, a slot or a retry
}

void PickupWatcher::on_synced(std::uint64_t upto, Status status) noexcept {
  if (!status) {
    log::error("pickup: fsync of {}: {}; the files claimed are retried", work_dir_,
               status.error().message());
  }
  // claim_synced() never unlinks an intake at once (finished() is deferred).
  for (Intake* in = intakes_; in != nullptr; in = in->next) {
    if (in->waiting_for_claim() && in->claim_change <= upto) in->claim_synced(status);
  }
}

void PickupWatcher::rescan(bool initial) noexcept {
  ++stats_.rescans;
  int fd = ::openat(dir_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return;
  }
  while (dirent* e = ::readdir(d)) {
    if (e->d_type == DT_DIR) continue;  // the rest (links, FIFOs ...) fail with a reason
    // Files present at start were renamed in while salvod was down: take them at once.
    consider(e->d_name, !initial);
  }
  ::closedir(d);
}

void PickupWatcher::consider(std::string_view name, bool from_rescan) noexcept {
  if (stopping_ || !pickup_candidate(name)) return;
  if (pickup_shard(name, shared_.shards) != me_) return;
  std::string n(name);
  if (known_.contains(n)) return;
  if (from_rescan) {
    struct stat st{};
    if (::fstatat(dir_fd_, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return;
    auto mtime = std::chrono::system_clock::time_point(
        std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec));
    if (shard_.clock().wall_now() - mtime < shared_.quiet_period) return;  // next rescan
  }
  known_.insert(n);
  queue_.push_back(Work{std::move(n), {}});
  pump();
}

void PickupWatcher::pump() noexcept {
  if (stopping_) return;
  if (!queue_.empty() && !writer_.free_space_ok()) return;  // 452-equivalent: wait
  bool added = false;
  std::size_t scanned = 0, limit = queue_.size();
  while (!queue_.empty() && in_flight_ < shared_.max_files_in_flight && scanned < limit) {
    Work work = std::move(queue_.front());
    queue_.pop_front();
    ++scanned;
    bool json = ends_with(work.name, ".json");
    if (json && jobs_in_flight_ >= shared_.max_jobs_in_flight) {
      queue_.push_back(std::move(work));  // behind the .eml files; its turn comes
      continue;
    }
    // An .eml is held whole while it is parsed and queued: bound the bytes in flight.
    std::uint64_t bytes = 0;
    if (!json) {
      const bool claimed = !work.claim.empty();
      struct stat st{};
      if (::fstatat(claimed ? work_fd_ : dir_fd_, (claimed ? work.claim : work.name).c_str(), &st,
                    AT_SYMLINK_NOFOLLOW) == 0 &&
          st.st_size > 0) {
        bytes = static_cast<std::uint64_t>(st.st_size);
      }
      if (in_flight_ > 0 && bytes_in_flight_ + bytes > shared_.max_bytes_in_flight) {
        queue_.push_front(std::move(work));
        break;  // resumes when an intake finishes
      }
    }
    if (work.claim.empty()) {
      if (!claim(dir_fd_, work.name, work)) {
        if (errno == ENOENT) {  // its writer removed it, or another taker has it
          known_.erase(work.name);
        } else {
          log::warn("pickup {}: cannot be claimed ({}); retried later", work.name,
                    std::strerror(errno));
          retry_later(std::move(work));  // stays in known_: rescans leave it to the retry
        }
        continue;
      }
      known_.erase(work.name);
    }
    bytes_in_flight_ += bytes;
    // Every intake waits for an fsync of the work directory that starts after it is made,
    // so its claim (made here, or at start for one left by a crash) is on disk before the
    // commit that records it can be.
    auto* in = new Intake(*this, std::move(work), json, claims_->changed());
    in->budget_bytes = bytes;
    in->next = intakes_;
    if (intakes_ != nullptr) intakes_->prev = in;
    intakes_ = in;
    ++in_flight_;
    if (json) ++jobs_in_flight_;
    added = true;
  }
  if (added) claims_->sync();
}

// The claim: a rename into the work directory under an id from the writer, which hands out
// each id once over the life of the spool (docs/spool-format.md §6), so no other file is
// ever given it; the work directory has no other writer. False (errno set): not renamed.
bool PickupWatcher::claim(int from_fd, const std::string& from, Work& work) noexcept {
  std::string target = pickup_claim(writer_.allocate_id(), work.name);
  if (::renameat(from_fd, from.c_str(), work_fd_, target.c_str()) != 0) return false;
  work.claim = std::move(target);
  return true;
}

void PickupWatcher::finished(Intake* in) noexcept {
  if (in->prev != nullptr) in->prev->next = in->next;
  else intakes_ = in->next;
  if (in->next != nullptr) in->next->prev = in->prev;
  --in_flight_;
  bytes_in_flight_ -= in->budget_bytes;
  if (in->json()) --jobs_in_flight_;
  delete in;
  pump();
}

void PickupWatcher::retry_later(Work work) noexcept {
  retries_.emplace_back(shard_.clock().now() + shared_.retry_delay, std::move(work));
}

void PickupWatcher::move_to_failed(const Work& work, const PickupError& error) noexcept {
  ++stats_.files_failed;
  const std::string& name = work.name;
  std::string target = name;
  for (int i = 1; i < 1000; ++i) {
    struct stat st{};
    if (::fstatat(failed_fd_, target.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) break;
    target = fmt::format("{}.{}", name, i);
  }
  std::string text = error.describe() + "\n";
  if (!write_whole_file(failed_fd_, target + ".error", text)) {
    log::warn("pickup {}: cannot write failed/{}.error: {}", name, target, std::strerror(errno));
  }
  // Not moved, it stays claimed: read again (and refused again) at the next start only.
  if (::renameat(work_fd_, work.claim.c_str(), failed_fd_, target.c_str()) != 0) {
    log::error("pickup {}: malformed ({}) and cannot be moved to failed/: {}; left as {}/{}", name,
               error.describe(), std::strerror(errno), work_dir_, work.claim);
    return;
  }
  ::fsync(failed_fd_);
  ::fsync(work_fd_);
  log::warn("pickup {}: moved to failed/{}: {}", name, target, error.describe());
}

void PickupWatcher::begin_stop() noexcept {
  if (stopping_) return;
  stopping_ = true;
  queue_.clear();  // claimed ones stay in the work directory for the next start
  retries_.clear();
  if (watch_) watch_->stop();
  for (Intake* in = intakes_; in != nullptr; in = in->next) in->stop();
}

bool PickupWatcher::drained() const noexcept { return intakes_ == nullptr; }

namespace {

constexpr metrics::Family kFilesFailed{"salvo_pickup_files_failed_total", metrics::Type::Counter,
                                       "Pickup files moved to pickup/failed/ as malformed."};

}  // namespace

void PickupWatcher::report(metrics::Snapshot& s) const {
  const std::string pickup = metrics::label("source", "pickup");
  s.add(kReceivedMessages, pickup, stats_.messages_queued);
  s.add(kReceivedRecipients, pickup, stats_.recipients_queued);
  s.add(kFilesFailed, {}, stats_.files_failed);
}

}  // namespace salvo::inbound
