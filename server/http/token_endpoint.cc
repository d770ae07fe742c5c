// POST /oauth2/token (endpoints.h): the refresh_token grant of RFC 6749 §6 for public clients,
// with the DPoP header of RFC 9449 §5. A thin handler like the others: the form and the proof
// are decoded here, every rule (the refresh token's secret before any store read, the
// binding, the client_id, rotation and reuse detection) is TokenAuthority::RefreshTokens',
// the same call gRPC's RefreshTokens makes.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "base/status_macros.h"
#include "server/http/documents.h"
#include "server/http/endpoints.h"
#include "server/http/errors.h"
#include "server/http/form.h"

namespace ta::http {
namespace {

absl::Status BadRequest(absl::string_view why) {
  return Error(absl::StatusCode::kInvalidArgument, "invalid_request", why);
}

// Who every refresh at this endpoint runs as, in the audit trail and for the role check: a
// client that may act for any client_id. The client is not authenticated (RFC 6749 §2.1,
// public clients); the refresh token, and for a bound session the proof, are what count.
// `peer` is its address: its refused refreshes are collapsed in the audit trail per address.
core::Caller PublicClient(const std::string& peer) {
  return core::Caller{"public-client", {core::Role::kClient}, {}, peer};
}

// Parameters other than these are ignored (RFC 6749 §3.2). These would authenticate a
// confidential client, which this endpoint has none of (token_endpoint_auth_methods_supported
// is "none"): refused rather than silently ignored.
constexpr const char* kClientAuthParameters[] = {"client_secret", "client_assertion",
                                                 "client_assertion_type"};

// The form of a refresh_token grant, as the core's request (without the proof).
absl::StatusOr<core::RefreshRequest> RefreshForm(const HttpRequest& request) {
  if (!IsFormContentType(request.content_type)) {
    return BadRequest("the body must be application/x-www-form-urlencoded");
  }
  if (!request.authorization.empty()) {
    return BadRequest("no client authentication here: public clients send none");
  }
  ASSIGN_OR_RETURN(Form form, ParseForm(request.body));
  auto grant = form.find("grant_type");
  if (grant == form.end() || grant->second.empty()) {
    return BadRequest("the form parameter 'grant_type' is required");
  }
  if (grant->second != "refresh_token") {
    return Error(absl::StatusCode::kInvalidArgument, "unsupported_grant_type",
                 "only grant_type=refresh_token is served; sessions start at the login service");
  }
  for (const char* name : kClientAuthParameters) {
    if (form.contains(name)) {
      return BadRequest("no client authentication here: public clients send none");
    }
  }
  auto token = form.find("refresh_token");
  if (token == form.end() || token->second.empty()) {
    return BadRequest("the form parameter 'refresh_token' is required");
  }
  core::RefreshRequest out;
  out.refresh_token = std::move(token->second);
  if (auto scope = form.find("scope"); scope != form.end()) out.scope = std::move(scope->second);
  if (auto client = form.find("client_id"); client != form.end()) {
    out.client_id = std::move(client->second);
  }
  return out;
}

// The DPoP header as the proof for a POST to `url` (none when the header is absent).
absl::StatusOr<token::PresentedProof> DpopProof(const HttpRequest& request,
                                                const std::string& url) {
  token::PresentedProof proof;
  if (request.dpop.empty()) return proof;
  // Several DPoP headers arrive joined with ", " (message.h); a compact JWS has no ','.
  // RFC 9449 §4.3 step 1: exactly one.
  if (request.dpop.find(',') != std::string::npos) {
    return Error(absl::StatusCode::kUnauthenticated, "dpop_malformed",
                 "exactly one DPoP header is allowed");
  }
  proof.dpop_proof = request.dpop;
  proof.http_method = "POST";
  proof.http_url = url;
  return proof;
}

bool HasHeader(const HttpResponse& r, absl::string_view name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return true;
  }
  return false;
}

// Browser apps call the endpoint from their own origin. Any origin may: nothing rides on
// ambient credentials (no cookies; the refresh token is in the body), so a page can only
// refresh a token it already holds. The browser must let the app read DPoP-Nonce.
void AllowCrossOrigin(HttpResponse& out) {
  out.headers.emplace_back("Access-Control-Allow-Origin", "*");
  out.headers.emplace_back("Access-Control-Expose-Headers", "DPoP-Nonce, WWW-Authenticate");
}

HttpResponse Preflight() {
  HttpResponse out;
  out.status = 204;
  AllowCrossOrigin(out);
  out.headers.emplace_back("Access-Control-Allow-Methods", "POST");
  out.headers.emplace_back("Access-Control-Allow-Headers", "Content-Type, DPoP");
  out.headers.emplace_back("Access-Control-Max-Age", "600");
  return out;
}

// Every answer of the token endpoint, success or error: RFC 6749 §5.1's no-caching headers,
// CORS, and the current DPoP nonce (RFC 9449 §8.2) to a client that uses DPoP
// (TokenErrorResponse adds it to a use_dpop_nonce refusal in any case).
HttpResponse Finish(HttpResponse out, bool dpop, core::TokenAuthority* authority) {
  if (!HasHeader(out, "Cache-Control")) out.headers.emplace_back("Cache-Control", "no-store");
  out.headers.emplace_back("Pragma", "no-cache");
  AllowCrossOrigin(out);
  if (dpop && !HasHeader(out, "DPoP-Nonce")) {
    if (std::string nonce = authority->CurrentDpopNonce(); !nonce.empty()) {
      out.headers.emplace_back("DPoP-Nonce", std::move(nonce));
    }
  }
  return out;
}

HttpResponse RateLimited(absl::Duration wait) {
  HttpResponse out = TokenErrorResponse(
      Error(absl::StatusCode::kResourceExhausted, "rate_limited",
            "too many token requests from this address; retry after Retry-After seconds"),
      "");
  const int64_t seconds = std::max<int64_t>(1, std::ceil(absl::ToDoubleSeconds(wait)));
  out.headers.emplace_back("Retry-After", std::to_string(seconds));
  return out;
}

}  // namespace

