// SPDX-License-Identifier: Apache-2.0
// Strong ids and tagged flags: no naked bool or integer parameters at call
// sites. StrongId<struct ShardTag, uint32_t> is a distinct type per tag (Redpanda
// named_type); BoolClass<Tag> is Seastar's bool_class.
#pragma once

#include <compare>
#include <cstddef>
#include <functional>

namespace salvo {

template <class Tag, class T>
class StrongId {
 public:
  using value_type = T;
  constexpr StrongId() = default;
  constexpr explicit StrongId(T v) : v_(v) {}
  constexpr T value() const noexcept { return v_; }
  constexpr auto operator<=>(const StrongId&) const = default;

 private:
  T v_{};
};

template <class Tag>
class BoolClass {
 public:
  static const BoolClass kYes;
  static const BoolClass kNo;
  constexpr explicit BoolClass(bool v) : v_(v) {}
  constexpr explicit operator bool() const noexcept { return v_; }
  constexpr bool operator==(const BoolClass&) const = default;

 private:
  bool v_;
};
template <class Tag>
inline const BoolClass<Tag> BoolClass<Tag>::kYes{true};
template <class Tag>
inline const BoolClass<Tag> BoolClass<Tag>::kNo{false};

}  // namespace salvo

template <class Tag, class T>
struct std::hash<salvo::StrongId<Tag, T>> {
  std::size_t operator()(const salvo::StrongId<Tag, T>& id) const noexcept {
    return std::hash<T>{}(id.value());
  }
};
