#include "core/assert.h"

#include <cstdio>
#include <cstdlib>

namespace bw::core {

namespace {
AssertHandler g_handler = nullptr;
}  // namespace

AssertHandler SetAssertHandler(AssertHandler handler) {
  AssertHandler old = g_handler;
  g_handler = handler;
  return old;
}

void AssertFail(const char* file, int line, const char* expr, const std::string& detail) {
  if (g_handler != nullptr) g_handler(file, line, expr, detail);
  std::fprintf(stderr, "bulwark: assertion failed at %s:%d: %s%s%s\n", file, line, expr,
               detail.empty() ? "" : " — ", detail.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace bw::core
