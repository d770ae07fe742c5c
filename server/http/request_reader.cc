#include "server/http/request_reader.h"

#include <algorithm>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/error.h"

namespace ta::http {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using ErrorCode = boost::system::error_code;
using Parser = bhttp::request_parser<bhttp::string_body>;

// What one stored header field costs besides its name and value (Beast's element: list and
// set hooks, offsets).
constexpr size_t kFieldOverhead = 64;
constexpr size_t kMinHeaderLimit = 1024;
// At most this much is read from the socket at once.
constexpr size_t kReadBytes = size_t{16} << 10;

size_t BufferLimit(const RequestLimits& limits) {
  return std::max(limits.header_limit, kMinHeaderLimit);
}

// `name`: a bhttp::field, or the name of a field Beast does not know ("DPoP").
template <typename Name>
std::string Joined(const bhttp::request<bhttp::string_body>& req, Name name) {
  std::string out;
  for (auto [it, end] = req.equal_range(name); it != end; ++it) {
    if (!out.empty()) out += ", ";
    out.append(it->value().data(), it->value().size());
  }
  return out;
}

}  // namespace

struct RequestReader::Impl {
  explicit Impl(size_t buffer_limit) : buffer(buffer_limit) {}
  beast::flat_buffer buffer;  // bounded: prepare() never grows it past buffer_limit
  std::optional<Parser> parser;
};

RequestReader::RequestReader(const RequestLimits& limits)
    : limits_(limits), impl_(std::make_unique<Impl>(BufferLimit(limits))) {
  StartRequest();
}

RequestReader::~RequestReader() = default;

void RequestReader::StartRequest() {
  impl_->parser.emplace();
  impl_->parser->header_limit(static_cast<uint32_t>(BufferLimit(limits_)));
  impl_->parser->body_limit(limits_.body_limit);
  impl_->parser->eager(true);
  wire_bytes_ = 0;
  started_ = impl_->buffer.size() > 0;
  continue_checked_ = false;
}

absl::Span<char> RequestReader::Space() {
  beast::flat_buffer& buffer = impl_->buffer;
  const size_t room = buffer.max_size() - buffer.size();
  if (failed_ || room == 0) return {};
  auto space = buffer.prepare(std::min(room, kReadBytes));
  return absl::Span<char>(static_cast<char*>(space.data()), space.size());
}

absl::StatusOr<RequestReader::Progress> RequestReader::Received(size_t n) {
  impl_->buffer.commit(n);
  if (n > 0) started_ = true;
  return Parse();
}

absl::StatusOr<RequestReader::Progress> RequestReader::Fail(absl::string_view reason,
                                                            absl::string_view what) {
  failed_ = true;
  return Error(absl::StatusCode::kInvalidArgument, reason,
               absl::StrCat("malformed request: ", what));
}

absl::StatusOr<RequestReader::Progress> RequestReader::Parse() {
  if (failed_) return Fail("bad_request", "the connection already failed");
  beast::flat_buffer& buffer = impl_->buffer;
  Parser& parser = *impl_->parser;
  const size_t wire_limit = BufferLimit(limits_) + 2 * limits_.body_limit;
  while (!parser.is_done() && buffer.size() > 0) {
    ErrorCode ec;
    const size_t used = parser.put(buffer.data(), ec);
    buffer.consume(used);
    wire_bytes_ += used;
    if (wire_bytes_ > wire_limit) {
      return Fail("body_too_large",
                  absl::StrCat("the request is over ", wire_limit, " bytes with its framing"));
    }
    if (ec == bhttp::error::need_more || (!ec && used == 0)) {
      if (buffer.size() < buffer.max_size()) return Progress::kNeedMore;
      // The parser waits for the end of a line or block that already fills the buffer.
      if (!parser.is_header_done()) {
        return Fail("header_too_large",
                    absl::StrCat("the header is over ", buffer.max_size(), " bytes"));
      }
      return Fail("bad_request", absl::StrCat("a chunk line or the trailers are over ",
                                              buffer.max_size(), " bytes"));
    }
    if (ec == bhttp::error::header_limit) return Fail("header_too_large", ec.message());
    if (ec == bhttp::error::body_limit) return Fail("body_too_large", ec.message());
    if (ec) return Fail("bad_request", ec.message());
  }
  return parser.is_done() ? Progress::kComplete : Progress::kNeedMore;
}

bool RequestReader::TakeContinueDue() {
  const Parser& parser = *impl_->parser;
  if (continue_checked_ || !parser.is_header_done() || parser.is_done()) return false;
  continue_checked_ = true;
  return absl::EqualsIgnoreCase(std::string(parser.get()[bhttp::field::expect]), "100-continue");
}

RequestReader::Taken RequestReader::Take() {
  bhttp::request<bhttp::string_body> req = impl_->parser->release();
  Taken out;
  out.keep_alive = req.keep_alive();
  out.head = req.method() == bhttp::verb::head;
  HttpRequest& request = out.request;
  request.method = std::string(req.method_string());
  absl::string_view target(req.target().data(), req.target().size());
  const size_t q = target.find('?');
  request.path = std::string(target.substr(0, q));
  if (q != absl::string_view::npos) request.query = std::string(target.substr(q + 1));
  request.content_type = Joined(req, bhttp::field::content_type);
  request.authorization = Joined(req, bhttp::field::authorization);
  request.if_none_match = Joined(req, bhttp::field::if_none_match);
  request.dpop = Joined(req, beast::string_view("DPoP"));
  request.body = std::move(req.body());
  StartRequest();
  return out;
}

size_t RequestReader::MemoryBytes() const {
  size_t bytes = impl_->buffer.capacity();
  if (impl_->parser.has_value()) {
    const auto& req = impl_->parser->get();
    for (const auto& field : req) {
      bytes += kFieldOverhead + field.name_string().size() + field.value().size();
    }
    bytes += req.target().size() + req.body().capacity();
  }
  return bytes;
}

size_t RequestReader::MemoryBound(const RequestLimits& limits) {
  const size_t header = BufferLimit(limits);
  // Fields: header and trailers, each within `header` bytes on the wire, at least 4 bytes a
  // field ("n:" CRLF). The body string may double its capacity while it grows.
  const size_t fields = 2 * (header + (header / 4) * kFieldOverhead);
  return header + fields + header + 2 * limits.body_limit;
}

}  // namespace ta::http
