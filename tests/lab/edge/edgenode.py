"""One edge node: edgehub's connection loop and edgestream's tunnel loop, as edgecore runs them.

Each behaviour names its upstream source (kubeedge v1.23.1 unless it says #6966/#6967, see
profiles.py). The parts that make an edge slow to notice a failure are the point of the model:

- edgehub.go Start: Init (up to 5 dials, 5 s apart, each under the 30 s handshake timeout;
  wsclient/websocket.go), then keepalive/routeToEdge/routeToCloud until a goroutine signals
  reconnectChan; UnInit (close the connection); sleep 2 x heartbeat; Init again. A failed Init
  also sleeps 2 x heartbeat and starts over: the cycle never ends.
- process.go keepalive: a ``keepalive`` message every heartbeat; its write error is what tears
  the connection down in v1.23.1. viaduct's read loop (conn/ws.go handleMessage) does notice a
  read error, closes the socket, but does not close the message FIFO, so routeToEdge stays
  blocked and edgehub learns of it only at the next keepalive write ("use of closed network
  connection"). A connection that dies silently is noticed only when TCP gives up.
- #6966: the read deadline, extended by pongs to pings sent every ReadDeadline/2; a read error
  closes the FIFO, so routeToEdge signals at once. A ping write that times out is ignored; any
  other ping write error closes the connection.
- #6967: the waits come from the backoff; it is reset after a connection that lasted > Cap.
- edgestream.go: a 2 s Go ticker (one tick buffered while a tunnel is up, so a lost tunnel is
  redialled at once, then every 2 s); tunnel.go: a ping every 5 s ("ping you", 1 s deadline;
  the ping loop stops at its first error), no read deadline. Both connections leave from the
  edge's one source address (haproxy pairs them by source).
- the dial: the URL wss://SERVER/PROJECT/NODE/events with headers node_id, project_id and
  ConnectionUse: msg -- added once per attempt to the same header map, so the k-th dial of an
  Init carries it k times (pkg/viaduct/pkg/client/ws.go header.Add) -- and the tunnel's
  wss://SERVER:10004/v1/kubeedge/connect with SessionHostNameOverride/SessionInternalIP.

Which CloudCore answered comes from the lab header X-Lab-Node on the 101 response (and
X-Lab-Session: node-limit when that CloudCore upgraded but does not serve the node).
"""
from __future__ import annotations

import asyncio
import json
import random
import ssl
import time
import uuid
from typing import Callable

from .profiles import Backoff, Profile
from .wire import OP_PING, OP_TEXT, WebSocket, dial

# Event names in the timeline (see README.md).
DIAL, DIAL_FAILED, CONNECTED, CONNECTED_UNSERVED = "dial", "dial_failed", "connected", "connected_unserved"
WIRE_ERROR, TEARDOWN, INIT_FAILED = "wire_error", "teardown", "init_failed"
TUNNEL_CONNECTED, TUNNEL_CLOSED, TUNNEL_DIAL_FAILED = "tunnel_connected", "tunnel_closed", "tunnel_dial_failed"


def keepalive_message() -> bytes:
    """process.go keepalive: NewMessage("").BuildRouter("websocket", "resource", "node", "keepalive")
    .FillBody("ping"), written by gorilla WriteJSON (json.Encoder: a trailing newline)."""
    header = {"msg_id": str(uuid.uuid4()), "timestamp": int(time.time() * 1000)}
    route = {"source": "websocket", "group": "resource", "operation": "keepalive", "resource": "node"}
    return (json.dumps({"header": header, "route": route, "content": "ping"}, separators=(",", ":")) + "\n").encode()


def describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return f"tls: {getattr(exc, 'reason', None) or exc}"
    if isinstance(exc, asyncio.IncompleteReadError):
        return "EOF"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "i/o timeout"
    return str(exc) or type(exc).__name__


