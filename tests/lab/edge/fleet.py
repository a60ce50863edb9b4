"""N edge nodes in one asyncio process: ramped start, status every second, a timeline at exit."""
from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import random
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass

from . import pki
from .edgenode import EdgeNode
from .profiles import Profile
from .wire import client_context

TIMELINE_FORMAT = "ccha-edge-timeline/1"
STATUS_FORMAT = "ccha-edge-status/1"


@dataclass
class FleetConfig:
    count: int
    profile: Profile
    server: tuple[str, int]
    tunnel_port: int
    sources: list[str]
    ca_cert: str
    ca_key: str
    timeline: str | None
    status_file: str | None
    status_interval: float = 1.0
    ramp: float = 100.0
    name_prefix: str = "edge-"
    cert_dir: str | None = None
    duration: float = 3600.0
    seed: int | None = None


def parse_sources(text: str, count: int) -> list[str]:
    """'127.0.1.0/22', '127.0.1.1,127.0.1.2' or a mix: the first ``count`` usable addresses."""
    addresses: list[str] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if "/" in part:
            network = ipaddress.ip_network(part, strict=False)
            hosts = network.hosts() if network.num_addresses > 2 else iter(network)
            for host in hosts:
                addresses.append(str(host))
                if len(addresses) >= count:
                    break
        else:
            addresses.append(str(ipaddress.ip_address(part)))
        if len(addresses) >= count:
            break
    if len(addresses) < count:
        raise ValueError(f"{count} edges need {count} source addresses; {text!r} gives {len(addresses)}")
    if len(set(addresses)) != len(addresses):
        raise ValueError("source addresses repeat: each edge needs its own (haproxy pairs 10000/10004 by source)")
    return addresses[:count]


def in_root_netns() -> bool:
    """True unless this process runs inside a named network namespace (/run/netns/*: the lab's).

    /proc/1/ns/net cannot be read from inside `ip netns exec` here, so the test is positive: our
    namespace must be one of the named ones; anything else counts as the root namespace."""
    try:
        own = os.stat("/proc/self/ns/net")
        names = os.listdir("/run/netns")
    except OSError:
        return True
    for name in names:
        try:
            named = os.stat(os.path.join("/run/netns", name))
        except OSError:
            continue
        if (named.st_dev, named.st_ino) == (own.st_dev, own.st_ino):
            return False
    return True


def check_targets(server: str, sources: list[str]) -> None:
    """Network safety: in the root namespace nothing but loopback is addressed (lab README)."""
    if not in_root_netns():
        return
    for address in [server, *sources]:
        if not ipaddress.ip_address(address).is_loopback:
            raise ValueError(f"{address} is not loopback: outside a network namespace the fleet addresses only "
                             "127.0.0.0/8 and ::1 (run it inside the lab's edge namespace)")


