#include "storage/codec.h"

#include <limits>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "storage/records.pb.h"

namespace ta::storage {
namespace {

namespace pb = ::tokenauthority::storage;

constexpr size_t kU64Size = 8;
constexpr size_t kPageTokenSize = kU64Size + kFamilyIdSize;

absl::Status Corrupt(absl::string_view what) {
  return ta::Error(absl::StatusCode::kDataLoss, "store_corrupt",
                   absl::StrCat("token store: corrupt ", what));
}

// Big-endian so that byte order is numeric order. Callers guarantee the input is long enough.
void AppendU64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

uint64_t LoadU64(absl::string_view bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < kU64Size; ++i) v = (v << 8) | static_cast<uint8_t>(bytes[i]);
  return v;
}

uint16_t LoadU16(absl::string_view bytes) {
  return static_cast<uint16_t>((static_cast<uint8_t>(bytes[0]) << 8) |
                               static_cast<uint8_t>(bytes[1]));
}

// Subjects are at most kMaxSubjectSize bytes (checked by the store), so u16 always fits.
void AppendLengthPrefixed(std::string* out, absl::string_view s) {
  out->push_back(static_cast<char>(s.size() >> 8));
  out->push_back(static_cast<char>(s.size() & 0xff));
  out->append(s.data(), s.size());
}

// Signed micros to an unsigned value with the same order (flip the sign bit), then invert so
// that newer times sort first.
uint64_t NewestFirst(absl::Time t) {
  return ~(static_cast<uint64_t>(TimeToMicros(t)) ^ (uint64_t{1} << 63));
}
absl::Time FromNewestFirst(uint64_t v) {
  return MicrosToTime(static_cast<int64_t>(~v ^ (uint64_t{1} << 63)));
}

std::string WithHeader(absl::Time drop_after, const google::protobuf::MessageLite& message) {
  std::string out;
  out.reserve(kValueHeaderSize + message.ByteSizeLong());
  out.push_back(static_cast<char>(kValueFormatVersion));
  AppendU64(&out, DropAfterMicros(drop_after));
  message.AppendToString(&out);
  return out;
}

// Validates the header and parses the protobuf body into `message`.
absl::Status ParseBody(absl::string_view value, absl::string_view what,
                       google::protobuf::MessageLite* message) {
  absl::StatusOr<ValueHeader> header = DecodeValueHeader(value);
  if (!header.ok()) return header.status();
  value.remove_prefix(kValueHeaderSize);
  if (!message->ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return Corrupt(absl::StrCat(what, " record (unparsable body)"));
  }
  return absl::OkStatus();
}

}  // namespace

uint64_t DropAfterMicros(absl::Time t) {
  if (t == absl::InfiniteFuture()) return std::numeric_limits<uint64_t>::max();
  int64_t micros = TimeToMicros(t);
  return micros < 0 ? 0 : static_cast<uint64_t>(micros);
}

bool IsLive(uint64_t drop_after_micros, absl::Time now) {
  return DropAfterMicros(now) <= drop_after_micros;
}

std::string FamilyKey(absl::string_view family_id) { return std::string(family_id); }

std::string RefreshKey(absl::string_view family_id, uint64_t generation) {
  std::string key(family_id);
  AppendU64(&key, generation);
  return key;
}

std::string DenylistKey(absl::string_view jti) { return std::string(jti); }

std::string SubjectKey(absl::string_view subject) {
  std::string key;
  AppendLengthPrefixed(&key, subject);
  return key;
}

std::string SubjectFamiliesPrefix(absl::string_view subject) { return SubjectKey(subject); }

std::string SubjectFamilyKey(absl::string_view subject, absl::Time created_at,
                             absl::string_view family_id) {
  std::string key = SubjectFamiliesPrefix(subject);
  AppendU64(&key, NewestFirst(created_at));
  key.append(family_id.data(), family_id.size());
  return key;
}

absl::StatusOr<SubjectFamilyKeyParts> DecodeSubjectFamilyKey(absl::string_view key) {
  if (key.size() < 2) return Corrupt("subject_families key (truncated)");
  size_t subject_size = LoadU16(key);
  if (key.size() != 2 + subject_size + kU64Size + kFamilyIdSize) {
    return Corrupt("subject_families key (bad length)");
  }
  SubjectFamilyKeyParts parts;
  parts.subject = std::string(key.substr(2, subject_size));
  parts.created_at = FromNewestFirst(LoadU64(key.substr(2 + subject_size)));
  parts.family_id = std::string(key.substr(2 + subject_size + kU64Size));
  return parts;
}

std::string EncodePageToken(absl::Time created_at, absl::string_view family_id) {
  std::string raw;
  AppendU64(&raw, NewestFirst(created_at));
  raw.append(family_id.data(), family_id.size());
  return absl::WebSafeBase64Escape(raw);
}

