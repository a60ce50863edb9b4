"""The cloudcore.ha lab: N systemd container nodes, a bridge, an edge namespace, faults.

Run as root. Standard library only (it runs before any venv exists). See tests/lab/README.md.
Every subcommand prints one line on success and one line on stderr on error.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import fcntl
import hashlib
import http.client
import ipaddress
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, HERE)
import edges  # noqa: E402  (tests/lab/edges.py: the edge fleets)
from kubeapi.nodes import node_object  # noqa: E402  (the Node the API stand-in seeds; standard library only)
REPO = os.path.dirname(os.path.dirname(HERE))
LAB_DIR = os.environ.get("CCHA_LAB_DIR", os.path.join(REPO, ".lab"))
CACHE = os.environ.get("CCHA_LAB_CACHE", "/var/cache/cloudcore-ha-lab")
STATE = os.path.join(LAB_DIR, "lab.json")
RUN_DIR = os.path.join(LAB_DIR, "run")  # aux processes (e.g. the Kubernetes API stand-in) put <name>.pid here
LOCK = "/run/ccha-lab.lock"
CONTAINERS_CONF = os.path.join(HERE, "containers.conf")
STANDIN_SRC = os.path.join(HERE, "standin")
PROBE = os.path.join(HERE, "probe.py")
KUBEAPI_DIR = os.path.join(LAB_DIR, "kubeapi")  # the API stand-in's --state-dir (PKI, state.json, logs)
KUBECONFIG = os.path.join(LAB_DIR, "kubeconfig")  # for the controller: https://127.0.0.1:KUBEAPI_PORT
# The Kubernetes API stand-in (tests/lab/kubeapi) needs cryptography, pyyaml and kubernetes-validate:
# it runs with the project venv's Python (`make setup`), not with this standard-library CLI's.
VENV_PYTHON = os.environ.get("CCHA_LAB_PYTHON") or os.path.join(REPO, ".venv", "bin", "python")

PREFIX = "ccha-"
LAB_NS = "ccha-lab"
EDGE_NS = "ccha-edge"
BRIDGE = "br0"
NODE_IF = "eth0"
SUBNET4 = ipaddress.ip_network("10.213.102.0/24")
SUBNET6 = ipaddress.ip_network("fd5c:c0e:213::/64")
VIP4 = "10.213.102.100/24"
VIP6 = "fd5c:c0e:213::100/64"
EDGE_HOST = 200
BRIDGE_HOST = 1  # br0 in the lab namespace: 10.213.102.1 / fd5c:c0e:213::1, where the API stand-in listens
FOREIGN_HOST = 201  # reserved for a future "foreign host" namespace
NODE_HOST_BASE = 10  # node k -> .1k / ::1k
VRRP_ROUTER_ID = 51
STANDIN_PORT = 10002
KUBEAPI_PORT = 16443  # 127.0.0.1 in the root namespace (the controller)
KUBEAPI_LAB_PORT = 6443  # the bridge's addresses in the lab namespace (the nodes)
KUBE_CONTEXT = "ccha-lab"
STANDIN_CONF_DIR = "/etc/cloudcore-standin"  # .lab/nodes/<node>/standin, bind-mounted read-only in the nodes
DEBIAN = {12: "bookworm", 13: "trixie"}
MIRROR = "http://deb.debian.org/debian"
IMAGE_PACKAGES = [
    "systemd-sysv", "dbus", "python3", "python3-apt", "iproute2", "curl", "procps",
    "ca-certificates", "python3-cryptography", "python3-cffi-backend", "python3-yaml", "iputils-ping", "less",
]
# Installed by the roles (or later scenarios) inside the nodes, from the lab's local apt repo.
REPO_PACKAGES = ["keepalived", "nftables", "ufw", "firewalld", "haproxy"]
ULIMITS = ["nofile=1024:16384", "nproc=4096:4096"]
CAPS = ["NET_ADMIN", "NET_RAW"]
FAULT_KINDS = ["cloudcore", "keepalived-kill", "link", "restart", "partition", "haproxy", "haproxy-kill"]
PARTITION_TABLE = "ccha_lab_partition"
NODE_SYSCTLS = [
    "net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.default.disable_ipv6=0",
    "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
    "net.ipv6.conf.all.keep_addr_on_down=1", "net.ipv6.conf.default.keep_addr_on_down=1",
]

VERBOSE = bool(os.environ.get("CCHA_LAB_VERBOSE"))


class LabError(Exception):
    """An error the user sees as one line on stderr."""


def log(msg: str) -> None:
    if VERBOSE:
        print(f"lab: {msg}", file=sys.stderr, flush=True)


def one_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def run(cmd, *, check=True, input=None, capture=True, env=None, timeout=None, cwd=None) -> subprocess.CompletedProcess:
    log("$ " + " ".join(cmd))
    full_env = dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF)
    if env:
        full_env.update(env)
    try:
        proc = subprocess.run(cmd, input=input, text=True, env=full_env, timeout=timeout, cwd=cwd,
                              stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                              stderr=subprocess.PIPE if capture else subprocess.DEVNULL, check=False)
    except FileNotFoundError as exc:
        raise LabError(f"{cmd[0]}: not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{' '.join(cmd[:4])}: timed out after {timeout}s") from exc
    if check and proc.returncode != 0:
        detail = one_line(proc.stderr) or one_line(proc.stdout) or f"exit {proc.returncode}"
        raise LabError(f"{' '.join(cmd[:5])}{' ...' if len(cmd) > 5 else ''}: {detail}")
    return proc


def podman(*args, **kw) -> subprocess.CompletedProcess:
    return run(["podman", *args], **kw)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextlib.contextmanager
def lab_lock():
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + 900
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LabError(f"another lab command holds {LOCK}")
                time.sleep(0.5)
        yield
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- model

def node_names(count: int) -> list[str]:
    return [f"{PREFIX}node{i}" for i in range(1, count + 1)]


def node_changes(old: list[str], new: list[str]) -> tuple[list[str], list[str]]:
    """What `up` with another node count does to a running lab: (added, removed), in node order.
    Growing adds the next numbers, shrinking removes the highest ones (node_names is a prefix)."""
    return [n for n in new if n not in old], [n for n in old if n not in new]


def host4(host: int) -> str:
    return str(SUBNET4.network_address + host)


def host6(host: int) -> str:
    return str(SUBNET6.network_address + int(str(host), 16))  # ::11 reads as hex digits "11"


def lab_side_veth(ns: str) -> str:
    return "v" + ns  # e.g. vccha-node1 (<= 15 chars up to ccha-node9999)


def image_name(debian: int) -> str:
    return f"localhost/ccha-node:debian{debian}"


def apt_repo_dir(debian: int) -> str:
    return os.path.join(CACHE, f"apt-debian{debian}")


def parse_releases(text: str) -> list[int]:
    """`--debian`: one release for every node ("13") or one per node, in node order ("12,13,13")."""
    names = ", ".join(f"{k} ({v})" for k, v in sorted(DEBIAN.items()))
    releases = []
    for part in text.split(","):
        part = part.strip()
        try:
            release = int(part)
        except ValueError:
            raise LabError(f"--debian: {part!r} is not a Debian release; known: {names}") from None
        if release not in DEBIAN:
            raise LabError(f"--debian: Debian {release} is not known to the lab; known: {names}")
        releases.append(release)
    return releases


def node_releases(count: int | None, debian: str = "12", debian_of: list[str] | tuple = ()) -> list[int]:
    """The Debian release of each node, in node order.

    `debian` is one release for all nodes or a comma-separated list with one per node (its length
    is then the node count when `count` is None, and must equal `count` otherwise). `debian_of`
    entries NODE=RELEASE (NODE: ccha-nodeK or K) override single nodes: a rolling upgrade is
    `--debian 12 --debian-of ccha-node3=13`, then `--debian-of ccha-node2=13 ...`.
    """
    releases = parse_releases(debian)
    if count is None:
        count = len(releases) if len(releases) > 1 else 3
    if not 2 <= count <= 8:
        raise LabError(f"--nodes must be 2..8, got {count}")
    if len(releases) == 1:
        releases = releases * count
    elif len(releases) != count:
        raise LabError(f"--debian lists {len(releases)} releases for {count} nodes: give one, or one per node")
    names = node_names(count)
    for item in debian_of:
        node, sep, value = item.partition("=")
        node = node.strip()
        if node.isdigit():
            node = f"{PREFIX}node{node}"
        if not sep or node not in names:
            raise LabError(f"--debian-of {item!r}: expected NODE=RELEASE with NODE one of {' '.join(names)}")
        if "," in value:
            raise LabError(f"--debian-of {item!r}: one release per node")
        releases[names.index(node)] = parse_releases(value)[0]
    return releases


def uniform(values: list):
    """The value all items share, else None (a mixed lab)."""
    return values[0] if values and all(v == values[0] for v in values) else None


def model(count: int, debian: int | list[int]) -> dict:
    releases = [debian] * count if isinstance(debian, int) else list(debian)
    if len(releases) != count:
        raise LabError(f"{len(releases)} releases for {count} nodes")
    nodes = []
    for i, (name, release) in enumerate(zip(node_names(count), releases), start=1):
        host = NODE_HOST_BASE + i
        nodes.append({
            "name": name, "namespace": name, "container": name, "interface": NODE_IF,
            "lab_veth": lab_side_veth(name),
            "ipv4": host4(host), "ipv6": host6(host),
            "ipv4_cidr": f"{host4(host)}/{SUBNET4.prefixlen}", "ipv6_cidr": f"{host6(host)}/{SUBNET6.prefixlen}",
            "standin_dir": os.path.join(LAB_DIR, "nodes", name, "standin"),
            # the node's Debian release, its image and its local apt repo (a mixed lab differs per node)
            "debian": release, "codename": DEBIAN[release], "image": image_name(release),
            "apt_repo": apt_repo_dir(release),
        })
    bridge4, bridge6 = host4(BRIDGE_HOST), host6(BRIDGE_HOST)
    lab_release = uniform(releases)
    return {
        "version": 1,
        "prefix": PREFIX,
        # the lab's release when every node runs it, else null (a mixed lab: see nodes[].debian)
        "debian": lab_release,
        "debian_releases": sorted(set(releases)),
        "image": image_name(lab_release) if lab_release else None,
        "lab_namespace": LAB_NS,
        "bridge": BRIDGE,
        "bridge_ipv4": bridge4,
        "bridge_ipv6": bridge6,
        "subnet_ipv4": str(SUBNET4),
        "subnet_ipv6": str(SUBNET6),
        "vip_ipv4": VIP4,
        "vip_ipv6": VIP6,
        "vrrp_router_id": VRRP_ROUTER_ID,
        "standin_port": STANDIN_PORT,
        "nodes": nodes,
        "edge": {"namespace": EDGE_NS, "interface": NODE_IF, "lab_veth": lab_side_veth(EDGE_NS),
                 "ipv4": host4(EDGE_HOST), "ipv6": host6(EDGE_HOST)},
        "foreign": {"reserved": True, "ipv4": host4(FOREIGN_HOST), "ipv6": host6(FOREIGN_HOST)},
        "blackhole_routes": [str(SUBNET4), str(SUBNET6), str(edges.EDGE_SUBNET)],
        "edge_subnet": str(edges.EDGE_SUBNET),
        "lab_dir": LAB_DIR,
        "inventory": os.path.join(LAB_DIR, "inventory"),
        "pki": {"ca_crt": os.path.join(LAB_DIR, "pki", "ca.crt"), "ca_key": os.path.join(LAB_DIR, "pki", "ca.key")},
        "apt_repo": apt_repo_dir(lab_release) if lab_release else None,
        "containers_conf": CONTAINERS_CONF,
        "probe": PROBE,
        "run_dir": RUN_DIR,
        "kubeapi": {
            "pid": None,
            "url": f"https://127.0.0.1:{KUBEAPI_PORT}",
            "kubeconfig": KUBECONFIG,
            "context": KUBE_CONTEXT,
            "lab_url": f"https://{bridge4}:{KUBEAPI_LAB_PORT}",
            "lab_url_ipv6": f"https://[{bridge6}]:{KUBEAPI_LAB_PORT}",
            "node_kubeconfig": f"{STANDIN_CONF_DIR}/kubeconfig",
            "state_dir": KUBEAPI_DIR,
            "log": os.path.join(KUBEAPI_DIR, "kubeapi.log"),
            "python": VENV_PYTHON,
        },
    }


def load_state(required: bool = True) -> dict | None:
    try:
        with open(STATE, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        if required:
            raise LabError(f"the lab is not up (no {os.path.relpath(STATE, os.getcwd())}); run: tests/lab/lab up")
        return None


def write_state(state: dict) -> None:
    os.makedirs(LAB_DIR, exist_ok=True)
    tmp = STATE + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, STATE)


def find_node(state: dict, name: str) -> dict:
    for node in state["nodes"]:
        if node["name"] == name:
            return node
    raise LabError(f"unknown node {name!r}; lab nodes: {' '.join(n['name'] for n in state['nodes'])}")


# --------------------------------------------------------------------------- image and apt repo

# Debian 13's polkit.service (polkit 126) runs as User=polkitd behind a systemd sandbox (mount
# namespace, seccomp). systemd 257 needs CAP_SYS_ADMIN, which the lab's containers do not have, to
# set that up before it switches users: "Failed to keep CAP_SYS_ADMIN: Operation not permitted",
# status=217/USER. Without polkit firewalld 2.3 answers no D-Bus call (firewall-cmd --state: not
# running, its unit fails after 50 s). Lab only: a real host's PID 1 has every capability.
POLKIT_LAB_DROPIN = (
    "# cloudcore.ha lab (Debian 13): the container has no CAP_SYS_ADMIN, which systemd needs to build\n"
    "# this unit's sandbox before switching to User=polkitd (status=217/USER). Lift the sandbox.\n"
    "[Service]\n" + "".join(f"{item}\n" for item in (
        "SystemCallFilter=", "SystemCallArchitectures=", "MemoryDenyWriteExecute=no", "LockPersonality=no",
        "RestrictRealtime=no", "RestrictNamespaces=no", "RestrictSUIDSGID=no", "RestrictAddressFamilies=",
        "ProtectKernelModules=no", "ProtectKernelTunables=no", "ProtectKernelLogs=no", "ProtectClock=no",
        "ProtectHostname=no", "PrivateDevices=no", "PrivateNetwork=no", "ProtectSystem=no", "ProtectHome=no",
        "PrivateTmp=no", "ProtectControlGroups=no")))


def image_recipe(debian: int) -> dict[str, str]:
    """Files written into the node rootfs (path -> content; '@link:' marks a symlink)."""
    extra = {}
    if debian >= 13:
        extra["/etc/systemd/system/polkit.service.d/lab.conf"] = POLKIT_LAB_DROPIN
    return extra | {
        "/etc/apt/sources.list":
            "# cloudcore.ha lab: the nodes have no internet; packages come from the lab's local repo\n"
            "deb [trusted=yes] file:/srv/lab-apt ./\n",
        # haproxy.service (Debian 12 and 13) binds /dev/log into its chroot: a bind mount, which
        # systemd cannot make in these containers (no CAP_SYS_ADMIN): 226/NAMESPACE at every start.
        # A keepalived the role has not configured yet (a bare package, as in test_lab): after a SIGKILL
        # systemd on this cgroup v1 host may not see the unit's cgroup empty and waits TimeoutStopSec
        # (90 s default) before it starts the unit again. 00-: the role's cloudcore-ha.conf (2 s) sorts
        # after it and wins, as on a real host.
        "/etc/systemd/system/keepalived.service.d/00-lab.conf":
            "# cloudcore.ha lab (cgroup v1 host): keep stops prompt; the role's cloudcore-ha.conf overrides it\n"
            "[Service]\nTimeoutStopSec=5s\n",
        "/etc/systemd/system/haproxy.service.d/lab.conf":
            "# cloudcore.ha lab: no bind mounts in these containers (226/NAMESPACE); haproxy then cannot log\n"
            "# to /dev/log from its chroot, nothing else changes.\n[Service]\nBindReadOnlyPaths=\n",
        "/etc/systemd/system/cloudcore-standin.service": "@link:/opt/cloudcore-standin/cloudcore-standin.service",
        "/etc/systemd/system/multi-user.target.wants/cloudcore-standin.service":
            "@link:/etc/systemd/system/cloudcore-standin.service",
        "/etc/machine-id": "",  # a fresh machine id per container boot
        "/etc/hostname": "",
        "/etc/apt/apt.conf.d/99ccha-lab": '// cloudcore.ha lab: no translations in the local repo\nAcquire::Languages "none";\n',
    }


# Files an earlier recipe wrote into a cached rootfs: gone from the recipe, so removed from the rootfs
# (a stale one would make the lab differ from a fresh machine's). keepalived's lab drop-in lab.conf
# set TimeoutStopSec=5s after the role's cloudcore-ha.conf (2 s), and so outranked it (now 00-lab.conf).
RETIRED_RECIPE_PATHS = ("/etc/systemd/system/keepalived.service.d/lab.conf",)
RECIPE_PATHS_FILE = ".ccha-recipe-paths"


def recipe_hash(debian: int) -> str:
    return sha(json.dumps([debian, IMAGE_PACKAGES, image_recipe(debian), RETIRED_RECIPE_PATHS], sort_keys=True))


def packages_key() -> str:
    """Part of every rootfs id: a rootfs (and the image and apt repo built on it) debootstrapped with
    another package list is stale, and the next `up` debootstraps again."""
    return "p" + sha(json.dumps(IMAGE_PACKAGES))[:8]


def rid_current(rid: str | None) -> bool:
    return bool(rid) and f"-{packages_key()}-" in rid


def rootfs_dir(debian: int) -> str:
    return os.path.join(CACHE, f"debian{debian}", "rootfs")


def rootfs_id(debian: int) -> str | None:
    marker = os.path.join(rootfs_dir(debian), ".ccha-rootfs-id")
    try:
        with open(marker, encoding="utf-8") as handle:
            return handle.read().strip() or None
    except FileNotFoundError:
        return None


def debootstrap(debian: int) -> str:
    root = rootfs_dir(debian)
    umount_under(os.path.dirname(root))
    if os.path.exists(root):
        shutil.rmtree(root)
    os.makedirs(os.path.dirname(root), exist_ok=True)
    log(f"debootstrap {DEBIAN[debian]} (a minute or two)")
    start = time.monotonic()
    run(["debootstrap", "--variant=minbase", "--include=" + ",".join(IMAGE_PACKAGES),
         DEBIAN[debian], root, MIRROR], timeout=1800)
    rid = f"{DEBIAN[debian]}-{packages_key()}-{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%SZ}"
    with open(os.path.join(root, ".ccha-rootfs-id"), "w", encoding="utf-8") as handle:
        handle.write(rid + "\n")
    log(f"debootstrap done in {time.monotonic() - start:.1f}s")
    return rid


def umount_under(path: str) -> None:
    """Unmount everything below path (deepest first): leftovers of a crashed chroot."""
    path = os.path.realpath(path)
    with open("/proc/self/mounts", encoding="utf-8") as handle:
        targets = [line.split()[1].replace("\\040", " ") for line in handle]
    for target in sorted((t for t in targets if t == path or t.startswith(path + "/")), key=len, reverse=True):
        run(["umount", "-l", target], check=False)


def image_labels(image: str) -> dict | None:
    proc = podman("image", "inspect", "--format", "{{json .Labels}}", image, check=False)
    if proc.returncode != 0:
        return None
    try:
        return json.loads(proc.stdout.strip() or "null") or {}
    except json.JSONDecodeError:
        return {}


def repo_stamp(debian: int) -> dict | None:
    try:
        with open(os.path.join(apt_repo_dir(debian), ".ccha-repo.json"), encoding="utf-8") as handle:
            return json.load(handle)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def build_apt_repo(debian: int, rid: str) -> None:
    """Download keepalived & co. (with what they pull in on top of the image) into a file: repo."""
    root = rootfs_dir(debian)
    start = time.monotonic()
    work = os.path.join(root, "tmp", "ccha-apt")
    shutil.rmtree(work, ignore_errors=True)
    for sub in ("lists/partial", "archives/partial", "none"):
        os.makedirs(os.path.join(work, sub))
    with open(os.path.join(work, "sources.list"), "w", encoding="utf-8") as handle:
        handle.write(f"deb {MIRROR} {DEBIAN[debian]} main\n")
    resolv = os.path.join(root, "etc", "resolv.conf")
    if os.path.islink(resolv) or os.path.exists(resolv):
        os.unlink(resolv)
    shutil.copyfile("/etc/resolv.conf", resolv)
    opts = ["-o", "Dir::Etc::SourceList=/tmp/ccha-apt/sources.list", "-o", "Dir::Etc::SourceParts=/tmp/ccha-apt/none",
            "-o", "Dir::State::Lists=/tmp/ccha-apt/lists", "-o", "Dir::Cache::Archives=/tmp/ccha-apt/archives",
            "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache=", "-o", "APT::Sandbox::User=root",
            "-o", "Debug::NoLocking=1"]
    proc_mnt = os.path.join(root, "proc")
    run(["mount", "-t", "proc", "proc", proc_mnt])
    try:
        env = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
        run(["chroot", root, "apt-get", *opts, "update"], env=env, timeout=600)
        run(["chroot", root, "apt-get", *opts, "install", "--download-only", "-y", *REPO_PACKAGES],
            env=env, timeout=600)
    finally:
        run(["umount", "-l", proc_mnt], check=False)
    repo = apt_repo_dir(debian)
    tmp_repo = repo + ".tmp"
    shutil.rmtree(tmp_repo, ignore_errors=True)
    os.makedirs(tmp_repo)
    debs = sorted(f for f in os.listdir(os.path.join(work, "archives")) if f.endswith(".deb"))
    if not any(f.startswith("keepalived_") for f in debs):
        raise LabError("apt repo build: keepalived .deb was not downloaded")
    for deb in debs:
        shutil.copyfile(os.path.join(work, "archives", deb), os.path.join(tmp_repo, deb))
    proc = subprocess.run(["dpkg-scanpackages", "-m", "."], cwd=tmp_repo, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        raise LabError(f"dpkg-scanpackages: {one_line(proc.stderr)}")
    packages = proc.stdout
    with open(os.path.join(tmp_repo, "Packages"), "w", encoding="utf-8") as handle:
        handle.write(packages)
    data = packages.encode()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S UTC")
    with open(os.path.join(tmp_repo, "Release"), "w", encoding="utf-8") as handle:
        handle.write(f"Origin: cloudcore-ha-lab\nLabel: cloudcore-ha-lab\nSuite: lab\nCodename: lab\n"
                     f"Date: {date}\nDescription: local packages of the cloudcore.ha lab ({DEBIAN[debian]})\n"
                     f"MD5Sum:\n {hashlib.md5(data).hexdigest()} {len(data)} Packages\n"
                     f"SHA256:\n {hashlib.sha256(data).hexdigest()} {len(data)} Packages\n")
    with open(os.path.join(tmp_repo, ".ccha-repo.json"), "w", encoding="utf-8") as handle:
        json.dump({"rootfs_id": rid, "packages": REPO_PACKAGES, "debs": debs}, handle)
    for dirpath, dirnames, filenames in os.walk(tmp_repo):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
    # Nodes of a running lab bind-mount the repo: move the previous one aside rather than deleting
    # it, so their /srv/lab-apt keeps its packages until the next rebuild.
    previous = repo + ".old"
    shutil.rmtree(previous, ignore_errors=True)
    if os.path.exists(repo):
        os.rename(repo, previous)
    os.rename(tmp_repo, repo)
    shutil.rmtree(work, ignore_errors=True)
    log(f"apt repo ({len(debs)} debs) built in {time.monotonic() - start:.1f}s")


def customize_rootfs(debian: int) -> None:
    root = rootfs_dir(debian)
    recipe = image_recipe(debian)
    listing = os.path.join(root, RECIPE_PATHS_FILE)
    previous = open(listing, encoding="utf-8").read().split() if os.path.isfile(listing) else []
    for path in (set(previous) | set(RETIRED_RECIPE_PATHS)) - set(recipe):
        if os.path.islink(root + path) or os.path.isfile(root + path):
            os.unlink(root + path)
    with open(listing, "w", encoding="utf-8") as handle:
        handle.write("".join(path + "\n" for path in sorted(recipe)))
    for path, content in recipe.items():
        target = root + path
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.islink(target) or os.path.isfile(target):
            os.unlink(target)
        if content.startswith("@link:"):
            os.symlink(content[len("@link:"):], target)
        else:
            with open(target, "w", encoding="utf-8") as handle:
                handle.write(content)
    sources_d = os.path.join(root, "etc/apt/sources.list.d")
    for name in os.listdir(sources_d) if os.path.isdir(sources_d) else []:
        os.unlink(os.path.join(sources_d, name))
    for mount_point in ("srv/lab-apt", "opt/cloudcore-standin", "etc/cloudcore-standin"):
        os.makedirs(os.path.join(root, mount_point), exist_ok=True)
    # No package lists, and an OLD lists directory: apt's cache_valid_time must not think the
    # cache is fresh (REFERENCE.md), so `apt: update_cache=true` really runs, as on a real host.
    lists = os.path.join(root, "var/lib/apt/lists")
    for name in os.listdir(lists):
        full = os.path.join(lists, name)
        if name in ("partial", "lock"):
            continue
        if os.path.isdir(full):
            shutil.rmtree(full)
        else:
            os.unlink(full)
    old = time.mktime((2000, 1, 1, 0, 0, 0, 0, 0, -1))
    os.utime(lists, (old, old))
    for name in os.listdir(os.path.join(root, "var/cache/apt")):
        if name.endswith(".bin"):
            os.unlink(os.path.join(root, "var/cache/apt", name))
    archives = os.path.join(root, "var/cache/apt/archives")
    for name in os.listdir(archives):
        if name.endswith(".deb"):
            os.unlink(os.path.join(archives, name))
    resolv = os.path.join(root, "etc/resolv.conf")
    if os.path.islink(resolv) or os.path.exists(resolv):
        os.unlink(resolv)
    open(resolv, "w").close()  # podman mounts its own


def import_image(debian: int, rid: str) -> None:
    root = rootfs_dir(debian)
    tarball = os.path.join(CACHE, f"debian{debian}", "rootfs.tar")
    start = time.monotonic()
    tmp = tarball + ".tmp"
    run(["tar", "-C", root, "--exclude=./.ccha-rootfs-id", "--exclude=./" + RECIPE_PATHS_FILE, "--exclude=./tmp/ccha-apt",
         "-cf", tmp, "."], timeout=600)
    os.replace(tmp, tarball)
    with open(tarball + ".id", "w", encoding="utf-8") as handle:
        handle.write(f"{rid} {recipe_hash(debian)}\n")
    import_tarball(debian, rid)
    log(f"image tar+import in {time.monotonic() - start:.1f}s")


def import_tarball(debian: int, rid: str) -> None:
    tarball = os.path.join(CACHE, f"debian{debian}", "rootfs.tar")
    podman("import", "--change", 'CMD ["/sbin/init"]',
           "--change", f"LABEL ccha.recipe={recipe_hash(debian)}",
           "--change", f"LABEL ccha.rootfs={rid}",
           "--change", "LABEL ccha.lab=1",
           tarball, image_name(debian), timeout=600)


def tarball_id(debian: int) -> tuple[str, str] | None:
    try:
        with open(os.path.join(CACHE, f"debian{debian}", "rootfs.tar.id"), encoding="utf-8") as handle:
            rid, recipe = handle.read().split()
            return rid, recipe
    except (FileNotFoundError, ValueError):
        return None


def ensure_image_and_repo(debian: int) -> dict:
    """Build (or reuse from the cache) the node image and the local apt repo; return timings."""
    timings = {}
    with open_cache_lock(debian):
        rid = rootfs_id(debian)
        if rid is not None and not rid_current(rid):
            log(f"rootfs {rid} was debootstrapped with another package list: debootstrap again")
            rid = None
        labels = image_labels(image_name(debian))
        stamp = repo_stamp(debian)
        image_rid = (labels or {}).get("ccha.rootfs")
        image_ok = (labels is not None and labels.get("ccha.recipe") == recipe_hash(debian)
                    and rid_current(image_rid))
        repo_ok = (stamp is not None and set(stamp.get("packages") or ()) >= set(REPO_PACKAGES)
                   and rid_current(stamp.get("rootfs_id"))
                   and os.path.exists(os.path.join(apt_repo_dir(debian), "Packages")))
        if image_ok and repo_ok and image_rid != stamp.get("rootfs_id"):
            image_ok = repo_ok = False  # built from different debootstraps: rebuild both
        if rid is not None:
            image_ok = image_ok and image_rid == rid
            repo_ok = repo_ok and stamp.get("rootfs_id") == rid
        if image_ok and repo_ok:
            return timings
        tar_id = tarball_id(debian)
        if not image_ok and repo_ok and tar_id == (stamp.get("rootfs_id"), recipe_hash(debian)):
            start = time.monotonic()
            import_tarball(debian, tar_id[0])
            timings["import"] = time.monotonic() - start
            return timings
        if rid is None:
            start = time.monotonic()
            rid = debootstrap(debian)
            timings["debootstrap"] = time.monotonic() - start
            image_ok = repo_ok = False
        if not repo_ok:
            start = time.monotonic()
            build_apt_repo(debian, rid)
            timings["apt_repo"] = time.monotonic() - start
        if not image_ok:
            start = time.monotonic()
            customize_rootfs(debian)
            import_image(debian, rid)
            timings["image"] = time.monotonic() - start
    return timings


@contextlib.contextmanager
def open_cache_lock(debian: int):
    os.makedirs(CACHE, exist_ok=True)
    fd = os.open(os.path.join(CACHE, f".lock-debian{debian}"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- PKI and stand-in files

def openssl(*args) -> None:
    run(["openssl", *args])


def ensure_pki(state: dict) -> list[str]:
    """The lab CA, each node's file certificate and standin.json; return the nodes whose standin.json changed."""
    changed = []
    pki = os.path.dirname(state["pki"]["ca_crt"])
    os.makedirs(pki, mode=0o700, exist_ok=True)
    ca_crt, ca_key = state["pki"]["ca_crt"], state["pki"]["ca_key"]
    if not (os.path.exists(ca_crt) and os.path.exists(ca_key)):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", ca_key, "-out", ca_crt, "-days", "3650", "-subj", "/CN=cloudcore-ha-lab-ca",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    vip4 = state["vip_ipv4"].split("/")[0]
    vip6 = state["vip_ipv6"].split("/")[0]
    for node in state["nodes"]:
        directory = node["standin_dir"]
        os.makedirs(directory, exist_ok=True)
        crt, key = os.path.join(directory, "server.crt"), os.path.join(directory, "server.key")
        sans = [vip4, node["ipv4"], "127.0.0.1", vip6, node["ipv6"], "::1"]
        san_text = ",".join(f"IP:{a}" for a in sans)
        marker = os.path.join(directory, ".sans")
        current = open(marker).read() if os.path.exists(marker) else None
        if not (os.path.exists(crt) and os.path.exists(key) and current == san_text + sha(open(ca_crt).read())):
            with tempfile.TemporaryDirectory() as tmp:
                csr, ext = os.path.join(tmp, "req.csr"), os.path.join(tmp, "ext.cnf")
                with open(ext, "w", encoding="utf-8") as handle:
                    handle.write(f"subjectAltName={san_text}\nbasicConstraints=critical,CA:FALSE\n"
                                 "keyUsage=critical,digitalSignature,keyEncipherment\n"
                                 "extendedKeyUsage=serverAuth,clientAuth\n")
                openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                        "-keyout", key, "-out", csr, "-subj", f"/O=KubeEdge/CN={node['name']}")
                openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-set_serial",
                        str(int.from_bytes(os.urandom(8), "big")), "-days", "825", "-extfile", ext, "-out", crt)
            with open(marker, "w", encoding="utf-8") as handle:
                handle.write(san_text + sha(open(ca_crt).read()))
        shutil.copyfile(ca_crt, os.path.join(directory, "ca.crt"))
        # "kubernetes": the node's kubelet for a pod of Deployment kubeedge/cloudcore and that pod's
        # CloudCore v1.23.1; the files above are served while there is no such Deployment.
        config = {"node": node["name"], "port": state["standin_port"], "cert_source": "kubernetes",
                  "cert_dir": STANDIN_CONF_DIR, "kubeconfig": state["kubeapi"]["node_kubeconfig"],
                  "poll_seconds": 1}
        text = json.dumps(config, indent=2) + "\n"
        path = os.path.join(directory, "standin.json")
        if not os.path.exists(path) or open(path, encoding="utf-8").read() != text:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
            changed.append(node["name"])
        os.chmod(key, 0o600)
    return changed


