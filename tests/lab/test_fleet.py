"""The edge fleet (tests/lab/edge) against standin/cloudhub.py: loopback, shortened timers, seconds.

Each test shrinks edgecore's timers (heartbeat, dial interval, backoff) and checks the schedule
edgecore v1.23.1 (or #6966/#6967 for edgecore-next) would follow, from the fleet's timeline.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import struct
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
pytest.importorskip("cryptography")

from cryptography import x509  # noqa: E402

from edge import edgenode as ev  # noqa: E402
from edge.fleet import Fleet, FleetConfig, parse_sources  # noqa: E402
from edge.profiles import PROFILES, Backoff  # noqa: E402
from edge.testing import Hub, HubProcess, LabPKI, free_port, run, until  # noqa: E402

SLACK = 0.25  # scheduling tolerance on a loaded 2-core machine


@pytest.fixture(scope="module")
def lab_pki(tmp_path_factory) -> LabPKI:
    return LabPKI.create(str(tmp_path_factory.mktemp("pki")))


def make_fleet(lab_pki: LabPKI, tmp_path, count: int, profile: str, port: int, sources: str, prefix: str = "e-",
               host: str = "127.0.0.1", tunnel: bool = True, **overrides) -> Fleet:
    config = FleetConfig(
        count=count, profile=PROFILES[profile].override(tunnel=tunnel, **overrides), server=(host, port),
        tunnel_port=port + 4, sources=parse_sources(sources, count), ca_cert=lab_pki.path("ca"),
        ca_key=lab_pki.path("ca_key"), timeline=str(tmp_path / f"{prefix}timeline.json"),
        status_file=str(tmp_path / f"{prefix}status.json"), status_interval=0.2, ramp=200.0, name_prefix=prefix,
        cert_dir=str(tmp_path / f"{prefix}certs"), duration=0, seed=7)
    fleet = Fleet(config)
    fleet.build()
    return fleet


class Running:
    """A fleet running in the current loop until ``stop()``."""

    def __init__(self, fleet: Fleet):
        self.fleet, self.stop_event = fleet, asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(fleet.run(self.stop_event))

    async def ready(self, timeout: float = 15) -> None:
        assert await until(lambda: self.fleet.status()["ready"], timeout), self.fleet.status()

    async def stop(self) -> None:
        self.stop_event.set()
        await self.task


def events(edge, *names: str, after: float = -1.0) -> list[tuple]:
    return [e for e in edge.events if e[2] in names and e[0] > after]


def test_fleet_connects_each_edge_from_its_own_address_and_reports(lab_pki, tmp_path):
    with Hub(lab_pki, node="hub-a") as hub:
        fleet = make_fleet(lab_pki, tmp_path, 20, "edgecore-1.23", hub.port, "127.0.1.0/24", heartbeat=0.5)

        async def scenario():
            running = Running(fleet)
            await running.ready()
            assert await until(lambda: len(hub.hub.tunnels()) == 20, 5)
            status_file = tmp_path / "e-status.json"
            assert await until(lambda: json.loads(status_file.read_text()).get("tunnels") == {"hub-a": 20}, 5)
            status = json.loads(status_file.read_text())
            sessions, tunnels = hub.hub.sessions(), hub.hub.tunnels()
            await running.stop()
            return status, sessions, tunnels
        status, sessions, tunnels = run(scenario())
    assert status["ready"] and status["connected"] == {"hub-a": 20} and status["disconnected"] == 0
    assert status["tunnels"] == {"hub-a": 20} and status["reconnects"] == 0
    for edge in fleet.edges:  # one source address for 10000 and 10004 (haproxy pairs them by source)
        assert sessions[edge.name]["peer"].rsplit(":", 1)[0] == edge.source
        assert tunnels[edge.name].rsplit(":", 1)[0] == edge.source
        assert sessions[edge.name]["tunnel"]
    timeline = json.loads((tmp_path / "e-timeline.json").read_text())
    assert timeline["format"] == "ccha-edge-timeline/1" and len(timeline["edges"]) == 20
    first = timeline["edges"]["e-0001"]
    assert [e[2] for e in first["events"]][:2] == ["dial", "connected"] and first["source"] == "127.0.1.1"
    cert = x509.load_pem_x509_certificate((tmp_path / "e-certs" / "e-0001" / "server.crt").read_bytes())
    assert cert.subject.rfc4514_string() == "CN=system:node:e-0001,O=system:nodes"


def test_edgecore_123_waits_two_heartbeats_after_the_keepalive_write_error(lab_pki, tmp_path):
    """edgehub.go: read EOF is not seen by edgehub; the next keepalive write fails; sleep 2 x heartbeat."""
    hb, interval = 0.4, 0.3
    port = free_port()
    hub = Hub(lab_pki, port=port)
    hub.hub.start()
    fleet = make_fleet(lab_pki, tmp_path, 8, "edgecore-1.23", port, "127.0.1.0/24", heartbeat=hb,
                       dial_interval=interval, tunnel=False)

    async def scenario():
        running = Running(fleet)
        await running.ready()
        await asyncio.sleep(0.3)
        hub.hub.stop()
        stopped = fleet.clock()
        await asyncio.sleep(0.5)
        again = Hub(lab_pki, port=port, node="hub-a2")
        again.hub.start()
        try:
            assert await until(lambda: all(e.connects == 2 for e in fleet.edges), 10), fleet.status()
        finally:
            await running.stop()
            again.hub.stop()
        return stopped
    stopped = run(scenario())
    for edge in fleet.edges:
        eof = events(edge, ev.WIRE_ERROR, after=stopped)[0]
        teardown = events(edge, ev.TEARDOWN, after=stopped)[0]
        # the read sees EOF (or a RST, which a racing keepalive write may report first)
        assert "read error" in eof[3] or "write error" in eof[3]
        assert "write error" in teardown[3]  # edgehub itself hears of it only from the keepalive write
        assert eof[0] <= stopped + SLACK and teardown[0] <= eof[0] + hb + SLACK  # the next keepalive
        first_dial = events(edge, ev.DIAL, after=teardown[0])[0]
        assert first_dial[0] >= teardown[0] + 2 * hb - 0.02, (edge.name, edge.events)  # never earlier
        back = events(edge, ev.CONNECTED, after=teardown[0])[0]
        assert back[3] == "hub-a2"
        assert back[0] <= teardown[0] + 2 * hb + 5 * interval + SLACK  # within 2 x hb + the dial schedule


def test_edgecore_123_starts_over_after_the_fifth_failed_dial(lab_pki, tmp_path):
    """wsclient Init: 5 dials 5 s apart (a sleep after each failure, the last too); edgehub.go then
    sleeps 2 x heartbeat and calls Init again, for ever."""
    hb, interval = 0.2, 0.1
    port = free_port()
    hub = Hub(lab_pki, port=port)
    hub.hub.start()
    fleet = make_fleet(lab_pki, tmp_path, 3, "edgecore-1.23", port, "127.0.1.0/24", heartbeat=hb,
                       dial_interval=interval, tunnel=False)

    async def scenario():
        running = Running(fleet)
        await running.ready()
        hub.hub.stop()
        stopped = fleet.clock()
        await asyncio.sleep(3.0)  # > 2 x (2 hb + 5 dials)
        again = Hub(lab_pki, port=port)
        again.hub.start()
        try:
            assert await until(lambda: all(e.connects == 2 for e in fleet.edges), 10)
        finally:
            await running.stop()
            again.hub.stop()
        return stopped
    stopped = run(scenario())
    for edge in fleet.edges:
        dials = events(edge, ev.DIAL, after=stopped)
        numbers = [int(d[3]) for d in dials]
        assert numbers[:10] == [1, 2, 3, 4, 5, 1, 2, 3, 4, 5], numbers
        for a, b in zip(dials[:5], dials[1:5]):
            assert interval - 0.02 <= b[0] - a[0] <= interval + SLACK
        failed = events(edge, ev.INIT_FAILED, after=stopped)
        assert failed and failed[0][0] >= dials[4][0] + interval - 0.02  # it slept after the 5th failure too
        assert dials[5][0] - failed[0][0] >= 2 * hb - 0.02


def test_edgecore_next_notices_the_close_at_once_and_backs_off(lab_pki, tmp_path):
    """#6966: a read error reconnects at once; #6967: waits 0.2, 0.4, 0.8, 0.8... (+<=20% jitter)."""
    initial, cap = 0.2, 0.8
    port = free_port()
    hub = Hub(lab_pki, port=port)
    hub.hub.start()
    fleet = make_fleet(lab_pki, tmp_path, 4, "edgecore-next", port, "127.0.1.0/24", heartbeat=5.0,
                       read_deadline=2.0, backoff_initial=initial, backoff_cap=cap, dial_attempts=1,
                       dial_interval=0.05, tunnel=False)

    async def scenario():
        running = Running(fleet)
        await running.ready()
        await asyncio.sleep(cap + 0.2)  # connected longer than Cap: the backoff resets
        hub.hub.stop()
        stopped = fleet.clock()
        await asyncio.sleep(3.0)
        again = Hub(lab_pki, port=port)
        again.hub.start()
        try:
            assert await until(lambda: all(e.connects == 2 for e in fleet.edges), 10)
        finally:
            await running.stop()
            again.hub.stop()
        return stopped
    stopped = run(scenario())
    expected = [initial, 2 * initial, cap, cap, cap]
    for edge in fleet.edges:
        teardown = events(edge, ev.TEARDOWN, after=stopped)[0]
        assert teardown[0] <= stopped + SLACK  # not at the next keepalive, 5 s away
        marks = [teardown] + events(edge, ev.INIT_FAILED, after=stopped)
        dials = events(edge, ev.DIAL, after=stopped)
        for wait, mark, dial in zip(expected, marks, dials):
            assert wait - 0.02 <= dial[0] - mark[0] <= wait * 1.2 + SLACK, (wait, edge.events)


