#!/usr/bin/env python3
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Plays CloudCore's part towards the Kubernetes API for the molecule `kubernetes` scenario.

There is no CloudCore in this scenario, only the API stand-in, so this process does, against the
API, what CloudCore does when one of its pods starts (KubeEdge cloud/pkg/cloudhub/servers/httpserver/
pre_server.go and cloud/cmd/cloudcore/app/server.go):

- a "start" is the Deployment kubeedge/cloudcore appearing or its pod template changing (a new
  config checksum, a rollout restart);
- at a start: Secret kubeedge/casecret (cadata = CA certificate DER, cakeydata = EC P-256 key,
  SEC 1 DER) is created when missing; Secret kubeedge/cloudcoresecret (cloudcoredata = server
  certificate DER, cloudcorekeydata = its key, SEC 1 DER), signed by that CA for the ConfigMap's
  cloudHub.advertiseAddress (IP SANs) + dnsNames, is created ONLY when missing, as CloudCore does;
- at a start, CloudCore rewrites its ConfigMap with its adjusted configuration
  (AdjustCloudCoreConfig: kubeAPIConfig.qps/burst from nodeLimit) in its own formatting.

Loopback only (the kubeconfig of the API stand-in), bounded in time (--duration), exits when the
API has been gone for a while. One process, no threads.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import ipaddress
import json
import os
import sys
import time
import urllib.parse

import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

# The CA and server certificates exactly as CloudCore makes them: shared with the lab's CloudCore
# stand-in (tests/lab/standin/kubeedge_pki.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "lab", "standin"))
from kubeedge_pki import new_ca, sign_server  # noqa: E402  pylint: disable=wrong-import-position

NS = "kubeedge"


def log(msg: str) -> None:
    print("%s %s" % (datetime.datetime.now().strftime("%H:%M:%S"), msg), flush=True)


def b64(data: bytes) -> str:
    import base64
    return base64.b64encode(data).decode("ascii")


def unb64(data: str) -> bytes:
    import base64
    return base64.b64decode(data)


class Standin:
    def __init__(self, core: client.CoreV1Api, apps: client.AppsV1Api) -> None:
        self.core = core
        self.apps = apps
        self.started = None  # type: str | None

    def _get_secret(self, name: str):
        try:
            return self.core.read_namespaced_secret(name, NS)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _create_secret(self, name: str, data: dict[str, bytes]) -> None:
        body = client.V1Secret(metadata=client.V1ObjectMeta(name=name, namespace=NS), type="Opaque",
                               data={k: b64(v) for k, v in data.items()})
        self.core.create_namespaced_secret(NS, body)

    def start(self) -> None:
        """What one CloudCore pod does when it starts."""
        cm = self.core.read_namespaced_config_map("cloudcore", NS)
        conf = yaml.safe_load((cm.data or {}).get("cloudcore.yaml", "")) or {}
        hub = (conf.get("modules") or {}).get("cloudHub") or {}
        ips = [str(a) for a in hub.get("advertiseAddress") or []]
        dns = [str(d) for d in hub.get("dnsNames") or [] if d]
        if not ips:
            log("advertiseAddress is empty: CloudCore would exit")
            return
        ca = self._get_secret("casecret")
        if ca is None:
            ca_der, ca_key = new_ca()
            self._create_secret("casecret", {"cadata": ca_der, "cakeydata": ca_key})
            log("created casecret")
        else:
            ca_der, ca_key = unb64(ca.data["cadata"]), unb64(ca.data["cakeydata"])
        if self._get_secret("cloudcoresecret") is None:
            cert, key = sign_server(ca_der, ca_key, ips, dns)
            self._create_secret("cloudcoresecret", {"cloudcoredata": cert, "cloudcorekeydata": key})
            log("created cloudcoresecret for IPs %s DNS %s" % (ips, dns))
        else:
            log("cloudcoresecret exists: kept (CloudCore signs only when it is missing)")
        self.adjust_config(cm, conf)

    def adjust_config(self, cm, conf: dict) -> None:
        node_limit = int(((conf.get("modules") or {}).get("cloudHub") or {}).get("nodeLimit") or 1000)
        api = conf.setdefault("kubeAPIConfig", {})
        if api.get("qps") == 5 * node_limit and api.get("burst") == 10 * node_limit:
            return
        api["qps"], api["burst"] = 5 * node_limit, 10 * node_limit
        for key in [k for k, v in api.items() if v in ("", None)]:  # Go omitempty
            del api[key]
        cm.data["cloudcore.yaml"] = yaml.safe_dump(conf, sort_keys=True)
        self.core.replace_namespaced_config_map("cloudcore", NS, cm)
        log("rewrote ConfigMap cloudcore with the adjusted configuration")

    def tick(self) -> None:
        try:
            dep = self.apps.read_namespaced_deployment("cloudcore", NS)
        except ApiException as exc:
            if exc.status == 404:
                self.started = None
                return
            raise
        template = client.ApiClient().sanitize_for_serialization(dep.spec.template)
        digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
        if digest != self.started:
            log("CloudCore (re)starts (pod template %s)" % digest[:12])
            self.start()
            self.started = digest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--duration", type=float, default=1800, help="exit after this many seconds")
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--gone-after", type=float, default=20, help="exit when the API is unreachable this long")
    parser.add_argument("--pidfile", default=None)
    args = parser.parse_args()
    if args.pidfile:
        with open(args.pidfile, "w", encoding="ascii") as f:
            f.write("%d\n" % os.getpid())
    config.load_kube_config(config_file=args.kubeconfig)
    host = urllib.parse.urlsplit(client.Configuration.get_default_copy().host).hostname or ""
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit("refusing a non-loopback API server: %s" % host)
    standin = Standin(client.CoreV1Api(), client.AppsV1Api())
    deadline = time.monotonic() + args.duration
    last_ok = time.monotonic()
    last_error = None
    log("watching %s (for at most %.0f s)" % (host, args.duration))
    while time.monotonic() < deadline:
        try:
            standin.tick()
            last_ok = time.monotonic()
        except ApiException as exc:
            log("API error %s: %s" % (exc.status, exc.reason))
        except (OSError, ValueError, yaml.YAMLError, urllib3.exceptions.HTTPError) as exc:
            if str(exc) != last_error:
                log("error: %s: %s" % (type(exc).__name__, exc))
            last_error = str(exc)
            if time.monotonic() - last_ok > args.gone_after:
                log("API gone for %.0f s: exit (%s)" % (args.gone_after, exc))
                return 0
        time.sleep(args.interval)
    log("duration reached: exit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
