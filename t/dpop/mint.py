#!/usr/bin/env python3
"""DPoP proofs for the tests (RFC 9449), minted with pyca/cryptography: an implementation
independent of the module's OpenSSL code paths.

  mint.py key <pem-path>   makes a P-256 key, prints {"jwk": <public jwk>, "jkt": <RFC 7638>}
  mint.py proofs           reads a JSON list of proof specs on stdin, prints a JSON list

A spec: {"key": <pem-path>, "htm", "htu", "iat", "jti", "token" (for ath),
         "header": {overrides, null removes}, "claims": {overrides, null removes},
         "private": true (put "d" into the jwk), "alg": "ES256"}.
"""
import base64
import hashlib
import json
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def coord(n):
    return b64(n.to_bytes(32, "big"))


def public_jwk(key):
    nums = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": coord(nums.x), "y": coord(nums.y)}


def thumbprint(jwk):
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")},
                           separators=(",", ":"), sort_keys=True)
    return b64(hashlib.sha256(canonical.encode()).digest())


def load(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def merge(base, overrides):
    for name, value in (overrides or {}).items():
        if value is None:
            base.pop(name, None)
        else:
            base[name] = value
    return base


def proof(spec):
    key = load(spec["key"])
    jwk = public_jwk(key)
    if spec.get("private"):
        jwk["d"] = coord(key.private_numbers().private_value)
    header = merge({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}, spec.get("header"))
    claims = {"jti": spec["jti"], "htm": spec["htm"], "htu": spec["htu"], "iat": spec["iat"]}
    if "token" in spec:
        claims["ath"] = b64(hashlib.sha256(spec["token"].encode()).digest())
    claims = merge(claims, spec.get("claims"))
    signing_input = (b64(json.dumps(header).encode()) + "." +
                     b64(json.dumps(claims).encode())).encode()
    der = key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return signing_input.decode() + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def main():
    if sys.argv[1] == "key":
        key = ec.generate_private_key(ec.SECP256R1())
        with open(sys.argv[2], "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        jwk = public_jwk(key)
        print(json.dumps({"jwk": jwk, "jkt": thumbprint(jwk)}))
    else:
        print(json.dumps([proof(spec) for spec in json.load(sys.stdin)]))


main()
