// SPDX-License-Identifier: Apache-2.0
// OwnedBy: the debug-only ownership guard (after Redpanda's oncore.h). A member
// records the shard that constructed its object; mutators call check(). Release builds
// compile it to nothing.
#pragma once

#include <salvo/base/assert.h>
#include <salvo/shard/shard.h>

namespace salvo::shard {

class OwnedBy {
 public:
#ifndef NDEBUG
  OwnedBy() noexcept : owner_(this_shard()) {}
  // Aborts (debug builds) when called from another shard than the constructing one.
  // Objects built outside any shard (tests, start-up) are owned by "no shard".
  void check() const noexcept { SALVO_ASSERT(this_shard() == owner_); }
  // Hands the object to the calling shard (after it was moved there by message).
  void adopt() noexcept { owner_ = this_shard(); }

 private:
  Shard* owner_;
#else
  void check() const noexcept {}
  void adopt() noexcept {}
#endif
};

}  // namespace salvo::shard
