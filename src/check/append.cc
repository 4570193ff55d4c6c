#include "check/append.h"

#include <algorithm>
#include <deque>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace bw::check {

namespace {

absl::Status Anomaly(std::string what) {
  return absl::FailedPreconditionError(absl::StrCat("txn: ", what));
}

}  // namespace

absl::Status CheckAppends(const std::vector<AppendTxn>& txns, const std::vector<ListRead>& reads,
                          const std::map<std::string, std::vector<uint64_t>>& lists,
                          AppendSummary* summary) {
  AppendSummary s;
  std::unordered_map<uint64_t, const AppendTxn*> by_id;
  for (const AppendTxn& t : txns) {
    if (!by_id.emplace(t.id, &t).second) return Anomaly(absl::StrCat("id ", t.id, " sent twice"));
  }
  // Where each id sits in each list.
  std::unordered_map<uint64_t, std::map<std::string, size_t>> where;
  for (const auto& [key, list] : lists) {
    for (size_t pos = 0; pos < list.size(); ++pos) {
      uint64_t id = list[pos];
      auto t = by_id.find(id);
      if (t == by_id.end())
        return Anomaly(absl::StrCat(key, " holds ", id, ", which no txn wrote"));
      const AppendTxn& txn = *t->second;
      if (std::find(txn.keys.begin(), txn.keys.end(), key) == txn.keys.end()) {
        return Anomaly(absl::StrCat(key, " holds ", id, ", whose txn wrote only ",
                                    absl::StrJoin(txn.keys, ", ")));
      }
      if (txn.outcome == Outcome::kFailed) {
        return Anomaly(absl::StrCat(key, " holds ", id, ", whose txn was refused"));
      }
      if (!where[id].emplace(key, pos).second) {
        return Anomaly(absl::StrCat(key, " holds ", id, " twice: applied more than once"));
      }
      ++s.appends;
    }
  }
  for (const AppendTxn& t : txns) {
    auto w = where.find(t.id);
    size_t present = w == where.end() ? 0 : w->second.size();
    if (t.outcome == Outcome::kOk && present < t.keys.size()) {
      return Anomaly(absl::StrCat("txn ", t.id, " was acknowledged but is missing from ",
                                  t.keys.size() - present, " of its ", t.keys.size(),
                                  " keys: lost"));
    }
    if (present != 0 && present != t.keys.size()) {
      return Anomaly(absl::StrCat("txn ", t.id, " is in ", present, " of its ", t.keys.size(),
                                  " keys: not atomic"));
    }
    if (t.outcome == Outcome::kUnknown) ++(present ? s.unknown_applied : s.unknown_absent);
  }
  for (const ListRead& r : reads) {
    ++s.reads;
    for (const auto& [key, seen] : r) {
      auto l = lists.find(key);
      const std::vector<uint64_t> empty;
      const std::vector<uint64_t>& final_list = l == lists.end() ? empty : l->second;
      if (seen.size() > final_list.size() ||
          !std::equal(seen.begin(), seen.end(), final_list.begin())) {
        return Anomaly(absl::StrCat("a read of ", key, " saw [", absl::StrJoin(seen, " "),
                                    "], not a prefix of the final [",
                                    absl::StrJoin(final_list, " "), "]"));
      }
      for (uint64_t id : seen) {
        const AppendTxn& t = *by_id.at(id);
        for (const std::string& other : t.keys) {
          auto o = r.find(other);
          if (o == r.end() || other == key) continue;
          if (std::find(o->second.begin(), o->second.end(), id) == o->second.end()) {
            return Anomaly(absl::StrCat("a read saw txn ", id, " in ", key, " but not in ", other,
                                        ", which it also wrote: a fractured read"));
          }
        }
      }
    }
  }
  // Serializable: each list orders the txns in it; together the orders must
  // have no cycle (Kahn's algorithm over the precedence graph).
  std::unordered_map<uint64_t, std::vector<uint64_t>> next;
  std::unordered_map<uint64_t, int> incoming;
  for (const auto& [key, list] : lists) {
    for (size_t pos = 0; pos < list.size(); ++pos) {
      incoming.emplace(list[pos], 0);
      if (pos == 0) continue;
      next[list[pos - 1]].push_back(list[pos]);
      ++incoming[list[pos]];
      ++s.order_edges;
    }
  }
  std::deque<uint64_t> ready;
  for (const auto& [id, n] : incoming)
    if (n == 0) ready.push_back(id);
  size_t ordered = 0;
  while (!ready.empty()) {
    uint64_t id = ready.front();
    ready.pop_front();
    ++ordered;
    for (uint64_t n : next[id])
      if (--incoming[n] == 0) ready.push_back(n);
  }
  if (ordered != incoming.size()) {
    std::vector<uint64_t> stuck;
    for (const auto& [id, n] : incoming)
      if (n > 0 && stuck.size() < 8) stuck.push_back(id);
    std::sort(stuck.begin(), stuck.end());
    return Anomaly(absl::StrCat("the lists order txns in a cycle (not serializable), among ",
                                absl::StrJoin(stuck, " ")));
  }
  if (summary) *summary = s;
  return absl::OkStatus();
}

}  // namespace bw::check
