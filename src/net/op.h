// SPDX-License-Identifier: Apache-2.0
// Small building blocks of the kernel stack: Op routes an engine completion to a member
// function of its owner; Deferred is an object the stack runs later from its ready list.
#pragma once

#include <cstdint>

#include <salvo/io/engine.h>

namespace salvo::net {

class KernelStack;

// One io::Completion per kind of operation an object issues (recv, send, timer...). The
// owner counts what is in flight; the engine contract keeps the Op alive until its last call.
template <class Owner>
class Op final : public io::Completion {
 public:
  using Handler = void (Owner::*)(std::int32_t res, std::uint32_t flags) noexcept;
  Op(Owner* owner, Handler handler) noexcept : owner_(owner), handler_(handler) {}
  Op(const Op&) = delete;
  Op& operator=(const Op&) = delete;

  void on_complete(std::int32_t res, std::uint32_t flags) noexcept override {
    (owner_->*handler_)(res, flags);
  }

 private:
  Owner* owner_;
  Handler handler_;
};

// Work that must not run inside the caller's stack frame: on_data after resume_reading(),
// on_close and the destruction of a connection once its last completion arrived. The
// KernelStack runs these from a zero-length engine timer, so no ShardSet is needed.
class Deferred {
 public:
  virtual void run_deferred() noexcept = 0;

 protected:
  virtual ~Deferred() = default;

 private:
  friend class KernelStack;
  bool queued_ = false;
};

}  // namespace salvo::net
