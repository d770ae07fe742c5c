#include "client/verifier.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/error.h"
#include "base/revocation.h"
#include "client/watch_pipe.h"
#include "token/ids.h"
#include "token/proof_replay_cache.h"
#include "token/revocation_view.h"
#include "token/verification_keys.h"
#include "tokenauthority/v1/token_authority.grpc.pb.h"

namespace ta::client {
namespace {

absl::Time ToTime(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

grpc::ChannelArguments ChannelArgs(const LocalVerifierOptions& options) {
  grpc::ChannelArguments args;
  if (options.server.use_tls && !options.server.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(options.server.tls_server_name);
  }
  // Reconnect at our own pace (client.cc explains why not the MIN backoff).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options.initial_backoff)));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options.max_backoff)));
  // A dead peer behind a silent network is found by keepalive; the stale rule covers the
  // meantime.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5'000);
  return args;
}

// The JWKS's keys with a cache of the tokens they verified (VerificationKeys allows it): a seen
// token costs a hash lookup and its claims checked at `now`, not a signature check. One cache
// per key set, so a refetched JWKS (a key dropped) starts empty. Bounded: cleared when full.
class CachedKeys final : public token::VerificationKeys {
 public:
  static constexpr size_t kMaxEntries = 4096;
  explicit CachedKeys(std::shared_ptr<const token::KeySet> keys) : keys_(std::move(keys)) {}

  absl::StatusOr<std::shared_ptr<const token::VerifiedJwt>> Verify(
      absl::string_view token, const token::VerifyPolicy& policy, absl::Time now) const override {
    {
      absl::ReaderMutexLock lock(&mu_);
      auto it = cache_.find(token);
      if (it != cache_.end()) {
        if (absl::Status s = token::CheckClaims(it->second->claims, policy, now); !s.ok()) {
          return s;
        }
        return it->second;
      }
    }
    absl::StatusOr<std::shared_ptr<const token::VerifiedJwt>> verified =
        keys_->Verify(token, policy, now);
    if (verified.ok()) {
      absl::MutexLock lock(&mu_);
      if (cache_.size() >= kMaxEntries) cache_.clear();
      cache_.emplace(std::string(token), *verified);
    }
    return verified;
  }
  size_t size() const { return keys_->size(); }

 private:
  const std::shared_ptr<const token::KeySet> keys_;
  mutable absl::Mutex mu_;
  mutable absl::flat_hash_map<std::string, std::shared_ptr<const token::VerifiedJwt>> cache_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace

class LocalVerifier::Impl {
 public:
  explicit Impl(LocalVerifierOptions options)
      : options_(std::move(options)),
        clock_(options_.clock != nullptr ? options_.clock : Clock::Real()),
        channel_(grpc::CreateCustomChannel(
            options_.server.target, ChannelCredentialsFor(options_.server), ChannelArgs(options_))),
        stub_(tokenauthority::v1::TokenAuthority::NewStub(channel_)),
        view_(NewView()),
        keys_(std::make_shared<const CachedKeys>(
            std::make_shared<const token::KeySet>(std::vector<token::KeySet::Entry>{}))) {
    policy_.issuer = options_.issuer;
    policy_.audience = options_.audience;
    policy_.leeway = options_.leeway;
    policy_.dpop = options_.dpop;
  }

  ~Impl() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      if (context_ != nullptr) context_->TryCancel();
    }
    if (thread_.joinable()) thread_.join();
  }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }

  absl::StatusOr<token::AccessDecision> Verify(absl::string_view token,
                                               const token::PresentedProof& proof,
                                               bool binding_checked_by_caller) const {
    if (token::LooksLikeRefreshToken(token)) {
      token::AccessDecision inactive;
      inactive.inactive_reason = "not_an_access_token";
      return inactive;
    }
    std::shared_ptr<const token::RevocationView> view;
    std::shared_ptr<const CachedKeys> keys;
    {
      absl::ReaderMutexLock lock(&mu_);
      view = view_;
      keys = keys_;
    }
    token::AccessPolicy policy = policy_;
    policy.binding_checked_by_caller = binding_checked_by_caller;
    auto decide = [&] {
      const absl::Time now = clock_->Now();
      auto record = [this, now](const token::DpopProof& p) {
        return replays_.Record(p.replay_key, p.iat + options_.dpop.max_age + absl::Seconds(1), now);
      };
      return token::DecideAccessToken(
          token, *keys, *view, policy, now, [](absl::Time) { return false; }, proof, record);
    };
    absl::StatusOr<token::AccessDecision> decision = decide();
    if (decision.ok() && !decision->active && decision->inactive_reason == "unknown_kid" &&
        RefetchForUnknownKid(keys)) {
      {
        absl::ReaderMutexLock lock(&mu_);
        view = view_;
        keys = keys_;
      }
      decision = decide();
    }
    return decision;
  }

