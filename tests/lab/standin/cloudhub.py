"""CloudHub's transport for the CloudCore stand-in: what an edge node meets on 10000 and 10004.

Modelled on KubeEdge v1.23.1 (``git show v1.23.1:PATH`` in the kubeedge repository); every
behaviour below names the upstream file it copies. A stand-in kinder than CloudCore would make
the lab's failover figures lie, so the unkind parts are kept on purpose:

- 10000, CloudHub's WebSocket server (cloud/pkg/cloudhub/servers/server.go,
  pkg/viaduct/pkg/server/ws.go): TLS >= 1.2, client certificate REQUIRED and verified against
  the CA (``tls.RequireAndVerifyClientCert``), TLS 1.2 suites ECDHE-ECDSA-AES128-GCM-SHA256 and
  ECDHE-RSA-AES128-SHA256. The handler is registered on ``/``: ANY path upgrades. The session
  key is the ``node_id`` request header (handler/message_handler.go HandleConnection); the
  certificate's CN is not compared with it, because CloudHub's authorization is disabled by
  default (cloudcore v1alpha1 default.go ``Authorization.Enable: false``).
- nodeLimit (message_handler.go HandleConnection, session/session_manager.go ReachLimit): the
  check runs AFTER the WebSocket upgrade (101 already sent) and, past the limit, CloudHub only
  logs ``Fail to serve node X, reach node limit`` and returns: the connection is NOT closed, no
  close frame, no close code. viaduct goes on reading it (server/ws.go ``go conn.ServeConn()``),
  keepalives find no session, and the edge -- which has no way to notice -- stays attached to a
  CloudCore that does not serve it until that connection breaks. The limit counts sessions, so
  a node reconnecting while its old session is still alive is refused at the limit too -- and
  its keepalives, matched by node_id only, keep that stale session alive.
- a second connection for a node that has a session (session_manager.go AddSession): the old
  session is terminated (its connection closed) and replaced. The old connection's read loop
  then fails and reports through OnReadTransportErr(node_id), which terminates whatever session
  is registered under that name -- by then the NEW one (message_handler.go OnReadTransportErr;
  a race upstream that the new session's Store wins by microseconds). So a reconnect that meets
  a stale session loses its new session as well; the edge has to come back once more.
- keepalive (session/node_session.go KeepAliveCheck): no ``keepalive`` message within
  keepaliveInterval (default 30 s) -> the session is terminated and its connection closed. Keepalives
  are not answered (dispatcher/message_dispatcher.go DispatchUpstream only feeds the timer);
  viaduct answers only control operations config/ping/pong with an ``ack`` response
  (pkg/viaduct/pkg/conn/ws.go filterControlMessage). WebSocket pings get pongs (gorilla's
  default ping handler, active while viaduct reads). A message that is not JSON ends the
  connection (lane/wsnopack.go ReadJSON error -> handleMessage closes). Only connections with
  header ``ConnectionUse: msg`` are read at all (conn/ws.go ServeConn).
- 10004, CloudStream's tunnel server (cloud/pkg/cloudstream/tunnelserver.go): TLS >= 1.2,
  client certificate required, path ``/v1/kubeedge/connect``, session keyed by the
  ``SessionHostNameOverride`` header (a newer tunnel of the same node replaces the old one in
  the map without closing it); only text frames are accepted. Not modelled: the Node's
  kubeletEndpoint update (the stand-in has no Kubernetes client here; upstream polls up to 2 min
  and sends a CloseConnect message when it fails) and the kube-apiserver proxying.
- 127.0.0.1:9091/metrics (cloud/pkg/common/monitor/monitor.go): the gauge
  ``KubeEdge_CloudHub_connected_nodes`` (no labels) = the number of sessions; the Go runtime
  and process metrics of promhttp's default registry are not served.
- closes: a terminated session closes like Go's ``tls.Conn.Close`` (close_notify, then FIN);
  ``stop()`` is a process exit: every socket is simply closed (FIN, or RST with unread data),
  no close_notify, no close frame.

Lab additions an edge does not act upon: the 101 responses carry ``X-Lab-Node: <node>`` (like
the HTTPS stand-in's responses) and, on 10000, ``X-Lab-Session: served|node-limit`` so the edge
fleet can record which CloudCore holds it and whether it is really served. TLS rejections are
logged (upstream's LoggerFilter drops ``http: TLS handshake error`` lines: CloudCore is silent).

Standard library only (Python >= 3.11, Debian 12's python3); asyncio in one thread, no thread
per connection. TLS runs over memory BIOs: asyncio's own SSL transport allocates a 256 KiB read
buffer per connection (asyncio/sslproto.py ``max_size``), 256 MB for 1000 edges.

Run alone (development, measurements): ``python3 cloudhub.py --node N --ca CA.pem --cert C.pem
--key K.pem [--node-limit 500] [--bind ::] [--port 10000] [--tunnel-port 10004]
[--metrics 127.0.0.1:9091] [--keepalive-timeout 30]``; SIGTERM/SIGINT stop it.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import resource
import signal
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time
import uuid
from typing import Callable

# cloudcore v1alpha1 default.go: KeepaliveInterval 30, NodeLimit constants.DefaultNodeLimit (500),
# WebSocket port 10000, CommonConfig.TunnelPort 10004 (constants.ServerPort), monitor 127.0.0.1:9091.
KEEPALIVE_INTERVAL = 30.0
DEFAULT_NODE_LIMIT = 500
METRIC = "KubeEdge_CloudHub_connected_nodes"
METRIC_HELP = "Number of nodes that connected to the cloudHub instance"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HEADER_BYTES = 1 << 20  # net/http DefaultMaxHeaderBytes
TUNNEL_PATH = "/v1/kubeedge/connect"  # cloudstream/tunnelserver.go installDefaultHandler
# cloudhub/servers/server.go createTLSConfig; cloudstream/tunnelserver.go Start (ECDSA only).
HUB_CIPHERS = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA256"
TUNNEL_CIPHERS = "ECDHE-ECDSA-AES128-GCM-SHA256"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


# --------------------------------------------------------------------------------------------
# TLS over memory BIOs


class TLSProtocol(asyncio.Protocol):
    """One TLS connection as an asyncio protocol, plaintext in ``reader``.

    Written instead of asyncio's SSL transport for its memory (see the module docstring); it
    also lets the handler see a failed handshake, to log the reason.
    """

    def __init__(self, context: ssl.SSLContext, on_open: Callable[[TLSProtocol], None] | None = None,
                 server_side: bool = True, server_hostname: str | None = None):
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._ssl = context.wrap_bio(self._incoming, self._outgoing, server_side=server_side,
                                     server_hostname=server_hostname)
        self._on_open = on_open
        loop = asyncio.get_running_loop()
        self.reader = asyncio.StreamReader(limit=MAX_HEADER_BYTES + 1024)
        self.handshake: asyncio.Future = loop.create_future()
        self.lost: asyncio.Future = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.peer: tuple = ("?", 0)
        self._resume: asyncio.Future | None = None

    # asyncio callbacks
    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        self.peer = transport.get_extra_info("peername") or ("?", 0)
        # high=0: "paused" means the kernel send buffer is full, like a blocking Go write.
        transport.set_write_buffer_limits(high=0)
        if self._on_open is not None:
            self._on_open(self)
        self._step_handshake()

    def data_received(self, data: bytes) -> None:
        self._incoming.write(data)
        if not self.handshake.done():
            self._step_handshake()
        else:
            self._read_plain()

    def eof_received(self) -> bool:
        self._incoming.write_eof()
        if self.handshake.done():
            self._read_plain()
        else:
            self._step_handshake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(exc or ConnectionResetError("connection closed during TLS handshake"))
            self.handshake.exception()  # consumed: nobody may be waiting
        if exc is not None:
            self.reader.set_exception(exc)
        else:
            self.reader.feed_eof()
        if not self.lost.done():
            self.lost.set_result(exc)
        self._wake_writer()

    def pause_writing(self) -> None:
        if self._resume is None or self._resume.done():
            self._resume = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self._wake_writer()

    # TLS plumbing
    def _wake_writer(self) -> None:
        if self._resume is not None and not self._resume.done():
            self._resume.set_result(None)

    def _flush(self) -> None:
        data = self._outgoing.read()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _step_handshake(self) -> None:
        try:
            self._ssl.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except (ssl.SSLError, OSError) as exc:
            self._flush()  # the alert
            if not self.handshake.done():
                self.handshake.set_exception(exc)
                self.handshake.exception()
            if self.transport is not None:
                self.transport.close()
            return
        self._flush()
        if not self.handshake.done():
            self.handshake.set_result(None)
        self._read_plain()

    def _read_plain(self) -> None:
        while True:
            try:
                chunk = self._ssl.read(65536)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                self.reader.feed_eof()
                break
            except (ssl.SSLError, OSError) as exc:
                self.reader.set_exception(exc)
                self.abort()
                break
            if not chunk:
                self.reader.feed_eof()
                break
            self.reader.feed_data(chunk)
        self._flush()  # TLS 1.3 tickets, key updates, alerts

    # for handlers
    @property
    def closed(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    def write(self, data: bytes) -> None:
        """Queue plaintext; raises when the connection is closed (Go: use of closed connection)."""
        if self.closed:
            raise ConnectionResetError("use of closed network connection")
        self._ssl.write(data)
        self._flush()

    async def drain(self, timeout: float | None = None) -> None:
        """Wait while the kernel send buffer is full; TimeoutError after ``timeout`` (a write deadline)."""
        if self._resume is not None and not self._resume.done():
            await asyncio.wait_for(asyncio.shield(self._resume), timeout)
        if self.lost.done():
            raise ConnectionResetError("connection lost")

    def close(self) -> None:
        """Go's tls.Conn.Close: close_notify, then close the socket."""
        if self.closed:
            return
        if self.handshake.done() and not self.handshake.exception():
            try:
                self._ssl.unwrap()
            except (ssl.SSLError, OSError):
                pass
            self._flush()
        self.transport.close()

    def abort(self) -> None:
        """A process exit: the kernel closes the socket, no close_notify."""
        if self.transport is not None:
            self.transport.abort()