absl::StatusOr<std::string> DecodePageToken(absl::string_view token) {
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw) || raw.size() != kPageTokenSize) {
    return ta::InvalidField("page_token", "page_token was not issued by this store");
  }
  return raw;
}

absl::StatusOr<ValueHeader> DecodeValueHeader(absl::string_view value) {
  if (value.size() < kValueHeaderSize) return Corrupt("value (truncated header)");
  ValueHeader header;
  header.version = static_cast<uint8_t>(value[0]);
  if (header.version != kValueFormatVersion) {
    return Corrupt(absl::StrCat("value (unknown value format version ", header.version,
                                ", this binary knows ", kValueFormatVersion, ")"));
  }
  header.drop_after_micros = LoadU64(value.substr(1));
  return header;
}

bool ValueExpired(absl::string_view value, uint64_t now_micros) {
  if (value.size() < kValueHeaderSize || static_cast<uint8_t>(value[0]) != kValueFormatVersion) {
    return false;
  }
  return now_micros > LoadU64(value.substr(1));
}

std::string EncodeFamily(const FamilyRecord& r, absl::Time drop_after) {
  pb::FamilyRecordProto p;
  p.set_family_id(r.family_id);
  p.set_subject(r.subject);
  p.set_client_id(r.client_id);
  for (const std::string& aud : r.audience) p.add_audience(aud);
  p.set_scope(r.scope);
  p.mutable_metadata()->insert(r.metadata.begin(), r.metadata.end());
  p.set_issued_by(r.issued_by);
  p.set_extra_claims_json(r.extra_claims_json);
  p.set_created_at_micros(TimeToMicros(r.created_at));
  p.set_expires_at_micros(TimeToMicros(r.expires_at));
  p.set_generation(r.generation);
  p.set_rotated_at_micros(TimeToMicros(r.rotated_at));
  p.set_revoked(r.revoked);
  p.set_revoked_at_micros(TimeToMicros(r.revoked_at));
  p.set_revoke_reason(r.revoke_reason);
  p.set_revoked_by(r.revoked_by);
  if (r.access_live_until != absl::InfinitePast()) {
    p.set_access_live_until_micros(TimeToMicros(r.access_live_until));
  }
  p.set_cnf_jkt(r.cnf_jkt);
  p.set_cnf_x5t_s256(r.cnf_x5t_s256);
  return WithHeader(drop_after, p);
}

absl::StatusOr<FamilyRecord> DecodeFamily(absl::string_view value) {
  pb::FamilyRecordProto p;
  if (absl::Status s = ParseBody(value, "family", &p); !s.ok()) return s;
  FamilyRecord r;
  r.family_id = p.family_id();
  r.subject = p.subject();
  r.client_id = p.client_id();
  r.audience.assign(p.audience().begin(), p.audience().end());
  r.scope = p.scope();
  r.metadata.insert(p.metadata().begin(), p.metadata().end());
  r.issued_by = p.issued_by();
  r.extra_claims_json = p.extra_claims_json();
  r.created_at = MicrosToTime(p.created_at_micros());
  r.expires_at = MicrosToTime(p.expires_at_micros());
  r.generation = p.generation();
  r.rotated_at = MicrosToTime(p.rotated_at_micros());
  r.revoked = p.revoked();
  r.revoked_at = MicrosToTime(p.revoked_at_micros());
  r.revoke_reason = p.revoke_reason();
  r.revoked_by = p.revoked_by();
  r.access_live_until = p.access_live_until_micros() == 0
                            ? absl::InfinitePast()
                            : MicrosToTime(p.access_live_until_micros());
  r.cnf_jkt = p.cnf_jkt();
  r.cnf_x5t_s256 = p.cnf_x5t_s256();
  return r;
}

std::string EncodeRefresh(const RefreshRecord& r, absl::Time drop_after) {
  pb::RefreshRecordProto p;
  p.set_family_id(r.family_id);
  p.set_generation(r.generation);
  p.set_secret_hash(r.secret_hash);
  p.set_scope(r.scope);
  p.set_issued_at_micros(TimeToMicros(r.issued_at));
  p.set_expires_at_micros(TimeToMicros(r.expires_at));
  if (r.spent_at.has_value()) {
    p.set_has_spent_at(true);
    p.set_spent_at_micros(TimeToMicros(*r.spent_at));
  }
  return WithHeader(drop_after, p);
}

absl::StatusOr<RefreshRecord> DecodeRefresh(absl::string_view value) {
  pb::RefreshRecordProto p;
  if (absl::Status s = ParseBody(value, "refresh", &p); !s.ok()) return s;
  RefreshRecord r;
  r.family_id = p.family_id();
  r.generation = p.generation();
  r.secret_hash = p.secret_hash();
  r.scope = p.scope();
  r.issued_at = MicrosToTime(p.issued_at_micros());
  r.expires_at = MicrosToTime(p.expires_at_micros());
  if (p.has_spent_at()) r.spent_at = MicrosToTime(p.spent_at_micros());
  return r;
}