def test_backoff_sequence_is_apimachinerys():
    backoff = Backoff(PROFILES["edgecore-next"], random.Random(1))
    steps = [backoff.step() for _step in range(7)]
    for value, base in zip(steps, [2, 4, 8, 16, 30, 30, 30]):
        assert base <= value <= base * 1.2
    backoff.reset()
    assert 2 <= backoff.step() <= 2.4


def test_silent_drop_noticed_by_next_within_its_read_deadline_not_by_123(lab_pki, tmp_path):
    """A CloudCore that stops answering without closing (SIGSTOP: the kernel still ACKs)."""
    hb, deadline = 0.5, 1.0
    hub = HubProcess(lab_pki).start()
    try:
        old = make_fleet(lab_pki, tmp_path, 3, "edgecore-1.23", hub.port, "127.0.1.0/24", prefix="old-",
                         heartbeat=hb, tunnel=False)
        new = make_fleet(lab_pki, tmp_path, 3, "edgecore-next", hub.port, "127.0.2.0/24", prefix="new-",
                         heartbeat=hb, read_deadline=deadline, tunnel=False)

        async def scenario():
            fleets = [Running(old), Running(new)]
            for running in fleets:
                await running.ready()
            await asyncio.sleep(deadline)  # pongs flowing: no false alarm meanwhile
            hub.process.send_signal(signal.SIGSTOP)
            paused = old.clock()
            await asyncio.sleep(3 * deadline)
            hub.process.send_signal(signal.SIGCONT)
            for running in fleets:
                await running.stop()
            return paused
        paused = run(scenario())
    finally:
        hub.stop()
    for edge in new.edges:
        noticed = events(edge, ev.WIRE_ERROR, after=paused)
        assert noticed and "read deadline" in noticed[0][3]
        assert noticed[0][0] - paused <= deadline + SLACK, edge.events
        assert all(e[0] > paused for e in events(edge, ev.WIRE_ERROR))  # no false alarm before
    for edge in old.edges:
        assert not events(edge, ev.WIRE_ERROR, ev.TEARDOWN, after=paused - 0.01), edge.events