# --------------------------------------------------------------------------------------------
# HTTP/1.1 request head and RFC 6455 framing (server side)


class HTTPRequest:
    """Request line and headers; header names lower-cased, every value kept in order."""

    def __init__(self, method: str, target: str, headers: dict[str, list[str]]):
        self.method, self.target, self.headers = method, target, headers

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def get(self, name: str) -> str:
        """Go's Header.Get: the first value, or ''."""
        values = self.headers.get(name.lower())
        return values[0] if values else ""

    def has_token(self, name: str, token: str) -> bool:
        """gorilla's tokenListContainsValue: comma-separated, case-insensitive."""
        return any(part.strip().lower() == token for value in self.headers.get(name.lower(), [])
                   for part in value.split(","))


async def read_request(reader: asyncio.StreamReader) -> HTTPRequest | None:
    """One request head; None on a clean EOF before any byte."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ValueError(f"malformed HTTP request line {lines[0]!r}")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"malformed HTTP header line {line!r}")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return HTTPRequest(parts[0], parts[1], headers)


def http_response(status: int, reason: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    lines += [f"Content-Length: {len(body)}", f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime())}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode("ascii")).digest()).decode("ascii")


def upgrade_error(request: HTTPRequest) -> tuple[int, str] | None:
    """gorilla/websocket v1.5.0 Upgrader.Upgrade's checks, in its order: (status, reason) or None."""
    bad = "websocket: the client is not using the websocket protocol: "
    if not request.has_token("Connection", "upgrade"):
        return 400, bad + "'upgrade' token not found in 'Connection' header"
    if not request.has_token("Upgrade", "websocket"):
        return 400, bad + "'websocket' token not found in 'Upgrade' header"
    if request.method != "GET":
        return 405, bad + "request method is not GET"
    if not request.has_token("Sec-Websocket-Version", "13"):
        return 400, "websocket: unsupported version: 13 not found in 'Sec-Websocket-Version' header"
    origin = request.get("Origin")
    if origin and origin.split("://", 1)[-1].lower() != request.get("Host").lower():
        return 403, "websocket: request origin not allowed by Upgrader.CheckOrigin"
    if not request.get("Sec-Websocket-Key"):
        return 400, "websocket: not a websocket handshake: 'Sec-WebSocket-Key' header is missing or blank"
    return None


