#!/usr/bin/python3
"""Sender-constrained sessions against a real server (issue 26 item 4), with DPoP proofs made
by implementations nobody here wrote: by hand with python3-cryptography (this file, with
dpop_interop_test.py's helpers), and by npm `dpop` and `oauth4webapi` (dpop_node/
dpop_prover.mjs, one proof per JSON line asked on its stdin).

Over gRPC, as a login service and a resource server would call it: a bound IssueTokens (the
client's proof for the login service's URL), Introspect with the resource's proof (ath), a
refresh with a proof, then what a thief or a careless client sends: the proof again (replay),
the bound access token as a bearer token, the refresh token without a proof or with another
key (nothing spent: the client refreshes afterwards). With --nonce the server runs with
--dpop_nonce: a proof without the nonce is refused use_dpop_nonce and the trailer `dpop-nonce`
carries the one to retry with. With --http, RFC 7662 introspection over HTTP with the proof as
form fields.

Usage: dpop_server_interop.py ADDRESS API_KEY_FILE PROVER [--nonce] [--http HOST:PORT]
  PROVER: python | node-dpop:NODE_WORK_DIR | node-oauth4webapi:NODE_WORK_DIR
Needs the generated stubs on PYTHONPATH (run_dpop_server.sh makes them).
"""
import base64
import hashlib
import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dpop_interop_test as py_dpop  # noqa: E402  (the hand-made proofs)

from tokenauthority.v1 import token_authority_pb2 as pb  # noqa: E402
from tokenauthority.v1 import token_authority_pb2_grpc as pb_grpc  # noqa: E402

LOGIN_URL = "https://login.example.com/session"
TOKEN_URL = "https://as.example.com/oauth2/token"
RESOURCE_URL = "https://api.example.com/orders"
failures = []


def expect(name, got, want):
    if got != want:
        failures.append(f"{name}: got {got!r}, want {want!r}")


def ath_of(token):
    return base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()


class PythonProver:
    """Proofs built by hand with python3-cryptography."""
    can_omit_ath = True

    def __init__(self, alg="ES256"):
        self.alg, self.key = alg, py_dpop.new_key(alg)
        self.jkt = py_dpop.thumbprint(py_dpop.public_jwk(alg, self.key))

    def proof(self, htm, htu, access_token=None, nonce=None):
        return py_dpop.proof(self.alg, self.key, htm=htm, htu=htu,
                             ath=ath_of(access_token) if access_token else None, nonce=nonce)


