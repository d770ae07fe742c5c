#!/usr/bin/python3
"""Verify token-authority access tokens locally, following the revocation stream.

Usage: local_verifier.py HOST:PORT API_KEY_FILE ISSUER AUDIENCE < tokens   (one per line)
  prints "active" or "inactive REASON" per token, e.g. with the stubs in OUT (example.py's header):
    PYTHONPATH=OUT:client/python /usr/bin/python3 client/python/local_verifier.py \
        127.0.0.1:50051 data/admin.key token-authority api < tokens.txt

As a library:

    from local_verifier import CHANNEL_OPTIONS, LocalVerifier
    channel = grpc.insecure_channel("127.0.0.1:50051", options=CHANNEL_OPTIONS)
    verifier = LocalVerifier(channel, api_key, issuer="token-authority", audience="api")
    verifier.start()                    # GetJwks + WatchRevocations in a background thread
    result = verifier.verify(token)     # Result(active, reason, claims)

The signature and the claims are checked with PyJWT against the JWKS (GetJwks): typ at+jwt,
iss, aud, exp/nbf with a leeway. Revocations come from TokenAuthority/WatchRevocations
(docs/revocation-stream.md, "Served"): a token is inactive while its jti (kind JTI) or its
session `sid` (kinds FAMILY, SUBJECT) is held. The verifier fails closed: when the last
bookmark's as_of is older than `stale_after` (1 s), every answer is inactive with reason
revocations_stale. The JWKS is refetched on a `keys` event and on an unknown kid.

The caller needs the role `resource` (or admin). Stubs are generated as for example.py
(PYTHONPATH=OUT, see its header); Debian's python3-grpcio and python3-jwt, hence /usr/bin/python3.
"""

import collections
import json
import sys
import threading
import time

import grpc
import jwt

from tokenauthority.v1 import token_authority_pb2 as pb
from tokenauthority.v1 import token_authority_pb2_grpc as pb_grpc