STATUS_TEXT = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed"}


class ProtocolError(Exception):
    """A frame gorilla refuses (it answers with close 1002)."""


def unmask(payload: bytes, mask: bytes) -> bytes:
    if not payload:
        return payload
    n = len(payload)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def encode_frame(opcode: int, payload: bytes = b"") -> bytes:
    """A server frame: FIN set, unmasked (RFC 6455 5.1)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


async def read_frame(reader: asyncio.StreamReader) -> tuple[bool, int, bytes]:
    """(fin, opcode, payload) of one client frame; client frames must be masked (RFC 6455 5.3)."""
    b0, b1 = await reader.readexactly(2)
    fin, opcode, length = bool(b0 & 0x80), b0 & 0x0F, b1 & 0x7F
    if b0 & 0x70:
        raise ProtocolError("unexpected reserved bits")
    if not b1 & 0x80:
        raise ProtocolError("bad MASK")
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    if opcode >= OP_CLOSE and (length > 125 or not fin):
        raise ProtocolError("control frame length > 125 or fragmented")
    if opcode not in (OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG):
        raise ProtocolError(f"unknown opcode {opcode}")
    mask = await reader.readexactly(4)
    return fin, opcode, unmask(await reader.readexactly(length), mask)


async def read_message(tls: TLSProtocol) -> tuple[int, bytes]:
    """gorilla's ReadMessage: answers pings and close frames, assembles fragments."""
    opcode, parts = None, []
    while True:
        fin, op, payload = await read_frame(tls.reader)
        if op == OP_PING:
            tls.write(encode_frame(OP_PONG, payload))
            continue
        if op == OP_PONG:
            continue
        if op == OP_CLOSE:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            if code != 1005:
                tls.write(encode_frame(OP_CLOSE, payload[:2]))  # the default close handler echoes the code
            raise ConnectionResetError(f"websocket: close {code}")
        if op == OP_CONT and opcode is None or op != OP_CONT and opcode is not None:
            raise ProtocolError("unexpected continuation or data frame")
        if opcode is None:
            opcode = op
        parts.append(payload)
        if fin:
            return opcode, b"".join(parts)


