# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The Kubernetes side of CloudCore HA: which rendered manifests to apply, and which nodes to label.

Controller-only (it needs PyYAML), used by the node_labels and manifests roles through the
cloudcore.ha.kubeedge_* filters; the KubeEdge release table lives in module_utils/_releases.py and the
inputs (labels, node names) are parsed by the site plan.

Whether the live ``cloudcore.yaml`` already holds our settings is decided by meaning, not by text:
CloudCore rewrites its own ConfigMap at start with its full, adjusted configuration
(cloud/cmd/cloudcore/app/server.go, ``updateCloudCoreConfigMap`` after ``AdjustCloudCoreConfig``), so
comparing strings would re-apply, and fight CloudCore, on every run.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import yaml

from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import InputError, parse_node_labels

NAMESPACE = "kubeedge"
CONFIGMAP = "cloudcore"


# ---------------------------------------------------------------- manifests

def documents(texts: Any, variable: str = "manifests") -> List[Dict[str, Any]]:
    """The Kubernetes objects in rendered multi-document YAML texts, in order; empty documents dropped."""
    if isinstance(texts, str):
        texts = [texts]
    out = []  # type: List[Dict[str, Any]]
    for index, text in enumerate(texts):
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            raise InputError("%s[%d]" % (variable, index), str(text)[:60], "is not valid YAML: %s" % exc)
        for doc in docs:
            if doc is None:
                continue
            if not isinstance(doc, dict) or not doc.get("apiVersion") or not doc.get("kind") \
                    or not isinstance(doc.get("metadata"), dict) or not doc["metadata"].get("name"):
                raise InputError("%s[%d]" % (variable, index), str(doc)[:60],
                                 "every document needs apiVersion, kind and metadata.name")
            out.append(doc)
    return out


def _is_zero(value: Any) -> bool:
    return value is None or value is False or value == 0 or value == "" or value == [] or value == {}


def covers(live: Any, desired: Any, keyed_lists: bool = False) -> bool:
    """Whether ``live`` holds every setting of ``desired``.

    Mappings: each desired key must be covered by the live value; a desired zero value (false, 0,
    "", [], {}) may be missing, because Go's ``omitempty`` drops it when CloudCore re-marshals its
    configuration. Lists: same length, element by element. Scalars: equal.

    ``keyed_lists``: a list of mappings is a set of items (a pod template's containers, ports, env,
    volumes: Kubernetes merges them by key and server-side apply may keep them in another order), so
    each desired item must be covered by a live item of its own, in any order.
    """
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return False
        for key, value in desired.items():
            if key not in live:
                if _is_zero(value):
                    continue
                return False
            if not covers(live[key], value, keyed_lists):
                return False
        return True
    if isinstance(desired, (list, tuple)):
        if not isinstance(live, (list, tuple)) or len(live) != len(desired):
            return False
        if keyed_lists and all(isinstance(item, Mapping) for item in desired):
            unused = list(live)
            for item in desired:
                match = next((index for index, candidate in enumerate(unused)
                              if covers(candidate, item, keyed_lists)), None)
                if match is None:
                    return False
                unused.pop(match)
            return True
        return all(covers(a, b, keyed_lists) for a, b in zip(live, desired))
    if isinstance(desired, bool) or isinstance(live, bool):
        return live is desired
    return live == desired


def config_covers(live_configmap: Optional[Mapping[str, Any]], desired_configmap: Mapping[str, Any]) -> bool:
    """Whether the live CloudCore ConfigMap already holds the desired cloudcore.yaml and labels."""
    if not live_configmap:
        return False
    live_labels = (live_configmap.get("metadata") or {}).get("labels") or {}
    if not covers(live_labels, (desired_configmap.get("metadata") or {}).get("labels") or {}):
        return False
    live_data = live_configmap.get("data") or {}
    desired_data = desired_configmap.get("data") or {}
    for key, text in desired_data.items():
        if key not in live_data:
            return False
        try:
            live_doc = yaml.safe_load(live_data[key])
            desired_doc = yaml.safe_load(text)
        except yaml.YAMLError:
            return False
        if not covers(live_doc, desired_doc):
            return False
    return True


PUBLIC_WEBSOCKET_PORT = 10000


