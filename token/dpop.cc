#include "token/dpop.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "base/status_macros.h"
#include "token/base64url.h"
#include "token/crypto.h"
#include "token/json.h"
#include "token/jws.h"
#include "token/key.h"

namespace ta::token {
namespace {

using internal::StringOf;

absl::Status Reject(absl::string_view why, absl::string_view message) {
  return ta::Error(absl::StatusCode::kUnauthenticated, why, message);
}

// The member `name` of `object`, or null. (HasMember and operator[] rather than comparing
// member iterators, which clang's C++20 mode finds ambiguous in RapidJSON 1.1.)
const rapidjson::Value* Find(const rapidjson::Value& object, const char* name) {
  return object.HasMember(name) ? &object[name] : nullptr;
}

// The protected header of a proof, still as JSON where it is JSON.
struct ProofHeader {
  Algorithm alg = Algorithm::kES256;
  std::string jwk_json;
};

// Members that only a private (or symmetric) JWK has: RFC 7518 §6.2.2, §6.3.2, §6.4;
// RFC 8037 §2.
constexpr absl::string_view kPrivateJwkMembers[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};

bool IsDpopTyp(absl::string_view typ) {
  // RFC 7515 §4.1.9: media types compare case-insensitively and "application/" may be
  // left out.
  return absl::EqualsIgnoreCase(typ, "dpop+jwt") ||
         absl::EqualsIgnoreCase(typ, "application/dpop+jwt");
}

absl::Status CheckJwk(const rapidjson::Value& jwk) {
  if (!jwk.IsObject()) return Reject(reason::kDpopBadJwk, "DPoP jwk is not an object");
  for (absl::string_view name : kPrivateJwkMembers) {
    if (jwk.HasMember(std::string(name).c_str())) {
      return Reject(reason::kDpopPrivateKey, "DPoP jwk holds private key material");
    }
  }
  const rapidjson::Value* kty = Find(jwk, "kty");
  if (kty == nullptr || !kty->IsString()) return Reject(reason::kDpopBadJwk, "DPoP jwk has no kty");
  absl::string_view type = StringOf(*kty);
  if (type != "EC" && type != "OKP" && type != "RSA") {
    return Reject(reason::kDpopBadJwk, "DPoP jwk is not an EC, OKP or RSA public key");
  }
  return absl::OkStatus();
}

absl::StatusOr<Algorithm> ReadAlg(const rapidjson::Value& value, const DpopPolicy& policy) {
  if (!value.IsString()) return Reject(reason::kDpopMalformed, "DPoP alg is not a string");
  // RFC 9864's fully-specified "Ed25519" is the EdDSA we verify (npm dpop sends it).
  absl::StatusOr<Algorithm> alg = StringOf(value) == "Ed25519" ? Algorithm::kEdDSA
                                                               : ParseAlgorithm(StringOf(value));
  if (!alg.ok() || *alg == Algorithm::kHS256 ||
      std::find(policy.algorithms.begin(), policy.algorithms.end(), *alg) ==
          policy.algorithms.end()) {
    return Reject(reason::kDpopBadAlg, "DPoP alg is not an accepted asymmetric algorithm");
  }
  return *alg;
}

absl::StatusOr<ProofHeader> ParseProofHeader(absl::string_view header_b64,
                                             const DpopPolicy& policy) {
  absl::StatusOr<std::string> json = Base64UrlDecode(header_b64);
  rapidjson::Document doc;
  if (!json.ok() || !internal::ParseJsonObject(*json, &doc).ok()) {
    return Reject(reason::kDpopMalformed, "DPoP header is not a JSON object");
  }
  for (rapidjson::SizeType i = 0; i < doc.MemberCount(); ++i) {
    absl::string_view name = StringOf((doc.MemberBegin() + i)->name);
    if (name != "typ" && name != "alg" && name != "jwk") {
      return Reject(reason::kDpopForbiddenHeader, "DPoP header member is not allowed");
    }
  }
  const rapidjson::Value* typ = Find(doc, "typ");
  if (typ == nullptr || !typ->IsString() || !IsDpopTyp(StringOf(*typ))) {
    return Reject(reason::kDpopWrongTyp, "DPoP header typ is not dpop+jwt");
  }
  const rapidjson::Value* alg = Find(doc, "alg");
  if (alg == nullptr) return Reject(reason::kDpopBadAlg, "DPoP header has no alg");
  ProofHeader header;
  ASSIGN_OR_RETURN(header.alg, ReadAlg(*alg, policy));
  const rapidjson::Value* jwk = Find(doc, "jwk");
  if (jwk == nullptr) return Reject(reason::kDpopBadJwk, "DPoP header has no jwk");
  RETURN_IF_ERROR(CheckJwk(*jwk));
  header.jwk_json = internal::ToJson(*jwk);
  return header;
}

// A string claim; nullopt when absent, kDpopMalformed when not a string.
absl::StatusOr<std::optional<std::string>> StringClaim(const rapidjson::Document& doc,
                                                       const char* name) {
  const rapidjson::Value* value = Find(doc, name);
  if (value == nullptr) return std::optional<std::string>();
  if (!value->IsString()) {
    return Reject(reason::kDpopMalformed, absl::StrCat("DPoP claim ", name, " is not a string"));
  }
  return std::optional<std::string>(std::string(StringOf(*value)));
}

absl::StatusOr<std::string> RequiredString(const rapidjson::Document& doc, const char* name,
                                           size_t max_bytes) {
  ASSIGN_OR_RETURN(std::optional<std::string> value, StringClaim(doc, name));
  if (!value.has_value() || value->empty()) {
    return Reject(reason::kDpopMissingClaim, absl::StrCat("DPoP proof has no ", name));
  }
  if (value->size() > max_bytes) {
    return Reject(reason::kDpopMalformed, absl::StrCat("DPoP claim ", name, " is too long"));
  }
  return *std::move(value);
}

absl::StatusOr<absl::Time> ReadIat(const rapidjson::Document& doc) {
  const rapidjson::Value* iat = Find(doc, "iat");
  if (iat == nullptr) return Reject(reason::kDpopMissingClaim, "DPoP proof has no iat");
  const rapidjson::Value& v = *iat;
  // A NumericDate (RFC 7519 §2), floored to seconds; never a string.
  if (v.IsInt64()) return absl::FromUnixSeconds(v.GetInt64());
  if (v.IsDouble() && std::isfinite(v.GetDouble()) && std::fabs(v.GetDouble()) < 1e15) {
    return absl::FromUnixSeconds(static_cast<int64_t>(std::floor(v.GetDouble())));
  }
  return Reject(reason::kDpopMalformed, "DPoP iat is not a number");
}

std::string LengthPrefixed(absl::string_view s) {
  uint32_t n = static_cast<uint32_t>(s.size());
  char len[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                 static_cast<char>(n >> 8), static_cast<char>(n)};
  return absl::StrCat(absl::string_view(len, 4), s);
}

// Steps 8–12 on the verified payload.
absl::StatusOr<DpopProof> CheckClaims(const rapidjson::Document& doc, const DpopRequest& request,
                                      const DpopPolicy& policy, absl::Time now) {
  DpopProof proof;
  ASSIGN_OR_RETURN(proof.jti, RequiredString(doc, "jti", kMaxDpopJtiBytes));
  ASSIGN_OR_RETURN(std::string htm, RequiredString(doc, "htm", 32));
  ASSIGN_OR_RETURN(std::string htu, RequiredString(doc, "htu", kMaxDpopUrlBytes));
  ASSIGN_OR_RETURN(proof.iat, ReadIat(doc));
  if (htm != request.method) {
    return Reject(reason::kDpopHtmMismatch, "DPoP htm is not the request's method");
  }
  absl::StatusOr<std::string> proof_url = NormalizeHtu(htu);
  if (!proof_url.ok()) return Reject(reason::kDpopHtuMismatch, "DPoP htu is not an http(s) URL");
  ASSIGN_OR_RETURN(std::string request_url, NormalizeHtu(request.url));
  if (*proof_url != request_url) {
    return Reject(reason::kDpopHtuMismatch, "DPoP htu is not the request's URL");
  }
  proof.htu = *std::move(proof_url);
  if (proof.iat > now + policy.max_future || proof.iat < now - policy.max_age) {
    return Reject(reason::kDpopIatOutOfWindow, "DPoP iat is outside the accepted window");
  }
  ASSIGN_OR_RETURN(std::optional<std::string> ath, StringClaim(doc, "ath"));
  if (request.access_token.has_value()) {
    if (!ath.has_value()) return Reject(reason::kDpopMissingClaim, "DPoP proof has no ath");
    if (!ConstantTimeEquals(*ath, AccessTokenHash(*request.access_token))) {
      return Reject(reason::kDpopAthMismatch, "DPoP ath is not the access token's hash");
    }
  }
  if (request.nonce.has_value()) {
    ASSIGN_OR_RETURN(std::optional<std::string> nonce, StringClaim(doc, "nonce"));
    const bool current = nonce.has_value() && ConstantTimeEquals(*nonce, *request.nonce);
    const bool previous = nonce.has_value() && request.previous_nonce.has_value() &&
                          ConstantTimeEquals(*nonce, *request.previous_nonce);
    if (!current && !previous) {
      return Reject(reason::kDpopNonceMismatch, "DPoP nonce is missing or not the current one");
    }
  }
  proof.replay_key = Sha256(absl::StrCat(LengthPrefixed(proof.jti), LengthPrefixed(proof.htu)));
  return proof;
}

// RFC 3986 §6.2.3: the scheme's own port is the same as none.
int DefaultPort(boost::urls::scheme scheme) {
  return scheme == boost::urls::scheme::https ? 443 : 80;
}

bool IsUnreserved(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
         c == '~';
}

// RFC 3986 §6.2.2.1–2 on text Boost.URL has validated (every '%' starts a valid triplet):
// percent-encodings of unreserved characters decoded, the others' hex in upper case.
// Boost.URL 1.81's own normalize() also decodes reserved ones ("%2F" -> "/", which
// changes the path), hence this.
std::string NormalizePercent(absl::string_view text, bool lower_case) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%' && i + 2 < text.size()) {
      int hi = absl::ascii_isdigit(text[i + 1]) ? text[i + 1] - '0'
                                                 : absl::ascii_tolower(text[i + 1]) - 'a' + 10;
      int lo = absl::ascii_isdigit(text[i + 2]) ? text[i + 2] - '0'
                                                 : absl::ascii_tolower(text[i + 2]) - 'a' + 10;
      char decoded = static_cast<char>(hi * 16 + lo);
      if (IsUnreserved(decoded)) {
        out.push_back(lower_case ? absl::ascii_tolower(decoded) : decoded);
      } else {
        absl::StrAppend(&out, "%", absl::AsciiStrToUpper(text.substr(i + 1, 2)));
      }
      i += 2;
    } else {
      out.push_back(lower_case ? absl::ascii_tolower(c) : c);
    }
  }
  return out;
}

