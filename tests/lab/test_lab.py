"""Tests of the lab itself (tests/lab/lab). Run as root:  pytest tests/lab/test_lab.py

The tests marked ``lab`` bring a 3-node lab up and take it DOWN at the end (an existing lab is
reused if it has the same shape, and removed afterwards). Everything that sends traffic runs
inside a lab namespace (ip netns exec / podman exec), never in the root namespace -- except the
Kubernetes client, which talks to the API stand-in on 127.0.0.1 through .lab/kubeconfig.
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
LAB = os.path.join(HERE, "lab")
PROBE = os.path.join(HERE, "probe.py")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
CAN_RUN_LAB = os.geteuid() == 0 and shutil.which("podman") is not None and shutil.which("ip") is not None
needs_lab = pytest.mark.skipif(not CAN_RUN_LAB, reason="the lab needs root, podman and iproute2")


def lab(*args, timeout=600, env=None):
    return subprocess.run([LAB, *args], capture_output=True, text=True, timeout=timeout, check=False,
                          env=dict(os.environ, **(env or {})))


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


@pytest.mark.skipif(os.geteuid() != 0, reason="up checks root first")
def test_up_without_the_venv_says_make_setup():
    proc = lab("up", env={"CCHA_LAB_PYTHON": "/nonexistent/venv/bin/python"})
    one_error_line(proc)
    assert "make setup" in proc.stderr


# ----------------------------------------------------------------- releases and mixed labs (no containers)

sys.path.insert(0, HERE)
import lab as labmod  # noqa: E402  (tests/lab/lab.py; the CLI above is its /bin/sh wrapper)


@pytest.mark.parametrize("debian, debian_of, count, expected", [
    ("12", [], None, [12, 12, 12]),
    ("13", [], 2, [13, 13]),
    ("12,13,13", [], None, [12, 13, 13]),
    ("12,13,13", [], 3, [12, 13, 13]),
    ("12", ["ccha-node3=13"], None, [12, 12, 13]),
    ("12", ["2=13", "ccha-node4=13"], 4, [12, 13, 12, 13]),
    ("13,13,13", ["ccha-node1=12"], None, [12, 13, 13]),
    (" 12 , 13 ", [], None, [12, 13]),
])
def test_node_releases(debian, debian_of, count, expected):
    assert labmod.node_releases(count, debian, debian_of) == expected


@pytest.mark.parametrize("debian, debian_of, count, message", [
    ("11", [], None, "Debian 11 is not known"),
    ("bookworm", [], None, "not a Debian release"),
    ("12,13", [], 3, "2 releases for 3 nodes"),
    ("12,13,13,13,13,13,13,13,13", [], None, "2..8"),
    ("12", ["ccha-node4=13"], 3, "NODE one of ccha-node1 ccha-node2 ccha-node3"),
    ("12", ["ccha-node2"], 3, "expected NODE=RELEASE"),
    ("12", ["ccha-node2=14"], 3, "Debian 14 is not known"),
    ("12", ["ccha-node2=12,13"], 3, "one release per node"),
])
def test_node_releases_refuses(debian, debian_of, count, message):
    with pytest.raises(labmod.LabError, match=message):
        labmod.node_releases(count, debian, debian_of)


@pytest.mark.parametrize("args", [["--debian", "12,11"], ["--debian", "12,13", "--nodes", "3"],
                                  ["--debian-of", "ccha-node9=13"], ["--debian-of", "x"]])
def test_up_refuses_bad_releases_in_one_line(args):
    proc = lab("up", *args)
    one_error_line(proc)
    assert "debian" in proc.stderr.lower() or "node" in proc.stderr.lower()


def test_model_of_a_uniform_lab_keeps_one_release():
    state = labmod.model(3, 13)
    assert (state["debian"], state["debian_releases"], state["image"]) == (13, [13], "localhost/ccha-node:debian13")
    assert state["apt_repo"].endswith("/apt-debian13")
    assert {(n["debian"], n["codename"], n["image"]) for n in state["nodes"]} == {
        (13, "trixie", "localhost/ccha-node:debian13")}


def test_model_of_a_mixed_lab_is_per_node():
    state = labmod.model(3, [12, 13, 13])
    assert (state["debian"], state["image"], state["apt_repo"]) == (None, None, None)
    assert state["debian_releases"] == [12, 13]
    assert [(n["name"], n["debian"], n["image"], os.path.basename(n["apt_repo"])) for n in state["nodes"]] == [
        ("ccha-node1", 12, "localhost/ccha-node:debian12", "apt-debian12"),
        ("ccha-node2", 13, "localhost/ccha-node:debian13", "apt-debian13"),
        ("ccha-node3", 13, "localhost/ccha-node:debian13", "apt-debian13")]
    with pytest.raises(labmod.LabError):
        labmod.model(3, [12, 13])


def test_run_spec_picks_each_nodes_image_and_apt_repo():
    state = labmod.model(2, [12, 13])
    for node, release in zip(state["nodes"], (12, 13)):
        spec = labmod.run_spec(state, node)
        args = spec["podman_run_args"]
        assert args[-2:] == [f"localhost/ccha-node:debian{release}", "/sbin/init"]
        assert f"{labmod.apt_repo_dir(release)}:/srv/lab-apt:ro" in spec["volumes"]
        assert args[args.index(f"{labmod.apt_repo_dir(release)}:/srv/lab-apt:ro") - 1] == "-v"
        assert (spec["image"], spec["debian"], spec["labels"]["ccha.debian"]) == (
            f"localhost/ccha-node:debian{release}", release, str(release))


def test_inventory_records_each_nodes_release(tmp_path):
    state = labmod.model(3, [12, 12, 13])
    state["inventory"] = str(tmp_path / "inventory")
    labmod.write_inventory(state)
    import yaml
    for node, release, codename in (("ccha-node1", 12, "bookworm"), ("ccha-node3", 13, "trixie")):
        with open(tmp_path / "inventory" / "host_vars" / f"{node}.yml", encoding="utf-8") as handle:
            host_vars = yaml.safe_load(handle)
        assert (host_vars["lab_debian"], host_vars["lab_debian_codename"]) == (release, codename)
    with open(tmp_path / "inventory" / "hosts.yml", encoding="utf-8") as handle:
        hosts = yaml.safe_load(handle)["all"]["children"]
    assert sorted(hosts["cloudcore"]["hosts"]) == ["ccha-node1", "ccha-node2", "ccha-node3"]
    assert sorted(hosts["lab_debian12"]["hosts"]) == ["ccha-node1", "ccha-node2"]
    assert sorted(hosts["lab_debian13"]["hosts"]) == ["ccha-node3"]
    assert hosts["cloudcore"]["vars"]["ansible_connection"] == "lab_nsenter"


def test_stale_containers_are_those_of_another_release():
    state = labmod.model(3, [12, 13, 13])
    existing = {"ccha-node1": {"Image": "localhost/ccha-node:debian12"},
                "ccha-node2": {"Image": "localhost/ccha-node:debian12"},  # moved to 13: replaced
                "ccha-node3": {"Image": "localhost/ccha-node:debian13"},
                "ccha-node7": {"Image": "localhost/ccha-node:debian12"}}  # not a node of this lab
    assert labmod.stale_containers(state, existing) == ["ccha-node2"]


def test_release_label():
    assert labmod.release_label([12, 12]) == "debian12"
    assert labmod.release_label([12, 13, 13]) == "debian12,13,13"


def test_image_recipes():
    bookworm, trixie = labmod.image_recipe(12), labmod.image_recipe(13)
    polkit = "/etc/systemd/system/polkit.service.d/lab.conf"
    assert polkit not in bookworm and "User=polkitd" in trixie[polkit]
    for recipe in (bookworm, trixie):
        assert recipe["/etc/systemd/system/haproxy.service.d/lab.conf"].endswith("BindReadOnlyPaths=\n")
    assert labmod.recipe_hash(12) != labmod.recipe_hash(13)
    assert "haproxy" in labmod.REPO_PACKAGES
    # a bare keepalived's stop is bounded; the role's drop-in (cloudcore-ha.conf) sorts after the lab's and wins
    lab_dropin = [path for path in bookworm if path.startswith("/etc/systemd/system/keepalived.service.d/")]
    assert [os.path.basename(path) for path in lab_dropin] == ["00-lab.conf"]
    assert os.path.basename(lab_dropin[0]) < "cloudcore-ha.conf" and "TimeoutStopSec=5s" in bookworm[lab_dropin[0]]


def test_a_cached_rootfs_loses_the_files_earlier_recipes_wrote(tmp_path, monkeypatch):
    """A stale file would make the lab differ from a fresh machine's: keepalived's old lab drop-in
    (TimeoutStopSec=5s) outranked the role's 2 s and let a SIGKILLed holder keep the VIP for 5 s."""
    root = tmp_path / "rootfs"
    for directory in ("var/lib/apt/lists", "var/cache/apt/archives", "etc/systemd/system/keepalived.service.d"):
        (root / directory).mkdir(parents=True)
    retired = root / "etc/systemd/system/keepalived.service.d/lab.conf"
    retired.write_text("[Service]\nTimeoutStopSec=5s\n")
    (root / "etc/old.conf").write_text("from an earlier recipe\n")
    (root / labmod.RECIPE_PATHS_FILE).write_text("/etc/old.conf\n/etc/apt/sources.list\n")
    monkeypatch.setattr(labmod, "rootfs_dir", lambda debian: str(root))
    labmod.customize_rootfs(12)
    assert not retired.exists() and not (root / "etc/old.conf").exists()
    assert (root / "etc/apt/sources.list").read_text() == labmod.image_recipe(12)["/etc/apt/sources.list"]
    assert (root / labmod.RECIPE_PATHS_FILE).read_text().split() == sorted(labmod.image_recipe(12))


