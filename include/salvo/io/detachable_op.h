// SPDX-License-Identifier: Apache-2.0
// DetachableOp: a heap io::Completion that forwards its result to an owner and may outlive
// it (a Completion lives until its last call). The owner arms it for one operation at a
// time; when the owner goes away it calls release(): an idle op is freed at once, an armed
// one is cancelled and frees itself at its final completion (so let the engine run a few
// more times). Used for timers and long-lived reads (spool batch timer, pickup inotify read
// and tick, DNS kicker).
#pragma once

#include <cstdint>

#include <salvo/io/engine.h>

namespace salvo::io {

struct NoPayload {};

// Payload: optional storage that lives as long as the op (an inotify read buffer).
template <class Owner, void (Owner::*OnComplete)(std::int32_t) noexcept,
          class Payload = NoPayload>
class DetachableOp final : public Completion {
 public:
  explicit DetachableOp(Owner* owner) noexcept : owner_(owner) {}

  Payload& payload() noexcept { return payload_; }
  bool armed() const noexcept { return armed_; }
  // Call right before submitting the operation that completes on this object.
  void arm() noexcept { armed_ = true; }
  // The owner is going away: frees now, or cancels and frees at the final completion.
  void release(Engine& engine) noexcept {
    if (!armed_) {
      delete this;
      return;
    }
    owner_ = nullptr;
    engine.cancel(this);
  }

  void on_complete(std::int32_t res, std::uint32_t) noexcept override {
    armed_ = false;
    if (owner_ == nullptr) {
      delete this;
      return;
    }
    (owner_->*OnComplete)(res);
  }

 private:
  Owner* owner_;
  bool armed_ = false;
  [[no_unique_address]] Payload payload_{};
};

}  // namespace salvo::io