// RFC 3986 §5.2.4 (remove_dot_segments) on an absolute path; "" becomes "/" (§6.2.3).
std::string RemoveDotSegments(absl::string_view path) {
  std::vector<absl::string_view> kept;
  std::vector<absl::string_view> segments = absl::StrSplit(path, '/');
  // segments[0] is the empty text before the leading '/'.
  for (size_t i = 1; i < segments.size(); ++i) {
    absl::string_view seg = segments[i];
    bool last = i + 1 == segments.size();
    if (seg == "." || seg == "..") {
      if (seg == ".." && !kept.empty()) kept.pop_back();
      if (last) kept.push_back("");  // "/a/.." is "/a/": the directory remains
      continue;
    }
    kept.push_back(seg);
  }
  return absl::StrCat("/", absl::StrJoin(kept, "/"));
}

// The port's number, or 0 for one that is out of range.
int PortNumber(absl::string_view port) {
  int value = 0;
  if (port.size() > 5 || !absl::SimpleAtoi(port, &value) || value < 1 || value > 65535) return 0;
  return value;
}

// The header's jwk as a key for its alg, from policy.key_cache when there is one.
absl::StatusOr<std::shared_ptr<const Key>> ImportJwk(const ProofHeader& header,
                                                     const DpopPolicy& policy) {
  if (policy.key_cache != nullptr) return policy.key_cache->Import(header.jwk_json, header.alg);
  ASSIGN_OR_RETURN(std::unique_ptr<Key> key, Key::FromJwk(header.jwk_json, header.alg));
  return std::shared_ptr<const Key>(std::move(key));
}

}  // namespace

