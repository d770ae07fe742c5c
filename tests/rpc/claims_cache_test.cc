// The claims an Introspect answer carries are rendered once and attached as wire bytes
// (server/rpc/claims_cache.h). These check that a client reads exactly the Struct that
// protobuf's own JSON parser builds from the same claims, through the real ToProto path.
#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "server/rpc/claims_cache.h"
#include "server/rpc/convert.h"

namespace ta::rpc {
namespace {

const std::vector<std::string>& Samples() {
  static const std::vector<std::string> samples = {
      R"({"sub":"alice","iat":1700000000,"exp":1700000300,"aud":["api","billing"]})",
      R"({"nested":{"a":[1,2.5,-3e2,{"b":null}],"t":true,"f":false},"empty":{},"list":[]})",
      R"({"unicode":"żółw 🐢 \u0000 \"quoted\"","big":9007199254740993,"neg":-0.0})",
      R"({})",
  };
  return samples;
}

google::protobuf::Struct ParsedByProtobuf(const std::string& json) {
  google::protobuf::Struct expected;
  REQUIRE(google::protobuf::util::JsonStringToMessage(json, &expected).ok());
  return expected;
}

TEST_CASE("ClaimsCache: rendered bytes parse to the Struct protobuf builds from the JSON",
          "[rpc][claims]") {
  ClaimsCache cache(1 << 20);
  for (const std::string& json : Samples()) {
    INFO(json);
    absl::StatusOr<std::shared_ptr<const std::string>> bytes = cache.Render(json);
    REQUIRE(bytes.ok());
    google::protobuf::Struct got;
    REQUIRE(got.ParseFromString(**bytes));
    CHECK(google::protobuf::util::MessageDifferencer::Equals(got, ParsedByProtobuf(json)));
    // A second render is the cached object itself.
    CHECK(cache.Render(json).value() == *bytes);
  }
}

TEST_CASE("ClaimsCache: a client reads the claims field of an answer built by ToProto",
          "[rpc][claims]") {
  ClaimsCache cache(1 << 20);
  core::Introspection in;
  in.active = true;
  in.token_type = "access_token";
  in.subject = "alice";
  in.audience = {"api"};
  in.claims_json = Samples()[1];
  v1::IntrospectResponse answer;
  REQUIRE(ToProto(in, false, cache, &answer).ok());
  v1::IntrospectResponse received;
  REQUIRE(received.ParseFromString(answer.SerializeAsString()));
  CHECK(received.active());
  CHECK(received.subject() == "alice");
  // The bytes landed in the claims field, not among the unknown ones.
  CHECK(received.GetReflection()->GetUnknownFields(received).empty());
  CHECK(google::protobuf::util::MessageDifferencer::Equals(received.claims(),
                                                           ParsedByProtobuf(Samples()[1])));
}

TEST_CASE("ClaimsCache: an inactive answer carries no claims", "[rpc][claims]") {
  ClaimsCache cache(1 << 20);
  core::Introspection in;
  in.active = false;
  in.inactive_reason = "token_revoked";
  in.claims_json = Samples()[0];
  v1::IntrospectResponse answer;
  REQUIRE(ToProto(in, true, cache, &answer).ok());
  v1::IntrospectResponse received;
  REQUIRE(received.ParseFromString(answer.SerializeAsString()));
  CHECK_FALSE(received.has_claims());
  CHECK(received.inactive_reason() == "token_revoked");
}

TEST_CASE("ClaimsCache: not an object is INTERNAL, never a partial answer", "[rpc][claims]") {
  ClaimsCache cache(1 << 20);
  for (const char* bad : {"[1,2]", "\"text\"", "{\"a\":", "{\"a\":1} trailing", ""}) {
    INFO(bad);
    absl::StatusOr<std::shared_ptr<const std::string>> bytes = cache.Render(bad);
    CHECK(bytes.status().code() == absl::StatusCode::kInternal);
  }
}

TEST_CASE("ClaimsCache: bounded, and correct under concurrent renders", "[rpc][claims]") {
  ClaimsCache cache(16 * 400);  // ~2 entries per shard: forces clears while threads read
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        std::string json = "{\"jti\":\"" + std::to_string((i * 7 + t) % 300) + "\"}";
        absl::StatusOr<std::shared_ptr<const std::string>> bytes = cache.Render(json);
        google::protobuf::Struct got;
        if (!bytes.ok() || !got.ParseFromString(**bytes) ||
            got.fields().at("jti").string_value() != std::to_string((i * 7 + t) % 300)) {
          ++mismatches;
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  CHECK(mismatches == 0);
  CHECK(cache.bytes() <= 16 * 400);
}

}  // namespace
}  // namespace ta::rpc
