#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (tests/fuzz/corpus/<target>/seed-*).

Past findings live beside the seeds as finding-* files and are never rewritten here.
Needs protoc and python3-protobuf: make_seeds.py [REPO_ROOT]
"""
import base64, json, os, struct, subprocess, sys, tempfile

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
gen = tempfile.mkdtemp()
subprocess.check_call(["protoc", "-I" + root + "/proto", "--python_out=" + gen,
                       root + "/proto/tokenauthority/v1/token_authority.proto"])
subprocess.check_call(["protoc", "-I" + root, "--python_out=" + gen, root + "/storage/records.proto"])
sys.path.insert(0, gen)
from tokenauthority.v1 import token_authority_pb2 as api  # noqa: E402
from storage import records_pb2 as rec  # noqa: E402


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=")


def write(target, name, data):
    d = os.path.join(root, "tests/fuzz/corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# base64url
for i, s in enumerate([b"", b"QQ", b"QUI", b"QUJD", b"_-8", b"QQ==", b"a b", b"A", b"AAAA" * 50]):
    write("base64url", str(i), s)

# jwt: mode byte + input
header = {"alg": "ES256", "kid": "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", "typ": "at+jwt"}
claims = {"iss": "token-authority", "sub": "alice", "aud": "api", "exp": 1800000300,
          "iat": 1800000000, "nbf": 1800000000, "jti": "q5AJ5c8zYjS0oFJpZf3Cqw",
          "client_id": "web", "scope": "read write", "sid": "3Yl3Y2h1c2k0ZmFtaWx5aQ"}
hb, cb = json.dumps(header).encode(), json.dumps(claims).encode()
token = b64(hb) + b"." + b64(cb) + b"." + b64(b"\x01" * 64)
write("jwt", "token", b"\x00" + token)
write("jwt", "token-none", b"\x00" + b64(b'{"alg":"none"}') + b"." + b64(cb) + b".")
write("jwt", "token-hs256", b"\x00" + b64(b'{"alg":"HS256","kid":"x","typ":"at+jwt"}') + b"." + b64(cb) + b"." + b64(b"\x02" * 32))
write("jwt", "header", b"\x01" + hb)
write("jwt", "header-jku", b"\x01" + b'{"alg":"ES256","kid":"k","jku":"https://x","crit":["exp"]}')
write("jwt", "claims", b"\x02" + cb)
write("jwt", "claims-array-aud", b"\x02" + json.dumps(dict(claims, aud=["a", "b"])).encode())
write("jwt", "claims-bad-types", b"\x02" + b'{"iss":1,"sub":["x"],"exp":"soon","iat":1e400}')
write("jwt", "extra", b"\x03" + b'{"tenant":"acme","roles":["a","b"],"n":{"deep":[1,2.5,null,true]}}')
write("jwt", "extra-reserved", b"\x03" + b'{"sub":"evil","x":"\\ud800"}')
write("jwt", "jwk-ec", b"\x04" + json.dumps({"kty": "EC", "crv": "P-256",
      "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
      "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}).encode())
write("jwt", "jwk-okp", b"\x04" + b'{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}')
write("jwt", "jwk-rsa", b"\x04" + b'{"kty":"RSA","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"}')

# storage_codec: decoder byte + value (version 1, u64 BE drop-after, proto)
def value(msg, drop=1800000000 * 10**6):
    return b"\x01" + struct.pack(">Q", drop) + msg.SerializeToString()

fam = rec.FamilyRecordProto(family_id=b"F" * 16, subject=b"alice", client_id="web", audience=["api"],
                            scope="read write", metadata={"device": "laptop"}, issued_by="admin",
                            created_at_micros=1, expires_at_micros=2, generation=3,
                            rotated_at_micros=1, revoked=True, revoked_at_micros=2,
                            revoke_reason="logout", revoked_by="admin", extra_claims_json='{"a":1}')
write("storage_codec", "family", b"\x00" + value(fam))
write("storage_codec", "refresh", b"\x01" + value(rec.RefreshRecordProto(
    family_id=b"F" * 16, generation=7, secret_hash=b"h" * 32, scope="read", issued_at_micros=1,
    expires_at_micros=2, has_spent_at=True, spent_at_micros=3)))
write("storage_codec", "subject", b"\x02" + value(rec.SubjectRecordProto(
    subject=b"alice", not_before_micros=-(2**63), block_until_micros=2**63 - 1, reason="ban",
    revoked_by="admin", updated_at_micros=5, expires_at_micros=6)))
write("storage_codec", "denied", b"\x03" + value(rec.DeniedJtiProto(expires_at_micros=9)))
write("storage_codec", "index-key", b"\x04" + struct.pack(">H", 5) + b"alice" + struct.pack(">Q", 2**62) + b"F" * 16)
write("storage_codec", "page-token", b"\x05" + b64(b"\x00" * 24))
write("storage_codec", "format-version", b"\x06" + value(rec.FormatVersionProto(format_version=1), 0))
write("storage_codec", "header", b"\x07" + b"\x01" + struct.pack(">Q", 12345))
write("storage_codec", "bad-version", b"\x00" + b"\x02" + struct.pack(">Q", 1) + b"\x0a\x01")

# request: RPC byte + serialized request; AT / RT / SPENT / FID name a fresh family's tokens.
reqs = [
    (0, api.IssueTokensRequest(subject="bob", client_id="web", audience=["api", "b"], scope="read",
                               session_metadata={"device": "phone", "ip": "10.0.0.1"})),
    (1, api.RefreshTokensRequest(refresh_token="RT", scope="read")),
    (1, api.RefreshTokensRequest(refresh_token="SPENT")),
    (2, api.IntrospectRequest(token="AT", audience="api", include_reason=True)),
    (2, api.IntrospectRequest(token="RT")),
    (3, api.IntrospectBatchRequest(requests=[api.IntrospectRequest(token="AT"),
                                             api.IntrospectRequest(token="SPENT")])),
    (4, api.RevokeTokenRequest(token="AT")),
    (4, api.RevokeTokenRequest(token="RT")),
    (5, api.RevokeFamilyRequest(family_id="FID", reason="logout")),
    (5, api.RevokeFamilyRequest(token="AT")),
    (6, api.RevokeSubjectRequest(subject="carol", reason="ban")),
    (7, api.ListFamiliesRequest(subject="alice", page_size=2, include_revoked=True)),
    (8, api.GetFamilyRequest(family_id="FID")),
    (9, api.GetJwksRequest()),
    (10, api.GetStatsRequest()),
]
issue = api.IssueTokensRequest(subject="dave", client_id="web")
issue.extra_claims.update({"tenant": "acme", "n": 1, "l": [1, "x"]})
reqs.append((0, issue))
block = api.RevokeSubjectRequest(subject="erin")
block.block_until.seconds = 1900000000
block.not_before.seconds = 1700000000
reqs.append((6, block))
for i, (rpc, msg) in enumerate(reqs):
    write("request", "%02d-rpc%d" % (i, rpc), bytes([rpc]) + msg.SerializeToString())

# http_request: byte 0 = piece size (low 3 bits) and repeated tail length (high 5 bits),
# then what one connection sends (the reader's limits: header 1 KiB, body 2 KiB).
def http(name, piece, tail, data):
    write("http_request", name, bytes([(tail << 3) | piece]) + data)


form = b"POST /oauth2/introspect HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n" \
       b"Content-Type: application/x-www-form-urlencoded\r\n"
http("get", 7, 0, b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"e\"\r\n\r\n")
http("post-length", 4, 0, form + b"Content-Length: 9\r\n\r\ntoken=abc")
http("post-chunked", 2, 0, form + b"Transfer-Encoding: chunked\r\n\r\n"
     b"3;ext=1\r\ntok\r\n6\r\nen=abc\r\n0\r\nX-Trailer: t\r\n\r\n")
http("expect-continue", 5, 0, form + b"Expect: 100-continue\r\nContent-Length: 3\r\n\r\nt=1")
http("pipelined", 6, 0, b"GET /healthz/live HTTP/1.1\r\nHost: x\r\n\r\n"
     b"HEAD /metrics HTTP/1.0\r\n\r\nGET /healthz/ready?x=1 HTTP/1.1\r\nHost: x\r\n"
     b"Connection: close\r\n\r\n")
http("folded-header", 3, 0, b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: a\r\n b\r\n\r\n")
# Issue 22 item 1: a chunk-size line that never ends, a trailer that never ends, a header
# that never ends, and an endless stream of tiny chunks.
http("endless-chunk-ext", 7, 8, form + b"Transfer-Encoding: chunked\r\n\r\n1;a=bbbbbbbb")
http("endless-trailer", 7, 8, form + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX: yyyyyyyy")
http("endless-header", 7, 8, b"GET / HTTP/1.1\r\nX: zzzzzzzz")
http("endless-chunks", 7, 10, form + b"Transfer-Encoding: chunked\r\n\r\n1;e=x\r\na\r\n")
print("seeds written")
