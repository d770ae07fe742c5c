#include "server/token/key_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "token/json.h"

namespace ta::token::internal {
namespace {

constexpr int kManifestVersion = 1;
constexpr int kSealedRingFormat = 2;  // SealedRingEnvelope

std::string PathOf(const std::string& dir, absl::string_view name) {
  return absl::StrCat(dir, "/", name);
}

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  int err = errno;
  absl::StatusCode code = err == EACCES || err == EPERM ? absl::StatusCode::kPermissionDenied
                                                        : absl::StatusCode::kUnavailable;
  return absl::Status(code, absl::StrCat(what, " ", path, ": ", std::strerror(err)));
}

absl::Status ManifestError(absl::string_view why) {
  return absl::FailedPreconditionError(absl::StrCat(kManifestFile, ": ", why));
}

absl::StatusOr<absl::Time> ReadTime(const rapidjson::Value& v) {
  if (!v.IsInt64() || v.GetInt64() < 0) return ManifestError("time is not a unix second count");
  return absl::FromUnixSeconds(v.GetInt64());
}

absl::Status ReadEntryMember(absl::string_view name, const rapidjson::Value& v, ManifestEntry* e) {
  if (name == "file" && v.IsString() && IsPlainFileName(StringOf(v))) {
    e->file.assign(v.GetString(), v.GetStringLength());
  } else if (name == "alg" && v.IsString()) {
    absl::StatusOr<Algorithm> alg = ParseAlgorithm(StringOf(v));
    if (!alg.ok()) return ManifestError("unknown alg");
    e->alg = *alg;
  } else if (name == "created_at") {
    ASSIGN_OR_RETURN(e->created_at, ReadTime(v));
  } else if (name == "retire_at") {
    ASSIGN_OR_RETURN(e->retire_at, ReadTime(v));
  } else if (name == "sign_from") {
    ASSIGN_OR_RETURN(e->sign_from, ReadTime(v));
  } else if (name == "active" && v.IsBool()) {
    e->active = v.GetBool();
  } else if (name == "sealed" && v.IsString() && v.GetStringLength() > 0) {
    e->sealed.assign(v.GetString(), v.GetStringLength());
  } else {
    return ManifestError(absl::StrCat("bad or unknown member \"", name, "\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<ManifestEntry> ReadEntry(const rapidjson::Value& v) {
  if (!v.IsObject()) return ManifestError("key entry is not an object");
  ManifestEntry e;
  for (const auto& m : v.GetObject()) {
    RETURN_IF_ERROR(ReadEntryMember(StringOf(m.name), m.value, &e));
  }
  if (e.file.empty() || !v.HasMember("alg")) return ManifestError("key entry needs file and alg");
  return e;
}

absl::Status WriteAll(int fd, absl::string_view contents, const std::string& path) {
  while (!contents.empty()) {
    ssize_t n = ::write(fd, contents.data(), contents.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoError("write", path);
    contents.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open", dir);
  absl::Cleanup closer = [fd] { ::close(fd); };
  if (::fsync(fd) != 0) return ErrnoError("fsync", dir);
  return absl::OkStatus();
}

}  // namespace

bool IsPlainFileName(absl::string_view name) {
  return !name.empty() && name[0] != '.' && name.find('/') == absl::string_view::npos &&
         name.find('\0') == absl::string_view::npos;
}

absl::StatusOr<std::vector<ManifestEntry>> ParseManifest(absl::string_view json) {
  rapidjson::Document doc;
  absl::Status parsed = ParseJsonObject(json, &doc);
  if (!parsed.ok()) return ManifestError(parsed.message());
  auto version = doc.FindMember("version");
  auto keys = doc.FindMember("keys");
  if (version == doc.MemberEnd() || !version->value.IsInt() ||
      version->value.GetInt() != kManifestVersion || keys == doc.MemberEnd() ||
      !keys->value.IsArray() || doc.MemberCount() != 2) {
    return ManifestError("expected {\"version\":1,\"keys\":[...]}");
  }
  std::vector<ManifestEntry> entries;
  for (const auto& item : keys->value.GetArray()) {
    ASSIGN_OR_RETURN(ManifestEntry e, ReadEntry(item));
    if (!e.sealed.empty()) return ManifestError("\"sealed\" belongs in a shared ring only");
    entries.push_back(std::move(e));
  }
  return entries;
}

absl::StatusOr<SharedRingDocument> ParseSharedRing(absl::string_view json) {
  rapidjson::Document doc;
  absl::Status parsed = ParseJsonObject(json, &doc);
  if (!parsed.ok()) return ManifestError(parsed.message());
  SharedRingDocument ring;
  bool have_version = false, have_keys = false;
  for (const auto& m : doc.GetObject()) {
    const absl::string_view name = StringOf(m.name);
    if (name == "version" && m.value.IsInt() && m.value.GetInt() == kManifestVersion) {
      have_version = true;
    } else if (name == "kek" && m.value.IsString()) {
      ring.kek_id.assign(m.value.GetString(), m.value.GetStringLength());
    } else if (name == "refresh" && m.value.IsString()) {
      ring.sealed_refresh_secret.assign(m.value.GetString(), m.value.GetStringLength());
    } else if (name == "keys" && m.value.IsArray()) {
      have_keys = true;
      for (const auto& item : m.value.GetArray()) {
        ASSIGN_OR_RETURN(ManifestEntry e, ReadEntry(item));
        if (e.sealed.empty()) return ManifestError("shared ring key without \"sealed\"");
        ring.entries.push_back(std::move(e));
      }
    } else {
      return ManifestError(absl::StrCat("shared ring: bad or unknown member \"", name, "\""));
    }
  }
  if (!have_version || !have_keys || ring.kek_id.empty() || ring.sealed_refresh_secret.empty()) {
    return ManifestError("shared ring needs version 1, kek, refresh and keys");
  }
  return ring;
}

namespace {

void WriteEntries(JsonWriter& w, const std::vector<ManifestEntry>& entries) {
  WriteKey(w, "keys");
  w.StartArray();
  for (const ManifestEntry& e : entries) {
    w.StartObject();
    WriteKey(w, "file");
    WriteString(w, e.file);
    WriteKey(w, "alg");
    WriteString(w, AlgorithmName(e.alg));
    if (e.created_at != absl::InfinitePast()) {
      WriteKey(w, "created_at");
      w.Int64(absl::ToUnixSeconds(e.created_at));
    }
    WriteKey(w, "active");
    w.Bool(e.active);
    if (!e.active && e.retire_at != absl::InfiniteFuture()) {
      WriteKey(w, "retire_at");
      w.Int64(absl::ToUnixSeconds(e.retire_at));
    }
    if (e.sign_from != absl::InfinitePast() && e.sign_from != absl::InfiniteFuture()) {
      WriteKey(w, "sign_from");
      w.Int64(absl::ToUnixSeconds(e.sign_from));
    }
    if (!e.sealed.empty()) {
      WriteKey(w, "sealed");
      WriteString(w, e.sealed);
    }
    w.EndObject();
  }
  w.EndArray();
}

}  // namespace

std::string SerializeManifest(const std::vector<ManifestEntry>& entries) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  WriteKey(w, "version");
  w.Int(kManifestVersion);
  WriteEntries(w, entries);
  w.EndObject();
  return absl::StrCat(absl::string_view(buffer.GetString(), buffer.GetSize()), "\n");
}

std::string SerializeSharedRing(const SharedRingDocument& ring) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  WriteKey(w, "version");
  w.Int(kManifestVersion);
  WriteKey(w, "kek");
  WriteString(w, ring.kek_id);
  WriteKey(w, "refresh");
  WriteString(w, ring.sealed_refresh_secret);
  WriteEntries(w, ring.entries);
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

absl::StatusOr<SealedRingEnvelope> ParseSealedRingEnvelope(absl::string_view json) {
  rapidjson::Document doc;
  absl::Status parsed = ParseJsonObject(json, &doc);
  if (!parsed.ok()) return ManifestError(parsed.message());
  auto version = doc.FindMember("version");
  if (version == doc.MemberEnd() || !version->value.IsInt()) {
    return ManifestError("shared ring without a version");
  }
  SealedRingEnvelope envelope;
  envelope.format = version->value.GetInt();
  if (envelope.format == kManifestVersion) return envelope;  // format 1: ParseSharedRing
  if (envelope.format != kSealedRingFormat) {
    return ManifestError(absl::StrCat("shared ring format ", envelope.format,
                                      " is not one this server reads (1, 2)"));
  }
  bool have_kek = false, have_generation = false, have_ring = false;
  for (const auto& m : doc.GetObject()) {
    const absl::string_view name = StringOf(m.name);
    if (name == "version") {
      continue;
    } else if (name == "kek" && m.value.IsString() && m.value.GetStringLength() > 0) {
      envelope.kek_id.assign(m.value.GetString(), m.value.GetStringLength());
      have_kek = true;
    } else if (name == "generation" && m.value.IsUint64() && m.value.GetUint64() > 0) {
      envelope.generation = m.value.GetUint64();
      have_generation = true;
    } else if (name == "ring" && m.value.IsString() && m.value.GetStringLength() > 0) {
      envelope.sealed_ring.assign(m.value.GetString(), m.value.GetStringLength());
      have_ring = true;
    } else {
      return ManifestError(absl::StrCat("shared ring: bad or unknown member \"", name, "\""));
    }
  }
  if (!have_kek || !have_generation || !have_ring) {
    return ManifestError("shared ring format 2 needs kek, generation and ring");
  }
  return envelope;
}

std::string SerializeSealedRingEnvelope(const SealedRingEnvelope& envelope) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  WriteKey(w, "version");
  w.Int(kSealedRingFormat);
  WriteKey(w, "kek");
  WriteString(w, envelope.kek_id);
  WriteKey(w, "generation");
  w.Uint64(envelope.generation);
  WriteKey(w, "ring");
  WriteString(w, envelope.sealed_ring);
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

absl::Status EnsurePrivateDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) == 0) return SyncDir(dir);
  if (errno != EEXIST) return ErrnoError("mkdir", dir);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return ErrnoError("stat", dir);
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(dir, " is not a directory"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> ReadPrivateFile(const std::string& dir,
                                                           absl::string_view name) {
  const std::string path = PathOf(dir, name);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ENOENT) return std::optional<std::string>();
  if (fd < 0) return ErrnoError("open", path);
  absl::Cleanup closer = [fd] { ::close(fd); };
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoError("stat", path);
  if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " must be a regular file with mode 0600 (chmod 600)"));
  }
  std::string contents;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("read", path);
    if (n == 0) break;
    contents.append(buf, static_cast<size_t>(n));
  }
  return std::optional<std::string>(std::move(contents));
}