DpopKeyCache* DpopKeyCache::Default() {
  static DpopKeyCache cache(kDefaultBytes);
  return &cache;
}

absl::StatusOr<std::shared_ptr<const Key>> DpopKeyCache::Import(absl::string_view jwk_json,
                                                                Algorithm alg) {
  // The alg's name, a separator no JSON text starts with, then the whole jwk text.
  const std::string cache_key = absl::StrCat(AlgorithmName(alg), "|", jwk_json);
  const absl::Time now = absl::Now();
  if (std::shared_ptr<const Key> hit = cache_.Find(cache_key, now)) return hit;
  ASSIGN_OR_RETURN(std::unique_ptr<Key> imported, Key::FromJwk(jwk_json, alg));
  std::shared_ptr<const Key> key = std::move(imported);
  // The value's charge: an OpenSSL key (an RSA-4096 one is under 2 KiB), its members, kid.
  cache_.Insert(cache_key, key, 1024 + jwk_json.size(), absl::InfiniteFuture(), now);
  return key;
}

absl::StatusOr<std::string> NormalizeHtu(absl::string_view url) {
  if (url.size() > kMaxDpopUrlBytes) return InvalidField("url", "URL is too long");
  // Boost.URL checks the whole RFC 3986 grammar and splits the components.
  boost::system::result<boost::urls::url_view> parsed =
      boost::urls::parse_uri(boost::core::string_view(url.data(), url.size()));
  if (!parsed) return InvalidField("url", "not an absolute URL (RFC 3986)");
  const boost::urls::url_view& u = *parsed;
  boost::urls::scheme scheme = u.scheme_id();
  if (scheme != boost::urls::scheme::http && scheme != boost::urls::scheme::https) {
    return InvalidField("url", "not an http or https URL");
  }
  absl::string_view host(u.encoded_host().data(), u.encoded_host().size());
  if (!u.has_authority() || host.empty() || u.has_userinfo()) {
    return InvalidField("url", "URL needs a host and no user information");
  }
  std::string out = absl::StrCat(scheme == boost::urls::scheme::https ? "https" : "http", "://",
                                 NormalizePercent(host, /*lower_case=*/true));
  if (u.has_port() && !u.port().empty()) {
    int port = PortNumber(absl::string_view(u.port().data(), u.port().size()));
    if (port == 0) return InvalidField("url", "URL port is out of range");
    if (port != DefaultPort(scheme)) absl::StrAppend(&out, ":", port);  // "0080" is 80
  }
  absl::string_view path(u.encoded_path().data(), u.encoded_path().size());
  absl::StrAppend(&out, RemoveDotSegments(NormalizePercent(path, /*lower_case=*/false)));
  return out;
}

