#!/usr/bin/env python3
"""One ES256 proof, its bound token and key thumbprint, for core/examples/dpop_cost.rs:
  python3 scripts/bench.d/dpop_cost_mint.py /tmp/dpop.json  (minted by t/dpop/mint.py)"""
import base64, json, subprocess, sys, time
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
mint = "t/dpop/mint.py"
k = json.loads(subprocess.check_output(["python3", mint, "key", sys.argv[1] + ".pem"]))
t = int(time.time())
token = b64(b'{"alg":"ES256"}') + "." + b64(json.dumps({"sub": "bench", "cnf": {"jkt": k["jkt"]}, "exp": t + 3600}).encode()) + "." + b64(b"s" * 64)
spec = [{"key": sys.argv[1] + ".pem", "htm": "GET", "htu": "http://localhost/x", "iat": t, "jti": "0f8b8c4e-4b8e-4f0e-9d6a-3a7e0c2b1d5f", "token": token}]
p = json.loads(subprocess.run(["python3", mint, "proofs"], input=json.dumps(spec).encode(), capture_output=True, check=True).stdout)[0]
json.dump({"token": token, "jkt": k["jkt"], "proof": p, "htu": "http://localhost/x", "iat": t}, open(sys.argv[1], "w"))