def test_node_changes_grow_adds_the_next_nodes_and_shrink_removes_the_highest():
    names = labmod.node_names
    assert labmod.node_changes(names(3), names(4)) == (["ccha-node4"], [])
    assert labmod.node_changes(names(4), names(3)) == ([], ["ccha-node4"])
    assert labmod.node_changes(names(5), names(2)) == ([], ["ccha-node3", "ccha-node4", "ccha-node5"])
    assert labmod.node_changes(names(2), names(8))[0] == [f"ccha-node{k}" for k in range(3, 9)]
    assert labmod.node_changes(names(3), names(3)) == ([], [])


def test_the_running_api_is_kept_when_only_its_node_list_differs():
    three, four = (labmod.kubeapi_command(labmod.model(count, 12)) for count in (3, 4))
    assert three != four and "ccha-node4=10.213.102.14" in four[four.index("--nodes") + 1]
    assert labmod.without_node_list(three) == labmod.without_node_list(four)
    other = [arg.replace(":16443", ":16444") for arg in four]  # anything else: a restart
    assert labmod.without_node_list(other) != labmod.without_node_list(three)
    assert labmod.without_node_list(None) is None


def test_node_object_is_what_kubeapi_seeds():
    """A node added in place gets the Node a first `up` seeds (kubeapi store.seed_node), and the
    API's Strict validation takes it."""
    pytest.importorskip("kubernetes_validate")
    from kubeapi import schema
    from kubeapi.store import Store

    store = Store(None, "Strict", schema.schema_version())
    store.seed_node("ccha-node1", "10.213.102.11")
    nodes = store.find_type("", "v1", "nodes")
    body = labmod.node_object("ccha-node4", "10.213.102.14", f"v{store.kube_version}", os.uname().release,
                              "2030-01-01T00:00:00Z")
    store.create(nodes, None, body)

    def shape(obj):
        obj = json.loads(json.dumps(obj).replace("ccha-node4", "ccha-node1").replace("10.213.102.14", "10.213.102.11"))
        for key in ("uid", "creationTimestamp", "resourceVersion"):
            obj["metadata"].pop(key)
        for condition in obj["status"]["conditions"]:
            condition.pop("lastHeartbeatTime"), condition.pop("lastTransitionTime")
        return obj

    assert shape(store.get(nodes, None, "ccha-node4")) == shape(store.get(nodes, None, "ccha-node1"))


