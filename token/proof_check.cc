#include "token/proof_check.h"

#include "base/error.h"
#include "base/status_macros.h"
#include "token/base64url.h"

namespace ta::token {
namespace {

absl::Status Mismatch(absl::string_view message) {
  return Error(absl::StatusCode::kUnauthenticated, reason::kProofKeyMismatch, message);
}

}  // namespace

absl::Status CheckPresentedProof(const PresentedProof& proof) {
  if (!proof.dpop_proof.empty() && !proof.certificate_thumbprint.empty()) {
    return InvalidField("proof", "give a DPoP proof or a certificate thumbprint, not both");
  }
  if (!proof.dpop_proof.empty() && (proof.http_method.empty() || proof.http_url.empty())) {
    return InvalidField("proof", "a DPoP proof needs the method and URL it was made for");
  }
  if (proof.http_method.size() > 32 || proof.http_url.size() > kMaxDpopUrlBytes) {
    return InvalidField("proof", "the proof's method or URL is too long");
  }
  if (!proof.certificate_thumbprint.empty() &&
      !IsCertificateThumbprint(proof.certificate_thumbprint)) {
    return InvalidField("certificate_thumbprint",
                        "certificate_thumbprint must be 43 base64url characters (SHA-256)");
  }
  return absl::OkStatus();
}

namespace {

absl::StatusOr<DpopProof> VerifyDpop(const PresentedProof& proof, const ProofContext& context,
                                     absl::Time now) {
  DpopRequest request;
  request.proof = proof.dpop_proof;
  request.method = proof.http_method;
  request.url = proof.http_url;
  request.access_token = context.access_token;
  request.nonce = context.nonce;
  request.previous_nonce = context.previous_nonce;
  return VerifyDpopProof(request, context.policy, now);
}

}  // namespace

bool IsCertificateThumbprint(absl::string_view thumbprint) {
  if (thumbprint.size() != kCertificateThumbprintChars) return false;
  absl::StatusOr<std::string> raw = Base64UrlDecode(thumbprint);
  return raw.ok() && raw->size() == 32;
}

absl::StatusOr<Binding> BindingOf(const PresentedProof& proof, const ProofContext& context,
                                  absl::Time now) {
  RETURN_IF_ERROR(CheckPresentedProof(proof));
  Binding binding;
  if (!proof.certificate_thumbprint.empty()) {
    binding.cnf.x5t_s256 = proof.certificate_thumbprint;
    return binding;
  }
  ASSIGN_OR_RETURN(DpopProof dpop, VerifyDpop(proof, context, now));
  binding.cnf.jkt = dpop.jkt;
  binding.dpop = std::move(dpop);
  return binding;
}

absl::StatusOr<std::optional<DpopProof>> CheckBoundProof(const Confirmation& cnf,
                                                         const PresentedProof& proof,
                                                         const ProofContext& context,
                                                         absl::Time now) {
  if (proof.empty()) {
    return Error(absl::StatusCode::kUnauthenticated, reason::kProofRequired,
                 "the session is bound to a key: a proof of possession is required");
  }
  RETURN_IF_ERROR(CheckPresentedProof(proof));
  if (!cnf.x5t_s256.empty()) {
    // Thumbprints are public (they are in every token), so a plain comparison is fine.
    if (proof.certificate_thumbprint != cnf.x5t_s256) {
      return Mismatch("the session is bound to another client certificate");
    }
    return std::nullopt;
  }
  if (proof.dpop_proof.empty()) return Mismatch("the session is bound to a DPoP key");
  ASSIGN_OR_RETURN(DpopProof dpop, VerifyDpop(proof, context, now));
  if (dpop.jkt != cnf.jkt) return Mismatch("the DPoP proof is signed by another key");
  return dpop;
}

}  // namespace ta::token
