"""Tests of the lab itself (tests/lab/lab). Run as root:  pytest tests/lab/test_lab.py

The tests marked ``lab`` bring a 3-node lab up and take it DOWN at the end (an existing lab is
reused if it has the same shape, and removed afterwards). Everything that sends traffic runs
inside a lab namespace (ip netns exec / podman exec), never in the root namespace.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.join(HERE, "lab")
PROBE = os.path.join(HERE, "probe.py")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
CAN_RUN_LAB = os.geteuid() == 0 and shutil.which("podman") is not None and shutil.which("ip") is not None
needs_lab = pytest.mark.skipif(not CAN_RUN_LAB, reason="the lab needs root, podman and iproute2")


def lab(*args, timeout=600):
    return subprocess.run([LAB, *args], capture_output=True, text=True, timeout=timeout, check=False)


def sh(*cmd, timeout=60):
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)


def edge_probe(address, path="/ca.crt", timeout=2):
    return sh("ip", "netns", "exec", "ccha-edge", PYTHON, PROBE, address, "--path", path,
              "--timeout", str(timeout))


def one_error_line(proc):
    assert proc.returncode != 0, proc
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert proc.stdout == ""


def wait_for(predicate, timeout=15.0, interval=0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


# ----------------------------------------------------------------- without a lab

@pytest.mark.parametrize("sub", [[], ["up"], ["down"], ["holder"], ["probe"], ["fault"], ["heal"],
                                 ["inventory"], ["status"]])
def test_help(sub):
    proc = lab(*sub, "--help")
    assert proc.returncode == 0
    assert "usage:" in proc.stdout


@pytest.mark.parametrize("nodes", ["1", "9", "0", "x", "-3"])
def test_bad_node_count(nodes):
    one_error_line(lab("up", "--nodes", nodes))


@pytest.mark.parametrize("args", [["fault", "ccha-node1", "explode"], ["heal", "ccha-node1", "bogus"],
                                  ["fault", "ccha-node1"], ["up", "--debian", "11"], ["frobnicate"], []])
def test_bad_arguments(args):
    one_error_line(lab(*args))


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to drop root")
def test_up_refuses_non_root():
    proc = sh("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", LAB, "up")
    one_error_line(proc)
    assert "root" in proc.stderr


@needs_lab
@pytest.mark.lab
def test_down_on_nothing():
    first = lab("down")
    assert first.returncode == 0, first.stderr
    again = lab("down")
    assert again.returncode == 0, again.stderr
    assert len(again.stdout.splitlines()) == 1
    one_error_line(lab("holder"))  # the lab is not up


# ----------------------------------------------------------------- with a lab

@pytest.fixture(scope="module")
def up():
    if not CAN_RUN_LAB:
        pytest.skip("the lab needs root, podman and iproute2")
    proc = lab("up", "--nodes", "3")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 1 and "3 nodes" in proc.stdout
    with open(os.path.join(os.path.dirname(os.path.dirname(HERE)), ".lab", "lab.json"), encoding="utf-8") as fh:
        state = json.load(fh)
    yield state
    lab("down")


@pytest.mark.lab
def test_up_is_idempotent(up):
    proc = lab("up", "--nodes", "3")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 1


@pytest.mark.lab
def test_nodes_run_systemd(up):
    assert [n["name"] for n in up["nodes"]] == ["ccha-node1", "ccha-node2", "ccha-node3"]
    for node in up["nodes"]:
        state = sh("podman", "exec", node["name"], "systemctl", "is-system-running").stdout.strip()
        assert state in ("running", "degraded"), (node["name"], state)
        assert sh("podman", "exec", node["name"], "hostname").stdout.strip() == node["name"]


@pytest.mark.lab
def test_status_one_line_per_node(up):
    proc = lab("status")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert len(lines) == 3
    for line, node in zip(lines, up["nodes"]):
        assert line.startswith(node["name"] + " ") and "container=running" in line and "standin=active" in line


@pytest.mark.lab
def test_standin_answers_from_edge_on_every_node_address(up):
    vip4, vip6 = up["vip_ipv4"].split("/")[0], up["vip_ipv6"].split("/")[0]
    for node in up["nodes"]:
        for address in (node["ipv4"], node["ipv6"]):
            proc = edge_probe(address)
            assert proc.returncode == 0, (address, proc.stdout, proc.stderr)
            name, sans = proc.stdout.split()
            assert name == node["name"]
            for san in (vip4, vip6, node["ipv4"], node["ipv6"], "127.0.0.1"):
                assert f"IP:{san}" in sans.split("=", 1)[1].split(","), (san, sans)
    node = up["nodes"][0]
    assert edge_probe(node["ipv4"], "/readyz").returncode == 0
    notfound = edge_probe(node["ipv4"], "/nope")
    assert notfound.returncode == 2 and "http=404" in notfound.stdout


@pytest.mark.lab
def test_nodes_reach_each_other(up):
    for node in up["nodes"]:
        for peer in up["nodes"]:
            if peer is node:
                continue
            for address in (peer["ipv4"], peer["ipv6"]):
                proc = sh("podman", "exec", node["name"], "ping", "-c1", "-W2", address)
                assert proc.returncode == 0, (node["name"], address, proc.stdout)


@pytest.mark.lab
def test_root_namespace_is_fenced(up):
    routes4 = sh("ip", "route", "show", up["subnet_ipv4"]).stdout
    routes6 = sh("ip", "-6", "route", "show", up["subnet_ipv6"]).stdout
    assert "blackhole" in routes4 and "blackhole" in routes6
    addrs = sh("ip", "-o", "addr").stdout
    assert "10.213.102." not in addrs and "fd5c:c0e:213:" not in addrs


@pytest.mark.lab
def test_no_vip_without_keepalived(up):
    assert lab("holder").stdout.strip() == "none"
    proc = lab("probe", "--timeout", "1")
    assert proc.returncode != 0 and proc.stdout.strip() == "none"


@pytest.mark.lab
def test_inventory(up):
    proc = lab("inventory")
    assert proc.returncode == 0
    inv = proc.stdout.strip()
    hosts = open(os.path.join(inv, "hosts.yml"), encoding="utf-8").read()
    assert "containers.podman.podman" in hosts and "cloudcore:" in hosts
    assert all(n["name"] + ":" in hosts for n in up["nodes"])
    group = open(os.path.join(inv, "group_vars", "cloudcore.yml"), encoding="utf-8").read()
    assert "cloudcore_vip: 10.213.102.100/24" in group and "cloudcore_vrrp_router_id: 51" in group
    host = open(os.path.join(inv, "host_vars", "ccha-node2.yml"), encoding="utf-8").read()
    assert "lab_address_ipv4: 10.213.102.12" in host and "cloudcore_node_name: ccha-node2" in host


@pytest.mark.lab
def test_unknown_node(up):
    one_error_line(lab("fault", "ccha-node7", "cloudcore"))
    one_error_line(lab("heal", "nobody", "link"))


@pytest.mark.lab
def test_fault_and_heal_cloudcore(up):
    node = up["nodes"][1]
    assert lab("fault", node["name"], "cloudcore").returncode == 0
    try:
        assert wait_for(lambda: edge_probe(node["ipv4"], timeout=1).stdout.strip() == "none", 10)
        assert "standin=inactive" in lab("status").stdout.splitlines()[1]
    finally:
        assert lab("heal", node["name"], "cloudcore").returncode == 0
    assert wait_for(lambda: edge_probe(node["ipv4"], timeout=1).returncode == 0, 10)


@pytest.mark.lab
def test_fault_and_heal_link(up):
    node = up["nodes"][2]
    assert lab("fault", node["name"], "link").returncode == 0
    try:
        assert edge_probe(node["ipv4"], timeout=1).stdout.strip() == "none"
    finally:
        assert lab("heal", node["name"], "link").returncode == 0
    assert wait_for(lambda: edge_probe(node["ipv4"], timeout=1).returncode == 0, 10)
    assert wait_for(lambda: edge_probe(node["ipv6"], timeout=1).returncode == 0, 10)


@pytest.mark.lab
def test_fault_and_heal_partition(up):
    node, peer = up["nodes"][0], up["nodes"][1]
    assert lab("fault", node["name"], "partition").returncode == 0
    try:
        assert sh("podman", "exec", node["name"], "ping", "-c1", "-W1", peer["ipv4"]).returncode != 0
        assert sh("podman", "exec", peer["name"], "ping", "-c1", "-W1", node["ipv6"]).returncode != 0
        assert edge_probe(node["ipv4"]).returncode == 0  # the edge still reaches it
    finally:
        assert lab("heal", node["name"], "partition").returncode == 0
    assert sh("podman", "exec", node["name"], "ping", "-c1", "-W2", peer["ipv4"]).returncode == 0


@pytest.mark.lab
def test_local_apt_repo_and_keepalived_kill(up):
    node = up["nodes"][2]["name"]
    proc = sh("podman", "exec", node, "sh", "-c",
              "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q keepalived", timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    conf = ("vrrp_instance VI_1 {\n state BACKUP\n interface eth0\n virtual_router_id 51\n priority 100\n"
            " advert_int 1\n virtual_ipaddress {\n  10.213.102.100/24\n }\n}\n")
    sh("podman", "exec", node, "sh", "-c", f"printf '%s' '{conf}' > /etc/keepalived/keepalived.conf")
    assert sh("podman", "exec", node, "systemctl", "restart", "keepalived").returncode == 0
    assert wait_for(lambda: lab("holder").stdout.strip() == node, 10)
    assert lab("probe").stdout.split()[0] == node
    assert lab("fault", node, "keepalived-kill").returncode == 0

    def is_active():
        return sh("podman", "exec", node, "systemctl", "is-active", "keepalived").stdout.strip()

    assert is_active() != "active"
    assert lab("heal", node, "keepalived-kill").returncode == 0
    assert wait_for(lambda: is_active() == "active", 15)
    sh("podman", "exec", node, "systemctl", "stop", "keepalived")


@pytest.mark.lab
def test_fault_and_heal_restart(up):
    node = up["nodes"][0]
    assert lab("fault", node["name"], "restart").returncode == 0
    assert lab("heal", node["name"], "restart").returncode == 0
    state = sh("podman", "exec", node["name"], "systemctl", "is-system-running").stdout.strip()
    assert state in ("running", "degraded")
    assert wait_for(lambda: edge_probe(node["ipv4"], timeout=1).returncode == 0, 15)


@pytest.mark.lab
def test_zz_down_leaves_nothing(up):
    # a stray client inside a lab namespace must be killed by down
    stray = subprocess.Popen(["ip", "netns", "exec", "ccha-edge", "sleep", "300"])
    try:
        time.sleep(0.2)
        proc = lab("down")
        assert proc.returncode == 0, proc.stderr
        assert stray.wait(timeout=5) is not None
    finally:
        if stray.poll() is None:
            stray.kill()
    assert not [n for n in sh("ip", "netns", "list").stdout.split() if n.startswith("ccha-")]
    names = sh("podman", "ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert not [n for n in names if n.startswith("ccha-")]
    assert "ccha" not in sh("ip", "-o", "link").stdout
    assert sh("ip", "route", "show", up["subnet_ipv4"]).stdout.strip() == ""
    assert sh("ip", "-6", "route", "show", up["subnet_ipv6"]).stdout.strip() == ""
    assert not os.path.exists(os.path.join(up["lab_dir"], "lab.json"))