  bool WaitUntilCurrent(absl::Duration timeout) const {
    const absl::Time deadline = absl::Now() + timeout;
    while (true) {
      {
        absl::ReaderMutexLock lock(&mu_);
        if (view_->IsCurrent(clock_->Now())) return true;
      }
      if (absl::Now() >= deadline) return false;
      absl::SleepFor(absl::Milliseconds(5));
    }
  }

  std::string jwks_json() const {
    absl::ReaderMutexLock lock(&mu_);
    return jwks_json_;
  }

  VerifierState state() const {
    absl::ReaderMutexLock lock(&mu_);
    VerifierState s;
    s.connected = connected_;
    if (view_bookmarked_) {
      s.bookmark_age = clock_->Now() - view_->current_as_of();
    }
    s.entries = view_->size();
    s.reconnects = reconnects_;
    s.resets = resets_;
    s.epoch = epoch_;
    s.seq = seq_;
    s.jwks_version = jwks_version_;
    s.keys = keys_->size();
    return s;
  }

 private:
  std::shared_ptr<token::RevocationView> NewView() const {
    return std::make_shared<token::RevocationView>(/*follows_shared_log=*/true,
                                                   options_.max_staleness, clock_);
  }

  // The stream's thread: connect, read until the stream ends, back off, resume.
  void Run() {
    int failures = 0;
    absl::BitGen gen;
    bool first = true;
    while (true) {
      grpc::ClientContext context;
      tokenauthority::v1::WatchRevocationsRequest request;
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) return;
        context_ = &context;
        if (!first) ++reconnects_;
        if (position_valid_) {
          request.mutable_since()->set_epoch(epoch_);
          request.mutable_since()->set_seq(seq_);
        }
        request.set_batches(true);
      }
      first = false;
      if (!options_.server.api_key.empty()) {
        context.AddMetadata("authorization", absl::StrCat("Bearer ", options_.server.api_key));
      }
      // Wait for a connection rather than fail at once while the channel is in
      // TRANSIENT_FAILURE: a failed-fast call would retry on our backoff while gRPC's own
      // connection attempts back off independently, and the two could keep missing a server
      // that is back (verifier_replicas_test saw a restarted replica found 9 s late). The
      // verifier fails closed meanwhile; Stop cancels the wait (TryCancel).
      context.set_wait_for_ready(true);
      std::unique_ptr<grpc::ClientReader<tokenauthority::v1::WatchRevocationsResponse>> reader =
          stub_->WatchRevocations(&context, request);
      // This thread parses; an applier thread handles the events in order (a snapshot's
      // inserts into the view overlap the next batch's parsing). Messages are reused.
      WatchPipe pipe;
      std::thread applier([this, &pipe] {
        while (tokenauthority::v1::WatchRevocationsResponse* event = pipe.Pop()) {
          Handle(*event);
          pipe.Recycle(event);
        }
      });
      while (true) {
        tokenauthority::v1::WatchRevocationsResponse* event = pipe.Free();
        if (!reader->Read(event)) break;
        failures = 0;
        pipe.Push(event);
      }
      pipe.Close();  // the applier handles what was read, then ends
      applier.join();
      (void)reader->Finish();
      {
        absl::MutexLock lock(&mu_);
        context_ = nullptr;
        connected_ = false;
        // A stream cut mid-snapshot cannot be resumed: the next one starts with a reset.
        if (pending_ != nullptr && !pending_complete_) {
          pending_.reset();
          position_valid_ = false;
        }
        if (stopping_) return;
      }
      ++failures;
      absl::Duration backoff = options_.initial_backoff;
      for (int i = 1; i < failures && backoff < options_.max_backoff; ++i) backoff *= 2;
      backoff = std::min(backoff, options_.max_backoff) * absl::Uniform(gen, 0.5, 1.0);
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), backoff);
    }
  }

  void Handle(const tokenauthority::v1::WatchRevocationsResponse& event) {
    using tokenauthority::v1::WatchRevocationsResponse;
    switch (event.event_case()) {
      case WatchRevocationsResponse::kReset: {
        // Sized for the snapshot the server announces (a hint: any entries may follow), before
        // the lock: allocating 10 M entries' tables takes a while.
        std::shared_ptr<token::RevocationView> pending = NewView();
        pending->Reserve(event.reset().expected_jtis(), event.reset().expected_families());
        absl::MutexLock lock(&mu_);
        connected_ = true;
        ++resets_;
        epoch_ = event.reset().epoch();
        seq_ = 0;
        position_valid_ = false;
        // Rule 3: the old view keeps answering (within its bound) until this one is complete
        // and proved current by a bookmark.
        pending_ = std::move(pending);
        pending_complete_ = false;
        return;
      }
      case WatchRevocationsResponse::kEntry:
        return Apply(absl::MakeConstSpan(&event.entry(), 1));
      case WatchRevocationsResponse::kBatch:
        return Apply(event.batch().entries());
      case WatchRevocationsResponse::kEndOfSnapshot: {
        absl::MutexLock lock(&mu_);
        connected_ = true;
        seq_ = std::max(seq_, event.end_of_snapshot().seq());
        position_valid_ = true;
        if (pending_ != nullptr) pending_complete_ = true;
        return;
      }
      case WatchRevocationsResponse::kBookmark: {
        const absl::Time as_of = ToTime(event.bookmark().as_of());
        absl::MutexLock lock(&mu_);
        connected_ = true;
        if (pending_ != nullptr) {
          if (!pending_complete_) return;  // no proof for a half-received snapshot
          pending_->MarkCurrent(as_of);
          view_ = std::move(pending_);
          pending_.reset();
        } else {
          view_->MarkCurrent(as_of);
        }
        view_bookmarked_ = true;
        seq_ = std::max(seq_, event.bookmark().seq());
        position_valid_ = true;
        return;
      }
      case WatchRevocationsResponse::kKeys: {
        bool fetch;
        {
          absl::MutexLock lock(&mu_);
          connected_ = true;
          fetch = event.keys().jwks_version() != jwks_version_;
        }
        if (fetch) (void)FetchJwks(event.keys().jwks_version());
        return;
      }
      case WatchRevocationsResponse::EVENT_NOT_SET:
        return;  // a newer server's event: ignored
    }
  }

  // Applies `events` (the message's own: no copy of an id) on the applier thread.
  template <typename Events>
  void Apply(const Events& events) {
    const uint64_t max_seq = refs_.Assign(events);
    std::shared_ptr<token::RevocationView> pending, view;
    {
      absl::MutexLock lock(&mu_);
      connected_ = true;
      pending = pending_;
      // Into the new view, and into the old one too (when it ever answered): a real
      // revocation never makes a verdict wrong, so the view in use misses nothing the stream
      // has delivered. A view never proved current answers nothing, so a first snapshot fills
      // one view only.
      if (pending_ == nullptr || view_bookmarked_) view = view_;
    }
    // Outside mu_ (Verify never waits for a batch): only this thread replaces the views.
    if (pending != nullptr) pending->ApplyBatch(refs_.refs());
    if (view != nullptr) view->ApplyBatch(refs_.refs());
    absl::MutexLock lock(&mu_);
    seq_ = std::max(seq_, max_seq);  // the position moves once its entries are in
  }

  // GetJwks and swap in its keys. `version`: the keys event's, or "" (an unknown kid's fetch).
  bool FetchJwks(const std::string& version) const {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         absl::ToChronoMilliseconds(options_.server.timeout));
    if (!options_.server.api_key.empty()) {
      context.AddMetadata("authorization", absl::StrCat("Bearer ", options_.server.api_key));
    }
    tokenauthority::v1::GetJwksResponse response;
    grpc::Status status = stub_->GetJwks(&context, {}, &response);
    if (!status.ok()) return false;
    absl::StatusOr<std::shared_ptr<const token::KeySet>> keys =
        token::KeySet::FromJwks(response.jwks_json());
    if (!keys.ok()) return false;
    absl::MutexLock lock(&mu_);
    keys_ = std::make_shared<const CachedKeys>(*std::move(keys));
    jwks_json_ = std::move(*response.mutable_jwks_json());
    if (!version.empty()) jwks_version_ = version;
    return true;
  }

  // After an unknown kid: fetch the JWKS unless another fetch already replaced `seen`, or
  // one was made within jwks_refetch_interval. True when the keys changed.
  bool RefetchForUnknownKid(const std::shared_ptr<const CachedKeys>& seen) const {
    absl::MutexLock fetch_lock(&fetch_mu_);
    {
      absl::ReaderMutexLock lock(&mu_);
      if (keys_ != seen) return true;
    }
    const absl::Time now = absl::Now();
    if (now - last_kid_fetch_ < options_.jwks_refetch_interval) return false;
    last_kid_fetch_ = now;
    return FetchJwks("");
  }

  const LocalVerifierOptions options_;
  const Clock* const clock_;
  token::AccessPolicy policy_;
  mutable token::ProofReplayCache replays_{options_.dpop_replay_cache_entries};
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<tokenauthority::v1::TokenAuthority::Stub> stub_;
  std::thread thread_;
  WatchEntryRefs refs_;  // the applier thread's (Apply): reused from batch to batch

  mutable absl::Mutex fetch_mu_;
  mutable absl::Time last_kid_fetch_ ABSL_GUARDED_BY(fetch_mu_) = absl::InfinitePast();

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::shared_ptr<token::RevocationView> view_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<token::RevocationView> pending_ ABSL_GUARDED_BY(mu_);  // after a reset
  bool pending_complete_ ABSL_GUARDED_BY(mu_) = false;                   // its end_of_snapshot came
  bool view_bookmarked_ ABSL_GUARDED_BY(mu_) = false;                    // view_ has had a bookmark
  mutable std::shared_ptr<const CachedKeys> keys_ ABSL_GUARDED_BY(mu_);
  mutable std::string jwks_version_ ABSL_GUARDED_BY(mu_);
  mutable std::string jwks_json_ ABSL_GUARDED_BY(mu_);
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  bool position_valid_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t reconnects_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t resets_ ABSL_GUARDED_BY(mu_) = 0;
};

