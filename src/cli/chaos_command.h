// `bulwark chaos`: real processes, network namespaces, nemeses, histories,
// checkers and a report (src/chaos/, docs/chaos.md).
#pragma once

#include <CLI/CLI.hpp>

namespace bw::cli {

void AddChaosCommand(CLI::App& app, int* exit_code);

}  // namespace bw::cli
