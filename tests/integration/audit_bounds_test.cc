// Issue 22 (suspected, both held): every unauthenticated gRPC call wrote an "auth.refused"
// line, so refused traffic could fill the disk; and U+2028/U+2029/U+0085 were written raw,
// so line-oriented readers split one event into two.
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "base/clock.h"
#include "rapidjson/document.h"
#include "server/audit_log.h"
#include "tests/support/test_server.h"

namespace ta::testing {
namespace {

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<rapidjson::Document> Refusals(const std::string& path) {
  std::vector<rapidjson::Document> out;
  for (const std::string& line : Lines(path)) {
    rapidjson::Document doc;
    doc.Parse(line.c_str());
    INFO(line);
    REQUIRE_FALSE(doc.HasParseError());
    if (std::string(doc["action"].GetString()) == "auth.refused") out.push_back(std::move(doc));
  }
  return out;
}

TEST_CASE("Audit: a flood of refused calls writes one line per peer and reason, then a count",
          "[audit]") {
  TestServer s;
  const std::string path = s.data_dir() + "/audit.log";
  v1::IssueTokensRequest issue;
  issue.set_subject("alice");
  issue.set_client_id("web");
  v1::TokenPair out;
  for (int i = 0; i < 300; ++i) {
    CallResult r =
        CallAs("wrong-key", s.api(), &v1::TokenAuthority::Stub::IssueTokens, issue, &out);
    REQUIRE(r.reason == "unauthenticated");
  }
  for (int i = 0; i < 50; ++i) {
    CallResult r = CallAs("", s.api(), &v1::TokenAuthority::Stub::IssueTokens, issue, &out);
    REQUIRE(r.reason == "unauthenticated");
  }
  std::vector<rapidjson::Document> refused = Refusals(path);
  REQUIRE(refused.size() == 1);  // same peer, same reason: the first only, for now
  CHECK(std::string(refused[0]["peer"].GetString()) == "ipv4:127.0.0.1");
  CHECK(std::string(refused[0]["reason"].GetString()) == "unauthenticated");

  s.Restart();  // the log is closed: what was counted is written
  refused = Refusals(path);
  REQUIRE(refused.size() == 2);
  CHECK(std::string(refused[1]["count"].GetString()) == "349");
  CHECK(std::string(refused[1]["peer"].GetString()) == "ipv4:127.0.0.1");
  CHECK(std::string(refused[1]["reason"].GetString()) == "unauthenticated");
}

TEST_CASE("Audit: refusals are summarised per interval, and distinct peers are capped", "[audit]") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.Sub("audit.log");
  {
    auto log = AuditLog::Open(path, {.interval = absl::Seconds(60), .max_keys = 3}, &clock);
    REQUIRE(log.ok());
    for (int peer = 0; peer < 50; ++peer) {
      for (int i = 0; i < 10; ++i) {
        core::AuditEvent e;
        e.action = "auth.refused";
        e.outcome = "refused";
        e.reason = "unauthenticated";
        e.rpc = "IssueTokens";
        e.peer = "ipv4:10.0.0." + std::to_string(peer);
        (*log)->Record(e);
      }
    }
    // 3 peers listed, then one shared "*" key: 4 lines.
    CHECK(Refusals(path).size() == 4);
    clock.Advance(absl::Seconds(61));
    core::AuditEvent other;
    other.action = "session.issue";
    other.outcome = "ok";
    (*log)->Record(other);  // the interval has ended: its summaries come first
    std::vector<rapidjson::Document> refused = Refusals(path);
    REQUIRE(refused.size() == 8);
    uint64_t total = 0;
    for (size_t i = 4; i < refused.size(); ++i)
      total += std::stoull(refused[i]["count"].GetString());
    CHECK(total == 500 - 4);
    CHECK(Lines(path).size() == 9);
  }
  CHECK(Lines(path).size() == 9);  // nothing left to summarise at close
}

TEST_CASE(
    "Audit: refreshes refused to public clients are collapsed per address; reuse "
    "detections and authenticated callers' refusals are all written",
    "[audit]") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.Sub("audit.log");
  auto log = AuditLog::Open(path, {.interval = absl::Seconds(60), .max_keys = 10}, &clock);
  REQUIRE(log.ok());
  auto event = [](const std::string& action, const std::string& peer) {
    core::AuditEvent e;
    e.action = action;
    e.outcome = "refused";
    e.reason = "invalid_grant";
    e.caller = peer.empty() ? "mobile-bff" : "public-client";
    e.rpc = "RefreshTokens";
    e.peer = peer;
    return e;
  };
  for (int i = 0; i < 200; ++i) (*log)->Record(event("session.refresh", "203.0.113.9"));
  for (int i = 0; i < 5; ++i) (*log)->Record(event("session.refresh", ""));
  for (int i = 0; i < 3; ++i) (*log)->Record(event("session.reuse_detected", "203.0.113.9"));
  // 1 (the public client's first) + 5 (authenticated) + 3 (reuse: a family revoked each).
  CHECK(Lines(path).size() == 9);
  clock.Advance(absl::Seconds(61));
  core::AuditEvent other;
  other.action = "session.issue";
  other.outcome = "ok";
  (*log)->Record(other);
  std::vector<std::string> lines = Lines(path);
  REQUIRE(lines.size() == 11);
  rapidjson::Document summary;
  summary.Parse(lines[9].c_str());
  REQUIRE_FALSE(summary.HasParseError());
  CHECK(std::string(summary["action"].GetString()) == "session.refresh");
  CHECK(std::string(summary["peer"].GetString()) == "203.0.113.9");
  CHECK(std::string(summary["count"].GetString()) == "199");
}

TEST_CASE(
    "Audit: U+2028, U+2029 and U+0085 are escaped, so every event is one line for "
    "any reader",
    "[audit]") {
  core::AuditEvent event;
  event.action = "revoke.subject";
  event.subject =
      "a\xE2\x80\xA8"
      "b\xE2\x80\xA9"
      "c\xC2\x85"
      "d";
  event.note = "\xE2\x80\xA8";
  const std::string line = AuditLog::Format(event);
  CHECK(line.find("\xE2\x80\xA8") == std::string::npos);
  CHECK(line.find("\xE2\x80\xA9") == std::string::npos);
  CHECK(line.find("\xC2\x85") == std::string::npos);
  CHECK(line.find("\\u2028") != std::string::npos);
  CHECK(line.find('\n') == line.size() - 1);
  rapidjson::Document doc;
  doc.Parse(line.c_str());
  REQUIRE_FALSE(doc.HasParseError());
  CHECK(std::string(doc["subject"].GetString()) == event.subject);  // the same text, decoded
  CHECK(std::string(doc["note"].GetString()) == event.note);
}

}  // namespace
}  // namespace ta::testing
