#include "storage/postgres/rows.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "base/status_macros.h"

namespace ta::storage::pg {
namespace {

constexpr char kPageTokenVersion = 'p';
constexpr size_t kPageTokenSize = 1 + 8 + 16;

absl::Status Corrupt(absl::string_view what) {
  return ta::Error(absl::StatusCode::kDataLoss, "store_corrupt",
                   absl::StrCat("token store: corrupt ", what));
}

void AppendU32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

bool ConsumeU32(absl::string_view* in, uint32_t* v) {
  if (in->size() < 4) return false;
  *v = 0;
  for (int i = 0; i < 4; ++i) *v = (*v << 8) | static_cast<uint8_t>((*in)[i]);
  in->remove_prefix(4);
  return true;
}

std::string Str(const Rows& rows, int row, int col) { return std::string(rows.Bytes(row, col)); }

}  // namespace

std::string EncodeStringList(const std::vector<std::string>& strings) {
  std::string out;
  AppendU32(&out, static_cast<uint32_t>(strings.size()));
  for (const std::string& s : strings) {
    AppendU32(&out, static_cast<uint32_t>(s.size()));
    out += s;
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> DecodeStringList(absl::string_view bytes) {
  uint32_t count = 0;
  if (!ConsumeU32(&bytes, &count) || count > bytes.size() / 4) return Corrupt("string list");
  std::vector<std::string> out;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t size = 0;
    if (!ConsumeU32(&bytes, &size) || size > bytes.size()) return Corrupt("string list");
    out.emplace_back(bytes.substr(0, size));
    bytes.remove_prefix(size);
  }
  if (!bytes.empty()) return Corrupt("string list (trailing bytes)");
  return out;
}

void AppendFamily(Params& p, const FamilyRecord& f, absl::Time drop_after) {
  std::vector<std::string> metadata;
  for (const auto& [key, value] : f.metadata) {
    metadata.push_back(key);
    metadata.push_back(value);
  }
  p.Bytes(f.family_id).Bytes(f.subject).Bytes(f.client_id).Bytes(EncodeStringList(f.audience));
  p.Bytes(f.scope).Bytes(EncodeStringList(metadata)).Bytes(f.issued_by).Bytes(f.extra_claims_json);
  p.Time(f.created_at).Time(f.expires_at).Int64(static_cast<int64_t>(f.generation));
  p.Time(f.rotated_at).Bool(f.revoked).Time(f.revoked_at).Bytes(f.revoke_reason);
  p.Bytes(f.revoked_by).Time(drop_after).Time(f.access_live_until);
  p.Bytes(f.cnf_jkt).Bytes(f.cnf_x5t_s256);
}

absl::StatusOr<WithDropAfter<FamilyRecord>> FamilyAt(const Rows& rows, int row) {
  WithDropAfter<FamilyRecord> out;
  FamilyRecord& f = out.record;
  f.family_id = Str(rows, row, 0);
  f.subject = Str(rows, row, 1);
  f.client_id = Str(rows, row, 2);
  ASSIGN_OR_RETURN(f.audience, DecodeStringList(rows.Bytes(row, 3)));
  f.scope = Str(rows, row, 4);
  ASSIGN_OR_RETURN(std::vector<std::string> metadata, DecodeStringList(rows.Bytes(row, 5)));
  if (metadata.size() % 2 != 0) return Corrupt("family metadata");
  for (size_t i = 0; i < metadata.size(); i += 2) f.metadata[metadata[i]] = metadata[i + 1];
  f.issued_by = Str(rows, row, 6);
  f.extra_claims_json = Str(rows, row, 7);
  ASSIGN_OR_RETURN(f.created_at, rows.Time(row, 8));
  ASSIGN_OR_RETURN(f.expires_at, rows.Time(row, 9));
  ASSIGN_OR_RETURN(int64_t generation, rows.Int64(row, 10));
  f.generation = static_cast<uint64_t>(generation);
  ASSIGN_OR_RETURN(f.rotated_at, rows.Time(row, 11));
  ASSIGN_OR_RETURN(f.revoked, rows.Bool(row, 12));
  ASSIGN_OR_RETURN(f.revoked_at, rows.Time(row, 13));
  f.revoke_reason = Str(rows, row, 14);
  f.revoked_by = Str(rows, row, 15);
  ASSIGN_OR_RETURN(out.drop_after, rows.Time(row, 16));
  ASSIGN_OR_RETURN(f.access_live_until, rows.Time(row, 17));
  f.cnf_jkt = Str(rows, row, 18);
  f.cnf_x5t_s256 = Str(rows, row, 19);
  if (f.family_id.size() != 16) return Corrupt("family id");
  return out;
}

void AppendRefresh(Params& p, const RefreshRecord& r, absl::Time drop_after) {
  p.Bytes(r.family_id).Int64(static_cast<int64_t>(r.generation)).Bytes(r.secret_hash);
  p.Bytes(r.scope).Time(r.issued_at).Time(r.expires_at).Time(drop_after);
}

absl::StatusOr<WithDropAfter<RefreshRecord>> RefreshAt(const Rows& rows, int row) {
  WithDropAfter<RefreshRecord> out;
  RefreshRecord& r = out.record;
  r.family_id = Str(rows, row, 0);
  ASSIGN_OR_RETURN(int64_t generation, rows.Int64(row, 1));
  r.generation = static_cast<uint64_t>(generation);
  r.secret_hash = Str(rows, row, 2);
  r.scope = Str(rows, row, 3);
  ASSIGN_OR_RETURN(r.issued_at, rows.Time(row, 4));
  ASSIGN_OR_RETURN(r.expires_at, rows.Time(row, 5));
  if (!rows.IsNull(row, 6)) {
    ASSIGN_OR_RETURN(absl::Time spent_at, rows.Time(row, 6));
    r.spent_at = spent_at;
  }
  ASSIGN_OR_RETURN(out.drop_after, rows.Time(row, 7));
  return out;
}

absl::StatusOr<RevocationEntry> RevocationAt(const Rows& rows, int row) {
  RevocationEntry e;
  ASSIGN_OR_RETURN(int64_t seq, rows.Int64(row, 0));
  ASSIGN_OR_RETURN(int64_t kind, rows.Int64(row, 1));
  if (kind < 1 || kind > 3) return Corrupt("revocation kind");
  e.seq = static_cast<uint64_t>(seq);
  e.kind = static_cast<RevocationEntry::Kind>(kind);
  e.id = Str(rows, row, 2);
  ASSIGN_OR_RETURN(e.revoked_at, rows.Time(row, 3));
  ASSIGN_OR_RETURN(e.live_until, rows.Time(row, 4));
  return e;
}

absl::StatusOr<SubjectRecord> SubjectAt(const Rows& rows, int row) {
  SubjectRecord s;
  s.subject = Str(rows, row, 0);
  ASSIGN_OR_RETURN(s.not_before, rows.Time(row, 1));
  ASSIGN_OR_RETURN(s.block_until, rows.Time(row, 2));
  s.reason = Str(rows, row, 3);
  s.revoked_by = Str(rows, row, 4);
  ASSIGN_OR_RETURN(s.updated_at, rows.Time(row, 5));
  ASSIGN_OR_RETURN(s.expires_at, rows.Time(row, 6));
  return s;
}

std::string EncodePageToken(const PagePosition& position) {
  std::string raw(1, kPageTokenVersion);
  const uint64_t micros = static_cast<uint64_t>(TimeToMicros(position.created_at));
  for (int shift = 56; shift >= 0; shift -= 8) raw.push_back(static_cast<char>(micros >> shift));
  raw += position.family_id;
  return absl::WebSafeBase64Escape(raw);
}

absl::StatusOr<PagePosition> DecodePageToken(absl::string_view token) {
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw) || raw.size() != kPageTokenSize ||
      raw[0] != kPageTokenVersion) {
    return ta::InvalidField("page_token", "page_token was not issued by this store");
  }
  uint64_t micros = 0;
  for (int i = 1; i <= 8; ++i) micros = (micros << 8) | static_cast<uint8_t>(raw[i]);
  return PagePosition{MicrosToTime(static_cast<int64_t>(micros)), raw.substr(9)};
}

int64_t SubjectLockKey(absl::string_view subject) {
  uint64_t hash = 0xcbf29ce484222325ull;
  auto mix = [&hash](char c) {
    hash ^= static_cast<uint8_t>(c);
    hash *= 0x100000001b3ull;
  };
  for (char c : absl::string_view("s:")) mix(c);
  for (char c : subject) mix(c);
  return static_cast<int64_t>(hash);
}

}  // namespace ta::storage::pg
