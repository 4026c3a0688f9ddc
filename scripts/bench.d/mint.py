#!/usr/bin/env python3
"""Key and token minter for scripts/bench.

An implementation independent of the module's verifier: Python `cryptography` (pyca).
Writes into OUTDIR:
  jwks.json            public keys: kids rsa (RSA-2048), es256 (P-256), es384 (P-384),
                       ed (Ed25519), hs (oct, 32 bytes)
  <name>.tokens        one token per line, COUNT distinct tokens (distinct jti/sub):
                       rs256 ps256 es256 es384 eddsa hs256      valid, exp = now + TTL
                       badsig                                   RS256, one signature bit flipped
                       expired                                  RS256, valid signature, exp in the past
  meta.env             shell-sourceable facts (signing-input length per alg, token lengths)

Usage: mint.py OUTDIR [COUNT] [TTL_SECONDS]
"""
import base64
import json
import os
import sys
import time

from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uint_b64u(n: int, length: int = 0) -> str:
    length = length or (n.bit_length() + 7) // 8
    return b64u(n.to_bytes(length, "big"))


def main() -> None:
    out = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    ttl = int(sys.argv[3]) if len(sys.argv) > 3 else 86400
    os.makedirs(out, exist_ok=True)

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    p256 = ec.generate_private_key(ec.SECP256R1())
    p384 = ec.generate_private_key(ec.SECP384R1())
    ed = ed25519.Ed25519PrivateKey.generate()
    hs = os.urandom(32)

    rn = rsa_key.public_key().public_numbers()
    p256n = p256.public_key().public_numbers()
    p384n = p384.public_key().public_numbers()
    edraw = ed.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwks = {
        "keys": [
            {"kty": "RSA", "kid": "rsa", "use": "sig", "n": uint_b64u(rn.n), "e": uint_b64u(rn.e)},
            {"kty": "EC", "kid": "es256", "use": "sig", "crv": "P-256",
             "x": uint_b64u(p256n.x, 32), "y": uint_b64u(p256n.y, 32)},
            {"kty": "EC", "kid": "es384", "use": "sig", "crv": "P-384",
             "x": uint_b64u(p384n.x, 48), "y": uint_b64u(p384n.y, 48)},
            {"kty": "OKP", "kid": "ed", "use": "sig", "crv": "Ed25519", "x": b64u(edraw)},
            {"kty": "oct", "kid": "hs", "use": "sig", "k": b64u(hs)},
        ]
    }
    with open(os.path.join(out, "jwks.json"), "w") as f:
        json.dump(jwks, f, indent=1)

    def ecdsa(key, h, size):
        def sign(msg):
            r, s = decode_dss_signature(key.sign(msg, ec.ECDSA(h)))
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")  # JOSE: raw r||s
        return sign

    def hs256(msg):
        m = hmac.HMAC(hs, hashes.SHA256())
        m.update(msg)
        return m.finalize()

    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    signers = {
        "RS256": ("rsa", lambda m: rsa_key.sign(m, padding.PKCS1v15(), hashes.SHA256())),
        "PS256": ("rsa", lambda m: rsa_key.sign(m, pss, hashes.SHA256())),
        "ES256": ("es256", ecdsa(p256, hashes.SHA256(), 32)),
        "ES384": ("es384", ecdsa(p384, hashes.SHA384(), 48)),
        "EdDSA": ("ed", ed.sign),
        "HS256": ("hs", hs256),
    }

    now = int(time.time())

    def mint(alg, i, exp, tamper=False):
        kid, sign = signers[alg]
        header = b64u(json.dumps({"alg": alg, "typ": "JWT", "kid": kid}, separators=(",", ":")).encode())
        claims = {"iss": "https://idp.bench.example", "sub": "user-%06d" % i, "aud": "bench-api",
                  "iat": now, "exp": exp, "jti": "%s-%06d-%s" % (alg.lower(), i, os.urandom(6).hex()),
                  "scope": "read write"}
        payload = b64u(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = (header + "." + payload).encode()
        sig = bytearray(sign(signing_input))
        if tamper:
            sig[len(sig) // 2] ^= 0x01  # still well-formed base64url and length: a full verify that fails
        return signing_input, header + "." + payload + "." + b64u(bytes(sig))

    sets = {
        "rs256": ("RS256", now + ttl, False),
        "ps256": ("PS256", now + ttl, False),
        "es256": ("ES256", now + ttl, False),
        "es384": ("ES384", now + ttl, False),
        "eddsa": ("EdDSA", now + ttl, False),
        "hs256": ("HS256", now + ttl, False),
        "badsig": ("RS256", now + ttl, True),
        "expired": ("RS256", now - 3600, False),
    }
    meta = {}
    for name, (alg, exp, tamper) in sets.items():
        with open(os.path.join(out, name + ".tokens"), "w") as f:
            for i in range(count):
                si, tok = mint(alg, i, exp, tamper)
                f.write(tok + "\n")
        meta["SIGNING_INPUT_LEN_" + name.upper()] = len(si)
        meta["TOKEN_LEN_" + name.upper()] = len(tok)
    meta["TOKENS_MINTED_AT"] = now
    meta["TOKENS_EXP"] = now + ttl
    with open(os.path.join(out, "meta.env"), "w") as f:
        for k, v in meta.items():
            f.write("%s=%s\n" % (k, v))


if __name__ == "__main__":
    main()
