// Sender-constrained tokens (RFC 9449 DPoP, RFC 8705 certificate-bound; DESIGN §13): what a
// client presented to prove it holds a key, and what a bound session is bound to.
//
// A family bound at IssueTokens records its Confirmation; every access token of it carries
// it as the `cnf` claim (RFC 7800), every refresh needs a proof by the same key, and a
// resource server checks the proof it received against the token's `cnf`. The checks on a
// DPoP proof itself are token/dpop.h's.
// Thread-safety: plain values.
#ifndef TA_TOKEN_BINDING_H_
#define TA_TOKEN_BINDING_H_

#include <string>

namespace ta::token {

// What the client presented with a request, as passed on by whoever terminated its HTTP (the
// login service, a gateway, our own HTTP face). At most one of dpop_proof and
// certificate_thumbprint is set.
struct PresentedProof {
  std::string dpop_proof;   // the DPoP header's value (compact JWS); "" when none
  std::string http_method;  // htm: the method of the request the proof was made for
  std::string http_url;     // htu: its absolute URL
  // RFC 8705 x5t#S256: base64url SHA-256 of the client certificate's DER; "" when none.
  std::string certificate_thumbprint;

  bool empty() const { return dpop_proof.empty() && certificate_thumbprint.empty(); }
};

// RFC 7800 `cnf` of a bound session: at most one member is set; both empty = a bearer session.
struct Confirmation {
  std::string jkt;       // RFC 7638 thumbprint of the DPoP key (RFC 9449 §6)
  std::string x5t_s256;  // certificate thumbprint (RFC 8705 §3.1), member "x5t#S256"

  bool empty() const { return jkt.empty() && x5t_s256.empty(); }
  bool operator==(const Confirmation& other) const {
    return jkt == other.jkt && x5t_s256 == other.x5t_s256;
  }
};

}  // namespace ta::token

#endif  // TA_TOKEN_BINDING_H_
