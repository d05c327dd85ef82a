// SPDX-License-Identifier: Apache-2.0
// Power-loss replays (docs/reliability.md, "Power-loss replays"; issue 15): the real
// SpoolWriter runs a seeded workload (messages of every size up to past a segment, several
// recipients, bulk jobs, deferred and final states, injected write and fdatasync failures
// and short writes) on a RecordingEngine. Each replay cuts the power at one tick of that
// log, builds the disk as it could then be (power_cut(): writes after the last completed
// barrier dropped, torn or reordered; a create, rename or unlink cut off), runs recover()
// on it, and checks:
//  - lost: every message and job acknowledged before the cut is there, with its bytes,
//    unless every one of its recipients was given a final state before the cut (then it
//    may be gone, its segment reclaimed);
//  - false: everything recovered was appended, and is exactly what was appended;
//  - state: no recipient is in a state the workload never gave it, nor behind a state whose
//    commit was acknowledged before the cut;
//  - ids: the next id is above every id handed out before the cut.
// SALVO_POWER_LOSS_POINTS sets the replays of PowerLoss.ReplaysLoseNothing (default 3000,
// 600 under ASan) and of PowerLossSoak (default 30,000 over ten seeds; label soak).
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <salvo/spool/errc.h>
#include <salvo/spool/recovery.h>
#include <salvo/spool/spool_reader.h>
#include <salvo/spool/spool_writer.h>

#include "spool_test_util.h"
#include "support/fake_engine.h"
#include "support/power_loss.h"
#include "support/test_clock.h"

namespace salvo::spool::test {
namespace {

using namespace std::chrono_literals;
using salvo::test::CutStats;
using salvo::test::FakeEngine;
using salvo::test::FakeMode;
using salvo::test::kNever;
using salvo::test::OpKind;
using salvo::test::RecordingEngine;
using salvo::test::TestClock;
using salvo::test::Tick;

struct Update {
  RecipientState state = RecipientState::Pending;
  std::uint32_t attempts = 0;
  Tick appended = kNever;
  Tick acked = kNever;
};

// A message or a job as the workload appended it.
struct Sent {
  bool job = false;
  std::vector<std::string> rcpts;
  std::string body;                          // the message body, or the job's template content
  Tick appended = kNever;                    // just before the append call
  Tick returned = kNever;                    // just after it: its id was handed out
  Tick acked = kNever;                       // the message's commit, or the job commit's
  std::vector<std::vector<Update>> updates;  // per recipient, in append order
  std::vector<std::uint64_t> dsn;            // per recipient: the DSN of its bounce, or 0
};

class Workload;

// The waiter of one append. Only a message's commit, a job's commit and state records are
// promises; a job's template and batches are acknowledged too, but promise nothing.
// A DSN is committed before the bounces that caused it are appended, as outbound does.
class Ack final : public CommitWaiter {
 public:
  using States = std::vector<std::pair<std::uint32_t, std::size_t>>;  // (recipient, update)
  enum class Kind : std::uint8_t { Silent, Promise, Dsn };
  Ack(Workload& w, std::uint64_t id, Kind kind, States states = {}, std::uint64_t about = 0)
      : w_(w), id_(id), kind_(kind), states_(std::move(states)), about_(about) {}
  void on_committed(Status st) noexcept override;
  void set_id(std::uint64_t id) noexcept { id_ = id; }