def test_a_standin_waiting_for_its_pod_is_recognised():
    with open(os.path.join(HERE, "standin", "cloudcore_standin.py"), encoding="utf-8") as handle:
        assert 'f"waiting for a pod bound to {self.node}")' in handle.read()  # the phrase waits_for_pod reads
    line = "kubelet ccha-node4: Deployment kubeedge/cloudcore exists; waiting for a pod bound to ccha-node4\n"
    assert labmod.waits_for_pod("ccha-node4", "cloudcore-standin ccha-node4: ...\n" + line)
    assert not labmod.waits_for_pod("ccha-node4", line + "Kubernetes API: timed out\n")
    assert not labmod.waits_for_pod("ccha-node1", line)
    assert not labmod.waits_for_pod("ccha-node4", "")


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
    with open(os.path.join(up["lab_dir"], "lab.json"), encoding="utf-8") as handle:
        again = json.load(handle)
    assert again["kubeapi"]["pid"] == up["kubeapi"]["pid"]  # the running API stand-in is kept


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


def ansible(*args):
    """ansible (ad hoc) from this venv, with the checkout's ansible.cfg (it finds lab_nsenter)."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible"), "-i",
                           os.path.join(REPO, ".lab", "inventory"), *args],
                          capture_output=True, text=True, env=env, timeout=120, check=False)


@pytest.mark.lab
def test_lab_connection_pipelines_modules_moves_files_and_follows_a_restart(up):
    copy = ansible("ccha-node2", "-m", "ansible.builtin.copy", "-a", "content=lab-nsenter dest=/tmp/ccha-conn mode=0600")
    assert copy.returncode == 0 and "CHANGED" in copy.stdout, copy.stdout + copy.stderr
    inside = sh("podman", "exec", "ccha-node2", "cat", "/tmp/ccha-conn")
    assert inside.stdout == "lab-nsenter"
    assert lab("fault", "ccha-node2", "restart").returncode == 0
    try:
        # a new init PID: the connection must find it, not the cached one
        again = ansible("ccha-node2", "-m", "ansible.builtin.command", "-a", "cat /proc/1/comm")
        assert again.returncode == 0 and "systemd" in again.stdout, again.stdout + again.stderr
    finally:
        lab("heal", "ccha-node2", "restart")


@pytest.mark.lab
def test_inventory(up):
    proc = lab("inventory")
    assert proc.returncode == 0
    inv = proc.stdout.strip()
    hosts = open(os.path.join(inv, "hosts.yml"), encoding="utf-8").read()
    assert "ansible_connection: lab_nsenter" in hosts and "cloudcore:" in hosts
    assert all(n["name"] + ":" in hosts for n in up["nodes"])
    group = open(os.path.join(inv, "group_vars", "cloudcore.yml"), encoding="utf-8").read()
    assert "cloudcore_vip: 10.213.102.100/24" in group and "cloudcore_vrrp_router_id: 51" in group
    kubeconfig = up["kubeapi"]["kubeconfig"]
    assert kubeconfig == os.path.join(up["lab_dir"], "kubeconfig") and os.path.isabs(kubeconfig)
    assert f"cloudcore_kubeconfig: {kubeconfig}\n" in group and "cloudcore_kube_context: ccha-lab\n" in group
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


def start_keepalived(node):
    """keepalived from the lab's local apt repo, one VRRP instance holding the IPv4 VIP (no role)."""
    proc = sh("podman", "exec", node, "sh", "-c",
              "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q keepalived", timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    conf = ("vrrp_instance VI_1 {\n state BACKUP\n interface eth0\n virtual_router_id 51\n priority 100\n"
            " advert_int 1\n virtual_ipaddress {\n  10.213.102.100/24\n }\n}\n")
    sh("podman", "exec", node, "sh", "-c", f"printf '%s' '{conf}' > /etc/keepalived/keepalived.conf")
    assert sh("podman", "exec", node, "systemctl", "restart", "keepalived").returncode == 0
    assert wait_for(lambda: lab("holder").stdout.strip() == node, 10), lab("holder").stdout


@pytest.mark.lab
def test_local_apt_repo_and_keepalived_kill(up):
    node = up["nodes"][2]["name"]
    start_keepalived(node)
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
def test_a_node_that_was_off_boots_without_what_its_namespace_kept(up):
    """The namespace outlives the container (molecule destroys and creates nodes in it): a VIP that a
    killed keepalived left on the interface, and firewall rules, go as on a host's boot; a running
    node keeps its addresses and rules."""
    node = up["nodes"][1]
    vip = up["vip_ipv4"]
    stray = [["ip", "-n", node["namespace"], "addr", "add", vip, "dev", "eth0"],
             ["ip", "netns", "exec", node["namespace"], "nft", "add", "table", "inet", "left_behind"]]

    def leftovers():
        addresses = sh("ip", "-n", node["namespace"], "-o", "addr", "show", "dev", "eth0").stdout
        tables = sh("ip", "netns", "exec", node["namespace"], "nft", "list", "tables").stdout
        return (vip in addresses, "left_behind" in tables, node["ipv4"] in addresses, "fe80:" in addresses)

    for command in stray:
        assert sh(*command).returncode == 0
    assert lab("up", "--nodes", "3").returncode == 0
    assert leftovers() == (True, True, True, True)  # running: kept
    sh("podman", "stop", "-t", "2", node["container"])
    proc = lab("up", "--nodes", "3")
    assert proc.returncode == 0, proc.stderr
    assert leftovers() == (False, False, True, True)  # booted again: own addresses and link-local only


# ----------------------------------------------------------------- the Kubernetes API stand-in

KUBE_NS = "kubeedge"


@pytest.fixture(scope="module")
def kube(up):
    kubernetes = pytest.importorskip("kubernetes")
    api = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(up["kubeapi"]["kubeconfig"]))
    yield api
    with contextlib.suppress(Exception):  # normally gone already (test_standin_back_to_files, down)
        api.delete_namespace(KUBE_NS, _request_timeout=3)


