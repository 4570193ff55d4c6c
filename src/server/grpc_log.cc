#include "server/grpc_log.h"

#include <grpc/support/log.h>

#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

namespace bw::server {

namespace {

constexpr uint64_t kFirstLines = 20;
constexpr uint64_t kThenEvery = 1000;
// Messages remembered at most; past it the counts start over (a bound on
// memory, not a correctness matter).
constexpr size_t kMaxMessages = 256;

void Log(gpr_log_func_args* args) {
  static std::mutex mu;
  // By place and text: a failed handshake's text names its cause and no
  // address, so each cause is counted apart.
  static std::map<std::tuple<std::string, int, std::string>, uint64_t> counts;
  uint64_t n = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (counts.size() >= kMaxMessages) counts.clear();
    n = ++counts[{args->file, args->line, args->message}];
  }
  if (n > kFirstLines && n % kThenEvery != 0) return;
  std::fprintf(stderr, "%s %s:%d] %s%s\n", gpr_log_severity_string(args->severity), args->file,
               args->line, args->message,
               n > kFirstLines ? (" (" + std::to_string(n) + " such lines)").c_str() : "");
}

}  // namespace

void BoundGrpcLogs() {
  gpr_set_log_function(Log);
}

}  // namespace bw::server
