// Errors are values: absl::Status / absl::StatusOr<T>, with canonical codes
// that carry the retry meaning (see docs/errors.md).
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define BW_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::absl::Status bw_status_ = (expr);      \
    if (!bw_status_.ok()) return bw_status_; \
  } while (0)

#define BW_CONCAT_INNER_(a, b) a##b
#define BW_CONCAT_(a, b) BW_CONCAT_INNER_(a, b)
#define BW_ASSIGN_OR_RETURN(lhs, expr) \
  BW_ASSIGN_OR_RETURN_IMPL_(BW_CONCAT_(bw_sor_, __LINE__), lhs, expr)
#define BW_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