absl::Status ValidateLocalVerifierOptions(const LocalVerifierOptions& options) {
  if (absl::Status s = ValidateClientOptions(options.server); !s.ok()) return s;
  if (options.issuer.empty()) return absl::InvalidArgumentError("issuer: required");
  if (options.leeway < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("leeway: must not be negative");
  }
  if (options.max_staleness <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("max_staleness: must be positive");
  }
  if (options.initial_backoff <= absl::ZeroDuration() ||
      options.max_backoff < options.initial_backoff) {
    return absl::InvalidArgumentError(
        "initial_backoff, max_backoff: need 0 < initial_backoff <= max_backoff");
  }
  if (options.jwks_refetch_interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("jwks_refetch_interval: must not be negative");
  }
  if (options.dpop_replay_cache_entries == 0) {
    return absl::InvalidArgumentError("dpop_replay_cache_entries: must be at least 1");
  }
  if (options.dpop.max_age <= absl::ZeroDuration() ||
      options.dpop.max_future < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("dpop: max_age must be positive, max_future not negative");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<LocalVerifier>> LocalVerifier::Create(LocalVerifierOptions options) {
  if (absl::Status s = ValidateLocalVerifierOptions(options); !s.ok()) return s;
  auto impl = std::make_unique<Impl>(std::move(options));
  impl->Start();
  return std::unique_ptr<LocalVerifier>(new LocalVerifier(std::move(impl)));
}

LocalVerifier::LocalVerifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LocalVerifier::~LocalVerifier() = default;

absl::StatusOr<token::AccessDecision> LocalVerifier::Verify(absl::string_view access_token) const {
  return impl_->Verify(access_token, token::PresentedProof(), false);
}

absl::StatusOr<token::AccessDecision> LocalVerifier::Verify(absl::string_view access_token,
                                                            const token::PresentedProof& proof,
                                                            bool binding_checked_by_caller) const {
  return impl_->Verify(access_token, proof, binding_checked_by_caller);
}

bool LocalVerifier::WaitUntilCurrent(absl::Duration timeout) const {
  return impl_->WaitUntilCurrent(timeout);
}

VerifierState LocalVerifier::state() const { return impl_->state(); }
std::string LocalVerifier::jwks_json() const { return impl_->jwks_json(); }

}  // namespace ta::client