void Endpoints::Token(HttpRequest request, Respond respond) {
  if (request.method == "OPTIONS") return respond(Preflight());
  const bool dpop = !request.dpop.empty();
  // Every answer, the pool's "overloaded" included, leaves through Finish.
  Respond finish = [respond = std::move(respond), dpop, authority = deps_.authority](
                       HttpResponse out) { respond(Finish(std::move(out), dpop, authority)); };
  // First, before the body is even parsed: what one address may make this server do.
  if (absl::Duration wait = token_limiter_.Admit(request.peer); wait > absl::ZeroDuration()) {
    return finish(RateLimited(wait));
  }
  absl::StatusOr<core::RefreshRequest> in = RefreshForm(request);
  if (in.ok()) {
    absl::StatusOr<token::PresentedProof> proof = DpopProof(request, token_url_);
    if (proof.ok()) {
      in->proof = *std::move(proof);
    } else {
      in = proof.status();
    }
  }
  if (!in.ok()) return finish(TokenErrorResponse(in.status(), deps_.authority->CurrentDpopNonce()));
  // A refresh reads the store and makes a synced write: off the event loop.
  OffLoop(std::move(finish), [this, in = *std::move(in), peer = request.peer] {
    absl::StatusOr<core::TokenPair> pair = deps_.authority->RefreshTokens(in, PublicClient(peer));
    if (!pair.ok()) {
      return TokenErrorResponse(pair.status(), deps_.authority->CurrentDpopNonce());
    }
    HttpResponse out;
    out.content_type = "application/json";
    out.body = TokenResponseJson(*pair);
    return out;
  });
}

}  // namespace ta::http