class Fleet:
    """Builds the edges, starts them gently, reports, and writes the timeline when stopped."""

    def __init__(self, config: FleetConfig):
        self.config = config
        self.edges: list[EdgeNode] = []
        self.mono0 = time.monotonic()
        self.wall0 = time.time()
        self.started = 0
        self.ready_at: float | None = None
        self.running = True
        self._cert_dir = config.cert_dir
        self._own_cert_dir = False

    def clock(self) -> float:
        return time.monotonic() - self.mono0

    def build(self) -> None:
        """One certificate and two TLS contexts (edgehub verifies, edgestream does not) per edge."""
        c = self.config
        check_targets(c.server[0], c.sources)
        ca, ca_key = pki.load_ca(c.ca_cert, c.ca_key)
        ca_pem = pki.ca_pem(ca)
        if self._cert_dir is None:
            self._cert_dir, self._own_cert_dir = tempfile.mkdtemp(prefix="ccha-edge-certs-"), True
        width = max(4, len(str(c.count)))
        rng = random.Random(c.seed)
        for index in range(c.count):
            name = f"{c.name_prefix}{index + 1:0{width}d}"
            cert_file, key_file = pki.write_edge(self._cert_dir, name, *pki.sign_edge(ca, ca_key, name))
            self.edges.append(EdgeNode(
                name, c.sources[index], c.profile, c.server, c.tunnel_port,
                client_context(ca_pem, cert_file, key_file), client_context(None, cert_file, key_file),
                self.clock, random.Random(rng.random())))

    async def run(self, stop: asyncio.Event) -> None:
        c = self.config
        status = asyncio.get_running_loop().create_task(self._status_loop())
        try:
            await self._ramp(stop)
            if c.duration > 0:
                try:
                    await asyncio.wait_for(stop.wait(), max(0.0, c.duration - self.clock()))
                except asyncio.TimeoutError:
                    log(f"fleet: duration {c.duration:g}s reached, stopping")
            else:
                await stop.wait()
        finally:
            status.cancel()
            await asyncio.gather(status, return_exceptions=True)
            self.running = False
            await asyncio.gather(*(edge.stop() for edge in self.edges[:self.started]), return_exceptions=True)
            self.write_status()
            self.write_timeline()
            if self._own_cert_dir:
                shutil.rmtree(self._cert_dir, ignore_errors=True)

    async def _ramp(self, stop: asyncio.Event) -> None:
        """Start edge i at i / ramp seconds: a reconnect storm is the server's test, not the start."""
        interval = 1.0 / self.config.ramp if self.config.ramp > 0 else 0.0
        begin = time.monotonic()
        for index, edge in enumerate(self.edges):
            if stop.is_set():
                return
            delay = begin + index * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            edge.start()
            self.started += 1
        log(f"fleet: {self.started} edges started in {time.monotonic() - begin:.1f}s")

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.status_interval)
            if self.config.status_file:
                self.write_status()
            else:
                self.status()  # still notices "ready"

    def status(self) -> dict:
        connected, unserved, tunnels = Counter(), Counter(), Counter()
        unnoticed = sum(edge.unnoticed for edge in self.edges)
        for edge in self.edges:
            if edge.hub_node is not None:
                (connected if edge.served else unserved)[edge.hub_node] += 1
            if edge.tunnel_node is not None:
                tunnels[edge.tunnel_node] += 1
        total_connected = sum(connected.values())
        # an edge is paired when its hub connection and its tunnel reached the same CloudCore (balanced
        # mode's promise); split: both up on different CloudCores (KubeEdge #3439's failure)
        both = [edge for edge in self.edges if edge.hub_node is not None and edge.tunnel_node is not None]
        paired = sum(1 for edge in both if edge.hub_node == edge.tunnel_node)
        if self.ready_at is None and total_connected == len(self.edges) and self.edges:
            self.ready_at = self.clock()
            log(f"fleet: ready: all {len(self.edges)} edges connected after {self.ready_at:.1f}s")
        return {
            "format": STATUS_FORMAT, "time": round(time.time(), 3), "t": round(self.clock(), 3),
            "profile": self.config.profile.name, "server": "%s:%d" % self.config.server,
            "edges": len(self.edges), "started": self.started,
            "connected": dict(sorted(connected.items())), "connected_total": total_connected,
            "unserved": dict(sorted(unserved.items())),
            "disconnected": len(self.edges) - total_connected - sum(unserved.values()),
            "disconnected_unnoticed": unnoticed,
            "tunnels": dict(sorted(tunnels.items())),
            "paired": paired, "split": len(both) - paired,
            "reconnects": sum(max(0, edge.connects - 1) for edge in self.edges),
            "ready": total_connected == len(self.edges) and bool(self.edges),
            "ready_at": None if self.ready_at is None else round(self.ready_at, 3),
            "running": self.running,
        }

    def write_status(self) -> None:
        if self.config.status_file:
            write_json(self.config.status_file, self.status(), indent=1)

    def write_timeline(self) -> None:
        if not self.config.timeline:
            return
        c = self.config
        write_json(c.timeline, {
            "format": TIMELINE_FORMAT,
            "profile": c.profile.settings(),
            "server": "%s:%d" % c.server, "tunnel_port": c.tunnel_port,
            "clock": {"mono0": self.mono0, "wall0": self.wall0},
            "ended": {"t": round(self.clock(), 3), "wall": round(time.time(), 3)},
            "ready_at": self.ready_at,
            "event_fields": ["t", "wall", "event", "detail"],
            "edges": {edge.name: {"source": edge.source, "events": edge.events} for edge in self.edges},
        })


def write_json(path: str, data: dict, indent: int | None = None) -> None:
    """Atomic: readers never see half a file."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=indent, separators=(",", ":") if indent is None else None)
        handle.write("\n")
    os.replace(tmp, path)


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def run_fleet(config: FleetConfig) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # as Go >= 1.19 does for edgecore
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    fleet = Fleet(config)
    fleet.build()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log(f"fleet: {config.count} edges, profile {config.profile.name}, server {config.server[0]}:{config.server[1]}, "
        f"tunnel port {config.tunnel_port if config.profile.tunnel else 'off'}, ramp {config.ramp:g}/s")
    await fleet.run(stop)
    log("fleet: stopped; timeline written" if config.timeline else "fleet: stopped")
    return 0