def test_edges_past_node_limit_stay_connected_unserved_and_are_counted(lab_pki, tmp_path):
    with Hub(lab_pki, node_limit=3) as hub:
        fleet = make_fleet(lab_pki, tmp_path, 5, "edgecore-1.23", hub.port, "127.0.1.0/24", heartbeat=0.3,
                           tunnel=False)

        async def scenario():
            running = Running(fleet)
            assert await until(lambda: fleet.status()["unserved"] == {"hub-a": 2}, 10), fleet.status()
            await asyncio.sleep(1.0)  # three heartbeats: nothing changes, nobody reconnects
            status = fleet.status()
            await running.stop()
            return status
        status = run(scenario())
        assert status["connected"] == {"hub-a": 3} and status["unserved"] == {"hub-a": 2}
        assert status["reconnects"] == 0 and not status["ready"]
        assert hub.hub.counters()["rejected_node_limit"] == 2
    assert sum(1 for e in fleet.edges for x in e.events if x[2] == ev.CONNECTED_UNSERVED) == 2


class Redirector:
    """A VIP in miniature: 127.0.0.1:P and :P+4 forward to the active backend address.

    ``move()`` is what a VIP move does to established connections: the old holder no longer gets
    the edge's packets (its side stays open until its own keepalive timeout), its packets no
    longer reach the edge, and the new holder answers the edge's next segment with a RST. It also
    counts, per edge source address and port, how many connections are open at once.
    """

    def __init__(self, port: int, backend: str):
        self.port, self.backend = port, backend
        self.generation = 0
        self.open: dict[tuple[str, int], int] = {}
        self.max_open = 0
        self.servers: list[asyncio.AbstractServer] = []
        self.writers: set[asyncio.StreamWriter] = set()
        self.pairs = 0

    async def start(self) -> None:
        for port in (self.port, self.port + 4):
            self.servers.append(await asyncio.start_server(
                lambda r, w, port=port: self._pair(r, w, port), "127.0.0.1", port))

    def move(self, backend: str) -> None:
        self.backend, self.generation = backend, self.generation + 1

    async def close(self) -> None:
        """Close the listeners and every pair, and let the handlers finish."""
        for server in self.servers:
            server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        while self.pairs:
            await asyncio.sleep(0.01)

    async def _pair(self, client_r, client_w, port: int) -> None:
        self.pairs += 1
        try:
            await self._forward(client_r, client_w, port)
        finally:
            self.pairs -= 1

    async def _forward(self, client_r, client_w, port: int) -> None:
        self.writers.add(client_w)
        source = client_w.get_extra_info("peername")[0]
        key = (source, port)
        self.open[key] = self.open.get(key, 0) + 1
        self.max_open = max(self.max_open, self.open[key])
        generation = self.generation
        try:
            backend_r, backend_w = await asyncio.open_connection(self.backend, port)
        except OSError:
            client_w.close()
            self.open[key] -= 1
            return
        self.writers.add(backend_w)

        async def upstream():
            try:
                while data := await client_r.read(65536):
                    if self.generation != generation:  # the new VIP holder: RST
                        sock = client_w.get_extra_info("socket")
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        client_w.transport.abort()
                        return  # the old holder's side stays open
                    backend_w.write(data)
                backend_w.close()
            finally:
                self.open[key] -= 1  # the edge's side is gone

        async def downstream():
            while data := await backend_r.read(65536):
                if self.generation == generation:
                    client_w.write(data)
            if self.generation == generation:
                client_w.close()

        try:
            await asyncio.gather(upstream(), downstream(), return_exceptions=True)
        finally:
            client_w.close()
            backend_w.close()
            self.writers.discard(client_w)
            self.writers.discard(backend_w)