# --------------------------------------------------------------------------- network

def ns_exists(ns: str) -> bool:
    return os.path.exists(f"/run/netns/{ns}")


def link_exists(ns: str | None, dev: str) -> bool:
    cmd = ["ip"] + (["-n", ns] if ns else []) + ["link", "show", "dev", dev]
    return run(cmd, check=False).returncode == 0


def ensure_blackholes() -> None:
    run(["ip", "route", "replace", "blackhole", str(SUBNET4)])
    run(["ip", "-6", "route", "replace", "blackhole", str(SUBNET6)])
    run(["ip", "route", "replace", "blackhole", str(edges.EDGE_SUBNET)])


def ensure_ns(ns: str, sysctls: list[str]) -> None:
    if not ns_exists(ns):
        run(["ip", "netns", "add", ns])
    run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", *sysctls])


def ensure_network(state: dict, powered_off: frozenset[str] = frozenset()) -> None:
    """The bridge and every member's namespace and veth. A node in `powered_off` (no running
    container: a host that is off) gets the state a host has after a boot: its interface holds only
    the node's own addresses and its firewall is empty. The namespace outlives the container, so
    without this a VIP a killed keepalived left on the interface, or a previous scenario's firewall
    rules, would sit under the next node that boots in it (a second VIP holder in verify)."""
    ensure_blackholes()
    ensure_ns(LAB_NS, ["net.ipv6.conf.default.disable_ipv6=1", "net.ipv6.conf.all.accept_dad=0"])
    batch = ["link set lo up"]
    if not link_exists(LAB_NS, BRIDGE):
        batch.append(f"link add {BRIDGE} type bridge mcast_snooping 0")
    batch.append(f"link set {BRIDGE} up")
    run(["ip", "-n", LAB_NS, "-batch", "-"], input="\n".join(batch) + "\n")
    # The bridge's own addresses: where the Kubernetes API stand-in listens for the nodes (the lab
    # namespace has IPv6 off by default for the bridge ports; the bridge itself gets it back).
    run(["ip", "netns", "exec", LAB_NS, "sysctl", "-q", "-w", f"net.ipv6.conf.{BRIDGE}.disable_ipv6=0",
         f"net.ipv6.conf.{BRIDGE}.accept_dad=0"])
    run(["ip", "-n", LAB_NS, "-batch", "-"], input=(
        f"addr replace {state['bridge_ipv4']}/{SUBNET4.prefixlen} dev {BRIDGE}\n"
        f"addr replace {state['bridge_ipv6']}/{SUBNET6.prefixlen} dev {BRIDGE} nodad\n"))
    members = [(n["namespace"], n["lab_veth"], n["ipv4"], n["ipv6"]) for n in state["nodes"]]
    edge = state["edge"]
    members.append((edge["namespace"], edge["lab_veth"], edge["ipv4"], edge["ipv6"]))
    for ns, veth, ip4, ip6 in members:
        ensure_ns(ns, NODE_SYSCTLS)
        if not link_exists(ns, NODE_IF):
            if link_exists(LAB_NS, veth):
                run(["ip", "-n", LAB_NS, "link", "del", veth])
            run(["ip", "-n", LAB_NS, "link", "add", veth, "type", "veth", "peer", "name", NODE_IF, "netns", ns])
        run(["ip", "-n", LAB_NS, "link", "set", veth, "master", BRIDGE, "up"])
        run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"net.ipv6.conf.{NODE_IF}.accept_dad=0",
             f"net.ipv6.conf.{NODE_IF}.keep_addr_on_down=1"])
        if ns in powered_off:
            run(["ip", "-n", ns, "addr", "flush", "dev", NODE_IF, "scope", "global"])  # link-local stays (VRRPv3 over IPv6 sends from it)
            run(["ip", "netns", "exec", ns, "nft", "flush", "ruleset"])
        run(["ip", "-n", ns, "-batch", "-"], input=(
            "link set lo up\n"
            f"addr replace {ip4}/{SUBNET4.prefixlen} dev {NODE_IF}\n"
            f"addr replace {ip6}/{SUBNET6.prefixlen} dev {NODE_IF} nodad\n"
            f"link set {NODE_IF} up\n"))
        if ns != edge["namespace"]:
            # the edge fleets' subnet is routed through the edge namespace, as a site routes its
            # edge networks through a gateway
            run(["ip", "-n", ns, "route", "replace", str(edges.EDGE_SUBNET), "via", edge["ipv4"], "dev", NODE_IF])