def cloudcore_configmap(kube, addresses, dns=(), create=True):
    from kubernetes import client

    text = ("apiVersion: cloudcore.config.kubeedge.io/v1alpha2\nkind: CloudCore\nmodules:\n  cloudHub:\n"
            f"    advertiseAddress: {json.dumps(list(addresses))}\n    dnsNames: {json.dumps(list(dns))}\n"
            "    https:\n      port: 10002\n")
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cloudcore", namespace=KUBE_NS),
                              data={"cloudcore.yaml": text})
    if create:
        kube.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=KUBE_NS)))
        kube.create_namespaced_config_map(KUBE_NS, body)
    else:
        kube.replace_namespaced_config_map("cloudcore", KUBE_NS, body)


def read_secret(kube, name):
    from kubernetes.client.rest import ApiException

    try:
        return kube.read_namespaced_secret(name, KUBE_NS)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def secret_sans(secret) -> set[str]:
    from cryptography import x509

    cert = x509.load_der_x509_certificate(base64.b64decode(secret.data["cloudcoredata"]))
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {f"IP:{v}" for v in ext.get_values_for_type(x509.IPAddress)} | \
        {f"DNS:{v}" for v in ext.get_values_for_type(x509.DNSName)}


def probed_sans(address) -> set[str] | None:
    proc = lab("probe", "--address", address, "--timeout", "2")
    if proc.returncode != 0:
        return None
    return set(proc.stdout.split()[1].split("=", 1)[1].split(","))