def live_mode(live_configmap: Optional[Mapping[str, Any]]) -> str:
    """The HA mode the running CloudCores were configured for: "balanced" when cloudcore.yaml moved the
    websocket off the public port 10000 (haproxy holds it), "vip" when it did not, "absent" without a
    ConfigMap (a first install). A site switching modes is told by this against the plan."""
    if not live_configmap:
        return "absent"
    try:
        config = yaml.safe_load((live_configmap.get("data") or {}).get("cloudcore.yaml") or "") or {}
    except yaml.YAMLError:
        return "vip"
    websocket = (((config.get("modules") or {}).get("cloudHub") or {}).get("websocket") or {}) \
        if isinstance(config, Mapping) else {}
    port = websocket.get("port", PUBLIC_WEBSOCKET_PORT) if isinstance(websocket, Mapping) else PUBLIC_WEBSOCKET_PORT
    return "vip" if port == PUBLIC_WEBSOCKET_PORT else "balanced"


def _ident(doc: Mapping[str, Any]) -> Dict[str, str]:
    md = doc.get("metadata") or {}
    out = {"kind": str(doc.get("kind")), "name": str(md.get("name"))}
    if md.get("namespace"):
        out["namespace"] = str(md["namespace"])
    return out


def apply_plan(docs: Sequence[Mapping[str, Any]], existing_crds: Iterable[str] = (),
               live_configmap: Optional[Mapping[str, Any]] = None, install_crds: bool = True,
               namespace_exists: bool = True, check_mode: bool = False,
               live_deployment: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Split the rendered objects into what to apply (in order) and what to leave alone, with reasons.

    - CRDs: only with ``install_crds``, and only when missing: an installed CRD (keadm, Helm) carries
      the full schema and possibly older served versions; replacing it with our permissive one
      would lose validation, and dropping a stored version is refused by the API server.
    - the CloudCore ConfigMap: left alone when the live cloudcore.yaml already holds our settings.
    - check mode before the namespace exists: namespaced objects cannot be dry-run (the API server
      answers 404 for the namespace); they are listed as ``pending`` instead.
    - ``rollout``: the live Deployment's pod template lacks a setting of ours (a new version, a switch
      of HA mode), so the Deployment controller will replace every pod itself; the role's own restart
      is then redundant.
    - ``scale_down`` / ``scale_up``: the live Deployment has more / fewer replicas than the site has
      CloudCore nodes (a node leaves or joins the site).
    - ``wait``: the Deployment controller will replace, add or remove pods: wait for it.
    """
    present = set(existing_crds or ())
    apply, skipped, pending = [], [], []  # type: Tuple[List[Any], List[Any], List[Any]]
    for doc in docs:
        ident = _ident(doc)
        if doc.get("kind") == "CustomResourceDefinition":
            if not install_crds:
                skipped.append(dict(ident, reason="manifests_install_crds is false"))
                continue
            if ident["name"] in present:
                skipped.append(dict(ident, reason="exists; an installed CRD keeps its own schema"))
                continue
        if doc.get("kind") == "ConfigMap" and ident.get("namespace") == NAMESPACE and ident["name"] == CONFIGMAP \
                and config_covers(live_configmap, doc):
            skipped.append(dict(ident, reason="the live cloudcore.yaml already holds these settings"))
            continue
        if check_mode and not namespace_exists and ident.get("namespace"):
            pending.append(dict(ident, reason="would be created with namespace %s" % ident["namespace"]))
            continue
        apply.append(doc)
    # The Deployment goes last and on its own: CloudCore's certificates are issued between the two
    # (CloudCore reads them once, at start); a changed ConfigMap means its pods must restart.
    deploy = [doc for doc in apply if doc.get("kind") == "Deployment"]
    config_changed = any(doc.get("kind") == "ConfigMap" and (doc.get("metadata") or {}).get("name") == CONFIGMAP
                         for doc in apply) and live_configmap is not None
    rollout = live_deployment is not None and any(
        not covers(((live_deployment.get("spec") or {}).get("template")), (doc.get("spec") or {}).get("template"),
                   keyed_lists=True)
        for doc in deploy)
    live_replicas = ((live_deployment or {}).get("spec") or {}).get("replicas")
    planned_replicas = [(doc.get("spec") or {}).get("replicas") for doc in deploy]
    scale_down = live_replicas is not None and any(r is not None and r < live_replicas for r in planned_replicas)
    scale_up = live_replicas is not None and any(r is not None and r > live_replicas for r in planned_replicas)
    return {"apply": [doc for doc in apply if doc.get("kind") != "Deployment"], "deploy": deploy,
            "skipped": skipped, "pending": pending, "config_changed": config_changed, "rollout": rollout,
            "scale_down": scale_down, "scale_up": scale_up,
            "wait": rollout or scale_down or scale_up}


DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


def deletion_costs(pods: Sequence[Mapping[str, Any]], hosts_in_order: Sequence[str],
                   site: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """Each pod's deletion cost annotation (KEP-2255: the ReplicaSet controller removes the lowest
    first), from the order in which the role would restart the hosts (the VIP holder last): the n-th
    host's pod gets cost n, a pod on a node outside the plan 0, so it goes first."""
    hosts = site.get("host") or {}
    rank = {str((hosts.get(host) or {}).get("node_name")): index + 1 for index, host in enumerate(hosts_in_order)}
    out = []
    for pod in pods:
        node = str(((pod.get("spec") or {}).get("nodeName")) or "")
        out.append({"name": (pod.get("metadata") or {}).get("name"), "node": node,
                    "annotations": {DELETION_COST: str(rank.get(node, 0))}})
    return out


