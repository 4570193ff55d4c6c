// `bulwark check-data` and `bulwark storage-load`.
#pragma once

#include <CLI/CLI.hpp>

namespace bw::cli {

void AddCheckDataCommand(CLI::App& app, int* exit_code);
void AddStorageLoadCommand(CLI::App& app, int* exit_code);

}  // namespace bw::cli
