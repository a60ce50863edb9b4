"""Balanced mode's haproxy.cfg, run by the real haproxy on loopback: pairing, reloads, failover, monitor.

No lab: three fake CloudCores on 127.0.2.1..3 (the internal ports: /ca.crt over TLS on 10102, and on
10100/10104 a TCP echo that first says which CloudCore and port it is), two haproxy "nodes" lb1 and
lb2 binding the public ports on 127.0.0.1 and 127.0.0.2 and sharing the pairing table through peers,
and edges from their own source addresses (127.0.1.x, 127.0.5.x, ...; bind before connect). Every
haproxy.cfg is rendered from the model (plugins/module_utils/_haproxy_conf.py) with the default
health rhythm (inter 1 s, fall 2, rise 2); only the table's expiry and hard-stop-after are short
(6 s) so that the test can outlive them.

The tests share one setup and run in file order (each step builds on the previous state). Measured
figures are printed (pytest -s shows them)."""
from __future__ import annotations

import datetime
import ipaddress
import json
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import replace
from typing import Dict, List, Optional, Tuple

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", ".build", "collections"))

from ansible.module_utils import basic  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from ansible_collections.cloudcore.ha.plugins.module_utils._haproxy_conf import (  # noqa: E402
    HaproxyConfig,
    HaproxyPeer,
    HaproxyServer,
    render_haproxy_cfg,
)
from ansible_collections.cloudcore.ha.plugins.module_utils._haproxy_test import (  # noqa: E402
    LISTENERS_COMMAND,
    bind_conflicts,
    unbound_ports,
)

HAPROXY = os.environ.get("CLOUDCORE_HA_HAPROXY") or shutil.which("haproxy") or "/usr/sbin/haproxy"
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="haproxy binds ports and drops to its user: needs root"),
    pytest.mark.skipif(not os.path.exists(HAPROXY), reason="haproxy is not installed (apt-get install haproxy)"),
    pytest.mark.skipif(shutil.which("ss") is None, reason="ss (iproute2) is needed for the bind check"),
]

NODES = {"lb1": "127.0.0.1", "lb2": "127.0.0.2"}
CLOUDCORES = {"cc1": "127.0.2.1", "cc2": "127.0.2.2", "cc3": "127.0.2.3"}
INTER, FALL, RISE = 1.0, 2, 2
EXPIRE = HARD_STOP = 6.0
# How long until a failed CloudCore is marked down (and its sessions closed), with a 1 s margin: a
# CloudCore that answers with an error fails fall checks inter apart; one that stops answering
# fails each check only after `timeout check` (= inter here), so fall x (inter + timeout).
DOWN_AFTER_ERROR = FALL * INTER + 1.0
RELOAD_SETTLE = 0.3  # seconds between a (re)load and the next SIGUSR2, see Haproxy.reload
DOWN_AFTER_SILENCE = FALL * (INTER + INTER) + 1.0


# ------------------------------------------------------------------------------------ certificates