std::string AccessTokenHash(absl::string_view access_token) {
  return Base64UrlEncode(Sha256(access_token));
}

absl::StatusOr<DpopProof> VerifyDpopProof(const DpopRequest& request, const DpopPolicy& policy,
                                          absl::Time now) {
  if (request.proof.size() > kMaxDpopProofBytes) {
    return ta::Error(absl::StatusCode::kInvalidArgument, reason::kDpopTooLarge,
                     "DPoP proof is larger than accepted");
  }
  absl::StatusOr<CompactJws> jws = SplitCompactJws(request.proof);
  if (!jws.ok()) return Reject(reason::kDpopMalformed, "DPoP proof is not a compact JWS");
  ASSIGN_OR_RETURN(ProofHeader header, ParseProofHeader(jws->header_b64, policy));
  absl::StatusOr<std::shared_ptr<const Key>> key = ImportJwk(header, policy);
  if (!key.ok()) return Reject(reason::kDpopBadJwk, "DPoP jwk is not a usable key for its alg");
  if (!CheckJwsSignature(*jws, **key).ok()) {
    return Reject(reason::kDpopBadSignature, "DPoP proof signature does not verify");
  }
  absl::StatusOr<std::string> payload = Base64UrlDecode(jws->payload_b64);
  rapidjson::Document doc;
  if (!payload.ok() || !internal::ParseJsonObject(*payload, &doc).ok()) {
    return Reject(reason::kDpopMalformed, "DPoP payload is not a JSON object");
  }
  ASSIGN_OR_RETURN(DpopProof proof, CheckClaims(doc, request, policy, now));
  proof.jkt = (*key)->kid();  // the kid of a Key is its RFC 7638 thumbprint
  return proof;
}

}  // namespace ta::token
