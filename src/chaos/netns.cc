#include "chaos/netns.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "chaos/process.h"

namespace bw::chaos {

std::string Network::ns(int node) const {
  return absl::StrCat("bwc", tag_, "-", getpid(), "-n", node);
}

namespace {

// Creating a network and removing leftovers happen under one lock, so that
// no run mistakes another's half-built network for a leftover.
class SetupLock {
 public:
  SetupLock() : fd_(open("/run/lock/bulwark-chaos.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0600)) {
    if (fd_ >= 0) flock(fd_, LOCK_EX);
  }
  ~SetupLock() {
    if (fd_ >= 0) close(fd_);  // releases the lock
  }

 private:
  int fd_;
};

bool BridgeExists(int tag) {
  return RunCommand({"ip", "link", "show", absl::StrCat("bwc", tag)}).ok();
}

}  // namespace

std::string Network::address(int node) const {
  return absl::StrCat("10.213.", tag_, ".", node + 1);
}

std::string Network::host_address() const {
  return absl::StrCat("10.213.", tag_, ".254");
}

absl::Status Network::Create(int nodes, int tag) {
  if (nodes < 1 || nodes > 9 || tag < 0 || tag > 249) {
    return absl::InvalidArgumentError("chaos network: 1 to 9 nodes, tag 0 to 249");
  }
  SetupLock lock;
  // The first free tag from the one asked for.
  for (int k = 0; k < 250 && BridgeExists((tag + k) % 250); ++k) {
    if (k == 249) return absl::ResourceExhaustedError("chaos network: all 250 subnets in use");
  }
  while (BridgeExists(tag))
    tag = (tag + 1) % 250;
  nodes_ = nodes;
  tag_ = tag;
  created_ = true;
  blocked_.assign(nodes, std::vector<bool>(nodes, false));
  const std::string bridge = absl::StrCat("bwc", tag);
  BW_RETURN_IF_ERROR(RunCommand({"ip", "link", "add", bridge, "type", "bridge"}));
  BW_RETURN_IF_ERROR(RunCommand({"ip", "addr", "add", host_address() + "/24", "dev", bridge}));
  BW_RETURN_IF_ERROR(RunCommand({"ip", "link", "set", bridge, "up"}));
  for (int i = 0; i < nodes; ++i) {
    const std::string n = ns(i);
    const std::string host_end = absl::StrCat("bwc", tag, "v", i);
    const std::string ns_end = absl::StrCat("bwc", tag, "p", i);
    BW_RETURN_IF_ERROR(RunCommand({"ip", "netns", "add", n}));
    BW_RETURN_IF_ERROR(
        RunCommand({"ip", "link", "add", host_end, "type", "veth", "peer", "name", ns_end}));
    BW_RETURN_IF_ERROR(RunCommand({"ip", "link", "set", ns_end, "netns", n}));
    BW_RETURN_IF_ERROR(RunCommand({"ip", "link", "set", host_end, "master", bridge}));
    BW_RETURN_IF_ERROR(RunCommand({"ip", "link", "set", host_end, "up"}));
    BW_RETURN_IF_ERROR(RunCommand({"ip", "netns", "exec", n, "ip", "link", "set", "lo", "up"}));
    BW_RETURN_IF_ERROR(RunCommand(
        {"ip", "netns", "exec", n, "ip", "addr", "add", address(i) + "/24", "dev", ns_end}));
    BW_RETURN_IF_ERROR(RunCommand({"ip", "netns", "exec", n, "ip", "link", "set", ns_end, "up"}));
  }
  return Apply();
}

void Network::Destroy() {
  if (!created_) return;
  created_ = false;
  for (int i = 0; i < nodes_; ++i) {
    (void)RunCommand({"ip", "netns", "del", ns(i)});  // takes its veth pair along
  }
  (void)RunCommand({"ip", "link", "del", absl::StrCat("bwc", tag_)});
}

int Network::RemoveLeftovers() {
  SetupLock lock;
  int removed = 0;
  std::string out;
  if (RunCommand({"ip", "netns", "list"}, &out).ok()) {
    for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
      std::string name(line.substr(0, line.find(' ')));
      // bwc<tag>-<pid>-n<i>: a leftover once the run <pid> is gone.
      std::vector<std::string> parts = absl::StrSplit(name, '-');
      int pid = 0;
      if (parts.size() != 3 || !absl::StartsWith(parts[0], "bwc") ||
          !absl::SimpleAtoi(parts[1], &pid) || pid <= 0) {
        continue;
      }
      if (kill(pid, 0) == 0 || errno != ESRCH) continue;  // its run is alive
      if (RunCommand({"ip", "netns", "del", name}).ok()) ++removed;
    }
  }
  if (RunCommand({"ip", "-o", "link", "show", "type", "bridge"}, &out).ok()) {
    for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
      // "7: bwc12: <BROADCAST,..."
      std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits(": ", 2));
      if (parts.size() < 2) continue;
      std::string name = parts[1].substr(0, parts[1].find('@'));
      if (!absl::StartsWith(name, "bwc") || absl::StrContains(name, "-")) continue;
      // A bridge with ports still belongs to a live run.
      std::string ports;
      if (!RunCommand({"ip", "-o", "link", "show", "master", name}, &ports).ok() ||
          !ports.empty()) {
        continue;
      }
      if (RunCommand({"ip", "link", "del", name}).ok()) ++removed;
    }
  }
  return removed;
}

