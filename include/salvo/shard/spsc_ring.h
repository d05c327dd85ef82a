// SPDX-License-Identifier: Apache-2.0
// SpscRing: a bounded single-producer single-consumer queue, the cell of the mailbox
// matrix (Seastar smp_message_queue). Producer and consumer indices live on separate
// cache lines; each side caches the other's index to touch shared lines only when needed.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

namespace salvo::shard {

inline constexpr std::size_t kCacheLine = 64;

// Producer: exactly one thread calls try_push(). Consumer: exactly one thread calls
// try_pop()/drain()/empty(). Indices grow monotonically; slot = index & mask.
template <class T>
class SpscRing {
  static_assert(std::is_nothrow_move_constructible_v<T>, "messages must move without throwing");

 public:
  // capacity is rounded up to a power of two (at least 2).
  explicit SpscRing(std::size_t capacity) {
    std::size_t cap = 2;
    while (cap < capacity) cap <<= 1;
    mask_ = cap - 1;
    slots_ = std::make_unique<Slot[]>(cap);
  }
  ~SpscRing() {
    std::size_t head = cons_.head.load(std::memory_order_relaxed);
    std::size_t tail = prod_.tail.load(std::memory_order_relaxed);
    for (; head != tail; ++head) at(head)->~T();
  }
  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  std::size_t capacity() const noexcept { return mask_ + 1; }

  // Producer side. Returns false (and leaves v untouched) when the ring is full.
  bool try_push(T& v) noexcept {
    std::size_t tail = prod_.tail.load(std::memory_order_relaxed);
    if (tail - prod_.cached_head > mask_) {
      prod_.cached_head = cons_.head.load(std::memory_order_acquire);
      if (tail - prod_.cached_head > mask_) return false;
    }
    ::new (static_cast<void*>(slots_[tail & mask_].bytes)) T(std::move(v));
    prod_.tail.store(tail + 1, std::memory_order_release);
    return true;
  }

  // Consumer side: calls f(T&&) for up to max queued values, then frees their slots with
  // one index store (batch drain). Returns how many were handled.
  template <class F>
  std::size_t drain(F&& f, std::size_t max) {
    std::size_t head = cons_.head.load(std::memory_order_relaxed);
    if (cons_.cached_tail == head) {
      cons_.cached_tail = prod_.tail.load(std::memory_order_acquire);
      if (cons_.cached_tail == head) return 0;
    }
    std::size_t n = cons_.cached_tail - head;
    if (n > max) n = max;
    for (std::size_t i = 0; i < n; ++i) {
      T* p = at(head + i);
      f(std::move(*p));
      p->~T();
    }
    cons_.head.store(head + n, std::memory_order_release);
    return n;
  }

  std::optional<T> try_pop() {
    std::optional<T> out;
    drain([&](T&& v) { out.emplace(std::move(v)); }, 1);
    return out;
  }

  // Consumer side: true when nothing is queued (reads the producer's index).
  bool empty() const noexcept {
    return prod_.tail.load(std::memory_order_acquire) ==
           cons_.head.load(std::memory_order_relaxed);
  }

 private:
  struct Slot {
    alignas(T) unsigned char bytes[sizeof(T)];
  };
  T* at(std::size_t index) noexcept {
    return std::launder(reinterpret_cast<T*>(slots_[index & mask_].bytes));
  }

  struct alignas(kCacheLine) ProducerSide {
    std::atomic<std::size_t> tail{0};
    std::size_t cached_head = 0;
  };
  struct alignas(kCacheLine) ConsumerSide {
    std::atomic<std::size_t> head{0};
    std::size_t cached_tail = 0;
  };
  ProducerSide prod_;
  ConsumerSide cons_;
  alignas(kCacheLine) std::size_t mask_ = 0;
  std::unique_ptr<Slot[]> slots_;
};

}  // namespace salvo::shard
