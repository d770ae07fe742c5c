// jwt_tool: a thin command line over KeyRing, so a foreign JOSE implementation (see
// interop_test.py) can check our tokens and JWKS and hand us its own tokens.
//
//   jwt_tool init   --key_dir D [--alg A] [--allow_hs256]   open/create; print active kid
//   jwt_tool rotate --key_dir D [--alg A] [--allow_hs256]   print the new kid
//   jwt_tool jwks   --key_dir D                             print the JWKS
//   jwt_tool sign   --key_dir D --iss I --sub S --aud A [--typ T] [--ttl_s N] [--extra J]
//   jwt_tool verify --key_dir D --iss I [--aud A] [--typ T]  token on stdin; prints the
//                   claims JSON, or the rejection reason on stderr with exit status 1.
#include <iostream>
#include <iterator>
#include <map>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/error.h"
#include "server/token/key_ring.h"
#include "token/base64url.h"
#include "token/crypto.h"

namespace {

using ta::token::Algorithm;
using ta::token::KeyRing;

using Flags = std::map<std::string, std::string>;

int Fail(const absl::Status& status) {
  std::string reason = ta::ReasonOf(status);
  std::cerr << (reason.empty() ? "error" : reason) << ": " << status.message() << "\n";
  return 1;
}

// --name value and --switch (value "1").
bool ParseFlags(int argc, char** argv, Flags* flags) {
  for (int i = 2; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (!absl::ConsumePrefix(&arg, "--")) return false;
    if (arg == "allow_hs256") {
      flags->insert_or_assign(std::string(arg), std::string(1, '1'));
    } else if (i + 1 < argc) {
      (*flags)[std::string(arg)] = argv[++i];
    } else {
      return false;
    }
  }
  return true;
}

int Sign(const KeyRing& ring, const Flags& flags) {
  int64_t ttl = 300;
  if (flags.count("ttl_s") && !absl::SimpleAtoi(flags.at("ttl_s"), &ttl)) return 2;
  ta::token::JwtClaims claims;
  const absl::Time now = ta::Clock::Real()->Now();
  claims.iss = flags.count("iss") ? flags.at("iss") : "";
  claims.sub = flags.count("sub") ? flags.at("sub") : "";
  claims.aud = {flags.count("aud") ? flags.at("aud") : ""};
  claims.iat = now;
  claims.nbf = now;
  claims.exp = now + absl::Seconds(ttl);
  claims.jti = ta::token::Base64UrlEncode(ta::token::RandomBytes(16));
  claims.client_id = "jwt_tool";
  claims.scope = "interop";
  claims.extra_json = flags.count("extra") ? flags.at("extra") : "";
  auto token = ring.Sign(claims, flags.count("typ") ? flags.at("typ") : "at+jwt");
  if (!token.ok()) return Fail(token.status());
  std::cout << *token << "\n";
  return 0;
}

int Verify(const KeyRing& ring, const Flags& flags) {
  std::string token(std::istreambuf_iterator<char>(std::cin), {});
  ta::token::VerifyPolicy policy;
  policy.issuer = flags.count("iss") ? flags.at("iss") : "";
  policy.audience = flags.count("aud") ? flags.at("aud") : "";
  if (flags.count("typ")) policy.expected_typ = flags.at("typ");
  auto verified = ring.Verify(absl::StripAsciiWhitespace(token), policy);
  if (!verified.ok()) return Fail(verified.status());
  std::cout << verified->claims_json << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (argc < 2 || !ParseFlags(argc, argv, &flags) || !flags.count("key_dir")) {
    std::cerr << "usage: jwt_tool init|rotate|jwks|sign|verify --key_dir DIR [flags]\n";
    return 2;
  }
  const std::string command = argv[1];
  std::optional<Algorithm> alg;
  if (flags.count("alg")) {
    auto parsed = ta::token::ParseAlgorithm(flags.at("alg"));
    if (!parsed.ok()) return Fail(parsed.status());
    alg = *parsed;
  }
  ta::token::KeyRingOptions options;
  options.key_dir = flags.at("key_dir");
  options.allow_hs256 = flags.count("allow_hs256") > 0;
  if (command == "init" && alg.has_value()) options.generate_algorithm = *alg;
  auto ring = KeyRing::Open(options);
  if (!ring.ok()) return Fail(ring.status());
  if (command == "init") {
    std::cout << (*ring)->Keys().front().kid << "\n";
    return 0;
  }
  if (command == "rotate") {
    auto kid = (*ring)->Rotate(alg);
    if (!kid.ok()) return Fail(kid.status());
    std::cout << *kid << "\n";
    return 0;
  }
  if (command == "jwks") {
    std::cout << (*ring)->JwksJson() << "\n";
    return 0;
  }
  if (command == "sign") return Sign(**ring, flags);
  if (command == "verify") return Verify(**ring, flags);
  std::cerr << "unknown command " << command << "\n";
  return 2;
}
