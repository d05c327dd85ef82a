// SPDX-License-Identifier: Apache-2.0
// ByteBuffer: compacts before it grows; growth doubles.
#include <salvo/base/byte_buffer.h>

#include <algorithm>
#include <cstring>

#include <salvo/base/assert.h>

namespace salvo {

ByteBuffer::ByteBuffer(std::size_t initial_capacity)
    : data_(initial_capacity ? std::make_unique_for_overwrite<char[]>(initial_capacity)
                             : nullptr),
      cap_(initial_capacity) {}

void ByteBuffer::consume(std::size_t n) noexcept {
  SALVO_ASSERT(n <= size());
  head_ += n;
  if (head_ == tail_) head_ = tail_ = 0;
}

std::span<char> ByteBuffer::prepare(std::size_t n) {
  if (cap_ - tail_ < n) {
    std::size_t live = tail_ - head_;
    if (cap_ - live >= n && head_ > 0) {
      std::memmove(data_.get(), data_.get() + head_, live);
    } else {
      std::size_t ncap = std::max<std::size_t>(cap_ ? cap_ * 2 : 4096, live + n);
      auto nd = std::make_unique_for_overwrite<char[]>(ncap);
      if (live) std::memcpy(nd.get(), data_.get() + head_, live);
      data_ = std::move(nd);
      cap_ = ncap;
    }
    head_ = 0;
    tail_ = live;
  }
  return {data_.get() + tail_, cap_ - tail_};
}

void ByteBuffer::commit(std::size_t n) noexcept {
  SALVO_ASSERT(tail_ + n <= cap_);
  tail_ += n;
}

void ByteBuffer::append(std::string_view s) {
  if (s.empty()) return;
  auto w = prepare(s.size());
  std::memcpy(w.data(), s.data(), s.size());
  tail_ += s.size();
}

void ByteBuffer::shrink_if_empty(std::size_t keep) noexcept {
  if (empty() && cap_ > keep) {
    data_.reset(keep ? new (std::nothrow) char[keep] : nullptr);
    cap_ = data_ ? keep : 0;
    head_ = tail_ = 0;
  }
}

}  // namespace salvo
