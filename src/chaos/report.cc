#include "chaos/report.h"

#include "chaos/chaos_client.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"

namespace bw::chaos {

namespace {

constexpr int kWidth = 960;
constexpr int kHeight = 300;
constexpr int kLeft = 60;
constexpr int kBottom = 30;

std::string Escape(const std::string& s) {
  return absl::StrReplaceAll(s, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}});
}

const char* NemesisColour(const std::string& kind) {
  if (kind == "partition") return "#f4a6a6";
  if (kind == "kill") return "#a6c8f4";
  if (kind == "pause") return "#f4e3a6";
  if (kind == "loss") return "#c9a6f4";
  if (kind == "clock") return "#a6f4c9";
  if (kind == "member") return "#f4c9a6";
  if (kind == "power") return "#8c8c8c";
  if (kind == "disk") return "#cccccc";
  return "#cccccc";
}

double X(double t_s, double total_s) {
  return kLeft + (kWidth - kLeft - 10) * std::clamp(t_s / std::max(total_s, 1.0), 0.0, 1.0);
}

// The nemesis bands and their legend, behind a plot.
std::string Bands(const RunReport& r, int plot_height) {
  std::string out;
  for (const NemesisInterval& n : r.nemesis) {
    double x0 = X(n.start_s, r.seconds), x1 = X(n.end_s, r.seconds);
    out += absl::StrFormat(
        "<rect x='%.1f' y='0' width='%.1f' height='%d' fill='%s' opacity='0.5'><title>%s "
        "(%.1f-%.1f s)</title></rect>\n",
        x0, std::max(1.0, x1 - x0), plot_height, NemesisColour(n.kind), Escape(n.what), n.start_s,
        n.end_s);
  }
  return out;
}

std::string TimeAxis(const RunReport& r, int y) {
  std::string out = absl::StrFormat("<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='#333'/>\n",
                                    kLeft, y, kWidth - 10, y);
  int step = r.seconds > 200 ? 30 : r.seconds > 60 ? 10 : 5;
  for (int t = 0; t <= r.seconds; t += step) {
    out += absl::StrFormat("<text x='%.1f' y='%d' font-size='11' text-anchor='middle'>%ds</text>\n",
                           X(t, r.seconds), y + 15, t);
  }
  return out;
}

}  // namespace

