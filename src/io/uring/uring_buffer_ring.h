// SPDX-License-Identifier: Apache-2.0
// UringBufferRing: a provided-buffer ring (io_uring_register_buf_ring) for multishot recv.
// Owned by its UringEngine and used on that engine's thread only.
#pragma once

#include <cstdint>
#include <memory>

#include <salvo/base/result.h>
#include <salvo/io/engine.h>

#include "io/uring/liburing_include.h"

namespace salvo::io::uring {

// count buffers of size bytes each in one allocation; the kernel picks the next buffer
// for each receive and names it in the CQE; recycle() hands it back (tail += 1).
// Limits: count is a power of two <= 32768.
class UringBufferRing final : public BufferRing {
 public:
  // Diagnostics: invalid_argument for a bad count or size; the kernel's errno when the
  // registration is refused (EINVAL: buffer rings unsupported, EEXIST: group in use).
  static Result<std::unique_ptr<UringBufferRing>> create(io_uring* ring, std::uint16_t group,
                                                         std::uint16_t count,
                                                         std::uint32_t size);
  ~UringBufferRing() override;
  UringBufferRing(const UringBufferRing&) = delete;
  UringBufferRing& operator=(const UringBufferRing&) = delete;

  std::uint16_t group() const noexcept override { return group_; }
  std::span<char> buffer(std::uint16_t id) noexcept override;
  void recycle(std::uint16_t id) noexcept override;

  // Unregisters from the kernel now (the engine calls it before tearing the ring down).
  void unregister() noexcept;

 private:
  UringBufferRing() = default;

  io_uring* ring_ = nullptr;
  io_uring_buf_ring* br_ = nullptr;
  std::size_t br_bytes_ = 0;
  std::unique_ptr<char[]> data_;
  std::uint16_t group_ = 0;
  std::uint16_t count_ = 0;
  std::uint32_t size_ = 0;
  bool registered_ = false;
};

}  // namespace salvo::io::uring
