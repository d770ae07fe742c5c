#!/usr/bin/python3
"""Interop of our sealing (AES-256-GCM, server/token/seal.h) with python3-cryptography's AESGCM.

The KEK file is made the way the README says (openssl rand -base64 32, chmod 600). Values we
seal open in Python; values Python seals (version 0x01 || nonce || ciphertext || tag) open in
ours; a wrong AAD or an altered byte is refused by both. Usage: seal_interop_test.py SEAL_TOOL.
"""
import base64
import os
import subprocess
import sys
import tempfile

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

TOOL = sys.argv[1]
failures = []


def tool(*args, stdin):
    return subprocess.run([TOOL, *args], input=stdin, capture_output=True)


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


with tempfile.TemporaryDirectory() as d:
    kek_file = os.path.join(d, "kek")
    with open(kek_file, "wb") as f:
        f.write(subprocess.run(["openssl", "rand", "-base64", "32"], check=True,
                               capture_output=True).stdout)
    os.chmod(kek_file, 0o600)
    key = base64.b64decode(open(kek_file).read().strip())
    aead = AESGCM(key)
    for size in (0, 1, 32, 1000, 5000):
        secret = os.urandom(size)
        aad = b"keyring/v1/kid-%d" % size
        out = tool("seal", kek_file, aad.decode(), stdin=secret)
        check(out.returncode == 0, "seal exit %d" % size)
        sealed = base64.b64decode(out.stdout.strip())
        check(sealed[0] == 1, "version byte")
        nonce, body = sealed[1:13], sealed[13:]
        check(aead.decrypt(nonce, body, aad) == secret, "python opens ours (%d bytes)" % size)
        try:
            aead.decrypt(nonce, body, aad + b"x")
            check(False, "python refuses a wrong AAD")
        except InvalidTag:
            pass
        nonce = os.urandom(12)
        theirs = b"\x01" + nonce + aead.encrypt(nonce, secret, aad)
        back = tool("unseal", kek_file, aad.decode(), stdin=base64.b64encode(theirs))
        check(back.returncode == 0 and back.stdout == secret, "ours opens python's (%d)" % size)
        bad = tool("unseal", kek_file, "other-slot", stdin=base64.b64encode(theirs))
        check(bad.returncode == 1 and b"sealed_value_rejected" in bad.stderr, "ours refuses wrong AAD")
        flipped = bytearray(theirs)
        flipped[-1] ^= 1
        bad = tool("unseal", kek_file, aad.decode(), stdin=base64.b64encode(bytes(flipped)))
        check(bad.returncode == 1, "ours refuses an altered tag")

print("%d failures" % len(failures))
sys.exit(1 if failures else 0)
