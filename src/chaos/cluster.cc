#include "chaos/cluster.h"

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <chrono>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "chaos/process.h"
#include "env/real/deadline.h"
#include "env/real/real_env.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"

namespace bw::chaos {

Cluster::Cluster(Network& net, std::string bulwark, std::string dir,
                 std::vector<std::string> extra_args)
    : net_(net),
      bulwark_(std::move(bulwark)),
      dir_(std::move(dir)),
      extra_(std::move(extra_args)),
      pids_(net.nodes(), 0),
      paused_(net.nodes(), false) {}

std::string Cluster::endpoint(int i) const {
  return absl::StrCat(net_.address(i), ":2379");
}

std::vector<std::string> Cluster::endpoints() const {
  std::vector<std::string> out;
  for (int i = 0; i < size(); ++i)
    out.push_back(endpoint(i));
  return out;
}

std::string Cluster::log_path(int i) const {
  return absl::StrCat(dir_, "/", name(i), ".log");
}

std::vector<std::string> Cluster::Argv(int i) const {
  std::vector<std::string> peers;
  for (int j = 0; j < size(); ++j) {
    peers.push_back(absl::StrCat(name(j), "=http://", net_.address(j), ":2380"));
  }
  std::vector<std::string> argv = {"ip",
                                   "netns",
                                   "exec",
                                   net_.ns(i),
                                   bulwark_,
                                   "start",
                                   "--name",
                                   name(i),
                                   "--data-dir",
                                   absl::StrCat(dir_, "/", name(i), ".data"),
                                   "--listen-client-urls",
                                   absl::StrCat("http://", net_.address(i), ":2379"),
                                   "--advertise-client-urls",
                                   absl::StrCat("http://", net_.address(i), ":2379"),
                                   "--listen-peer-urls",
                                   absl::StrCat("http://", net_.address(i), ":2380"),
                                   "--initial-advertise-peer-urls",
                                   absl::StrCat("http://", net_.address(i), ":2380"),
                                   "--initial-cluster",
                                   absl::StrJoin(peers, ","),
                                   "--initial-cluster-state",
                                   "new",
                                   "--initial-cluster-token",
                                   "bulwark-chaos",
                                   "--heartbeat-interval",
                                   "50",
                                   "--election-timeout",
                                   "500"};
  argv.insert(argv.end(), extra_.begin(), extra_.end());
  return argv;
}

absl::Status Cluster::StartAll() {
  for (int i = 0; i < size(); ++i)
    BW_RETURN_IF_ERROR(Start(i));
  return absl::OkStatus();
}

absl::Status Cluster::Start(int i) {
  if (pids_[i] > 0) {
    if (!Reap(pids_[i], 0)) return absl::OkStatus();  // still running
    pids_[i] = 0;
  }
  BW_ASSIGN_OR_RETURN(pids_[i], Spawn(Argv(i), log_path(i)));
  paused_[i] = false;
  return absl::OkStatus();
}

void Cluster::Kill(int i) {
  if (pids_[i] <= 0) return;
  Signal(pids_[i], SIGKILL);
  Reap(pids_[i], 5000);
  pids_[i] = 0;
  paused_[i] = false;
}

void Cluster::Pause(int i) {
  if (pids_[i] <= 0 || paused_[i]) return;
  Signal(pids_[i], SIGSTOP);
  paused_[i] = true;
}

void Cluster::Resume(int i) {
  if (pids_[i] <= 0 || !paused_[i]) return;
  Signal(pids_[i], SIGCONT);
  paused_[i] = false;
}

void Cluster::StopAll() {
  for (int i = 0; i < size(); ++i) {
    if (pids_[i] > 0) Signal(pids_[i], SIGCONT);
  }
  for (int i = 0; i < size(); ++i) {
    if (pids_[i] > 0) Stop(pids_[i], 3000);
    pids_[i] = 0;
    paused_[i] = false;
  }
}

int Cluster::Leader() const {
  std::map<uint64_t, int> member_to_index;
  std::map<uint64_t, int> votes;
  int asked = 0;
  for (int i = 0; i < size(); ++i) {
    if (pids_[i] <= 0 || paused_[i]) continue;
    ++asked;
    auto stub = etcdserverpb::Maintenance::NewStub(
        grpc::CreateChannel(endpoint(i), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(env::WallDeadlineAfter(std::chrono::milliseconds(500)));
    etcdserverpb::StatusResponse resp;
    if (!stub->Status(&ctx, etcdserverpb::StatusRequest(), &resp).ok()) continue;
    member_to_index[resp.header().member_id()] = i;
    if (resp.leader() != 0) ++votes[resp.leader()];
  }
  for (const auto& [leader, n] : votes) {
    auto it = member_to_index.find(leader);
    if (n * 2 > asked && it != member_to_index.end()) return it->second;
  }
  return -1;
}

absl::Status Cluster::WaitForLeader(int timeout_ms) const {
  env::RealClock clock;
  const int64_t deadline_us = clock.NowMicros() + int64_t{timeout_ms} * 1000;
  while (clock.NowMicros() < deadline_us) {
    if (Leader() >= 0) return absl::OkStatus();
    env::SleepMicros(100'000);
  }
  return absl::UnavailableError(
      absl::StrCat("no leader within ", timeout_ms, " ms (member logs: ", log_path(0), " ...)"));
}

}  // namespace bw::chaos
