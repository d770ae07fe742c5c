// DPoP proofs (RFC 9449): the checks of §4.3 on one proof, as a pure function.
//
// A proof is a JWS whose protected header carries the client's public key ("jwk") and
// whose payload names the request it was made for ("htm", "htu"), when ("iat") and
// once ("jti"); with an access token it also carries the token's hash ("ath"). This
// file decides whether one proof is valid for one request; what it must be bound to
// (a family's key thumbprint) and whether its jti was seen before (the replay cache,
// shared by replicas through the store) are the caller's, from the returned DpopProof.
//
// Every check has its own machine-readable reason (below), all UNAUTHENTICATED except
// kDpopTooLarge (INVALID_ARGUMENT). Strict like our own tokens: the header may hold only
// "typ", "alg" and "jwk"; "alg" is an asymmetric algorithm we verify (never "none" nor
// HMAC); the "jwk" must be public (a private member anywhere in it refuses the proof,
// the defect of CVE-2026-54431); the URL comparison is after RFC 3986 §6.2.2 syntax- and
// §6.2.3 scheme-based normalisation (Boost.URL), without query and fragment (§4.3 step 9).
// Thread-safety: pure functions but for the key cache (DpopKeyCache, thread-safe).
#ifndef TA_TOKEN_DPOP_H_
#define TA_TOKEN_DPOP_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/sharded_cache.h"
#include "token/jwt.h"

namespace ta::token {

namespace reason {
inline constexpr absl::string_view kDpopTooLarge = "dpop_proof_too_large";  // INVALID_ARGUMENT
inline constexpr absl::string_view kDpopMalformed = "dpop_malformed";  // not a JWS, bad JSON
inline constexpr absl::string_view kDpopWrongTyp = "dpop_wrong_typ";   // typ != dpop+jwt
inline constexpr absl::string_view kDpopBadAlg = "dpop_bad_alg";       // none, HMAC, unknown
inline constexpr absl::string_view kDpopForbiddenHeader = "dpop_forbidden_header";
inline constexpr absl::string_view kDpopBadJwk = "dpop_bad_jwk";  // absent, unusable, wrong alg
inline constexpr absl::string_view kDpopPrivateKey = "dpop_private_key";  // jwk has d, p, k...
inline constexpr absl::string_view kDpopBadSignature = "dpop_bad_signature";
inline constexpr absl::string_view kDpopMissingClaim = "dpop_missing_claim";
inline constexpr absl::string_view kDpopHtmMismatch = "dpop_htm_mismatch";
inline constexpr absl::string_view kDpopHtuMismatch = "dpop_htu_mismatch";
inline constexpr absl::string_view kDpopIatOutOfWindow = "dpop_iat_out_of_window";
inline constexpr absl::string_view kDpopAthMismatch = "dpop_ath_mismatch";
inline constexpr absl::string_view kDpopNonceMismatch = "dpop_nonce_mismatch";  // use_dpop_nonce
// Used by the replay cache (the caller), listed here with the others.
inline constexpr absl::string_view kDpopReplayed = "dpop_replayed";
}  // namespace reason

// The largest proof accepted: an RSA-4096 jwk and signature fit with room to spare.
inline constexpr size_t kMaxDpopProofBytes = 8 * 1024;
// The longest jti and URL a proof may carry.
inline constexpr size_t kMaxDpopJtiBytes = 256;
inline constexpr size_t kMaxDpopUrlBytes = 2048;

// What a proof is checked against.
struct DpopRequest {
  absl::string_view proof;   // the DPoP header's value (compact JWS)
  absl::string_view method;  // the request's HTTP method, compared exactly ("POST")
  absl::string_view url;     // the request's absolute URL (query and fragment ignored)
  // With an access token, the proof must carry ath = BASE64URL(SHA-256(token)).
  std::optional<absl::string_view> access_token;
  // When the server demands a nonce (RFC 9449 §8), the proof's "nonce" must equal it, or
  // previous_nonce when that is set too (the nonce of the window just ended, so a client
  // that fetched one just before it changed is not refused).
  std::optional<absl::string_view> nonce;
  std::optional<absl::string_view> previous_nonce;
};

class Key;

// Proof keys already imported, by (alg, the header's jwk as JSON text): a client sends the
// same key with every proof, so importing it as an OpenSSL key and computing its RFC 7638
// thumbprint (~50 µs for ES256, more than the rest of a proof's checks but the signature)
// is done once per key, not per proof. Only keys that imported cleanly are kept; the key is
// the whole jwk text and alg, compared exactly, so a jwk that differs in any member (or the
// same jwk under another alg) is imported and checked afresh. What a hit skips is exactly
// Key::FromJwk: the header checks before it (private members first) and the signature
// after it run on every proof. Bounded by bytes (ShardedCache: a full shard is cleared).
// Thread-safe.
class DpopKeyCache {
 public:
  // About 4,096 keys of any accepted type.
  static constexpr size_t kDefaultBytes = 4096 * 2048;
  explicit DpopKeyCache(size_t capacity_bytes) : cache_(capacity_bytes) {}

