// `bulwark check-data DIR [--repair]` verifies a data directory.
#include "cli/check_data_command.h"

#include <cstdio>
#include <memory>
#include <string>

#include "env/real/real_disk.h"
#include "storage/check_data.h"

namespace bw::cli {

namespace {

struct CheckFlags {
  std::string dir;
  bool repair = false;
};

int RunCheckData(const CheckFlags& f) {
  env::RealDisk disk;
  absl::StatusOr<storage::DataReport> r = storage::CheckDataDir(disk, f.dir, f.repair);
  if (!r.ok()) {
    std::fprintf(stderr, "bulwark check-data: %s\n", std::string(r.status().message()).c_str());
    return 2;
  }
  for (const std::string& line : r->lines)
    std::printf("%s\n", line.c_str());
  return r->clean() ? 0 : 1;
}

}  // namespace

void AddCheckDataCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<CheckFlags>();
  CLI::App* cmd = app.add_subcommand(
      "check-data",
      "Verify a member's data directory (snapshot, WAL, state store); exit 0 clean, 1 damage");
  cmd->add_option("dir", flags->dir, "Data directory")->required();
  cmd->add_flag("--repair", flags->repair,
                "Cut a torn tail (unsynced bytes only); nothing else is ever changed");
  cmd->callback([flags, exit_code] { *exit_code = RunCheckData(*flags); });
}

}  // namespace bw::cli
