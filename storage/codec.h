// The on-disk format of the token store, in one place (STYLE practice 2).
//
// - The column-family registry: an enum plus one table. NEVER renumber, reorder or rename an
//   entry: names are stored in the database, and ids index per-family handles.
// - Keys: fixed-width big-endian wherever the data allows, so byte order is numeric order.
//     families          family_id (16 bytes)
//     refresh           family_id ‖ u64 BE generation
//     denylist          jti bytes
//     subjects          u16 BE len ‖ subject
//     subject_families  u16 BE len ‖ subject ‖ u64 BE ~created_at ‖ family_id  (newest first)
//     meta              ASCII names, e.g. "format_version"
//     dpop_jtis         the DPoP replay key (32 bytes, token/dpop.h)
// - Values: 1 format-version byte ‖ u64 BE drop-after (micros since the epoch; records are
//   dead once now > drop-after) ‖ protobuf bytes (storage/records.proto). The expiry
//   compaction filter reads only this 9-byte header.
//
// Decoders never crash on bad bytes: they return DATA_LOSS with reason "store_corrupt".
// Pure functions; thread-safe.
#ifndef TA_STORAGE_CODEC_H_
#define TA_STORAGE_CODEC_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/time_micros.h"
#include "storage/token_store.h"

namespace ta::storage {

// Format of the whole database, stored once in `meta` and checked at open. Bump when a
// change would be misread by an older binary (a new value layout, a changed key layout).
// 2: the revocation log (column family `revocations`, meta keys kRevocationSeqKey and
// kRevocationLogKey); a version-1 database is upgraded at open (its live revocations are
// written into the log once). 3: the DPoP replay cache (column family `dpop_jtis`, made at
// open) and the families' binding (FamilyRecordProto fields 18, 19); a version-2 database
// needs nothing but the new number, which keeps an older binary (that would not open the new
// column family) out with "store_format_too_new".
inline constexpr uint32_t kStoreFormatVersion = 3;
// First byte of every value.
inline constexpr uint8_t kValueFormatVersion = 1;
inline constexpr size_t kValueHeaderSize = 9;
inline constexpr size_t kFamilyIdSize = 16;
inline constexpr size_t kMaxSubjectSize = 256;
inline constexpr absl::string_view kFormatVersionKey = "format_version";
// The highest revocation-log sequence number ever assigned (u64 BE), so numbering continues
// after every entry has expired and been compacted away.
inline constexpr absl::string_view kRevocationSeqKey = "revocation_seq";
// The shared key ring (TokenStore::GetKeyRing): its version (u64 BE) and its document.
inline constexpr absl::string_view kKeyRingVersionKey = "keyring_version";
inline constexpr absl::string_view kKeyRingDocumentKey = "keyring_document";

// Column families. Values are indices into kColumnFamilies. Append only; never renumber.
enum class Cf : int {
  kDefault = 0,  // RocksDB's own; unused, but it always exists
  kFamilies = 1,
  kRefresh = 2,
  // jti -> exp: the O(1) lookup by jti (DESIGN §6). Holds the same facts as the kJti entries
  // of kRevocations, on purpose (issue 24): DenyJti writes both in one WriteBatch and the
  // expiry filter drops both at the same instant; tests/storage/conformance_denylist_test.cc
  // checks they match after a restart and after every purge.
  kDenylist = 3,
  kSubjects = 4,
  kSubjectFamilies = 5,
  kMeta = 6,
  // The revocation log (seq -> entry): the ordered feed for followers. Its kJti entries
  // repeat kDenylist's rows on purpose, written in the same batch (see kDenylist).
  kRevocations = 7,
  // The DPoP replay cache (TokenStore::RecordProofJti): replay key -> keep_until, dropped by
  // the expiry filter.
  kProofJtis = 8,
};

struct CfInfo {
  Cf id;
  absl::string_view name;  // stored in the database: never rename
  bool expires;            // records carry a drop-after the compaction filter honours
  bool point_lookups;      // read by exact key: worth a whole-key bloom filter
};

inline constexpr std::array<CfInfo, 9> kColumnFamilies = {{
    {Cf::kDefault, "default", false, false},
    {Cf::kFamilies, "families", true, true},
    {Cf::kRefresh, "refresh", true, true},
    {Cf::kDenylist, "denylist", true, true},
    {Cf::kSubjects, "subjects", true, true},
    {Cf::kSubjectFamilies, "subject_families", true, false},
    {Cf::kMeta, "meta", false, true},
    {Cf::kRevocations, "revocations", true, false},
    {Cf::kProofJtis, "dpop_jtis", true, true},
}};

inline constexpr const CfInfo& CfInfoOf(Cf cf) { return kColumnFamilies[static_cast<int>(cf)]; }

// ---- Times -----------------------------------------------------------------------------

// Microseconds since the epoch (base/time_micros.h): InfinitePast/InfiniteFuture map to
// INT64_MIN/INT64_MAX and back, so they round-trip exactly.
using ::ta::MicrosToTime;
using ::ta::TimeToMicros;

// The header's unsigned drop-after: times before the epoch clamp to 0, InfiniteFuture is
// UINT64_MAX (never dropped).
uint64_t DropAfterMicros(absl::Time t);
// True when a record with this drop-after is still visible at `now` (now <= drop-after).
bool IsLive(uint64_t drop_after_micros, absl::Time now);

// ---- Keys ------------------------------------------------------------------------------

std::string FamilyKey(absl::string_view family_id);
std::string RefreshKey(absl::string_view family_id, uint64_t generation);
std::string DenylistKey(absl::string_view jti);
std::string SubjectKey(absl::string_view subject);
// Prefix shared by every index entry of one subject.
std::string SubjectFamiliesPrefix(absl::string_view subject);
std::string SubjectFamilyKey(absl::string_view subject, absl::Time created_at,
                             absl::string_view family_id);

struct SubjectFamilyKeyParts {
  std::string subject;
  absl::Time created_at;
  std::string family_id;
};
absl::StatusOr<SubjectFamilyKeyParts> DecodeSubjectFamilyKey(absl::string_view key);

// ListFamilies page tokens: an opaque, URL-safe encoding of the position after the last
// returned entry. DecodePageToken returns the index-key suffix to seek past.
std::string EncodePageToken(absl::Time created_at, absl::string_view family_id);
absl::StatusOr<std::string> DecodePageToken(absl::string_view token);

// ---- Values ----------------------------------------------------------------------------

struct ValueHeader {
  uint8_t version = 0;
  uint64_t drop_after_micros = 0;
};
// Checks length and version byte.
absl::StatusOr<ValueHeader> DecodeValueHeader(absl::string_view value);
// For the compaction filter: true when `value` has a valid header whose drop-after is before
// now_micros. Undecodable values are kept (readers report them as corrupt).
bool ValueExpired(absl::string_view value, uint64_t now_micros);

std::string EncodeFamily(const FamilyRecord& record, absl::Time drop_after);
absl::StatusOr<FamilyRecord> DecodeFamily(absl::string_view value);

std::string EncodeRefresh(const RefreshRecord& record, absl::Time drop_after);
absl::StatusOr<RefreshRecord> DecodeRefresh(absl::string_view value);

// Denylist entries drop at the token's own expiry.
std::string EncodeDeniedJti(absl::Time expires_at);
absl::StatusOr<absl::Time> DecodeDeniedJti(absl::string_view value);

// DPoP replay-cache entries drop at their keep_until.
std::string EncodeProofJti(absl::Time keep_until);
absl::StatusOr<absl::Time> DecodeProofJti(absl::string_view value);

// Subject records drop at record.expires_at.
std::string EncodeSubject(const SubjectRecord& record);
absl::StatusOr<SubjectRecord> DecodeSubject(absl::string_view value);

std::string EncodeSubjectFamilyEntry(absl::Time drop_after);

// The format-version record's layout never changes (header byte 1, no drop-after), so any
// binary can read which format a database has, even one from the future.
std::string EncodeFormatVersion(uint32_t version);

// `revocations`: key = u64 BE sequence number (numeric order = key order); value = header
// (drop-after = live_until) ‖ RevocationEntryProto.
std::string RevocationKey(uint64_t seq);
absl::StatusOr<uint64_t> DecodeRevocationKey(absl::string_view key);
std::string EncodeRevocation(const RevocationEntry& entry);
absl::StatusOr<RevocationEntry> DecodeRevocation(absl::string_view key, absl::string_view value);
// meta kRevocationSeqKey.
std::string EncodeU64Value(uint64_t v);
absl::StatusOr<uint64_t> DecodeU64Value(absl::string_view value);
absl::StatusOr<uint32_t> DecodeFormatVersion(absl::string_view value);

}  // namespace ta::storage

#endif  // TA_STORAGE_CODEC_H_
