"""What edge nodes experience, on the converged lab site: edge fleets (tests/lab/edge) in the edge
namespace connect to CloudHub through the VIP with their own certificates, and the faults and the
drill are judged by their timelines (tests/lab/README.md: the fleet; edgecore v1.23.1 defaults)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import LAB_DIR, holders, lab, run_playbook, single_holder, wait_for

HEARTBEAT_S = 15.0  # edgecore's default; v1.23.1 waits 2 x heartbeat after a broken connection
PROFILES = ("edgecore-1.23", "edgecore-next")
COUNT = 50


def fleet(name, profile, offset, count=COUNT):
    up = lab("edges", "up", "--name", name, "--profile", profile, "--count", str(count), "--offset", str(offset))
    assert up.returncode == 0, up.stdout + up.stderr


def status(name):
    with open(os.path.join(LAB_DIR, "edges", name, "status.json")) as handle:
        return json.load(handle)


def fleet_down(name):
    down = lab("edges", "down", "--name", name)
    assert down.returncode == 0, down.stdout + down.stderr
    with open(os.path.join(LAB_DIR, "edges", name, "timeline.json")) as handle:
        return json.load(handle)


def events_after(timeline, since):
    """Per edge: its events (monotonic seconds, event, detail) at or after `since` (CLOCK_MONOTONIC)."""
    mono0 = timeline["clock"]["mono0"]
    return {name: [(mono0 + t, event, detail) for t, _wall, event, detail in edge["events"] if mono0 + t >= since]
            for name, edge in timeline["edges"].items()}


def one_session_at_a_time(timeline):
    """No edge was ever connected to two CloudCores at once, as edgehub itself sees it."""
    for name, edge in timeline["edges"].items():
        open_session = None
        for _t, _wall, event, detail in edge["events"]:
            if event == "connected":
                assert open_session is None, "%s connected to %s while on %s" % (name, detail, open_session)
                open_session = detail
            elif event in ("teardown", "init_failed"):
                open_session = None


@pytest.fixture
def fleets(first_site_run):
    started = []

    def start(profile, offset, count=COUNT):
        fleet(profile, profile, offset, count)
        started.append(profile)

    yield start
    for name in started:
        lab("edges", "down", "--name", name)


def test_an_edge_without_a_client_certificate_is_refused(first_site_run, lab_state):
    script = ("import socket, ssl, sys\n"
              "c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE\n"
              "s = c.wrap_socket(socket.create_connection((sys.argv[1], 10000), timeout=5))\n"
              "s.sendall(b'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n"
              "print(repr(s.recv(100)))\n")
    proc = subprocess.run(["ip", "netns", "exec", lab_state["edge"]["namespace"], sys.executable, "-c", script,
                           lab_state["vip_ipv4"].split("/")[0]], capture_output=True, text=True, timeout=30,
                          check=False)
    assert proc.returncode != 0 and ("certificate required" in proc.stderr or "EOF" in proc.stderr
                                     or "reset" in proc.stderr.lower()), proc.stdout + proc.stderr


def test_after_cloudcore_stops_on_the_holder_every_edge_is_back_on_a_healthy_node_within_its_bound(fleets, nodes):
    for index, profile in enumerate(PROFILES):
        fleets(profile, index * COUNT)
    holder = wait_for(single_holder, 20)
    stopped_at = time.monotonic()
    assert lab("fault", holder, "cloudcore").returncode == 0
    try:
        back = wait_for(lambda: all(status(p)["connected_total"] == COUNT and status(p)["reconnects"] >= COUNT
                                    for p in PROFILES), 2 * HEARTBEAT_S + HEARTBEAT_S + 15)
    finally:
        assert lab("heal", holder, "cloudcore").returncode == 0
    assert back, {p: status(p) for p in PROFILES}
    timelines = {p: fleet_down(p) for p in PROFILES}
    for profile, timeline in timelines.items():
        one_session_at_a_time(timeline)
        for name, events in events_after(timeline, stopped_at).items():
            connects = [(t, detail) for t, event, detail in events if event == "connected"]
            assert connects and connects[0][1] != holder, "%s %s came back on %s" % (profile, name, connects)
            if profile == "edgecore-1.23":
                broken = [t for t, event, _d in events if event in ("wire_error", "teardown")][0]
                # no reconnect earlier than 2 x heartbeat after the error, every edge back within 2 x heartbeat
                # + one heartbeat (the error is noticed at the next keepalive) + a dial
                assert connects[0][0] - broken >= 2 * HEARTBEAT_S - 0.5, (name, broken, connects[0])
                assert connects[0][0] - stopped_at <= 3 * HEARTBEAT_S + 5, (name, connects[0][0] - stopped_at)
            else:
                assert connects[0][0] - stopped_at <= 10, (name, connects[0][0] - stopped_at)


def test_the_drill_reconnects_every_edge_exactly_once_and_loses_none(fleets):
    fleets("edgecore-1.23", 0)
    before = status("edgecore-1.23")["reconnects"]
    holder = holders()
    drill = run_playbook("playbooks/failover_drill.yml", "-e", "drill_watch_seconds=8")
    assert drill.rc == 0, drill.output[-3000:]
    # the VIP moves once and not back (nopreempt)
    assert "failover drill: %s -> " % holder[0] in drill.output, drill.output[-3000:]
    assert "VIP moves after the restore: 0 in 8 s" in drill.output, drill.output[-3000:]
    assert len(holders()) == 1 and holders() != holder
    back = wait_for(lambda: status("edgecore-1.23")["connected_total"] == COUNT
                    and status("edgecore-1.23")["reconnects"] - before >= COUNT, 4 * HEARTBEAT_S)
    assert back, status("edgecore-1.23")
    time.sleep(2)  # nothing more may follow
    timeline = fleet_down("edgecore-1.23")
    one_session_at_a_time(timeline)
    reconnects = {name: sum(1 for e in edge["events"] if e[2] == "connected") - 1
                  for name, edge in timeline["edges"].items()}
    assert set(reconnects.values()) == {1}, reconnects


def test_a_killed_keepalived_leaves_exactly_one_holder_within_3_adverts_and_a_second(first_site_run):
    holder = wait_for(single_holder, 20)
    killed = time.monotonic()
    assert lab("fault", holder, "keepalived-kill").returncode == 0
    seen = []
    try:
        while time.monotonic() - killed < 8:
            seen.append((time.monotonic() - killed, holders()))
            time.sleep(0.1)
    finally:
        assert lab("heal", holder, "keepalived-kill").returncode == 0
    assert all(len(h) <= 1 for _t, h in seen), "two holders: %s" % [(round(t, 1), h) for t, h in seen if len(h) > 1]
    bound = 3 * 1 + 1  # 3 x advert_int + 1 s
    after = [h for t, h in seen if t >= bound]
    assert after and all(h == after[0] and len(h) == 1 and h != [holder] for h in after), seen