 private:
  Workload& w_;
  std::uint64_t id_;
  Kind kind_;
  States states_;        // Promise: the updates it commits; Dsn: the bounces waiting for it
  std::uint64_t about_;  // Dsn: the message the bounces are for
};

struct WorkloadOptions {
  std::uint64_t seed = 1;
  int steps = 600;
  std::uint64_t segment_size = 32 * 1024;
  std::uint32_t batch_max_records = 8;
  std::uint64_t batch_max_bytes = 16 * 1024;
  std::uint32_t commits_in_flight = 2;
};

// One shard's SpoolWriter on a RecordingEngine over a FakeEngine (writes and fdatasyncs
// succeed unless a fault is scripted), driven by a seeded mix of appends, engine turns,
// flushes, timer ticks and faults; it remembers what it appended and what was acknowledged
// when. Test thread only.
class Workload {
 public:
  Workload(const std::string& dir, const WorkloadOptions& o)
      : o_(o), rng_(o.seed), fake_(clock_, FakeMode::Auto), engine_(fake_, dir) {
    auto r = recover(dir, 0);
    EXPECT_TRUE(r);
    if (!r) return;
    recovered_ = std::make_unique<RecoveryResult>(std::move(*r));
    writer_ = std::make_unique<SpoolWriter>(engine_, clock_,
                                            WriterOptions{.dir = dir,
                                                          .segment_size = o.segment_size,
                                                          .batch_max_records = o.batch_max_records,
                                                          .batch_max_bytes = o.batch_max_bytes,
                                                          .commits_in_flight =
                                                              o.commits_in_flight,
                                                          .reserve_bytes = 0},
                                            recovered_->index, recovered_->next_segment,
                                            recovered_->next_id);
  }
  ~Workload() {
    writer_.reset();
    for (int i = 0; i < 4; ++i) engine_.run_once(0ms);
  }

  void run() {
    if (!writer_) return;
    for (int i = 0; i < o_.steps; ++i) step();
    writer_->flush();
    for (int i = 0; i < 1000 && !writer_->idle(); ++i) {
      clock_.advance(1ms);
      engine_.run_once(0ms);
    }
    EXPECT_TRUE(writer_->idle());
  }

  void acked(std::uint64_t id, const Ack::States& states) {
    const Tick t = engine_.mark();
    Sent& s = sent_.at(id);
    if (states.empty()) {
      s.acked = t;
      ready_.push_back(id);
    }
    for (auto [r, i] : states) s.updates[r][i].acked = t;
  }

  // The bounces are appended once their DSN is durable; if it failed, they are not.
  void dsn_done(bool ok, std::uint64_t dsn, std::uint64_t about, const Ack::States& bounced) {
    Sent& s = sent_.at(about);
    if (!ok) {
      for (auto it = bounced.rbegin(); it != bounced.rend(); ++it) {
        s.updates[it->first].pop_back();  // the placeholder, still the last update
        s.dsn[it->first] = 0;
      }
      return;
    }
    acked(dsn, {});
    std::vector<StateUpdate> ups;
    const Tick t = engine_.mark();
    for (auto [r, i] : bounced) {
      Update& u = s.updates[r][i];
      u.appended = t;
      ups.push_back({MessageId(about), RecipientIndex(r), u.state, u.attempts, 0});
    }
    Ack& ack = acks_.emplace_back(*this, about, Ack::Kind::Promise, bounced);
    EXPECT_TRUE(writer_->append_states(ups, &ack));
  }

  const salvo::test::IoRecording& recording() const { return engine_.recording(); }
  const std::map<std::uint64_t, Sent>& sent() const { return sent_; }
  std::uint64_t faults() const { return faults_; }
  const Stats& writer_stats() const { return writer_->stats(); }

 private:
  std::string random_text(std::size_t n) {
    std::string s(n, 'x');
    for (char& c : s) c = static_cast<char>('a' + rng_() % 26);
    if (n >= 2) {
      s[n - 2] = '\r';
      s[n - 1] = '\n';
    }
    return s;
  }

  void step() {
    const auto r = rng_() % 100;
    if (r < 40) {
      append_message();
    } else if (r < 62) {
      append_states();
    } else if (r < 68) {
      append_job();
    } else if (r < 72) {
      inject_fault();
    } else if (r < 86) {
      engine_.run_once(0ms);
    } else if (r < 93) {
      writer_->flush();
    } else {
      clock_.advance(1ms);  // the batch timer
      engine_.run_once(0ms);
    }
  }

