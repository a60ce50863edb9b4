"""Command line: ``python -m kubeapi serve ...`` (run from tests/lab) and ``python -m kubeapi kubeconfig ...``."""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import sys
import threading
from typing import Any

import yaml

from . import controllers, schema
from .listeners import ListenSpec, open_listener, parse_listen, parse_listen_netns
from .pki import ADMIN_USER, PKI
from .server import App, make_context
from .store import Store

CONTEXT = "ccha-lab"
CONTROL_PLANE = "ccha-control-plane"


def _b64file(path: str) -> str:
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


def kubeconfig(pki: PKI, server: str, context: str = CONTEXT, token: bool = False) -> dict[str, Any]:
    user: dict[str, Any] = ({"token": pki.token()} if token else
                            {"client-certificate-data": _b64file(pki.client_crt),
                             "client-key-data": _b64file(pki.client_key)})
    return {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": context, "cluster": {"server": server,
                                                   "certificate-authority-data": _b64file(pki.ca_crt)}}],
        "users": [{"name": ADMIN_USER, "user": user}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": ADMIN_USER}}],
        "current-context": context,
    }


def write_kubeconfig(path: str, pki: PKI, server: str, token: bool = False) -> None:
    tmp = path + ".tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as f:
        yaml.safe_dump(kubeconfig(pki, server, token=token), f, sort_keys=False)
    os.replace(tmp, path)


def server_url(host: str, port: int) -> str:
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def parse_nodes(values: list[str]) -> list[tuple[str, str]]:
    out = []
    for value in values:
        for item in filter(None, (v.strip() for v in value.split(","))):
            name, sep, ip = item.partition("=")
            if not sep or not name or not ip:
                raise SystemExit(f"--nodes expects name=ip[,name=ip...], got {item!r}")
            out.append((name, ip))
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubeapi", description="Kubernetes API stand-in for the cloudcore.ha lab")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run the API server (foreground)")
    s.add_argument("--state-dir", required=True, help="PKI, kubeconfig, pid and ready files live here")
    s.add_argument("--listen", action="append", default=[], metavar="ADDR:PORT",
                   help="listen in the current network namespace (repeatable; port 0 = ephemeral); "
                        "default 127.0.0.1:6443")
    s.add_argument("--listen-netns", action="append", default=[], metavar="NETNS:ADDR:PORT",
                   help="listen inside /run/netns/NETNS (repeatable; needs CAP_SYS_ADMIN)")
    s.add_argument("--nodes", action="append", default=[], metavar="NAME=IP[,NAME=IP]",
                   help="pre-seeded Nodes (a control-plane node is always added)")
    s.add_argument("--control-plane-ip", default=None, help="InternalIP of the control-plane Node")
    s.add_argument("--state-file", default=None, help="JSON state, loaded on start and saved on every change")
    s.add_argument("--field-validation", choices=["Strict", "Warn", "Ignore"], default="Strict",
                   help="default when a request has no fieldValidation parameter (real servers: Warn)")
    s.add_argument("--kube-version", default=None, help="reported by /version (default: newest schema version)")
    s.add_argument("--access-log", default=None, help="append one line per request to this file")
    k = sub.add_parser("kubeconfig", help="print a kubeconfig for an existing state dir and a server URL")
    k.add_argument("--state-dir", required=True)
    k.add_argument("--server", required=True, help="e.g. https://10.213.102.1:6443")
    k.add_argument("--token", action="store_true", help="bearer token instead of the client certificate")
    return p


def serve(args: argparse.Namespace) -> int:
    state_dir = os.path.abspath(args.state_dir)
    os.makedirs(state_dir, exist_ok=True)
    specs: list[ListenSpec] = [parse_listen(v) for v in (args.listen or ["127.0.0.1:6443"])]
    specs += [parse_listen_netns(v) for v in args.listen_netns]
    kube_version = args.kube_version or schema.schema_version()

    pki = PKI(state_dir)
    pki.ensure([s.host for s in specs if s.host not in ("0.0.0.0", "::")])
    socks = []
    for spec in specs:  # before any thread starts: setns() switches only the calling thread
        try:
            socks.append(open_listener(spec))
        except OSError as exc:
            print(f"kubeapi: cannot listen on {spec}: {exc}", file=sys.stderr)
            return 1

    store = Store(args.state_file, args.field_validation, kube_version)
    nodes = parse_nodes(args.nodes)
    cp_ip = args.control_plane_ip or next((s.host for s in specs if s.netns), specs[0].host)
    store.seed_node(CONTROL_PLANE, cp_ip, labels={"node-role.kubernetes.io/control-plane": ""},
                    taints=[{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}])
    for name, ip in nodes:
        store.seed_node(name, ip)

    loops = controllers.start(store)  # Deployments get ReplicaSets and Pods; the scheduler binds them
    log = open(args.access_log, "a", encoding="utf-8") if args.access_log else None  # noqa: SIM115
    app = App(store, pki.token(), kube_version, log)
    ctx = make_context(pki.server_crt, pki.server_key, pki.ca_crt)
    listeners = []
    for spec, sock in zip(specs, socks):
        host, port = app.serve(sock, ctx)
        listeners.append({"netns": spec.netns, "address": host, "port": port, "server": server_url(host, port)})

    first = listeners[0]
    write_kubeconfig(os.path.join(state_dir, "kubeconfig"), pki, first["server"])
    for entry in listeners:
        if entry["netns"]:
            write_kubeconfig(os.path.join(state_dir, f"kubeconfig-{entry['netns']}"), pki, entry["server"])
    pid_file = os.path.join(state_dir, "kubeapi.pid")
    ready_file = os.path.join(state_dir, "ready.json")
    with open(pid_file, "w", encoding="ascii") as f:
        f.write(f"{os.getpid()}\n")
    ready = {"pid": os.getpid(), "listeners": listeners, "kubeconfig": os.path.join(state_dir, "kubeconfig"),
             "ca": pki.ca_crt, "token_file": pki.token_file, "context": CONTEXT, "kubeVersion": kube_version}
    with open(ready_file + ".tmp", "w", encoding="utf-8") as f:
        json.dump(ready, f, indent=1)
    os.replace(ready_file + ".tmp", ready_file)
    print(json.dumps(ready), flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        for path in (ready_file, pid_file):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        app.shutdown()
        loops.stop()
        with store.lock:
            store.save()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.cmd == "serve":
        return serve(args)
    pki = PKI(os.path.abspath(args.state_dir))
    yaml.safe_dump(kubeconfig(pki, args.server, token=args.token), sys.stdout, sort_keys=False)
    return 0