def standin_journal(node) -> str:
    return sh("podman", "exec", node, "journalctl", "-u", "cloudcore-standin", "-o", "cat", "--no-pager").stdout


@pytest.mark.lab
def test_kubeapi_from_the_controller(up, kube):
    assert up["kubeapi"]["url"] == "https://127.0.0.1:16443"
    assert up["kubeapi"]["lab_url"] == "https://10.213.102.1:6443"
    assert os.path.exists(f"/proc/{up['kubeapi']['pid']}")
    nodes = {n.metadata.name: n for n in kube.list_node().items}
    assert set(nodes) == {"ccha-control-plane", "ccha-node1", "ccha-node2", "ccha-node3"}
    for node in up["nodes"]:
        addresses = {a.type: a.address for a in nodes[node["name"]].status.addresses}
        assert addresses["InternalIP"] == node["ipv4"]
    with open(os.path.join(up["lab_dir"], "run", "kubeapi.pid"), encoding="utf-8") as handle:
        assert int(handle.read().split()[0]) == up["kubeapi"]["pid"]


@pytest.mark.lab
def test_kubeapi_from_the_nodes(up):
    code = ("import sys; sys.path.insert(0, '/opt/cloudcore-standin'); import kubeclient, yaml; "
            "c = kubeclient.KubeClient('/etc/cloudcore-standin/kubeconfig'); "
            "print(c.server, c.get('/api/v1/nodes/ccha-control-plane')['metadata']['name'])")
    for node in up["nodes"]:
        proc = sh("podman", "exec", node["name"], "python3", "-c", code)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["https://10.213.102.1:6443", "ccha-control-plane"]
    # the IPv6 listener, from the edge namespace
    proc = sh("ip", "netns", "exec", "ccha-edge", PYTHON, "-c",
              "import socket; socket.create_connection(('fd5c:c0e:213::1', 6443), 2).close(); print('ok')")
    assert proc.stdout.strip() == "ok", proc.stderr


def cloudcore_deployment(kube, annotation="1"):
    """The CloudCore Deployment on every lab node (the shape the manifests role applies)."""
    import kubernetes

    sys.path.insert(0, HERE)
    from test_standin import LABEL, deployment

    for node in ("ccha-node1", "ccha-node2", "ccha-node3"):
        kube.patch_node(node, {"metadata": {"labels": LABEL}})
    apps = kubernetes.client.AppsV1Api(kube.api_client)
    body = deployment(3, period=1, annotation=annotation)
    try:
        apps.create_namespaced_deployment(KUBE_NS, body)
    except kubernetes.client.rest.ApiException as exc:
        assert exc.status == 409
        apps.patch_namespaced_deployment("cloudcore", KUBE_NS, {"spec": {"template": body["spec"]["template"]}})


@pytest.mark.lab
def test_standin_signs_the_certificate_from_the_configmap(up, kube):
    assert read_secret(kube, "cloudcoresecret") is None
    cloudcore_configmap(kube, ["10.213.102.100"])
    cloudcore_deployment(kube)
    started = time.monotonic()
    secret = wait_for(lambda: read_secret(kube, "cloudcoresecret"), 30)  # start delay: up to 9 s (+ panics)
    assert secret is not None, "no Secret kubeedge/cloudcoresecret after 30 s"
    print(f"cloudcoresecret after {time.monotonic() - started:.1f}s")
    assert secret_sans(secret) == {"IP:10.213.102.100"}
    assert set(read_secret(kube, "casecret").data) == {"cadata", "cakeydata"}
    for node in up["nodes"]:  # every pod's CloudCore serves a certificate for the VIP (maybe its own: #5922)
        assert wait_for(lambda: probed_sans(node["ipv4"]) == {"IP:10.213.102.100"}, 40), probed_sans(node["ipv4"])


