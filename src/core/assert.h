// Always-on assertions. A broken invariant is a bug, not an error to return:
// these print the failed condition with its operands and abort the process,
// in release builds too.
#pragma once

#include <sstream>
#include <string>

namespace bw::core {

[[noreturn]] void AssertFail(const char* file, int line, const char* expr,
                             const std::string& detail);

// The simulator and tests may route assertion failures to a handler that
// throws instead of aborting, so that one failing seed can be reported with
// its trace. If the handler returns, the process aborts as usual.
using AssertHandler = void (*)(const char* file, int line, const char* expr,
                               const std::string& detail);
// Returns the previous handler. Not thread-safe: set it before starting work.
AssertHandler SetAssertHandler(AssertHandler handler);

template <typename T>
std::string AssertOperand(const T& v) {
  std::ostringstream os;
  if constexpr (requires(std::ostream & o) { o << v; }) {
    os << v;
  } else if constexpr (requires { v.value(); }) {
    os << v.value();
  } else {
    os << "<?>";
  }
  return os.str();
}

}  // namespace bw::core

#define BW_ASSERT(cond)                                                 \
  do {                                                                  \
    if (__builtin_expect(!(cond), 0)) {                                 \
      ::bw::core::AssertFail(__FILE__, __LINE__, #cond, std::string()); \
    }                                                                   \
  } while (0)

#define BW_ASSERT_MSG(cond, msg)                                \
  do {                                                          \
    if (__builtin_expect(!(cond), 0)) {                         \
      ::bw::core::AssertFail(__FILE__, __LINE__, #cond, (msg)); \
    }                                                           \
  } while (0)

#define BW_ASSERT_OP_(a, b, op)                                                          \
  do {                                                                                   \
    const auto& bw_a_ = (a);                                                             \
    const auto& bw_b_ = (b);                                                             \
    if (__builtin_expect(!(bw_a_ op bw_b_), 0)) {                                        \
      ::bw::core::AssertFail(                                                            \
          __FILE__, __LINE__, #a " " #op " " #b,                                         \
          ::bw::core::AssertOperand(bw_a_) + " vs " + ::bw::core::AssertOperand(bw_b_)); \
    }                                                                                    \
  } while (0)

#define BW_ASSERT_EQ(a, b) BW_ASSERT_OP_(a, b, ==)
#define BW_ASSERT_NE(a, b) BW_ASSERT_OP_(a, b, !=)
#define BW_ASSERT_LT(a, b) BW_ASSERT_OP_(a, b, <)
#define BW_ASSERT_LE(a, b) BW_ASSERT_OP_(a, b, <=)
#define BW_ASSERT_GT(a, b) BW_ASSERT_OP_(a, b, >)
#define BW_ASSERT_GE(a, b) BW_ASSERT_OP_(a, b, >=)
