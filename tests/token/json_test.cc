#include "token/json.h"

#include <catch2/catch.hpp>
#include <string>

namespace ta::token::internal {
namespace {

bool Parses(const std::string& text, int depth = kMaxJsonDepth) {
  rapidjson::Document doc;
  return ParseJsonObject(text, &doc, depth).ok();
}

std::string Nested(int depth) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += "{\"a\":";
  s += "1";
  for (int i = 0; i < depth; ++i) s += "}";
  return s;
}

TEST_CASE("Json: accepts a plain object", "[token]") {
  CHECK(Parses(R"({"a":1,"b":[true,null,"x"],"c":{"d":1.5}})"));
  CHECK(Parses("  {}  "));
}

TEST_CASE("Json: top level must be an object", "[token]") {
  CHECK_FALSE(Parses("[]"));
  CHECK_FALSE(Parses("\"s\""));
  CHECK_FALSE(Parses("1"));
  CHECK_FALSE(Parses(""));
}

TEST_CASE("Json: rejects duplicate member names at every level", "[token]") {
  CHECK_FALSE(Parses(R"({"a":1,"a":2})"));
  CHECK_FALSE(Parses(R"({"x":{"a":1,"a":1}})"));
  CHECK_FALSE(Parses(R"({"x":[{"a":1,"a":1}]})"));
  CHECK_FALSE(Parses(R"({"a":1,"\u0061":2})"));  // same name once unescaped
  CHECK(Parses(R"({"a":{"a":1},"b":{"a":1}})"));
}

TEST_CASE("Json: limits nesting depth without recursion", "[token]") {
  CHECK(Parses(Nested(kMaxJsonDepth)));  // the top-level object counts
  CHECK_FALSE(Parses(Nested(kMaxJsonDepth + 1)));
  CHECK_FALSE(Parses(Nested(100000)));
  std::string arrays = "{\"a\":" + std::string(5000, '[') + std::string(5000, ']') + "}";
  CHECK_FALSE(Parses(arrays));
}

TEST_CASE("Json: rejects invalid UTF-8 and lone surrogates", "[token]") {
  CHECK(Parses("{\"a\":\"caf\xc3\xa9\"}"));
  CHECK(Parses(R"({"a":"\ud83d\ude00"})"));
  CHECK_FALSE(Parses("{\"a\":\"\xff\"}"));
  CHECK_FALSE(Parses("{\"a\":\"\xc0\xaf\"}"));      // overlong '/'
  CHECK_FALSE(Parses("{\"a\":\"\xed\xa0\x80\"}"));  // raw surrogate
  CHECK_FALSE(Parses(R"({"a":"\udc00"})"));         // escaped lone low surrogate
  CHECK_FALSE(Parses(R"({"a":"\ud800x"})"));        // escaped lone high surrogate
  CHECK_FALSE(Parses("{\"\xff\":1}"));
}

TEST_CASE("Json: rejects trailing content and NUL bytes", "[token]") {
  CHECK_FALSE(Parses("{} {}"));
  CHECK_FALSE(Parses("{}x"));
  CHECK_FALSE(Parses(std::string("{}\0{}", 5)));
  CHECK_FALSE(Parses(std::string("{\"a\":\"\0\"}", 9)));
  CHECK(Parses(R"({"a":"\u0000"})"));
}

TEST_CASE("Json: rejects non-JSON numbers and literals", "[token]") {
  CHECK_FALSE(Parses(R"({"a":NaN})"));
  CHECK_FALSE(Parses(R"({"a":Infinity})"));
  CHECK_FALSE(Parses(R"({"a":01})"));
  CHECK_FALSE(Parses(R"({"a":1e999})"));
  CHECK_FALSE(Parses(R"({'a':1})"));
  CHECK_FALSE(Parses(R"({"a":1,})"));
}

TEST_CASE("Json: IsValidUtf8 follows RFC 3629", "[token]") {
  CHECK(IsValidUtf8(""));
  CHECK(IsValidUtf8("\xf4\x8f\xbf\xbf"));        // U+10FFFF
  CHECK_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  CHECK_FALSE(IsValidUtf8("\xe0\x80\xaf"));      // overlong
  CHECK_FALSE(IsValidUtf8("\xc3"));              // truncated
}

}  // namespace
}  // namespace ta::token::internal