  void append_message() {
    Sent s;
    const auto n = 1 + rng_() % 4;
    for (std::uint64_t k = 0; k < n; ++k) {
      s.rcpts.push_back(fmt::format("u{}@d{}.example", rng_() % 100000, k));
    }
    const bool big = rng_() % 25 == 0;  // half a segment to one and a half: rollover, a
                                        // segment of its own
    const std::size_t size =
        big ? o_.segment_size / 2 + rng_() % o_.segment_size : 20 + rng_() % 1500;
    s.body = random_text(size);
    s.updates.resize(n);
    s.dsn.resize(n);
    MessageRecord m;
    m.received_unix_ns = 1'767'225'600'000'000'000;
    m.reverse_path = "sender@example.org";
    m.body = s.body;
    for (const auto& a : s.rcpts) m.recipients.push_back({a, kNotifyFailure, {}});
    Ack& ack = acks_.emplace_back(*this, 0, Ack::Kind::Promise);
    s.appended = engine_.mark();
    auto id = writer_->append_message(m, &ack);
    ASSERT_TRUE(id) << id.error().message();
    ack.set_id(id->value());
    s.returned = engine_.mark();
    sent_.emplace(id->value(), std::move(s));
  }

  void append_job() {
    Sent s;
    s.job = true;
    s.body = "Subject: {{ name }}\r\n\r\n" + random_text(200 + rng_() % 1200);
    JobTemplateRecord t;
    t.received_unix_ns = 1'767'225'600'000'000'000;
    t.from = "bulk@example.org";
    t.job = "campaign";
    t.content = s.body;
    Ack& tack = acks_.emplace_back(*this, 0, Ack::Kind::Silent);
    s.appended = engine_.mark();
    auto id = writer_->append_job_template(t, &tack);
    ASSERT_TRUE(id) << id.error().message();
    s.returned = engine_.mark();
    Sent& kept = sent_.emplace(id->value(), std::move(s)).first->second;
    const auto batches = 1 + rng_() % 3;
    std::uint32_t first = 0;
    for (std::uint64_t b = 0; b < batches; ++b) {
      JobRecipientsRecord rec;
      rec.job_id = *id;
      rec.first_index = first;
      const auto n = 1 + rng_() % 4;
      const std::size_t at = kept.rcpts.size();
      for (std::uint64_t k = 0; k < n; ++k) {
        kept.rcpts.push_back(fmt::format("j{}@bulk.example", rng_() % 100000));
      }
      for (std::size_t k = at; k < kept.rcpts.size(); ++k) {
        rec.recipients.push_back({kept.rcpts[k], 0, {}, {{"name", kept.rcpts[k]}}});
      }
      Ack& back = acks_.emplace_back(*this, id->value(), Ack::Kind::Silent);
      kept.updates.resize(kept.rcpts.size());
      kept.dsn.resize(kept.rcpts.size());
      if (auto st = writer_->append_job_recipients(rec, &back); !st) {
        // An earlier record of the job failed (an injected fault): the intake gives it up.
        ASSERT_EQ(st.error(), make_error_code(errc::job_failed)) << st.error().message();
        ASSERT_TRUE(writer_->abandon_job(*id));
        return;
      }
      first += static_cast<std::uint32_t>(n);
      engine_.observe();
      if (rng_() % 2 == 0) engine_.run_once(0ms);
    }
    Ack& cack = acks_.emplace_back(*this, id->value(), Ack::Kind::Promise);
    if (auto st = writer_->append_job_commit(JobCommitRecord{*id, first, std::nullopt}, &cack);
        !st) {
      // The same: the writer has given the job up itself.
      ASSERT_EQ(st.error(), make_error_code(errc::job_failed)) << st.error().message();
    }
    engine_.observe();
  }

