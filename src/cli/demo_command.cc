// `bulwark demo`: a real three-member cluster on loopback, as three
// processes of this binary, driven through the etcd v3 API: writes, a
// compare-and-set, the leader killed with SIGKILL, a new leader, every
// acknowledged write read back, the member restarted and caught up.
// Everything it starts it stops; its temporary directory goes at the end.
#include "cli/demo_command.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"

namespace bw::cli {

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// A free loopback port (bound, read, released; the member binds it next),
// never one handed out before by this process.
uint16_t FreePort() {
  static std::set<uint16_t> given;
  for (int attempt = 0; attempt < 100; ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    uint16_t port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      port = ntohs(a.sin_port);
    }
    ::close(fd);
    if (port != 0 && given.insert(port).second) return port;
  }
  return 0;
}

struct DemoMember {
  std::string name;
  uint16_t client_port = 0;
  uint16_t peer_port = 0;
  pid_t pid = 0;
  uint64_t id = 0;
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
  std::unique_ptr<etcdserverpb::Maintenance::Stub> maintenance;
  std::string endpoint() const { return absl::StrCat("127.0.0.1:", client_port); }
};

class Demo {
 public:
  Demo(std::string dir, bool keep) : dir_(std::move(dir)), keep_(keep) {}
  ~Demo() { StopAll(); }

  int Run();

 private:
  void Say(const std::string& s) {
    std::printf("[%6.2fs] %s\n", Seconds(start_), s.c_str());
    std::fflush(stdout);
  }
  bool StartMember(DemoMember& m);
  void Connect(DemoMember& m);
  void StopAll();
  std::optional<etcdserverpb::StatusResponse> Status(DemoMember& m, int timeout_ms = 2000);
  // The member every live member names as leader, within the time given.
  DemoMember* WaitLeader(double seconds, DemoMember* not_this = nullptr);
  grpc::Status Put(DemoMember& m, const std::string& k, const std::string& v, int64_t* rev);
  std::optional<std::string> Get(DemoMember& m, const std::string& k, bool serializable);

  std::string dir_;
  bool keep_;
  std::string initial_cluster_;
  std::vector<DemoMember> members_;
  Clock::time_point start_ = Clock::now();
};

void Demo::Connect(DemoMember& m) {
  // A fresh channel: one that met a member before it listened (or after it
  // died) waits out gRPC's reconnect backoff, which is seconds.
  auto channel = grpc::CreateChannel("ipv4:" + m.endpoint(), grpc::InsecureChannelCredentials());
  m.kv = etcdserverpb::KV::NewStub(channel);
  m.maintenance = etcdserverpb::Maintenance::NewStub(channel);
}

bool Demo::StartMember(DemoMember& m) {
  std::string data = absl::StrCat(dir_, "/", m.name);
  std::string log = absl::StrCat(dir_, "/", m.name, ".log");
  std::vector<std::string> argv_s = {
      "/proc/self/exe",
      "start",
      "--name",
      m.name,
      "--data-dir",
      data,
      "--listen-client-urls",
      absl::StrCat("http://127.0.0.1:", m.client_port),
      "--advertise-client-urls",
      absl::StrCat("http://127.0.0.1:", m.client_port),
      "--listen-peer-urls",
      absl::StrCat("http://127.0.0.1:", m.peer_port),
      "--initial-advertise-peer-urls",
      absl::StrCat("http://127.0.0.1:", m.peer_port),
      "--initial-cluster",
      initial_cluster_,
      "--initial-cluster-token",
      "bulwark-demo",
      "--heartbeat-interval",
      "50",
      "--election-timeout",
      "500",
  };
  pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    std::vector<char*> argv;
    for (std::string& a : argv_s)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv("/proc/self/exe", argv.data());
    ::_exit(127);
  }
  m.pid = pid;
  Connect(m);
  return true;
}

void Demo::StopAll() {
  for (DemoMember& m : members_) {
    if (m.pid > 0) ::kill(m.pid, SIGTERM);
  }
  for (DemoMember& m : members_) {
    if (m.pid <= 0) continue;
    // Bounded: a member that does not stop in 5 s is killed.
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(m.pid, nullptr, WNOHANG) == m.pid) {
        m.pid = 0;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (m.pid > 0) {
      ::kill(m.pid, SIGKILL);
      ::waitpid(m.pid, nullptr, 0);
      m.pid = 0;
    }
  }
  if (!keep_ && !dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    dir_.clear();
  }
}

