// Fuzz target: the storage codec (storage/codec.h), i.e. whatever bytes a damaged or hostile
// database could hand back. The first byte picks the decoder; the rest is a stored value, an
// index key or a page token. Decoders never crash (corrupt input is DATA_LOSS), and what
// decodes survives a round trip: Decode(Encode(Decode(x))) == Decode(x). (Compared as records,
// not bytes: protobuf does not promise one byte order for map fields.)
#include <cstdint>
#include <cstdlib>
#include <string>

#include "google/protobuf/stubs/logging.h"
#include "storage/codec.h"

namespace {

using namespace ta::storage;  // NOLINT: a fuzz target

bool Same(const FamilyRecord& a, const FamilyRecord& b) {
  return a.family_id == b.family_id && a.subject == b.subject && a.client_id == b.client_id &&
         a.audience == b.audience && a.scope == b.scope && a.metadata == b.metadata &&
         a.issued_by == b.issued_by && a.extra_claims_json == b.extra_claims_json &&
         a.created_at == b.created_at && a.expires_at == b.expires_at &&
         a.generation == b.generation && a.rotated_at == b.rotated_at && a.revoked == b.revoked &&
         a.revoked_at == b.revoked_at && a.revoke_reason == b.revoke_reason &&
         a.revoked_by == b.revoked_by;
}
bool Same(const RefreshRecord& a, const RefreshRecord& b) {
  return a.family_id == b.family_id && a.generation == b.generation &&
         a.secret_hash == b.secret_hash && a.scope == b.scope && a.issued_at == b.issued_at &&
         a.expires_at == b.expires_at && a.spent_at == b.spent_at;
}
bool Same(const SubjectRecord& a, const SubjectRecord& b) {
  return a.subject == b.subject && a.not_before == b.not_before && a.block_until == b.block_until &&
         a.reason == b.reason && a.revoked_by == b.revoked_by && a.updated_at == b.updated_at &&
         a.expires_at == b.expires_at;
}
bool Same(absl::Time a, absl::Time b) { return a == b; }
bool Same(uint32_t a, uint32_t b) { return a == b; }

template <typename Record, typename Decode, typename Encode>
void Stable(absl::string_view in, Decode decode, Encode encode) {
  absl::StatusOr<Record> first = decode(in);
  if (!first.ok()) {
    if (first.status().code() != absl::StatusCode::kDataLoss) std::abort();
    return;
  }
  absl::StatusOr<Record> second = decode(encode(*first));
  if (!second.ok() || !Same(*first, *second)) std::abort();
}

absl::Time DropAfter(absl::string_view value) {
  absl::StatusOr<ValueHeader> h = DecodeValueHeader(value);
  return h.ok() ? MicrosToTime(static_cast<int64_t>(h->drop_after_micros)) : absl::UnixEpoch();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {  // invalid UTF-8 in a string field is logged, then refused
    google::protobuf::SetLogHandler(nullptr);
    return true;
  }();
  (void)quiet;
  if (size == 0) return 0;
  const absl::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  const absl::Time drop = DropAfter(in);
  switch (data[0] % 8) {
    case 0:
      Stable<FamilyRecord>(in, DecodeFamily,
                           [&](const FamilyRecord& r) { return EncodeFamily(r, drop); });
      break;
    case 1:
      Stable<RefreshRecord>(in, DecodeRefresh,
                            [&](const RefreshRecord& r) { return EncodeRefresh(r, drop); });
      break;
    case 2:
      Stable<SubjectRecord>(in, DecodeSubject, EncodeSubject);
      break;
    case 3:
      Stable<absl::Time>(in, DecodeDeniedJti, EncodeDeniedJti);
      break;
    case 4: {
      absl::StatusOr<SubjectFamilyKeyParts> k = DecodeSubjectFamilyKey(in);
      if (k.ok() && k->family_id.size() == kFamilyIdSize && k->subject.size() <= kMaxSubjectSize &&
          SubjectFamilyKey(k->subject, k->created_at, k->family_id) != in) {
        std::abort();  // a key that decodes is the one its parts encode to
      }
      break;
    }
    case 5:
      (void)DecodePageToken(in);
      break;
    case 6:
      Stable<uint32_t>(in, DecodeFormatVersion, EncodeFormatVersion);
      break;
    case 7: {
      const uint64_t now = in.size() >= 1 ? static_cast<uint8_t>(in[0]) * 1000003ULL : 0;
      (void)ValueExpired(in, now);
      (void)DecodeValueHeader(in);
      break;
    }
  }
  return 0;
}