def fail_protocol(tls: TLSProtocol, exc: ProtocolError) -> None:
    """gorilla's handleProtocolError: close frame 1002 with the reason."""
    try:
        tls.write(encode_frame(OP_CLOSE, struct.pack("!H", 1002) + str(exc).encode()[:123]))
    except ConnectionError:
        pass


# --------------------------------------------------------------------------------------------
# the hub


def peer_text(peer: tuple) -> str:
    """Go's RemoteAddr().String(): 1.2.3.4:5 or [::1]:5; v4-mapped shown as IPv4."""
    host, port = peer[0], peer[1]
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def listen(host: str, port: int) -> socket.socket:
    """A listening socket like Go's net.Listen: SO_REUSEADDR, '::' dual-stack, somaxconn backlog."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if host == "::" else 1)
        sock.bind((host, port))
        try:
            with open("/proc/sys/net/core/somaxconn", encoding="ascii") as handle:
                backlog = int(handle.read())
        except (OSError, ValueError):
            backlog = socket.SOMAXCONN
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def raise_nofile() -> None:
    """Go (>= 1.19) raises the soft RLIMIT_NOFILE to the hard limit at start; CloudCore has it, so
    the stand-in does too (a systemd unit's soft 1024 would refuse the 1000th edge)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def server_context(ca_pem: bytes, cert_pem: bytes, key_pem: bytes, ciphers: str) -> ssl.SSLContext:
    """RequireAndVerifyClientCert against ca_pem, TLS >= 1.2, the upstream TLS 1.2 suites."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(ciphers)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=ca_pem.decode("ascii"))
    context.num_tickets = 1  # Go's crypto/tls sends one TLS 1.3 ticket, OpenSSL two by default
    with tempfile.TemporaryDirectory(prefix="cloudhub-") as tmp:  # load_cert_chain wants paths
        cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
        with open(cert, "wb") as handle:
            handle.write(cert_pem)
        with os.fdopen(os.open(key, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as handle:
            handle.write(key_pem)
        context.load_cert_chain(cert, key)
    return context


def message_json(route: dict, parent: str, content) -> bytes:
    """beehive model.Message as JSON (staging/.../beehive/pkg/core/model/message.go)."""
    header = {"msg_id": str(uuid.uuid4())}
    if parent:
        header["parent_msg_id"] = parent
    header["timestamp"] = int(time.time() * 1000)
    body = json.dumps({"header": header, "route": route, "content": content}, separators=(",", ":"))
    return (body + "\n").encode()  # gorilla WriteJSON = json.Encoder.Encode: a trailing newline


class Session:
    """session/node_session.go NodeSession: one served node and its keepalive timer."""

    def __init__(self, hub: CloudHub, node: str, project: str, tls: TLSProtocol):
        self.hub, self.node, self.project, self.tls = hub, node, project, tls
        self.peer = peer_text(tls.peer)
        self.connected_at = time.time()
        self.terminated = False
        self._timer: asyncio.TimerHandle | None = None
        self.keepalive()

    def keepalive(self) -> None:
        """KeepAliveCheck: the timer restarts at every keepalive message."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self.hub.keepalive_timeout, self._expired)

    def _expired(self) -> None:
        self.hub.log(f"cloudhub {self.hub.node}: timeout to receive keepalive for node {self.node}")
        self.terminate("keepalive timeout")

    def terminate(self, reason: str) -> None:
        """Terminating: once; closes the connection; then the session goroutine deletes it."""
        if self.terminated:
            return
        self.terminated = True
        if self._timer is not None:
            self._timer.cancel()
        self.tls.close()
        self.hub.session_ended(self, reason)


class CloudHub:
    """CloudHub's WebSocket server (10000), CloudStream's tunnel server (10004), the metric."""

    def __init__(self, node: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes, node_limit: int,
                 websocket_port: int = 10000, tunnel_port: int = 10004,
                 metrics_address: tuple = ("127.0.0.1", 9091), log: Callable[[str], None] = print,
                 bind_host: str = "::", keepalive_timeout: float = KEEPALIVE_INTERVAL):
        self.node, self.node_limit = node, node_limit
        self.websocket_port, self.tunnel_port = websocket_port, tunnel_port
        self.metrics_address, self.bind_host = tuple(metrics_address), bind_host
        self.keepalive_timeout = keepalive_timeout
        self._log = log
        self._hub_context = server_context(ca_pem, cert_pem, key_pem, HUB_CIPHERS)
        self._tunnel_context = server_context(ca_pem, cert_pem, key_pem, TUNNEL_CIPHERS)
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._tunnels: dict[str, TLSProtocol] = {}
        self._connections: set[TLSProtocol] = set()
        self._metric_writers: set[asyncio.StreamWriter] = set()
        self._counters = {"rejected_tls": 0, "rejected_upgrade": 0, "rejected_node_limit": 0,
                          "replaced": 0, "keepalive_timeouts": 0}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[asyncio.AbstractServer] = []
        self._stopping = False

    def log(self, line: str) -> None:
        """One line per event; silent while stopping (a dying CloudCore logs nothing per node)."""
        if not self._stopping:
            self._log(line)

    # ---- public interface (called from other threads)
    def start(self) -> None:
        """Bind the three ports (raises OSError here if one is taken), then serve in a thread."""
        raise_nofile()
        sockets = []
        try:
            for host, port in ((self.bind_host, self.websocket_port), (self.bind_host, self.tunnel_port),
                               self.metrics_address):
                sockets.append(listen(host, port))
        except OSError:
            for sock in sockets:
                sock.close()
            raise
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"cloudhub-{self.node}", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(sockets), self._loop).result(10)
        self.log(f"cloudhub {self.node}: websocket [{self.bind_host}]:{self.websocket_port}, tunnel "
                 f"[{self.bind_host}]:{self.tunnel_port}, metrics {self.metrics_address[0]}:{self.metrics_address[1]},"
                 f" nodeLimit {self.node_limit}, keepalive timeout {self.keepalive_timeout:g}s")

    def stop(self) -> None:
        """Like a CloudCore process exit: listeners and every connection closed at once."""
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = None
        self._stopping = False
        self._log(f"cloudhub {self.node}: stopped")

    def sessions(self) -> dict[str, dict]:
        with self._lock:
            return {name: {"connected_at": s.connected_at, "peer": s.peer, "tunnel": name in self._tunnels}
                    for name, s in self._sessions.items()}

    def tunnels(self) -> dict[str, str]:
        """node name -> the peer of its current tunnel."""
        with self._lock:
            return {name: peer_text(tls.peer) for name, tls in self._tunnels.items()}

    def counters(self) -> dict[str, int]:
        """Lab counters (not upstream metrics): rejections, replacements, keepalive timeouts."""
        with self._lock:
            return dict(self._counters)

    def metrics_text(self) -> str:
        """monitor.go's gauge; set from NodeNumber, which equals the session count."""
        with self._lock:
            value = len(self._sessions)
        return f"# HELP {METRIC} {METRIC_HELP}\n# TYPE {METRIC} gauge\n{METRIC} {value}\n"

    # ---- loop side
    async def _serve(self, sockets: list[socket.socket]) -> None:
        loop = asyncio.get_running_loop()
        ws_sock, tunnel_sock, metrics_sock = sockets
        self._servers = [
            await loop.create_server(lambda: self._protocol(self._hub_context, self._handle_hub), sock=ws_sock),
            await loop.create_server(lambda: self._protocol(self._tunnel_context, self._handle_tunnel),
                                     sock=tunnel_sock),
            await asyncio.start_server(self._handle_metrics, sock=metrics_sock),
        ]

    def _protocol(self, context: ssl.SSLContext, handler) -> TLSProtocol:
        def opened(tls: TLSProtocol) -> None:
            self._connections.add(tls)
            task = asyncio.get_running_loop().create_task(self._run(handler, tls))
            tls.task = task  # type: ignore[attr-defined]
        return TLSProtocol(context, on_open=opened)

    async def _run(self, handler, tls: TLSProtocol) -> None:
        try:
            await handler(tls)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ssl.SSLError, OSError,
                ValueError):
            pass
        finally:
            tls.close()
            self._connections.discard(tls)

    async def _shutdown(self) -> None:
        """Abort every socket, then let the handlers finish silently (a dying process logs nothing)."""
        with self._lock:
            sessions, tunnels = len(self._sessions), len(self._tunnels)
            for session in self._sessions.values():
                session.terminated = True
                if session._timer is not None:  # noqa: SLF001
                    session._timer.cancel()  # noqa: SLF001
            self._sessions.clear()
            self._tunnels.clear()
        self._stopping = True
        connections = len(self._connections)
        for server in self._servers:
            server.close()
        for tls in list(self._connections):
            tls.abort()
        for writer in list(self._metric_writers):
            writer.transport.abort()  # its handler ends by itself (cancelling a streams task logs noise)
        tasks = [getattr(tls, "task") for tls in self._connections if hasattr(tls, "task")]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _attempt in range(100):
            if not self._metric_writers:
                break
            await asyncio.sleep(0.01)
        self._log(f"cloudhub {self.node}: stopping: closed {sessions} sessions, {tunnels} tunnels, "
                  f"{connections} connections in all")
        self._connections.clear()

    def _count(self, name: str) -> None:
        with self._lock:
            self._counters[name] += 1

    async def _tls_ready(self, tls: TLSProtocol, port: int) -> bool:
        """The handshake; a refused one is logged here (CloudCore itself filters these lines out)."""
        try:
            await tls.handshake
            return True
        except (ssl.SSLError, OSError) as exc:
            self._count("rejected_tls")
            reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
            if getattr(exc, "verify_message", None):
                reason = f"{reason} ({exc.verify_message})"
            self.log(f"cloudhub {self.node}: rejected TLS on {port} from {peer_text(tls.peer)}: {reason}")
            return False

    async def _upgrade(self, tls: TLSProtocol, port: int, route=None) -> HTTPRequest | None:
        """Serve requests until one upgrades; None when the client goes away first."""
        while True:
            request = await read_request(tls.reader)
            if request is None:
                return None
            length = int(request.get("Content-Length") or 0)
            if length:
                await tls.reader.readexactly(length)
            problem = route(request) if route else None
            if problem is None:
                problem = upgrade_error(request)
            if problem is None:
                return request
            status, reason = problem
            self._count("rejected_upgrade")
            self.log(f"cloudhub {self.node}: rejected {request.method} {request.path} on {port} from "
                     f"{peer_text(tls.peer)}: {status} {reason}")
            tls.write(http_response(status, STATUS_TEXT.get(status, "Error"), *self._error_body(port, status, reason)))

    def _error_body(self, port: int, status: int, reason: str) -> tuple[bytes, dict]:
        if port == self.tunnel_port:  # tunnelserver.go's upgrader.Error: the reason as body
            return reason.encode(), {"Sec-Websocket-Version": "13"}
        # gorilla returnError: http.Error(w, StatusText(status)) + Sec-Websocket-Version: 13
        return (STATUS_TEXT.get(status, "Error") + "\n").encode(), {
            "Content-Type": "text/plain; charset=utf-8", "Sec-Websocket-Version": "13",
            "X-Content-Type-Options": "nosniff"}

    def _switch(self, tls: TLSProtocol, request: HTTPRequest, extra: dict[str, str]) -> None:
        lines = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Accept: {accept_key(request.get('Sec-Websocket-Key'))}",
                 f"X-Lab-Node: {self.node}"] + [f"{k}: {v}" for k, v in extra.items()]
        tls.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    # ---- 10000
    async def _handle_hub(self, tls: TLSProtocol) -> None:
        if not await self._tls_ready(tls, self.websocket_port):
            return
        request = await self._upgrade(tls, self.websocket_port)  # http.HandleFunc("/"): any path
        if request is None:
            return
        node, project = request.get("node_id"), request.get("project_id")
        # Upstream upgrades first, then decides (ConnNotify). Deciding and registering just before
        # the 101 goes out is the same to the edge, and sessions() is never behind what it saw.
        with self._lock:
            at_limit = len(self._sessions) >= self.node_limit
        session = None
        if at_limit:
            self._count("rejected_node_limit")
            self.log(f"cloudhub {self.node}: Fail to serve node {node}, reach node limit ({self.node_limit}): "
                     f"peer {peer_text(tls.peer)} upgraded and left open, not served")
        else:
            session = self._add_session(node, project, tls)
        self._switch(tls, request, {"X-Lab-Session": "node-limit" if at_limit else "served"})
        if request.get("ConnectionUse") != "msg":
            # conn/ws.go ServeConn reads only "msg" connections: no read loop, so no
            # OnReadTransportErr either; a session lives on until its keepalive timeout.
            await tls.lost
            return
        reason = await self._read_messages(tls, node)
        if session is None:
            self.log(f"cloudhub {self.node}: unserved connection of node {node} from {peer_text(tls.peer)} ended: "
                     f"{reason}")
        # conn/ws.go handleMessage -> OnReadTransportErr(node_id): terminates the session of that
        # NAME, which may be a newer one than this connection's (see the module docstring).
        with self._lock:
            current = self._sessions.get(node)
        if current is not None:
            if current is not session:
                self.log(f"cloudhub {self.node}: projectID {project} node {node} read message err: {reason}; "
                         f"terminating the node's current session (upstream OnReadTransportErr)")
            current.terminate(reason)

    def _add_session(self, node: str, project: str, tls: TLSProtocol) -> Session:
        """session_manager.go AddSession: a live session of the same node is closed and replaced."""
        session = Session(self, node, project, tls)
        with self._lock:
            old = self._sessions.pop(node, None)
        if old is not None:
            self._count("replaced")
            self.log(f"cloudhub {self.node}: session exists for {node}, close old session")
            old.terminate("replaced by a new connection")
        with self._lock:
            self._sessions[node] = session
            count = len(self._sessions)
        self.log(f"cloudhub {self.node}: edge node {node} for project {project} connected from {session.peer} "
                 f"({count}/{self.node_limit} sessions)")
        return session

    def session_ended(self, session: Session, reason: str) -> None:
        """The session goroutine's end: DeleteSession only if it is still the registered one."""
        if reason == "keepalive timeout":
            self._count("keepalive_timeouts")
        with self._lock:
            if self._sessions.get(session.node) is session:
                del self._sessions[session.node]
            count = len(self._sessions)
        self.log(f"cloudhub {self.node}: edge node {session.node} for project {session.project} disConnected: "
                 f"{reason} ({count}/{self.node_limit} sessions)")

    async def _read_messages(self, tls: TLSProtocol, node: str) -> str:
        """conn/ws.go handleMessage: until a read error; returns the error as text."""
        try:
            while True:
                _opcode, payload = await read_message(tls)
                message = json.loads(payload)  # lane/wsnopack.go ReadJSON; an error ends the connection
                if not isinstance(message, dict) or not isinstance(message.get("route", {}), dict):
                    return "failed to read message: json: cannot unmarshal"
                self._dispatch(tls, node, message)
        except ProtocolError as exc:
            fail_protocol(tls, exc)
            return f"websocket protocol error: {exc}"
        except ValueError as exc:  # JSONDecodeError, or not UTF-8
            return f"failed to read message: {exc}"
        except asyncio.IncompleteReadError:
            return "EOF"
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            return f"failed to read message: {exc or type(exc).__name__}"

    def _dispatch(self, tls: TLSProtocol, node: str, message: dict) -> None:
        route = message.get("route") or {}
        operation = route.get("operation")
        header = message.get("header") if isinstance(message.get("header"), dict) else {}
        if operation in ("config", "ping", "pong"):  # conn/ws.go filterControlMessage
            reply = dict(route, operation="response")
            tls.write(encode_frame(OP_TEXT, message_json(reply, str(header.get("msg_id", "")), "ack")))
            return
        if operation == "keepalive":  # message_dispatcher.go DispatchUpstream -> KeepAliveMessage
            # The session is looked up by node_id only: an unserved (past-limit) connection of a
            # node keeps that node's old session alive.
            with self._lock:
                session = self._sessions.get(node)
            if session is not None:
                session.keepalive()
        # everything else would go to the controllers: not modelled

    # ---- 10004
    async def _handle_tunnel(self, tls: TLSProtocol) -> None:
        if not await self._tls_ready(tls, self.tunnel_port):
            return

        def route(request: HTTPRequest) -> tuple[int, str] | None:  # go-restful's routing
            if request.path.rstrip("/") != TUNNEL_PATH:
                return 404, "404: Page Not Found"
            if request.method != "GET":
                return 405, "405: Method Not Allowed"
            return None

        request = await self._upgrade(tls, self.tunnel_port, route)
        if request is None:
            return
        hostname = request.get("SessionHostNameOverride")
        internal_ip = request.get("SessionInternalIP") or peer_text(tls.peer).rsplit(":", 1)[0]
        with self._lock:
            self._tunnels[hostname] = tls  # addSession: replaces, the old one is not closed
        self._switch(tls, request, {})
        self.log(f"cloudhub {self.node}: get a new tunnel agent hostname {hostname}, internalIP {internal_ip} "
                 f"from {peer_text(tls.peer)}")
        reason = "EOF"
        try:
            while True:  # session.go Serve
                opcode, _payload = await read_message(tls)
                if opcode != OP_TEXT:
                    reason = "Websocket message type must be text"
                    break
        except ProtocolError as exc:
            fail_protocol(tls, exc)
            reason = f"websocket protocol error: {exc}"
        except asyncio.IncompleteReadError:
            pass
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
        with self._lock:
            if self._tunnels.get(hostname) is tls:
                del self._tunnels[hostname]
        self.log(f"cloudhub {self.node}: tunnel of {hostname} from {peer_text(tls.peer)} closed: {reason}")

    # ---- 9091
    async def _handle_metrics(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._metric_writers.add(writer)
        try:
            while True:
                request = await read_request(reader)
                if request is None:
                    break
                if request.path == "/metrics" and request.method in ("GET", "HEAD"):
                    body = self.metrics_text().encode()
                    response = http_response(200, "OK", body, {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
                else:
                    response = http_response(404, "Not Found", b"404 page not found\n",
                                             {"Content-Type": "text/plain; charset=utf-8"})
                writer.write(response if request.method != "HEAD" else response.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, asyncio.LimitOverrunError):
            pass
        finally:
            self._metric_writers.discard(writer)
            writer.close()


# --------------------------------------------------------------------------------------------
# standalone


def _address(text: str) -> tuple[str, int]:
    host, _colon, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CloudHub's transport alone (the lab's stand-in embeds it).")
    parser.add_argument("--node", required=True, help="the name this CloudCore reports (X-Lab-Node)")
    parser.add_argument("--ca", required=True, help="CA certificate (PEM) that signed the edges' certificates")
    parser.add_argument("--cert", required=True, help="serving certificate (PEM)")
    parser.add_argument("--key", required=True, help="serving key (PEM)")
    parser.add_argument("--node-limit", type=int, default=DEFAULT_NODE_LIMIT)
    parser.add_argument("--bind", default="::")
    parser.add_argument("--port", type=int, default=10000)
    parser.add_argument("--tunnel-port", type=int, default=10004)
    parser.add_argument("--metrics", type=_address, default=("127.0.0.1", 9091), help="HOST:PORT")
    parser.add_argument("--keepalive-timeout", type=float, default=KEEPALIVE_INTERVAL)
    parser.add_argument("--quiet", action="store_true", help="no per-connection log lines")
    args = parser.parse_args(argv)

    def read(path: str) -> bytes:
        with open(path, "rb") as handle:
            return handle.read()

    def log(line: str) -> None:
        if not args.quiet or "stopped" in line or "websocket [" in line:
            print(line, flush=True)

    hub = CloudHub(args.node, read(args.ca), read(args.cert), read(args.key), args.node_limit,
                   websocket_port=args.port, tunnel_port=args.tunnel_port, metrics_address=args.metrics,
                   log=log, bind_host=args.bind, keepalive_timeout=args.keepalive_timeout)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    hub.start()
    print("ready", flush=True)
    while not done.wait(1):
        pass
    hub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
