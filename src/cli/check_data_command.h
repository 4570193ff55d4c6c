// `bulwark check-data DIR [--repair]`: verifies a data directory.
#pragma once

#include <CLI/CLI.hpp>

namespace bw::cli {

void AddCheckDataCommand(CLI::App& app, int* exit_code);

}  // namespace bw::cli