def rollout_complete(deployment: Optional[Mapping[str, Any]]) -> bool:
    """Whether the Deployment controller has replaced every pod and each new one is available
    (kubectl rollout status: observedGeneration, updated, total and available replicas)."""
    if not deployment:
        return False
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    replicas = spec.get("replicas", 1)
    return (status.get("observedGeneration", 0) >= (deployment.get("metadata") or {}).get("generation", 1)
            and status.get("updatedReplicas", 0) == replicas and status.get("replicas", 0) == replicas
            and status.get("availableReplicas", 0) == replicas)


def ready_pod(pods: Sequence[Mapping[str, Any]], excluding: Iterable[str] = ()) -> str:
    """The name of a pod that is Ready and not one of the uids `excluding` (the pods it replaces), or ""."""
    old = set(excluding)
    for pod in pods:
        metadata = pod.get("metadata") or {}
        if metadata.get("uid") in old or metadata.get("deletionTimestamp"):
            continue
        conditions = (pod.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            return str(metadata.get("name"))
    return ""


# ---------------------------------------------------------------- node labels

def node_label_plan(nodes: Sequence[Mapping[str, Any]], wanted: Sequence[str], label: Any,
                    prune: bool = False, unwanted: Sequence[str] = ()) -> Dict[str, Any]:
    """Which nodes get the label, which lose it, and which wanted nodes do not exist.

    ``nodes`` are Node objects (k8s_info resources). A node of ``unwanted`` (the hosts leaving the
    site) loses the label, and with ``prune`` so does every other node outside ``wanted``, when it
    carries one of the label's keys with our value.
    """
    label = parse_node_labels(label)
    existing = sorted(str((n.get("metadata") or {}).get("name")) for n in nodes)
    by_name = {str((n.get("metadata") or {}).get("name")): n for n in nodes}
    missing = [name for name in wanted if name not in by_name]
    # a node that carries the label already is left alone: a patch per node costs a module run each
    label_nodes = [name for name in wanted if name in by_name and not all(
        ((by_name[name].get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in label.items())]
    unlabel = []
    for name in existing:
        if name in wanted or not (prune or name in unwanted):
            continue
        labels = (by_name[name].get("metadata") or {}).get("labels") or {}
        if any(labels.get(k) == v for k, v in label.items()):
            unlabel.append(name)
    return {
        "existing": existing,
        "missing": missing,
        "label": label_nodes,
        "unlabel": unlabel,
        "labels": label,
        "remove": {k: None for k in label},
    }


def labelled_nodes(nodes: Sequence[Mapping[str, Any]], label: Any) -> List[str]:
    """Names of the nodes (k8s_info resources) that carry every key of the label with its value:
    the nodes a Deployment with this label as nodeSelector may run on."""
    label = parse_node_labels(label)
    names = []
    for node in nodes:
        metadata = node.get("metadata") or {}
        labels = metadata.get("labels") or {}
        if all(labels.get(key) == value for key, value in label.items()):
            names.append(str(metadata.get("name")))
    return sorted(names)
