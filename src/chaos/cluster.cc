#include "chaos/cluster.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "chaos/process.h"
#include "env/real/deadline.h"
#include "env/real/real_env.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"

namespace bw::chaos {

Cluster::Cluster(Network& net, std::string bulwark, std::string dir,
                 std::vector<std::string> extra_args, bool fake_clock)
    : net_(net),
      bulwark_(std::move(bulwark)),
      dir_(std::move(dir)),
      extra_(std::move(extra_args)),
      pids_(net.nodes(), 0),
      paused_(net.nodes(), false),
      fake_clock_(fake_clock),
      joins_existing_(net.nodes(), false),
      removed_(net.nodes(), false) {}

std::string Cluster::FakeTimeLibrary() {
  for (const char* p : {"/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
                        "/usr/lib/faketime/libfaketime.so.1"}) {
    if (std::filesystem::exists(p)) return p;
  }
  return "";
}

std::string Cluster::data_path(int i) const {
  return absl::StrCat(dir_, "/", name(i), ".data");
}

absl::Status Cluster::UseSmallDisks(int mib) {
  for (int i = 0; i < size(); ++i) {
    const std::string image = absl::StrCat(dir_, "/", name(i), ".img");
    std::error_code ec;
    std::filesystem::create_directories(data_path(i), ec);
    BW_RETURN_IF_ERROR(RunCommand({"truncate", "-s", absl::StrCat(mib, "M"), image}));
    // No blocks reserved for root (members run as root here).
    BW_RETURN_IF_ERROR(RunCommand({"mkfs.ext4", "-q", "-F", "-m", "0", image}));
    BW_RETURN_IF_ERROR(RunCommand({"mount", "-o", "loop", image, data_path(i)}));
    mounted_.push_back(data_path(i));
  }
  return absl::OkStatus();
}

void Cluster::UnmountDisks() {
  for (const std::string& m : mounted_) {
    (void)RunCommand({"umount", m});
    std::error_code ec;
    std::filesystem::remove(m.substr(0, m.size() - 5) + ".img", ec);
  }
  mounted_.clear();
}

absl::Status Cluster::FillDisk(int i) {
  struct statvfs fs;
  if (statvfs(data_path(i).c_str(), &fs) != 0) {
    return absl::InternalError(absl::StrCat("statvfs ", data_path(i), ": ", strerror(errno)));
  }
  const std::string filler = data_path(i) + "/chaos-filler";
  int fd = open(filler.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat("open ", filler, ": ", strerror(errno)));
  // All the free space, less a block at a time until the filesystem agrees.
  off_t len = static_cast<off_t>(fs.f_bavail) * static_cast<off_t>(fs.f_frsize);
  while (len > 0 && fallocate(fd, 0, 0, len) != 0)
    len -= static_cast<off_t>(fs.f_frsize) * 16;
  close(fd);
  if (statvfs(data_path(i).c_str(), &fs) == 0 && fs.f_bavail > 64) {
    return absl::InternalError(absl::StrCat("could not fill ", data_path(i), ": ",
                                            fs.f_bavail * fs.f_frsize, " bytes still free"));
  }
  return absl::OkStatus();
}

void Cluster::FreeDisk(int i) {
  std::error_code ec;
  std::filesystem::remove(data_path(i) + "/chaos-filler", ec);
}

std::string Cluster::clock_path(int i) const {
  return absl::StrCat(dir_, "/", name(i), ".faketime");
}

absl::Status Cluster::SetClockOffset(int i, double seconds) {
  if (!fake_clock_) return absl::FailedPreconditionError("members run without libfaketime");
  // libfaketime reads "+1.5s" / "-300s" as an offset from the real time.
  const std::string tmp = clock_path(i) + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << (seconds < 0 ? "" : "+") << absl::StrFormat("%.3f", seconds) << "s\n";
    if (!f) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, clock_path(i), ec);  // atomic: never a half-written offset
  if (ec) return absl::InternalError(absl::StrCat("cannot write ", clock_path(i)));
  return absl::OkStatus();
}

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
  std::vector<std::string> argv = {"ip", "netns", "exec", net_.ns(i)};
  if (fake_clock_) {
    // A sanitizer build refuses to start with a library preloaded ahead of
    // its runtime unless told that this is intended.
    const char* asan = std::getenv("ASAN_OPTIONS");
    std::string asan_options = absl::StrCat("ASAN_OPTIONS=", asan ? asan : "",
                                            asan && *asan ? ":" : "", "verify_asan_link_order=0");
    argv.insert(argv.end(), {"env", asan_options, "LD_PRELOAD=" + FakeTimeLibrary(),
                             "FAKETIME_TIMESTAMP_FILE=" + clock_path(i),
                             // Re-read the offset every second; fake only the wall clock.
                             "FAKETIME_CACHE_DURATION=1", "FAKETIME_DONT_FAKE_MONOTONIC=1"});
  }
  argv.insert(argv.end(),
              {bulwark_, "start", "--name", name(i), "--data-dir", data_path(i),
               "--listen-client-urls", absl::StrCat("http://", net_.address(i), ":2379"),
               "--advertise-client-urls", absl::StrCat("http://", net_.address(i), ":2379"),
               "--listen-peer-urls", absl::StrCat("http://", net_.address(i), ":2380"),
               "--initial-advertise-peer-urls", absl::StrCat("http://", net_.address(i), ":2380"),
               "--initial-cluster", absl::StrJoin(peers, ","), "--initial-cluster-state",
               joins_existing_[i] ? "existing" : "new", "--initial-cluster-token", "bulwark-chaos",
               "--heartbeat-interval", "50", "--election-timeout", "500",
               // Snapshots every few seconds of load: members that
               // were cut off or re-added catch up from one, and
               // a full disk meets one.
               "--snapshot-count", "2000"});
  argv.insert(argv.end(), extra_.begin(), extra_.end());
  return argv;
}

