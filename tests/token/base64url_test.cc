#include "token/base64url.h"

#include <catch2/catch.hpp>
#include <string>

namespace ta::token {
namespace {

// RFC 4648 §10 test vectors, in the unpadded base64url form.
TEST_CASE("Base64Url: RFC 4648 section 10 vectors round-trip", "[token]") {
  const std::pair<std::string, std::string> kVectors[] = {
      {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},         {"foo", "Zm9v"},
      {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : kVectors) {
    CHECK(Base64UrlEncode(plain) == encoded);
    auto decoded = Base64UrlDecode(encoded);
    REQUIRE(decoded.ok());
    CHECK(*decoded == plain);
  }
}

TEST_CASE("Base64Url: uses the URL-safe alphabet", "[token]") {
  CHECK(Base64UrlEncode(std::string("\xfb\xff", 2)) == "-_8");
  CHECK(Base64UrlDecode("-_8").value() == std::string("\xfb\xff", 2));
  CHECK_FALSE(Base64UrlDecode("+/8").ok());
}

TEST_CASE("Base64Url: rejects padding", "[token]") {
  CHECK_FALSE(Base64UrlDecode("Zg==").ok());
  CHECK_FALSE(Base64UrlDecode("Zm8=").ok());
  CHECK_FALSE(Base64UrlDecode("====").ok());
}

TEST_CASE("Base64Url: rejects whitespace and non-alphabet bytes", "[token]") {
  CHECK_FALSE(Base64UrlDecode("Zm9v YmFy").ok());
  CHECK_FALSE(Base64UrlDecode("Zm9v\nYmFy").ok());
  CHECK_FALSE(Base64UrlDecode(" Zm9v").ok());
  CHECK_FALSE(Base64UrlDecode("Zm9v.").ok());
  CHECK_FALSE(Base64UrlDecode(std::string("Zm\0v", 4)).ok());
  CHECK_FALSE(Base64UrlDecode("Zm9\xc3\xa9").ok());
}

TEST_CASE("Base64Url: rejects impossible lengths", "[token]") {
  CHECK_FALSE(Base64UrlDecode("Z").ok());
  CHECK_FALSE(Base64UrlDecode("Zm9vY").ok());
}

TEST_CASE("Base64Url: rejects non-zero trailing bits", "[token]") {
  CHECK(Base64UrlDecode("Zg").ok());
  CHECK_FALSE(Base64UrlDecode("Zh").ok());  // 'h' leaves bits 0001
  CHECK(Base64UrlDecode("Zm8").ok());
  CHECK_FALSE(Base64UrlDecode("Zm9").ok());  // '9' leaves bits 01
}

TEST_CASE("Base64Url: every byte value round-trips", "[token]") {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (size_t len = 0; len <= all.size(); len += 37) {
    std::string part = all.substr(0, len);
    CHECK(Base64UrlDecode(Base64UrlEncode(part)).value() == part);
  }
}

}  // namespace
}  // namespace ta::token