def _certificates(directory: str) -> Tuple[str, str, str]:
    """(CA file, server certificate file, key file): CloudCore's certificate names the VIP (10.9.9.9),
    not the node address haproxy connects to, as in production; the check verifies the chain only."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "KubeEdge")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cloudcore")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("10.9.9.9"))]),
                           critical=False).sign(ca_key, hashes.SHA256()))
    paths = [os.path.join(directory, name) for name in ("ca.crt", "server.crt", "server.key")]
    blobs = [ca.public_bytes(serialization.Encoding.PEM), cert.public_bytes(serialization.Encoding.PEM),
             key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())]
    for path, blob in zip(paths, blobs):
        with open(path, "wb") as handle:
            handle.write(blob)
    return paths[0], paths[1], paths[2]


# ------------------------------------------------------------------------------------ fake CloudCores

class FakeCloudCore:
    """A CloudCore's internal ports: https (/ca.crt: 200, or 503, or no answer at all) and two echo ports."""

    def __init__(self, name: str, address: str, context: ssl.SSLContext, ports: Dict[str, int]):
        self.name, self.address, self.context, self.ports = name, address, context, ports
        self.mode = "ok"  # ok | 503 | hang
        self._listeners = []  # type: List[socket.socket]
        self._conns = set()  # type: set
        self._lock = threading.Lock()

    def start(self) -> "FakeCloudCore":
        for kind, port in self.ports.items():
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.address, port))
            sock.listen(512)
            self._listeners.append(sock)
            threading.Thread(target=self._accept, args=(sock, kind), daemon=True).start()
        return self

    def _accept(self, sock: socket.socket, kind: str) -> None:
        while True:
            try:
                conn, _peer = sock.accept()
            except OSError:
                return
            with self._lock:
                self._conns.add(conn)
            handler = self._https if kind == "https" else self._echo
            threading.Thread(target=handler, args=(conn, kind), daemon=True).start()

    def _echo(self, conn: socket.socket, kind: str) -> None:
        try:
            conn.sendall(("%s %s\n" % (self.name, kind)).encode())
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                conn.sendall(data)
        except OSError:
            pass
        finally:
            self._forget(conn)

    def _https(self, conn: socket.socket, _kind: str) -> None:
        try:
            conn.settimeout(5)
            tls = self.context.wrap_socket(conn, server_side=True)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = tls.recv(4096)
                if not chunk:
                    return
                request += chunk
            while self.mode == "hang":  # "stops answering": the connection stays open, nothing comes back
                time.sleep(0.05)
            ok = self.mode == "ok" and request.startswith(b"GET /ca.crt ")
            body = b"ca\n" if ok else b"unavailable\n"
            tls.sendall(b"HTTP/1.1 %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                        % (b"200 OK" if ok else b"503 Service Unavailable", len(body), body))
            tls.close()
        except (OSError, ssl.SSLError):
            pass
        finally:
            self._forget(conn)

    def _forget(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.discard(conn)
        try:
            conn.close()
        except OSError:
            pass

    def stop(self) -> None:
        self.mode = "ok"
        for sock in self._listeners:
            sock.close()
        with self._lock:
            for conn in list(self._conns):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


# ------------------------------------------------------------------------------------ haproxy

class Haproxy:
    """One node's haproxy in master-worker mode (as Debian's unit runs it: -Ws; here -W in the
    foreground), reloaded with SIGUSR2 to the master like `systemctl reload` does."""

    def __init__(self, name: str, directory: str):
        self.name = name
        self.cfg = os.path.join(directory, "%s.cfg" % name)
        self.log = os.path.join(directory, "%s.log" % name)
        self.socket = os.path.join(directory, "%s.sock" % name)
        self.process = None  # type: Optional[subprocess.Popen]
        self.loaded_at = 0.0

    def write(self, config: HaproxyConfig) -> None:
        with open(self.cfg, "w") as handle:
            handle.write(render_haproxy_cfg(config))

    def start(self) -> None:
        self.process = subprocess.Popen([HAPROXY, "-W", "-f", self.cfg], stdout=open(self.log, "ab"),
                                        stderr=subprocess.STDOUT)
        wait_for(lambda: self.loads()[0] >= 1 and self.workers(), 10, "%s started" % self.name)
        self.loaded_at = time.monotonic()

    def loads(self) -> Tuple[int, int]:
        """(successful loads, failed loads) the master has logged so far."""
        with open(self.log, errors="replace") as handle:
            text = handle.read()
        return text.count("Loading success."), text.count("Loading failure!")

    def workers(self) -> List[int]:
        assert self.process is not None
        try:
            with open("/proc/%d/task/%d/children" % (self.process.pid, self.process.pid)) as handle:
                return [int(pid) for pid in handle.read().split()]
        except FileNotFoundError:
            return []

    def reload(self) -> bool:
        """SIGUSR2 to the master; True when the new configuration loaded, False when the master kept
        the old worker.

        A SIGUSR2 that reaches the master within a few ms of its "Loading success." (measured: at once
        lost, 50 ms later taken) is silently dropped, no reload and no log line: wait a moment after
        a load before the next one (systemctl reload returns before haproxy is ready, so two reloads in
        a row can lose the second the same way)."""
        time.sleep(max(0.0, self.loaded_at + RELOAD_SETTLE - time.monotonic()))
        before = self.loads()
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGUSR2)
        wait_for(lambda: self.loads() != before, 10, "%s reloaded" % self.name)
        self.loaded_at = time.monotonic()
        return self.loads()[0] > before[0]

    def command(self, text: str) -> str:
        """A command on the worker's admin socket (stats socket ... level admin)."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(self.socket)
            sock.sendall(text.encode() + b"\n")
            out = b""
            while True:
                data = sock.recv(65536)
                if not data:
                    return out.decode()
                out += data

    def table(self) -> Dict[str, str]:
        """The pairing table: edge source address -> server name."""
        out = {}
        for line in self.command("show table edge_pairs").splitlines():
            fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
            if "key" in fields:
                out[fields["key"]] = fields.get("server_key") or fields.get("server_id", "")
        return out

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out after %.1f s waiting for: %s" % (timeout, what))


# ------------------------------------------------------------------------------------ edges

class Edge:
    """One edge: its websocket (10000) and tunnel (10004) connections from its own source address."""

    def __init__(self, source: str):
        self.source = source
        self.ws = self.tunnel = None  # type: Optional[socket.socket]
        self.ws_backend = self.tunnel_backend = ""

    @staticmethod
    def _connect(source: str, node: str, port: int) -> Tuple[socket.socket, str]:
        sock = socket.socket()
        sock.settimeout(5)
        sock.bind((source, 0))
        sock.connect((NODES[node], port))
        line = b""
        while not line.endswith(b"\n"):
            chunk = sock.recv(100)
            if not chunk:
                raise ConnectionError("%s: %s:%d closed before the backend spoke" % (source, node, port))
            line += chunk
        return sock, line.decode().split()[0]

    def connect(self, node: str = "lb1", simultaneous: bool = False, which: str = "both") -> "Edge":
        ports = {"ws": 10000, "tunnel": 10004}
        kinds = ["ws", "tunnel"] if which == "both" else [which]
        results = {}  # type: Dict[str, Tuple[socket.socket, str]]
        if simultaneous:
            barrier = threading.Barrier(len(kinds))
            errors = []  # type: List[BaseException]

            def one(kind: str) -> None:
                try:
                    barrier.wait(5)
                    results[kind] = self._connect(self.source, node, ports[kind])
                except BaseException as error:  # noqa: B902 (reported below)
                    errors.append(error)
            threads = [threading.Thread(target=one, args=(kind,)) for kind in kinds]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if errors:
                raise errors[0]
        else:
            for kind in kinds:
                results[kind] = self._connect(self.source, node, ports[kind])
        if "ws" in results:
            self.ws, self.ws_backend = results["ws"]
        if "tunnel" in results:
            self.tunnel, self.tunnel_backend = results["tunnel"]
        return self

    @property
    def paired(self) -> bool:
        return bool(self.ws_backend) and self.ws_backend == self.tunnel_backend

    def close(self) -> None:
        for sock in (self.ws, self.tunnel):
            if sock is not None:
                sock.close()


def alive(sock: socket.socket) -> bool:
    """The connection still carries data both ways (the echo answers)."""
    try:
        sock.sendall(b"ping\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(100)
            if not chunk:
                return False
            data += chunk
        return data == b"ping\n"
    except OSError:
        return False


def closed_within(socks: List[socket.socket], timeout: float) -> Dict[socket.socket, float]:
    """Which of socks the far side closes within timeout, and after how many seconds (poll, not
    select: the test holds more than 1024 descriptors)."""
    start = time.monotonic()
    poller = select.poll()
    by_fd = {sock.fileno(): sock for sock in socks}
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    closed = {}  # type: Dict[socket.socket, float]
    while len(closed) < len(by_fd) and time.monotonic() - start < timeout:
        for fd, _event in poller.poll(50):
            sock = by_fd[fd]
            try:
                data = sock.recv(4096)
            except OSError:
                data = b""
            if not data:
                closed[sock] = time.monotonic() - start
                poller.unregister(fd)
    return closed


def edges(network: str, count: int) -> List[Edge]:
    hosts = ipaddress.ip_network(network).hosts()
    return [Edge(str(next(hosts))) for _unused in range(count)]


def monitor(node: str) -> int:
    try:
        with urllib.request.urlopen("http://%s:10111/healthz" % NODES[node], timeout=3) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def listeners() -> str:
    return subprocess.run(LISTENERS_COMMAND, capture_output=True, text=True, check=True).stdout


# ------------------------------------------------------------------------------------ the setup

class Site:
    def __init__(self, directory: str):
        self.directory = directory
        self.ca_file, cert, key = _certificates(directory)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        ports = {"ws": 10100, "https": 10102, "tunnel": 10104}
        self.cloudcores = {name: FakeCloudCore(name, address, context, ports) for name, address in CLOUDCORES.items()}
        self.haproxy = {name: Haproxy(name, directory) for name in NODES}
        self.edges = []  # type: List[Edge]
        self.reloaded_at = 0.0

    def model(self, node: str, **changes) -> HaproxyConfig:
        config = HaproxyConfig(
            node=node, cloudcores=[HaproxyServer(name, index + 1, address)
                                   for index, (name, address) in enumerate(sorted(CLOUDCORES.items()))],
            peers=[HaproxyPeer(name, address) for name, address in sorted(NODES.items())],
            bind_address=NODES[node], monitor_address=NODES[node], ca_file=self.ca_file,
            check_interval=INTER, check_timeout=INTER, check_fall=FALL, check_rise=RISE,
            stick_expire=EXPIRE, hard_stop_after=HARD_STOP, stats_socket=self.haproxy[node].socket, log_socket=None)
        return replace(config, **changes)

    def open(self, network: str, count: int, node: str = "lb1", simultaneous: bool = False) -> List[Edge]:
        opened = [edge.connect(node, simultaneous) for edge in edges(network, count)]
        self.edges += opened
        return opened

    def all_up(self) -> None:
        for name in CLOUDCORES:
            self.cloudcores[name].mode = "ok"
        for node in NODES:
            wait_for(lambda: "cloudcore_https/" not in self.down(node), 10, "every CloudCore up on %s" % node)

    def down(self, node: str) -> str:
        """The servers a node's haproxy has marked down (show servers state: srv_op_state 0)."""
        out = []
        for line in self.haproxy[node].command("show servers state cloudcore_https").splitlines()[2:]:
            fields = line.split()
            if len(fields) > 5 and fields[5] == "0":
                out.append("cloudcore_https/" + fields[3])
        return " ".join(out)

    def close(self) -> None:
        for edge in self.edges:
            edge.close()
        for haproxy in self.haproxy.values():
            haproxy.stop()
        for cloudcore in self.cloudcores.values():
            cloudcore.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("haproxy-pairing"))
    os.chmod(directory, 0o755)
    site = Site(directory)
    configs = {node: site.model(node) for node in NODES}
    taken = [c.msg for config in configs.values() for c in bind_conflicts(listeners(), config, allowed=())]
    taken += ["%s:%d" % (address, port) for address in CLOUDCORES.values() for port in (10100, 10102, 10104)
              if _taken(address, port)]
    if taken:
        pytest.skip("the test's ports are in use on this machine: %s" % "; ".join(taken))
    try:
        for cloudcore in site.cloudcores.values():
            cloudcore.start()
        for node, config in configs.items():
            site.haproxy[node].write(config)
            site.haproxy[node].start()
        yield site
    finally:
        site.close()


