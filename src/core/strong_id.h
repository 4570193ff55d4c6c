// Strong integer types for numbers that must never be swapped (a term is not
// an index). Comparison and the arithmetic that makes sense for counters are
// allowed; mixing two different strong types does not compile.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <ostream>

namespace bw::core {

template <typename Tag, typename Rep = uint64_t>
class StrongInt {
 public:
  using rep_type = Rep;
  constexpr StrongInt() = default;
  constexpr explicit StrongInt(Rep v) : v_(v) {}
  constexpr Rep value() const { return v_; }

  constexpr auto operator<=>(const StrongInt&) const = default;

  constexpr StrongInt operator+(Rep d) const { return StrongInt(v_ + d); }
  constexpr StrongInt operator-(Rep d) const { return StrongInt(v_ - d); }
  constexpr Rep operator-(StrongInt o) const { return v_ - o.v_; }
  constexpr StrongInt& operator+=(Rep d) {
    v_ += d;
    return *this;
  }
  constexpr StrongInt& operator++() {
    ++v_;
    return *this;
  }

  template <typename H>
  friend H AbslHashValue(H h, StrongInt s) {
    return H::combine(std::move(h), s.v_);
  }
  friend std::ostream& operator<<(std::ostream& os, StrongInt s) { return os << s.v_; }

 private:
  Rep v_ = 0;
};

}  // namespace bw::core

template <typename Tag, typename Rep>
struct std::hash<bw::core::StrongInt<Tag, Rep>> {
  size_t operator()(bw::core::StrongInt<Tag, Rep> s) const noexcept {
    return std::hash<Rep>()(s.value());
  }
};
