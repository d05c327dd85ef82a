// SPDX-License-Identifier: Apache-2.0
// ByteBuffer: a contiguous, growable byte queue with a read and a write end. The input and
// output buffers of the sans-IO protocol sessions and of net connections.
// Single owner; not thread-safe.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>

namespace salvo {

class ByteBuffer {
 public:
  explicit ByteBuffer(std::size_t initial_capacity = 4096);
  ByteBuffer(ByteBuffer&&) noexcept = default;
  ByteBuffer& operator=(ByteBuffer&&) noexcept = default;

  // Bytes written and not yet consumed.
  std::string_view view() const noexcept { return {data_.get() + head_, tail_ - head_}; }
  std::span<const char> readable() const noexcept { return {data_.get() + head_, tail_ - head_}; }
  std::size_t size() const noexcept { return tail_ - head_; }
  bool empty() const noexcept { return head_ == tail_; }
  std::size_t capacity() const noexcept { return cap_; }

  // Drops n bytes from the read end (n <= size()).
  void consume(std::size_t n) noexcept;
  void clear() noexcept { head_ = tail_ = 0; }

  // Writable space of at least n bytes at the write end; make it readable with commit().
  std::span<char> prepare(std::size_t n);
  void commit(std::size_t n) noexcept;

  void append(std::string_view s);

  // Returns memory to the allocator when the buffer is empty and larger than `keep`.
  void shrink_if_empty(std::size_t keep) noexcept;

 private:
  std::unique_ptr<char[]> data_;
  std::size_t cap_ = 0;
  std::size_t head_ = 0;
  std::size_t tail_ = 0;
};

}  // namespace salvo