def _taken(address: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT of an earlier run is no owner
        try:
            sock.bind((address, port))
        except OSError:
            return True
    return False


def report(**figures) -> None:
    print("haproxy_pairing " + " ".join("%s=%s" % item for item in figures.items()))


# ------------------------------------------------------------------------------------ the tests

def test_monitor_says_200_while_cloudcores_are_healthy(site):
    site.all_up()
    assert monitor("lb1") == 200 and monitor("lb2") == 200


def test_every_edge_is_paired_sequential_and_simultaneous(site):
    sequential = site.open("127.0.1.0/25", 100)
    simultaneous = site.open("127.0.1.128/25", 100, simultaneous=True)
    for group in (sequential, simultaneous):
        assert all(edge.paired for edge in group), [(e.source, e.ws_backend, e.tunnel_backend) for e in group
                                                    if not e.paired]
    spread = {name: sum(1 for e in sequential + simultaneous if e.ws_backend == name) for name in CLOUDCORES}
    assert all(spread.values()), spread  # the hash uses every CloudCore
    # both nodes hold every pairing (peers)
    wait_for(lambda: len(site.haproxy["lb2"].table()) >= 200, 5, "lb2 learned the pairings")
    report(step="pairing", edges=200, paired_pct=100.0 * sum(e.paired for e in sequential + simultaneous) / 200,
           spread=json.dumps(spread, sort_keys=True).replace(" ", ""))


def test_failed_cloudcore_sessions_close_on_both_ports_and_repair_elsewhere(site):
    victims = [e for e in site.edges if e.ws_backend == "cc2"]
    others = [e for e in site.edges if e.ws_backend != "cc2"]
    assert victims and others
    site.cloudcores["cc2"].mode = "hang"
    start = time.monotonic()
    victim_socks = [s for e in victims for s in (e.ws, e.tunnel)]
    closed = closed_within(victim_socks, DOWN_AFTER_SILENCE)
    assert len(closed) == len(victim_socks), "%d of %d closed" % (len(closed), len(victim_socks))
    slowest = max(closed.values())
    spread_ports = max(closed.values()) - min(closed.values())
    assert spread_ports < 0.5  # both ports of every victim closed together
    assert all(alive(s) for e in others for s in (e.ws, e.tunnel)), "a healthy CloudCore's session was touched"
    for edge in victims:  # the edges reconnect, half of them on both ports at once
        edge.close()
        edge.connect("lb1", simultaneous=victims.index(edge) % 2 == 0)
    repaired = time.monotonic() - start
    assert all(e.paired and e.ws_backend != "cc2" for e in victims), [(e.ws_backend, e.tunnel_backend) for e in victims]
    assert monitor("lb1") == 200  # two CloudCores are left
    report(step="failover", victims=len(victims), closed_after_s="%.2f" % slowest, both_ports_within_s="%.2f"
           % spread_ports, repaired_after_s="%.2f" % repaired, untouched=len(others))


def test_a_vip_move_keeps_the_pairing(site):
    """The moved edges' entries differ from the hash (which picks cc2 again once it is up): the other
    node's haproxy must follow the replicated entries, not its own hash."""
    moved = [e for e in site.edges if e.ws_backend != "cc2" and e.source in _sources_once_on("cc2", site)]
    site.all_up()
    assert moved
    again = [Edge(e.source).connect("lb2", simultaneous=True) for e in moved]
    try:
        assert all(a.paired and a.ws_backend == e.ws_backend for a, e in zip(again, moved)), \
            [(e.source, e.ws_backend, a.ws_backend, a.tunnel_backend) for a, e in zip(again, moved)]
    finally:
        for edge in again:
            edge.close()
    report(step="vip_move", edges=len(moved), same_cloudcore_pct=100.0)


_FIRST_BACKEND = {}  # type: Dict[str, str]


def _sources_once_on(name: str, site: Site) -> List[str]:
    return [source for source, backend in _FIRST_BACKEND.items() if backend == name]


def test_a_pairing_lives_as_long_as_its_sessions(site):
    """Past the table's expiry, an edge whose websocket reconnects while its tunnel stays finds its
    CloudCore again: the tunnel session tracks (holds) the entry (track-sc0), the hash alone would
    pick cc2 for the moved edges."""
    moved = [e for e in site.edges if e.source in _sources_once_on("cc2", site)]
    time.sleep(EXPIRE + 0.5)
    for edge in moved:
        edge.ws.close()
        edge.connect("lb1", which="ws")
    assert all(e.paired and e.ws_backend != "cc2" for e in moved), [(e.ws_backend, e.tunnel_backend) for e in moved]
    report(step="expiry", edges=len(moved), expire_s=EXPIRE, paired_pct=100.0)


class Knocker(threading.Thread):
    """Opens and closes connections to a node's websocket port without pause, counting those refused
    or cut before the backend spoke: a reload must refuse none (the new worker takes the listening
    sockets over)."""

    def __init__(self, node: str):
        super().__init__(daemon=True)
        self.node, self.done, self.tried, self.failed = node, threading.Event(), 0, 0

    def run(self) -> None:
        sources = [str(address) for address in ipaddress.ip_network("127.0.11.0/24").hosts()]
        while not self.done.is_set():
            self.tried += 1
            try:
                sock, _backend = Edge._connect(sources[self.tried % len(sources)], self.node, 10000)
                sock.close()
            except OSError:
                self.failed += 1


def test_a_reload_drops_no_session_and_keeps_the_pairing(site):
    lb1 = site.haproxy["lb1"]
    old_workers = lb1.workers()
    sessions = [s for e in site.edges for s in (e.ws, e.tunnel)]
    knocker = Knocker("lb1")
    knocker.start()
    time.sleep(0.2)
    assert lb1.reload()
    site.reloaded_at = time.monotonic()
    time.sleep(0.3)
    knocker.done.set()
    knocker.join(10)
    assert knocker.failed == 0, "%d of %d connections refused during the reload" % (knocker.failed, knocker.tried)
    new_workers = [pid for pid in lb1.workers() if pid not in old_workers]
    assert new_workers
    dropped = sum(1 for s in sessions if not alive(s))
    assert dropped == 0
    # the new worker learned the table from the old one (the local peer): moved edges stay moved
    moved = [e for e in site.edges if e.source in _sources_once_on("cc2", site)]
    fresh = [Edge(e.source).connect("lb1", simultaneous=True) for e in moved]
    try:
        assert all(f.paired and f.ws_backend == e.ws_backend for f, e in zip(fresh, moved))
    finally:
        for edge in fresh:
            edge.close()
    report(step="reload", sessions=len(sessions), dropped=dropped, old_workers=len(old_workers),
           new_connections_during_reload=knocker.tried, refused=knocker.failed)


def test_an_old_worker_runs_no_health_checks_and_ends_at_hard_stop_after(site):
    """After a reload the old worker keeps its sessions but checks nothing: a CloudCore failing then
    closes only the new worker's sessions; the old ones end at hard-stop-after (a limit the role has
    to live with: keep reloads rare and hard_stop_after short enough)."""
    lb1 = site.haproxy["lb1"]
    old = [e for e in site.edges if e.ws_backend == "cc1"]          # held by the old worker
    new = site.open("127.0.5.0/24", 60)                             # opened on the new worker
    new_on_cc1 = [e for e in new if e.ws_backend == "cc1"]
    assert old and new_on_cc1 and all(e.paired for e in new)
    site.cloudcores["cc1"].mode = "503"
    closed = closed_within([s for e in new_on_cc1 for s in (e.ws, e.tunnel)], DOWN_AFTER_ERROR)
    assert len(closed) == 2 * len(new_on_cc1)
    assert all(alive(s) for e in old for s in (e.ws, e.tunnel)), "the old worker closed sessions on its own"
    # hard-stop-after ends the old worker and with it its sessions
    old_socks = [s for e in site.edges if e not in new for s in (e.ws, e.tunnel) if s.fileno() != -1]
    ended = closed_within(old_socks, HARD_STOP + 2)
    assert len(ended) == len(old_socks)
    wait_for(lambda: len(lb1.workers()) == 1, 5, "the old worker exited")
    report(step="old_worker", new_closed_after_s="%.2f" % max(closed.values()), old_sessions=len(old_socks),
           old_ended_after_reload_s="%.2f" % (time.monotonic() - site.reloaded_at))
    for edge in site.edges:
        edge.close()
    site.edges = []
    site.all_up()


def test_monitor_says_503_without_any_healthy_cloudcore(site):
    for cloudcore in site.cloudcores.values():
        cloudcore.mode = "503"
    start = time.monotonic()
    wait_for(lambda: monitor("lb1") == 503 and monitor("lb2") == 503, DOWN_AFTER_ERROR, "monitor 503")
    failed_after = time.monotonic() - start
    site.cloudcores["cc3"].mode = "ok"
    wait_for(lambda: monitor("lb1") == 200 and monitor("lb2") == 200, RISE * INTER + INTER + 1, "monitor 200 again")
    report(step="monitor", down_after_s="%.2f" % failed_after, up_after_s="%.2f" % (time.monotonic() - start - failed_after))
    site.all_up()


class ModuleExit(Exception):
    def __init__(self, result, failed):
        super().__init__(result)
        self.result, self.failed = result, failed


def run_haproxy_config(monkeypatch, **args):
    """The module cloudcore.ha.haproxy_config in-process: (failed, result)."""
    from ansible.module_utils.testing import patch_module_args

    from ansible_collections.cloudcore.ha.plugins.modules import haproxy_config

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", lambda self, **kw: (never for never in ()).throw(ModuleExit(kw, False)))
    monkeypatch.setattr(basic.AnsibleModule, "fail_json",
                        lambda self, msg, **kw: (never for never in ()).throw(ModuleExit(dict(kw, msg=msg), True)))
    with patch_module_args(dict(args, haproxy_binary=HAPROXY)):
        with pytest.raises(ModuleExit) as exc:
            haproxy_config.main()
    return exc.value.failed, exc.value.result


def _options(config: HaproxyConfig) -> dict:
    return dict(config.as_dict())


def test_a_config_haproxy_rejects_never_replaces_the_running_one(site, monkeypatch):
    lb1 = site.haproxy["lb1"]
    good = site.model("lb1")
    before = open(lb1.cfg).read()
    failed, result = run_haproxy_config(monkeypatch, path=lb1.cfg, config=_options(good))
    assert not failed and result["validated"] and open(lb1.cfg).read() == before  # the running file is the model's
    failed, result = run_haproxy_config(monkeypatch, path=lb1.cfg,
                                        config=_options(replace(good, ca_file="/nonexistent/ca.crt")))
    assert failed and "haproxy rejected" in result["msg"]
    assert open(lb1.cfg).read() == before
    assert lb1.reload()  # the reload the role would run reloads the good file
    edge = Edge("127.0.6.1").connect("lb1", simultaneous=True)
    assert edge.paired
    edge.close()
    # had a rejected file been written anyway, master-worker keeps the old worker, and says so only in its log
    with open(lb1.cfg, "a") as handle:
        handle.write("backend broken\n    bogus_keyword\n")
    workers = lb1.workers()
    assert not lb1.reload()
    still = lb1.workers()
    # no new worker; the serving one stays (an older one may meanwhile reach hard-stop-after)
    assert still and set(still) <= set(workers), (workers, still)
    edge = Edge("127.0.6.2").connect("lb1", simultaneous=True)
    assert edge.paired
    edge.close()
    with open(lb1.cfg, "w") as handle:
        handle.write(before)
    assert lb1.reload()


def test_the_bind_check_detects_a_listener_a_reload_left_unbound(site, monkeypatch):
    """haproxy -c passes a taken port; the reload then fails to bind, master-worker keeps the old worker
    (without the new port); unbound_ports and bind_conflicts say which port and who holds it."""
    lb1 = site.haproxy["lb1"]
    with socket.socket() as squatter:
        squatter.bind((NODES["lb1"], 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        moved = site.model("lb1", monitor_port=port)
        failed, result = run_haproxy_config(monkeypatch, path=lb1.cfg, config=_options(moved))
        assert not failed and result["changed"] and result["validated"]  # the config test cannot see it
        loaded = lb1.reload()
        listing = listeners()
        assert [(purpose, p) for purpose, _address, p in unbound_ports(listing, moved)] == [("monitor", port)]
        conflicts = bind_conflicts(listing, moved)
        assert [(c.purpose, c.port) for c in conflicts] == [("monitor", port)]
        assert "python" in conflicts[0].msg
    report(step="bind_check", reload_loaded=loaded, unbound="monitor:%d" % port, holder=conflicts[0].listener.owners
           .replace(" ", ""))
    assert monitor("lb1") == 200  # the old worker still serves the old monitor port
    failed, result = run_haproxy_config(monkeypatch, path=lb1.cfg, config=_options(site.model("lb1")))
    assert not failed and result["changed"]
    assert lb1.reload() and unbound_ports(listeners(), site.model("lb1")) == []


@pytest.fixture(autouse=True)
def _remember_first_backends(request, site):
    """Records each edge's first CloudCore after the pairing test (for the moved-edge checks)."""
    yield
    if request.node.name == "test_every_edge_is_paired_sequential_and_simultaneous":
        _FIRST_BACKEND.update({edge.source: edge.ws_backend for edge in site.edges})
