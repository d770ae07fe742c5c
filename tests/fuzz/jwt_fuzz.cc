// Fuzz target: JWS/JWT parsing and verification (token/ and the key ring). The first byte
// picks what the rest is:
//   0  a whole token, checked by a KeyRing (size, shape, header, kid, alg, signature, claims)
//      and by VerifyJws with a fixed key;
//   1  a protected header's JSON (ParseJwsHeader);
//   2  a payload JSON signed by our key, so claim decoding and checks run behind a good
//      signature (what only a key holder could send);
//   3  extra claims JSON (ValidateExtraClaims, EncodeClaims);
//   4  a JWK (Key::FromJwk for each algorithm).
// Nothing may crash; a verified token must carry the required claims.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "server/token/key_ring.h"
#include "token/base64url.h"
#include "token/jws.h"
#include "token/jwt.h"
#include "token/key.h"

namespace {

using namespace ta::token;  // NOLINT: a fuzz target

struct Env {
  std::unique_ptr<KeyRing> ring;
  std::unique_ptr<Key> key;
  std::string header;  // protected header naming `key`
  VerifyPolicy policy;

  Env() {
    char tmpl[] = "/tmp/ta-fuzz-jwt-XXXXXX";
    const std::string dir = mkdtemp(tmpl);
    KeyRingOptions o;
    o.key_dir = dir + "/keys";
    ring = std::move(KeyRing::Open(o).value());
    key = std::move(Key::Generate(Algorithm::kES256).value());
    header = EncodeJwsHeader(Algorithm::kES256, key->kid(), "at+jwt");
    policy.issuer = "token-authority";
    std::filesystem::remove_all(dir);  // the ring keeps its keys in memory
  }
};

void CheckVerified(const absl::StatusOr<VerifiedJwt>& v) {
  if (v.ok() && (v->claims.sub.empty() || v->claims.jti.empty() || v->claims.aud.empty())) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Env* env = new Env();
  if (size == 0) return 0;
  const std::string in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 5) {
    case 0: {
      CheckVerified(env->ring->Verify(in, env->policy));
      (void)VerifyJws(in, *env->key);
      break;
    }
    case 1:
      (void)ParseJwsHeader(Base64UrlEncode(in));
      break;
    case 2: {
      absl::StatusOr<std::string> token = SignCompactJws(env->header, in, *env->key);
      if (!token.ok()) std::abort();  // signing takes any bytes
      absl::StatusOr<std::string> payload = VerifyJws(*token, *env->key);
      if (!payload.ok() || *payload != in) std::abort();
      absl::StatusOr<JwtClaims> claims = DecodeClaims(*payload);
      if (claims.ok()) {
        (void)CheckClaims(*claims, env->policy, absl::Now());
        (void)EncodeClaims(*claims);
      }
      break;
    }
    case 3: {
      if (ValidateExtraClaims(in).ok()) {
        JwtClaims c;
        c.iss = "i";
        c.sub = "s";
        c.aud = {"a"};
        c.iat = absl::FromUnixSeconds(1700000000);
        c.exp = c.iat + absl::Minutes(5);
        c.jti = "j";
        c.client_id = "c";
        c.extra_json = in;
        absl::StatusOr<std::string> json = EncodeClaims(c);
        if (!json.ok()) std::abort();  // valid extra claims always encode
        if (!DecodeClaims(*json).ok()) std::abort();
      }
      break;
    }
    case 4:
      for (Algorithm alg : {Algorithm::kES256, Algorithm::kEdDSA, Algorithm::kRS256}) {
        (void)Key::FromJwk(in, alg);
      }
      break;
  }
  return 0;
}
