#!/usr/bin/env python3
"""Sequential keep-alive client for the callgrind runs of scripts/bench.d/dpop.sh.

Usage: dpop_client.py PORT DIR KIND COUNT
KIND: bearer (DIR/token.txt to /bearer/), dpop (that token with line i of DIR/proofs.txt
to /dpop/), es256 or hs256 (line i of DIR/<kind>.txt to /bearer/). Fails unless every
answer is 200.
"""
import http.client
import sys


def main() -> int:
    port, folder, kind, count = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    token = open(f"{folder}/token.txt").read().strip()
    lines = []
    if kind != "bearer":
        with open(f"{folder}/{'proofs' if kind == 'dpop' else kind}.txt") as f:
            lines = [line.strip() for line in f if line.strip()]
        if count > len(lines):
            print(f"dpop_client.py: {count} requests, {len(lines)} lines", file=sys.stderr)
            return 1
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    bad = 0
    for i in range(count):
        if kind == "bearer":
            path, headers = "/bearer/", {"Authorization": "Bearer " + token}
        elif kind == "dpop":
            path, headers = "/dpop/", {"Authorization": "DPoP " + token, "DPoP": lines[i]}
        else:
            path, headers = "/bearer/", {"Authorization": "Bearer " + lines[i]}
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            bad += 1
            if bad <= 3:
                print(f"dpop_client.py: {kind} request {i}: status {resp.status}", file=sys.stderr)
    conn.close()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