# --------------------------------------------------------------------------- containers

def run_spec(state: dict, node: dict) -> dict:
    volumes = [f"{STANDIN_SRC}:/opt/cloudcore-standin:ro",
               f"{node['standin_dir']}:/etc/cloudcore-standin:ro",
               f"{node['apt_repo']}:/srv/lab-apt:ro"]
    network = f"ns:/run/netns/{node['namespace']}"
    args = ["--name", node["container"], "--hostname", node["name"], "--systemd=always",
            "--network", network, "--cap-add", ",".join(CAPS)]
    for limit in ULIMITS:
        args += ["--ulimit", limit]
    for volume in volumes:
        args += ["-v", volume]
    args += ["--label", "ccha.lab=1", "--label", f"ccha.debian={node['debian']}", node["image"], "/sbin/init"]
    return {"name": node["container"], "hostname": node["name"], "image": node["image"], "debian": node["debian"],
            "command": "/sbin/init", "systemd": "always", "network": network, "cap_add": CAPS,
            "ulimits": ULIMITS, "volumes": volumes, "labels": {"ccha.lab": "1", "ccha.debian": str(node["debian"])},
            "runtime": "runc", "env": {"CONTAINERS_CONF": CONTAINERS_CONF},
            "podman_run_args": args}


def lab_containers() -> dict[str, dict]:
    """Every container named ccha-* (whoever created it): its podman ps entry."""
    proc = podman("ps", "-a", "--format", "json", check=False)
    out = {}
    try:
        containers = json.loads(proc.stdout or "[]") or []
    except json.JSONDecodeError:
        containers = []
    for container in containers:
        names = container.get("Names") or []
        for name in [names] if isinstance(names, str) else names:
            if name.startswith(PREFIX):
                out[name] = container
    return out