  void append_states() {
    std::vector<StateUpdate> ups;
    Ack::States where, bounced;
    std::uint64_t id = 0;
    for (int tries = 0; tries < 8 && !ready_.empty() && ups.empty() && bounced.empty();
         ++tries) {
      const std::size_t pick = rng_() % ready_.size();
      id = ready_[pick];
      Sent& s = sent_.at(id);
      const auto want = 1 + rng_() % 3;
      for (std::uint32_t r = 0; r < s.rcpts.size() && ups.size() < want; ++r) {
        auto& u = s.updates[r];
        if (!u.empty() && is_final(u.back().state)) continue;
        if (rng_() % 2 == 0) continue;
        const auto kind = rng_() % 10;
        Update next;
        next.state = kind < 6   ? RecipientState::Deferred
                     : kind < 9 ? RecipientState::Delivered
                                : RecipientState::Bounced;
        next.attempts = (u.empty() ? 0 : u.back().attempts) + 1;
        if (next.state == RecipientState::Bounced) {  // appended once its DSN is durable
          bounced.emplace_back(r, u.size());
          u.push_back(next);
          continue;
        }
        ups.push_back(StateUpdate{MessageId(id), RecipientIndex(r), next.state, next.attempts,
                                  1'767'229'200'000'000'000 + next.attempts});
        where.emplace_back(r, u.size());
        u.push_back(next);
      }
      if (ups.empty() && bounced.empty()) {
        // Nothing left to change here: forget it.
        const bool open = std::any_of(s.updates.begin(), s.updates.end(), [](const auto& u) {
          return u.empty() || !is_final(u.back().state);
        });
        if (!open) {
          ready_[pick] = ready_.back();
          ready_.pop_back();
        }
      }
    }
    if (!bounced.empty()) append_dsn(id, bounced);
    if (ups.empty()) return;
    Sent& s = sent_.at(id);
    const Tick t = engine_.mark();
    for (auto [r, i] : where) s.updates[r][i].appended = t;
    Ack& ack = acks_.emplace_back(*this, id, Ack::Kind::Promise, where);
    ASSERT_TRUE(writer_->append_states(ups, &ack));
    engine_.observe();
  }

  void append_dsn(std::uint64_t about, const Ack::States& bounced) {
    Sent d;
    d.rcpts = {"sender@example.org"};
    d.body = fmt::format("Subject: Undelivered Mail {}\r\n\r\n", about) + random_text(300);
    d.updates.resize(1);
    d.dsn.resize(1);
    MessageRecord m;
    m.source = Source::Dsn;
    m.body = d.body;
    m.recipients.push_back({d.rcpts[0], 0, {}});
    Ack& ack = acks_.emplace_back(*this, 0, Ack::Kind::Dsn, bounced, about);
    d.appended = engine_.mark();
    auto id = writer_->append_message(m, &ack);
    ASSERT_TRUE(id) << id.error().message();
    ack.set_id(id->value());
    d.returned = engine_.mark();
    for (auto [r, i] : bounced) sent_.at(about).dsn[r] = id->value();
    sent_.emplace(id->value(), std::move(d));
  }

  void inject_fault() {
    ++faults_;
    switch (rng_() % 5) {
      case 0:
      case 1:
        fake_.script(OpKind::Fdatasync, -EIO);
        break;
      case 2:
        fake_.script(OpKind::Write, -EIO);
        break;
      default:  // short: every batch holds more than 64 bytes
        fake_.script(OpKind::Write, static_cast<std::int32_t>(1 + rng_() % 64));
        break;
    }
  }

