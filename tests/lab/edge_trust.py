"""What an edge node would trust: for each CloudCore address, the CA its /ca.crt answers, the
certificate it serves, and an edge certificate it signs on /edge.crt (as edgecore's certmanager asks
for one: a CSR, the join token's real part as bearer token). Prints one JSON object.

Run inside a lab namespace (the edge's): ip netns exec ccha-edge .venv/bin/python tests/lab/edge_trust.py
--token "$(token)" 10.213.102.11 10.213.102.12 ... Standard library + cryptography; the formats come
from standin/kubeedge_pki.py."""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import socket
import ssl
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "standin"))
import kubeedge_pki  # noqa: E402  pylint: disable=wrong-import-position


def _request(address: str, port: int, path: str, body: bytes = b"", headers: dict | None = None,
             timeout: float = 5.0) -> tuple[int, bytes, bytes]:
    """(status, body, DER of the served certificate) of one HTTPS request, without verifying anything."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    lines = ["GET %s HTTP/1.1" % path, "Host: %s" % address, "Connection: close", "Content-Length: %d" % len(body)]
    lines += ["%s: %s" % item for item in (headers or {}).items()]
    with socket.create_connection((address, port), timeout=timeout) as raw, context.wrap_socket(raw) as tls:
        served = tls.getpeercert(binary_form=True)
        tls.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        data = b""
        while True:
            chunk = tls.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _sep, payload = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), payload, served


def trust(address: str, port: int, token: str, node: str) -> dict:
    status, ca_der, served = _request(address, port, "/ca.crt")
    out = {"ca_status": status, "ca_sha256": hashlib.sha256(ca_der).hexdigest(),
           "served_sha256": hashlib.sha256(served).hexdigest(), "served": kubeedge_pki.describe(served)}
    csr, _key = kubeedge_pki.new_csr(node)
    try:
        real = kubeedge_pki.real_token(token, ca_der)
    except ValueError as error:  # edgecore refuses a CA that does not match the token's hash
        out["edge_error"] = str(error)
        return out
    status, body, _cert = _request(address, port, "/edge.crt", csr, {"Authorization": "Bearer " + real, "NodeName": node})
    if status == 200:
        out["edge_cert"] = base64.b64encode(body).decode("ascii")
    else:
        out["edge_error"] = "HTTP %d %s" % (status, body[:200].decode("utf-8", "replace"))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("addresses", nargs="+", help="CloudCore addresses (the nodes' or the VIP)")
    parser.add_argument("--token", required=True, help="the join token (Secret kubeedge/tokensecret tokendata)")
    parser.add_argument("--port", type=int, default=10002)
    parser.add_argument("--node", default="edge-trust", help="the edge node name in the CSR")
    args = parser.parse_args()
    result = {}
    for address in args.addresses:
        try:
            result[address] = trust(address, args.port, args.token, args.node)
        except OSError as error:
            result[address] = {"error": str(error)}
    print(json.dumps(result, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
