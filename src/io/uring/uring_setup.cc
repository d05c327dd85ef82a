// SPDX-License-Identifier: Apache-2.0
// UringEngine::create: ring set-up with optional flags (retried without them when the
// kernel refuses), the start-up probe of required ops and features, and one-line reasons.
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include <salvo/base/log.h>

#include "io/uring/uring_buffer_ring.h"
#include "io/uring/uring_engine.h"

namespace salvo::io::uring {
namespace {

struct OpName {
  int op;
  const char* name;
};

// Ops salvo cannot run without (sockets, spool files, timers, cancellation).
constexpr std::array kRequiredOps{
    OpName{IORING_OP_ACCEPT, "accept"},       OpName{IORING_OP_CONNECT, "connect"},
    OpName{IORING_OP_RECV, "recv"},           OpName{IORING_OP_SEND, "send"},
    OpName{IORING_OP_SENDMSG, "sendmsg"},     OpName{IORING_OP_CLOSE, "close"},
    OpName{IORING_OP_READ, "read"},           OpName{IORING_OP_WRITE, "write"},
    OpName{IORING_OP_WRITEV, "writev"},       OpName{IORING_OP_FSYNC, "fsync"},
    OpName{IORING_OP_TIMEOUT, "timeout"},     OpName{IORING_OP_ASYNC_CANCEL, "async_cancel"},
    OpName{IORING_OP_SHUTDOWN, "shutdown"},   OpName{IORING_OP_NOP, "nop"},
};

struct FeatName {
  unsigned bit;
  const char* name;
};
constexpr std::array kRequiredFeatures{
    FeatName{IORING_FEAT_NODROP, "nodrop"},
    FeatName{IORING_FEAT_SUBMIT_STABLE, "submit_stable"},
    FeatName{IORING_FEAT_FAST_POLL, "fast_poll"},
    FeatName{IORING_FEAT_EXT_ARG, "ext_arg"},
};

std::string read_sysctl(const char* path) {
  std::ifstream in(path);
  std::string v;
  if (in) std::getline(in, v);
  return v;
}

std::string setup_failure(int err, unsigned depth) {
  std::string disabled = read_sysctl("/proc/sys/kernel/io_uring_disabled");
  switch (err) {
    case ENOSYS:
      return "io_uring unavailable: the kernel has no io_uring_setup (ENOSYS; too old or "
             "compiled out)";
    case EPERM:
      return "io_uring unavailable: io_uring_setup refused (EPERM; kernel.io_uring_disabled=" +
             (disabled.empty() ? std::string("?") : disabled) +
             ", or a seccomp/container policy blocks it)";
    case ENOMEM:
      return "io_uring unavailable: io_uring_setup ENOMEM for queue depth " +
             std::to_string(depth) + " (raise RLIMIT_MEMLOCK or lower queue_depth)";
    default:
      return std::string("io_uring unavailable: io_uring_setup failed: ") + std::strerror(err);
  }
}

}  // namespace

Result<std::unique_ptr<UringEngine>> UringEngine::create(const EngineOptions& options,
                                                         std::string* why) {
  auto set_why = [&](std::string s) {
    if (why != nullptr) *why = std::move(s);
  };
  std::unique_ptr<UringEngine> e(new UringEngine());
  e->options_ = options;
  unsigned depth = options.queue_depth;
  if (depth < 8) depth = 8;
  if (depth > 32768) depth = 32768;

  // Most wanted first; each refusal (EINVAL) drops the newest flags. R_DISABLED goes with
  // SINGLE_ISSUER: the ring binds to the task that enables it, i.e. the shard thread.
  constexpr unsigned kSingle = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_R_DISABLED;
  std::array<unsigned, 4> tries{
      kSingle | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN,
      kSingle | IORING_SETUP_COOP_TASKRUN, IORING_SETUP_COOP_TASKRUN, 0};
  std::size_t first = options.try_taskrun_flags ? 0 : tries.size() - 1;
  int rc = -EINVAL;
  io_uring_params params{};
  for (std::size_t i = first; i < tries.size() && rc == -EINVAL; ++i) {
    for (unsigned extra : {unsigned{IORING_SETUP_SUBMIT_ALL}, 0u}) {
      params = io_uring_params{};
      params.flags = tries[i] | extra | IORING_SETUP_CQSIZE;
      params.cq_entries = depth * 2;
      rc = io_uring_queue_init_params(depth, &e->ring_, &params);
      if (rc != -EINVAL) break;
    }
  }
  if (rc < 0) {
    set_why(setup_failure(-rc, depth));
    return fail(std::errc::not_supported);
  }
  e->ring_ready_ = true;
  e->setup_flags_ = params.flags;
  e->enabled_ = (params.flags & IORING_SETUP_R_DISABLED) == 0;

  std::string missing;
  for (const auto& f : kRequiredFeatures) {
    if ((params.features & f.bit) == 0) missing += std::string(" ") + f.name;
  }
  io_uring_probe* probe = io_uring_get_probe_ring(&e->ring_);
  if (probe == nullptr) {
    set_why("io_uring unavailable: the kernel cannot report supported ops (probe failed)");
    return fail(std::errc::not_supported);
  }
  for (const auto& op : kRequiredOps) {
    if (!io_uring_opcode_supported(probe, op.op)) missing += std::string(" ") + op.name;
  }
  Features& ft = e->features_;
  ft.msg_ring = io_uring_opcode_supported(probe, IORING_OP_MSG_RING) != 0;
  ft.send_zc = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC) != 0;
  // No probe bit exists for multishot flags: IORING_OP_SOCKET shipped with multishot
  // accept (5.19) and IORING_OP_SEND_ZC with multishot recv (6.0).
  ft.multishot_accept = io_uring_opcode_supported(probe, IORING_OP_SOCKET) != 0;
  ft.multishot_recv = ft.send_zc;
  io_uring_free_probe(probe);
  if (!missing.empty()) {
    set_why("io_uring too old: missing required" + missing + " (Linux >= 6.0 needed)");
    return fail(std::errc::not_supported);
  }
  // Buffer rings: try one and throw it away (5.19+).
  {
    auto trial = UringBufferRing::create(&e->ring_, 0xffff, 1, 64);
    ft.buffer_rings = trial.has_value();
  }
  ft.multishot_recv = ft.multishot_recv && ft.buffer_rings;
  ft.single_issuer = (params.flags & IORING_SETUP_SINGLE_ISSUER) != 0;
  ft.defer_taskrun = (params.flags & IORING_SETUP_DEFER_TASKRUN) != 0;
  ft.coop_taskrun = (params.flags & IORING_SETUP_COOP_TASKRUN) != 0;
  e->cqe_skip_ = (params.features & IORING_FEAT_CQE_SKIP) != 0;

  // The eventfd read stays armed for the life of the engine: any thread can wake it.
  e->event_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (e->event_fd_ < 0) {
    set_why(std::string("io_uring engine: eventfd failed: ") + std::strerror(errno));
    return fail_errno(errno);
  }
  e->arm_eventfd_read();
  return e;
}

}  // namespace salvo::io::uring
