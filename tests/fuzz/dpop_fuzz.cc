// Fuzz target: DPoP proofs (server/token/dpop.h, RFC 9449 §4.3). The first byte picks what the
// rest is:
//   0  a whole proof, checked against a fixed request (size, shape, header, jwk, signature,
//      claims, ath and nonce);
//   1  a URL: NormalizeHtu must be idempotent (a normalised URL normalises to itself), or
//      the replay key of one URL could differ between two spellings;
//   2  a payload JSON behind a valid header and signature by a fixed key, so the claim
//      checks run as only a key holder could reach them;
//   3  a protected header JSON, signed by the fixed key: header and jwk parsing.
// Nothing may crash; an accepted proof must carry its thumbprint and a normalised htu.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "token/base64url.h"
#include "token/dpop.h"
#include "token/jws.h"
#include "token/key.h"

namespace {

using namespace ta::token;  // NOLINT: a fuzz target

constexpr char kUrl[] = "https://as.example.com/oauth2/token";
const absl::Time kNow = absl::FromUnixSeconds(1800000000);

struct Env {
  std::unique_ptr<Key> key = Key::Generate(Algorithm::kES256).value();
  std::string header;  // a valid proof header naming `key`
  Env() {
    std::string jwk = "{";
    for (const JwkMember& m : key->PublicJwkMembers()) {
      absl::StrAppend(&jwk, jwk.size() > 1 ? "," : "", "\"", m.first, "\":\"", m.second, "\"");
    }
    header = absl::StrCat("{\"typ\":\"dpop+jwt\",\"alg\":\"ES256\",\"jwk\":", jwk, "}}");
  }
};

void Check(absl::string_view proof, bool with_token) {
  DpopRequest request;
  request.proof = proof;
  request.method = "POST";
  request.url = kUrl;
  if (with_token) {
    request.access_token = "an.access.token";
    request.nonce = "n";
  }
  absl::StatusOr<DpopProof> p = VerifyDpopProof(request, DpopPolicy(), kNow);
  if (p.ok() && (p->jkt.empty() || p->htu != kUrl || p->replay_key.size() != 32)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Env* env = new Env();  // NOLINT: one for the whole run
  if (size == 0) return 0;
  const absl::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      Check(in, false);
      Check(in, true);
      break;
    case 1: {
      absl::StatusOr<std::string> once = NormalizeHtu(in);
      if (once.ok()) {
        absl::StatusOr<std::string> twice = NormalizeHtu(*once);
        if (!twice.ok() || *twice != *once) std::abort();
      }
      break;
    }
    case 2: {
      absl::StatusOr<std::string> proof = SignCompactJws(env->header, in, *env->key);
      if (proof.ok()) {
        Check(*proof, false);
        Check(*proof, true);
      }
      break;
    }
    case 3: {
      absl::StatusOr<std::string> proof = SignCompactJws(
          in, absl::StrCat("{\"jti\":\"j\",\"htm\":\"POST\",\"htu\":\"", kUrl, "\",\"iat\":1800000000}"),
          *env->key);
      if (proof.ok()) Check(*proof, false);
      break;
    }
  }
  return 0;
}
