// The `bulwark` binary: one command with subcommands, in the manner of
// `consul` and `cockroach`.
#include <CLI/CLI.hpp>
#include <cstdio>

int main(int argc, char** argv) {
  CLI::App app{"bulwark: a fault-tolerant, replicated key-value store"};
  app.set_version_flag("--version", "bulwark 0.1.0");
  app.require_subcommand(0, 1);
  CLI11_PARSE(app, argc, argv);
  if (app.get_subcommands().empty()) std::puts(app.help().c_str());
  return 0;
}