def lab_json(up) -> dict:
    with open(os.path.join(up["lab_dir"], "lab.json"), encoding="utf-8") as handle:
        return json.load(handle)


def took(proc) -> float:
    """The seconds `lab up` says it took ('... in 3.5s ...')."""
    return float(proc.stdout.rsplit(" in ", 1)[1].split("s", 1)[0])


def unchanged_snapshot(kube, names):
    """What growing or shrinking the lab must not touch: the nodes' containers and processes, the
    VIP holder, the API's objects (pods bound to the nodes, Secrets, node labels)."""
    def show(node, unit):
        return sh("podman", "exec", node, "systemctl", "show", "-p", "MainPID", "--value", unit).stdout.strip()

    return {
        "started": {n: sh("podman", "inspect", "--format", "{{.State.StartedAt}}", n).stdout.strip() for n in names},
        "pids": {n: (show(n, "cloudcore-standin"), show(n, "keepalived")) for n in names},
        "holder": lab("holder").stdout.strip(),
        "pods": {p.metadata.uid: (p.metadata.name, p.spec.node_name) for p in kube.list_namespaced_pod(KUBE_NS).items
                 if p.spec.node_name in names},
        "secrets": {s.metadata.name: s.metadata.uid for s in kube.list_namespaced_secret(KUBE_NS).items},
        "casecret": read_secret(kube, "casecret").data,
        "labels": {n: kube.read_node(n).metadata.labels for n in names},
        "marker": kube.read_namespaced_config_map("lab-grow-marker", KUBE_NS).metadata.uid,
    }


def served_ca(node) -> str:
    """sha256 of the CA the node's CloudCore serves (its in-memory CA: #5922), read inside the node."""
    return sh("podman", "exec", node, "sh", "-c",
              "curl -sk --max-time 2 https://127.0.0.1:10002/ca.crt | sha256sum").stdout.split()[0]