@pytest.mark.parametrize("profile", ["edgecore-1.23", "edgecore-next"])
def test_vip_move_never_gives_an_edge_two_cloudcores(lab_pki, tmp_path, profile):
    """Two CloudCores (127.0.0.2, .3) behind a redirector; the VIP moves A -> B (-> A).

    Timers at 1/20 of upstream's (heartbeat 15 s, keepalive timeout 30 s, read deadline 15 s,
    backoff 2 s .. 30 s). Always: an edge has one connection per port at a time, from one source.
    edgecore-1.23: it comes back after the old CloudCore dropped its session, so no CloudCore pair
    ever holds it twice. edgecore-next: it is back on B before A's keepalive timeout ends the stale
    session -- for a while both CloudCores list it (upstream arithmetic, not a stand-in artefact).
    """
    scale = 1 / 20
    port = free_port()
    hub_a = Hub(lab_pki, node="hub-a", host="127.0.0.2", port=port, keepalive_timeout=30 * scale)
    hub_b = Hub(lab_pki, node="hub-b", host="127.0.0.3", port=port, keepalive_timeout=30 * scale)
    fleet = make_fleet(lab_pki, tmp_path, 6, profile, port, "127.0.1.0/24", heartbeat=15 * scale,
                       read_deadline=15 * scale, backoff_initial=2 * scale, backoff_cap=30 * scale,
                       dial_interval=5 * scale, tunnel_interval=2 * scale, tunnel_ping=5 * scale)
    doubles: set[str] = set()

    async def watch():
        while True:
            both = set(hub_a.hub.sessions()) & set(hub_b.hub.sessions())
            doubles.update(both)
            await asyncio.sleep(0.01)

    async def scenario():
        redirector = Redirector(port, "127.0.0.2")
        await redirector.start()
        running = Running(fleet)
        watcher = asyncio.get_running_loop().create_task(watch())
        try:
            await running.ready()
            moves = ["hub-b", "hub-a"] if profile == "edgecore-1.23" else ["hub-b"]
            for target in moves:
                redirector.move("127.0.0.3" if target == "hub-b" else "127.0.0.2")
                assert await until(lambda: all(e.hub_node == target and e.served for e in fleet.edges), 15), \
                    fleet.status()
        finally:
            watcher.cancel()
            await running.stop()
            await redirector.close()
        return redirector.max_open
    with hub_a, hub_b:
        max_open = run(scenario())
    assert max_open == 1
    if profile == "edgecore-1.23":
        assert doubles == set()
    else:
        assert doubles, "edgecore-next is expected back on B while A still holds the stale session"
    for edge in fleet.edges:
        nodes = [e[3] for e in edge.events if e[2] == ev.CONNECTED]
        assert nodes == (["hub-a", "hub-b", "hub-a"] if profile == "edgecore-1.23" else ["hub-a", "hub-b"]), nodes
