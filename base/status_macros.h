// Early-return helpers for absl::Status / absl::StatusOr.
//
// Abseil 20220623 ships no public status_macros.h, so every layer shares these two.
// Header-only; no state.
#ifndef TA_BASE_STATUS_MACROS_H_
#define TA_BASE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define TA_STATUS_CONCAT_INNER_(a, b) a##b
#define TA_STATUS_CONCAT_(a, b) TA_STATUS_CONCAT_INNER_(a, b)

// RETURN_IF_ERROR(expr): evaluates `expr` (an absl::Status) and returns it if not OK.
#define RETURN_IF_ERROR(expr)                                                  \
  do {                                                                         \
    if (absl::Status ta_status_ = (expr); !ta_status_.ok()) return ta_status_; \
  } while (0)

// ASSIGN_OR_RETURN(lhs, expr): evaluates `expr` (an absl::StatusOr<T>); on error returns
// its status, otherwise moves the value into `lhs` (which may be a declaration).
#define ASSIGN_OR_RETURN(lhs, expr) \
  TA_ASSIGN_OR_RETURN_IMPL_(TA_STATUS_CONCAT_(ta_statusor_, __LINE__), lhs, expr)

#define TA_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr)     \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // TA_BASE_STATUS_MACROS_H_
