#include "chaos/chaos.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "chaos/cluster.h"
#include "chaos/exactly_once_workload.h"
#include "chaos/lock_workload.h"
#include "chaos/netns.h"
#include "chaos/process.h"
#include "chaos/register_workload.h"
#include "chaos/report.h"
#include "chaos/txn_workload.h"
#include "chaos/watch_workload.h"
#include "check/linearizability.h"
#include "env/real/real_env.h"
#include "env/seeded_random.h"

namespace bw::chaos {

const std::set<std::string>& KnownNemeses() {
  static const std::set<std::string> k = {"partition", "kill",   "pause", "loss",
                                          "clock",     "member", "power", "disk"};
  return k;
}

const std::set<std::string>& KnownWorkloads() {
  static const std::set<std::string> k = {"register", "exactly-once", "watch", "txn", "lock"};
  return k;
}

namespace {

class Run {
 public:
  Run(const ChaosOptions& o, std::atomic<bool>& stop)
      : o_(o), stop_(stop), random_(o.seed), epoch_us_(clock_.NowMicros()) {}

  int Go();

 private:
  double Elapsed() { return (clock_.NowMicros() - epoch_us_) / 1e6; }
  void Say(const std::string& s) {
    if (!o_.progress) return;
    std::printf("[%6.1fs] %s\n", Elapsed(), s.c_str());
    std::fflush(stdout);
  }
  // Sleeps up to `s` seconds, waking early when stopped. False if stopped.
  bool Sleep(double s) {
    const int64_t until_us = clock_.NowMicros() + static_cast<int64_t>(s * 1e6);
    while (clock_.NowMicros() < until_us) {
      if (stop_) return false;
      env::SleepMicros(20'000);
    }
    return !stop_;
  }
  double Draw(double x) { return x + random_.Uniform() * x; }
  int Pick(int n) { return static_cast<int>(random_.Below(static_cast<uint64_t>(n))); }
  // A member to hit: the leader half the time (faults there matter most).
  int Target() {
    if (random_.Chance(0.5)) {
      int l = cluster_->Leader();
      if (l >= 0) return l;
    }
    return Pick(o_.nodes);
  }
  // One fault: applies it, holds it, heals it, records the interval.
  absl::Status Fault(const std::string& kind);
  std::vector<CheckerVerdict> Check(const check::History& h);
  // Adds a removed member back as a learner and promotes it.
  void RejoinMember(int t) {
    if (!cluster_->removed(t)) return;
    absl::Status st = cluster_->AddLearner(t);
    if (st.ok()) st = cluster_->Promote(t, 30'000);
    Say(st.ok() ? absl::StrCat(cluster_->name(t), " is a voter again")
                : absl::StrCat("rejoining ", cluster_->name(t), ": ", st.message()));
  }

  const ChaosOptions& o_;
  std::atomic<bool>& stop_;
  env::RealClock clock_;
  env::SeededRandom random_;
  int64_t epoch_us_;
  Network net_;
  std::unique_ptr<Cluster> cluster_;
  std::vector<NemesisInterval> nemesis_;
};

absl::Status Run::Fault(const std::string& kind) {
  NemesisInterval n;
  n.kind = kind;
  double hold = Draw(o_.fault_s);
  std::function<void()> heal;
  // Called every 100 ms while the fault holds (a strobing clock).
  std::function<void()> tick;
  auto names = [&](const std::vector<int>& g) {
    std::vector<std::string> out;
    for (int i : g)
      out.push_back(cluster_->name(i));
    return absl::StrJoin(out, " ");
  };
  if (kind == "partition") {
    std::vector<int> all(o_.nodes);
    for (int i = 0; i < o_.nodes; ++i)
      all[i] = i;
    for (int i = o_.nodes - 1; i > 0; --i)
      std::swap(all[i], all[Pick(i + 1)]);
    const int leader = cluster_->Leader();
    // isolate the leader, majority|minority, halves, bridge, ring, one-way.
    int scheme = Pick(6);
    if (scheme == 0 && leader < 0) scheme = 1;
    if (scheme == 4 && o_.nodes < 5) scheme = 5;  // in three, everyone is a neighbour
    if (scheme <= 2) {
      std::vector<int> minority, majority;
      if (scheme == 0) {
        minority = {leader};
        for (int i : all)
          if (i != leader) majority.push_back(i);
      } else {
        int m = scheme == 2 && o_.nodes >= 4 ? o_.nodes / 2 : std::max(1, (o_.nodes - 1) / 2);
        minority.assign(all.begin(), all.begin() + m);
        majority.assign(all.begin() + m, all.end());
      }
      std::sort(minority.begin(), minority.end());
      std::sort(majority.begin(), majority.end());
      n.what = absl::StrCat(scheme == 0 ? "isolate the leader: " : "partition ", names(minority),
                            " | ", names(majority));
      BW_RETURN_IF_ERROR(net_.Partition({minority, majority}));
    } else {
      std::vector<std::pair<int, int>> links;
      auto cut = [&](int a, int b) {
        links.emplace_back(a, b);
        links.emplace_back(b, a);
      };
      if (scheme == 3) {
        // Bridge: two sides that cannot talk, and one member that hears both.
        std::vector<int> a(all.begin() + 1, all.begin() + 1 + (o_.nodes - 1) / 2);
        std::vector<int> b(all.begin() + 1 + (o_.nodes - 1) / 2, all.end());
        for (int x : a)
          for (int y : b)
            cut(x, y);
        n.what = absl::StrCat("bridge: ", names(a), " | ", names(b), ", ", cluster_->name(all[0]),
                              " hears both");
      } else if (scheme == 4) {
        // Ring: each member hears only its two neighbours.
        for (int i = 0; i < o_.nodes; ++i)
          for (int j = i + 1; j < o_.nodes; ++j)
            if (j - i != 1 && j - i != o_.nodes - 1) cut(all[i], all[j]);
        n.what = absl::StrCat("ring ", names(all), " (each hears only its neighbours)");
      } else {
        // One-way: a member (the leader when known) hears no one, or no one hears it.
        int t = leader >= 0 && random_.Chance(0.7) ? leader : all[0];
        bool deaf = random_.Chance(0.5);
        for (int j = 0; j < o_.nodes; ++j) {
          if (j == t) continue;
          if (deaf)
            links.emplace_back(j, t);
          else
            links.emplace_back(t, j);
        }
        n.what = absl::StrCat("one-way: ", cluster_->name(t),
                              deaf ? " hears no one (others hear it)" : " is heard by no one");
      }
      BW_RETURN_IF_ERROR(net_.Block(links));
    }
    heal = [this] { (void)net_.Heal(); };
  } else if (kind == "kill") {
    // Mostly one member (the leader half the time); sometimes a majority at
    // once, which loses whatever was acknowledged but not yet on disk.
    std::vector<int> victims = {Target()};
    if (random_.Chance(0.3)) {
      std::vector<int> all(o_.nodes);
      for (int i = 0; i < o_.nodes; ++i)
        all[i] = i;
      for (int i = o_.nodes - 1; i > 0; --i)
        std::swap(all[i], all[Pick(i + 1)]);
      victims.assign(all.begin(), all.begin() + o_.nodes / 2 + 1);
      std::sort(victims.begin(), victims.end());
    }
    n.what = absl::StrCat("kill -9 ", names(victims), ", restart");
    for (int t : victims)
      cluster_->Kill(t);
    heal = [this, victims] {
      for (int t : victims)
        (void)cluster_->Start(t);
    };
  } else if (kind == "power") {
    // Every member at once, as when a rack loses power: what was
    // acknowledged must be on a disk somewhere.
    n.what = "power loss: kill -9 every member at once, restart";
    for (int t = 0; t < o_.nodes; ++t)
      cluster_->Kill(t);
    heal = [this] {
      for (int t = 0; t < o_.nodes; ++t)
        (void)cluster_->Start(t);
    };
  } else if (kind == "disk") {
    int t = Target();
    BW_RETURN_IF_ERROR(cluster_->FillDisk(t));
    n.what = absl::StrCat("fill ", cluster_->name(t), "'s disk, then free it");
    heal = [this, t] { cluster_->FreeDisk(t); };
  } else if (kind == "pause") {
    int t = Target();
    n.what = absl::StrCat("SIGSTOP ", cluster_->name(t), ", SIGCONT");
    cluster_->Pause(t);
    heal = [this, t] { cluster_->Resume(t); };
  } else if (kind == "loss") {
    int percent = 10 + Pick(21);
    n.what = absl::StrCat("drop ", percent, "% of packets at every member");
    BW_RETURN_IF_ERROR(net_.SetLoss(percent));
    heal = [this] { (void)net_.Heal(); };
  } else if (kind == "clock") {
    // Some members' wall clocks jump (up to ten minutes either way), skew a
    // little, or strobe between two offsets.
    std::vector<int> hit;
    for (int i = 0; i < o_.nodes; ++i)
      if (random_.Chance(0.5)) hit.push_back(i);
    if (hit.empty()) hit.push_back(Target());
    auto offset = [this] {
      double mag =
          random_.Chance(0.5) ? 0.05 + random_.Uniform() * 2 : 10 + random_.Uniform() * 590;
      return random_.Chance(0.5) ? mag : -mag;
    };
    const bool strobe = random_.Chance(0.3);
    std::vector<std::pair<double, double>> offsets;
    std::vector<std::string> parts;
    for (int t : hit) {
      offsets.emplace_back(offset(), strobe ? offset() : 0);
      parts.push_back(absl::StrFormat("%s %+.2fs", cluster_->name(t), offsets.back().first));
      if (strobe) parts.back() += absl::StrFormat("/%+.2fs", offsets.back().second);
      BW_RETURN_IF_ERROR(cluster_->SetClockOffset(t, offsets.back().first));
    }
    n.what = absl::StrCat(strobe ? "clocks strobe: " : "clocks jump: ", absl::StrJoin(parts, ", "));
    if (strobe) {
      auto flips = std::make_shared<int>(0);
      tick = [this, hit, offsets, flips] {
        // Every second (libfaketime re-reads the offset once a second).
        if (++*flips % 10 != 0) return;
        for (size_t k = 0; k < hit.size(); ++k) {
          double o = (*flips / 10) % 2 ? offsets[k].second : offsets[k].first;
          (void)cluster_->SetClockOffset(hit[k], o);
        }
      };
    }
    heal = [this, hit] {
      for (int t : hit)
        (void)cluster_->SetClockOffset(t, 0);
    };
  } else if (kind == "member") {
    // Remove a member (the leader half the time) and add it back, empty, as
    // a learner; promote it once it has caught up.
    int t = Target();
    absl::Status removed = cluster_->RemoveMember(t);
    n.what = removed.ok()
                 ? absl::StrCat("remove ", cluster_->name(t), ", add it back as a learner, promote")
                 : absl::StrCat("remove ", cluster_->name(t), " refused: ", removed.message());
    heal = [this, t] { RejoinMember(t); };
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown nemesis ", kind));
  }
  n.start_s = Elapsed();
  Say(n.what);
  if (tick) {
    const double until = Elapsed() + hold;
    while (Elapsed() < until && Sleep(0.1))
      tick();
  } else {
    Sleep(hold);
  }
  heal();
  n.end_s = Elapsed();
  nemesis_.push_back(n);
  return absl::OkStatus();
}

std::vector<CheckerVerdict> Run::Check(const check::History& h) {
  std::vector<CheckerVerdict> out;
  check::CheckOptions co;
  co.max_steps = 20'000'000;
  check::LinearizabilityResult r = check::CheckLinearizable(h, co);
  CheckerVerdict v;
  v.checker = "linearizability (register workload, WGL)";
  v.ok = r.ok();
  if (r.verdict == check::Verdict::kGaveUp) {
    v.detail = absl::StrCat("gave up on key ", r.key, " after ", r.steps,
                            " steps: undecided is a failure to investigate, not a pass");
  } else if (!r.ok()) {
    v.detail = r.explanation;
  } else {
    v.detail = absl::StrCat(h.size(), " operations, ", r.steps, " search steps");
  }
  out.push_back(v);
  return out;
}

int Run::Go() {
  std::error_code ec;
  std::filesystem::create_directories(o_.out_dir, ec);
  if (ec) {
    std::fprintf(stderr, "bulwark chaos: cannot create %s: %s\n", o_.out_dir.c_str(),
                 ec.message().c_str());
    return 2;
  }
  // Leftovers of runs killed before they could clean up, if nothing runs in them.
  int removed = Network::RemoveLeftovers();
  if (removed > 0)
    Say(absl::StrCat("removed ", removed, " namespaces and bridges left by earlier runs"));
  int tag = static_cast<int>(getpid() % 250);
  absl::Status st = net_.Create(o_.nodes, tag);
  if (!st.ok()) {
    std::fprintf(stderr, "bulwark chaos: cannot build the network: %s\n",
                 std::string(st.message()).c_str());
    return 2;
  }
  Say(absl::StrCat(o_.nodes, " namespaces ", net_.ns(0), "..", net_.ns(o_.nodes - 1), " on 10.213.",
                   net_.tag(), ".0/24, bridge bwc", net_.tag()));
  std::vector<std::string> extra;
  if (o_.plant_bug == "stale-reads") extra.push_back("--plant-bug-stale-reads");
  if (o_.plant_bug == "skip-dedup") extra.push_back("--plant-bug-skip-dedup");
  if (o_.plant_bug == "watch-gaps") extra.push_back("--plant-bug-watch-gaps");
  if (o_.plant_bug == "ack-before-fsync") extra.push_back("--plant-bug-ack-before-fsync");
  cluster_ =
      std::make_unique<Cluster>(net_, o_.bulwark, o_.out_dir, extra, o_.nemeses.count("clock") > 0);
  if (o_.nemeses.count("disk")) {
    st = cluster_->UseSmallDisks(1024);
    if (!st.ok()) {
      std::fprintf(stderr, "bulwark chaos: cannot make the members' small disks: %s\n",
                   std::string(st.message()).c_str());
      return 2;
    }
  }
  st = cluster_->StartAll();
  if (st.ok()) st = cluster_->WaitForLeader(20'000);
  if (!st.ok()) {
    std::fprintf(stderr, "bulwark chaos: the cluster did not start: %s\n",
                 std::string(st.message()).c_str());
    return 2;
  }
  Say(absl::StrCat("cluster up: ", absl::StrJoin(cluster_->endpoints(), " "),
                   o_.plant_bug.empty() ? "" : absl::StrCat(" (planted bug: ", o_.plant_bug, ")")));

  std::unique_ptr<RegisterWorkload> reg;
  if (o_.workloads.count("register")) {
    RegisterOptions ro;
    ro.clients = o_.clients;
    ro.seed = o_.seed;
    reg = std::make_unique<RegisterWorkload>(cluster_->endpoints(), ro, clock_, epoch_us_);
    st = reg->Start();
  }
  // The workloads checked against the store afterwards, in the order they
  // start (the watchers first, so that they follow every write) and report.
  std::vector<std::unique_ptr<Workload>> checked;
  const std::vector<std::string> eps = cluster_->endpoints();
  if (o_.workloads.count("watch"))
    checked.push_back(std::make_unique<WatchWorkload>(eps, o_.nodes));
  if (o_.workloads.count("exactly-once") || o_.workloads.count("watch")) {
    checked.push_back(
        std::make_unique<ExactlyOnceWorkload>(eps, ExactlyOnceOptions{}, clock_, epoch_us_));
  }
  if (o_.workloads.count("txn")) {
    TxnOptions to;
    to.seed = o_.seed;
    checked.push_back(std::make_unique<TxnWorkload>(eps, to, clock_, epoch_us_));
  }
  if (o_.workloads.count("lock")) {
    LockOptions lo;
    lo.seed = o_.seed;
    lo.unfenced = o_.plant_bug == "unfenced-lock";
    checked.push_back(std::make_unique<LockWorkload>(eps, lo, clock_, epoch_us_));
  }
  for (auto& w : checked)
    if (st.ok()) st = w->Start();
  if (!st.ok()) {
    std::fprintf(stderr, "bulwark chaos: clients could not connect: %s\n",
                 std::string(st.message()).c_str());
    return 2;
  }
  auto total_ops = [&] {
    uint64_t n = reg ? reg->ops() : 0;
    for (auto& w : checked)
      n += w->ops();
    return n;
  };
  auto stop_workloads = [&] {
    if (reg) reg->Stop();
    for (auto& w : checked)
      w->Stop();
  };
  std::vector<std::string> kinds(o_.nemeses.begin(), o_.nemeses.end());
  const double recover_s = std::min(5.0, o_.time_limit_s / 4);
  uint64_t last_ops = 0;
  while (!stop_ && Elapsed() + recover_s < o_.time_limit_s) {
    if (!Sleep(std::min(Draw(o_.quiet_s), o_.time_limit_s - recover_s - Elapsed()))) break;
    uint64_t ops = total_ops();
    Say(absl::StrCat(ops, " operations (+", ops - last_ops, ")"));
    last_ops = ops;
    if (kinds.empty() || Elapsed() + recover_s + o_.fault_s > o_.time_limit_s) continue;
    st = Fault(kinds[Pick(static_cast<int>(kinds.size()))]);
    if (!st.ok()) {
      std::fprintf(stderr, "bulwark chaos: a fault failed: %s\n",
                   std::string(st.message()).c_str());
      stop_workloads();
      return 2;
    }
  }
  // Everything healed and running; the workload goes on for a while so
  // that what was pending settles.
  (void)net_.Heal();
  for (int i = 0; i < o_.nodes; ++i) {
    cluster_->Resume(i);
    (void)cluster_->Start(i);
    if (o_.nemeses.count("clock")) (void)cluster_->SetClockOffset(i, 0);
    if (o_.nemeses.count("disk")) cluster_->FreeDisk(i);
    RejoinMember(i);
  }
  Say("healed; the workload runs on to recover");
  Sleep(recover_s);
  stop_workloads();
  double seconds = Elapsed();
  if (stop_) {
    Say("interrupted: cleaning up");
    return 130;
  }

  // The checkers that read the store back need a leader: after a late
  // fault (a power loss, a member re-added) that can take a while.
  if (absl::Status led = cluster_->WaitForLeader(60'000); !led.ok()) {
    Say(absl::StrCat("no leader to read back from: ", led.message()));
  }
  check::History h = reg ? reg->history() : check::History();
  Say(absl::StrCat("checking ", h.size(), " operations"));
  RunReport report;
  report.title =
      absl::StrCat("bulwark chaos: ", o_.nodes, " nodes, ", absl::StrJoin(o_.nemeses, ","),
                   ", seed ", o_.seed, o_.plant_bug.empty() ? "" : ", planted bug " + o_.plant_bug);
  report.command = o_.command_line;
  report.seconds = seconds;
  report.nemesis = nemesis_;
  if (reg) report.samples = reg->samples();
  for (const check::Operation& op : h.ops()) {
    if (op.outcome == check::Outcome::kOk) ++report.ok;
    if (op.outcome == check::Outcome::kFailed) ++report.failed;
    if (op.outcome == check::Outcome::kUnknown) ++report.unknown;
  }
  // The checkers that read the store back go first, while the members have
  // the machine to themselves (the linearizability search after them is
  // CPU-bound).
  for (auto& w : checked) {
    CheckerVerdict v;
    v.checker = w->checker();
    std::string summary;
    absl::Status st = w->Check(&summary);
    v.ok = st.ok();
    v.detail = st.ok() ? summary : absl::StrCat(st.message(), "\n", summary);
    report.verdicts.push_back(v);
    if (w->log() != nullptr) {
      absl::Status written = w->log()->Write(absl::StrCat(o_.out_dir, "/", w->name(), ".jsonl"));
      if (!written.ok()) std::fprintf(stderr, "bulwark chaos: %s\n", written.ToString().c_str());
    }
  }
  if (reg) {
    std::vector<CheckerVerdict> lin = Check(h);
    report.verdicts.insert(report.verdicts.begin(), lin.begin(), lin.end());
  }
  cluster_->StopAll();
  st = WriteReport(o_.out_dir, report, h);
  if (!st.ok()) std::fprintf(stderr, "bulwark chaos: %s\n", std::string(st.message()).c_str());
  bool ok = true;
  for (const CheckerVerdict& v : report.verdicts) {
    std::printf("%s: %s%s%s\n", v.checker.c_str(), v.ok ? "valid" : "INVALID", v.ok ? " - " : "\n",
                v.detail.c_str());
    ok = ok && v.ok;
  }
  uint64_t keyed_writes = 0;
  for (auto& w : checked)
    if (std::string(w->name()) == "exactly-once") keyed_writes = w->ops();
  std::printf(
      "verdict: %s - %llu register ops (%llu ok, %llu failed, %llu unknown), %llu keyed writes, "
      "%zu faults, %.0f s; report %s/report.html\n",
      ok ? "PASS" : "FAIL", (unsigned long long)h.size(), (unsigned long long)report.ok,
      (unsigned long long)report.failed, (unsigned long long)report.unknown,
      (unsigned long long)keyed_writes, nemesis_.size(), seconds, o_.out_dir.c_str());
  return ok ? 0 : 1;
}

}  // namespace

int RunChaos(const ChaosOptions& o, std::atomic<bool>& stop) {
  if (geteuid() != 0) {
    std::fprintf(stderr,
                 "bulwark chaos: needs root to create network namespaces (run it as root or with "
                 "sudo); nothing was changed\n");
    return 2;
  }
  for (const char* tool : {"ip", "nft"}) {
    std::string out;
    if (!RunCommand({tool, "-V"}, &out).ok()) {
      std::fprintf(stderr,
                   "bulwark chaos: `%s` is missing (Debian: apt-get install iproute2 nftables); "
                   "nothing was changed\n",
                   tool);
      return 2;
    }
  }
  if (o.nemeses.count("clock") && Cluster::FakeTimeLibrary().empty()) {
    std::fprintf(stderr,
                 "bulwark chaos: the clock nemesis needs libfaketime (Debian: apt-get install "
                 "libfaketime); nothing was changed\n");
    return 2;
  }
  Run run(o, stop);
  return run.Go();
}

}  // namespace bw::chaos
