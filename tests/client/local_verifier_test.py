#!/usr/bin/python3
"""client/python/local_verifier.py against a real server (run by run_example.sh python_verifier).

Usage: local_verifier_test.py HOST:PORT API_KEY_FILE SERVER_PID SERVER_BINARY DATA_DIR

A fresh token is active locally; RevokeToken, RevokeFamily and RevokeSubject each make a token
inactive within 1 s (the delay is printed); an expired and a forged token are inactive; with
the server stopped the verifier fails closed (revocations_stale) within ~1 s; with the server
started again (same address and data dir) it follows the new one: active again, and a token
revoked before is still inactive (the new server's snapshot).
"""

import base64
import json
import os
import signal
import subprocess
import sys
import time

import grpc

from tokenauthority.v1 import token_authority_pb2 as pb
from tokenauthority.v1 import token_authority_pb2_grpc as pb_grpc
from local_verifier import CHANNEL_OPTIONS, LocalVerifier

BOUND_S = 1.0
LEEWAY_S = 0.5


def fail(what):
    print("FAIL:", what, file=sys.stderr)
    sys.exit(1)


def wait_for(verifier, token, reason, what, start, bound=BOUND_S):
    """Polls verify() until it answers `reason`; returns the delay since `start` (monotonic,
    taken before the call that revoked) in seconds."""
    while True:
        result = verifier.verify(token)
        if not result.active and result.reason == reason:
            delay = time.monotonic() - start
            print("%s: inactive (%s) locally after %.0f ms" % (what, reason, delay * 1000))
            return delay
        if time.monotonic() - start > bound:
            fail("%s: still %s after %.1f s" % (what, result, bound))
        time.sleep(0.005)


def wait_exited(pid):
    """Until `pid` has exited (a zombie of the driver counts: it is not our child)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/stat" % pid, encoding="ascii") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except FileNotFoundError:
            return
        time.sleep(0.01)
    fail("the server did not exit within 10 s of SIGTERM")


def main(argv):
    address, key_file, server, data_dir = argv[1], argv[2], argv[4], argv[5]
    server_pid = int(argv[3])
    with open(key_file, encoding="ascii") as f:
        api_key = f.read().strip()
    metadata = [("authorization", "Bearer " + api_key)]
    with grpc.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        authority = pb_grpc.TokenAuthorityStub(channel)
        admin = pb_grpc.TokenAdminStub(channel)

        def issue(subject):
            return authority.IssueTokens(pb.IssueTokensRequest(
                subject=subject, client_id="verifier-py", scope="read"),
                timeout=10, metadata=metadata)

        expiring = issue("erin-py")
        skew = [0.0]  # the verifier's clock runs this far ahead (to see a token expire)
        verifier = LocalVerifier(channel, api_key, issuer="token-authority", audience="api",
                                 leeway_s=LEEWAY_S, stale_after_s=BOUND_S,
                                 clock=lambda: time.time() + skew[0])
        verifier.start()
        began = time.monotonic()
        while verifier.staleness() is None:
            if time.monotonic() - began > 5:
                fail("no bookmark within 5 s")
            time.sleep(0.01)

        def active(token, what):
            result = verifier.verify(token)
            if not result.active:
                fail("%s: inactive (%s), want active" % (what, result.reason))
            return result.claims

        claims = active(expiring.access_token, "fresh token")
        print("fresh token: active locally, sub", claims["sub"])

        delays = []
        one = issue("alice-py")
        active(one.access_token, "alice")
        start = time.monotonic()
        authority.RevokeToken(pb.RevokeTokenRequest(token=one.access_token), timeout=10,
                              metadata=metadata)
        delays.append(wait_for(verifier, one.access_token, "token_revoked", "RevokeToken", start))

        two = issue("bob-py")
        active(two.access_token, "bob")
        start = time.monotonic()
        authority.RevokeFamily(pb.RevokeFamilyRequest(family_id=two.family_id), timeout=10,
                               metadata=metadata)
        delays.append(wait_for(verifier, two.access_token, "family_revoked", "RevokeFamily", start))

        three = issue("carol-py")
        active(three.access_token, "carol")
        start = time.monotonic()
        admin.RevokeSubject(pb.RevokeSubjectRequest(subject="carol-py"), timeout=10,
                            metadata=metadata)
        delays.append(wait_for(verifier, three.access_token, "subject_revoked", "RevokeSubject",
                                 start))
        print("revocation delays: max %.0f ms" % (max(delays) * 1000))

        # Forged: another subject in the payload under the original signature.
        fresh = issue("dave-py")
        head, body, sig = fresh.access_token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        claims["sub"] = "mallory"
        forged_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        forged = ".".join([head, forged_body, sig])
        result = verifier.verify(forged)
        if result.active or result.reason != "bad_signature":
            fail("forged token: %s, want inactive bad_signature" % (result,))
        print("forged token: inactive (bad_signature)")

        body = expiring.access_token.split(".")[1]
        exp = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["exp"]
        if not verifier.verify(expiring.access_token).active:
            fail("the token to expire is not active before its exp")
        # Last of the revocation checks: with its clock moved on, the verifier drops entries
        # dead by then, rightly.
        skew[0] = exp + LEEWAY_S + 1 - time.time()
        wait_for(verifier, expiring.access_token, "token_expired",
                 "expired token (clock at exp+leeway+1s)",
                 time.monotonic())
        skew[0] = 0.0

        start = time.monotonic()
        os.kill(server_pid, signal.SIGTERM)
        delay = wait_for(verifier, fresh.access_token, "revocations_stale", "server stopped",
                         start, bound=BOUND_S + 0.5)
        print("server stopped: fail closed after %.0f ms (bound %.0f ms after the last as_of)"
              % (delay * 1000, BOUND_S * 1000))

        wait_exited(server_pid)  # it holds the data dir's lock until then
        restarted = subprocess.Popen(
            [server, "--listen=" + address, "--data_dir=" + data_dir, "--default_audience=api"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            line = restarted.stdout.readline()
            if not line.startswith("listening on "):
                fail("server restarted: no listening line (exit %s)" % restarted.wait())
            start = time.monotonic()
            while not verifier.verify(fresh.access_token).active:
                if time.monotonic() - start > 10:
                    fail("server restarted: still %s after 10 s"
                         % (verifier.verify(fresh.access_token),))
                time.sleep(0.01)
            print("server restarted: active again locally %.0f ms after it listened"
                  % ((time.monotonic() - start) * 1000))
            result = verifier.verify(one.access_token)
            if result.active or result.reason != "token_revoked":
                fail("server restarted: the token revoked before is %s" % (result,))
            print("server restarted: the token revoked before is still inactive (token_revoked)")
        finally:
            restarted.terminate()
            restarted.wait()
        verifier.stop()
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
