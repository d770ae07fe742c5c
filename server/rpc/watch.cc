#include "server/rpc/watch.h"

#include <google/protobuf/arena.h>

#include <chrono>
#include <memory>
#include <optional>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "base/error.h"
#include "server/core/refresh_token.h"
#include "server/core/watch_hub.h"
#include "server/rpc/auth.h"
#include "server/rpc/convert.h"
#include "server/rpc/status.h"

namespace ta::rpc {
namespace {

namespace v1 = ::tokenauthority::v1;
using Kind = storage::RevocationEntry::Kind;

// Without a temporary Timestamp and its copy (the snapshot sets 20 M of them for 10 M entries).
void SetTimestamp(absl::Time t, google::protobuf::Timestamp* ts) {
  const int64_t micros = absl::ToUnixMicros(t);
  ts->set_seconds(micros / 1'000'000 - (micros % 1'000'000 < 0 ? 1 : 0));
  ts->set_nanos(static_cast<int32_t>(((micros % 1'000'000) + 1'000'000) % 1'000'000) * 1000);
}

void ToProto(storage::RevocationEntry& in, v1::RevocationEvent* e) {
  e->set_seq(in.seq);
  e->set_kind(in.kind == Kind::kJti      ? v1::RevocationEvent::JTI
              : in.kind == Kind::kFamily ? v1::RevocationEvent::FAMILY
                                         : v1::RevocationEvent::SUBJECT);
  // A jti is stored as the token holds it; a family id raw (the token's sid encodes it).
  e->set_id(in.kind == Kind::kJti ? std::move(in.id) : core::EncodeFamilyId(in.id));
  SetTimestamp(in.revoked_at, e->mutable_revoked_at());
  SetTimestamp(in.live_until, e->mutable_live_until());
}

void ToProto(core::WatchEvent& in, v1::WatchRevocationsResponse* out) {
  switch (in.type) {
    case core::WatchEvent::Type::kReset:
      out->mutable_reset()->set_epoch(in.epoch);
      out->mutable_reset()->set_expected_jtis(in.hint.jtis);
      out->mutable_reset()->set_expected_families(in.hint.families);
      break;
    case core::WatchEvent::Type::kEntry:
      ToProto(in.entry, out->mutable_entry());
      break;
    case core::WatchEvent::Type::kEntries: {
      auto* entries = out->mutable_batch()->mutable_entries();
      entries->Reserve(static_cast<int>(in.entries.size()));
      for (storage::RevocationEntry& entry : in.entries) ToProto(entry, entries->Add());
      break;
    }
    case core::WatchEvent::Type::kEndOfSnapshot:
      out->mutable_end_of_snapshot()->set_seq(in.seq);
      break;
    case core::WatchEvent::Type::kBookmark:
      out->mutable_bookmark()->set_seq(in.seq);
      *out->mutable_bookmark()->mutable_as_of() = ToTimestamp(in.as_of);
      break;
    case core::WatchEvent::Type::kKeys:
      out->mutable_keys()->set_jwks_version(std::move(in.jwks_version));
      break;
  }
}

class WatchReactor final : public grpc::ServerWriteReactor<v1::WatchRevocationsResponse> {
 public:
  WatchReactor(grpc::CallbackServerContext* ctx, const ServiceDeps& deps)
      : ctx_(ctx), deps_(deps), start_(std::chrono::steady_clock::now()) {}

  void Begin(const v1::WatchRevocationsRequest& req) {
    absl::StatusOr<core::Caller> caller =
        Authorize(ctx_, *deps_.callers, Rpc::kWatchRevocations, deps_.audit);
    if (!caller.ok()) return FinishNow(caller.status());
    std::optional<core::WatchPosition> since;
    if (req.has_since()) since = core::WatchPosition{req.since().epoch(), req.since().seq()};
    const bool batches = req.batches();
    {
      absl::MutexLock lock(&mu_);
      opening_ = true;
    }
    // The snapshot reads the store: never on gRPC's threads (issue 22).
    const bool scheduled = deps_.pool->Schedule(
        [this, since, batches] { Opened(deps_.authority->watch_hub().Watch(since, batches)); });
    if (!scheduled) {
      {
        absl::MutexLock lock(&mu_);
        opening_ = false;
      }
      FinishNow(Error(absl::StatusCode::kResourceExhausted, "overloaded",
                      "too many calls waiting; retry with backoff"));
    }
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) cancelled_ = true;
    }
    Pump();
  }

