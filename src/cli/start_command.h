// `bulwark start`: runs one member of a cluster, with etcd's flags.
#pragma once

#include <CLI/CLI.hpp>

namespace bw::cli {

void AddStartCommand(CLI::App& app, int* exit_code);

}  // namespace bw::cli
