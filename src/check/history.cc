#include "check/history.h"

#include <cstdio>
#include <utility>

#include "core/assert.h"

namespace bw::check {

size_t History::Invoke(uint64_t client, OpKind kind, std::string key, std::string value,
                       std::string expected, int64_t invoke_us) {
  BW_ASSERT_LT(invoke_us, kNeverCompletedUs);
  Operation op;
  op.client = client;
  op.kind = kind;
  op.key = std::move(key);
  op.value = std::move(value);
  op.expected = std::move(expected);
  op.invoke_us = invoke_us;
  ops_.push_back(std::move(op));
  return ops_.size() - 1;
}

void History::Complete(size_t id, int64_t complete_us, Outcome outcome, std::string result,
                       bool found, bool cas_ok) {
  BW_ASSERT_LT(id, ops_.size());
  Operation& op = ops_[id];
  BW_ASSERT_MSG(op.complete_us == kNeverCompletedUs, "operation completed twice: " + Describe(id));
  BW_ASSERT_LE(op.invoke_us, complete_us);
  BW_ASSERT_LT(complete_us, kNeverCompletedUs);
  op.complete_us = complete_us;
  op.outcome = outcome;
  op.result = std::move(result);
  op.found = found;
  op.cas_ok = cas_ok;
}

std::string History::Describe(size_t id) const {
  BW_ASSERT_LT(id, ops_.size());
  const Operation& op = ops_[id];
  const bool ok = op.outcome == Outcome::kOk;
  std::string out = "#" + std::to_string(id) + " client " + std::to_string(op.client) + " ";
  out += OpKindName(op.kind);
  out += " " + QuoteValue(op.key);
  switch (op.kind) {
    case OpKind::kRead:
      if (ok) out += " -> " + (op.found ? QuoteValue(op.result) : std::string("not found"));
      break;
    case OpKind::kWrite:
      out += " = " + QuoteValue(op.value);
      break;
    case OpKind::kCas:
      out += " " + QuoteValue(op.expected) + " -> " + QuoteValue(op.value);
      if (ok) out += op.cas_ok ? " applied" : " not applied";
      break;
  }
  out += " [" + std::to_string(op.invoke_us) + time_unit_ + ", ";
  out += op.complete_us == kNeverCompletedUs ? std::string("never")
                                             : std::to_string(op.complete_us) + time_unit_;
  out += "] ";
  out += OutcomeName(op.outcome);
  return out;
}

std::string_view OpKindName(OpKind kind) {
  switch (kind) {
    case OpKind::kRead:
      return "read";
    case OpKind::kWrite:
      return "write";
    case OpKind::kCas:
      return "cas";
  }
  return "?";
}

std::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kFailed:
      return "failed";
    case Outcome::kUnknown:
      return "unknown";
  }
  return "?";
}

std::string QuoteValue(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
          char hex[5];
          std::snprintf(hex, sizeof(hex), "\\x%02x", static_cast<unsigned char>(c));
          out += hex;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

}  // namespace bw::check