std::string EncodeDeniedJti(absl::Time expires_at) {
  pb::DeniedJtiProto p;
  p.set_expires_at_micros(TimeToMicros(expires_at));
  return WithHeader(expires_at, p);
}

absl::StatusOr<absl::Time> DecodeDeniedJti(absl::string_view value) {
  pb::DeniedJtiProto p;
  if (absl::Status s = ParseBody(value, "denylist", &p); !s.ok()) return s;
  return MicrosToTime(p.expires_at_micros());
}

std::string EncodeProofJti(absl::Time keep_until) {
  pb::ProofJtiProto p;
  p.set_keep_until_micros(TimeToMicros(keep_until));
  return WithHeader(keep_until, p);
}

absl::StatusOr<absl::Time> DecodeProofJti(absl::string_view value) {
  pb::ProofJtiProto p;
  if (absl::Status s = ParseBody(value, "dpop_jtis", &p); !s.ok()) return s;
  return MicrosToTime(p.keep_until_micros());
}

std::string EncodeSubject(const SubjectRecord& r) {
  pb::SubjectRecordProto p;
  p.set_subject(r.subject);
  p.set_not_before_micros(TimeToMicros(r.not_before));
  p.set_block_until_micros(TimeToMicros(r.block_until));
  p.set_reason(r.reason);
  p.set_revoked_by(r.revoked_by);
  p.set_updated_at_micros(TimeToMicros(r.updated_at));
  p.set_expires_at_micros(TimeToMicros(r.expires_at));
  return WithHeader(r.expires_at, p);
}

absl::StatusOr<SubjectRecord> DecodeSubject(absl::string_view value) {
  pb::SubjectRecordProto p;
  if (absl::Status s = ParseBody(value, "subject", &p); !s.ok()) return s;
  SubjectRecord r;
  r.subject = p.subject();
  r.not_before = MicrosToTime(p.not_before_micros());
  r.block_until = MicrosToTime(p.block_until_micros());
  r.reason = p.reason();
  r.revoked_by = p.revoked_by();
  r.updated_at = MicrosToTime(p.updated_at_micros());
  r.expires_at = MicrosToTime(p.expires_at_micros());
  return r;
}

std::string EncodeSubjectFamilyEntry(absl::Time drop_after) {
  return WithHeader(drop_after, pb::SubjectFamilyEntryProto());
}

std::string EncodeFormatVersion(uint32_t version) {
  pb::FormatVersionProto p;
  p.set_format_version(version);
  return WithHeader(absl::InfiniteFuture(), p);
}

absl::StatusOr<uint32_t> DecodeFormatVersion(absl::string_view value) {
  pb::FormatVersionProto p;
  if (absl::Status s = ParseBody(value, "format-version", &p); !s.ok()) return s;
  if (p.format_version() == 0) return Corrupt("format-version record (version 0)");
  return p.format_version();
}

std::string RevocationKey(uint64_t seq) {
  std::string key;
  AppendU64(&key, seq);
  return key;
}

absl::StatusOr<uint64_t> DecodeRevocationKey(absl::string_view key) {
  if (key.size() != kU64Size) return Corrupt("revocations key (bad length)");
  return LoadU64(key);
}

std::string EncodeRevocation(const RevocationEntry& e) {
  pb::RevocationEntryProto p;
  p.set_kind(static_cast<uint32_t>(e.kind));
  p.set_id(e.id);
  p.set_revoked_at_micros(TimeToMicros(e.revoked_at));
  p.set_live_until_micros(TimeToMicros(e.live_until));
  return WithHeader(e.live_until, p);
}

absl::StatusOr<RevocationEntry> DecodeRevocation(absl::string_view key, absl::string_view value) {
  pb::RevocationEntryProto p;
  if (absl::Status s = ParseBody(value, "revocation", &p); !s.ok()) return s;
  absl::StatusOr<uint64_t> seq = DecodeRevocationKey(key);
  if (!seq.ok()) return seq.status();
  if (p.kind() < 1 || p.kind() > 3 || p.id().empty()) return Corrupt("revocation record (kind/id)");
  RevocationEntry e;
  e.seq = *seq;
  e.kind = static_cast<RevocationEntry::Kind>(p.kind());
  e.id = p.id();
  e.revoked_at = MicrosToTime(p.revoked_at_micros());
  e.live_until = MicrosToTime(p.live_until_micros());
  return e;
}

std::string EncodeU64Value(uint64_t v) {
  std::string out;
  AppendU64(&out, v);
  return out;
}

absl::StatusOr<uint64_t> DecodeU64Value(absl::string_view value) {
  if (value.size() != kU64Size) return Corrupt("meta counter (bad length)");
  return LoadU64(value);
}

}  // namespace ta::storage
