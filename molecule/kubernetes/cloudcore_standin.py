#!/usr/bin/env python
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lab's CloudCore stand-in for the molecule `kubernetes` scenario: a kubelet + CloudCore per Node.

There are no lab nodes in this scenario, only the API stand-in on 127.0.0.1. This runs the same
code as the lab nodes (tests/lab/standin/cloudcore_standin.py, ``supervise`` mode): one stand-in
process per Node of the API, each the kubelet of that node for the pod of Deployment
kubeedge/cloudcore bound to it, and that pod's CloudCore v1.23.1 (random start delay, tunnel port,
ConfigMap rewrite, casecret/cloudcoresecret/tokensecret as upstream, read once per pod). Node k
serves CloudCore's HTTPS on 127.0.1.k (the port of the ConfigMap, 10002), so the pods' readiness
probes pass; the CloudHub transport is off (no ports beyond loopback HTTPS on the controller).
A process ends when its pod is deleted or replaced and is started again 2 s later, like the unit.

Loopback only (the kubeconfig of the API stand-in), bounded in time (--duration), exits when the
API has been gone for --gone-after seconds.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
import tempfile
import time
import urllib.parse

STANDIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "lab", "standin")
sys.path.insert(0, STANDIN)
import cloudcore_standin  # noqa: E402  pylint: disable=wrong-import-position
from kubeclient import KubeClient, KubeError  # noqa: E402  pylint: disable=wrong-import-position


def node_configs(api: KubeClient, kubeconfig: str, directory: str, poll: float) -> list[str]:
    """One standin.json per Node: its name, its InternalIP, its own loopback address."""
    paths = []
    nodes = sorted(api.list("/api/v1/nodes"), key=lambda n: n["metadata"]["name"])
    for index, node in enumerate(nodes, start=1):
        name = node["metadata"]["name"]
        ips = [a.get("address") for a in (node.get("status") or {}).get("addresses") or [] if a.get("type") == "InternalIP"]
        config = {"node": name, "kubeconfig": kubeconfig, "listen_address": f"127.0.1.{index}",
                  "host_ip": ips[0] if ips else f"127.0.1.{index}", "cloudhub": False, "poll_seconds": poll}
        path = os.path.join(directory, f"{name}.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(config, handle)
        paths.append(path)
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--duration", type=float, default=1800, help="exit after this many seconds")
    parser.add_argument("--interval", type=float, default=0.5, help="the kubelets' API poll")
    parser.add_argument("--gone-after", type=float, default=20, help="exit when the API is unreachable this long")
    parser.add_argument("--pidfile", default=None)
    args = parser.parse_args()
    kubeconfig = os.path.abspath(args.kubeconfig)
    api = KubeClient(kubeconfig, timeout=3)
    host = urllib.parse.urlsplit(api.server).hostname or ""
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit("refusing a non-loopback API server: %s" % host)
    directory = tempfile.mkdtemp(prefix="cloudcore-standin-")
    paths = node_configs(api, kubeconfig, directory, args.interval)
    if args.pidfile:
        with open(args.pidfile, "w", encoding="ascii") as handle:
            handle.write("%d\n" % os.getpid())
    print("kubelet + CloudCore for %s (API %s, at most %.0f s)" % (
        ", ".join(os.path.basename(p)[:-5] for p in paths), host, args.duration), flush=True)
    last_ok = [time.monotonic()]

    def alive() -> bool:
        try:
            api.get("/version")
            last_ok[0] = time.monotonic()
        except KubeError:
            if time.monotonic() - last_ok[0] > args.gone_after:
                print("API gone for %.0f s: exit" % args.gone_after, flush=True)
                return False
        return True

    return cloudcore_standin.supervise(paths, restart_seconds=2, duration=args.duration, alive=alive)


if __name__ == "__main__":
    sys.exit(main())
