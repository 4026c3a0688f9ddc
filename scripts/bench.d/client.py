#!/usr/bin/env python3
"""Sequential keep-alive HTTP client for the callgrind runs of scripts/bench.

Usage: client.py PORT COUNT EXPECT_STATUS TOKEN_FILE [OFFSET]
Sends COUNT GET / requests on one keep-alive connection to 127.0.0.1:PORT, the i-th with
`Authorization: Bearer <line OFFSET+i of TOKEN_FILE>` (wrapping around; a file with one line
means the same token every time). Fails if any status differs from EXPECT_STATUS.
"""
import http.client
import sys


def main() -> int:
    port, count, expect = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    with open(sys.argv[4]) as f:
        tokens = [line.strip() for line in f if line.strip()]
    offset = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    bad = 0
    for i in range(count):
        tok = tokens[(offset + i) % len(tokens)]
        conn.request("GET", "/", headers={"Authorization": "Bearer " + tok})
        resp = conn.getresponse()
        resp.read()
        if resp.status != expect:
            bad += 1
            if bad <= 3:
                print("client.py: request %d: status %d, expected %d" % (i, resp.status, expect), file=sys.stderr)
    conn.close()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