absl::Status Cluster::StartAll() {
  for (int i = 0; i < size(); ++i)
    BW_RETURN_IF_ERROR(Start(i));
  return absl::OkStatus();
}

absl::Status Cluster::Start(int i) {
  if (removed_[i]) return absl::OkStatus();  // AddLearner brings it back
  if (fake_clock_ && !std::filesystem::exists(clock_path(i))) {
    BW_RETURN_IF_ERROR(SetClockOffset(i, 0));
  }
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

namespace bw::chaos {

template <class Call>
absl::Status Cluster::OnAnyMember(Call call) const {
  std::vector<int> order;
  int leader = Leader();
  if (leader >= 0) order.push_back(leader);
  for (int i = 0; i < size(); ++i)
    if (i != leader && pids_[i] > 0 && !paused_[i] && !removed_[i]) order.push_back(i);
  absl::Status last = absl::UnavailableError("no member is running");
  for (int i : order) {
    auto stub = etcdserverpb::Cluster::NewStub(
        grpc::CreateChannel(endpoint(i), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(env::WallDeadlineAfter(std::chrono::milliseconds(3000)));
    grpc::Status st = call(*stub, ctx);
    if (st.ok()) return absl::OkStatus();
    last = absl::UnavailableError(absl::StrCat(name(i), ": ", st.error_message()));
  }
  return last;
}

absl::StatusOr<uint64_t> Cluster::MemberId(int i, bool* learner) const {
  etcdserverpb::MemberListResponse list;
  BW_RETURN_IF_ERROR(OnAnyMember([&](etcdserverpb::Cluster::Stub& s, grpc::ClientContext& ctx) {
    return s.MemberList(&ctx, etcdserverpb::MemberListRequest(), &list);
  }));
  const std::string url = absl::StrCat("http://", net_.address(i), ":2380");
  for (const auto& m : list.members()) {
    for (const auto& u : m.peerurls()) {
      if (u != url) continue;
      if (learner) *learner = m.islearner();
      return m.id();
    }
  }
  return uint64_t{0};
}

absl::Status Cluster::RemoveMember(int i) {
  BW_ASSIGN_OR_RETURN(uint64_t id, MemberId(i));
  if (id == 0) return absl::FailedPreconditionError(absl::StrCat(name(i), " is not a member"));
  etcdserverpb::MemberRemoveRequest req;
  req.set_id(id);
  etcdserverpb::MemberRemoveResponse resp;
  BW_RETURN_IF_ERROR(OnAnyMember([&](etcdserverpb::Cluster::Stub& s, grpc::ClientContext& ctx) {
    return s.MemberRemove(&ctx, req, &resp);
  }));
  Kill(i);
  removed_[i] = true;
  // What is in it (the directory may be a mount point).
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(data_path(i), ec))
    std::filesystem::remove_all(e.path(), ec);
  return absl::OkStatus();
}

absl::Status Cluster::AddLearner(int i) {
  BW_ASSIGN_OR_RETURN(uint64_t id, MemberId(i));
  if (id == 0) {
    etcdserverpb::MemberAddRequest req;
    req.add_peerurls(absl::StrCat("http://", net_.address(i), ":2380"));
    req.set_islearner(true);
    etcdserverpb::MemberAddResponse resp;
    BW_RETURN_IF_ERROR(OnAnyMember([&](etcdserverpb::Cluster::Stub& s, grpc::ClientContext& ctx) {
      return s.MemberAdd(&ctx, req, &resp);
    }));
  }
  removed_[i] = false;
  joins_existing_[i] = true;
  return Start(i);
}

absl::Status Cluster::Promote(int i, int timeout_ms) {
  env::RealClock clock;
  const int64_t deadline_us = clock.NowMicros() + int64_t{timeout_ms} * 1000;
  absl::Status last;
  while (clock.NowMicros() < deadline_us) {
    bool learner = false;
    auto id = MemberId(i, &learner);
    if (id.ok() && *id != 0 && !learner) return absl::OkStatus();
    if (id.ok() && *id != 0) {
      etcdserverpb::MemberPromoteRequest req;
      req.set_id(*id);
      etcdserverpb::MemberPromoteResponse resp;
      last = OnAnyMember([&](etcdserverpb::Cluster::Stub& s, grpc::ClientContext& ctx) {
        return s.MemberPromote(&ctx, req, &resp);
      });
      if (last.ok()) return last;
    } else {
      last = id.ok() ? absl::NotFoundError(absl::StrCat(name(i), " is not a member")) : id.status();
    }
    env::SleepMicros(200'000);
  }
  return absl::DeadlineExceededError(
      absl::StrCat("could not promote ", name(i), " within ", timeout_ms, " ms: ", last.message()));
}

}  // namespace bw::chaos
