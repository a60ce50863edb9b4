"""Helpers shared by tests/lab/test_cloudhub.py and test_fleet.py (loopback only)."""
from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass

LAB = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STANDIN = os.path.join(LAB, "standin")
if STANDIN not in sys.path:
    sys.path.insert(0, STANDIN)

import cloudhub  # noqa: E402
import kubeedge_pki  # noqa: E402

from . import pki  # noqa: E402
from .wire import client_context  # noqa: E402


@dataclass
class LabPKI:
    """A CloudCore CA and serving certificate as the stand-in has them, plus a foreign CA."""

    directory: str
    ca_pem: bytes
    ca_key_pem: bytes
    cert_pem: bytes
    key_pem: bytes
    other_ca_pem: bytes
    other_ca_key_pem: bytes

    @classmethod
    def create(cls, directory: str) -> LabPKI:
        ca, ca_key = kubeedge_pki.new_ca()
        cert, key = kubeedge_pki.sign_server(ca, ca_key, ["127.0.0.1", "::1"], ["localhost"])
        other, other_key = kubeedge_pki.new_ca()
        made = cls(directory, kubeedge_pki.cert_pem(ca), kubeedge_pki.key_pem(ca_key), kubeedge_pki.cert_pem(cert),
                   kubeedge_pki.key_pem(key), kubeedge_pki.cert_pem(other), kubeedge_pki.key_pem(other_key))
        for name in ("ca", "ca_key", "cert", "key", "other_ca", "other_ca_key"):
            with open(made.path(name), "wb") as handle:
                handle.write(getattr(made, f"{name}_pem"))
        return made

    def path(self, name: str) -> str:
        return os.path.join(self.directory, f"{name}.pem")

    def edge_contexts(self, node: str, foreign: bool = False) -> tuple[ssl.SSLContext, ssl.SSLContext]:
        """(hub, tunnel) client contexts with a certificate for ``node`` signed by our or the foreign CA."""
        ca, ca_key = pki.load_ca(self.path("other_ca" if foreign else "ca"),
                                 self.path("other_ca_key" if foreign else "ca_key"))
        cert_file, key_file = pki.write_edge(os.path.join(self.directory, "foreign" if foreign else "edges"), node,
                                             *pki.sign_edge(ca, ca_key, node))
        return client_context(self.ca_pem, cert_file, key_file), client_context(None, cert_file, key_file)


def free_port(host: str = "::") -> int:
    """A port free now (dual-stack, so on every address), and its +4 and +9 too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _attempt in range(100):
        with socket.socket(family) as first:
            first.bind((host, 0))
            port = first.getsockname()[1]
        if port + 9 > 65535:
            continue
        try:
            for offset in (4, 9):
                with socket.socket(family) as other:
                    other.bind((host, port + offset))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


class Hub:
    """A CloudHub in this process (its own thread), with its log lines kept."""

    def __init__(self, lab_pki: LabPKI, node: str = "hub-a", host: str = "127.0.0.1", port: int | None = None,
                 node_limit: int = 100, keepalive_timeout: float = 30.0):
        self.port = port or free_port()
        self.host, self.lines = host, []
        self.hub = cloudhub.CloudHub(node, lab_pki.ca_pem, lab_pki.cert_pem, lab_pki.key_pem, node_limit,
                                     websocket_port=self.port, tunnel_port=self.port + 4,
                                     metrics_address=(host, self.port + 9), log=self.lines.append, bind_host=host,
                                     keepalive_timeout=keepalive_timeout)

    def __enter__(self) -> Hub:
        self.hub.start()
        return self

    def __exit__(self, *exc) -> None:
        self.hub.stop()

    def metric(self) -> float:
        with urllib.request.urlopen(f"http://{self.host}:{self.port + 9}/metrics", timeout=5) as response:
            text = response.read().decode()
        return float(next(line for line in text.splitlines() if line.startswith(cloudhub.METRIC + " ")).split()[1])


class HubProcess:
    """standin/cloudhub.py as its own process (to SIGSTOP it, or to measure it)."""

    def __init__(self, lab_pki: LabPKI, node: str = "hub-p", host: str = "127.0.0.1", port: int | None = None,
                 keepalive_timeout: float = 30.0, python: str = sys.executable):
        self.port = port or free_port()
        self.log = os.path.join(lab_pki.directory, f"{node}.log")
        self.command = [python, os.path.join(STANDIN, "cloudhub.py"), "--node", node, "--ca", lab_pki.path("ca"),
                        "--cert", lab_pki.path("cert"), "--key", lab_pki.path("key"), "--bind", host,
                        "--port", str(self.port), "--tunnel-port", str(self.port + 4),
                        "--metrics", f"{host}:{self.port + 9}", "--keepalive-timeout", str(keepalive_timeout)]
        self.process: subprocess.Popen | None = None

    def start(self) -> HubProcess:
        with open(self.log, "ab") as log:
            offset = log.tell()
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)
        begin = time.monotonic()
        while time.monotonic() - begin < 20:
            with open(self.log, "rb") as log:
                log.seek(offset)
                if b"\nready\n" in b"\n" + log.read():
                    return self
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"cloudhub.py did not start: {open(self.log, encoding='utf-8').read()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def run(coro, timeout: float = 60.0):
    """asyncio.run with a bound: a test never hangs."""
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


async def until(predicate, timeout: float, step: float = 0.05) -> bool:
    begin = time.monotonic()
    while time.monotonic() - begin < timeout:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()
