#!/usr/bin/python3
"""DPoP proofs (RFC 9449) built by hand with python3-cryptography, checked by our
VerifyDpopProof through dpop_tool.

For each algorithm a client may use (ES256, EdDSA, RS256, PS256): a well-formed proof is
accepted and our jkt equals the RFC 7638 thumbprint computed here; then the proofs a thief
or a careless client would send (private key in the jwk, wrong method, another URL, stale
iat, HMAC, alg none, missing or wrong ath) are refused with their reasons.
Usage: dpop_interop_test.py /path/to/dpop_tool. Exits non-zero on any mismatch.
"""
import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
import uuid

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

URL = "https://as.example.com/oauth2/token"
failures = []


def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def int_bytes(n, length=None):
    length = length or (n.bit_length() + 7) // 8
    return n.to_bytes(length, "big")


def new_key(alg):
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(alg, key):
    if alg == "ES256":
        nums = key.public_key().public_numbers()
        return {"kty": "EC", "crv": "P-256", "x": b64(int_bytes(nums.x, 32)),
                "y": b64(int_bytes(nums.y, 32))}
    if alg == "EdDSA":
        raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}
    nums = key.public_key().public_numbers()
    return {"kty": "RSA", "n": b64(int_bytes(nums.n)), "e": b64(int_bytes(nums.e))}


def thumbprint(jwk):
    """RFC 7638 §3: the required members, sorted, no whitespace."""
    required = {"EC": ["crv", "kty", "x", "y"], "OKP": ["crv", "kty", "x"],
                "RSA": ["e", "kty", "n"]}[jwk["kty"]]
    canonical = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"),
                           sort_keys=True)
    return b64(hashlib.sha256(canonical.encode()).digest())


def sign(alg, key, data):
    if alg == "ES256":
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return int_bytes(r, 32) + int_bytes(s, 32)
    if alg == "EdDSA":
        return key.sign(data)
    if alg == "RS256":
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                      salt_length=32), hashes.SHA256())


def proof(alg, key, header=None, **claims):
    h = {"typ": "dpop+jwt", "alg": alg, "jwk": public_jwk(alg, key)}
    h.update(header or {})
    c = {"jti": str(uuid.uuid4()), "htm": "POST", "htu": URL, "iat": int(time.time())}
    c.update(claims)
    c = {k: v for k, v in c.items() if v is not None}
    signing_input = (b64(json.dumps(h).encode()) + "." + b64(json.dumps(c).encode())).encode()
    return signing_input.decode() + "." + b64(sign(alg, key, signing_input))


def run(p, method="POST", url=URL, *extra):
    out = subprocess.run([TOOL, "--method", method, "--url", url, *extra], input=p,
                         capture_output=True, text=True)
    if out.returncode == 0:
        return "ok", out.stdout.split()
    return out.stderr.split(":")[0], None


def expect(name, got, want):
    if got != want:
        failures.append(f"{name}: got {got}, want {want}")


def main():
    for alg in ["ES256", "EdDSA", "RS256", "PS256"]:
        key = new_key(alg)
        status, fields = run(proof(alg, key))
        expect(f"{alg} valid proof", status, "ok")
        if fields:
            expect(f"{alg} jkt", fields[0], thumbprint(public_jwk(alg, key)))
            expect(f"{alg} htu", fields[1], URL)
        # A proof with the private key in its header: refused though everything else holds.
        jwk = public_jwk(alg, key)
        if alg == "RSA" or alg in ("RS256", "PS256"):
            jwk["d"] = b64(int_bytes(key.private_numbers().d))
        elif alg == "ES256":
            jwk["d"] = b64(int_bytes(key.private_numbers().private_value, 32))
        else:
            jwk["d"] = b64(key.private_bytes(serialization.Encoding.Raw,
                                             serialization.PrivateFormat.Raw,
                                             serialization.NoEncryption()))
        expect(f"{alg} private jwk", run(proof(alg, key, header={"jwk": jwk}))[0],
               "dpop_private_key")

    key = new_key("ES256")
    expect("wrong method", run(proof("ES256", key), "GET")[0], "dpop_htm_mismatch")
    for url in ["https://evil.example.com/oauth2/token", "https://as.example.com:8443/oauth2/token",
                "https://as.example.com/oauth2/other", "http://as.example.com/oauth2/token"]:
        expect(f"htu {url}", run(proof("ES256", key, htu=url))[0], "dpop_htu_mismatch")
    for url in ["https://AS.example.com:443/oauth2/token?x=1", "https://as.example.com/oauth2/./token#f"]:
        status, fields = run(proof("ES256", key, htu=url))
        expect(f"htu variant {url}", status, "ok")
        if fields:
            expect(f"htu variant {url} normalised", fields[1], URL)
    expect("stale iat", run(proof("ES256", key, iat=int(time.time()) - 3600))[0],
           "dpop_iat_out_of_window")
    expect("future iat", run(proof("ES256", key, iat=int(time.time()) + 3600))[0],
           "dpop_iat_out_of_window")
    expect("iat as string", run(proof("ES256", key, iat=str(int(time.time()))))[0],
           "dpop_malformed")
    expect("no jti", run(proof("ES256", key, jti=None))[0], "dpop_missing_claim")
    expect("typ JWT", run(proof("ES256", key, header={"typ": "JWT"}))[0], "dpop_wrong_typ")

    token = "an.access.token"
    ath = b64(hashlib.sha256(token.encode()).digest())
    expect("ath right", run(proof("ES256", key, ath=ath), "POST", URL, "--access_token",
                            token)[0], "ok")
    expect("ath wrong", run(proof("ES256", key, ath=b64(b"x" * 32)), "POST", URL,
                            "--access_token", token)[0], "dpop_ath_mismatch")
    expect("ath missing", run(proof("ES256", key), "POST", URL, "--access_token", token)[0],
           "dpop_missing_claim")

    # HMAC with the "key" in the header, and alg none: never.
    secret = b"s" * 32
    h = {"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": b64(secret)}}
    c = {"jti": "x", "htm": "POST", "htu": URL, "iat": int(time.time())}
    si = (b64(json.dumps(h).encode()) + "." + b64(json.dumps(c).encode())).encode()
    hs = si.decode() + "." + b64(hmac.new(secret, si, hashlib.sha256).digest())
    expect("HS256", run(hs)[0], "dpop_bad_alg")
    h = {"typ": "dpop+jwt", "alg": "none", "jwk": public_jwk("ES256", key)}
    none = b64(json.dumps(h).encode()) + "." + b64(json.dumps(c).encode()) + "."
    expect("alg none", run(none)[0], "dpop_bad_alg")
    # Signed by one key, naming another.
    other = new_key("ES256")
    expect("jwk of another key",
           run(proof("ES256", key, header={"jwk": public_jwk("ES256", other)}))[0],
           "dpop_bad_signature")

    if failures:
        print("\n".join(failures))
        sys.exit(1)
    print("dpop interop: all cases as expected")


if __name__ == "__main__":
    TOOL = sys.argv[1]
    main()
