#!/usr/bin/python3
"""Mints the JWE test tokens of t/jwe.rs with jwcrypto (an implementation independent of the
module's): one key set, every alg x enc pair, nested tokens, and the attacks that need a JOSE
library to build. Prints {"jwks": ..., "single": ..., "tokens": {name: token}} as JSON."""

import base64
import json
import os
import sys
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.keywrap import aes_key_wrap
from jwcrypto import jwa, jwe, jwk, jws

ALGS = ["dir", "A128KW", "A192KW", "A256KW", "A128GCMKW", "A192GCMKW", "A256GCMKW",
        "RSA-OAEP", "RSA-OAEP-256", "RSA-OAEP-384", "RSA-OAEP-512"]
ENCS = ["A128CBC-HS256", "A192CBC-HS384", "A256CBC-HS512", "A128GCM", "A192GCM", "A256GCM"]
CEK = {"A128CBC-HS256": 32, "A192CBC-HS384": 48, "A256CBC-HS512": 64,
       "A128GCM": 16, "A192GCM": 24, "A256GCM": 32}


def oaep(alg_name, h):
    """jwcrypto 1.1 has RSA-OAEP and RSA-OAEP-256; -384 and -512 the same way (RFC 7518)."""
    class Oaep(jwa._RSA, jwa.JWAAlgorithm):  # pylint: disable=protected-access
        name = alg_name
        keysize = 2048
        algorithm_usage_location = "alg"
        algorithm_use = "kex"
        description = alg_name

        def __init__(self):
            super().__init__(padding.OAEP(padding.MGF1(h()), h(), None))
    jwa.JWA.algorithms_registry.setdefault(alg_name, Oaep)


oaep("RSA-OAEP-384", hashes.SHA384)
oaep("RSA-OAEP-512", hashes.SHA512)
EVERY = ALGS + ENCS + ["RSA1_5", "PBES2-HS256+A128KW", "ECDH-ES", "ECDH-ES+A128KW"]


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def oct_key(kid, size, use):
    return jwk.JWK(kty="oct", kid=kid, use=use, k=b64(os.urandom(size)))


def encrypt(payload, key, alg, enc, **extra):
    header = {"alg": alg, "enc": enc, **extra}
    if key.get("kid") and "kid" not in extra:
        header["kid"] = key["kid"]
    token = jwe.JWE(payload, json.dumps(header))
    token.allowed_algs = EVERY
    token.add_recipient(key)
    return token.serialize(compact=True)


def main():
    now = int(time.time())
    claims = json.dumps({"sub": "alice", "exp": now + 3600, "iat": now})
    octs = {n: oct_key(f"oct-{n}", n, "enc") for n in (16, 24, 32, 48, 64)}
    rsa_enc = jwk.JWK.generate(kty="RSA", size=2048, kid="rsa-enc", use="enc")
    rsa_sig = jwk.JWK.generate(kty="RSA", size=2048, kid="rsa-sig", use="sig")
    hs = oct_key("hs", 32, "sig")
    ec = jwk.JWK.generate(kty="EC", crv="P-256", kid="ec-enc", use="enc")
    single = oct_key("single", 32, "enc")

    tokens = {}
    for alg in ALGS:
        for enc in ENCS:
            if alg == "dir":
                key = octs[CEK[enc]]
            elif alg.startswith("RSA"):
                key = rsa_enc
            else:
                key = octs[int(alg[1:4]) // 8]
            tokens[f"{alg} {enc}"] = encrypt(claims, key, alg, enc)

    # Nested: a JWS signed by rsa-sig, encrypted for rsa-enc and for an oct key.
    inner = jws.JWS(claims.encode())
    inner.add_signature(rsa_sig, None, json.dumps({"alg": "RS256", "kid": "rsa-sig"}))
    inner = inner.serialize(compact=True)
    tokens["inner"] = inner
    tokens["nested RSA-OAEP-256"] = encrypt(inner, rsa_enc, "RSA-OAEP-256", "A256GCM", cty="JWT")
    tokens["nested A256KW"] = encrypt(inner, octs[32], "A256KW", "A128CBC-HS256", cty="JWT")
    tokens["nested without cty"] = encrypt(inner, octs[32], "A256KW", "A256GCM")
    tokens["claims as nested"] = encrypt(claims, octs[32], "A256KW", "A256GCM", cty="JWT")
    # An inner JWS signed with a decryption key's secret: only signing keys verify.
    forged = jws.JWS(claims.encode())
    forged.add_signature(jwk.JWK(kty="oct", k=octs[32]["k"]), None,
                         json.dumps({"alg": "HS256", "kid": "oct-32"}))
    forged = forged.serialize(compact=True)
    tokens["inner signed by oct-32"] = encrypt(forged, octs[32], "A256KW", "A256GCM", cty="JWT")
    tokens["jws signed by oct-32"] = forged
    # The signing secret used to encrypt: signing keys never decrypt.
    hs_any = jwk.JWK(kty="oct", kid="hs", k=hs["k"])
    tokens["encrypted with hs"] = encrypt(claims, hs_any, "dir", "A256GCM")
    tokens["wrapped with hs"] = encrypt(claims, hs_any, "A256KW", "A256GCM")
    hs_no_kid = jwk.JWK(kty="oct", k=hs["k"])
    tokens["encrypted with hs, no kid"] = encrypt(claims, hs_no_kid, "dir", "A256GCM")
    tokens["wrapped with hs, no kid"] = encrypt(claims, hs_no_kid, "A256KW", "A256GCM")
    # dir with a key of another size: oct-16's secret under A256GCM's name needs 32 bytes.
    tokens["dir 32 for oct-16"] = encrypt(claims, oct_key("oct-16", 32, "enc"), "dir", "A256GCM")
    # Refused algorithms and compression, made by jwcrypto.
    tokens["RSA1_5"] = encrypt(claims, rsa_enc, "RSA1_5", "A128GCM")
    pbes = jwk.JWK(kty="oct", kid="oct-16", k=b64(b"password1234"))
    tokens["PBES2"] = encrypt(claims, pbes, "PBES2-HS256+A128KW", "A128GCM")
    tokens["ECDH-ES"] = encrypt(claims, ec, "ECDH-ES", "A128GCM", kid="oct-16")
    tokens["ECDH-ES+A128KW"] = encrypt(claims, ec, "ECDH-ES+A128KW", "A128GCM", kid="oct-16")
    tokens["zip"] = encrypt(claims, octs[16], "A128KW", "A128GCM", zip="DEF")
    # A content key of the wrong size, properly wrapped (24 bytes for A128CBC-HS256's 32).
    header = b64(json.dumps({"alg": "A128KW", "enc": "A128CBC-HS256", "kid": "oct-16"}).encode())
    ek = aes_key_wrap(base64.urlsafe_b64decode(octs[16]["k"] + "=="), os.urandom(24))
    tokens["cek 24 for 32"] = ".".join([header, b64(ek), b64(os.urandom(16)),
                                        b64(os.urandom(32)), b64(os.urandom(16))])
    tokens["single"] = encrypt(claims, single, "dir", "A256GCM")

    keys = [json.loads(k.export(private_key=True)) for k in [*octs.values(), rsa_enc, hs]]
    keys.append(json.loads(rsa_sig.export_public()))
    keys.append(json.loads(ec.export_public()))
    single_jwk = json.loads(single.export(private_key=True))
    json.dump({"jwks": {"keys": keys}, "single": single_jwk, "tokens": tokens}, sys.stdout)


main()
