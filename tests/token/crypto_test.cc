#include "server/token/crypto.h"

#include <catch2/catch.hpp>

#include "absl/strings/escaping.h"

namespace ta::token {
namespace {

TEST_CASE("Crypto: SHA-256 of \"abc\" matches FIPS 180-2", "[token]") {
  CHECK(absl::BytesToHexString(Sha256("abc")) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("Crypto: HMAC-SHA256 matches RFC 4231 test case 2", "[token]") {
  CHECK(absl::BytesToHexString(HmacSha256("Jefe", "what do ya want for nothing?")) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST_CASE("Crypto: RandomBytes gives the requested length and fresh bytes", "[token]") {
  CHECK(RandomBytes(0).empty());
  CHECK(RandomBytes(32).size() == 32);
  CHECK(RandomBytes(32) != RandomBytes(32));
}

TEST_CASE("Crypto: ConstantTimeEquals compares content and length", "[token]") {
  CHECK(ConstantTimeEquals("", ""));
  CHECK(ConstantTimeEquals("abc", "abc"));
  CHECK_FALSE(ConstantTimeEquals("abc", "abd"));
  CHECK_FALSE(ConstantTimeEquals("abc", "abcd"));
  CHECK_FALSE(ConstantTimeEquals("", "a"));
}

}  // namespace
}  // namespace ta::token