  void OnCancel() override {
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
    }
    Pump();
  }

  void OnDone() override {
    if (stream_ != nullptr) stream_->Close();  // no wake after this
    delete this;
  }

 private:
  void Opened(absl::StatusOr<std::shared_ptr<core::WatchStream>> stream) {
    {
      absl::MutexLock lock(&mu_);
      opening_ = false;
      if (stream.ok()) stream_ = *stream;
    }
    if (!stream.ok()) return FinishNow(stream.status());
    (*stream)->SetWake([this] { Pump(); });
    Pump();
  }

  // Writes the next event, or finishes; at most one write in flight.
  void Pump() {
    absl::Status end;
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || writing_ || opening_) return;
      if (cancelled_) {
        end = absl::CancelledError("the watcher went away");
      } else if (stream_ == nullptr) {
        return;
      } else {
        core::WatchEvent event;
        switch (stream_->Next(&event, &end)) {
          case core::WatchStream::Poll::kEmpty:
            return;  // the hub wakes us
          case core::WatchStream::Poll::kEvent:
            ToProto(event, NewMessage());
            writing_ = true;
            break;
          case core::WatchStream::Poll::kEnded:
            break;
        }
      }
      if (writing_) {
        ++written_;
      } else {
        finished_ = true;
      }
    }
    if (end.ok()) {
      StartWrite(message_);
    } else {
      Done(end);
    }
  }

  void FinishNow(const absl::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
    }
    Done(status);
  }

  void Done(const absl::Status& status) {
    if (deps_.metrics != nullptr) {
      deps_.metrics->OnRpc(Rpc::kWatchRevocations, status.code(),
                           absl::FromChrono(std::chrono::steady_clock::now() - start_));
    }
    Finish(ToGrpcStatus(ctx_, status));
  }

  grpc::CallbackServerContext* const ctx_;
  const ServiceDeps deps_;
  const std::chrono::steady_clock::time_point start_;
  absl::Mutex mu_;
  bool opening_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t written_ ABSL_GUARDED_BY(mu_) = 0;
  std::shared_ptr<core::WatchStream> stream_;  // set once, under mu_, before any Pump uses it
  // The write in flight, on an arena reset for each message: a batch's 4096 events and their
  // Timestamps cost no malloc/free each (a reused message would not help: Clear deletes a
  // message's Timestamps), only the arena's blocks (at most kArenaMaxBlock each). No block
  // of our own kept across resets: an idle stream (a bookmark at a time) holds a few hundred
  // bytes, not a batch's worth (the idle-streams test holds it under 64 KiB).
  v1::WatchRevocationsResponse* NewMessage() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!arena_.has_value()) {
      google::protobuf::ArenaOptions options;
      options.max_block_size = kArenaMaxBlock;
      arena_.emplace(options);
    } else {
      arena_->Reset();
    }
    message_ = google::protobuf::Arena::CreateMessage<v1::WatchRevocationsResponse>(&*arena_);
    return message_;
  }
  static constexpr size_t kArenaMaxBlock = size_t{64} << 10;
  std::optional<google::protobuf::Arena> arena_;
  v1::WatchRevocationsResponse* message_ = nullptr;  // on arena_; the write in flight
};

}  // namespace

grpc::ServerWriteReactor<v1::WatchRevocationsResponse>* StartWatch(
    grpc::CallbackServerContext* ctx, const v1::WatchRevocationsRequest* req,
    const ServiceDeps& deps) {
  auto* reactor = new WatchReactor(ctx, deps);  // deletes itself in OnDone (gRPC's contract)
  reactor->Begin(*req);
  return reactor;
}

}  // namespace ta::rpc
