// The on-disk format: round-trips, key order, and bad bytes.
#include "storage/codec.h"

#include <catch2/catch.hpp>

#include <limits>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "base/error.h"
#include "tests/storage/test_util.h"

namespace ta::storage {
namespace {

using testing::FamilyIdFor;

const absl::Time kNow = absl::FromUnixMicros(1'800'000'000'123'456);

void RequireCorrupt(const absl::Status& status) {
  REQUIRE(status.code() == absl::StatusCode::kDataLoss);
  REQUIRE(ReasonOf(status) == "store_corrupt");
}

TEST_CASE("Codec: family record round-trips with microsecond times", "[storage][codec]") {
  FamilyRecord f = testing::MakeFamily(FamilyIdFor(7), "alice", kNow);
  f.generation = 42;
  f.rotated_at = kNow + absl::Microseconds(1);
  f.revoked = true;
  f.revoked_at = kNow + absl::Seconds(3);
  f.revoke_reason = "admin";
  f.revoked_by = "ops";
  std::string value = EncodeFamily(f, f.expires_at);
  absl::StatusOr<FamilyRecord> back = DecodeFamily(value);
  REQUIRE(back.ok());
  CHECK(back->family_id == f.family_id);
  CHECK(back->subject == "alice");
  CHECK(back->client_id == f.client_id);
  CHECK(back->audience == f.audience);
  CHECK(back->scope == f.scope);
  CHECK(back->metadata == f.metadata);
  CHECK(back->issued_by == f.issued_by);
  CHECK(back->created_at == f.created_at);
  CHECK(back->expires_at == f.expires_at);
  CHECK(back->generation == 42);
  CHECK(back->rotated_at == f.rotated_at);
  CHECK(back->revoked);
  CHECK(back->revoked_at == f.revoked_at);
  CHECK(back->revoke_reason == "admin");
  CHECK(back->revoked_by == "ops");
  CHECK(back->cnf_jkt.empty());  // a bearer session
  CHECK(back->cnf_x5t_s256.empty());
  absl::StatusOr<ValueHeader> header = DecodeValueHeader(value);
  REQUIRE(header.ok());
  CHECK(header->version == kValueFormatVersion);
  CHECK(header->drop_after_micros == static_cast<uint64_t>(absl::ToUnixMicros(f.expires_at)));
}

TEST_CASE("Codec: a bound family keeps its confirmation", "[storage][codec]") {
  FamilyRecord f = testing::MakeFamily(FamilyIdFor(8), "alice", kNow);
  f.cnf_jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
  absl::StatusOr<FamilyRecord> back = DecodeFamily(EncodeFamily(f, f.expires_at));
  REQUIRE(back.ok());
  CHECK(back->cnf_jkt == f.cnf_jkt);
  CHECK(back->cnf_x5t_s256.empty());
  f.cnf_jkt.clear();
  f.cnf_x5t_s256 = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2";
  back = DecodeFamily(EncodeFamily(f, f.expires_at));
  REQUIRE(back.ok());
  CHECK(back->cnf_jkt.empty());
  CHECK(back->cnf_x5t_s256 == f.cnf_x5t_s256);
}

TEST_CASE("Codec: refresh record round-trips with and without spent_at", "[storage][codec]") {
  RefreshRecord r = testing::MakeRefresh(FamilyIdFor(1), 9, kNow);
  for (bool spent : {false, true}) {
    if (spent) r.spent_at = kNow + absl::Minutes(5);
    absl::StatusOr<RefreshRecord> back = DecodeRefresh(EncodeRefresh(r, r.expires_at));
    REQUIRE(back.ok());
    CHECK(back->family_id == r.family_id);
    CHECK(back->generation == 9);
    CHECK(back->secret_hash == r.secret_hash);
    CHECK(back->scope == r.scope);
    CHECK(back->issued_at == r.issued_at);
    CHECK(back->expires_at == r.expires_at);
    CHECK(back->spent_at == r.spent_at);
  }
}

TEST_CASE("Codec: subject record keeps infinite times", "[storage][codec]") {
  SubjectRecord s;
  s.subject = "bob";
  s.not_before = kNow;
  s.reason = "compromised";
  s.revoked_by = "admin";
  s.updated_at = kNow;
  s.expires_at = kNow + absl::Hours(1);
  absl::StatusOr<SubjectRecord> back = DecodeSubject(EncodeSubject(s));
  REQUIRE(back.ok());
  CHECK(back->subject == "bob");
  CHECK(back->not_before == kNow);
  CHECK(back->block_until == absl::InfinitePast());
  CHECK(back->reason == "compromised");
  CHECK(back->revoked_by == "admin");
  CHECK(back->updated_at == kNow);
  CHECK(back->expires_at == s.expires_at);
  s.block_until = absl::InfiniteFuture();
  back = DecodeSubject(EncodeSubject(s));
  REQUIRE(back.ok());
  CHECK(back->block_until == absl::InfiniteFuture());
}

TEST_CASE("Codec: denylist, index and format-version values round-trip", "[storage][codec]") {
  absl::StatusOr<absl::Time> exp = DecodeDeniedJti(EncodeDeniedJti(kNow));
  REQUIRE(exp.ok());
  CHECK(*exp == kNow);
  absl::StatusOr<ValueHeader> header = DecodeValueHeader(EncodeSubjectFamilyEntry(kNow));
  REQUIRE(header.ok());
  CHECK(header->drop_after_micros == static_cast<uint64_t>(absl::ToUnixMicros(kNow)));
  absl::StatusOr<absl::Time> kept = DecodeProofJti(EncodeProofJti(kNow));
  REQUIRE(kept.ok());
  CHECK(*kept == kNow);
  header = DecodeValueHeader(EncodeProofJti(kNow));
  REQUIRE(header.ok());
  CHECK(header->drop_after_micros == static_cast<uint64_t>(absl::ToUnixMicros(kNow)));
  absl::StatusOr<uint32_t> version = DecodeFormatVersion(EncodeFormatVersion(7));
  REQUIRE(version.ok());
  CHECK(*version == 7);
}

TEST_CASE("Codec: drop-after clamps and compares", "[storage][codec]") {
  CHECK(DropAfterMicros(absl::InfiniteFuture()) == std::numeric_limits<uint64_t>::max());
  CHECK(DropAfterMicros(absl::InfinitePast()) == 0);
  CHECK(DropAfterMicros(absl::UnixEpoch() - absl::Seconds(1)) == 0);
  uint64_t drop = DropAfterMicros(kNow);
  CHECK(IsLive(drop, kNow));
  CHECK_FALSE(IsLive(drop, kNow + absl::Microseconds(1)));
  std::string value = EncodeDeniedJti(kNow);
  CHECK_FALSE(ValueExpired(value, drop));
  CHECK(ValueExpired(value, drop + 1));
  CHECK_FALSE(ValueExpired("garbage", drop + 1));  // undecodable: kept for readers to report
  CHECK_FALSE(ValueExpired(EncodeFormatVersion(1), std::numeric_limits<uint64_t>::max()));
}

TEST_CASE("Codec: refresh keys sort by family then numeric generation", "[storage][codec]") {
  std::string id = FamilyIdFor(3);
  CHECK(RefreshKey(id, 1) < RefreshKey(id, 2));
  CHECK(RefreshKey(id, 255) < RefreshKey(id, 256));
  CHECK(RefreshKey(id, 65535) < RefreshKey(id, 65536));
  CHECK(RefreshKey(id, (uint64_t{1} << 32) - 1) < RefreshKey(id, uint64_t{1} << 32));
  CHECK(RefreshKey(id, 0).size() == 24);
  std::string low(16, '\x00'), high(16, '\x00');
  high[15] = 1;
  CHECK(RefreshKey(low, std::numeric_limits<uint64_t>::max()) < RefreshKey(high, 0));
}

TEST_CASE("Codec: subject index sorts newest first and stays inside its subject",
          "[storage][codec]") {
  std::string id = FamilyIdFor(1);
  std::string newer = SubjectFamilyKey("alice", kNow + absl::Microseconds(1), id);
  std::string older = SubjectFamilyKey("alice", kNow, id);
  std::string ancient = SubjectFamilyKey("alice", absl::UnixEpoch() - absl::Hours(1), id);
  CHECK(newer < older);
  CHECK(older < ancient);
  std::string prefix = SubjectFamiliesPrefix("alice");
  CHECK(absl::string_view(newer).substr(0, prefix.size()) == prefix);
  // "alice" must not be a prefix of "alicex"'s entries, thanks to the length prefix.
  std::string other = SubjectFamilyKey("alicex", kNow, id);
  CHECK(absl::string_view(other).substr(0, prefix.size()) != prefix);
  absl::StatusOr<SubjectFamilyKeyParts> parts = DecodeSubjectFamilyKey(older);
  REQUIRE(parts.ok());
  CHECK(parts->subject == "alice");
  CHECK(parts->created_at == kNow);
  CHECK(parts->family_id == id);
  parts = DecodeSubjectFamilyKey(ancient);
  REQUIRE(parts.ok());
  CHECK(parts->created_at == absl::UnixEpoch() - absl::Hours(1));
}

TEST_CASE("Codec: distinct inputs give distinct keys", "[storage][codec]") {
  std::set<std::string> keys;
  for (uint64_t n = 0; n < 1000; ++n) keys.insert(FamilyKey(FamilyIdFor(n)));
  CHECK(keys.size() == 1000);
  CHECK(RefreshKey(FamilyIdFor(1), 1) != RefreshKey(FamilyIdFor(1), 2));
  CHECK(RefreshKey(FamilyIdFor(1), 1) != RefreshKey(FamilyIdFor(2), 1));
  CHECK(SubjectKey("ab") != SubjectKey("abc"));
  CHECK(SubjectFamilyKey("a", kNow, FamilyIdFor(1)) != SubjectFamilyKey("a", kNow, FamilyIdFor(2)));
  CHECK(SubjectFamilyKey("a", kNow, FamilyIdFor(1)) !=
        SubjectFamilyKey("a", kNow + absl::Microseconds(1), FamilyIdFor(1)));
  CHECK(DenylistKey("j1") != DenylistKey("j2"));
}

TEST_CASE("Codec: truncated values are corrupt, never a crash", "[storage][codec]") {
  std::string full = EncodeFamily(testing::MakeFamily(FamilyIdFor(1), "alice", kNow), kNow);
  for (size_t len = 0; len < full.size(); ++len) {
    absl::StatusOr<FamilyRecord> r = DecodeFamily(absl::string_view(full).substr(0, len));
    if (len < kValueHeaderSize) RequireCorrupt(r.status());
    // Past the header a cut protobuf may still parse (fields are optional); it must not crash.
  }
  RequireCorrupt(DecodeRefresh("").status());
  RequireCorrupt(DecodeSubject("\x01").status());
  RequireCorrupt(DecodeDeniedJti("\x01\x00\x00").status());
  RequireCorrupt(DecodeValueHeader(std::string(8, '\x01')).status());
}

TEST_CASE("Codec: unknown value version and garbage bodies are corrupt", "[storage][codec]") {
  std::string value = EncodeRefresh(testing::MakeRefresh(FamilyIdFor(1), 0, kNow), kNow);
  for (char version : {'\x00', '\x02', '\xff'}) {
    std::string bad = value;
    bad[0] = version;
    absl::Status s = DecodeRefresh(bad).status();
    RequireCorrupt(s);
    CHECK(absl::StrContains(s.message(), "version"));
  }
  std::string garbage = value.substr(0, kValueHeaderSize) + "\xff\xff\xff\xff\xff\xff";
  RequireCorrupt(DecodeFamily(garbage).status());
  RequireCorrupt(DecodeRefresh(garbage).status());
  RequireCorrupt(DecodeSubject(garbage).status());
  RequireCorrupt(DecodeDeniedJti(garbage).status());
  RequireCorrupt(DecodeFormatVersion(garbage).status());
}

TEST_CASE("Codec: malformed index keys and page tokens are rejected", "[storage][codec]") {
  RequireCorrupt(DecodeSubjectFamilyKey("").status());
  RequireCorrupt(DecodeSubjectFamilyKey("\x00\x05" "abc").status());
  std::string key = SubjectFamilyKey("alice", kNow, FamilyIdFor(1));
  RequireCorrupt(DecodeSubjectFamilyKey(key.substr(0, key.size() - 1)).status());
  RequireCorrupt(DecodeSubjectFamilyKey(key + "x").status());

  absl::StatusOr<std::string> suffix = DecodePageToken(EncodePageToken(kNow, FamilyIdFor(1)));
  REQUIRE(suffix.ok());
  CHECK(SubjectFamiliesPrefix("alice") + *suffix == key);
  for (absl::string_view bad : {"!!!", "AAAA", ""}) {
    absl::Status s = DecodePageToken(bad).status();
    CHECK(s.code() == absl::StatusCode::kInvalidArgument);
    CHECK(ReasonOf(s) == "invalid_argument:page_token");
  }
}

TEST_CASE("Codec: the column-family registry is stable", "[storage][codec]") {
  // Never renumber or rename: names are stored in every database.
  const char* expected[] = {"default",          "families", "refresh",     "denylist", "subjects",
                            "subject_families", "meta",     "revocations", "dpop_jtis"};
  REQUIRE(kColumnFamilies.size() == 9);
  for (size_t i = 0; i < kColumnFamilies.size(); ++i) {
    CHECK(static_cast<size_t>(kColumnFamilies[i].id) == i);
    CHECK(kColumnFamilies[i].name == expected[i]);
  }
  CHECK_FALSE(CfInfoOf(Cf::kMeta).expires);
  CHECK(CfInfoOf(Cf::kRevocations).expires);
  CHECK(CfInfoOf(Cf::kProofJtis).expires);
}

}  // namespace
}  // namespace ta::storage
