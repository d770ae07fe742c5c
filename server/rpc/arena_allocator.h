// Per-call protobuf arenas for the request and response of a callback-API method.
//
// Without this, gRPC heap-allocates each request and response, and every string and map
// entry inside them is a malloc and a free of its own (an Introspect answer's claims Struct
// is a map of Values). On an arena those come out of one block that is reset, not freed,
// when the call ends. Holders (arena + block) are pooled, so a warm server allocates nothing
// here per call. Measured effect: BENCHMARKS.md, "How the server was tuned".
//
// Thread-safe. Must outlive the grpc::Server that uses it (gRPC releases holders at the end
// of each call); the services own their allocators and the server is destroyed first.
#ifndef TA_SERVER_RPC_ARENA_ALLOCATOR_H_
#define TA_SERVER_RPC_ARENA_ALLOCATOR_H_

#include <grpcpp/support/message_allocator.h>

#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/arena.h"

namespace ta::rpc {

template <typename Request, typename Response>
class ArenaMessageAllocator final : public grpc::MessageAllocator<Request, Response> {
 public:
  // First block of each arena: holds a typical Introspect request and answer, so the common
  // call never asks the heap. Larger calls grow the arena; Reset gives the growth back.
  static constexpr size_t kInlineBlock = 4096;
  // Holders kept for reuse; beyond this (a burst far above the steady in-flight count) a
  // released holder is freed instead.
  static constexpr size_t kMaxPooled = 4096;

  grpc::MessageHolder<Request, Response>* AllocateMessages() override {
    std::unique_ptr<Holder> holder;
    {
      absl::MutexLock lock(&mu_);
      if (!pool_.empty()) {
        holder = std::move(pool_.back());
        pool_.pop_back();
      }
    }
    if (holder == nullptr) holder = std::make_unique<Holder>(this);
    holder->CreateMessages();
    // gRPC owns the holder until it calls Release(), which hands it back to Recycle.
    return holder.release();
  }

 private:
  class Holder final : public grpc::MessageHolder<Request, Response> {
   public:
    explicit Holder(ArenaMessageAllocator* owner) : owner_(owner), arena_(Options(block_)) {}

    void CreateMessages() {
      this->set_request(google::protobuf::Arena::CreateMessage<Request>(&arena_));
      this->set_response(google::protobuf::Arena::CreateMessage<Response>(&arena_));
    }
    void Release() override { owner_->Recycle(std::unique_ptr<Holder>(this)); }
    void Reset() { arena_.Reset(); }

   private:
    static google::protobuf::ArenaOptions Options(char* block) {
      google::protobuf::ArenaOptions options;
      options.initial_block = block;
      options.initial_block_size = kInlineBlock;
      return options;
    }

    ArenaMessageAllocator* const owner_;
    alignas(std::max_align_t) char block_[kInlineBlock];
    google::protobuf::Arena arena_;  // after block_: constructed on it, destroyed before it
  };

  void Recycle(std::unique_ptr<Holder> holder) {
    holder->Reset();  // outside the lock: it may free blocks the call grew into
    absl::MutexLock lock(&mu_);
    if (pool_.size() < kMaxPooled) pool_.push_back(std::move(holder));
  }

  absl::Mutex mu_;
  std::vector<std::unique_ptr<Holder>> pool_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ta::rpc

#endif  // TA_SERVER_RPC_ARENA_ALLOCATOR_H_