class NodeProver:
    """Proofs made by npm dpop or oauth4webapi in a node process (dpop_prover.mjs)."""

    def __init__(self, lib, work_dir):
        self.can_omit_ath = lib != "oauth4webapi"
        self.proc = subprocess.Popen(["node", os.path.join(work_dir, "dpop_prover.mjs"), lib],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.jkt = self._ask({"op": "jkt"})["jkt"]

    def _ask(self, request):
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("dpop_prover.mjs ended")
        return json.loads(line)

    def proof(self, htm, htu, access_token=None, nonce=None):
        return self._ask({"op": "proof", "htm": htm, "htu": htu, "access_token": access_token,
                          "nonce": nonce})["proof"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def trailer(error, name):
    for key, value in error.trailing_metadata() or ():
        if key == name:
            return value
    return ""


def possession(proof, htm, htu):
    return pb.ProofOfPossession(dpop_proof=proof, http_method=htm, http_url=htu)


class Server:
    def __init__(self, address, api_key):
        self.channel = grpc.insecure_channel(address)
        self.stub = pb_grpc.TokenAuthorityStub(self.channel)
        self.metadata = [("authorization", "Bearer " + api_key)]

    def call(self, method, request):
        """(response, reason, dpop-nonce trailer)."""
        try:
            return method(request, timeout=10, metadata=self.metadata), "ok", ""
        except grpc.RpcError as e:
            return None, trailer(e, "ta-reason"), trailer(e, "dpop-nonce")

    def issue(self, subject, proof=None):
        return self.call(self.stub.IssueTokens, pb.IssueTokensRequest(
            subject=subject, client_id="spa", scope="read", proof=proof))

    def refresh(self, token, proof=None, client_id=""):
        return self.call(self.stub.RefreshTokens, pb.RefreshTokensRequest(
            refresh_token=token, proof=proof, client_id=client_id))

    def introspect(self, token, proof=None, checked_by_caller=False):
        response, reason, _ = self.call(self.stub.Introspect, pb.IntrospectRequest(
            token=token, include_reason=True, proof=proof,
            binding_checked_by_caller=checked_by_caller))
        if response is None:
            return {"error": reason}
        return response


def bound_session(server, prover, label):
    """The walk of a bound session; returns the family's latest token pair."""
    login = possession(prover.proof("POST", LOGIN_URL), "POST", LOGIN_URL)
    pair, reason, _ = server.issue(f"alice-{label}", login)
    expect(f"{label}: bound IssueTokens", reason, "ok")
    if pair is None:
        return None
    expect(f"{label}: token_type", pair.token_type, "DPoP")
    expect(f"{label}: replayed login proof", server.issue(f"alice-{label}", login)[1],
           "dpop_replayed")

    def resource_proof(token):
        return possession(prover.proof("GET", RESOURCE_URL, access_token=token), "GET",
                          RESOURCE_URL)

    seen = server.introspect(pair.access_token, resource_proof(pair.access_token))
    expect(f"{label}: introspect with ath", getattr(seen, "active", seen), True)
    expect(f"{label}: cnf.jkt", getattr(getattr(seen, "cnf", None), "jkt", None), prover.jkt)
    expect(f"{label}: claims cnf.jkt",
           seen.claims["cnf"]["jkt"] if hasattr(seen, "claims") else None, prover.jkt)
    as_bearer = server.introspect(pair.access_token)
    expect(f"{label}: bound token as bearer", getattr(as_bearer, "inactive_reason", as_bearer),
           "proof_required")
    once = resource_proof(pair.access_token)
    server.introspect(pair.access_token, once)
    again = server.introspect(pair.access_token, once)
    expect(f"{label}: replayed resource proof", getattr(again, "inactive_reason", again),
           "dpop_replayed")
    if prover.can_omit_ath:  # oauth4webapi always sends ath with a resource request
        no_ath = possession(prover.proof("GET", RESOURCE_URL), "GET", RESOURCE_URL)
        missing = server.introspect(pair.access_token, no_ath)
        expect(f"{label}: proof without ath", getattr(missing, "inactive_reason", missing),
               "dpop_missing_claim")

    # A thief with the refresh token only: nothing rotates, nothing is spent.
    thief = PythonProver("EdDSA")
    expect(f"{label}: refresh without proof", server.refresh(pair.refresh_token)[1],
           "proof_required")
    stolen = possession(thief.proof("POST", TOKEN_URL), "POST", TOKEN_URL)
    expect(f"{label}: refresh by another key", server.refresh(pair.refresh_token, stolen)[1],
           "proof_key_mismatch")
    refresh_proof = possession(prover.proof("POST", TOKEN_URL), "POST", TOKEN_URL)
    expect(f"{label}: refresh for another client",
           server.refresh(pair.refresh_token, refresh_proof, "other")[1], "client_mismatch")
    # The legitimate client refreshes afterwards (the proof above was refused before its jti
    # was recorded, so it is still good).
    nxt, reason, _ = server.refresh(pair.refresh_token, refresh_proof, "spa")
    expect(f"{label}: legitimate refresh", reason, "ok")
    if nxt is None:
        return None
    expect(f"{label}: refreshed token_type", nxt.token_type, "DPoP")
    expect(f"{label}: replayed refresh proof", server.refresh(nxt.refresh_token, refresh_proof)[1],
           "dpop_replayed")
    fresh = server.introspect(nxt.access_token, resource_proof(nxt.access_token))
    expect(f"{label}: refreshed token introspected", getattr(fresh, "active", fresh), True)
    return nxt


def nonce_round(server, prover):
    """--dpop_nonce: refused without it, the trailer carries it, accepted with it."""
    _, reason, nonce = server.issue("nonce", possession(prover.proof("POST", LOGIN_URL), "POST",
                                                        LOGIN_URL))
    expect("nonce: proof without it", reason, "use_dpop_nonce")
    expect("nonce: dpop-nonce trailer present", bool(nonce), True)
    pair, reason, _ = server.issue("nonce", possession(
        prover.proof("POST", LOGIN_URL, nonce=nonce), "POST", LOGIN_URL))
    expect("nonce: proof with it", reason, "ok")


def http_introspect(http, api_key, token, form):
    body = urllib.parse.urlencode(dict(form, token=token)).encode()
    request = urllib.request.Request(f"http://{http}/oauth2/introspect", data=body, headers={
        "Authorization": "Bearer " + api_key,
        "Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def http_round(server, prover, http, api_key):
    pair, _, _ = server.issue("http", possession(prover.proof("POST", LOGIN_URL), "POST",
                                                 LOGIN_URL))
    token = pair.access_token
    form = {"dpop_proof": prover.proof("GET", RESOURCE_URL, access_token=token),
            "dpop_method": "GET", "dpop_url": RESOURCE_URL}
    seen = http_introspect(http, api_key, token, form)
    expect("http: active with the proof", seen.get("active"), True)
    expect("http: cnf.jkt", seen.get("cnf", {}).get("jkt"), prover.jkt)
    expect("http: token_type", seen.get("token_type"), "DPoP")
    expect("http: the same proof again", http_introspect(http, api_key, token, form),
           {"active": False})
    expect("http: as a bearer token", http_introspect(http, api_key, token, {}),
           {"active": False})
    checked = http_introspect(http, api_key, token, {"binding_checked_by_caller": "true"})
    expect("http: checked by caller", checked.get("cnf", {}).get("jkt"), prover.jkt)


def main(argv):
    address, key_file, prover_name = argv[1], argv[2], argv[3]
    nonce = "--nonce" in argv
    http = argv[argv.index("--http") + 1] if "--http" in argv else None
    api_key = open(key_file).read().strip()
    server = Server(address, api_key)
    if prover_name == "python":
        provers = [("python-" + alg, PythonProver(alg)) for alg in ["ES256", "EdDSA", "RS256",
                                                                     "PS256"]]
    else:
        lib, work = prover_name.split(":", 1)
        provers = [(lib, NodeProver(lib.removeprefix("node-"), work))]
    for label, prover in provers:
        if nonce:
            nonce_round(server, prover)
        else:
            bound_session(server, prover, label)
            if http:
                http_round(server, prover, http, api_key)
        if isinstance(prover, NodeProver):
            prover.close()
    if failures:
        print("\n".join(failures))
        return 1
    print(f"dpop server interop ({prover_name}{', nonce' if nonce else ''}): all as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