class GoTicker:
    """time.NewTicker: ticks every period from creation; while nobody receives, one tick waits
    in the channel and the rest are dropped."""

    def __init__(self, period: float):
        self.period, self.due = period, time.monotonic() + period

    async def tick(self) -> None:
        now = time.monotonic()
        if now < self.due:
            await asyncio.sleep(self.due - now)
            self.due += self.period
        else:
            self.due += (int((now - self.due) // self.period) + 1) * self.period


class EdgeNode:
    """One edgecore: its name, its source address, its certificate, its record of events."""

    __slots__ = ("name", "source", "profile", "server", "tunnel_port", "hub_context", "tunnel_context", "clock",
                 "events", "hub_node", "served", "unnoticed", "tunnel_node", "connects", "rng", "_tasks")

    def __init__(self, name: str, source: str, profile: Profile, server: tuple[str, int], tunnel_port: int,
                 hub_context: ssl.SSLContext, tunnel_context: ssl.SSLContext, clock: Callable[[], float],
                 rng: random.Random):
        self.name, self.source, self.profile = name, source, profile
        self.server, self.tunnel_port = server, tunnel_port
        self.hub_context, self.tunnel_context = hub_context, tunnel_context
        self.clock, self.rng = clock, rng
        self.events: list[tuple] = []
        self.hub_node: str | None = None     # the CloudCore holding the hub connection
        self.served = False                  # False also while connected but past that CloudCore's nodeLimit
        self.unnoticed = False               # the connection is closed, edgehub does not know yet (v1.23.1)
        self.tunnel_node: str | None = None
        self.connects = 0
        self._tasks: list[asyncio.Task] = []

    def record(self, event: str, detail: str = "") -> None:
        """Compact: (seconds since the fleet started, wall clock, event, detail)."""
        self.events.append((round(self.clock(), 3), round(time.time(), 3), event, detail))

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self.run_hub(), name=f"{self.name}-hub")]
        if self.profile.tunnel:
            self._tasks.append(loop.create_task(self.run_tunnel(), name=f"{self.name}-tunnel"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ---------------------------------------------------------------- edgehub
    async def run_hub(self) -> None:
        """edgehub.go Start."""
        p = self.profile
        backoff = Backoff(p, self.rng) if p.backoff else None
        while True:
            ws = await self.init()
            if ws is None:
                wait = backoff.step() if backoff else 2 * p.heartbeat
                self.record(INIT_FAILED, f"max retry count reached when connecting to cloud; sleep {wait:.2f}s")
                await asyncio.sleep(wait)
                continue
            connected_at = time.monotonic()
            try:
                reason = await self.serve(ws)
            finally:
                ws.close()  # UnInit (also when the fleet stops: a clean process exit closes too)
                self.hub_node, self.served, self.unnoticed = None, False, False
            if backoff and time.monotonic() - connected_at > p.backoff_cap:  # shouldResetBackoff
                backoff.reset()
            wait = backoff.step() if backoff else 2 * p.heartbeat
            self.record(TEARDOWN, f"{reason}; sleep {wait:.2f}s")
            await asyncio.sleep(wait)

    async def init(self) -> WebSocket | None:
        """wsclient/websocket.go Init: up to dial_attempts dials, sleeping dial_interval after each failure."""
        p = self.profile
        host, port = self.server
        path = f"/{p.project_id}/{self.name}/events"
        headers = [("Node_id", self.name), ("Project_id", p.project_id)]
        for attempt in range(1, p.dial_attempts + 1):
            headers.append(("Connectionuse", "msg"))  # header.Add on the same map at every Connect
            self.record(DIAL, str(attempt))
            try:
                ws = await asyncio.wait_for(
                    dial(host, port, path, list(headers), self.hub_context, self.source, host), p.handshake_timeout)
            except (OSError, ConnectionError, ssl.SSLError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError) as exc:
                self.record(DIAL_FAILED, describe(exc))
                await asyncio.sleep(p.dial_interval)
                continue
            self.hub_node = ws.headers.get("x-lab-node", "?")
            self.served = ws.headers.get("x-lab-session", "served") == "served"
            self.connects += 1
            self.record(CONNECTED if self.served else CONNECTED_UNSERVED, self.hub_node)
            return ws
        return None

    async def serve(self, ws: WebSocket) -> str:
        """keepalive + the read loop (+ #6966's ping loop) until one signals reconnectChan."""
        loop = asyncio.get_running_loop()
        signal: asyncio.Future = loop.create_future()

        def reconnect(reason: str) -> None:
            if not signal.done():
                signal.set_result(reason)

        tasks = [loop.create_task(self.read_loop(ws, reconnect)), loop.create_task(self.keepalive_loop(ws, reconnect))]
        if self.profile.read_deadline_applied:
            tasks.append(loop.create_task(self.ping_loop(ws)))
        try:
            return await signal
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def keepalive_loop(self, ws: WebSocket, reconnect: Callable[[str], None]) -> None:
        """process.go keepalive: send, then sleep heartbeat; a write error signals reconnect."""
        p = self.profile
        while True:
            try:
                await ws.send(OP_TEXT, keepalive_message(), p.write_deadline)
            except (OSError, ConnectionError, ssl.SSLError, asyncio.TimeoutError) as exc:
                reason = f"websocket write error: {describe(exc)}"
                self.record(WIRE_ERROR, reason)
                reconnect(reason)
                return
            await asyncio.sleep(p.heartbeat)

    async def read_loop(self, ws: WebSocket, reconnect: Callable[[str], None]) -> None:
        """conn/ws.go handleMessage on the edge (AutoRoute false: messages go to the FIFO)."""
        p = self.profile
        deadline = [0.0]
        watchdog = None
        if p.read_deadline_applied:  # #6966: armed per read, extended by pongs
            def extend() -> None:
                deadline[0] = time.monotonic() + p.read_deadline
            ws.on_pong = extend
            watchdog = asyncio.get_running_loop().create_task(self._deadline_watch(ws, deadline, reconnect))
        try:
            while True:
                if p.read_deadline_applied:
                    deadline[0] = time.monotonic() + p.read_deadline
                await ws.read_message()  # control acks and anything else: dropped into the FIFO
        except (OSError, ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            if watchdog is not None and watchdog.done():
                return  # the deadline fired: already reported
            reason = f"websocket read error: {describe(exc)}"
            ws.close()
            self.record(WIRE_ERROR, reason)
            self.hub_node, self.served = None, False
            if p.read_deadline_applied:  # #6966 closes the FIFO: routeToEdge -> triggerReconnect
                reconnect(reason)
            else:  # v1.23.1: the FIFO stays open; edgehub hears of it at the next keepalive write.
                self.unnoticed = True
        finally:
            if watchdog is not None:
                watchdog.cancel()

    async def _deadline_watch(self, ws: WebSocket, deadline: list[float], reconnect: Callable[[str], None]) -> None:
        """#6966: the read deadline passing makes the read fail with i/o timeout; handleMessage
        closes the connection and the FIFO (reported here, before any other goroutine can)."""
        while True:
            remaining = deadline[0] - time.monotonic()
            if remaining <= 0:
                reason = "read deadline: i/o timeout"
                self.record(WIRE_ERROR, reason)
                self.hub_node, self.served = None, False
                reconnect(reason)
                ws.close()
                return
            await asyncio.sleep(remaining)

    async def ping_loop(self, ws: WebSocket) -> None:
        """#6966 pingLoop: every ReadDeadline/2; a timeout is ignored, another error closes."""
        period = max(self.profile.read_deadline / 2, 0.001)
        while True:
            await asyncio.sleep(period)
            try:
                await ws.send(OP_PING, b"", period)
            except (asyncio.TimeoutError, TimeoutError):
                continue
            except (OSError, ConnectionError, ssl.SSLError):
                ws.close()
                return

    # ---------------------------------------------------------------- edgestream
    async def run_tunnel(self) -> None:
        """edgestream.go Start: on every tick TLSClientConnect, which returns when the tunnel ends."""
        p = self.profile
        host = self.server[0]
        ticker = GoTicker(p.tunnel_interval)
        headers = [("Sessionhostnameoverride", self.name), ("Sessioninternalip", self.source)]
        while True:
            await ticker.tick()
            try:
                ws = await asyncio.wait_for(
                    dial(host, self.tunnel_port, "/v1/kubeedge/connect", headers, self.tunnel_context, self.source,
                         None), p.tunnel_handshake_timeout)
            except (OSError, ConnectionError, ssl.SSLError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError) as exc:
                self.record(TUNNEL_DIAL_FAILED, describe(exc))
                continue
            self.tunnel_node = ws.headers.get("x-lab-node", "?")
            self.record(TUNNEL_CONNECTED, self.tunnel_node)
            try:
                reason = await self.serve_tunnel(ws)
            finally:
                ws.close()
                self.tunnel_node = None
            self.record(TUNNEL_CLOSED, reason)

    async def serve_tunnel(self, ws: WebSocket) -> str:
        """tunnel.go Serve: read until an error; startPing alongside."""
        pinger = asyncio.get_running_loop().create_task(self._tunnel_ping(ws))
        try:
            while True:
                await ws.read_message()
        except (OSError, ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            return f"Read Message error {describe(exc)}"
        finally:
            pinger.cancel()

    async def _tunnel_ping(self, ws: WebSocket) -> None:
        while True:
            await asyncio.sleep(self.profile.tunnel_ping)
            try:
                await ws.send(OP_PING, b"ping you", 1.0)
            except (OSError, ConnectionError, ssl.SSLError, asyncio.TimeoutError):
                return  # "write ping message error": the loop ends, the session does not
