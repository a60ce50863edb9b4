"""Listening sockets, optionally created inside a named network namespace.

A socket belongs to the network namespace it was created in, whatever thread later uses it.  So a
listener for ``NETNS:ADDR:PORT`` is made by switching the calling thread into
``/run/netns/NETNS`` with ``os.setns``, creating + binding the socket, and switching back.  This
must run before the serving threads start (it only touches the calling thread, but keep it simple).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from dataclasses import dataclass
from typing import Iterator

NETNS_DIR = "/run/netns"


@dataclass
class ListenSpec:
    host: str
    port: int
    netns: str | None = None

    def __str__(self) -> str:
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.netns + ':' if self.netns else ''}{h}:{self.port}"


def parse_listen(value: str, netns: str | None = None) -> ListenSpec:
    """``127.0.0.1:6443``, ``[::1]:6443``, ``::1:6443`` (last colon = port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address must be ADDR:PORT, got {value!r}")
    host = host.strip("[]")
    ipaddress.ip_address(host)
    return ListenSpec(host, int(port), netns)


def parse_listen_netns(value: str) -> ListenSpec:
    """``NETNS:ADDR:PORT``, e.g. ``ccha-lab:10.213.102.1:6443``."""
    netns, sep, rest = value.partition(":")
    if not sep or not netns or "/" in netns:
        raise ValueError(f"--listen-netns must be NETNS:ADDR:PORT, got {value!r}")
    return parse_listen(rest, netns)


@contextlib.contextmanager
def in_netns(name: str | None) -> Iterator[None]:
    """Run the block with the calling thread in network namespace ``name`` (None: stay)."""
    if not name:
        yield
        return
    orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY)
    try:
        os.setns(target, os.CLONE_NEWNET)
        try:
            yield
        finally:
            os.setns(orig, os.CLONE_NEWNET)
    finally:
        os.close(target)
        os.close(orig)


def open_listener(spec: ListenSpec, backlog: int = 128) -> socket.socket:
    family = socket.AF_INET6 if ":" in spec.host else socket.AF_INET
    with in_netns(spec.netns):
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((spec.host, spec.port))
            sock.listen(backlog)
        except OSError:
            sock.close()
            raise
    return sock