std::optional<etcdserverpb::StatusResponse> Demo::Status(DemoMember& m, int timeout_ms) {
  if (m.pid <= 0) return std::nullopt;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  etcdserverpb::StatusRequest req;
  etcdserverpb::StatusResponse resp;
  grpc::Status st = m.maintenance->Status(&ctx, req, &resp);
  if (!st.ok()) {
    // A slow answer is no reason for a new channel; a dead connection is.
    if (st.error_code() == grpc::StatusCode::UNAVAILABLE) Connect(m);
    return std::nullopt;
  }
  return resp;
}

DemoMember* Demo::WaitLeader(double seconds, DemoMember* not_this) {
  Clock::time_point until = Clock::now() + std::chrono::milliseconds(int(seconds * 1000));
  while (Clock::now() < until) {
    uint64_t leader = 0;
    bool agree = true;
    int live = 0;
    for (DemoMember& m : members_) {
      if (m.pid <= 0) continue;
      std::optional<etcdserverpb::StatusResponse> s = Status(m);
      if (!s) {
        agree = false;
        break;
      }
      m.id = s->header().member_id();
      ++live;
      if (leader == 0) leader = s->leader();
      if (s->leader() == 0 || s->leader() != leader) agree = false;
    }
    if (agree && live > 0 && leader != 0) {
      for (DemoMember& m : members_) {
        if (m.id == leader && m.pid > 0 && &m != not_this) return &m;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return nullptr;
}

grpc::Status Demo::Put(DemoMember& m, const std::string& k, const std::string& v, int64_t* rev) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  etcdserverpb::PutRequest req;
  req.set_key(k);
  req.set_value(v);
  etcdserverpb::PutResponse resp;
  grpc::Status s = m.kv->Put(&ctx, req, &resp);
  if (s.ok() && rev != nullptr) *rev = resp.header().revision();
  return s;
}

std::optional<std::string> Demo::Get(DemoMember& m, const std::string& k, bool serializable) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  etcdserverpb::RangeRequest req;
  req.set_key(k);
  req.set_serializable(serializable);
  etcdserverpb::RangeResponse resp;
  grpc::Status s = m.kv->Range(&ctx, req, &resp);
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE) Connect(m);
  if (!s.ok() || resp.kvs_size() == 0) return std::nullopt;
  return resp.kvs(0).value();
}

