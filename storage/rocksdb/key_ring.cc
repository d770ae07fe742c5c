// The shared key ring (TokenStore::GetKeyRing / CompareAndSetKeyRing) in the meta column
// family: its version and its document, written in one batch.
#include <string>

#include "base/error.h"
#include "base/status_macros.h"
#include "storage/rocksdb/store.h"

namespace ta::storage::rocksdb_store {

absl::StatusOr<KeyRingBlob> RocksDbStore::GetKeyRing(uint64_t if_newer_than) {
  KeyRingBlob blob;
  ASSIGN_OR_RETURN(std::optional<std::string> version,
                   Read(Cf::kMeta, std::string(kKeyRingVersionKey)));
  if (!version.has_value()) return blob;
  ASSIGN_OR_RETURN(blob.version, DecodeU64Value(*version));
  if (blob.version <= if_newer_than) return blob;
  ASSIGN_OR_RETURN(std::optional<std::string> document,
                   Read(Cf::kMeta, std::string(kKeyRingDocumentKey)));
  if (!document.has_value()) {
    return ta::Error(absl::StatusCode::kDataLoss, "store_corrupt",
                     "token store: the key ring's version is stored but its document is not");
  }
  blob.document = *std::move(document);
  return blob;
}

absl::Status RocksDbStore::CompareAndSetKeyRing(uint64_t expected_version,
                                                absl::string_view document) {
  if (document.empty() || document.size() > kMaxKeyRingBytes) {
    return ta::InvalidField("document", "key ring document must be 1 byte..1 MiB");
  }
  absl::MutexLock lock(&key_ring_mu_);
  uint64_t stored = 0;
  ASSIGN_OR_RETURN(std::optional<std::string> version,
                   Read(Cf::kMeta, std::string(kKeyRingVersionKey)));
  if (version.has_value()) {
    ASSIGN_OR_RETURN(stored, DecodeU64Value(*version));
  }
  if (stored != expected_version) {
    return ta::Error(absl::StatusCode::kAborted, "key_ring_conflict",
                     "the key ring changed since it was read");
  }
  rocksdb::WriteBatch batch;
  batch.Put(Handle(Cf::kMeta), std::string(kKeyRingVersionKey),
            EncodeU64Value(expected_version + 1));
  batch.Put(Handle(Cf::kMeta), std::string(kKeyRingDocumentKey),
            rocksdb::Slice(document.data(), document.size()));
  return Write(&batch, "write the key ring");
}

}  // namespace ta::storage::rocksdb_store
