#include "server/rpc/claims_cache.h"

#include "google/protobuf/struct.pb.h"
#include "rapidjson/document.h"

namespace ta::rpc {
namespace {

// Claims JSON -> Struct by walking a RapidJSON DOM (protobuf's JsonStringToMessage goes
// through its generic converter and cost several times more). The input comes from a
// verified token and was already parsed strictly (valid UTF-8, no duplicate names, depth
// bounded), so this only maps value kinds; it still refuses anything unexpected.
constexpr int kMaxDepth = 64;

bool ToValue(const rapidjson::Value& in, google::protobuf::Value* out, int depth);

bool ToStruct(const rapidjson::Value& in, google::protobuf::Struct* out, int depth) {
  if (!in.IsObject() || depth > kMaxDepth) return false;
  auto* fields = out->mutable_fields();
  for (const auto& member : in.GetObject()) {
    std::string key(member.name.GetString(), member.name.GetStringLength());
    if (!ToValue(member.value, &(*fields)[key], depth + 1)) return false;
  }
  return true;
}

bool ToValue(const rapidjson::Value& in, google::protobuf::Value* out, int depth) {
  if (depth > kMaxDepth) return false;
  switch (in.GetType()) {
    case rapidjson::kNullType:
      out->set_null_value(google::protobuf::NULL_VALUE);
      return true;
    case rapidjson::kFalseType:
    case rapidjson::kTrueType:
      out->set_bool_value(in.GetBool());
      return true;
    case rapidjson::kNumberType:
      out->set_number_value(in.GetDouble());
      return true;
    case rapidjson::kStringType:
      out->set_string_value(in.GetString(), in.GetStringLength());
      return true;
    case rapidjson::kObjectType:
      return ToStruct(in, out->mutable_struct_value(), depth + 1);
    case rapidjson::kArrayType:
      for (const auto& item : in.GetArray()) {
        if (!ToValue(item, out->mutable_list_value()->add_values(), depth + 1)) return false;
      }
      out->mutable_list_value();  // an empty array is still a list
      return true;
  }
  return false;
}

}  // namespace


absl::StatusOr<std::string> ClaimsCache::RenderUncached(absl::string_view claims_json) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag>(
      claims_json.data(), claims_json.size());
  google::protobuf::Struct claims;
  if (doc.HasParseError() || !ToStruct(doc, &claims, 0)) {
    return absl::InternalError("verified claims did not convert to a Struct");
  }
  return claims.SerializeAsString();
}

absl::StatusOr<std::shared_ptr<const std::string>> ClaimsCache::Render(
    absl::string_view claims_json) {
  // Rendered bytes never go stale (a pure function of the text), so entries never end.
  if (std::shared_ptr<const std::string> hit = cache_.Find(claims_json, absl::UnixEpoch())) {
    return hit;
  }
  absl::StatusOr<std::string> rendered = RenderUncached(claims_json);
  if (!rendered.ok()) return rendered.status();
  auto bytes = std::make_shared<const std::string>(*std::move(rendered));
  cache_.Insert(claims_json, bytes, bytes->size(), absl::InfiniteFuture(), absl::UnixEpoch());
  return bytes;
}

}  // namespace ta::rpc