int Demo::Run() {
  std::printf(
      "bulwark demo: a three-member cluster on loopback, three processes of this binary,\n"
      "talking the etcd v3 API (etcdctl and etcd's clients work against it too).\n"
      "Data and logs: %s\n\n",
      dir_.c_str());
  for (int i = 1; i <= 3; ++i) {
    DemoMember m;
    m.name = absl::StrCat("m", i);
    m.client_port = FreePort();
    m.peer_port = FreePort();
    members_.push_back(std::move(m));
  }
  std::vector<std::string> parts;
  for (DemoMember& m : members_) {
    parts.push_back(absl::StrCat(m.name, "=http://127.0.0.1:", m.peer_port));
  }
  initial_cluster_ = absl::StrJoin(parts, ",");
  for (DemoMember& m : members_) {
    if (!StartMember(m)) {
      std::printf("could not start member %s\n", m.name.c_str());
      return 1;
    }
    Say(absl::StrFormat("started %s (pid %d): clients on %s", m.name, m.pid, m.endpoint()));
  }
  DemoMember* leader = WaitLeader(15);
  if (leader == nullptr) {
    Say("no leader within 15 s; see the members' logs");
    keep_ = true;
    return 1;
  }
  Say(absl::StrFormat("%s is the leader; all three agree", leader->name));

  // Phase 1: writes through every member (followers forward to the leader).
  std::map<std::string, std::string> acked;
  int failed = 0;
  Clock::time_point t0 = Clock::now();
  const int kWrites = 300;
  for (int i = 0; i < kWrites; ++i) {
    DemoMember& via = members_[i % 3];
    std::string k = absl::StrFormat("demo/key-%04d", i);
    std::string v = absl::StrCat("value-", i);
    if (Put(via, k, v, nullptr).ok()) {
      acked[k] = v;
    } else {
      ++failed;
    }
  }
  Say(
      absl::StrFormat("%d writes through all three members acknowledged in %.2f s (%d failed); "
                      "each is on a majority's disk before its answer",
                      int(acked.size()), Seconds(t0), failed));

  // A compare-and-set: the etcd Txn a lock or a counter is built from.
  {
    grpc::ClientContext ctx;
    etcdserverpb::TxnRequest txn;
    etcdserverpb::Compare* c = txn.add_compare();
    c->set_key("demo/key-0000");
    c->set_target(etcdserverpb::Compare::VALUE);
    c->set_value("value-0");
    auto* put = txn.add_success()->mutable_request_put();
    put->set_key("demo/key-0000");
    put->set_value("value-0-updated");
    etcdserverpb::TxnResponse resp;
    grpc::Status s = leader->kv->Txn(&ctx, txn, &resp);
    if (s.ok() && resp.succeeded()) acked["demo/key-0000"] = "value-0-updated";
    Say(absl::StrFormat(
        "compare-and-set on demo/key-0000: %s at revision %d",
        s.ok() ? (resp.succeeded() ? "succeeded" : "compare failed") : s.error_message(),
        resp.header().revision()));
  }

  // Phase 2: the leader dies without warning.
  DemoMember* old = leader;
  Say(absl::StrFormat("killing the leader %s (pid %d) with SIGKILL", old->name, old->pid));
  ::kill(old->pid, SIGKILL);
  ::waitpid(old->pid, nullptr, 0);
  old->pid = 0;
  Clock::time_point killed = Clock::now();
  DemoMember* fresh = WaitLeader(15);
  if (fresh == nullptr) {
    Say("no new leader within 15 s");
    keep_ = true;
    return 1;
  }
  double failover_s = Seconds(killed);
  Say(absl::StrFormat("%s took over as leader %.2f s after the kill", fresh->name, failover_s));
  int after = 0;
  for (int i = kWrites; i < kWrites + 100; ++i) {
    DemoMember& via = members_[i % 3].pid > 0 ? members_[i % 3] : *fresh;
    std::string k = absl::StrFormat("demo/key-%04d", i);
    std::string v = absl::StrCat("value-", i);
    if (Put(via, k, v, nullptr).ok()) {
      acked[k] = v;
      ++after;
    }
  }
  Say(absl::StrFormat("%d more writes acknowledged by the two survivors", after));

  // Every acknowledged write, read back linearizably from a survivor.
  int missing = 0;
  for (const auto& [k, v] : acked) {
    // A read that fails (a slow answer on a loaded machine) is tried again
    // before the write counts as missing.
    std::optional<std::string> got;
    for (int attempt = 0; attempt < 5 && !got; ++attempt)
      got = Get(*fresh, k, false);
    if (!got || *got != v) ++missing;
  }
  Say(absl::StrFormat("read back all %d acknowledged writes from %s: %d missing or wrong",
                      int(acked.size()), fresh->name, missing));

  // Phase 3: the killed member comes back and catches up from its WAL and
  // the leader.
  if (!StartMember(*old)) return 1;
  Say(absl::StrFormat("restarted %s (pid %d) on its data directory", old->name, old->pid));
  std::string last = absl::StrFormat("demo/key-%04d", kWrites + 99);
  bool caught_up = false;
  Clock::time_point restarted = Clock::now();
  while (Seconds(restarted) < 15) {
    std::optional<std::string> got = Get(*old, last, /*serializable=*/true);
    if (got && acked.count(last) && *got == acked[last]) {
      caught_up = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Say(caught_up ? absl::StrFormat("%s caught up in %.2f s: its local (serializable) read sees "
                                  "the last write made while it was dead",
                                  old->name, Seconds(restarted))
                : absl::StrFormat("%s did not catch up within 15 s", old->name));
  int64_t revs[3] = {0, 0, 0};
  for (int i = 0; i < 3; ++i) {
    if (auto s = Status(members_[i], 1000)) revs[i] = s->header().revision();
  }
  Say(absl::StrFormat("revisions: %s=%d %s=%d %s=%d", members_[0].name, revs[0], members_[1].name,
                      revs[1], members_[2].name, revs[2]));
  bool ok = missing == 0 && caught_up;
  std::printf(
      "\nSummary: %d writes acknowledged, %d lost; leader %s killed, %s led within %.2f s; "
      "%s rejoined%s.\n%s\n",
      int(acked.size()), missing, old->name.c_str(), fresh->name.c_str(), failover_s,
      old->name.c_str(), caught_up ? " and caught up" : " but did NOT catch up",
      ok ? "Every acknowledged write survived the leader's crash." : "FAILED: see above.");
  Say("stopping the three members");
  StopAll();
  return ok ? 0 : 1;
}

}  // namespace

void AddDemoCommand(CLI::App& app, int* exit_code) {
  auto keep = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "demo", "A local three-member cluster as three processes: writes, leader killed, failover");
  cmd->add_flag("--keep", *keep, "Keep the data directories and logs");
  cmd->callback([keep, exit_code] {
    std::string tmpl = (std::filesystem::temp_directory_path() / "bulwark-demo-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      std::fprintf(stderr, "bulwark demo: cannot create a temporary directory\n");
      *exit_code = 1;
      return;
    }
    Demo demo(tmpl, *keep);
    *exit_code = demo.Run();
  });
}

}  // namespace bw::cli
