// Per-call message arenas (server/rpc/arena_allocator.h): holders are reused, their
// messages start empty every call, and growth past the inline block is given back.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "server/rpc/arena_allocator.h"
#include "tokenauthority/v1/token_authority.pb.h"

namespace ta::rpc {
namespace {

namespace v1 = ::tokenauthority::v1;
using Allocator = ArenaMessageAllocator<v1::IntrospectRequest, v1::IntrospectResponse>;

TEST_CASE("ArenaMessageAllocator: messages live on the arena and start empty on reuse",
          "[rpc][arena]") {
  Allocator allocator;
  auto* first = allocator.AllocateMessages();
  REQUIRE(first->request()->GetArena() != nullptr);
  REQUIRE(first->response()->GetArena() == first->request()->GetArena());
  first->request()->set_token(std::string(10'000, 'x'));  // grows past the inline block
  first->response()->set_active(true);
  first->response()->set_subject("alice");
  first->Release();

  auto* second = allocator.AllocateMessages();
  CHECK(second == first);  // pooled, not reallocated
  CHECK(second->request()->token().empty());
  CHECK_FALSE(second->response()->active());
  CHECK(second->response()->subject().empty());
  second->Release();
}

TEST_CASE("ArenaMessageAllocator: many calls in flight get distinct holders", "[rpc][arena]") {
  Allocator allocator;
  std::vector<grpc::MessageHolder<v1::IntrospectRequest, v1::IntrospectResponse>*> live;
  for (int i = 0; i < 100; ++i) {
    live.push_back(allocator.AllocateMessages());
    live.back()->request()->set_token(std::to_string(i));
  }
  for (int i = 0; i < 100; ++i) CHECK(live[i]->request()->token() == std::to_string(i));
  for (auto* holder : live) holder->Release();
}

}  // namespace
}  // namespace ta::rpc
