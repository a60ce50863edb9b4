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
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.realpath(__file__))
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
REPO_PACKAGES = ["keepalived", "nftables", "ufw", "firewalld"]
ULIMITS = ["nofile=1024:1024", "nproc=4096:4096"]
CAPS = ["NET_ADMIN", "NET_RAW"]
FAULT_KINDS = ["cloudcore", "keepalived-kill", "link", "restart", "partition"]
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


def model(count: int, debian: int) -> dict:
    nodes = []
    for i, name in enumerate(node_names(count), start=1):
        host = NODE_HOST_BASE + i
        nodes.append({
            "name": name, "namespace": name, "container": name, "interface": NODE_IF,
            "lab_veth": lab_side_veth(name),
            "ipv4": host4(host), "ipv6": host6(host),
            "ipv4_cidr": f"{host4(host)}/{SUBNET4.prefixlen}", "ipv6_cidr": f"{host6(host)}/{SUBNET6.prefixlen}",
            "standin_dir": os.path.join(LAB_DIR, "nodes", name, "standin"),
        })
    bridge4, bridge6 = host4(BRIDGE_HOST), host6(BRIDGE_HOST)
    return {
        "version": 1,
        "prefix": PREFIX,
        "debian": debian,
        "image": image_name(debian),
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
        "blackhole_routes": [str(SUBNET4), str(SUBNET6)],
        "lab_dir": LAB_DIR,
        "inventory": os.path.join(LAB_DIR, "inventory"),
        "pki": {"ca_crt": os.path.join(LAB_DIR, "pki", "ca.crt"), "ca_key": os.path.join(LAB_DIR, "pki", "ca.key")},
        "apt_repo": apt_repo_dir(debian),
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

def image_recipe(debian: int) -> dict[str, str]:
    """Files written into the node rootfs (path -> content; '@link:' marks a symlink)."""
    return {
        "/etc/apt/sources.list":
            "# cloudcore.ha lab: the nodes have no internet; packages come from the lab's local repo\n"
            "deb [trusted=yes] file:/srv/lab-apt ./\n",
        "/etc/systemd/system/keepalived.service.d/lab.conf":
            "# cloudcore.ha lab (cgroup v1 host): systemd may fail to kill the unit's cgroup and then\n"
            "# waits TimeoutStopSec (90 s default) before ExecStopPost/restart. Keep stops prompt.\n"
            "[Service]\nTimeoutStopSec=5s\n",
        "/etc/systemd/system/cloudcore-standin.service": "@link:/opt/cloudcore-standin/cloudcore-standin.service",
        "/etc/systemd/system/multi-user.target.wants/cloudcore-standin.service":
            "@link:/etc/systemd/system/cloudcore-standin.service",
        "/etc/machine-id": "",  # a fresh machine id per container boot
        "/etc/hostname": "",
        "/etc/apt/apt.conf.d/99ccha-lab": '// cloudcore.ha lab: no translations in the local repo\nAcquire::Languages "none";\n',
    }


def recipe_hash(debian: int) -> str:
    return sha(json.dumps([debian, IMAGE_PACKAGES, image_recipe(debian)], sort_keys=True))


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
    shutil.rmtree(repo, ignore_errors=True)
    os.rename(tmp_repo, repo)
    shutil.rmtree(work, ignore_errors=True)
    log(f"apt repo ({len(debs)} debs) built in {time.monotonic() - start:.1f}s")


def customize_rootfs(debian: int) -> None:
    root = rootfs_dir(debian)
    for path, content in image_recipe(debian).items():
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
    run(["tar", "-C", root, "--exclude=./.ccha-rootfs-id", "--exclude=./tmp/ccha-apt",
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
        repo_ok = (stamp is not None and stamp.get("packages") == REPO_PACKAGES and rid_current(stamp.get("rootfs_id"))
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
        # "kubernetes": act like CloudCore toward the API stand-in (casecret/cloudcoresecret from the
        # ConfigMap's advertiseAddress); the files above are served while there is no ConfigMap.
        config = {"node": node["name"], "port": state["standin_port"], "cert_source": "kubernetes",
                  "cert_dir": STANDIN_CONF_DIR, "kubeconfig": state["kubeapi"]["node_kubeconfig"],
                  "poll_seconds": 2}
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


def ensure_ns(ns: str, sysctls: list[str]) -> None:
    if not ns_exists(ns):
        run(["ip", "netns", "add", ns])
    run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", *sysctls])


def ensure_network(state: dict) -> None:
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
        run(["ip", "-n", ns, "-batch", "-"], input=(
            "link set lo up\n"
            f"addr replace {ip4}/{SUBNET4.prefixlen} dev {NODE_IF}\n"
            f"addr replace {ip6}/{SUBNET6.prefixlen} dev {NODE_IF} nodad\n"
            f"link set {NODE_IF} up\n"))


# --------------------------------------------------------------------------- containers

def run_spec(state: dict, node: dict) -> dict:
    volumes = [f"{STANDIN_SRC}:/opt/cloudcore-standin:ro",
               f"{node['standin_dir']}:/etc/cloudcore-standin:ro",
               f"{state['apt_repo']}:/srv/lab-apt:ro"]
    network = f"ns:/run/netns/{node['namespace']}"
    args = ["--name", node["container"], "--hostname", node["name"], "--systemd=always",
            "--network", network, "--cap-add", ",".join(CAPS)]
    for limit in ULIMITS:
        args += ["--ulimit", limit]
    for volume in volumes:
        args += ["-v", volume]
    args += ["--label", "ccha.lab=1", state["image"], "/sbin/init"]
    return {"name": node["container"], "hostname": node["name"], "image": state["image"],
            "command": "/sbin/init", "systemd": "always", "network": network, "cap_add": CAPS,
            "ulimits": ULIMITS, "volumes": volumes, "labels": {"ccha.lab": "1"},
            "runtime": "runc", "env": {"CONTAINERS_CONF": CONTAINERS_CONF},
            "podman_run_args": args}


def container_states() -> dict[str, str]:
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
                out[name] = str(container.get("State", "unknown")).lower()
    return out


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


def ensure_containers(state: dict) -> None:
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


def probe_cmd(state: dict, host: str, timeout: float, path: str = "/ca.crt") -> list[str]:
    return ["ip", "netns", "exec", state["edge"]["namespace"], sys.executable, PROBE, host,
            "--timeout", str(timeout), "--path", path]


def wait_standins(state: dict, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    for node in state["nodes"]:
        while True:
            proc = run(probe_cmd(state, node["ipv4"], 1), check=False)
            if proc.returncode == 0 and proc.stdout.split()[0] == node["name"]:
                break
            if time.monotonic() > deadline:
                raise LabError(f"stand-in on {node['name']} ({node['ipv4']}:{STANDIN_PORT}) does not answer: "
                               f"{one_line(proc.stdout) or one_line(proc.stderr)}")
            time.sleep(0.3)


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


def ensure_kubeapi(state: dict) -> int:
    """Start the Kubernetes API stand-in (or keep the running one); write the kubeconfigs; return its pid.

    One process, in the root namespace: 127.0.0.1:KUBEAPI_PORT for the controller, and sockets opened
    inside the lab namespace (setns) on the bridge's addresses, port KUBEAPI_LAB_PORT, for the nodes.
    """
    require_venv()
    cmd = kubeapi_command(state)
    os.makedirs(KUBEAPI_DIR, mode=0o700, exist_ok=True)
    os.makedirs(RUN_DIR, exist_ok=True)
    ready_path = os.path.join(KUBEAPI_DIR, "ready.json")
    cmd_path = os.path.join(KUBEAPI_DIR, "command.json")
    pid = kubeapi_pid()
    ready = read_json(ready_path) if pid else None
    started = pid is None or not ready or ready.get("pid") != pid or read_json(cmd_path) != cmd
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
    if started or not all(os.path.exists(f) for f in node_files):
        text = run([VENV_PYTHON, "-m", "kubeapi", "kubeconfig", "--state-dir", KUBEAPI_DIR,
                    "--server", state["kubeapi"]["lab_url"]], cwd=HERE).stdout
        for path in node_files:
            write_private(path, text)
    return pid


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
              "        ansible_python_interpreter: /usr/bin/python3", ""]
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
                         f"lab_address_ipv6: {node['ipv6']}\n")


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
    own_pidns = os.readlink("/proc/self/ns/pid")
    lab_netns = set()
    for ns in lab_namespaces():
        with contextlib.suppress(OSError):
            lab_netns.add((os.stat(f"/run/netns/{ns}").st_dev, os.stat(f"/run/netns/{ns}").st_ino))
    if lab_netns:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                st = os.stat(f"/proc/{pid}/ns/net")
                if (st.st_dev, st.st_ino) in lab_netns and os.readlink(f"/proc/{pid}/ns/pid") == own_pidns:
                    pids.add(pid)
            except OSError:
                continue
    return pids


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


# --------------------------------------------------------------------------- commands

def require_root_and_tools(*tools: str) -> None:
    if os.geteuid() != 0:
        raise LabError("must run as root")
    for tool in tools:
        if shutil.which(tool) is None:
            raise LabError(f"{tool} not found (install it: see the Makefile's setup step)")


def cmd_up(args) -> str:
    require_root_and_tools("podman", "ip", "openssl", "tar", "nft")
    if args.debian not in DEBIAN:
        raise LabError(f"--debian must be one of {sorted(DEBIAN)}")
    require_venv()
    start = time.monotonic()

    def terminated(signum, frame):
        raise LabError(f"interrupted by signal {signum}; tore down what was built")

    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGINT, terminated)
    with lab_lock():
        previous = load_state(required=False)
        if previous is not None:
            same = (len(previous["nodes"]) == args.nodes and previous["debian"] == args.debian
                    and previous.get("containers_started") == (not args.no_containers))
            if not same:
                log("lab up with another shape: tearing it down first")
                down()
        built = not (previous is not None and lab_namespaces())
        try:
            for tool in ("debootstrap", "dpkg-scanpackages", "chroot"):
                if shutil.which(tool) is None and (image_labels(image_name(args.debian)) is None
                                                   or repo_stamp(args.debian) is None):
                    raise LabError(f"{tool} not found (needed to build the node image / apt repo)")
            ensure_blackholes()
            timings = ensure_image_and_repo(args.debian)
            state = model(args.nodes, args.debian)
            state["containers_started"] = not args.no_containers
            state["containers"] = {n["container"]: run_spec(state, n) for n in state["nodes"]}
            changed = ensure_pki(state)
            ensure_network(state)
            start_api = time.monotonic()
            state["kubeapi"]["pid"] = ensure_kubeapi(state)
            timings["kubeapi"] = time.monotonic() - start_api
            write_inventory(state)
            state["created"] = (previous or {}).get("created") or time.time()
            write_state(state)
            if not args.no_containers:
                running = {name for name, status in container_states().items() if status == "running"}
                ensure_containers(state)
                for node in state["nodes"]:  # a running stand-in reads standin.json only when it starts
                    if node["name"] in changed and node["container"] in running:
                        exec_node(node, "systemctl", "restart", "cloudcore-standin")
                wait_standins(state)
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
    return (f"lab up{mode}: {args.nodes} nodes {state['nodes'][0]['name']}..{state['nodes'][-1]['name']} "
            f"debian{args.debian} VIP {VIP4} (IPv6 {VIP6}) edge {EDGE_NS} API {state['kubeapi']['url']} in {time.monotonic() - start:.1f}s{extra}")


def cmd_down(args) -> str:
    require_root_and_tools("ip")
    start = time.monotonic()
    with lab_lock():
        down()
    return f"lab down in {time.monotonic() - start:.1f}s"


def vip_holders(state: dict) -> list[str]:
    vips = {state["vip_ipv4"].split("/")[0], state["vip_ipv6"].split("/")[0]}
    holders = []
    for node in state["nodes"]:
        proc = run(["ip", "-n", node["namespace"], "-o", "addr", "show"], check=False)
        addrs = {line.split()[3].split("/")[0] for line in proc.stdout.splitlines() if len(line.split()) > 3}
        if addrs & vips:
            holders.append(node["name"])
    return holders


def cmd_holder(args) -> str:
    require_root_and_tools("ip")
    holders = vip_holders(load_state())
    return " ".join(holders) if holders else "none"


def cmd_probe(args) -> tuple[str, int]:
    require_root_and_tools("ip")
    state = load_state()
    host = args.address or (state["vip_ipv6"] if args.ipv6 else state["vip_ipv4"]).split("/")[0]
    proc = run(probe_cmd(state, host, args.timeout, args.path), check=False, timeout=args.timeout + 10)
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


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="lab", description="The cloudcore.ha lab (run as root). Set CCHA_LAB_VERBOSE=1 for progress on stderr.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    p = sub.add_parser("up", help="build (cached) and start the lab",
                       description="Build (cached under %s) and start the lab; idempotent." % CACHE)
    p.add_argument("--nodes", type=nodes_arg, default=3, help="number of CloudCore nodes, 2..8 (default 3)")
    p.add_argument("--debian", type=int, choices=sorted(DEBIAN), default=12, help="node Debian release (default 12)")
    p.add_argument("--no-containers", action="store_true",
                   help="build everything but start no container; podman run arguments go to .lab/lab.json 'containers'")
    p.set_defaults(func=cmd_up)
    p = sub.add_parser("down", help="remove everything the lab built (safe on nothing)",
                       description="Kill lab clients, remove ccha-* containers, namespaces, bridge, veths, blackhole routes.")
    p.set_defaults(func=cmd_down)
    p = sub.add_parser("holder", help="print the node(s) holding the VIP, or none",
                       description="Print the node(s) whose namespace holds the IPv4 or IPv6 VIP, space-separated, or none.")
    p.set_defaults(func=cmd_holder)
    p = sub.add_parser("probe", help="HTTPS GET VIP:10002/ca.crt from the edge namespace",
                       description="From the edge namespace, HTTPS GET https://VIP:10002/ca.crt (no trust); "
                                   "print '<node> sans=...' or 'none' (exit 1).")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    p.add_argument("--ipv6", action="store_true", help="probe the IPv6 VIP")
    p.add_argument("--address", help="probe this lab address instead of the VIP")
    p.add_argument("--path", default="/ca.crt", help="URL path (default /ca.crt)")
    p.set_defaults(func=cmd_probe)
    for name, heal in (("fault", False), ("heal", True)):
        p = sub.add_parser(name, help=f"{'undo' if heal else 'inject'} a fault on a node",
                           description=f"{'Undo' if heal else 'Inject'} a fault. KIND: cloudcore (stand-in unit), "
                                       "keepalived-kill (SIGKILL; heal: reset-failed + start), link (cable), "
                                       "restart (container; heal waits for systemd), partition (nft in the node netns).")
        p.add_argument("node", metavar="NODE")
        p.add_argument("kind", metavar="KIND", choices=FAULT_KINDS)
        p.set_defaults(func=lambda a, heal=heal: cmd_fault(a, heal))
    p = sub.add_parser("inventory", help="print the path of the generated inventory",
                       description="Print the path of the generated Ansible inventory directory.")
    p.set_defaults(func=cmd_inventory)
    p = sub.add_parser("status", help="one line per node",
                       description="One line per node: container state, stand-in, keepalived, VIP.")
    p.set_defaults(func=cmd_status)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
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
