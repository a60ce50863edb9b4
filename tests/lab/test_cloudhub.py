"""standin/cloudhub.py: CloudHub's transport as KubeEdge v1.23.1 has it (loopback, seconds, no lab).

The client side is the fleet's own (edge/wire.py), written separately from the server's framing.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
pytest.importorskip("cryptography")

from edge import edgenode  # noqa: E402
from edge.testing import Hub, LabPKI, free_port, run, until  # noqa: E402
from edge.wire import OP_PING, OP_TEXT, HandshakeError, WebSocket, client_frame, dial  # noqa: E402

import cloudhub  # noqa: E402  (edge.testing put standin/ on sys.path)

PROJECT = "e632aba927ea4ac2b575ec1603d56f10"


@pytest.fixture(scope="module")
def lab_pki(tmp_path_factory) -> LabPKI:
    return LabPKI.create(str(tmp_path_factory.mktemp("pki")))


def hub_headers(node: str) -> list[tuple[str, str]]:
    return [("Node_id", node), ("Project_id", PROJECT), ("Connectionuse", "msg")]


async def connect(hub: Hub, context: ssl.SSLContext, node: str, source: str = "127.0.1.1",
                  path: str | None = None) -> WebSocket:
    return await dial(hub.host, hub.port, path or f"/{PROJECT}/{node}/events", hub_headers(node), context, source,
                      hub.host)


async def is_closed(ws: WebSocket, within: float) -> bool:
    """True when the server closed the connection within ``within`` seconds."""
    try:
        await asyncio.wait_for(ws.read_message(), within)
    except asyncio.TimeoutError:  # before OSError: TimeoutError is one
        return False
    except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError):
        return True
    return False


def no_cert_context(lab_pki: LabPKI) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=lab_pki.ca_pem.decode())
    return context


def test_edge_without_client_certificate_is_refused(lab_pki):
    with Hub(lab_pki) as hub:
        async def scenario():
            with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
                await connect(hub, no_cert_context(lab_pki), "n1")
        run(scenario())
        assert hub.hub.sessions() == {}
        assert run(until(lambda: hub.hub.counters()["rejected_tls"] == 1, 2))
        assert any("rejected TLS on" in line for line in hub.lines), hub.lines


def test_client_certificate_of_another_ca_is_refused(lab_pki):
    hub_context, tunnel_context = lab_pki.edge_contexts("n1", foreign=True)
    with Hub(lab_pki) as hub:
        async def scenario():
            for port, context, path in ((hub.port, hub_context, f"/{PROJECT}/n1/events"),
                                        (hub.port + 4, tunnel_context, cloudhub.TUNNEL_PATH)):
                with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
                    await dial(hub.host, port, path, hub_headers("n1"), context, "127.0.1.1", hub.host)
        run(scenario())
        assert hub.hub.sessions() == {} and hub.hub.tunnels() == {}
        assert run(until(lambda: hub.hub.counters()["rejected_tls"] == 2, 2))


def test_session_keyed_by_node_id_header_on_any_path_and_metric(lab_pki):
    context, _tunnel = lab_pki.edge_contexts("cert-name")  # CN system:node:cert-name: not compared (authz off)
    with Hub(lab_pki, node="hub-x") as hub:
        async def scenario():
            ws = await connect(hub, context, "n1", path="/any/path/at/all")
            assert ws.headers["x-lab-node"] == "hub-x" and ws.headers["x-lab-session"] == "served"
            sessions = hub.hub.sessions()
            assert list(sessions) == ["n1"]
            assert sessions["n1"]["peer"].startswith("127.0.1.1:") and sessions["n1"]["tunnel"] is False
            assert hub.metric() == 1
            ws.close()
            assert await until(lambda: hub.hub.sessions() == {}, 5)
            assert hub.metric() == 0
        run(scenario())
    assert any("edge node n1 for project" in line and "connected" in line for line in hub.lines)
    assert any("disConnected" in line for line in hub.lines)


def test_metrics_endpoint_is_prometheus_text(lab_pki):
    with Hub(lab_pki) as hub:
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{hub.port + 9}/metrics", timeout=5) as response:
            body = response.read().decode()
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert body == ("# HELP KubeEdge_CloudHub_connected_nodes Number of nodes that connected to the cloudHub "
                        "instance\n# TYPE KubeEdge_CloudHub_connected_nodes gauge\nKubeEdge_CloudHub_connected_nodes 0\n")


def test_plain_request_gets_gorillas_400(lab_pki):
    context, _tunnel = lab_pki.edge_contexts("n1")
    with Hub(lab_pki) as hub:
        async def scenario():
            reader, writer = await asyncio.open_connection(hub.host, hub.port, ssl=context, server_hostname=hub.host)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            writer.close()
            return head
        head = run(scenario())
        assert head.startswith(b"HTTP/1.1 400 Bad Request") and b"Sec-Websocket-Version: 13" in head


def test_node_limit_upgrades_then_leaves_the_connection_open_unserved(lab_pki):
    """message_handler.go HandleConnection: past the limit, log and return -- no close, no code."""
    with Hub(lab_pki, node_limit=2, keepalive_timeout=0.6) as hub:
        async def scenario():
            sockets = []
            for index in range(3):
                context, _tunnel = lab_pki.edge_contexts(f"n{index}")
                sockets.append(await connect(hub, context, f"n{index}", source=f"127.0.1.{index + 1}"))
            assert [ws.headers["x-lab-session"] for ws in sockets] == ["served", "served", "node-limit"]
            assert sorted(hub.hub.sessions()) == ["n0", "n1"] and hub.metric() == 2
            extra = sockets[2]
            for _keepalive in range(4):  # keepalives are read (and find no session): the edge notices nothing
                await extra.send(OP_TEXT, edgenode.keepalive_message(), 1.0)
                assert not await is_closed(extra, 0.3), hub.lines
            assert hub.hub.counters()["rejected_node_limit"] == 1
            assert sorted(hub.hub.sessions()) == []  # n0, n1 sent no keepalive: timed out meanwhile
            assert not extra.closed  # ...and n2 is still not served, still connected
            for ws in sockets:
                ws.close()
        run(scenario())
    assert any("Fail to serve node n2, reach node limit" in line for line in hub.lines)


def test_keepalive_timeout_closes_the_session(lab_pki):
    context, _tunnel = lab_pki.edge_contexts("n1")
    with Hub(lab_pki, keepalive_timeout=0.5) as hub:
        async def scenario():
            alive = await connect(hub, context, "alive", source="127.0.1.1")
            silent = await connect(hub, context, "silent", source="127.0.1.2")
            for _keepalive in range(6):
                await alive.send(OP_TEXT, edgenode.keepalive_message(), 1.0)
                await asyncio.sleep(0.2)
            assert await is_closed(silent, 0.1)
            assert list(hub.hub.sessions()) == ["alive"]
            assert not await is_closed(alive, 0.1)
            alive.close()
        run(scenario())
        assert hub.hub.counters()["keepalive_timeouts"] == 1
    assert any("timeout to receive keepalive for node silent" in line for line in hub.lines)


def test_second_connection_closes_the_old_and_upstreams_race_closes_the_new(lab_pki):
    """session_manager.go AddSession + message_handler.go OnReadTransportErr (see cloudhub.py)."""
    context, _tunnel = lab_pki.edge_contexts("n1")
    with Hub(lab_pki) as hub:
        async def scenario():
            first = await connect(hub, context, "n1", source="127.0.1.1")
            second = await connect(hub, context, "n1", source="127.0.1.2")
            assert await is_closed(first, 2)
            assert await is_closed(second, 2)
            assert await until(lambda: hub.hub.sessions() == {}, 2)
            third = await connect(hub, context, "n1", source="127.0.1.3")  # no stale session now: it stays
            assert not await is_closed(third, 0.5)
            assert hub.hub.sessions()["n1"]["peer"].startswith("127.0.1.3:")
            third.close()
        run(scenario())
        assert hub.hub.counters()["replaced"] == 1
    assert any("session exists for n1, close old session" in line for line in hub.lines)


def test_pings_get_pongs_and_control_messages_an_ack(lab_pki):
    context, _tunnel = lab_pki.edge_contexts("n1")
    with Hub(lab_pki) as hub:
        async def scenario():
            ws = await connect(hub, context, "n1")
            pongs = []
            ws.on_pong = lambda: pongs.append(1)
            await ws.send(OP_PING, b"x", 1.0)
            control = {"header": {"msg_id": "m-1", "timestamp": 1}, "content": "",
                       "route": {"source": "s", "group": "g", "operation": "ping", "resource": "r"}}
            await ws.send(OP_TEXT, json.dumps(control).encode(), 1.0)
            opcode, payload = await asyncio.wait_for(ws.read_message(), 2)
            reply = json.loads(payload)
            assert opcode == OP_TEXT and pongs == [1]
            assert reply["header"]["parent_msg_id"] == "m-1" and reply["content"] == "ack"
            assert reply["route"]["operation"] == "response"
            await ws.send(OP_TEXT, b"not json", 1.0)  # ReadJSON error: handleMessage closes
            assert await is_closed(ws, 2)
        run(scenario())


def test_unmasked_client_frame_is_a_protocol_error(lab_pki):
    context, _tunnel = lab_pki.edge_contexts("n1")
    with Hub(lab_pki) as hub:
        async def scenario():
            ws = await connect(hub, context, "n1")
            ws.tls.write(bytes([0x81, 2]) + b"{}")  # no mask bit
            with pytest.raises(ConnectionError, match="close 1002"):
                await asyncio.wait_for(ws.read_message(), 2)
        run(scenario())


def test_tunnel_marks_the_session_and_refuses_other_paths(lab_pki):
    hub_context, tunnel_context = lab_pki.edge_contexts("n1")
    with Hub(lab_pki) as hub:
        async def scenario():
            ws = await connect(hub, hub_context, "n1")
            headers = [("Sessionhostnameoverride", "n1"), ("Sessioninternalip", "127.0.1.1")]
            with pytest.raises(HandshakeError, match="404"):
                await dial(hub.host, hub.port + 4, "/other", headers, tunnel_context, "127.0.1.1", None)
            tunnel = await dial(hub.host, hub.port + 4, cloudhub.TUNNEL_PATH, headers, tunnel_context, "127.0.1.1",
                                None)
            assert tunnel.headers["x-lab-node"] == "hub-a"
            assert await until(lambda: hub.hub.sessions()["n1"]["tunnel"], 2)
            tunnel.tls.write(client_frame(0x2, b"binary"))  # session.go Serve: text only
            assert await is_closed(tunnel, 2)
            assert await until(lambda: not hub.hub.sessions()["n1"]["tunnel"], 2)
            ws.close()
        run(scenario())


def test_stop_closes_every_connection_and_the_ports_rebind(lab_pki):
    context, _tunnel = lab_pki.edge_contexts("n1")
    port = free_port()
    hub = Hub(lab_pki, port=port)
    with hub:
        async def connected():
            return await connect(hub, context, "n1")
        loop = asyncio.new_event_loop()
        ws = loop.run_until_complete(connected())
    try:
        assert loop.run_until_complete(is_closed(ws, 2))
    finally:
        loop.close()
    with Hub(lab_pki, port=port) as again:  # SO_REUSEADDR, like Go's listener
        assert again.hub.sessions() == {}


def test_start_raises_when_a_port_is_taken(lab_pki):
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port + 4))
        taken.listen()
        hub = Hub(lab_pki, port=port)
        with pytest.raises(OSError):
            hub.hub.start()
    with Hub(lab_pki, port=port):  # nothing half-bound was left behind
        pass


def test_dual_stack_bind(lab_pki):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    context, _tunnel = lab_pki.edge_contexts("n6")
    port = free_port()
    hub = Hub(lab_pki, port=port)
    hub.hub.bind_host = "::"
    with hub:
        async def scenario():
            ws4 = await connect(hub, context, "v4")
            ws6 = await dial("::1", port, "/", hub_headers("v6"), context, None, "::1")
            peers = {name: s["peer"] for name, s in hub.hub.sessions().items()}
            assert "v6" in peers, hub.lines
            assert peers["v4"].startswith("127.0.1.1:") and peers["v6"].startswith("[::1]:")
            ws4.close()
            ws6.close()
        run(scenario())


def debian_pythons() -> list[str]:
    """The system Pythons a lab node has (Debian 12: 3.11, Debian 13: 3.13) with cryptography."""
    import subprocess
    found = []
    for candidate in ("/usr/bin/python3.11", "/usr/bin/python3.13"):
        if os.path.exists(candidate) and subprocess.run(
                [candidate, "-c", "import cryptography"], capture_output=True, check=False).returncode == 0:
            found.append(candidate)
    return found


@pytest.mark.parametrize("python", debian_pythons() or [pytest.param(None, marks=pytest.mark.skip("no Debian python3"))])
def test_runs_under_the_nodes_system_python(lab_pki, python):
    """stdlib + python3-cryptography only: what /opt/cloudcore-standin has on a node."""
    from edge.testing import HubProcess
    hub = HubProcess(lab_pki, node="hub-deb", python=python).start()
    context, _tunnel = lab_pki.edge_contexts("n1")
    try:
        async def scenario():
            ws = await dial("127.0.0.1", hub.port, "/", hub_headers("n1"), context, "127.0.1.1", "127.0.0.1")
            assert ws.headers["x-lab-node"] == "hub-deb"
            await ws.send(OP_TEXT, edgenode.keepalive_message(), 1.0)
            import urllib.request
            with urllib.request.urlopen(f"http://127.0.0.1:{hub.port + 9}/metrics", timeout=5) as response:
                assert response.read().decode().endswith("KubeEdge_CloudHub_connected_nodes 1\n")
            ws.close()
        run(scenario())
    finally:
        hub.stop()


def test_at_the_limit_a_reconnecting_node_is_unserved_and_keeps_its_stale_session_alive(lab_pki):
    """ReachLimit counts the node's own old session; keepalives are matched by node_id only."""
    context, _tunnel = lab_pki.edge_contexts("n1")
    with Hub(lab_pki, node_limit=1, keepalive_timeout=0.5) as hub:
        async def scenario():
            stale = await connect(hub, context, "n1", source="127.0.1.1")  # then silent
            fresh = await connect(hub, context, "n1", source="127.0.1.2")
            assert fresh.headers["x-lab-session"] == "node-limit"
            for _keepalive in range(8):  # 1.6 s > the keepalive timeout: the stale session lives on
                await fresh.send(OP_TEXT, edgenode.keepalive_message(), 1.0)
                await asyncio.sleep(0.2)
            assert hub.hub.sessions()["n1"]["peer"].startswith("127.0.1.1:")
            fresh.close()  # its read error terminates the session registered under n1: the stale one
            assert await is_closed(stale, 2)
            assert await until(lambda: hub.hub.sessions() == {}, 2)
        run(scenario())
