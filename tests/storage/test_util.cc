#include "tests/storage/test_util.h"

#include <stdlib.h>

#include <filesystem>
#include <system_error>
#include <vector>

#include "rocksdb/db.h"

namespace ta::storage::testing {

std::string FamilyIdFor(uint64_t n) {
  std::string id(16, '\0');
  uint64_t mixed = n * 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < 8; ++i) {
    id[i] = static_cast<char>(mixed >> (8 * i));
    id[8 + i] = static_cast<char>(n >> (8 * i));
  }
  return id;
}

FamilyRecord MakeFamily(absl::string_view id, absl::string_view subject, absl::Time now) {
  FamilyRecord f;
  f.family_id = std::string(id);
  f.subject = std::string(subject);
  f.client_id = "client-a";
  f.audience = {"api://orders", "api://billing"};
  f.scope = "read write";
  f.metadata = {{"device", "laptop"}, {"ip", "192.0.2.7"}};
  f.issued_by = "issuer-svc";
  f.created_at = now;
  f.expires_at = now + absl::Hours(24 * 30);
  f.rotated_at = now;
  return f;
}

RefreshRecord MakeRefresh(absl::string_view id, uint64_t generation, absl::Time now) {
  RefreshRecord r;
  r.family_id = std::string(id);
  r.generation = generation;
  r.secret_hash = std::string(32, static_cast<char>('a' + generation % 26));
  r.scope = "read write";
  r.issued_at = now;
  r.expires_at = now + absl::Hours(24);
  return r;
}

RotateRequest MakeRotate(absl::string_view id, uint64_t generation, absl::Time now,
                         absl::Duration grace, absl::string_view subject) {
  RotateRequest req;
  req.family_id = std::string(id);
  req.subject = std::string(subject);
  req.generation = generation;
  req.now = now;
  req.grace = grace;
  req.successor = MakeRefresh(id, generation + 1, now);
  return req;
}

SubjectUpdate MakeSubjectUpdate(absl::string_view subject, absl::Time now,
                                std::optional<absl::Time> not_before,
                                std::optional<absl::Time> block_until) {
  SubjectUpdate u;
  u.subject = std::string(subject);
  u.now = now;
  u.not_before = not_before;
  u.block_until = block_until;
  u.reason = "test";
  u.revoked_by = "tests";
  return u;
}

ListFamiliesQuery MakeQuery(absl::string_view subject, absl::Time now, bool include_revoked) {
  ListFamiliesQuery q;
  q.subject = std::string(subject);
  q.now = now;
  q.include_revoked = include_revoked;
  return q;
}

namespace {

class RawDbImpl final : public RawDb {
 public:
  RawDbImpl(std::unique_ptr<rocksdb::DB> db,
            std::vector<std::unique_ptr<rocksdb::ColumnFamilyHandle>> handles)
      : db_(std::move(db)), handles_(std::move(handles)) {}
  ~RawDbImpl() override { handles_.clear(); }

  void Put(Cf cf, const std::string& key, const std::string& value) override {
    rocksdb::WriteOptions sync;
    sync.sync = true;
    if (!db_->Put(sync, H(cf), key, value).ok()) abort();
  }
  void Delete(Cf cf, const std::string& key) override {
    rocksdb::WriteOptions sync;
    sync.sync = true;
    if (!db_->Delete(sync, H(cf), key).ok()) abort();
  }
  std::optional<std::string> Get(Cf cf, const std::string& key) override {
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), H(cf), key, &value);
    if (s.IsNotFound()) return std::nullopt;
    if (!s.ok()) abort();
    return value;
  }
  size_t Count(Cf cf) override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), H(cf)));
    size_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
    return n;
  }
  std::vector<std::pair<std::string, std::string>> Scan(Cf cf) override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), H(cf)));
    std::vector<std::pair<std::string, std::string>> rows;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      rows.emplace_back(it->key().ToString(), it->value().ToString());
    }
    if (!it->status().ok()) abort();
    return rows;
  }

 private:
  rocksdb::ColumnFamilyHandle* H(Cf cf) { return handles_[static_cast<int>(cf)].get(); }
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<std::unique_ptr<rocksdb::ColumnFamilyHandle>> handles_;
};

}  // namespace

std::unique_ptr<RawDb> RawDb::Open(const std::string& path) {
  rocksdb::Options options;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const CfInfo& info : kColumnFamilies)
    descriptors.emplace_back(std::string(info.name), options);
  std::vector<rocksdb::ColumnFamilyHandle*> raw_handles;
  rocksdb::DB* raw_db = nullptr;
  if (!rocksdb::DB::Open(options, path, descriptors, &raw_handles, &raw_db).ok()) return nullptr;
  return std::make_unique<RawDbImpl>(std::unique_ptr<rocksdb::DB>(raw_db),
                                     std::vector<std::unique_ptr<rocksdb::ColumnFamilyHandle>>(
                                         raw_handles.begin(), raw_handles.end()));
}

}  // namespace ta::storage::testing
