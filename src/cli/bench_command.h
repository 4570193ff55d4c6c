// `bulwark bench`: a load generator that speaks the etcd v3 API (so it drives
// etcd and bulwark alike), bulwark's Idempotency service, and Redis (the
// idempotency-store baseline).
#pragma once

#include <CLI/CLI.hpp>

namespace bw::cli {

void AddBenchCommand(CLI::App& app, int* exit_code);

}  // namespace bw::cli