def container_states() -> dict[str, str]:
    return {name: str(c.get("State", "unknown")).lower() for name, c in lab_containers().items()}


def stale_containers(state: dict, existing: dict[str, dict]) -> list[str]:
    """Node containers that exist with another image than their node's release needs (a node moved
    to another Debian release, or a container left by a lab of another release): `up` replaces them."""
    wanted = {n["container"]: n["image"] for n in state["nodes"]}
    return sorted(name for name, c in existing.items() if name in wanted and c.get("Image") != wanted[name])


def systemd_state(container: str) -> str:
    proc = podman("exec", container, "systemctl", "is-system-running", check=False, timeout=20)
    return proc.stdout.strip() or "unknown"


def wait_systemd(containers: list[str], timeout: float = 90) -> None:
    pending = set(containers)
    deadline = time.monotonic() + timeout
    last = {}
    while pending:
        for name in sorted(pending):
            state = systemd_state(name)
            last[name] = state
            if state in ("running", "degraded"):
                pending.discard(name)
        if not pending:
            return
        if time.monotonic() > deadline:
            raise LabError("systemd not running after %ds in: %s" % (
                timeout, " ".join(f"{n}={last.get(n)}" for n in sorted(pending))))
        time.sleep(0.2)


WORKERS: list[threading.Thread] = []  # joined before a failed `up` tears down (no podman run after down)


