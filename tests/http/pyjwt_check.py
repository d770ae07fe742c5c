"""PyJWT's PyJWKClient verifies our access tokens from the JWKS URI that our OpenID Connect
discovery document names, before and after a key rotation (to another algorithm).

Run by run_interop.sh with /usr/bin/python3 (Debian python3-jwt): TA_HTTP, TA_TOKENCTL.
"""
import json
import os
import subprocess
import sys
import urllib.request

import jwt

base = os.environ["TA_HTTP"]
tokenctl = json.loads(os.environ["TA_TOKENCTL"])
passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, file=sys.stderr)


def ctl(*args):
    return json.loads(subprocess.check_output(tokenctl + ["--json"] + list(args)))


def issue(subject):
    return ctl("issue", subject, "--client_id=web", "--scope=read")["accessToken"]


with urllib.request.urlopen(base + "/.well-known/openid-configuration") as r:
    metadata = json.load(r)
client = jwt.PyJWKClient(metadata["jwks_uri"])
algorithms = metadata["id_token_signing_alg_values_supported"]


def verify(token, audience="api"):
    key = client.get_signing_key_from_jwt(token)
    check(jwt.get_unverified_header(token)["typ"] == "at+jwt", "typ is at+jwt")
    return jwt.decode(token, key.key, algorithms=algorithms, audience=audience,
                      issuer=metadata["issuer"], options={"require": ["exp", "iat", "sub", "jti"]})


before = issue("alice")
check(verify(before)["sub"] == "alice", "first token verifies")
rotated = ctl("rotate-key", "--alg=EdDSA")
after = issue("bob")
check(jwt.get_unverified_header(after)["kid"] == rotated["kid"], "second token has the new kid")
check(verify(after)["sub"] == "bob", "token of the rotated-in EdDSA key verifies (JWKS refetched)")
check(verify(before)["sub"] == "alice", "token of the rotated-out key still verifies")
try:
    verify(before, audience="other")
    check(False, "wrong audience is refused")
except jwt.InvalidAudienceError:
    check(True, "")
h, p, s = after.split(".")
try:
    verify(".".join([h, p, ("B" if s[0] == "A" else "A") + s[1:]]))
    check(False, "tampered signature is refused")
except jwt.InvalidSignatureError:
    check(True, "")

print(f"pyjwt: {passed} passed, {failed} failed")
sys.exit(0 if failed == 0 else 1)
