#!/usr/bin/python3
"""Interop between our token library (through jwt_tool) and PyJWT + cryptography.

For each algorithm (ES256, EdDSA, RS256, PS256, HS256):
  1. tokens we sign verify in PyJWT using only our JWKS (HS256: the shared secret file);
  2. tokens PyJWT signs with our private key file verify with ours;
  3. foreign-key and algorithm-confusion tokens made in Python are refused by ours.
Usage: interop_test.py /path/to/jwt_tool. Exits non-zero on any mismatch.
"""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

ISS = "https://issuer.example"
AUD = "api://interop"
ALGS = ["ES256", "EdDSA", "RS256", "PS256", "HS256"]
failures = []


def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def tool(*args, stdin=None):
    proc = subprocess.run([TOOL, *args], input=stdin, capture_output=True, text=True)
    return proc.returncode, proc.stdout.strip(), proc.stderr.strip()


def check(label, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + label + ("" if ok else ": " + detail))
    if not ok:
        failures.append(label)


def active_key_file(key_dir):
    with open(os.path.join(key_dir, "keyring.json")) as f:
        manifest = json.load(f)
    entry = next(k for k in manifest["keys"] if k["active"])
    with open(os.path.join(key_dir, entry["file"]), "rb") as f:
        return f.read()


def claims(sub):
    now = int(time.time())
    return {"iss": ISS, "sub": sub, "aud": AUD, "iat": now, "nbf": now, "exp": now + 300,
            "jti": "py-" + sub, "client_id": "pyjwt"}


def foreign_key(alg):
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if alg == "HS256":
        return os.urandom(32)
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def verify_ours(key_dir, token):
    return tool("verify", "--key_dir", key_dir, "--iss", ISS, "--aud", AUD, "--allow_hs256",
                stdin=token)


def ours_to_pyjwt(alg, key_dir, kid):
    rc, token, err = tool("sign", "--key_dir", key_dir, "--iss", ISS, "--sub", "alice",
                          "--aud", AUD, "--allow_hs256", "--extra", '{"roles":["r1"]}')
    check(f"{alg}: jwt_tool sign", rc == 0, err)
    header = jwt.get_unverified_header(token)
    check(f"{alg}: header is alg/kid/typ", header == {"alg": alg, "kid": kid, "typ": "at+jwt"},
          str(header))
    rc, jwks_text, err = tool("jwks", "--key_dir", key_dir, "--allow_hs256")
    jwks = json.loads(jwks_text)
    if alg == "HS256":
        check(f"{alg}: not published in JWKS", jwks == {"keys": []}, jwks_text)
        key = b64decode(active_key_file(key_dir).decode().strip())
    else:
        jwk = next((k for k in jwks["keys"] if k["kid"] == kid), None)
        check(f"{alg}: kid in JWKS", jwk is not None, jwks_text)
        check(f"{alg}: JWKS has no private members",
              not any(m in jwk for m in ("d", "p", "q", "dp", "dq", "qi", "k")), str(jwk))
        key = jwt.PyJWK(jwk).key
    try:
        decoded = jwt.decode(token, key, algorithms=[alg], audience=AUD, issuer=ISS)
        check(f"{alg}: PyJWT verifies our token",
              decoded["sub"] == "alice" and decoded["roles"] == ["r1"], str(decoded))
    except Exception as e:  # noqa: BLE001 - report any PyJWT refusal as a mismatch
        check(f"{alg}: PyJWT verifies our token", False, repr(e))


def pyjwt_to_ours(alg, key_dir, kid):
    key_bytes = active_key_file(key_dir)
    key = b64decode(key_bytes.decode().strip()) if alg == "HS256" else \
        serialization.load_pem_private_key(key_bytes, password=None)
    headers = {"kid": kid, "typ": "at+jwt"}
    token = jwt.encode(claims("bob"), key, algorithm=alg, headers=headers)
    rc, out, err = verify_ours(key_dir, token)
    check(f"{alg}: we verify PyJWT's token", rc == 0 and json.loads(out)["sub"] == "bob", err)

    bad = jwt.encode(claims("mallory"), foreign_key(alg), algorithm=alg, headers=headers)
    rc, out, err = verify_ours(key_dir, bad)
    check(f"{alg}: we refuse a foreign key's token", rc == 1 and err.startswith("bad_signature"),
          err)

    untyped = jwt.encode(claims("bob"), key, algorithm=alg, headers={"kid": kid})
    rc, out, err = verify_ours(key_dir, untyped)
    check(f"{alg}: we refuse typ JWT", rc == 1 and err.startswith("wrong_typ"), err)


def algorithm_confusion(key_dir, kid):
    """HS256 keyed with the published public key, naming the asymmetric key's kid."""
    rc, jwks_text, err = tool("jwks", "--key_dir", key_dir)
    jwk = next(k for k in json.loads(jwks_text)["keys"] if k["kid"] == kid)
    public_pem = jwt.PyJWK(jwk).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = b64(json.dumps({"alg": "HS256", "kid": kid, "typ": "at+jwt"}).encode())
    payload = b64(json.dumps(claims("eve")).encode())
    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    rc, out, err = verify_ours(key_dir, f"{header}.{payload}.{b64(mac)}")
    check(f"{jwk['alg']}: we refuse HS256 keyed with the public key",
          rc == 1 and err.startswith("alg_mismatch"), err)


def main():
    print(f"PyJWT {jwt.__version__}")
    for alg in ALGS:
        with tempfile.TemporaryDirectory() as tmp:
            key_dir = os.path.join(tmp, "keys")
            rc, kid, err = tool("init", "--key_dir", key_dir, "--alg", alg, "--allow_hs256")
            check(f"{alg}: jwt_tool init", rc == 0 and kid, err)
            if rc != 0:
                continue
            ours_to_pyjwt(alg, key_dir, kid)
            pyjwt_to_ours(alg, key_dir, kid)
            if alg != "HS256":
                algorithm_confusion(key_dir, kid)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    TOOL = sys.argv[1]
    sys.exit(main())