@pytest.mark.lab
def test_grow_to_four_nodes_and_shrink_back_in_place(up, kube):
    """Day 2 on a converged site (CloudCore pods on ccha-node1..3, the VIP held, edges connected):
    `lab up --nodes 4` adds ccha-node4 in place, the collection's step puts a CloudCore pod there,
    `lab up --nodes 3` takes ccha-node4 away (kubectl delete node: its pod goes), and nothing else moves."""
    import hashlib

    import kubernetes

    apps = kubernetes.client.AppsV1Api(kube.api_client)
    names = [n["name"] for n in up["nodes"]]
    assert names == ["ccha-node1", "ccha-node2", "ccha-node3"]
    # the VIP on a node whose CloudCore serves the CA of Secret casecret (the edges sign with it and
    # verify the hub with it; replicas that started together may each keep their own: #5922)
    ca = hashlib.sha256(base64.b64decode(read_secret(kube, "casecret").data["cadata"])).hexdigest()
    matching = [n for n in reversed(names) if served_ca(n) == ca]
    assert matching, "no CloudCore serves the CA of Secret casecret"
    holder = matching[0]
    start_keepalived(holder)
    kube.create_namespaced_config_map(KUBE_NS, {"metadata": {"name": "lab-grow-marker"}, "data": {"k": "v"}})
    fleet_status = os.path.join(up["lab_dir"], "edges", "grow", "status.json")
    try:
        fleet = lab("edges", "up", "--name", "grow", "--count", "10", "--timeout", "90", timeout=150)
        assert fleet.returncode == 0 and "connected=10 " in fleet.stdout, fleet.stdout + fleet.stderr
        with open(os.path.join(up["lab_dir"], "run", "edges-grow.pid"), encoding="utf-8") as handle:
            fleet_pid = int(handle.read().split()[0])
        before = unchanged_snapshot(kube, names)
        assert before["holder"] == holder and len(before["pods"]) == 3

        grow = lab("up", "--nodes", "4", timeout=300)
        print(grow.stdout.strip())
        assert grow.returncode == 0 and len(grow.stdout.splitlines()) == 1, grow.stderr
        assert "4 nodes ccha-node1..ccha-node4 " in grow.stdout and " added ccha-node4 " in grow.stdout
        # Deployment kubeedge/cloudcore exists, ccha-node4 has no pod: its stand-in is a waiting kubelet
        assert "(no CloudCore pod yet: ccha-node4)" in grow.stdout
        state = lab_json(up)
        assert [n["name"] for n in state["nodes"]] == names + ["ccha-node4"]
        node4 = state["nodes"][3]
        assert (node4["ipv4"], node4["ipv6"]) == ("10.213.102.14", "fd5c:c0e:213::14")
        assert state["kubeapi"]["pid"] == up["kubeapi"]["pid"]  # the API stand-in was not restarted
        with open(os.path.join(state["inventory"], "hosts.yml"), encoding="utf-8") as handle:
            assert "        ccha-node4:\n          ansible_host: ccha-node4\n" in handle.read()
        with open(os.path.join(state["inventory"], "host_vars", "ccha-node4.yml"), encoding="utf-8") as handle:
            assert "lab_address_ipv4: 10.213.102.14\n" in handle.read()
        assert sh("podman", "exec", "ccha-node4", "systemctl", "is-system-running").stdout.strip() in ("running",
                                                                                                       "degraded")
        assert sh("podman", "exec", "ccha-node4", "ping", "-c1", "-W2", "10.213.102.11").returncode == 0
        assert len(lab("status").stdout.splitlines()) == 4
        node = kube.read_node("ccha-node4")
        assert {a.type: a.address for a in node.status.addresses}["InternalIP"] == "10.213.102.14"
        assert unchanged_snapshot(kube, names) == before
        # the collection's day-2 step: ccha-node4 gets the label and the Deployment a fourth replica
        kube.patch_node("ccha-node4", {"metadata": {"labels": {"kubeedge.io/cloudcore-ha": "true"}}})
        apps.patch_namespaced_deployment("cloudcore", KUBE_NS, {"spec": {"replicas": 4}})
        assert wait_for(lambda: probed_sans("10.213.102.14") == {"IP:10.213.102.100"}, 40), probed_sans("10.213.102.14")
        assert lab("probe", "--address", "10.213.102.14").stdout.startswith("ccha-node4 sans=")
        on4 = [p for p in kube.list_namespaced_pod(KUBE_NS).items if p.spec.node_name == "ccha-node4"]
        assert len(on4) == 1

        shrink = lab("up", "--nodes", "3", timeout=300)
        print(shrink.stdout.strip())
        assert shrink.returncode == 0 and len(shrink.stdout.splitlines()) == 1, shrink.stderr
        assert "3 nodes ccha-node1..ccha-node3 " in shrink.stdout
        assert " removed ccha-node4 (deleted 1 pod bound to it) " in shrink.stdout
        assert sh("podman", "container", "exists", "ccha-node4").returncode == 1
        assert "ccha-node4" not in sh("ip", "netns", "list").stdout.split()
        assert "vccha-node4" not in sh("ip", "-n", "ccha-lab", "-o", "link").stdout
        assert not os.path.exists(os.path.join(up["lab_dir"], "nodes", "ccha-node4"))
        assert "ccha-node4" not in {n.metadata.name for n in kube.list_node().items}
        pods = kube.list_namespaced_pod(KUBE_NS).items
        assert on4[0].metadata.uid not in {p.metadata.uid for p in pods}  # pod GC, as for a deleted Node
        state = lab_json(up)
        assert [n["name"] for n in state["nodes"]] == names and state["kubeapi"]["pid"] == up["kubeapi"]["pid"]
        with open(os.path.join(state["inventory"], "hosts.yml"), encoding="utf-8") as handle:
            assert "ccha-node4" not in handle.read()
        assert not os.path.exists(os.path.join(state["inventory"], "host_vars", "ccha-node4.yml"))
        assert len(lab("status").stdout.splitlines()) == 3
        # the collection scales back to 3: the replacement pod (unschedulable: no fourth node) goes
        apps.patch_namespaced_deployment("cloudcore", KUBE_NS, {"spec": {"replicas": 3}})
        assert wait_for(lambda: len(kube.list_namespaced_pod(KUBE_NS).items) == 3, 15)
        after = unchanged_snapshot(kube, names)
        assert after["pods"] == before["pods"] and after == before
        with open(fleet_status, encoding="utf-8") as handle:
            status = json.load(handle)
        assert status["connected_total"] == 10 and status["disconnected"] == 0 and status["reconnects"] == 0, status
        assert os.path.exists(f"/proc/{fleet_pid}")
        print(f"grow {took(grow):.1f}s, shrink {took(shrink):.1f}s")
    finally:
        lab("edges", "down", "--name", "grow")
        sh("podman", "exec", holder, "systemctl", "stop", "keepalived")
        with contextlib.suppress(Exception):
            kube.delete_namespaced_config_map("lab-grow-marker", KUBE_NS)


