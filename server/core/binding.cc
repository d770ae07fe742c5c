// Sender-constrained sessions (DESIGN §13; RFC 9449 DPoP, RFC 8705 certificate-bound): the
// binding at IssueTokens, the proof a bound family's RefreshTokens needs, the replay cache in
// the store and the optional server nonces. The checks themselves are the token library's
// (token/proof_check.h), shared with Introspect and the client's local verifier.
#include <algorithm>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "base/status_macros.h"
#include "server/core/authority.h"
#include "token/base64url.h"

namespace ta::core {
namespace {

constexpr size_t kNonceBytes = 16;

// The RFC 9449 §8 error for a proof without the current nonce; the faces send the nonce.
absl::Status UseDpopNonce(const absl::Status& status) {
  if (ReasonOf(status) != token::reason::kDpopNonceMismatch) return status;
  return Error(absl::StatusCode::kUnauthenticated, "use_dpop_nonce",
               "the server requires a DPoP nonce: retry with the one it sent (dpop-nonce)");
}

}  // namespace

std::string TokenAuthority::DpopNonceAt(absl::Time t) const {
  const int64_t window = absl::ToUnixSeconds(t) / absl::ToInt64Seconds(options_.dpop_nonce_window);
  // A context of its own: no refresh-token context (ta/refresh/v1|...) can equal it.
  std::string mac = keys_->DeriveRefreshSecret(absl::StrCat("ta/dpop-nonce/v1|", window));
  mac.resize(kNonceBytes);
  return token::Base64UrlEncode(mac);
}

std::string TokenAuthority::CurrentDpopNonce() const {
  if (!options_.dpop_nonce) return std::string();
  return DpopNonceAt(options_.clock->Now());
}

token::ProofContext TokenAuthority::DpopContext(absl::Time now, std::string* nonce,
                                                std::string* previous_nonce) const {
  token::ProofContext context;
  context.policy = options_.dpop;
  if (options_.dpop_nonce) {
    *nonce = DpopNonceAt(now);
    *previous_nonce = DpopNonceAt(now - options_.dpop_nonce_window);
    context.nonce = *nonce;
    context.previous_nonce = *previous_nonce;
  }
  return context;
}

storage::ProofReplay TokenAuthority::ProofReplayOf(const token::DpopProof& proof,
                                                   absl::Time now) const {
  // The proof verifies until its iat + max_age by this replica's clock, which also decides
  // whether the row is still live: keep it that long (a second more, for rounding). The
  // purge keeps it a margin longer for replicas whose clocks run behind.
  const absl::Time keep_until = proof.iat + options_.dpop.max_age + absl::Seconds(1);
  return storage::ProofReplay{proof.replay_key, std::max(keep_until, now)};
}

absl::StatusOr<bool> TokenAuthority::RecordProof(const token::DpopProof& proof, absl::Time now) {
  storage::ProofReplay replay = ProofReplayOf(proof, now);
  return store_->RecordProofJti(replay.key, replay.keep_until, now);
}

absl::Status TokenAuthority::DpopReplayed() {
  return Error(absl::StatusCode::kUnauthenticated, token::reason::kDpopReplayed,
               "the DPoP proof was already used");
}

absl::StatusOr<token::Confirmation> TokenAuthority::BindAtIssue(
    const token::PresentedProof& proof, absl::Time now,
    std::optional<storage::ProofReplay>* replay) {
  if (proof.empty()) return token::Confirmation();
  std::string nonce, previous;
  absl::StatusOr<token::Binding> binding =
      token::BindingOf(proof, DpopContext(now, &nonce, &previous), now);
  if (!binding.ok()) return UseDpopNonce(binding.status());
  // Recorded by CreateFamily, in the same synced write as the family (token_store.h).
  if (binding->dpop.has_value()) *replay = ProofReplayOf(*binding->dpop, now);
  return binding->cnf;
}

absl::StatusOr<std::optional<storage::ProofReplay>> TokenAuthority::CheckRefreshProof(
    const storage::FamilyRecord& family, const token::PresentedProof& proof, absl::Time now) {
  token::Confirmation cnf;
  cnf.jkt = family.cnf_jkt;
  cnf.x5t_s256 = family.cnf_x5t_s256;
  if (cnf.empty()) return std::nullopt;  // a bearer session: any proof is ignored
  std::string nonce, previous;
  absl::StatusOr<std::optional<token::DpopProof>> checked =
      token::CheckBoundProof(cnf, proof, DpopContext(now, &nonce, &previous), now);
  if (!checked.ok()) return UseDpopNonce(checked.status());
  if (!checked->has_value()) return std::nullopt;
  // Recorded by Rotate, in the same synced write as the rotation (token_store.h).
  return ProofReplayOf(**checked, now);
}

}  // namespace ta::core