std::string LatencySvg(const RunReport& r) {
  const int plot_h = kHeight - kBottom;
  // 0.1 ms .. 10 s, log scale.
  auto y = [&](int64_t us) {
    double l = std::log10(std::clamp<double>(static_cast<double>(us), 100, 1e7));
    return plot_h - (l - 2.0) / 5.0 * (plot_h - 12);
  };
  std::string out = absl::StrFormat(
      "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' font-family='sans-serif'>\n",
      kWidth, kHeight);
  out += Bands(r, plot_h);
  for (int64_t us : {100, 1'000, 10'000, 100'000, 1'000'000, 10'000'000}) {
    out += absl::StrFormat(
        "<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#ddd'/><text x='%d' y='%.1f' "
        "font-size='11' text-anchor='end'>%s</text>\n",
        kLeft, y(us), kWidth - 10, y(us), kLeft - 4, y(us) + 4,
        us >= 1'000'000 ? absl::StrCat(us / 1'000'000, " s") : absl::StrCat(us / 1000.0, " ms"));
  }
  // At most 20,000 dots: an even sample of a long run.
  size_t stride = std::max<size_t>(1, r.samples.size() / 20'000);
  for (size_t i = 0; i < r.samples.size(); i += stride) {
    const Sample& s = r.samples[i];
    const char* colour = s.outcome == check::Outcome::kOk       ? "#2a9d4b"
                         : s.outcome == check::Outcome::kFailed ? "#e08a1e"
                                                                : "#d62828";
    out += absl::StrFormat("<circle cx='%.1f' cy='%.1f' r='1.5' fill='%s'/>\n",
                           X(s.invoke_us / 1e6, r.seconds), y(s.latency_us), colour);
  }
  out += TimeAxis(r, plot_h);
  out += "</svg>\n";
  return out;
}

std::string ThroughputSvg(const RunReport& r) {
  const int plot_h = kHeight - kBottom;
  int buckets = std::max(1, static_cast<int>(std::ceil(r.seconds)));
  std::vector<int> ok(buckets, 0);
  for (const Sample& s : r.samples) {
    if (s.outcome != check::Outcome::kOk) continue;
    int b = std::clamp(static_cast<int>((s.invoke_us + s.latency_us) / 1'000'000), 0, buckets - 1);
    ++ok[b];
  }
  int top = std::max(10, *std::max_element(ok.begin(), ok.end()));
  std::string out = absl::StrFormat(
      "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' font-family='sans-serif'>\n",
      kWidth, kHeight);
  out += Bands(r, plot_h);
  std::string points;
  for (int b = 0; b < buckets; ++b) {
    absl::StrAppendFormat(&points, "%.1f,%.1f ", X(b + 0.5, r.seconds),
                          plot_h - static_cast<double>(ok[b]) / top * (plot_h - 10));
  }
  out += absl::StrFormat(
      "<polyline points='%s' fill='none' stroke='#1d3557' stroke-width='1.5'/>\n"
      "<text x='%d' y='12' font-size='11' text-anchor='end'>%d/s</text>\n",
      points, kLeft - 4, top);
  out += TimeAxis(r, plot_h);
  out += "</svg>\n";
  return out;
}

std::string ReportHtml(const RunReport& r) {
  bool all_ok = std::all_of(r.verdicts.begin(), r.verdicts.end(),
                            [](const CheckerVerdict& v) { return v.ok; });
  std::string html = absl::StrCat(
      "<!doctype html>\n<html><head><meta charset='utf-8'><title>", Escape(r.title),
      "</title>\n<style>body{font-family:sans-serif;margin:2em;max-width:1000px}"
      "td,th{padding:4px 10px;text-align:left}table{border-collapse:collapse}"
      "tr{border-bottom:1px solid #ddd}.ok{color:#2a9d4b}.bad{color:#d62828}"
      "code{background:#f4f4f4;padding:2px 4px}</style></head><body>\n<h1>",
      Escape(r.title), "</h1>\n<p class='", all_ok ? "ok" : "bad", "'><b>",
      all_ok ? "PASS" : "FAIL", "</b> after ", absl::StrFormat("%.0f", r.seconds),
      " s</p>\n<p><code>", Escape(r.command),
      "</code></p>\n<h2>Checkers</h2>\n<table><tr><th>checker</th><th>verdict</th><th>detail</th>"
      "</tr>\n");
  for (const CheckerVerdict& v : r.verdicts) {
    absl::StrAppend(&html, "<tr><td>", Escape(v.checker), "</td><td class='",
                    v.ok ? "ok'>valid" : "bad'>INVALID", "</td><td><pre>", Escape(v.detail),
                    "</pre></td></tr>\n");
  }
  absl::StrAppend(&html, "</table>\n<h2>Operations</h2>\n<p>", r.ok + r.failed + r.unknown,
                  " operations: ", r.ok, " ok, ", r.failed, " failed (not applied), ", r.unknown,
                  " unknown (maybe applied)</p>\n");
  absl::StrAppend(&html,
                  "<h2>Latency</h2>\n<p>Each dot an operation (green ok, orange failed, red "
                  "unknown); bands are faults (red partition, blue kill, yellow pause, purple "
                  "loss, green clock, orange membership, dark grey power loss, light grey full "
                  "disk).</p>\n",
                  LatencySvg(r), "<h2>Throughput (ok operations per second)</h2>\n",
                  ThroughputSvg(r),
                  "<h2>Faults</h2>\n<table><tr><th>from</th><th>to</th>"
                  "<th>fault</th></tr>\n");
  for (const NemesisInterval& n : r.nemesis) {
    absl::StrAppendFormat(&html, "<tr><td>%.1f s</td><td>%.1f s</td><td>%s</td></tr>\n", n.start_s,
                          n.end_s, Escape(n.what));
  }
  absl::StrAppend(&html, "</table>\n</body></html>\n");
  return html;
}

absl::Status WriteReport(const std::string& dir, const RunReport& r, const check::History& h) {
  auto write = [&](const std::string& name, const std::string& text) -> absl::Status {
    std::ofstream f(dir + "/" + name);
    f << text;
    f.close();
    if (!f) return absl::InternalError(absl::StrCat("cannot write ", dir, "/", name));
    return absl::OkStatus();
  };
  BW_RETURN_IF_ERROR(write("report.html", ReportHtml(r)));
  BW_RETURN_IF_ERROR(write("latency.svg", LatencySvg(r)));
  BW_RETURN_IF_ERROR(write("throughput.svg", ThroughputSvg(r)));
  std::string lines;
  for (const check::Operation& op : h.ops()) {
    absl::StrAppend(
        &lines, "{\"client\":", op.client,
        ",\"op\":", JsonString(std::string(check::OpKindName(op.kind))),
        ",\"key\":", JsonString(op.key), ",\"value\":", JsonString(op.value),
        ",\"expected\":", JsonString(op.expected), ",\"invoke_us\":", op.invoke_us,
        ",\"complete_us\":", op.complete_us == check::kNeverCompletedUs ? -1 : op.complete_us,
        ",\"outcome\":", JsonString(std::string(check::OutcomeName(op.outcome))),
        ",\"found\":", op.found ? "true" : "false", ",\"result\":", JsonString(op.result),
        ",\"cas_ok\":", op.cas_ok ? "true" : "false", "}\n");
  }
  BW_RETURN_IF_ERROR(write("history.jsonl", lines));
  std::string nem;
  for (const NemesisInterval& n : r.nemesis) {
    absl::StrAppendFormat(&nem, "{\"kind\":%s,\"what\":%s,\"start_s\":%.3f,\"end_s\":%.3f}\n",
                          JsonString(n.kind), JsonString(n.what), n.start_s, n.end_s);
  }
  return write("nemesis.jsonl", nem);
}

}  // namespace bw::chaos
