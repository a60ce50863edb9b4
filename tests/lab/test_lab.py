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


@pytest.mark.lab
def test_standin_signs_the_certificate_from_the_configmap(up, kube):
    assert read_secret(kube, "cloudcoresecret") is None
    cloudcore_configmap(kube, ["10.213.102.100"])
    started = time.monotonic()
    secret = wait_for(lambda: read_secret(kube, "cloudcoresecret"), 10)
    assert secret is not None, "no Secret kubeedge/cloudcoresecret after 10 s"
    print(f"cloudcoresecret after {time.monotonic() - started:.1f}s")
    assert secret_sans(secret) == {"IP:10.213.102.100"}
    assert set(read_secret(kube, "casecret").data) == {"cadata", "cakeydata"}
    for node in up["nodes"]:  # every node serves the one certificate (the racing ones read it: 409)
        assert wait_for(lambda: probed_sans(node["ipv4"]) == {"IP:10.213.102.100"}, 10), probed_sans(node["ipv4"])
    created = [n["name"] for n in up["nodes"]
               if "created Secret kubeedge/cloudcoresecret" in standin_journal(n["name"])]
    assert len(created) == 1, created


@pytest.mark.lab
def test_standin_follows_a_rotation(up, kube):
    old = read_secret(kube, "cloudcoresecret")
    assert old is not None
    # as the manifests role does it: the new ConfigMap first, then the Secret goes (and a restart)
    cloudcore_configmap(kube, ["10.213.102.101", "fd5c:c0e:213::101"], ["cloudcore.lab.example"], create=False)
    time.sleep(2.5)
    assert read_secret(kube, "cloudcoresecret").metadata.uid == old.metadata.uid  # signed only when missing
    kube.delete_namespaced_secret("cloudcoresecret", KUBE_NS)
    new = wait_for(lambda: (s := read_secret(kube, "cloudcoresecret")) is not None
                   and s.metadata.uid != old.metadata.uid and s, 10)
    assert new, "no new Secret kubeedge/cloudcoresecret after 10 s"
    wanted = {"IP:10.213.102.101", "IP:fd5c:c0e:213::101", "DNS:cloudcore.lab.example"}
    assert secret_sans(new) == wanted
    for node in up["nodes"]:
        assert wait_for(lambda: probed_sans(node["ipv4"]) == wanted, 10), probed_sans(node["ipv4"])
        assert probed_sans(node["ipv6"]) == wanted


@pytest.mark.lab
def test_standin_back_to_files_without_the_namespace(up, kube):
    kube.delete_namespace(KUBE_NS)
    for node in up["nodes"]:
        assert wait_for(lambda: f"IP:{node['ipv4']}" in (probed_sans(node["ipv4"]) or ()), 10)


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