def parallel(func, items) -> None:
    errors = []

    def call(item):
        try:
            func(item)
        except LabError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=call, args=(item,), daemon=True) for item in items]
    WORKERS.extend(threads)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise LabError(errors[0])


def ensure_containers(state: dict) -> list[str]:
    """Start the node containers; return those replaced for another release (a fresh node: the
    collection has to converge it again, as after a reinstall)."""
    replaced = stale_containers(state, lab_containers())
    if replaced:
        log(f"replacing {' '.join(replaced)}: another Debian release")
        podman("rm", "-f", "-t", "5", *replaced, timeout=180)
    existing = container_states()
    todo = []
    for node in state["nodes"]:
        status = existing.get(node["container"])
        if status == "running":
            continue
        todo.append((node, status))

    def start(item):
        node, status = item
        if status is None:
            podman("run", "-d", *state["containers"][node["container"]]["podman_run_args"], timeout=120)
        else:
            podman("start", node["container"], timeout=120)

    parallel(start, todo)
    wait_systemd([n["container"] for n in state["nodes"]])
    return replaced


def probe_cmd(state: dict, host: str, timeout: float, path: str = "/ca.crt", port: int = 10002) -> list[str]:
    return ["ip", "netns", "exec", state["edge"]["namespace"], sys.executable, PROBE, host,
            "--timeout", str(timeout), "--path", path, "--port", str(port)]


def waits_for_pod(node: str, journal_tail: str) -> bool:
    """The stand-in's last journal line says it is a kubelet waiting for its CloudCore pod
    (cloudcore_standin.py Pod.wait_for_pod): Deployment kubeedge/cloudcore exists, no pod is bound
    to this node (a node added to a converged site: no CloudCore there until the collection runs)."""
    return one_line(journal_tail).endswith(f"waiting for a pod bound to {node}")


def wait_standins(state: dict, timeout: float = 30) -> list[str]:
    """Every node's stand-in answers on STANDIN_PORT, or runs as a kubelet that waits for a pod;
    return the latter (they serve nothing until a CloudCore pod is bound to them)."""
    deadline = time.monotonic() + timeout
    waiting = []
    for node in state["nodes"]:
        while True:
            proc = run(probe_cmd(state, node["ipv4"], 1), check=False)
            if proc.returncode == 0 and proc.stdout.split()[0] == node["name"]:
                break
            journal = exec_node(node, "journalctl", "-u", "cloudcore-standin", "-o", "cat", "-n", "1", "--no-pager",
                                check=False, timeout=20)
            if waits_for_pod(node["name"], journal.stdout):
                waiting.append(node["name"])
                break
            if time.monotonic() > deadline:
                raise LabError(f"stand-in on {node['name']} ({node['ipv4']}:{STANDIN_PORT}) does not answer: "
                               f"{one_line(proc.stdout) or one_line(proc.stderr)}")
            time.sleep(0.3)
    return waiting


# --------------------------------------------------------------------------- Kubernetes API stand-in

KUBEAPI_PIDFILE = os.path.join(RUN_DIR, "kubeapi.pid")


def require_venv() -> None:
    if not os.access(VENV_PYTHON, os.X_OK):
        raise LabError(f"{VENV_PYTHON} not found: run `make setup` first "
                       "(the lab's Kubernetes API stand-in runs with the project venv)")


def read_json(path: str):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError):
        return None


