// Sender-constrained tokens (DESIGN §13, binding.h): whether what a client presented proves
// it holds the key (or certificate) a session or token is bound to. The one place these rules
// live: the server's IssueTokens and RefreshTokens (server/core/binding.cc), its Introspect and
// the client's local verifier (both through DecideAccessToken, access_decision.h) call it.
//
//   - a DPoP proof is verified by VerifyDpopProof (every check of RFC 9449 §4.3 but the
//     replay check, which is the caller's: its replay cache records the returned proof's
//     replay_key), with the access token's hash (ath) on the resource side and the server's
//     nonce when it demands one;
//   - its key's RFC 7638 thumbprint must be the binding's jkt, a certificate thumbprint must
//     be its x5t#S256; the other kind of proof, or another key, is proof_key_mismatch;
//   - nothing presented is proof_required.
// Thread-safety: pure functions.
#ifndef TA_TOKEN_PROOF_CHECK_H_
#define TA_TOKEN_PROOF_CHECK_H_

#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "token/binding.h"
#include "token/dpop.h"

namespace ta::token {

namespace reason {
// A bound session or token, and no proof (UNAUTHENTICATED).
inline constexpr absl::string_view kProofRequired = "proof_required";
// A proof, valid, but by another key or certificate than the binding's (UNAUTHENTICATED).
inline constexpr absl::string_view kProofKeyMismatch = "proof_key_mismatch";
}  // namespace reason

// The length of an RFC 8705 x5t#S256: a SHA-256 in unpadded base64url.
inline constexpr size_t kCertificateThumbprintChars = 43;

// Whether `thumbprint` is 43 base64url characters that decode to 32 bytes.
bool IsCertificateThumbprint(absl::string_view thumbprint);

// The shape of a request's proof, before any cryptography: INVALID_ARGUMENT
// "invalid_argument:proof" when both a DPoP proof and a certificate thumbprint are set, a DPoP
// proof lacks its method or URL, or the method (> 32 bytes) or URL (> kMaxDpopUrlBytes) is
// too long; "invalid_argument:certificate_thumbprint" for one that is not 43 base64url
// characters. OK for an empty proof.
absl::Status CheckPresentedProof(const PresentedProof& proof);

// How a presented DPoP proof is checked beyond its binding.
struct ProofContext {
  DpopPolicy policy;
  // Resource side (RFC 9449 §7): the proof's ath must be this token's hash.
  std::optional<absl::string_view> access_token;
  // Server nonces (RFC 9449 §8): the proof's nonce must be one of these.
  std::optional<absl::string_view> nonce;
  std::optional<absl::string_view> previous_nonce;
};

// What a proof presented at IssueTokens binds the new session to. A DPoP proof is verified
// (replay excepted: the returned proof's replay_key is for the caller's cache); a certificate
// thumbprint is checked for syntax. INVALID_ARGUMENT "invalid_argument:proof" when both are
// set, or a DPoP proof without its method and URL; "invalid_argument:certificate_thumbprint"
// for a thumbprint that is not 43 base64url characters; the dpop_* reasons of dpop.h.
// `proof` must not be empty().
struct Binding {
  Confirmation cnf;
  std::optional<DpopProof> dpop;  // set for a DPoP proof
};
absl::StatusOr<Binding> BindingOf(const PresentedProof& proof, const ProofContext& context,
                                  absl::Time now);

// Checks `proof` against the binding `cnf` (not empty). Returns the verified DPoP proof for
// the caller's replay cache, or nullopt for a matching certificate. Errors (UNAUTHENTICATED):
// proof_required, proof_key_mismatch, the dpop_* reasons of dpop.h; INVALID_ARGUMENT as
// BindingOf for a malformed request.
absl::StatusOr<std::optional<DpopProof>> CheckBoundProof(const Confirmation& cnf,
                                                         const PresentedProof& proof,
                                                         const ProofContext& context,
                                                         absl::Time now);

}  // namespace ta::token

#endif  // TA_TOKEN_PROOF_CHECK_H_
