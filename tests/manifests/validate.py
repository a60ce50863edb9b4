#!/usr/bin/env python
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Offline validation of the manifests role: render every template for every supported KubeEdge
release (with Ansible, through the role's own render tasks) and validate every object with
kubernetes-validate --strict against every Kubernetes minor from 1.28 to the newest it knows.
Also checks the contract of the objects (VIP in advertiseAddress, replicas, nodeSelector, probe,
no readinessGates, config apiVersion, CRD list, name order). Exit status 1 on any failure.

Run: .venv/bin/python tests/manifests/validate.py [-v]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import kubernetes_validate
import yaml
from kubernetes_validate import utils as kv_utils

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ROLE = ROOT / "roles" / "manifests"
FIRST_KUBERNETES = (1, 28)
NODES = ["ccha-node1", "ccha-node2", "ccha-node3"]


def load_kubeedge():
    """The KubeEdge release table (plugins/module_utils/_releases.py), imported as the collection's."""
    sys.path.insert(0, str(ROOT / ".build" / "collections"))
    from ansible_collections.cloudcore.ha.plugins.module_utils import _releases

    return _releases


def kubernetes_versions() -> list[str]:
    def key(v: str) -> tuple[int, ...]:
        return tuple(int(x) for x in v.split("."))
    seen = sorted(set(kv_utils.all_versions()), key=key)
    return [v for v in seen if key(v)[:2] >= FIRST_KUBERNETES]


def cases(kubeedge) -> list[dict]:
    out = []
    for major, minor in sorted(kubeedge.RELEASES):
        patch = kubeedge.DEFAULT_VERSION if kubeedge.DEFAULT_VERSION.startswith("%d.%d." % (major, minor)) \
            else "%d.%d.0" % (major, minor)
        out.append({"name": "%s-ipv4" % patch, "version": patch, "vip": "10.213.102.100/24", "dns_names": [],
                    "label": {"kubeedge.io/cloudcore-ha": "true"}})
        out.append({"name": "%s-ipv6-dns" % patch, "version": patch, "vip": "fd00:213::100/64",
                    "dns_names": ["cloudcore.example.internal"], "label": {"example.io/cloudcore": "yes"}})
    return out


def render(case_list: list[dict], out_dir: str) -> None:
    env = dict(os.environ)
    env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", "%s:%s" % (ROOT / ".build/collections", ROOT / ".build/deps"))
    env["ANSIBLE_LOCALHOST_WARNING"] = "false"
    env["ANSIBLE_INVENTORY_UNPARSED_WARNING"] = "false"
    extra = Path(out_dir) / "cases.json"
    extra.write_text(json.dumps({"cases": case_list, "out_dir": out_dir}))
    playbook = Path(sys.executable).parent / "ansible-playbook"
    cmd = [str(playbook) if playbook.exists() else "ansible-playbook", "-i", str(HERE / "inventory.yml"),
           str(HERE / "render.yml"), "-e", "@%s" % extra]
    proc = subprocess.run(cmd, env=env, cwd=str(ROOT), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout[-4000:])
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit("rendering failed (ansible-playbook exit %d)" % proc.returncode)


def contract(case: dict, release: dict, docs: list[dict]) -> list[str]:
    """Our own rules for the rendered objects; returns the problems found."""
    problems = []
    kinds = [(d["kind"], d["metadata"]["name"]) for d in docs]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    expected_order = ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"] \
        + ["CustomResourceDefinition"] * len(release["crds"]) + ["ConfigMap", "Deployment"]
    if [k for k, _name in kinds] != expected_order:
        problems.append("object order %s, expected %s" % ([k for k, _name in kinds], expected_order))
    crd_names = [d["metadata"]["name"] for d in by_kind.get("CustomResourceDefinition", [])]
    if crd_names != release["crd_names"]:
        problems.append("CRDs %s, expected %s" % (crd_names, release["crd_names"]))
    for d in by_kind.get("CustomResourceDefinition", []):
        storage = [v["name"] for v in d["spec"]["versions"] if v["storage"]]
        if len(storage) != 1:
            problems.append("%s: %d storage versions" % (d["metadata"]["name"], len(storage)))
    address = str(ipaddress.ip_interface(case["vip"]).ip)
    cm = by_kind.get("ConfigMap", [{}])[0]
    config = yaml.safe_load(cm.get("data", {}).get("cloudcore.yaml", "")) or {}
    hub = config.get("modules", {}).get("cloudHub", {})
    if config.get("apiVersion") != release["config_api_version"]:
        problems.append("cloudcore.yaml apiVersion %r" % config.get("apiVersion"))
    if hub.get("advertiseAddress") != [address]:
        problems.append("advertiseAddress %r, expected [%r]" % (hub.get("advertiseAddress"), address))
    if hub.get("dnsNames") != case["dns_names"]:
        problems.append("dnsNames %r, expected %r" % (hub.get("dnsNames"), case["dns_names"]))
    if hub.get("https", {}).get("port") != 10002 or hub.get("https", {}).get("enable") is not True:
        problems.append("cloudHub.https must serve on 10002")
    dep = by_kind.get("Deployment", [{}])[0]
    spec = dep.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    if spec.get("replicas") != len(NODES):
        problems.append("replicas %r, expected %d" % (spec.get("replicas"), len(NODES)))
    if pod.get("nodeSelector") != case["label"]:
        problems.append("nodeSelector %r, expected %r" % (pod.get("nodeSelector"), case["label"]))
    if pod.get("hostNetwork") is not True:
        problems.append("hostNetwork must be true")
    if "readinessGates" in pod:
        problems.append("readinessGates must be absent (nothing sets kubeedge.io/CloudCoreIsLeader since KubeEdge 1.7)")
    container = (pod.get("containers") or [{}])[0]
    probe = container.get("readinessProbe", {}).get("httpGet", {})
    if (probe.get("scheme"), probe.get("port"), probe.get("path")) != ("HTTPS", 10002, "/ca.crt"):
        problems.append("readinessProbe %r" % probe)
    if container.get("image") != "kubeedge/cloudcore:v%s" % case["version"]:
        problems.append("image %r" % container.get("image"))
    env_names = [e["name"] for e in container.get("env", [])]
    if env_names != ["CLOUDCORE_POD_NAME", "CLOUDCORE_POD_NAMESPACE"]:
        problems.append("env %r" % env_names)
    anti = pod.get("affinity", {}).get("podAntiAffinity", {}).get("requiredDuringSchedulingIgnoredDuringExecution", [])
    if not anti or anti[0].get("topologyKey") != "kubernetes.io/hostname":
        problems.append("required podAntiAffinity per hostname missing")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    kubeedge = load_kubeedge()
    failures = []
    templates = sorted(p.name for p in (ROLE / "templates").glob("[0-9]*.yaml.j2"))
    role_vars = yaml.safe_load((ROLE / "vars/main.yml").read_text())
    if role_vars["_manifests_templates"] != templates:
        failures.append("roles/manifests/vars/main.yml _manifests_templates %r is not every manifest template in "
                        "name order %r" % (role_vars["_manifests_templates"], templates))
    k8s_versions = kubernetes_versions()
    case_list = cases(kubeedge)
    checks = 0
    objects = 0
    with tempfile.TemporaryDirectory(prefix="ccha-manifests-") as out_dir:
        render(case_list, out_dir)
        for case in case_list:
            docs = json.loads((Path(out_dir) / ("%s.json" % case["name"])).read_text())
            release = kubeedge.release_facts(case["version"])
            objects += len(docs)
            for problem in contract(case, release, docs):
                failures.append("%s: %s" % (case["name"], problem))
            checks += 1
            for doc in docs:
                for version in k8s_versions:
                    checks += 1
                    try:
                        kubernetes_validate.validate(doc, version, strict=True)
                    except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as exc:
                        failures.append("%s: %s %s on Kubernetes %s: %s" % (
                            case["name"], doc["kind"], doc["metadata"]["name"], version,
                            getattr(exc, "message", str(exc))))
                if args.verbose:
                    print("ok %s %s/%s" % (case["name"], doc["kind"], doc["metadata"]["name"]))
    for failure in failures:
        print("FAIL", failure)
    print("manifests: %d KubeEdge releases (%s), %d cases, %d objects, Kubernetes %s..%s (%d minors), "
          "%d checks, %d failures" % (
              len(kubeedge.RELEASES), ", ".join(kubeedge.supported_minors()), len(case_list), objects,
              k8s_versions[0].rsplit(".", 1)[0], k8s_versions[-1].rsplit(".", 1)[0], len(k8s_versions),
              checks, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