  // The process-wide cache DpopPolicy uses by default.
  static DpopKeyCache* Default();

  // The key for (jwk_json, alg), imported by Key::FromJwk on a miss; FromJwk's error on
  // failure (never cached).
  absl::StatusOr<std::shared_ptr<const Key>> Import(absl::string_view jwk_json, Algorithm alg);

  // Bytes charged to the keys held now.
  size_t bytes() { return cache_.bytes(); }

 private:
  ShardedCache<Key> cache_;
};

struct DpopPolicy {
  // iat may be this old (the replay cache must keep a jti at least this long + max_future).
  absl::Duration max_age = absl::Minutes(5);
  // ...and this far ahead of our clock (client clocks run a little ahead).
  absl::Duration max_future = absl::Seconds(30);
  // Accepted algorithms; asymmetric only (HS256 here is ignored: a DPoP key is public).
  // kEdDSA covers both "EdDSA" and RFC 9864's "Ed25519".
  std::vector<Algorithm> algorithms = {Algorithm::kES256, Algorithm::kEdDSA, Algorithm::kRS256,
                                       Algorithm::kPS256};
  // Where imported proof keys are kept; null imports the jwk of every proof.
  DpopKeyCache* key_cache = DpopKeyCache::Default();
};

// A proof that passed every check of §4.3 but the replay check, and what binds it.
struct DpopProof {
  std::string jkt;         // RFC 7638 thumbprint of the header's jwk (cnf.jkt)
  std::string jti;
  std::string htu;         // normalised
  absl::Time iat;
  // SHA-256 over the normalised (jti, htu), length-prefixed: the replay cache's key, so
  // two spellings of one URL are one entry (a key built from raw values would let a
  // replay through under the other spelling).
  std::string replay_key;
};

// Runs RFC 9449 §4.3 steps 2–12 on `request.proof` at `now`.
absl::StatusOr<DpopProof> VerifyDpopProof(const DpopRequest& request, const DpopPolicy& policy,
                                          absl::Time now);

// An absolute http(s) URL in the form htu comparisons use: RFC 3986 §6.2.2 normalisation
// (scheme and host in lower case, percent-encodings in upper case and decoded where
// unreserved, dot segments removed), §6.2.3 (the scheme's default port dropped, an empty
// path becomes "/"), query and fragment removed. INVALID_ARGUMENT for anything else.
absl::StatusOr<std::string> NormalizeHtu(absl::string_view url);

// BASE64URL(SHA-256(access_token)): the "ath" a proof for that token carries.
std::string AccessTokenHash(absl::string_view access_token);

}  // namespace ta::token

#endif  // TA_TOKEN_DPOP_H_
