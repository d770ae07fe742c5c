// Helpers shared by the token tests: a private temp dir per test, a key ring built
// around a key the test also holds (so it can sign arbitrary, even hostile, payloads
// with the ring's own key), and claim/reason shorthands.
#ifndef TA_TESTS_TOKEN_TEST_UTIL_H_
#define TA_TESTS_TOKEN_TEST_UTIL_H_

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/error.h"
#include "server/token/key_ring.h"
#include "tests/support/temp_dir.h"
#include "token/base64url.h"
#include "token/jws.h"
#include "token/jwt.h"
#include "token/key.h"

namespace ta::token::testing {

using TempDir = ::ta::testing::TempDir;

inline int ModeOf(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 0777) : -1;
}

inline void WriteFile(const std::string& path, const std::string& contents, int mode = 0600) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
  ::chmod(path.c_str(), static_cast<mode_t>(mode));
}

inline constexpr char kIssuer[] = "https://issuer.example";
inline constexpr char kAudience[] = "api://orders";

inline JwtClaims MakeClaims(absl::Time now, absl::Duration ttl = absl::Minutes(5)) {
  JwtClaims c;
  c.iss = kIssuer;
  c.sub = "user-42";
  c.aud = {kAudience};
  c.iat = now;
  c.nbf = now;
  c.exp = now + ttl;
  c.jti = "jti-0001";
  c.client_id = "client-a";
  c.scope = "orders:read";
  c.sid = "family-1";
  return c;
}

inline VerifyPolicy MakePolicy() {
  VerifyPolicy p;
  p.issuer = kIssuer;
  p.audience = kAudience;
  return p;
}

// A ring whose only key is `key` (listed in keyring.json), with a fake clock.
struct RingFixture {
  explicit RingFixture(Algorithm alg = Algorithm::kES256) {
    key = std::move(Key::Generate(alg)).value();
    const std::string file = alg == Algorithm::kHS256 ? "k.hs256" : "k.pem";
    WriteFile(dir.Sub(file), key->PrivateFileContents().value());
    WriteFile(dir.Sub("keyring.json"),
              absl::StrCat(R"({"version":1,"keys":[{"file":")", file, R"(","alg":")",
                           AlgorithmName(alg), R"(","active":true}]})"));
    KeyRingOptions options;
    options.key_dir = dir.path();
    options.clock = &clock;
    options.allow_hs256 = true;
    ring = std::move(KeyRing::Open(options)).value();
  }

  // A token with `header_json` and `payload`, signed by the ring's key.
  std::string SignRaw(const std::string& header_json, const std::string& payload) const {
    return SignCompactJws(header_json, payload, *key).value();
  }
  std::string Header(absl::string_view typ = "at+jwt") const {
    return EncodeJwsHeader(key->alg(), key->kid(), typ);
  }
  std::string Payload() const { return EncodeClaims(MakeClaims(clock.Now())).value(); }

  TempDir dir;
  FakeClock clock;
  std::unique_ptr<Key> key;
  std::unique_ptr<KeyRing> ring;
};

inline std::string ReasonOfVerify(const KeyRing& ring, absl::string_view token,
                                  const VerifyPolicy& policy = MakePolicy()) {
  absl::StatusOr<VerifiedJwt> v = ring.Verify(token, policy);
  return v.ok() ? std::string("ok") : ta::ReasonOf(v.status());
}

inline constexpr Algorithm kAllAlgorithms[] = {
    Algorithm::kES256, Algorithm::kEdDSA, Algorithm::kRS256, Algorithm::kPS256, Algorithm::kHS256};

}  // namespace ta::token::testing

#endif  // TA_TESTS_TOKEN_TEST_UTIL_H_
