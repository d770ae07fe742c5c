// The audit trail (issue 16): every security action written exactly once as a JSON line with
// who, what and how it ended; never a token, a secret or a key; the file reopened for
// logrotate.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "rapidjson/document.h"
#include "server/audit_log.h"
#include "tests/support/test_server.h"

namespace ta::testing {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Each line of the log parsed; a line that is not a JSON object fails the test.
std::vector<std::map<std::string, std::string>> Events(const std::string& path) {
  std::vector<std::map<std::string, std::string>> events;
  std::istringstream lines(Slurp(path));
  for (std::string line; std::getline(lines, line);) {
    rapidjson::Document doc;
    doc.Parse(line.c_str());
    INFO(line);
    REQUIRE_FALSE(doc.HasParseError());
    REQUIRE(doc.IsObject());
    std::map<std::string, std::string>& event = events.emplace_back();
    for (const auto& member : doc.GetObject()) {
      REQUIRE(member.value.IsString());
      event[member.name.GetString()] = member.value.GetString();
    }
  }
  return events;
}

TEST_CASE("Audit: every security action is written once, and no token or key ever is",
          "[audit]") {
  const std::string admin_key = "admin-key-0123456789", resource_key = "resource-key-0123456789";
  TestServer s([&](ServerOptions& o) {
    UseCallers(o, {{"ops", "admin", admin_key}, {"api", "resource", resource_key}});
  });
  using A = v1::TokenAuthority::Stub;
  using D = v1::TokenAdmin::Stub;
  v1::IssueTokensRequest issue;
  issue.set_subject("alice");
  issue.set_client_id("web");
  v1::TokenPair pair, next, other;
  REQUIRE(CallAs(admin_key, s.api(), &A::IssueTokens, issue, &pair).ok());
  v1::RefreshTokensRequest refresh;
  refresh.set_refresh_token(pair.refresh_token());
  REQUIRE(CallAs(admin_key, s.api(), &A::RefreshTokens, refresh, &next).ok());
  REQUIRE(CallAs(admin_key, s.api(), &A::RefreshTokens, refresh, &next).reason ==
          "refresh_token_reused");
  REQUIRE(CallAs(admin_key, s.api(), &A::IssueTokens, issue, &other).ok());
  v1::RevokeTokenRequest revoke_token;
  revoke_token.set_token(other.access_token());
  v1::RevokeTokenResponse revoked_token;
  REQUIRE(CallAs(admin_key, s.api(), &A::RevokeToken, revoke_token, &revoked_token).ok());
  v1::RevokeFamilyRequest revoke_family;
  revoke_family.set_family_id(other.family_id());
  revoke_family.set_reason("logout");
  v1::RevokeFamilyResponse revoked_family;
  REQUIRE(CallAs(admin_key, s.api(), &A::RevokeFamily, revoke_family, &revoked_family).ok());
  v1::RevokeSubjectRequest revoke_subject;
  revoke_subject.set_subject("bob");
  revoke_subject.set_reason("password_change");
  v1::RevokeSubjectResponse revoked_subject;
  REQUIRE(CallAs(admin_key, s.admin(), &D::RevokeSubject, revoke_subject, &revoked_subject).ok());
  v1::RotateSigningKeyResponse rotated;
  REQUIRE(CallAs(admin_key, s.admin(), &D::RotateSigningKey, v1::RotateSigningKeyRequest(), &rotated)
              .ok());
  v1::ListFamiliesRequest list;
  list.set_subject("alice");
  v1::ListFamiliesResponse listed;
  REQUIRE(CallAs(admin_key, s.admin(), &D::ListFamilies, list, &listed).ok());
  v1::GetFamilyRequest get;
  get.set_family_id(pair.family_id());
  v1::Family family;
  REQUIRE(CallAs(admin_key, s.admin(), &D::GetFamily, get, &family).ok());
  // A backup (on PostgreSQL refused with backup_not_supported: audited all the same).
  TempDir backups;
  v1::CreateBackupRequest backup;
  backup.set_backup_dir(backups.Sub("b"));
  v1::CreateBackupResponse made;
  CallAs(admin_key, s.admin(), &D::CreateBackup, backup, &made);
  // Refused callers: a wrong key, and a known caller without the role.
  CHECK(CallAs("wrong-key", s.api(), &A::IssueTokens, issue, &other).reason == "unauthenticated");
  CHECK(CallAs(resource_key, s.api(), &A::IssueTokens, issue, &other).reason ==
        "permission_denied");
  // Introspection and JWKS are not security events.
  v1::IntrospectRequest introspect;
  introspect.set_token(next.access_token());
  v1::IntrospectResponse answer;
  REQUIRE(CallAs(resource_key, s.api(), &A::Introspect, introspect, &answer).ok());

  const std::string path = s.data_dir() + "/audit.log";
  std::map<std::string, int> count;
  std::map<std::string, std::map<std::string, std::string>> last;
  for (const auto& event : Events(path)) {
    CHECK(event.count("time") == 1);
    CHECK(event.count("outcome") == 1);
    ++count[event.at("action")];
    last[event.at("action")] = event;
  }
  CHECK(count == std::map<std::string, int>{{"session.issue", 2},
                                            {"session.refresh", 1},
                                            {"session.reuse_detected", 1},
                                            {"revoke.token", 1},
                                            {"revoke.family", 1},
                                            {"revoke.subject", 1},
                                            {"key.rotate", 1},
                                            {"admin.list_sessions", 1},
                                            {"admin.get_session", 1},
                                            {"admin.backup", 1},
                                            {"auth.refused", 2}});
  CHECK(last["session.refresh"]["reason"] == "rotated");
  CHECK(last["session.refresh"]["family_id"] == pair.family_id());
  CHECK(last["session.refresh"]["subject"] == "alice");
  CHECK(last["session.reuse_detected"]["outcome"] == "refused");
  CHECK(last["session.reuse_detected"]["reason"] == "refresh_token_reused");
  CHECK(last["revoke.token"]["jti"].size() == 22);
  CHECK(last["revoke.family"]["note"] == "logout");
  CHECK(last["revoke.family"]["caller"] == "ops");
  CHECK(last["revoke.subject"]["subject"] == "bob");
  CHECK(last["key.rotate"]["kid"] == rotated.kid());
  CHECK(last["admin.get_session"]["family_id"] == pair.family_id());
  CHECK(last["admin.backup"]["note"] == backups.Sub("b"));
  CHECK(last["admin.backup"]["caller"] == "ops");
  CHECK(last["auth.refused"]["caller"] == "api");
  CHECK(last["auth.refused"]["reason"] == "permission_denied");
  CHECK(last["auth.refused"]["rpc"] == "IssueTokens");

  // Nothing secret: tokens (and the secret part of refresh tokens), API keys, key files.
  const std::string log = Slurp(path);
  std::vector<std::string> secrets = {admin_key, resource_key, "wrong-key"};
  for (const v1::TokenPair* p : {&pair, &next, &other}) {
    secrets.push_back(p->access_token());
    secrets.push_back(p->access_token().substr(p->access_token().rfind('.') + 1));  // signature
    secrets.push_back(p->refresh_token());
    secrets.push_back(p->refresh_token().substr(p->refresh_token().size() - 30));
  }
  // Key files with RocksDB; with PostgreSQL the ring is sealed in the store under the KEK.
  std::vector<std::string> key_files;
  if (std::filesystem::exists(s.data_dir() + "/keys")) {
    for (const auto& file : std::filesystem::directory_iterator(s.data_dir() + "/keys")) {
      key_files.push_back(file.path());
    }
  }
  if (!s.options().key_encryption_key_file.empty()) {
    key_files.push_back(s.options().key_encryption_key_file);
  }
  CHECK_FALSE(key_files.empty());
  for (const std::string& file : key_files) {
    std::istringstream lines(Slurp(file));
    for (std::string line; std::getline(lines, line);) {
      if (line.size() >= 24 && line.find("-----") == std::string::npos &&
          line.find('{') == std::string::npos) {
        secrets.push_back(line.substr(0, 24));  // private key / secret material
      }
    }
  }
  for (const std::string& secret : secrets) {
    INFO(secret.substr(0, 8));
    CHECK(log.find(secret) == std::string::npos);
  }
}

TEST_CASE("Audit: the log file is reopened after logrotate moved it", "[audit]") {
  TempDir dir;
  const std::string path = dir.Sub("audit.log");
  absl::StatusOr<std::unique_ptr<AuditLog>> audit = AuditLog::Open(path);
  REQUIRE(audit.ok());
  core::AuditEvent event{.action = "revoke.subject", .subject = "first"};
  (*audit)->Record(event);
  REQUIRE(std::rename(path.c_str(), dir.Sub("audit.log.1").c_str()) == 0);
  event.subject = "second";
  (*audit)->Record(event);  // still the moved file, as logrotate expects until the signal
  REQUIRE((*audit)->Reopen().ok());
  event.subject = "third";
  (*audit)->Record(event);
  std::vector<std::map<std::string, std::string>> old_events = Events(dir.Sub("audit.log.1"));
  std::vector<std::map<std::string, std::string>> new_events = Events(path);
  REQUIRE(old_events.size() == 2);
  REQUIRE(new_events.size() == 1);
  CHECK(new_events[0]["subject"] == "third");
  CHECK((std::filesystem::status(path).permissions() & std::filesystem::perms::others_read) ==
        std::filesystem::perms::none);
  CHECK((*audit)->dropped() == 0);
}

TEST_CASE("Audit: special characters stay inside their JSON string", "[audit]") {
  core::AuditEvent event{.action = "revoke.subject",
                         .subject = "mallory\"},\n{\"action\":\"forged",
                         .note = "tab\there\x01"};
  const std::string line = AuditLog::Format(event);
  CHECK(line.find('\n') == line.size() - 1);  // one line, whatever the input
  rapidjson::Document doc;
  doc.Parse(line.c_str());
  REQUIRE_FALSE(doc.HasParseError());
  CHECK(std::string(doc["subject"].GetString()) == event.subject);
  CHECK(std::string(doc["action"].GetString()) == "revoke.subject");
}

}  // namespace
}  // namespace ta::testing
