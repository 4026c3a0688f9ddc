#!/usr/bin/env python3
"""Material for scripts/bench.d/dpop.sh, minted with pyca/cryptography: an ES256 token key and
an HS256 secret (jwks.json), a token bound to a DPoP key (token.txt), N one-use proofs for one
URL (proofs.txt, one a line), and N distinct tokens like token.txt but each with its own `jti`,
signed with ES256 (es256.txt) and with HS256 (hs256.txt): each a cache miss, so that their
difference is what one ES256 check costs in the worker.

  dpop_mint.py <dir> <htu> <count>
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk(key):
    n = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": b64(n.x.to_bytes(32, "big")),
            "y": b64(n.y.to_bytes(32, "big"))}


def sign(key, header, claims):
    data = (b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())).encode()
    if isinstance(key, bytes):
        return data.decode() + "." + b64(hmac.new(key, data, hashlib.sha256).digest())
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return data.decode() + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def main():
    out, htu, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    issuer, holder = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    secret = os.urandom(32)
    with open(f"{out}/jwks.json", "w") as f:
        json.dump({"keys": [dict(jwk(issuer), kid="bench", alg="ES256"),
                            {"kty": "oct", "kid": "hs", "alg": "HS256", "k": b64(secret)}]}, f)
    pub = jwk(holder)
    canonical = json.dumps({k: pub[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
    now = int(time.time())
    jkt = b64(hashlib.sha256(canonical.encode()).digest())

    def token_of(key, alg, kid, jti):
        return sign(key, {"alg": alg, "kid": kid, "typ": "at+jwt"},
                    {"sub": "bench", "iat": now, "exp": now + 3600, "jti": jti, "cnf": {"jkt": jkt}})

    token = token_of(issuer, "ES256", "bench", "bench-token-dpop00")
    for name, key, alg, kid in (("es256", issuer, "ES256", "bench"), ("hs256", secret, "HS256", "hs")):
        with open(f"{out}/{name}.txt", "w") as f:
            for i in range(count):
                f.write(token_of(key, alg, kid, f"bench-token-{i:06d}") + "\n")
    with open(f"{out}/token.txt", "w") as f:
        f.write(token)
    ath = b64(hashlib.sha256(token.encode()).digest())
    with open(f"{out}/proofs.txt", "w") as f:
        for i in range(count):
            f.write(sign(holder, {"typ": "dpop+jwt", "alg": "ES256", "jwk": pub},
                         {"jti": f"bench-{i}", "htm": "GET", "htu": htu, "iat": now, "ath": ath}) + "\n")


main()
