// Processes for the chaos harness: commands run to completion (ip, nft) and
// long-running children (members) started by fork/exec, signalled and
// reaped by their PID. This is the harness's edge to the real world.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "core/status.h"

namespace bw::chaos {

// Runs argv[0] (searched in PATH) to completion; its stdout and stderr are
// returned (together) in `*output` when given. Non-zero exit: an error that
// quotes the command and its output.
[[nodiscard]] absl::Status RunCommand(const std::vector<std::string>& argv,
                                      std::string* output = nullptr,
                                      const std::string& stdin_text = "");

// Starts argv in the background with stdout and stderr appended to
// `log_path`, in a process group of its own, with SIGKILL sent to it if this
// process dies. Returns its PID.
[[nodiscard]] absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv,
                                          const std::string& log_path);

// Sends `sig` to `pid`; ESRCH (already gone) is not an error.
void Signal(pid_t pid, int sig);

// Reaps `pid` if it has exited (waits at most `timeout_ms`, 0: do not wait).
// True when it is gone.
bool Reap(pid_t pid, int timeout_ms);

// SIGTERM, up to `grace_ms`, then SIGKILL; always reaps.
void Stop(pid_t pid, int grace_ms);

}  // namespace bw::chaos
