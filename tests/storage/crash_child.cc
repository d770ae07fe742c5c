// Child process of crash_test.cc: opens the store at argv[1] and performs acknowledged writes
// forever, printing one line per write to stdout only after the call returned OK. The parent
// SIGKILLs it at a random moment and then checks every acknowledged write is on disk.
//
// Lines (ids are hex): "create <id>", "rotate <id> <gen>", "revoke <id>", "deny <jti>",
// "subject <name> <not_before_micros>".
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "storage/rocksdb/rocksdb_store.h"
#include "tests/storage/test_util.h"

namespace {

using namespace ta::storage;  // NOLINT: test binary

// One write(2) per line: a line is either wholly in the pipe or not at all.
void Ack(const std::string& line) {
  std::string out = line + "\n";
  if (write(STDOUT_FILENO, out.data(), out.size()) != static_cast<ssize_t>(out.size())) _exit(3);
}

void Check(const absl::Status& s) {
  if (!s.ok()) {
    fprintf(stderr, "crash_child: %s\n", s.ToString().c_str());
    _exit(2);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return 1;
  const uint64_t round = std::strtoull(argv[2], nullptr, 10);
  RocksDbStoreOptions options;
  options.path = argv[1];
  absl::StatusOr<std::unique_ptr<TokenStore>> opened = OpenRocksDbStore(options);
  Check(opened.status());
  TokenStore& store = **opened;
  Ack("open");
  for (uint64_t i = 0;; ++i) {
    const absl::Time now = absl::Now();
    const std::string id = testing::FamilyIdFor((round << 32) | i);
    const std::string hex = absl::BytesToHexString(id);
    Check(store.CreateFamily(testing::MakeFamily(id, "crash-subject", now),
                             testing::MakeRefresh(id, 0, now), std::nullopt));
    Ack("create " + hex);
    for (uint64_t gen = 0; gen < 2; ++gen) {
      absl::StatusOr<RotateOutcome> out = store.Rotate(testing::MakeRotate(id, gen, now, absl::ZeroDuration(), "crash-subject"));
      Check(out.status());
      if (out->result != RotateResult::kRotated) _exit(4);
      Ack(absl::StrCat("rotate ", hex, " ", gen + 1));
    }
    Check(store.RevokeFamily(id, "logout", "crash-child", now).status());
    Ack("revoke " + hex);
    const std::string jti = absl::StrCat("jti-", round, "-", i);
    Check(store.DenyJti(jti, now + absl::Hours(1)));
    Ack("deny " + jti);
    const std::string subject = absl::StrCat("subject-", round, "-", i);
    Check(store.UpdateSubject(testing::MakeSubjectUpdate(subject, now, now, now + absl::Hours(1)))
              .status());
    Ack(absl::StrCat("subject ", subject, " ", absl::ToUnixMicros(now)));
  }
}
