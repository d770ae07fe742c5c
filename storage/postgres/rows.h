// Records <-> rows of the PostgreSQL store (column orders as in schema.cc), the string-list
// encoding of audience and metadata, page tokens, and subject lock keys.
//
// String list (bytea): u32 BE count, then per string u32 BE length ‖ bytes. Decoders never
// crash on bad bytes: they return DATA_LOSS "store_corrupt".
//
// Pure functions; thread-safe.
#ifndef TA_STORAGE_POSTGRES_ROWS_H_
#define TA_STORAGE_POSTGRES_ROWS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "storage/postgres/pg_conn.h"
#include "storage/token_store.h"

namespace ta::storage::pg {

inline constexpr int kFamilyColumns = 20;   // f.id ... f.access_live_until, f.cnf_*
inline constexpr int kRefreshColumns = 8;   // r.family_id ... r.drop_after

std::string EncodeStringList(const std::vector<std::string>& strings);
absl::StatusOr<std::vector<std::string>> DecodeStringList(absl::string_view bytes);

template <typename T>
struct WithDropAfter {
  T record;
  absl::Time drop_after;
};

// Appends the 20 parameters of kInsertFamily.
void AppendFamily(Params& params, const FamilyRecord& f, absl::Time drop_after);
// Reads the family columns starting at column 0 of `row`.
absl::StatusOr<WithDropAfter<FamilyRecord>> FamilyAt(const Rows& rows, int row);

// Appends the 7 parameters of kInsertRefresh.
void AppendRefresh(Params& params, const RefreshRecord& r, absl::Time drop_after);
absl::StatusOr<WithDropAfter<RefreshRecord>> RefreshAt(const Rows& rows, int row);

// The columns of kReadRevocations.
absl::StatusOr<RevocationEntry> RevocationAt(const Rows& rows, int row);

// The columns of kGetSubject.
absl::StatusOr<SubjectRecord> SubjectAt(const Rows& rows, int row);

// ListFamilies page tokens: opaque, URL-safe; name the last entry returned.
struct PagePosition {
  absl::Time created_at;
  std::string family_id;
};
std::string EncodePageToken(const PagePosition& position);
// INVALID_ARGUMENT "invalid_argument:page_token" for anything EncodePageToken did not make.
absl::StatusOr<PagePosition> DecodePageToken(absl::string_view token);

// The advisory-lock key of a subject: FNV-1a 64 over "s:" ‖ subject. Stable across
// processes, builds and replicas (unlike absl::Hash), as a shared lock key must be.
int64_t SubjectLockKey(absl::string_view subject);

}  // namespace ta::storage::pg

#endif  // TA_STORAGE_POSTGRES_ROWS_H_
