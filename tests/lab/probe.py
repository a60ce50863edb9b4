"""Probe a CloudCore (or its lab stand-in) the way an edge node would: HTTPS GET, no trust.

Run it INSIDE a lab namespace, never in the root namespace:

    ip netns exec ccha-edge python3 tests/lab/probe.py 10.213.102.100
    ip netns exec ccha-edge python3 tests/lab/probe.py fd5c:c0e:213::100 --path /readyz

Prints one line: ``<node> sans=IP:...,IP:...`` (node from the X-Lab-Node header, ``?`` when
absent; SANs of the certificate the server presented) and exits 0 on HTTP 200; prints ``none``
and exits 1 when nothing answers (or ``http=<code>`` and exits 2 on another status).
Standard library only.
"""
from __future__ import annotations

import argparse
import http.client
import os
import socket
import ssl
import subprocess
import sys
import tempfile


def sans_of(der: bytes) -> list[str]:
    """Subject alternative names of a DER certificate, as ``IP:...``/``DNS:...`` strings."""
    pem = ssl.DER_cert_to_PEM_cert(der)
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as handle:
        handle.write(pem)
        path = handle.name
    try:
        try:
            decoded = ssl._ssl._test_decode_cert(path)  # stdlib, private but stable since 3.x
            out = []
            for kind, value in decoded.get("subjectAltName", ()):
                out.append(f"{'IP' if kind == 'IP Address' else kind}:{value.rstrip()}")
            return out
        except Exception:  # pragma: no cover - fall back to the openssl CLI
            text = subprocess.run(
                ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", path],
                capture_output=True, text=True, check=False).stdout
            lines = [line.strip() for line in text.splitlines()[1:] if line.strip()]
            return [item.strip().replace("IP Address:", "IP:") for line in lines for item in line.split(",")]
    finally:
        os.unlink(path)


def normalise_ip(san: str) -> str:
    """ssl prints IPv6 SANs expanded (FD5C:C0E:213:0:0:0:0:100); show them compressed."""
    kind, value = san.split(":", 1) if ":" in san else (san, "")
    if kind == "IP" and ":" in value:
        try:
            value = socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, value))
        except OSError:
            pass
    return f"{kind}:{value}"


def probe(host: str, port: int, path: str, timeout: float) -> tuple[int, str, list[str]]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    try:
        conn.request("GET", path, headers={"User-Agent": "ccha-lab-probe"})
        response = conn.getresponse()
        response.read()
        der = conn.sock.getpeercert(binary_form=True) if conn.sock else None
        sans = [normalise_ip(s) for s in sans_of(der)] if der else []
        return response.status, response.getheader("X-Lab-Node") or "?", sans
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="HTTPS probe of a CloudCore address (run inside a lab netns).")
    parser.add_argument("host", help="IPv4 or IPv6 address (no brackets)")
    parser.add_argument("--port", type=int, default=10002)
    parser.add_argument("--path", default="/ca.crt")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    args = parser.parse_args(argv)
    try:
        status, node, sans = probe(args.host.strip("[]"), args.port, args.path, args.timeout)
    except (OSError, ssl.SSLError, http.client.HTTPException):
        print("none")
        return 1
    if status != 200:
        print(f"{node} http={status}")
        return 2
    print(f"{node} sans={','.join(sans)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
