// A chaos run's report: one self-contained HTML page (verdicts, counts,
// latency over time with the nemesis intervals shaded, throughput over
// time), the two plots also as SVG files, and the history as JSON lines.
#pragma once

#include <string>
#include <vector>

#include "chaos/register_workload.h"
#include "check/history.h"
#include "core/status.h"

namespace bw::chaos {

struct NemesisInterval {
  std::string what;  // "partition n0 | n1 n2", "kill n1", ...
  std::string kind;  // partition, kill, pause, loss, ...
  double start_s = 0;
  double end_s = 0;
};

struct CheckerVerdict {
  std::string checker;
  bool ok = false;
  std::string detail;
};

struct RunReport {
  std::string title;
  std::string command;
  double seconds = 0;
  std::vector<NemesisInterval> nemesis;
  std::vector<CheckerVerdict> verdicts;
  std::vector<Sample> samples;
  uint64_t ok = 0, failed = 0, unknown = 0;
};

// Latency over time (log scale, a dot per operation coloured by outcome,
// nemesis intervals shaded) and throughput (ok operations per second).
std::string LatencySvg(const RunReport& r);
std::string ThroughputSvg(const RunReport& r);
std::string ReportHtml(const RunReport& r);

// Writes report.html, latency.svg, throughput.svg, history.jsonl and
// nemesis.jsonl into `dir`.
[[nodiscard]] absl::Status WriteReport(const std::string& dir, const RunReport& r,
                                       const check::History& h);

}  // namespace bw::chaos