  WorkloadOptions o_;
  std::mt19937_64 rng_;
  TestClock clock_;
  FakeEngine fake_;
  RecordingEngine engine_;
  std::unique_ptr<RecoveryResult> recovered_;
  std::unique_ptr<SpoolWriter> writer_;
  std::map<std::uint64_t, Sent> sent_;
  std::vector<std::uint64_t> ready_;  // acknowledged, with recipients not yet final
  std::deque<Ack> acks_;
  std::uint64_t faults_ = 0;
};

void Ack::on_committed(Status st) noexcept {
  if (kind_ == Kind::Dsn) {
    w_.dsn_done(st.has_value(), id_, about_, states_);
  } else if (st && kind_ == Kind::Promise) {
    w_.acked(id_, states_);
  }
}

struct Verdict {
  std::uint64_t points = 0;
  std::uint64_t acked_seen = 0;  // acknowledged messages and jobs, summed over the points
  std::uint64_t lost = 0;
  std::uint64_t false_found = 0;  // recovered but never appended, or not what was appended
  std::uint64_t bad_state = 0;
  std::uint64_t bad_next_id = 0;
  std::uint64_t missing_dsn = 0;  // a bounce recovered without the DSN committed before it
  std::uint64_t recover_failed = 0;
  std::uint64_t torn = 0, quarantined = 0, bad_segments = 0;
  CutStats cut;
  std::vector<std::string> first_problems;
  void note(const std::string& what) {
    if (first_problems.size() < 12) first_problems.push_back(what);
  }
};

// The states a recipient may be found in after the cut: any update appended before it from
// the last acknowledged one on; pending only when none was acknowledged.
bool state_allowed(const std::vector<Update>& ups, Tick cut, RecipientState got,
                   std::uint32_t attempts) {
  std::size_t from = 0;
  bool any_acked = false;
  for (std::size_t i = 0; i < ups.size(); ++i) {
    if (ups[i].acked < cut) {
      from = i;
      any_acked = true;
    }
  }
  if (!any_acked && got == RecipientState::Pending) return true;
  for (std::size_t i = from; i < ups.size(); ++i) {
    if (ups[i].appended >= cut) break;
    if (ups[i].state != got) continue;
    if (got != RecipientState::Deferred || ups[i].attempts == attempts) return true;
  }
  return false;
}

// Every recipient was given a final state before the cut: once those records are on disk
// the message is gone from the index (and its segment may be reclaimed), whether or not
// their commit was acknowledged.
bool all_final(const Sent& s, Tick cut) {
  return std::all_of(s.updates.begin(), s.updates.end(), [&](const std::vector<Update>& u) {
    return std::any_of(u.begin(), u.end(),
                       [&](const Update& x) { return is_final(x.state) && x.appended < cut; });
  });
}

// The recovered message or job `id` is the one appended: its record (and a job's batches)
// read back and compared.
bool same_content(const std::string& dir, const SpoolIndex::Entry& e, const Sent& s) {
  auto rec = read_record(dir, e.loc);
  if (!rec) return false;
  if (!s.job) {
    auto m = decode_message(rec->raw.payload);
    if (!m || m->body != s.body || m->recipients.size() != s.rcpts.size()) return false;
    for (std::size_t i = 0; i < s.rcpts.size(); ++i) {
      if (m->recipients[i].address != s.rcpts[i]) return false;
    }
    return true;
  }
  auto t = decode_job_template(rec->raw.payload);
  if (!t || t->content != s.body || e.state.size() != s.rcpts.size()) return false;
  for (const auto& b : e.batches) {
    auto br = read_record(dir, b.loc);
    if (!br) return false;
    auto jr = decode_job_recipients(br->raw.payload);
    if (!jr || jr->first_index != b.first || jr->recipients.size() != b.count) return false;
    for (std::uint32_t i = 0; i < b.count; ++i) {
      if (jr->recipients[i].address != s.rcpts[b.first + i]) return false;
    }
  }
  return true;
}

void check(const Workload& w, Tick cut, const std::string& dir, const RecoveryResult& r, Verdict& v,
           const std::string& where) {
  const auto& sent = w.sent();
  std::uint64_t max_id = 0;
  for (const auto& [id, s] : sent) {
    if (s.returned < cut) max_id = std::max(max_id, id);
    if (s.acked >= cut) continue;
    ++v.acked_seen;
    const auto e = r.index.find(MessageId(id));
    if ((!e || !e->committed) && !all_final(s, cut)) {
      ++v.lost;
      v.note(where + ": acknowledged " + (s.job ? "job " : "message ") + format_id(id) +
             " not recovered");
    }
  }
  r.index.for_each([&](MessageId id, const SpoolIndex::Entry& e) {
    auto it = sent.find(id.value());
    if (it == sent.end() || it->second.appended >= cut) {
      ++v.false_found;
      v.note(where + ": recovered " + format_id(id.value()) + ", never appended");
      return;
    }
    if (!e.committed) return;
    const Sent& s = it->second;
    if (!same_content(dir, e, s)) {
      ++v.false_found;
      v.note(where + ": recovered " + format_id(id.value()) + " differs from what was appended");
      return;
    }
    for (std::uint32_t i = 0; i < e.state.size() && i < s.updates.size(); ++i) {
      const auto got = static_cast<RecipientState>(e.state[i]);
      std::uint32_t attempts = 0;
      const auto key = std::pair(id, RecipientIndex(i));
      auto d = std::lower_bound(r.deferred.begin(), r.deferred.end(), key,
                                [](const PendingRecipient& p, const auto& k) {
                                  return std::pair(p.message, p.recipient) < k;
                                });
      if (d != r.deferred.end() && d->message == id && d->recipient == key.second) {
        attempts = d->attempts;
      }
      if (got == RecipientState::Bounced) {
        const std::uint64_t dsn = i < s.dsn.size() ? s.dsn[i] : 0;
        auto ds = sent.find(dsn);
        if (dsn == 0 || ds == sent.end() ||
            (!r.index.contains(MessageId(dsn)) && !all_final(ds->second, cut))) {
          ++v.missing_dsn;
          v.note(where + ": " + format_id(id.value()) + " recipient " + std::to_string(i) +
                 " bounced, its DSN not recovered");
        }
      }
      if (!state_allowed(s.updates[i], cut, got, attempts)) {
        ++v.bad_state;
        v.note(where + ": " + format_id(id.value()) + " recipient " + std::to_string(i) +
               " recovered " + std::string(to_string(got)) + " (attempts " +
               std::to_string(attempts) + "), " + std::to_string(s.updates[i].size()) +
               " updates appended");
      }
    }
  });
  if (r.next_id.value() <= max_id) {
    ++v.bad_next_id;
    v.note(where + ": next id " + format_id(r.next_id.value()) + " not above " + format_id(max_id));
  }
  v.torn += r.report.torn_segments;
  v.quarantined += r.report.quarantined_segments;
  v.bad_segments += r.report.bad_segments;
}

// Under ASan a replay costs several times as much: fewer by default, still hundreds.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SALVO_POWER_LOSS_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(SALVO_POWER_LOSS_ASAN)
constexpr std::uint64_t kSuitePoints = 600;
#else
constexpr std::uint64_t kSuitePoints = 3000;
#endif

std::uint64_t env_points(std::uint64_t fallback) {
  const char* s = ::getenv("SALVO_POWER_LOSS_POINTS");
  if (s == nullptr || *s == '\0') return fallback;
  return std::strtoull(s, nullptr, 10);
}

std::vector<WorkloadOptions> workloads(std::uint64_t seed) {
  return {
      {.seed = seed, .steps = 600},
      {.seed = seed + 1,
       .steps = 600,
       .segment_size = 16 * 1024,
       .batch_max_records = 3,
       .commits_in_flight = 1},
      {.seed = seed + 2,
       .steps = 400,
       .segment_size = 64 * 1024,
       .batch_max_records = 32,
       .batch_max_bytes = 64 * 1024},
  };
}

// Runs `points` replays spread over the ticks of `rounds` times three seeded workloads.
Verdict replay(std::uint64_t points, std::uint64_t seed, std::uint64_t rounds = 1) {
  Verdict v;
  std::vector<WorkloadOptions> kinds;
  for (std::uint64_t round = 0; round < rounds; ++round) {
    for (const auto& k : workloads(seed + 10 * round)) kinds.push_back(k);
  }
  TempDir shm(::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
  for (std::size_t k = 0; k < kinds.size(); ++k) {
    const std::string src = shm.sub("src" + std::to_string(k));
    Workload w(src, kinds[k]);
    w.run();
    const auto& rec = w.recording();
    const Tick ticks = rec.next;
    const std::uint64_t n = points / kinds.size() + (k < points % kinds.size() ? 1 : 0);
    std::mt19937_64 rng(kinds[k].seed * 7919);
    const std::string img = shm.sub("img");
    for (std::uint64_t i = 0; i < n; ++i) {
      // Evenly over the ticks (every tick once there are more points than ticks), the end
      // included: the spool as the workload left it.
      const Tick cut = (i * (ticks + 1)) / n;
      auto image = salvo::test::power_cut(rec, cut, rng, &v.cut);
      auto st = salvo::test::write_image(img, image);
      EXPECT_TRUE(st) << st.error().message();
      if (!st) return v;
      ++v.points;
      const std::string where = "seed " + std::to_string(kinds[k].seed) + " tick " +
                                std::to_string(cut) + "/" + std::to_string(ticks);
      auto r = recover(img, 0);
      if (!r) {
        ++v.recover_failed;
        v.note(where + ": recover failed: " + r.error().message());
        continue;
      }
      check(w, cut, img, *r, v, where);
    }
    fmt::print(
        "[ power-loss ] seed {}: {} ticks, {} writes, {} barriers, {} files, {} faults "
        "injected, {} messages and jobs\n",
        kinds[k].seed, ticks, rec.writes.size(), rec.barriers.size(), rec.files.size(),
        w.faults(), w.sent().size());
  }
  fmt::print(
      "[ power-loss ] {} points: acknowledged checked {}, lost {}, false {}, bad states {}, "
      "bad next id {}, bounces without DSN {}, recover failed {}; torn tails {}, quarantined "
      "{}, bad headers {}; unsynced writes dropped {}, whole {}, torn {}; synced {}; "
      "creates/unlinks undone {}\n",
      v.points, v.acked_seen, v.lost, v.false_found, v.bad_state, v.bad_next_id, v.missing_dsn,
      v.recover_failed, v.torn, v.quarantined, v.bad_segments, v.cut.dropped, v.cut.whole,
      v.cut.torn, v.cut.durable, v.cut.files_lost);
  return v;
}

void expect_clean(const Verdict& v, std::uint64_t points) {
  EXPECT_EQ(v.points, points);
  EXPECT_GT(v.acked_seen, points);  // most cuts come after something was acknowledged
  EXPECT_EQ(v.lost, 0u);
  EXPECT_EQ(v.false_found, 0u);
  EXPECT_EQ(v.bad_state, 0u);
  EXPECT_EQ(v.bad_next_id, 0u);
  EXPECT_EQ(v.missing_dsn, 0u);
  EXPECT_EQ(v.recover_failed, 0u);
  for (const auto& p : v.first_problems) ADD_FAILURE() << p;
}

class PowerLoss : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { spdlog::set_level(spdlog::level::off); }
  static void TearDownTestSuite() { spdlog::set_level(spdlog::level::info); }
};

TEST_F(PowerLoss, ReplaysLoseNothing) {
  const std::uint64_t points = env_points(kSuitePoints);
  expect_clean(replay(points, 20261205), points);
}

// The replays' checks see what a disk that ignores flushes loses: with barriers counting for
// nothing, acknowledged mail goes missing at some cuts.
TEST_F(PowerLoss, TheChecksSeeWhatALyingDiskLoses) {
  TempDir shm(::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
  Workload w(shm.sub("src"), workloads(7)[0]);
  w.run();
  const auto& rec = w.recording();
  std::mt19937_64 rng(7);
  Verdict v;
  for (Tick cut = 0; cut <= rec.next; cut += 5) {
    auto image = salvo::test::power_cut(
        rec, cut, rng, &v.cut,
        {.unsynced = salvo::test::CutOptions::Unsynced::Drop, .barriers_hold = false});
    ASSERT_TRUE(salvo::test::write_image(shm.sub("img"), image));
    auto r = recover(shm.sub("img"), 0);
    ASSERT_TRUE(r);
    check(w, cut, shm.sub("img"), *r, v, "lying disk");
  }
  EXPECT_GT(v.lost, 100u);
  EXPECT_EQ(v.false_found, 0u);
}

// After a failed commit, the batches queued behind it move to a fresh segment. Records
// appended after that must be read after them: recovery reads segments in order. Found by
// the replays: a job committed after its template was moved was dropped at every restart
// (its commit sat in the older segment, read before the template), states of a moved
// message were read before it (the recipient pending again), and a recipient's older state
// moved past its newer one.
TEST_F(PowerLoss, RecordsKeepTheirOrderWhenQueuedBatchesMove) {
  TempDir tmp;
  const std::string dir = tmp.sub("shard-0");
  TestClock clock;
  FakeEngine fake(clock, FakeMode::Auto);
  RecordingEngine engine(fake, dir);
  auto recovered = recover(dir, 0);
  ASSERT_TRUE(recovered);
  // One commit at a time: the job's records are queued, not in flight, when m1's fdatasync
  // fails (the replays also run with two).
  SpoolWriter writer(engine, clock,
                     WriterOptions{.dir = dir,
                                   .segment_size = 8192,
                                   .batch_max_records = 1,
                                   .commits_in_flight = 1},
                     recovered->index, recovered->next_segment, recovered->next_id);
  auto pump = [&] {
    for (int i = 0; i < 50; ++i) engine.run_once(0ms);
  };
  MessageFixture fx;
  fx.body.assign(2200, 'b');  // three to a segment
  auto message = [&](Waiter& w) {
    MessageRecord m = fx.record();
    auto id = writer.append_message(m, &w);
    EXPECT_TRUE(id);
    return id ? *id : MessageId{};
  };
  auto state = [&](MessageId id, RecipientState s, std::uint32_t attempts) {
    const StateUpdate u{id, RecipientIndex(0), s, attempts, 1'767'229'200'000'000'000};
    ASSERT_TRUE(writer.append_states(std::span<const StateUpdate>(&u, 1), nullptr));
  };
  Waiter wx, w1, w2, w4, wjob;
  const MessageId x = message(wx);
  pump();
  ASSERT_EQ(wx.ok, 1);
  // Segment 1: x, then m1 (its commit will fail), and queued behind it: a job's template
  // and recipients, m2, and a deferred state of x. m4 does not fit: segment 2, with x's
  // next state behind it.
  fake.script(OpKind::Fdatasync, -EIO);
  message(w1);
  JobTemplateRecord t;
  t.content = "Subject: {{ name }}\r\n\r\nhi\r\n";
  auto job = writer.append_job_template(t, nullptr);
  ASSERT_TRUE(job);
  JobRecipientsRecord batch{*job, 0, {{"j@example.com", 0, {}, {}}}};
  ASSERT_TRUE(writer.append_job_recipients(batch, nullptr));
  ASSERT_TRUE(writer.append_job_commit(JobCommitRecord{*job, 1, std::nullopt}, &wjob));
  const MessageId m2 = message(w2);
  state(x, RecipientState::Deferred, 1);
  message(w4);
  state(x, RecipientState::Deferred, 2);
  EXPECT_EQ(writer.current_segment(), SegmentSeq(2));
  pump();
  ASSERT_EQ(w1.errors.size(), 1u);
  ASSERT_EQ(w2.ok, 1);
  ASSERT_EQ(w4.ok, 1);
  ASSERT_EQ(wjob.ok, 1);
  state(m2, RecipientState::Delivered, 1);  // after m2 was acknowledged, as delivery does
  pump();
  ASSERT_TRUE(writer.idle());

  std::mt19937_64 rng(1);
  auto image = salvo::test::power_cut(engine.recording(), engine.recording().next, rng, nullptr,
                                      {.unsynced = salvo::test::CutOptions::Unsynced::Drop});
  ASSERT_TRUE(salvo::test::write_image(tmp.sub("after"), image));
  auto r = recover(tmp.sub("after"), 0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->report.uncommitted_jobs, 0u);
  const auto j = r->index.find(*job);
  EXPECT_TRUE(j && j->committed) << "the acknowledged job was dropped";
  EXPECT_EQ(r->index.state(m2, RecipientIndex(0)), RecipientState::Delivered);
  EXPECT_EQ(r->report.orphan_states, 0u);
  EXPECT_EQ(r->index.state(x, RecipientIndex(0)), RecipientState::Deferred);
  ASSERT_EQ(r->deferred.size(), 1u);
  EXPECT_EQ(r->deferred[0].attempts, 2u) << "an older state was read after the newer one";
}

class PowerLossSoak : public PowerLoss {};

TEST_F(PowerLossSoak, ReplaysOverTenSeeds) {
  const std::uint64_t points = env_points(30000);
  expect_clean(replay(points, 15, 10), points);
}

}  // namespace
}  // namespace salvo::spool::test
