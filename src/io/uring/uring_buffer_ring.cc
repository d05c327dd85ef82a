// SPDX-License-Identifier: Apache-2.0
// Provided-buffer rings: liburing 2.3 has no io_uring_setup_buf_ring, so the ring memory
// is mapped here and registered with io_uring_register_buf_ring.
#include "io/uring/uring_buffer_ring.h"

#include <sys/mman.h>

#include <salvo/base/assert.h>

namespace salvo::io::uring {

Result<std::unique_ptr<UringBufferRing>> UringBufferRing::create(io_uring* ring,
                                                                 std::uint16_t group,
                                                                 std::uint16_t count,
                                                                 std::uint32_t size) {
  if (count == 0 || count > 32768 || (count & (count - 1)) != 0 || size == 0) {
    return fail(std::errc::invalid_argument);
  }
  std::unique_ptr<UringBufferRing> r(new UringBufferRing());
  r->ring_ = ring;
  r->group_ = group;
  r->count_ = count;
  r->size_ = size;
  // The ring entries must be page aligned: an anonymous mapping is.
  r->br_bytes_ = sizeof(io_uring_buf) * count;
  void* mem = ::mmap(nullptr, r->br_bytes_, PROT_READ | PROT_WRITE,
                     MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) return fail_errno(errno);
  r->br_ = static_cast<io_uring_buf_ring*>(mem);
  r->data_ = std::make_unique<char[]>(static_cast<std::size_t>(count) * size);

  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uintptr_t>(r->br_);
  reg.ring_entries = count;
  reg.bgid = group;
  int rc = io_uring_register_buf_ring(ring, &reg, 0);
  if (rc < 0) return fail_errno(-rc);
  r->registered_ = true;

  io_uring_buf_ring_init(r->br_);
  const int mask = io_uring_buf_ring_mask(count);
  for (std::uint16_t id = 0; id < count; ++id) {
    io_uring_buf_ring_add(r->br_, r->buffer(id).data(), size, id, mask, id);
  }
  io_uring_buf_ring_advance(r->br_, count);
  return r;
}

UringBufferRing::~UringBufferRing() {
  unregister();
  if (br_ != nullptr) ::munmap(br_, br_bytes_);
}

void UringBufferRing::unregister() noexcept {
  if (registered_) {
    (void)io_uring_unregister_buf_ring(ring_, group_);
    registered_ = false;
  }
}

std::span<char> UringBufferRing::buffer(std::uint16_t id) noexcept {
  SALVO_ASSERT(id < count_);
  return {data_.get() + static_cast<std::size_t>(id) * size_, size_};
}

void UringBufferRing::recycle(std::uint16_t id) noexcept {
  SALVO_ASSERT(id < count_);
  io_uring_buf_ring_add(br_, buffer(id).data(), size_, id, io_uring_buf_ring_mask(count_), 0);
  io_uring_buf_ring_advance(br_, 1);
}

}  // namespace salvo::io::uring
