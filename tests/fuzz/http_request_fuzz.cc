// Fuzz target: the HTTP face's request reader (server/http/request_reader.h), the code between
// a connection's bytes and a handler, with the limits small so that inputs reach them.
//
// Input: byte 0 picks how the bytes arrive (its low 3 bits: pieces of 1 to 4096 bytes) and
// how long a tail the peer then keeps repeating (its high 5 bits: 0..31 bytes, sent again
// and again up to 64 KiB: an endless header line, chunk extension or trailer, as in issue 22
// item 1); the rest is what one connection sends.
// Requests are taken as they complete (keep-alive, pipelining) until the reader refuses.
//
// Asserted after every piece: the reader holds at most RequestReader::MemoryBound bytes by
// its own account, and (in the ASan build) the heap it really holds, measured with the
// sanitizer's malloc hooks, stays within that bound plus a fixed slack. A refusal carries one
// of the listener's reasons; no request breaks the limits.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "base/error.h"
#include "server/http/request_reader.h"

// The heap hooks need ASan and its allocator interface (clang ships the header; g++ 12 does
// not, so its ASan build checks the reader's own account only).
#if __has_include(<sanitizer/allocator_interface.h>)
#if defined(__SANITIZE_ADDRESS__)
#define TA_FUZZ_HEAP_HOOKS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TA_FUZZ_HEAP_HOOKS 1
#endif
#endif
#endif

#ifdef TA_FUZZ_HEAP_HOOKS
#include <sanitizer/allocator_interface.h>

namespace {
// Live heap bytes, and their peak since the last reset (single-threaded target).
int64_t live_bytes = 0;
int64_t peak_bytes = 0;
void OnMalloc(const volatile void*, size_t size) {
  live_bytes += static_cast<int64_t>(size);
  peak_bytes = std::max(peak_bytes, live_bytes);
}
void OnFree(const volatile void* ptr) {
  live_bytes -= static_cast<int64_t>(__sanitizer_get_allocated_size(const_cast<void*>(ptr)));
}
const int kHooks = __sanitizer_install_malloc_and_free_hooks(OnMalloc, OnFree);
}  // namespace
#endif

namespace {

using ta::http::RequestLimits;
using ta::http::RequestReader;

constexpr RequestLimits kLimits{/*header_limit=*/1024, /*body_limit=*/2048};
constexpr size_t kMaxTailBytes = 64 * 1024;
// The reader object, its parser and Beast's per-message bookkeeping, besides what
// MemoryBound counts.
constexpr int64_t kHeapSlack = 16 * 1024;

void CheckRefusal(const absl::Status& status) {
  const std::string reason = ta::ReasonOf(status);
  if (reason != "bad_request" && reason != "header_too_large" && reason != "body_too_large") {
    std::abort();
  }
}

void CheckRequest(const RequestReader::Taken& taken) {
  if (taken.request.body.size() > kLimits.body_limit) std::abort();
}

// Feeds `bytes` in pieces of `piece`; false once the reader refused.
bool Feed(RequestReader& reader, const char* bytes, size_t size, size_t piece, int64_t heap_base) {
  const size_t bound = RequestReader::MemoryBound(kLimits);
  size_t at = 0;
  while (at < size) {
    absl::Span<char> space = reader.Space();
    if (space.empty()) std::abort();  // kNeedMore with nowhere to put bytes
    const size_t n = std::min({piece, size - at, space.size()});
    std::copy(bytes + at, bytes + at + n, space.data());
    at += n;
    absl::StatusOr<RequestReader::Progress> progress = reader.Received(n);
    while (progress.ok() && *progress == RequestReader::Progress::kComplete) {
      CheckRequest(reader.Take());
      progress = reader.Parse();
    }
    if (reader.MemoryBytes() > bound) std::abort();
#ifdef TA_FUZZ_HEAP_HOOKS
    if (peak_bytes - heap_base > static_cast<int64_t>(bound) + kHeapSlack) std::abort();
#else
    (void)heap_base;
#endif
    if (!progress.ok()) {
      CheckRefusal(progress.status());
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  constexpr size_t kPieces[] = {1, 2, 3, 7, 16, 64, 256, 4096};
  const size_t piece = kPieces[data[0] & 7];
  const size_t tail = std::min<size_t>(data[0] >> 3, size - 1);
  const char* bytes = reinterpret_cast<const char*>(data) + 1;
  const size_t length = size - 1;
  std::string repeated;  // the tail the peer keeps sending, 4 KiB of it at a time
  if (tail > 0) {
    repeated.reserve(4096 + tail);
    while (repeated.size() < 4096) repeated.append(bytes + length - tail, tail);
  }
  int64_t heap_base = 0;
#ifdef TA_FUZZ_HEAP_HOOKS
  heap_base = live_bytes;
  peak_bytes = live_bytes;
#endif
  RequestReader reader(kLimits);
  if (!Feed(reader, bytes, length, piece, heap_base) || tail == 0) return 0;
  for (size_t sent = 0; sent < kMaxTailBytes; sent += repeated.size()) {
    if (!Feed(reader, repeated.data(), repeated.size(), 4096, heap_base)) return 0;
  }
  return 0;
}
