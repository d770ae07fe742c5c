// tokenctl backup and restore in pipes (issue 16, item 1): the human report and --json, the
// refusals (a used or live data directory), and a server started on the restored copy that
// verifies, rotates and still refuses what it did before.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/client/client_test_util.h"
#include "tests/client/tokenctl_test_util.h"
#include "tokenauthority/v1/token_authority.pb.h"

namespace ta::testing {
namespace {

namespace v1 = ::tokenauthority::v1;

// tokenctl against the server at `address` with the admin key in `key_file`.
ProcessResult TokenctlAt(const std::string& address, const std::string& key_file,
                         std::vector<std::string> args) {
  args.insert(args.begin(), {"--server=" + address, "--api_key_file=" + key_file});
  return RunTokenctl(args);
}

ProcessResult Restore(const std::string& backup, const std::string& data_dir,
                      std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"restore", backup, data_dir, "--server_binary=" + ServerBinary()};
  args.insert(args.end(), extra.begin(), extra.end());
  return RunTokenctl(args);
}

bool Plain(const std::string& text) {
  return text.find('\r') == std::string::npos && text.find('\x1b') == std::string::npos;
}

TEST_CASE("tokenctl: backup and restore, for people and --json, then serve the copy",
          "[tokenctl][backup]") {
  LiveServer server;
  const std::string backups = server.scratch() + "/backups";
  v1::TokenPair kept = IssueJson(server, "alice");
  v1::TokenPair ended = IssueJson(server, "bob");
  REQUIRE(Tokenctl(server, {"revoke-family", "--", ended.family_id()}).exit_code == 0);

  ProcessResult human = Tokenctl(server, {"backup", backups});
  INFO(human.out << human.err);
  REQUIRE(human.exit_code == 0);
  CHECK(absl::StartsWith(human.out, absl::StrCat("backup 1 in ", backups, ", verified\n")));
  CHECK(absl::StrContains(human.out, " new, 0 shared with earlier backups)\n"));
  CHECK(absl::StrContains(human.out, "kept:     1 backup in the directory\n"));
  CHECK(absl::StrContains(human.out, absl::StrCat("keys:     3 files in ", backups, "/keys")));
  CHECK(absl::StrContains(human.out, absl::StrCat("restore:  tokenctl restore ", backups)));
  CHECK(human.err.empty());  // no progress line in a pipe
  CHECK(Plain(human.out));

  IssueJson(server, "carol");
  auto second = Json<v1::CreateBackupResponse>(Tokenctl(server, {"backup", backups, "--json"}));
  CHECK(second.backup_id() == 2);
  CHECK(second.new_files() > 0);
  CHECK(second.new_files() < second.file_count());  // incremental
  CHECK(second.key_files() == 3);
  CHECK(second.key_dir() == backups + "/keys");
  CHECK(second.backups_kept() == 2);
  auto third =
      Json<v1::CreateBackupResponse>(Tokenctl(server, {"backup", backups, "--keep=1", "--json"}));
  CHECK(third.backup_id() == 3);
  CHECK(third.backups_kept() == 1);

  ProcessResult relative = Tokenctl(server, {"backup", "backups"});
  CHECK(relative.exit_code == 3);
  CHECK(absl::StartsWith(relative.err, "error: invalid_argument:backup_dir: "));
  // Issue 22 #7: a directory that is neither new, empty nor a backup (another server's data
  // directory) is refused, and nothing in it is touched.
  const std::string other = server.scratch() + "/other-server";
  std::filesystem::create_directories(other + "/keys");
  std::ofstream(other + "/keys/keyring.json") << "theirs";
  ProcessResult foreign = Tokenctl(server, {"backup", other});
  CHECK(foreign.exit_code != 0);
  CHECK(absl::StartsWith(foreign.err, "error: backup_dir_not_a_backup: "));
  CHECK(absl::StrContains(foreign.err, "TOKEN-AUTHORITY-BACKUP"));
  CHECK(std::filesystem::file_size(other + "/keys/keyring.json") == 6);
  CHECK_FALSE(std::filesystem::exists(other + "/rocksdb"));

  const std::string restored = server.scratch() + "/restored";
  ProcessResult restore = Restore(backups, restored);
  INFO(restore.out << restore.err);
  REQUIRE(restore.exit_code == 0);
  CHECK(absl::StartsWith(restore.out, "restored backup 3 (made "));
  CHECK(absl::StrContains(restore.out, absl::StrCat("keys: 3 files into ", restored, "/keys")));
  CHECK(absl::StrContains(restore.out,
                          absl::StrCat("serve it with: token-authority --data_dir=", restored)));
  CHECK(Plain(restore.out));

  ProcessResult again = Restore(backups, restored);
  CHECK(again.exit_code == 2);
  CHECK(absl::StrContains(again.err, "data_dir_not_empty"));
  CHECK(absl::StrContains(again.err, restored));
  const std::string live_dir = std::filesystem::path(server.key_file()).parent_path().string();
  ProcessResult live = Restore(backups, live_dir);
  CHECK(live.exit_code == 2);
  CHECK(absl::StrContains(live.err, "data_dir_in_use"));
  ProcessResult nothing = Restore(server.scratch() + "/nothing", server.scratch() + "/new");
  CHECK(nothing.exit_code == 2);
  CHECK(absl::StrContains(nothing.err, "backup_not_found"));
  CHECK_FALSE(std::filesystem::exists(server.scratch() + "/new"));

  ProcessResult json = Restore(backups, server.scratch() + "/restored2", {"--json"});
  CHECK(json.exit_code == 0);
  CHECK(absl::StartsWith(json.out, "{\"backupId\":3,"));
  CHECK(absl::StrContains(json.out, "\"keyFiles\":3}"));
  CHECK(json.out.find('\n') == json.out.size() - 1);

  // A server on the copy: the old access token verifies, the old refresh token rotates, the
  // revoked session stays revoked.
  LiveServer copy({"--data_dir=" + restored});
  const std::string key = restored + "/admin.key";
  auto active = Json<v1::IntrospectResponse>(
      TokenctlAt(copy.address(), key, {"introspect", kept.access_token(), "--json"}));
  CHECK(active.active());
  CHECK(active.subject() == "alice");
  auto next = Json<v1::TokenPair>(
      TokenctlAt(copy.address(), key, {"refresh", kept.refresh_token(), "--json"}));
  CHECK(next.family_id() == kept.family_id());
  auto revoked = Json<v1::IntrospectResponse>(TokenctlAt(
      copy.address(), key, {"introspect", ended.access_token(), "--include_reason", "--json"}));
  CHECK_FALSE(revoked.active());
  CHECK(revoked.inactive_reason() == "family_revoked");
}

}  // namespace
}  // namespace ta::testing
