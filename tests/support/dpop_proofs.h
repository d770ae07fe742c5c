// DPoP proofs for tests (RFC 9449 §4): made by our own signer so every piece can be set wrong
// on purpose. Proofs made by implementations nobody here wrote are in tests/token/
// (dpop_interop_test.py, dpop_node/).
#ifndef TA_TESTS_SUPPORT_DPOP_PROOFS_H_
#define TA_TESTS_SUPPORT_DPOP_PROOFS_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "token/binding.h"
#include "token/dpop.h"
#include "token/jws.h"
#include "token/key.h"

namespace ta::testing {

// The public JWK of `key` as JSON, with `extra` members appended (",\"d\":\"...\"").
inline std::string DpopJwkJson(const token::Key& key, absl::string_view extra = "") {
  std::string out = "{";
  for (const token::JwkMember& m : key.PublicJwkMembers()) {
    absl::StrAppend(&out, out.size() > 1 ? "," : "", "\"", m.first, "\":\"", m.second, "\"");
  }
  return absl::StrCat(out, extra, "}");
}

// Every member of a proof; the defaults make a valid one for `key`.
struct DpopSpec {
  std::string typ = "dpop+jwt";
  std::string alg;  // default: the key's
  std::string jwk;  // default: the key's public JWK
  std::string extra_header;
  std::string htm = "POST";
  std::string htu;
  std::string jti;  // default: a fresh one
  std::optional<absl::Time> iat;
  std::optional<std::string> ath;    // "ath" claim when set
  std::optional<std::string> nonce;  // "nonce" claim when set
};

inline std::string FreshJti() {
  static std::atomic<int> n{0};
  return absl::StrCat("jti-", n.fetch_add(1), "-", absl::ToUnixNanos(absl::Now()));
}

inline std::string MakeDpopProof(const token::Key& key, const DpopSpec& s, absl::Time now) {
  const std::string header =
      absl::StrCat("{\"typ\":\"", s.typ, "\",\"alg\":\"",
                   s.alg.empty() ? std::string(token::AlgorithmName(key.alg())) : s.alg,
                   "\",\"jwk\":", s.jwk.empty() ? DpopJwkJson(key) : s.jwk, s.extra_header, "}");
  std::string payload =
      absl::StrCat("{\"jti\":\"", s.jti.empty() ? FreshJti() : s.jti, "\",\"htm\":\"", s.htm,
                   "\",\"htu\":\"", s.htu, "\",\"iat\":", absl::ToUnixSeconds(s.iat.value_or(now)));
  if (s.ath.has_value()) absl::StrAppend(&payload, ",\"ath\":\"", *s.ath, "\"");
  if (s.nonce.has_value()) absl::StrAppend(&payload, ",\"nonce\":\"", *s.nonce, "\"");
  absl::StrAppend(&payload, "}");
  return token::SignCompactJws(header, payload, key).value();
}

// A PresentedProof: `proof` made for (method, url), passed on as made for them.
inline token::PresentedProof Presented(std::string proof, std::string method, std::string url) {
  token::PresentedProof out;
  out.dpop_proof = std::move(proof);
  out.http_method = std::move(method);
  out.http_url = std::move(url);
  return out;
}

}  // namespace ta::testing

#endif  // TA_TESTS_SUPPORT_DPOP_PROOFS_H_