# gRPC's default reconnect backoff grows past 1 minute: a verifier whose server came back would
# stay stale for that long. Reconnect within about a second instead.
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 100),
                   ("grpc.min_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 1000)]

Result = collections.namedtuple("Result", "active reason claims")

KIND_REASON = {
    pb.RevocationEvent.JTI: "token_revoked",
    pb.RevocationEvent.FAMILY: "family_revoked",
    pb.RevocationEvent.SUBJECT: "subject_revoked",
}


class LocalVerifier:
    """Local access-token decisions backed by the revocation stream. Thread-safe."""

    def __init__(self, channel, api_key, issuer, audience, leeway_s=30.0, stale_after_s=1.0,
                 clock=time.time):
        self._stub = pb_grpc.TokenAuthorityStub(channel)
        self._metadata = [("authorization", "Bearer " + api_key)] if api_key else []
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_s
        self._stale_after = stale_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._keys = {}            # kid -> (PyJWK, alg)
        self._jwks_version = None
        self._last_jwks_fetch = 0.0
        self._jtis = {}            # jti -> (live_until, reason)
        self._sids = {}            # family id -> (live_until, reason)
        self._pending = None       # (jtis, sids) while a snapshot arrives, swapped in at its end
        self._position = None      # WatchPosition to resume from
        self._as_of = None         # last bookmark's as_of (seconds since the epoch)
        self._stop = threading.Event()
        self._call = None
        self._thread = None

    # --- the stream -------------------------------------------------------------------------

    def start(self):
        self.refresh_jwks()
        self._thread = threading.Thread(target=self._follow, name="revocations", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        call = self._call
        if call is not None:
            call.cancel()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _follow(self):
        backoff = 0.05
        while not self._stop.is_set():
            request = pb.WatchRevocationsRequest(batches=True)  # snapshot pages in one message
            with self._lock:
                if self._position is not None:
                    request.since.CopyFrom(self._position)
            try:
                # wait_for_ready: wait for the server to come back rather than fail fast (a
                # fail-fast call left the channel unconnected for seconds after a restart).
                call = self._call = self._stub.WatchRevocations(request, metadata=self._metadata,
                                                                wait_for_ready=True)
                if self._stop.is_set():  # stop() ran before this call existed
                    call.cancel()
                for event in call:
                    self._apply(event)
                    backoff = 0.05
            except grpc.RpcError:
                # Reconnect and resume, whatever the code (a server shutting down may answer
                # CANCELLED too); staleness, not this error, decides what verify answers.
                pass
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 1.0)

    def _apply(self, event):
        which = event.WhichOneof("event")
        refetch = False
        with self._lock:
            if which == "reset":
                # Keep the old view (and its bookmark) until the snapshot is complete.
                self._pending = ({}, {})
                self._position = pb.WatchPosition(epoch=event.reset.epoch, seq=0)
            elif which == "entry":
                self._hold_locked((event.entry,))
            elif which == "batch":
                self._hold_locked(event.batch.entries)
            elif which == "end_of_snapshot":
                if self._pending is not None:
                    self._jtis, self._sids = self._pending
                    self._pending = None
                self._position.seq = event.end_of_snapshot.seq
            elif which == "bookmark":
                if self._pending is None:  # a bookmark proves nothing about a half snapshot
                    self._as_of = event.bookmark.as_of.ToNanoseconds() / 1e9
                    self._position.seq = event.bookmark.seq
                self._prune_locked()
            elif which == "keys":
                refetch = event.keys.jwks_version != self._jwks_version
                self._jwks_version = event.keys.jwks_version
        if refetch:
            self.refresh_jwks()

    def _hold_locked(self, entries):
        jtis, sids = self._pending if self._pending is not None else (self._jtis, self._sids)
        for entry in entries:
            held = jtis if entry.kind == pb.RevocationEvent.JTI else sids
            held[entry.id] = (entry.live_until.ToNanoseconds() / 1e9,
                              KIND_REASON.get(entry.kind, "token_revoked"))
            self._position.seq = entry.seq

    def _prune_locked(self):
        now = self._clock()
        for held in (self._jtis, self._sids):
            for dead in [key for key, (live_until, _) in held.items() if live_until <= now]:
                del held[dead]

    # --- keys -------------------------------------------------------------------------------

    def refresh_jwks(self):
        """Fetches the JWKS (GetJwks); keeps the old keys when the call fails."""
        try:
            response = self._stub.GetJwks(pb.GetJwksRequest(), timeout=5, metadata=self._metadata)
        except grpc.RpcError:
            return False
        keys = {}
        for jwk in json.loads(response.jwks_json).get("keys", []):
            try:
                keys[jwk["kid"]] = (jwt.PyJWK(jwk), jwk.get("alg"))
            except (KeyError, jwt.PyJWKError):
                continue  # a key type this PyJWT cannot use: its tokens stay inactive
        with self._lock:
            self._keys = keys
            self._last_jwks_fetch = self._clock()
        return True

    def _key_for(self, kid):
        with self._lock:
            found = self._keys.get(kid)
            may_refetch = self._clock() - self._last_jwks_fetch >= 1.0
        if found is None and may_refetch:  # a new key not announced yet, at most once a second
            self.refresh_jwks()
            with self._lock:
                found = self._keys.get(kid)
        return found

    # --- the decision -----------------------------------------------------------------------

    def staleness(self):
        """Seconds since the last bookmark's as_of (None: no bookmark yet)."""
        with self._lock:
            return None if self._as_of is None else self._clock() - self._as_of

    def verify(self, token):
        """Result(active, reason, claims). The token's own checks come first (a forged or
        expired token is inactive whatever the stream says), then the revocations, which are
        trusted only while the last bookmark is younger than stale_after."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return Result(False, "malformed", None)
        if str(header.get("typ", "")).lower() not in ("at+jwt", "application/at+jwt"):
            return Result(False, "not_access_token", None)
        found = self._key_for(header.get("kid"))
        if found is None:
            return Result(False, "unknown_key", None)
        key, alg = found
        if alg is None or header.get("alg") != alg:
            return Result(False, "bad_signature", None)
        try:
            # exp and nbf are checked below against the verifier's clock.
            claims = jwt.decode(token, key=key.key, algorithms=[alg], issuer=self._issuer,
                                audience=self._audience,
                                options={"require": ["exp", "jti", "sub", "sid"],
                                         "verify_exp": False, "verify_nbf": False,
                                         "verify_iat": False})
        except jwt.InvalidIssuerError:
            return Result(False, "wrong_issuer", None)
        except jwt.InvalidAudienceError:
            return Result(False, "wrong_audience", None)
        except jwt.InvalidSignatureError:
            return Result(False, "bad_signature", None)
        except jwt.PyJWTError:
            return Result(False, "malformed", None)
        now = self._clock()
        if not isinstance(claims["exp"], (int, float)) or now >= claims["exp"] + self._leeway:
            return Result(False, "token_expired", None)
        nbf = claims.get("nbf")
        if nbf is not None and (not isinstance(nbf, (int, float)) or now + self._leeway < nbf):
            return Result(False, "token_not_yet_valid", None)
        with self._lock:
            if self._as_of is None or now - self._as_of > self._stale_after:
                return Result(False, "revocations_stale", None)  # fail closed
            for held, name in ((self._jtis, "jti"), (self._sids, "sid")):
                hit = held.get(claims[name])
                if hit is not None and now < hit[0]:
                    return Result(False, hit[1], None)
        return Result(True, "", claims)


def main(argv):
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[2], encoding="ascii") as key_file:
        api_key = key_file.read().strip()
    with grpc.insecure_channel(argv[1], options=CHANNEL_OPTIONS) as channel:
        verifier = LocalVerifier(channel, api_key, issuer=argv[3], audience=argv[4])
        verifier.start()
        time.sleep(0.5)  # the snapshot and a first bookmark
        for line in sys.stdin:
            result = verifier.verify(line.strip())
            print("active" if result.active else "inactive " + result.reason)
        verifier.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
