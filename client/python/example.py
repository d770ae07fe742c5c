#!/usr/bin/python3
"""token-authority from Python: issue -> introspect -> refresh -> reuse -> revoke-family.

Usage: example.py HOST:PORT [API_KEY_FILE]

The stubs are generated, never committed. Generate them into a directory on PYTHONPATH:

    protoc -I proto --python_out=OUT --grpc_python_out=OUT \
        --plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin \
        proto/tokenauthority/v1/token_authority.proto
    PYTHONPATH=OUT /usr/bin/python3 client/python/example.py 127.0.0.1:50051 data/admin.key

Debian's python3-grpcio and python3-protobuf are used, hence /usr/bin/python3.
Exits 0 when every step behaves as the API contract says, 1 on the first deviation.
"""

import sys

import grpc

from tokenauthority.v1 import token_authority_pb2 as pb
from tokenauthority.v1 import token_authority_pb2_grpc as pb_grpc

TIMEOUT_S = 10


class Deviation(Exception):
    """A step did not behave as the contract says."""


def expect(condition, what):
    if not condition:
        raise Deviation(what)


def reason_of(error):
    """The machine-readable reason: the `ta-reason` trailer (never parse the message)."""
    for key, value in error.trailing_metadata() or ():
        if key == "ta-reason":
            return value
    return ""


def run(address, api_key):
    metadata = [("authorization", "Bearer " + api_key)] if api_key else []
    with grpc.insecure_channel(address) as channel:
        authority = pb_grpc.TokenAuthorityStub(channel)

        def call(method, request):
            return method(request, timeout=TIMEOUT_S, metadata=metadata)

        def issue(subject):
            return call(authority.IssueTokens, pb.IssueTokensRequest(
                subject=subject, client_id="example-py", scope="read write",
                session_metadata={"device": "python-example"}))

        def active(token):
            return call(authority.Introspect, pb.IntrospectRequest(token=token)).active

        first = issue("alice-py")
        expect(first.access_token and first.refresh_token and first.family_id, "issue: empty pair")
        print("issue: family", first.family_id)

        info = call(authority.Introspect, pb.IntrospectRequest(token=first.access_token))
        expect(info.active, "introspect: fresh access token is not active")
        expect(info.subject == "alice-py", "introspect: wrong subject " + info.subject)
        expect(info.family_id == first.family_id, "introspect: wrong family")
        print("introspect: active, subject", info.subject)

        second = call(authority.RefreshTokens,
                      pb.RefreshTokensRequest(refresh_token=first.refresh_token))
        expect(second.family_id == first.family_id, "refresh: family changed")
        expect(second.refresh_token != first.refresh_token, "refresh: token not rotated")
        print("refresh: rotated")

        try:
            call(authority.RefreshTokens, pb.RefreshTokensRequest(refresh_token=first.refresh_token))
            raise Deviation("reuse: a spent refresh token was accepted")
        except grpc.RpcError as error:
            expect(error.code() == grpc.StatusCode.UNAUTHENTICATED,
                   "reuse: code %s, want UNAUTHENTICATED" % error.code())
            expect(reason_of(error) == "refresh_token_reused",
                   "reuse: reason %r, want refresh_token_reused" % reason_of(error))
        expect(not active(second.access_token), "reuse: the family's access token is still active")
        print("reuse: refused (refresh_token_reused), family revoked")

        again = call(authority.RevokeFamily,
                     pb.RevokeFamilyRequest(family_id=first.family_id, reason="logout"))
        expect(not again.changed, "revoke-family: a family revoked by reuse changed again")
        other = issue("bob-py")
        revoked = call(authority.RevokeFamily,
                       pb.RevokeFamilyRequest(family_id=other.family_id, reason="logout"))
        expect(revoked.changed, "revoke-family: a live family did not change")
        expect(not active(other.access_token), "revoke-family: access token still active")
        print("revoke-family: revoked", other.family_id)


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    api_key = ""
    if len(argv) == 3:
        with open(argv[2], encoding="ascii") as key_file:
            api_key = key_file.read().strip()
    try:
        run(argv[1], api_key)
    except Deviation as deviation:
        print("FAIL:", deviation, file=sys.stderr)
        return 1
    except grpc.RpcError as error:
        print("FAIL: unexpected error %s %s: %s" % (error.code(), reason_of(error), error.details()),
              file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