absl::Status WriteFileAtomic(const std::string& dir, absl::string_view name,
                             absl::string_view contents) {
  const std::string path = PathOf(dir, name);
  const std::string tmp = PathOf(dir, absl::StrCat(".", name, ".tmp"));
  ::unlink(tmp.c_str());  // a leftover from a crash; O_EXCL below needs it gone
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ErrnoError("create", tmp);
  absl::Status status = WriteAll(fd, contents, tmp);
  if (status.ok() && ::fchmod(fd, 0600) != 0) status = ErrnoError("chmod", tmp);
  if (status.ok() && ::fsync(fd) != 0) status = ErrnoError("fsync", tmp);
  if (::close(fd) != 0 && status.ok()) status = ErrnoError("close", tmp);
  if (status.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) status = ErrnoError("rename", tmp);
  if (!status.ok()) {
    ::unlink(tmp.c_str());
    return status;
  }
  return SyncDir(dir);
}

absl::StatusOr<std::vector<std::string>> ListFiles(const std::string& dir,
                                                   absl::string_view suffix) {
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), &::closedir);
  if (d == nullptr) return ErrnoError("opendir", dir);
  std::vector<std::string> names;
  while (struct dirent* entry = ::readdir(d.get())) {
    absl::string_view name = entry->d_name;
    if (IsPlainFileName(name) && absl::EndsWith(name, suffix)) names.emplace_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

void RemoveFile(const std::string& dir, absl::string_view name) {
  ::unlink(PathOf(dir, name).c_str());
}

}  // namespace ta::token::internal