@pytest.mark.lab
def test_standin_rotation_needs_a_new_pod(up, kube):
    old = read_secret(kube, "cloudcoresecret")
    assert old is not None
    # as the manifests role does it: the new ConfigMap, the Secret deleted, a rollout restart
    cloudcore_configmap(kube, ["10.213.102.101", "fd5c:c0e:213::101"], ["cloudcore.lab.example"], create=False)
    time.sleep(2.5)
    assert read_secret(kube, "cloudcoresecret").metadata.uid == old.metadata.uid  # read once, at pod start
    kube.delete_namespaced_secret("cloudcoresecret", KUBE_NS)
    time.sleep(2.5)
    assert read_secret(kube, "cloudcoresecret") is None  # nothing re-reads it: only a new pod signs
    cloudcore_deployment(kube, annotation="2")
    new = wait_for(lambda: read_secret(kube, "cloudcoresecret"), 40)
    assert new, "no new Secret kubeedge/cloudcoresecret after 40 s"
    wanted = {"IP:10.213.102.101", "IP:fd5c:c0e:213::101", "DNS:cloudcore.lab.example"}
    assert secret_sans(new) == wanted
    for node in up["nodes"]:  # one pod at a time (maxUnavailable 1)
        assert wait_for(lambda: probed_sans(node["ipv4"]) == wanted, 90), probed_sans(node["ipv4"])
        assert probed_sans(node["ipv6"]) == wanted


@pytest.mark.lab
def test_standin_back_to_files_without_the_namespace(up, kube):
    kube.delete_namespace(KUBE_NS)  # pods gone: each stand-in ends and comes back standalone
    for node in up["nodes"]:
        assert wait_for(lambda: f"IP:{node['ipv4']}" in (probed_sans(node["ipv4"]) or ()), 20)


@pytest.mark.lab
def test_zy_one_node_moves_to_debian_13_and_back(up):
    """A rolling upgrade's step: ccha-node3 becomes a fresh Debian 13 node on the running lab (the
    network, PKI and API stay; only its container is replaced), then Debian 12 again."""
    before = {n: sh("podman", "inspect", "--format", "{{.Id}}", n).stdout.strip() for n in ("ccha-node1", "ccha-node3")}
    proc = lab("up", "--nodes", "3", "--debian", "12", "--debian-of", "ccha-node3=13", timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert "debian12,12,13" in proc.stdout and "replaced ccha-node3" in proc.stdout, proc.stdout
    assert sh("podman", "exec", "ccha-node3", "cat", "/etc/debian_version").stdout.startswith("13.")
    assert sh("podman", "exec", "ccha-node1", "cat", "/etc/debian_version").stdout.startswith("12.")
    assert sh("podman", "inspect", "--format", "{{.Id}}", "ccha-node1").stdout.strip() == before["ccha-node1"]
    assert sh("podman", "inspect", "--format", "{{.Id}}", "ccha-node3").stdout.strip() != before["ccha-node3"]
    with open(os.path.join(up["lab_dir"], "lab.json"), encoding="utf-8") as handle:
        state = json.load(handle)
    assert [n["debian"] for n in state["nodes"]] == [12, 12, 13] and state["debian"] is None
    assert state["containers"]["ccha-node3"]["image"] == "localhost/ccha-node:debian13"
    with open(os.path.join(state["inventory"], "host_vars", "ccha-node3.yml"), encoding="utf-8") as handle:
        assert "lab_debian: 13\n" in handle.read()
    mount = sh("podman", "inspect", "--format", "{{range .Mounts}}{{.Source}} {{end}}", "ccha-node3").stdout
    assert "/apt-debian13" in mount
    assert edge_probe(state["nodes"][2]["ipv4"]).stdout.startswith("ccha-node3 ")  # its stand-in, on python3.13
    again = lab("up", "--nodes", "3", "--debian", "12,12,12")
    assert again.returncode == 0, again.stderr
    assert "debian12 " in again.stdout and "replaced ccha-node3" in again.stdout, again.stdout
    assert sh("podman", "exec", "ccha-node3", "cat", "/etc/debian_version").stdout.startswith("12.")
    assert edge_probe(state["nodes"][2]["ipv4"]).stdout.startswith("ccha-node3 ")


@pytest.mark.lab
def test_zz_down_leaves_nothing(up):
    api_pid = up["kubeapi"]["pid"]
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
    # the API stand-in: no process, no socket, no files
    assert process_gone(api_pid)
    assert not [pid for pid in os.listdir("/proc") if pid.isdigit() and not process_gone(int(pid))
                and os.path.join(up["lab_dir"], "kubeapi").encode() in read_cmdline(pid)]
    assert ":16443 " not in sh("ss", "-Hltn").stdout
    for name in ("kubeconfig", "kubeapi", "run"):
        assert not os.path.exists(os.path.join(up["lab_dir"], name)), name


def read_cmdline(pid) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def process_gone(pid: int) -> bool:
    """Not running (a zombie waiting for its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