absl::Status Network::Partition(const std::vector<std::vector<int>>& groups) {
  std::vector<int> group_of(nodes_, -1);
  for (size_t g = 0; g < groups.size(); ++g) {
    for (int n : groups[g]) {
      if (n < 0 || n >= nodes_) return absl::InvalidArgumentError("partition: no such node");
      group_of[n] = static_cast<int>(g);
    }
  }
  for (int to = 0; to < nodes_; ++to) {
    for (int from = 0; from < nodes_; ++from) {
      blocked_[to][from] =
          to != from && group_of[to] >= 0 && group_of[from] >= 0 && group_of[to] != group_of[from];
    }
  }
  return Apply();
}

absl::Status Network::Block(const std::vector<std::pair<int, int>>& links) {
  for (auto& row : blocked_)
    row.assign(nodes_, false);
  for (auto [from, to] : links) {
    if (from < 0 || to < 0 || from >= nodes_ || to >= nodes_ || from == to) {
      return absl::InvalidArgumentError("block: no such pair of nodes");
    }
    blocked_[to][from] = true;
  }
  return Apply();
}

absl::Status Network::SetLoss(int percent) {
  loss_percent_ = std::clamp(percent, 0, 100);
  return Apply();
}

absl::Status Network::Heal() {
  for (auto& row : blocked_)
    row.assign(nodes_, false);
  loss_percent_ = 0;
  return Apply();
}

absl::Status Network::Apply() {
  for (int to = 0; to < nodes_; ++to) {
    std::string rules = "table inet bwchaos {\n  chain input {\n";
    rules += "    type filter hook input priority 0; policy accept;\n";
    for (int from = 0; from < nodes_; ++from) {
      if (blocked_[to][from]) rules += absl::StrCat("    ip saddr ", address(from), " drop\n");
    }
    if (loss_percent_ > 0) {
      rules +=
          absl::StrCat("    iifname != \"lo\" numgen random mod 100 < ", loss_percent_, " drop\n");
    }
    rules += "  }\n}\n";
    // Delete and recreate in one transaction, so no packet sees a half state.
    std::string script = absl::StrCat("table inet bwchaos {}\ndelete table inet bwchaos\n", rules);
    BW_RETURN_IF_ERROR(
        RunCommand({"ip", "netns", "exec", ns(to), "nft", "-f", "-"}, nullptr, script));
  }
  return absl::OkStatus();
}

}  // namespace bw::chaos