def write_private(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def kubeapi_pid() -> int | None:
    """The API stand-in `up` started (pid file with start time) if it still runs."""
    try:
        with open(KUBEAPI_PIDFILE, encoding="utf-8") as handle:
            fields = handle.read().split()
        pid = int(fields[0])
    except (OSError, ValueError, IndexError):
        return None
    if len(fields) < 2 or pid_start_time(pid) != fields[1] or is_zombie(pid):
        return None
    return pid


def kubeapi_command(state: dict) -> list[str]:
    nodes = ",".join(f"{n['name']}={n['ipv4']}" for n in state["nodes"])
    return [VENV_PYTHON, "-m", "kubeapi", "serve", "--state-dir", KUBEAPI_DIR,
            "--listen", f"127.0.0.1:{KUBEAPI_PORT}",
            "--listen-netns", f"{LAB_NS}:{state['bridge_ipv4']}:{KUBEAPI_LAB_PORT}",
            "--listen-netns", f"{LAB_NS}:[{state['bridge_ipv6']}]:{KUBEAPI_LAB_PORT}",
            "--nodes", nodes, "--control-plane-ip", state["bridge_ipv4"],
            "--state-file", os.path.join(KUBEAPI_DIR, "state.json"),
            "--access-log", os.path.join(KUBEAPI_DIR, "access.log")]


def without_node_list(cmd: list[str] | None) -> list[str] | None:
    """The API stand-in's command without its `--nodes NAME=IP,...` (only seed data: see ensure_kubeapi)."""
    if cmd is None:
        return None
    out = []
    for arg in cmd:
        if out and out[-1] == "--nodes":
            out[-1] = "--nodes=*"
        else:
            out.append(arg)
    return out


def ensure_kubeapi(state: dict) -> int:
    """Start the Kubernetes API stand-in (or keep the running one); write the kubeconfigs; return its pid.

    One process, in the root namespace: 127.0.0.1:KUBEAPI_PORT for the controller, and sockets opened
    inside the lab namespace (setns) on the bridge's addresses, port KUBEAPI_LAB_PORT, for the nodes.

    A running one whose command differs only in `--nodes` is kept: that list only seeds Nodes when the
    server starts (kubeapi cli.py, store.seed_node skips existing ones), and `up` with another node
    count gives a running lab's API its new Nodes and takes the removed ones away through the API
    (add_kube_nodes, retire_kube_nodes), as a kubelet registers and an operator deletes a Node. Not a
    restart: the API would be gone for a second under every node's stand-in (their kubelets poll it),
    the controllers' in-memory state (pending Progressing reasons) would be lost, and an edge fleet
    started meanwhile (`lab edges up` reads casecret) could fail. command.json then records the new
    command: a later restart (another command) seeds the same Nodes the running server has.
    """
    require_venv()
    cmd = kubeapi_command(state)
    os.makedirs(KUBEAPI_DIR, mode=0o700, exist_ok=True)
    os.makedirs(RUN_DIR, exist_ok=True)
    ready_path = os.path.join(KUBEAPI_DIR, "ready.json")
    cmd_path = os.path.join(KUBEAPI_DIR, "command.json")
    pid = kubeapi_pid()
    ready = read_json(ready_path) if pid else None
    recorded = read_json(cmd_path)
    started = (pid is None or not ready or ready.get("pid") != pid
               or without_node_list(recorded) != without_node_list(cmd))
    if not started and recorded != cmd:
        with open(cmd_path, "w", encoding="utf-8") as handle:
            json.dump(cmd, handle)
    if started:
        if pid is not None:
            terminate({pid})
        with contextlib.suppress(FileNotFoundError):
            os.unlink(ready_path)
        start = time.monotonic()
        log_path = state["kubeapi"]["log"]
        log("$ " + " ".join(cmd))
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(cmd, cwd=HERE, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # outlives this command; `down` stops it
        pid = proc.pid
        with open(KUBEAPI_PIDFILE, "w", encoding="utf-8") as handle:
            handle.write(f"{pid} {pid_start_time(pid)}\n")
        with open(cmd_path, "w", encoding="utf-8") as handle:
            json.dump(cmd, handle)
        deadline = time.monotonic() + 30
        while True:
            ready = read_json(ready_path)
            if ready and ready.get("pid") == pid:
                break
            code = proc.poll()
            if code is not None or time.monotonic() > deadline:
                last = ""
                with contextlib.suppress(OSError):
                    last = one_line(open(log_path, encoding="utf-8", errors="replace").read()[-4000:])
                what = f"exited with {code}" if code is not None else "not ready after 30s"
                raise LabError(f"Kubernetes API stand-in {what}: {last or 'no output'} (log {log_path})")
            time.sleep(0.05)
        log(f"Kubernetes API stand-in pid {pid} ready in {time.monotonic() - start:.1f}s")
    # kubeapi wrote a kubeconfig for its first listener (127.0.0.1): the controller's. The nodes' one
    # names the lab address; same PKI (kept in the state dir), so a restarted server keeps them valid.
    with open(os.path.join(KUBEAPI_DIR, "kubeconfig"), encoding="utf-8") as handle:
        write_private(KUBECONFIG, handle.read())
    node_files = [os.path.join(n["standin_dir"], "kubeconfig") for n in state["nodes"]]
    if not started:  # a running server: only the nodes that have none yet (a node added in place)
        node_files = [f for f in node_files if not os.path.exists(f)]
    if node_files:
        text = run([VENV_PYTHON, "-m", "kubeapi", "kubeconfig", "--state-dir", KUBEAPI_DIR,
                    "--server", state["kubeapi"]["lab_url"]], cwd=HERE).stdout
        for path in node_files:
            write_private(path, text)
    return pid


def kube_request(method: str, path: str, body: dict | None = None, timeout: float = 10) -> tuple[int, dict | None]:
    """One request to the API stand-in on 127.0.0.1 (the admin client certificate of its state dir)."""
    ctx = ssl.create_default_context(cafile=os.path.join(KUBEAPI_DIR, "ca.crt"))
    ctx.load_cert_chain(os.path.join(KUBEAPI_DIR, "admin.crt"), os.path.join(KUBEAPI_DIR, "admin.key"))
    conn = http.client.HTTPSConnection("127.0.0.1", KUBEAPI_PORT, context=ctx, timeout=timeout)
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Accept": "application/json"} | ({"Content-Type": "application/json"} if data else {})
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise LabError(f"Kubernetes API stand-in: {method} {path}: {exc}") from exc
    finally:
        conn.close()
    try:
        return response.status, json.loads(raw or b"null")
    except json.JSONDecodeError:
        return response.status, None


def add_kube_nodes(state: dict, names: list[str]) -> None:
    """The Node objects of nodes added to a running lab (its kubelet registering); one that exists stays."""
    code, version = kube_request("GET", "/version")
    if code != 200 or not isinstance(version, dict):
        raise LabError(f"Kubernetes API stand-in: GET /version: HTTP {code}")
    ts = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    for node in state["nodes"]:
        if node["name"] not in names:
            continue
        body = node_object(node["name"], node["ipv4"], version["gitVersion"], os.uname().release, ts)
        code, answer = kube_request("POST", "/api/v1/nodes", body)
        if code not in (200, 201, 409):  # 409: there already (e.g. seeded by a restarted server)
            raise LabError(f"Kubernetes API stand-in: cannot create Node {node['name']}: HTTP {code} "
                           f"{(answer or {}).get('message', '')}".rstrip())


def retire_kube_nodes(names: list[str]) -> int:
    """`kubectl delete node` for nodes taken out of the lab, then what kube-controller-manager's pod
    garbage collector (podgc, gcOrphaned) does on a real cluster: pods bound to a Node that no longer
    exists are deleted (it waits a 40 s quarantine first; the lab at once). The API stand-in's own
    controllers only collect pods whose owner is gone, so without this a pod of the removed node
    would stay bound to it and keep its last status (Running, Ready) for ever. Returns the pods deleted."""
    deleted = 0
    for name in names:
        code, answer = kube_request("DELETE", f"/api/v1/nodes/{urllib.parse.quote(name)}")
        if code not in (200, 202, 404):
            raise LabError(f"Kubernetes API stand-in: cannot delete Node {name}: HTTP {code} "
                           f"{(answer or {}).get('message', '')}".rstrip())
        selector = urllib.parse.quote(f"spec.nodeName={name}")
        code, pods = kube_request("GET", f"/api/v1/pods?fieldSelector={selector}")
        if code != 200 or not isinstance(pods, dict):
            raise LabError(f"Kubernetes API stand-in: cannot list the pods of Node {name}: HTTP {code}")
        for pod in pods.get("items") or []:
            md = pod.get("metadata") or {}
            path = (f"/api/v1/namespaces/{urllib.parse.quote(md.get('namespace', ''))}/pods/"
                    f"{urllib.parse.quote(md.get('name', ''))}")
            code, _answer = kube_request("DELETE", path)
            if code not in (200, 202, 404):
                raise LabError(f"Kubernetes API stand-in: cannot delete pod {md.get('name')} of Node {name}: "
                               f"HTTP {code}")
            deleted += code != 404
    return deleted


def kubeapi_strays() -> set[int]:
    """API stand-ins serving this lab's state dir whose pid file is gone (an interrupted `up`)."""
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                args = handle.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "kubeapi" in args and "serve" in args and "--state-dir" in args:
            index = args.index("--state-dir")
            if index + 1 < len(args) and os.path.realpath(args[index + 1]) == os.path.realpath(KUBEAPI_DIR):
                pids.add(int(entry))
    return pids


# --------------------------------------------------------------------------- inventory

def write_inventory(state: dict) -> None:
    inv = state["inventory"]
    shutil.rmtree(inv, ignore_errors=True)
    os.makedirs(os.path.join(inv, "group_vars"))
    os.makedirs(os.path.join(inv, "host_vars"))
    hosts = ["# Generated by tests/lab/lab up -- the cloudcore.ha lab (do not edit; regenerated)", "all:",
             "  children:", "    cloudcore:", "      hosts:"]
    for node in state["nodes"]:
        hosts += [f"        {node['name']}:", f"          ansible_host: {node['container']}"]
    # lab_nsenter (tests/lab/plugins/connection, found through ansible.cfg): nsenter with pipelining,
    # one process per module instead of three or four `podman exec`.
    hosts += ["      vars:", "        ansible_connection: lab_nsenter",
              "        ansible_python_interpreter: /usr/bin/python3"]
    # one group per Debian release (lab_debian12, lab_debian13): `--limit lab_debian13` in a mixed lab
    for release in state.get("debian_releases") or sorted({n["debian"] for n in state["nodes"]}):
        hosts += [f"    lab_debian{release}:", "      hosts:"]
        hosts += [f"        {n['name']}:" for n in state["nodes"] if n["debian"] == release]
    hosts.append("")
    with open(os.path.join(inv, "hosts.yml"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(hosts))
    with open(os.path.join(inv, "group_vars", "cloudcore.yml"), "w", encoding="utf-8") as handle:
        handle.write("# Generated by tests/lab/lab up -- the cloudcore.ha lab\n"
                     f"cloudcore_vip: {state['vip_ipv4']}\n"
                     f"# cloudcore_vip: {state['vip_ipv6']}   # the lab's IPv6 VIP\n"
                     f"cloudcore_vrrp_router_id: {state['vrrp_router_id']}\n"
                     f"cloudcore_vrrp_interface: {NODE_IF}\n"
                     "# the lab's Kubernetes API stand-in, from the controller (127.0.0.1)\n"
                     f"cloudcore_kubeconfig: {state['kubeapi']['kubeconfig']}\n"
                     f"cloudcore_kube_context: {state['kubeapi']['context']}\n"
                     "# the controller (root namespace) must not address the lab subnet: probe the VIP\n"
                     "# from the nodes instead\n"
                     "verify_probe_from_controller: false\n")
    for node in state["nodes"]:
        with open(os.path.join(inv, "host_vars", f"{node['name']}.yml"), "w", encoding="utf-8") as handle:
            handle.write("# Generated by tests/lab/lab up -- lab-only facts live only in the lab inventory\n"
                         f"cloudcore_node_name: {node['name']}\n"
                         f"lab_address_ipv4: {node['ipv4']}\n"
                         f"lab_address_ipv6: {node['ipv6']}\n"
                         "# the node's Debian release (a mixed lab has several): 12 bookworm, 13 trixie\n"
                         f"lab_debian: {node['debian']}\n"
                         f"lab_debian_codename: {node['codename']}\n")


# --------------------------------------------------------------------------- down

def pid_start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def terminate(pids: set[int]) -> None:
    pids = {p for p in pids if p > 1 and p != os.getpid()}
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 2
    while pids and time.monotonic() < deadline:
        pids = {p for p in pids if os.path.exists(f"/proc/{p}") and not is_zombie(p)}
        time.sleep(0.05)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def lab_namespaces() -> list[str]:
    try:
        names = os.listdir("/run/netns")
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(PREFIX))


def client_pids() -> set[int]:
    """Processes of the host's PID namespace that live in a lab network namespace, plus pid files.

    Container processes (own PID namespace) are left to podman.
    """
    pids: set[int] = set()
    if os.path.isdir(RUN_DIR):
        for name in os.listdir(RUN_DIR):
            if not name.endswith(".pid"):
                continue
            try:
                fields = open(os.path.join(RUN_DIR, name), encoding="utf-8").read().split()
                pid = int(fields[0])
            except (OSError, ValueError, IndexError):
                continue
            if len(fields) > 1 and pid_start_time(pid) != fields[1]:
                continue  # recycled pid: not ours
            if os.path.exists(f"/proc/{pid}"):
                pids.add(pid)
    return pids | netns_pids(lab_namespaces())


def netns_pids(namespaces: list[str]) -> set[int]:
    """Processes of the host's PID namespace inside these network namespaces (container processes,
    in their own PID namespace, are left to podman)."""
    pids: set[int] = set()
    own_pidns = os.readlink("/proc/self/ns/pid")
    wanted = set()
    for ns in namespaces:
        with contextlib.suppress(OSError):
            wanted.add((os.stat(f"/run/netns/{ns}").st_dev, os.stat(f"/run/netns/{ns}").st_ino))
    if wanted:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                st = os.stat(f"/proc/{pid}/ns/net")
                if (st.st_dev, st.st_ino) in wanted and os.readlink(f"/proc/{pid}/ns/pid") == own_pidns:
                    pids.add(pid)
            except OSError:
                continue
    return pids


def remove_nodes(nodes: list[dict]) -> None:
    """Take nodes out of a running lab (a shrinking `up`): container, processes in their namespace,
    the namespace (its end of the veth goes with it, and so the bridge port), the node's files.
    The rest of the lab is not touched. Their Node objects: retire_kube_nodes."""
    existing = container_states()
    containers = [n["container"] for n in nodes if n["container"] in existing]
    if containers:
        podman("rm", "-f", "-t", "5", *containers, timeout=180)
        left = sorted(set(containers) & set(container_states()))
        if left:
            raise LabError(f"could not remove containers: {' '.join(left)}")
    terminate(netns_pids([n["namespace"] for n in nodes]))
    for node in nodes:
        if ns_exists(node["namespace"]):
            run(["ip", "netns", "delete", node["namespace"]])
        # The bridge's end goes with the namespace, but the kernel destroys a namespace asynchronously:
        # the veth may still be listed and gone a moment later, so a failed del is judged by the result.
        if link_exists(LAB_NS, node["lab_veth"]):
            run(["ip", "-n", LAB_NS, "link", "del", node["lab_veth"]], check=False)
        deadline = time.monotonic() + 10
        while link_exists(LAB_NS, node["lab_veth"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        if link_exists(LAB_NS, node["lab_veth"]):
            raise LabError(f"{node['lab_veth']} is still on the lab bridge after removing {node['name']}")
        shutil.rmtree(os.path.dirname(node["standin_dir"]), ignore_errors=True)  # .lab/nodes/<node>


def down(quiet: bool = False) -> None:
    # 1. every lab client process (probes, the API stand-in, anything run with ip netns exec)
    terminate(client_pids() | kubeapi_strays())
    # 2. containers named ccha-*, whoever created them
    if shutil.which("podman"):
        names = sorted(container_states())
        if names:
            podman("rm", "-f", "-t", "0", *names, check=False, timeout=180)
            left = sorted(container_states())
            if left:
                podman("rm", "-f", "-t", "0", *left, check=False, timeout=180)
                if container_states():
                    raise LabError(f"could not remove containers: {' '.join(sorted(container_states()))}")
    # processes may have entered a namespace in the meantime
    terminate(client_pids())
    # 3. network: namespaces (takes bridge and veths along), strays in the root namespace
    for ns in lab_namespaces():
        run(["ip", "netns", "delete", ns], check=False)
    proc = run(["ip", "-o", "link", "show"], check=False)
    for line in proc.stdout.splitlines():
        parts = line.split(":")
        if len(parts) > 1:
            dev = parts[1].strip().split("@")[0]
            if dev.startswith(PREFIX) or dev.startswith("v" + PREFIX):
                run(["ip", "link", "del", dev], check=False)
    umount_under(CACHE)
    for path in (STATE, os.path.join(LAB_DIR, "inventory"), os.path.join(LAB_DIR, "nodes"),
                 os.path.join(LAB_DIR, "pki"), RUN_DIR, KUBEAPI_DIR, KUBECONFIG):
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.exists(path):
            os.unlink(path)
    if lab_namespaces():
        raise LabError(f"namespaces left: {' '.join(lab_namespaces())}")
    # 4. the blackhole routes, last
    run(["ip", "route", "del", "blackhole", str(SUBNET4)], check=False)
    run(["ip", "-6", "route", "del", "blackhole", str(SUBNET6)], check=False)
    run(["ip", "route", "del", "blackhole", str(edges.EDGE_SUBNET)], check=False)


# --------------------------------------------------------------------------- commands

def require_root_and_tools(*tools: str) -> None:
    if os.geteuid() != 0:
        raise LabError("must run as root")
    for tool in tools:
        if shutil.which(tool) is None:
            raise LabError(f"{tool} not found (install it: see the Makefile's setup step)")


def release_label(releases: list[int]) -> str:
    """debian12 for a uniform lab, debian12,12,13 for a mixed one (node order)."""
    lab_release = uniform(releases)
    return f"debian{lab_release}" if lab_release else "debian" + ",".join(str(r) for r in releases)


def cmd_up(args) -> str:
    releases = node_releases(args.nodes, args.debian, args.debian_of or ())
    require_root_and_tools("podman", "ip", "openssl", "tar", "nft")
    count = len(releases)
    require_venv()
    start = time.monotonic()

    def terminated(signum, frame):
        raise LabError(f"interrupted by signal {signum}; tore down what was built")

    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGINT, terminated)
    with lab_lock():
        previous = load_state(required=False)
        added, removed, orphans, waiting = [], [], 0, []
        if previous is not None:
            # Another release for some nodes is not another shape: those nodes' containers are
            # replaced below (ensure_containers), the network, the PKI and the API stay. Another
            # node count on a running lab changes it in place too: nodes beyond the count are
            # removed (remove_nodes, retire_kube_nodes), new ones get what a node gets at a first
            # `up`; the other nodes, their processes, the edge fleets and the API's objects stay.
            same_mode = previous.get("containers_started") == (not args.no_containers)
            if same_mode and len(previous["nodes"]) != count and lab_namespaces():
                added, removed = node_changes([n["name"] for n in previous["nodes"]], node_names(count))
                log(f"lab up: {len(previous['nodes'])} -> {count} nodes in place: "
                    f"adding [{' '.join(added)}] removing [{' '.join(removed)}]")
            elif not same_mode or len(previous["nodes"]) != count:
                log("lab up with another shape: tearing it down first")
                down()
        built = not (previous is not None and lab_namespaces())
        try:
            if removed:
                remove_nodes([n for n in previous["nodes"] if n["name"] in removed])
            for release in sorted(set(releases)):
                for tool in ("debootstrap", "dpkg-scanpackages", "chroot"):
                    if shutil.which(tool) is None and (image_labels(image_name(release)) is None
                                                       or repo_stamp(release) is None):
                        raise LabError(f"{tool} not found (needed to build the node image / apt repo)")
            ensure_blackholes()
            timings = {}
            for release in sorted(set(releases)):  # each release under its own cache lock
                for key, value in ensure_image_and_repo(release).items():
                    timings[key if len(set(releases)) == 1 else f"{key}@debian{release}"] = value
            state = model(count, releases)
            state["containers_started"] = not args.no_containers
            state["containers"] = {n["container"]: run_spec(state, n) for n in state["nodes"]}
            changed = ensure_pki(state)
            running = {name for name, status in container_states().items() if status == "running"}
            ensure_network(state, frozenset(n["namespace"] for n in state["nodes"] if n["container"] not in running))
            start_api = time.monotonic()
            state["kubeapi"]["pid"] = ensure_kubeapi(state)
            if added:  # before their containers start: their kubelets (the stand-ins) read their Node
                add_kube_nodes(state, added)
            orphans = retire_kube_nodes(removed) if removed else 0
            timings["kubeapi"] = time.monotonic() - start_api
            write_inventory(state)
            state["created"] = (previous or {}).get("created") or time.time()
            write_state(state)
            replaced = []
            if not args.no_containers:
                replaced = ensure_containers(state)
                for node in state["nodes"]:  # a running stand-in reads standin.json only when it starts
                    if node["name"] in changed and node["container"] in running and node["container"] not in replaced:
                        exec_node(node, "systemctl", "restart", "cloudcore-standin")
                waiting = wait_standins(state)
        except BaseException:
            if built:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                for thread in WORKERS:
                    thread.join(timeout=120)
                with contextlib.suppress(Exception):
                    down()
            raise
    extra = "".join(f" {k}={v:.1f}s" for k, v in timings.items())
    mode = " (no containers)" if args.no_containers else ""
    fresh = f" replaced {' '.join(replaced)}" if replaced else ""
    reshaped = (f" added {' '.join(added)}" if added else "") + (f" removed {' '.join(removed)}" if removed else "")
    if orphans:
        reshaped += (f" (deleted {orphans} pod{'s' if orphans > 1 else ''} bound to "
                     f"{'them' if len(removed) > 1 else 'it'})")
    if waiting:
        reshaped += f" (no CloudCore pod yet: {' '.join(waiting)})"
    return (f"lab up{mode}: {count} nodes {state['nodes'][0]['name']}..{state['nodes'][-1]['name']} "
            f"{release_label(releases)} VIP {VIP4} (IPv6 {VIP6}) edge {EDGE_NS} API {state['kubeapi']['url']}"
            f"{reshaped}{fresh} in {time.monotonic() - start:.1f}s{extra}")


def cmd_down(args) -> str:
    require_root_and_tools("ip")
    start = time.monotonic()
    with lab_lock():
        down()
    return f"lab down in {time.monotonic() - start:.1f}s"


def vip_holders(state: dict, address: str | None = None) -> list[str]:
    """The nodes holding `address`, or (without one) the lab's IPv4 or IPv6 VIP."""
    vips = {address} if address else {state["vip_ipv4"].split("/")[0], state["vip_ipv6"].split("/")[0]}
    holders = []
    for node in state["nodes"]:
        proc = run(["ip", "-n", node["namespace"], "-o", "addr", "show"], check=False)
        addrs = {line.split()[3].split("/")[0] for line in proc.stdout.splitlines() if len(line.split()) > 3}
        if addrs & vips:
            holders.append(node["name"])
    return holders


def cmd_holder(args) -> str:
    require_root_and_tools("ip")
    holders = vip_holders(load_state(), args.address)
    return " ".join(holders) if holders else "none"


def cmd_probe(args) -> tuple[str, int]:
    require_root_and_tools("ip")
    state = load_state()
    host = args.address or (state["vip_ipv6"] if args.ipv6 else state["vip_ipv4"]).split("/")[0]
    proc = run(probe_cmd(state, host, args.timeout, args.path, args.port), check=False, timeout=args.timeout + 10)
    line = one_line(proc.stdout) or "none"
    return line, proc.returncode


def exec_node(node: dict, *cmd, check=True, timeout=60) -> subprocess.CompletedProcess:
    return podman("exec", node["container"], *cmd, check=check, timeout=timeout)


def partition_ruleset(state: dict, node: dict) -> str:
    peers = [n for n in state["nodes"] if n["name"] != node["name"]]
    peers4 = ", ".join(n["ipv4"] for n in peers)
    peers6 = ", ".join(n["ipv6"] for n in peers)
    lines = [f"table inet {PARTITION_TABLE} {{"]
    for chain, hook, direction in (("input", "input", "saddr"), ("output", "output", "daddr")):
        lines += [f"  chain {chain} {{", f"    type filter hook {hook} priority -300; policy accept;",
                  "    meta l4proto 112 drop"]  # VRRP, IPv4 and IPv6 (v6 adverts come from link-local)
        if peers:
            lines += [f"    ip {direction} {{ {peers4} }} drop", f"    ip6 {direction} {{ {peers6} }} drop"]
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def cmd_fault(args, heal: bool) -> str:
    require_root_and_tools("podman", "ip")
    state = load_state()
    node = find_node(state, args.node)
    kind = args.kind
    ns = node["namespace"]
    if kind == "cloudcore":
        exec_node(node, "systemctl", "start" if heal else "stop", "cloudcore-standin")
    elif kind == "keepalived-kill":
        if heal:
            exec_node(node, "systemctl", "reset-failed", "keepalived", check=False)
            exec_node(node, "systemctl", "start", "keepalived")
        else:
            exec_node(node, "systemctl", "kill", "--signal=SIGKILL", "keepalived")
    elif kind == "haproxy":  # balanced mode: haproxy gone for good (stopped; heal: started)
        exec_node(node, "systemctl", "start" if heal else "stop", "haproxy")
    elif kind == "haproxy-kill":  # balanced mode: SIGKILL to every haproxy process (the unit restarts it)
        if heal:
            exec_node(node, "systemctl", "reset-failed", "haproxy", check=False)
            exec_node(node, "systemctl", "start", "haproxy")
        else:
            exec_node(node, "systemctl", "kill", "--signal=SIGKILL", "haproxy")
    elif kind == "link":
        run(["ip", "-n", state["lab_namespace"], "link", "set", node["lab_veth"], "up" if heal else "down"])
    elif kind == "restart":
        if not heal:
            podman("restart", "-t", "5", node["container"], timeout=120)
        else:
            if container_states().get(node["container"]) != "running":
                podman("start", node["container"], timeout=120)
            wait_systemd([node["container"]])
    elif kind == "partition":
        if heal:
            run(["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", PARTITION_TABLE], check=False)
        else:
            run(["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", PARTITION_TABLE], check=False)
            run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=partition_ruleset(state, node))
    else:  # argparse already refuses it
        raise LabError(f"unknown fault kind {kind!r}")
    return f"{'healed' if heal else 'fault'} {kind} on {node['name']}"


def cmd_edges(args) -> str:
    """lab edges up|status|down: edge fleets in the edge namespace (tests/lab/edges.py)."""
    require_root_and_tools("ip")
    state = load_state()
    directory = edges.fleet_dir(LAB_DIR, args.name)
    pidfile = os.path.join(RUN_DIR, f"edges-{args.name}.pid")
    edge = state["edge"]
    if args.action == "status":
        names = [args.name] if args.name_given else sorted(os.listdir(os.path.join(LAB_DIR, edges.FLEET_DIR_NAME))) \
            if os.path.isdir(os.path.join(LAB_DIR, edges.FLEET_DIR_NAME)) else []
        return "\n".join(edges.summary(n, edges.read_status(edges.fleet_dir(LAB_DIR, n))) for n in names) or "no fleet"
    if args.action == "down":
        stopped = False
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(open(pidfile, encoding="utf-8").read().split()[0])
            stopped = edges.stop(pid, directory)
        with contextlib.suppress(OSError):
            os.unlink(pidfile)
        meta = read_json(os.path.join(directory, "fleet.json")) or {}
        if meta.get("addresses"):
            run(["ip", "-n", edge["namespace"], "-batch", "-"], check=False,
                input=edges.address_batch(meta["addresses"], edge["interface"], add=False))
        status = edges.read_status(directory)
        return ("stopped " if stopped else "no running fleet ") + edges.summary(args.name, status) + \
            f"; timeline {os.path.join(directory, 'timeline.json')}"
    # up
    require_venv()
    if kubeapi_pid() is None:
        raise LabError("the Kubernetes API stand-in is not running (lab up first)")
    with contextlib.suppress(OSError, ValueError, IndexError):
        old = int(open(pidfile, encoding="utf-8").read().split()[0])
        if os.path.exists(f"/proc/{old}"):
            raise LabError(f"fleet {args.name} already runs (pid {old}): lab edges down --name {args.name}")
    try:
        sources = edges.addresses(args.offset, args.count)
    except ValueError as exc:
        raise LabError(str(exc)) from exc
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, mode=0o700)
    try:
        ca = edges.fetch_ca(VENV_PYTHON, KUBECONFIG, directory)
    except RuntimeError as exc:
        raise LabError(str(exc)) from exc
    run(["ip", "-n", edge["namespace"], "-batch", "-"], input=edges.address_batch(sources, edge["interface"], add=True))
    server = args.server or state["vip_ipv4"].split("/")[0]
    command = ["ip", "netns", "exec", edge["namespace"], *edges.fleet_command(
        VENV_PYTHON, os.path.join(HERE, "edge"), server, args.count, args.profile, sources, ca, directory, args.name,
        args.fleet_args)]
    with open(os.path.join(directory, "fleet.json"), "w", encoding="utf-8") as handle:
        json.dump({"name": args.name, "count": args.count, "profile": args.profile, "server": server,
                   "addresses": sources, "command": command}, handle)
    os.makedirs(RUN_DIR, exist_ok=True)
    log(f"$ {' '.join(command)}")
    with open(os.path.join(directory, "log"), "ab") as out:
        proc = subprocess.Popen(command, cwd=HERE, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # outlives this command; `lab edges down`/`lab down` stop it
    with open(pidfile, "w", encoding="utf-8") as handle:
        handle.write(f"{proc.pid} {pid_start_time(proc.pid)}\n")
    if args.no_wait:
        return f"fleet {args.name} started (pid {proc.pid}): {args.count} edges {args.profile} -> {server}"
    try:
        status = edges.wait_ready(directory, proc, args.timeout)
    except RuntimeError as exc:
        raise LabError(str(exc)) from exc
    return edges.summary(args.name, status) + f" (ready after {status.get('ready_at')} s)"


def cmd_inventory(args) -> str:
    state = load_state()
    return state["inventory"]


def cmd_status(args) -> str:
    require_root_and_tools("podman", "ip")
    state = load_state()
    states = container_states()
    holders = set(vip_holders(state))
    lines = []
    for node in state["nodes"]:
        cstate = states.get(node["container"], "absent")
        units = {"cloudcore-standin": "-", "keepalived": "-"}
        if cstate == "running":
            proc = exec_node(node, "systemctl", "show", "-p", "Id,LoadState,ActiveState",
                             "cloudcore-standin.service", "keepalived.service", check=False, timeout=20)
            for block in proc.stdout.strip().split("\n\n"):
                fields = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
                unit = fields.get("Id", "").removesuffix(".service")
                if unit in units:
                    units[unit] = ("not-installed" if fields.get("LoadState") == "not-found"
                                   else fields.get("ActiveState", "?"))
        lines.append(f"{node['name']} container={cstate} standin={units['cloudcore-standin']} "
                     f"keepalived={units['keepalived']} vip={'yes' if node['name'] in holders else 'no'}")
    return "\n".join(lines)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def nodes_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--nodes must be an integer 2..8, got {text!r}")
    if not 2 <= value <= 8:
        raise argparse.ArgumentTypeError(f"--nodes must be 2..8, got {value}")
    return value


def debian_arg(text: str) -> str:
    try:
        parse_releases(text)
    except LabError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--debian: "))
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="lab", description="The cloudcore.ha lab (run as root). Set CCHA_LAB_VERBOSE=1 for progress on stderr.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    p = sub.add_parser("up", help="build (cached) and start the lab",
                       description="Build (cached under %s) and start the lab; idempotent." % CACHE)
    p.add_argument("--nodes", type=nodes_arg, default=None,
                   help="number of CloudCore nodes, 2..8 (default 3, or as many as --debian lists)")
    p.add_argument("--debian", type=debian_arg, default="12", metavar="REL[,REL...]",
                   help="Debian release of every node (%s; default 12), or one per node in node order, "
                        "e.g. 12,13,13 (a mixed lab)" % ", ".join(f"{k} = {v}" for k, v in sorted(DEBIAN.items())))
    p.add_argument("--debian-of", action="append", metavar="NODE=REL", default=[],
                   help="this node's release instead (repeatable; NODE is ccha-nodeK or K), e.g. "
                        "--debian-of ccha-node3=13: a running node of another release is replaced by a fresh one")
    p.add_argument("--no-containers", action="store_true",
                   help="build everything but start no container; podman run arguments go to .lab/lab.json 'containers'")
    p.set_defaults(func=cmd_up)
    p = sub.add_parser("down", help="remove everything the lab built (safe on nothing)",
                       description="Kill lab clients, remove ccha-* containers, namespaces, bridge, veths, blackhole routes.")
    p.set_defaults(func=cmd_down)
    p = sub.add_parser("holder", help="print the node(s) holding the VIP, or none",
                       description="Print the node(s) whose namespace holds the IPv4 or IPv6 VIP, space-separated, or none.")
    p.add_argument("--address", help="this lab address instead of the VIP (a VIP change's new or old one)")
    p.set_defaults(func=cmd_holder)
    p = sub.add_parser("probe", help="HTTPS GET VIP:10002/ca.crt from the edge namespace",
                       description="From the edge namespace, HTTPS GET https://VIP:10002/ca.crt (no trust); "
                                   "print '<node> sans=...' or 'none' (exit 1).")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    p.add_argument("--ipv6", action="store_true", help="probe the IPv6 VIP")
    p.add_argument("--address", help="probe this lab address instead of the VIP")
    p.add_argument("--port", type=int, default=10002, help="TCP port (default 10002)")
    p.add_argument("--path", default="/ca.crt", help="URL path (default /ca.crt)")
    p.set_defaults(func=cmd_probe)
    for name, heal in (("fault", False), ("heal", True)):
        p = sub.add_parser(name, help=f"{'undo' if heal else 'inject'} a fault on a node",
                           description=f"{'Undo' if heal else 'Inject'} a fault. KIND: cloudcore (stand-in unit), "
                                       "keepalived-kill (SIGKILL; heal: reset-failed + start), haproxy (stopped; heal: started), "
                                       "haproxy-kill (SIGKILL; the unit restarts it), link (cable), "
                                       "restart (container; heal waits for systemd), partition (nft in the node netns).")
        p.add_argument("node", metavar="NODE")
        p.add_argument("kind", metavar="KIND", choices=FAULT_KINDS)
        p.set_defaults(func=lambda a, heal=heal: cmd_fault(a, heal))
    p = sub.add_parser("edges", help="edge fleets in the edge namespace: up, status, down",
                       description="Edge fleets (tests/lab/edge) in the edge namespace, on addresses of %s. "
                                   "up --count N --profile P starts one and waits until every edge is connected; "
                                   "extra arguments after -- go to `python -m edge fleet`." % edges.EDGE_SUBNET)
    p.add_argument("action", choices=["up", "status", "down"])
    p.add_argument("--name", default="fleet", help="the fleet's name (several can run; default fleet)")
    p.add_argument("--count", type=int, default=50)
    p.add_argument("--profile", default="edgecore-1.23", choices=["edgecore-1.23", "edgecore-next"])
    p.add_argument("--offset", type=int, default=0, help="first address: the offset-th host of the edge subnet")
    p.add_argument("--server", help="CloudHub address (default: the IPv4 VIP)")
    p.add_argument("--timeout", type=float, default=180, help="seconds to wait for every edge (default 180)")
    p.add_argument("--no-wait", action="store_true", help="return once the fleet started")
    p.add_argument("fleet_args", nargs="*", help="after --: options of `python -m edge fleet` (e.g. --heartbeat 5)")
    p.set_defaults(func=cmd_edges)
    p = sub.add_parser("inventory", help="print the path of the generated inventory",
                       description="Print the path of the generated Ansible inventory directory.")
    p.set_defaults(func=cmd_inventory)
    p = sub.add_parser("status", help="one line per node",
                       description="One line per node: container state, stand-in, keepalived, VIP.")
    p.set_defaults(func=cmd_status)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.name_given = "--name" in argv
    try:
        result = args.func(args)
    except LabError as exc:
        print(f"lab {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"lab {args.command}: interrupted", file=sys.stderr)
        return 130
    code = 0
    if isinstance(result, tuple):
        result, code = result
    if result:
        try:
            print(result, flush=True)
        except BrokenPipeError:  # e.g. `lab status | head -1`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return code


if __name__ == "__main__":
    sys.exit(main())
