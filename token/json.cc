#include "token/json.h"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace ta::token::internal {
namespace {

using rapidjson::SizeType;

constexpr unsigned kParseFlags =
    rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag;

// Sits between the reader and the document, refusing what RapidJSON itself accepts:
// duplicate names, deep nesting and \u-escaped lone surrogates (which RapidJSON decodes
// into invalid UTF-8).
template <typename Handler>
class StrictFilter {
 public:
  StrictFilter(Handler& out, int max_depth) : out_(out), max_depth_(max_depth) {}

  const char* failure() const { return failure_; }

  bool Null() { return out_.Null(); }
  bool Bool(bool b) { return out_.Bool(b); }
  bool Int(int i) { return out_.Int(i); }
  bool Uint(unsigned u) { return out_.Uint(u); }
  bool Int64(int64_t i) { return out_.Int64(i); }
  bool Uint64(uint64_t u) { return out_.Uint64(u); }
  bool Double(double d) { return out_.Double(d); }
  bool RawNumber(const char* s, SizeType n, bool copy) { return out_.RawNumber(s, n, copy); }

  bool String(const char* s, SizeType n, bool copy) {
    if (!IsValidUtf8(absl::string_view(s, n))) return Fail("invalid UTF-8");
    return out_.String(s, n, copy);
  }
  bool Key(const char* s, SizeType n, bool copy) {
    if (!IsValidUtf8(absl::string_view(s, n))) return Fail("invalid UTF-8");
    if (!names_.back().emplace(s, n).second) return Fail("duplicate member name");
    return out_.Key(s, n, copy);
  }
  bool StartObject() {
    if (++depth_ > max_depth_) return Fail("nesting too deep");
    names_.emplace_back();
    return out_.StartObject();
  }
  bool EndObject(SizeType n) {
    --depth_;
    names_.pop_back();
    return out_.EndObject(n);
  }
  bool StartArray() {
    if (++depth_ > max_depth_) return Fail("nesting too deep");
    return out_.StartArray();
  }
  bool EndArray(SizeType n) {
    --depth_;
    return out_.EndArray(n);
  }

 private:
  bool Fail(const char* why) {
    failure_ = why;
    return false;
  }

  Handler& out_;
  const int max_depth_;
  int depth_ = 0;
  // Member names seen so far in each open object, innermost last.
  std::vector<absl::flat_hash_set<std::string>> names_;
  const char* failure_ = nullptr;
};

// Length of the UTF-8 sequence led by `b`, or 0 when `b` cannot lead one.
int SequenceLength(uint8_t b) {
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF4) return 4;
  return 0;
}

}  // namespace

bool IsValidUtf8(absl::string_view text) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const uint8_t b = p[i];
    const int len = SequenceLength(b);
    if (len == 0 || i + len > n) return false;
    for (int k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
    }
    if (len >= 3) {
      const uint8_t b1 = p[i + 1];
      if (b == 0xE0 && b1 < 0xA0) return false;   // overlong
      if (b == 0xED && b1 >= 0xA0) return false;  // surrogate
      if (b == 0xF0 && b1 < 0x90) return false;   // overlong
      if (b == 0xF4 && b1 >= 0x90) return false;  // above U+10FFFF
    }
    i += len;
  }
  return true;
}

absl::Status ParseJsonObject(absl::string_view text, rapidjson::Document* doc, int max_depth) {
  rapidjson::MemoryStream stream(text.data(), text.size());
  rapidjson::Reader reader;
  rapidjson::ParseResult result;
  const char* failure = nullptr;
  auto generate = [&](rapidjson::Document& handler) {
    StrictFilter<rapidjson::Document> filter(handler, max_depth);
    result = reader.Parse<kParseFlags>(stream, filter);
    failure = filter.failure();
    return !result.IsError();
  };
  doc->Populate(generate);
  if (result.IsError()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid JSON: ",
                     failure != nullptr ? failure : rapidjson::GetParseError_En(result.Code())));
  }
  // The reader stops at a NUL byte as if the text ended there; refuse anything after it.
  if (stream.Tell() != text.size()) {
    return absl::InvalidArgumentError("invalid JSON: NUL byte outside a string");
  }
  if (!doc->IsObject()) return absl::InvalidArgumentError("JSON text is not an object");
  return absl::OkStatus();
}

std::string ToJson(const rapidjson::Value& v) {
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  v.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace ta::token::internal
