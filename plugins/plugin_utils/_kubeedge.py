# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The Kubernetes side of CloudCore HA: which KubeEdge releases we deploy, and the decisions around them.

Plain Python without Ansible imports, used by the node_labels and manifests roles through the
cloudcore.ha.kubeedge_* filters:

- the release table: per supported KubeEdge minor, the CloudCore config apiVersion, the CRDs
  CloudCore watches and the ClusterRole rules it needs (least privilege for the configuration the
  manifests role writes: cloudStream, router, dynamicController, taskManager and
  requireAuthorization off);
- which nodes to label (and unlabel), and which of the rendered manifests to apply;
- whether the live ``cloudcore.yaml`` already holds our settings: CloudCore rewrites its own
  ConfigMap at start with its full, adjusted configuration (cloud/cmd/cloudcore/app/server.go,
  ``updateCloudCoreConfigMap`` after ``AdjustCloudCoreConfig``), so comparing strings would
  re-apply, and fight CloudCore, on every run.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import yaml

NAMESPACE = "kubeedge"
CONFIGMAP = "cloudcore"
# KubeEdge keeps CloudCore's serving certificate in Secret kubeedge/cloudcoresecret (data keys
# cloudcoredata = certificate DER, cloudcorekeydata = EC key, SEC 1 DER) and its CA in
# kubeedge/casecret (cadata, cakeydata); cloud/pkg/cloudhub/servers/httpserver/pre_server.go.
CERT_SECRET = "cloudcoresecret"
CERT_KEY = "cloudcoredata"
CA_SECRET = "casecret"

CONFIG_V1ALPHA2 = "cloudcore.config.kubeedge.io/v1alpha2"


class KubeEdgeError(ValueError):
    """A value the Kubernetes side cannot use; names the variable, the value and the rule."""

    def __init__(self, variable: str, value: Any, rule: str):
        self.variable = variable
        self.value = value
        self.rule = rule
        super().__init__("%s=%r: %s" % (variable, value, rule))


@dataclass(frozen=True)
class Crd:
    """A KubeEdge CRD as we install it: names and versions, a permissive schema (see the template)."""

    group: str
    kind: str
    plural: str
    versions: Tuple[str, ...]
    scope: str = "Namespaced"

    @property
    def name(self) -> str:
        return "%s.%s" % (self.plural, self.group)

    def as_dict(self) -> Dict[str, Any]:
        storage = self.versions[-1]
        return {
            "name": self.name,
            "group": self.group,
            "kind": self.kind,
            "list_kind": self.kind + "List",
            "plural": self.plural,
            "singular": self.kind.lower(),
            "scope": self.scope,
            "versions": [{"name": v, "served": True, "storage": v == storage} for v in self.versions],
        }


@dataclass(frozen=True)
class Release:
    minor: Tuple[int, int]
    config_api_version: str
    crds: Tuple[Crd, ...]
    rules: Tuple[Dict[str, Any], ...]
    note: str


_READ = ["get", "list", "watch"]
_WRITE = ["get", "list", "watch", "create", "update", "patch", "delete"]

DEVICE = Crd("devices.kubeedge.io", "Device", "devices", ("v1beta1",))
DEVICE_MODEL = Crd("devices.kubeedge.io", "DeviceModel", "devicemodels", ("v1beta1",))
DEVICE_STATUS = Crd("devices.kubeedge.io", "DeviceStatus", "devicestatuses", ("v1beta1",))
OBJECT_SYNC = Crd("reliablesyncs.kubeedge.io", "ObjectSync", "objectsyncs", ("v1alpha1",))
CLUSTER_OBJECT_SYNC = Crd("reliablesyncs.kubeedge.io", "ClusterObjectSync", "clusterobjectsyncs",
                          ("v1alpha1",), scope="Cluster")
RULE = Crd("rules.kubeedge.io", "Rule", "rules", ("v1",))
RULE_ENDPOINT = Crd("rules.kubeedge.io", "RuleEndpoint", "ruleendpoints", ("v1",))


def _core_rules() -> List[Dict[str, Any]]:
    """The chart's cloudcore-common rules without what our configuration never uses.

    Dropped from upstream (manifests/charts/cloudcore/templates/rbac_cloudcore.yaml): write access
    to CustomResourceDefinitions (CloudCore only reads them; this role installs them),
    networking.istio.io (EdgeMesh's old path) and operations.kubeedge.io (taskManager is off).
    """
    return [
        {"apiGroups": [""],
         "resources": ["nodes", "nodes/status", "serviceaccounts/token", "configmaps", "pods", "pods/status",
                       "secrets", "endpoints", "services", "persistentvolumes", "persistentvolumeclaims"],
         "verbs": ["get", "list", "watch", "create", "update"]},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "create", "list", "watch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "update", "patch"]},
        {"apiGroups": [""], "resources": ["nodes", "nodes/status", "pods/status"], "verbs": ["patch"]},
        {"apiGroups": [""], "resources": ["pods", "configmaps"], "verbs": ["delete"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
         "verbs": ["get", "list", "watch", "create", "update"]},
        {"apiGroups": ["reliablesyncs.kubeedge.io"],
         "resources": ["objectsyncs", "clusterobjectsyncs", "objectsyncs/status", "clusterobjectsyncs/status"],
         "verbs": list(_WRITE)},
        {"apiGroups": ["rules.kubeedge.io"],
         "resources": ["rules", "ruleendpoints", "rules/status", "ruleendpoints/status"],
         "verbs": list(_WRITE)},
        {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": list(_READ)},
    ]


def _device_rule(resources: Sequence[str]) -> Dict[str, Any]:
    return {"apiGroups": ["devices.kubeedge.io"], "resources": list(resources), "verbs": list(_WRITE)}


_DEVICES_1_22 = ["devices", "devicemodels", "devices/status", "devicemodels/status"]
_DEVICES_1_23 = _DEVICES_1_22 + ["devicestatuses", "devicestatuses/status"]

RELEASES = {
    (1, 22): Release(
        minor=(1, 22),
        config_api_version=CONFIG_V1ALPHA2,
        crds=(DEVICE, DEVICE_MODEL, OBJECT_SYNC, CLUSTER_OBJECT_SYNC, RULE, RULE_ENDPOINT),
        rules=tuple(_core_rules() + [_device_rule(_DEVICES_1_22)]),
        note="device model carries protocolConfigData/visitors (thing model); vendored Kubernetes 1.31",
    ),
    (1, 23): Release(
        minor=(1, 23),
        config_api_version=CONFIG_V1ALPHA2,
        crds=(DEVICE, DEVICE_MODEL, DEVICE_STATUS, OBJECT_SYNC, CLUSTER_OBJECT_SYNC, RULE, RULE_ENDPOINT),
        rules=tuple(_core_rules() + [_device_rule(_DEVICES_1_23)]),
        note="device status moved to the DeviceStatus CRD (kubeedge #6534); vendored Kubernetes 1.32",
    ),
}
DEFAULT_VERSION = "1.23.1"

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")


def supported_minors() -> List[str]:
    return ["%d.%d" % m for m in sorted(RELEASES)]


def parse_version(version: Any, variable: str = "cloudcore_version") -> Tuple[int, int, int]:
    match = _VERSION_RE.match(str(version).strip()) if isinstance(version, str) else None
    if not match:
        raise KubeEdgeError(variable, version,
                            "expected a KubeEdge release as MAJOR.MINOR.PATCH, e.g. %s (a string; "
                            "quote it in YAML)" % DEFAULT_VERSION)
    major, minor, patch = (int(g) for g in match.groups())
    if (major, minor) not in RELEASES:
        raise KubeEdgeError(variable, version,
                            "KubeEdge %d.%d is not supported; supported releases: %s"
                            % (major, minor, ", ".join(m + ".x" for m in supported_minors())))
    return major, minor, patch


def release_facts(version: Any, variable: str = "cloudcore_version") -> Dict[str, Any]:
    """Everything the templates need to know about one KubeEdge release."""
    major, minor, patch = parse_version(version, variable)
    release = RELEASES[(major, minor)]
    normalized = "%d.%d.%d" % (major, minor, patch)
    return {
        "version": normalized,
        "minor": "%d.%d" % (major, minor),
        "image_tag": "v" + normalized,
        "config_api_version": release.config_api_version,
        "crds": [crd.as_dict() for crd in release.crds],
        "crd_names": [crd.name for crd in release.crds],
        "rbac_rules": [dict(rule) for rule in release.rules],
        "note": release.note,
        "supported": supported_minors(),
    }


def vip_address(vip: Any, variable: str = "cloudcore_vip") -> str:
    """The VIP's address without prefix length, as CloudCore wants it in advertiseAddress."""
    if vip is None or str(vip).strip() == "":
        raise KubeEdgeError(variable, vip, "is required: the VIP with its prefix, e.g. 10.10.102.242/24")
    try:
        interface = ipaddress.ip_interface(str(vip).strip())
    except ValueError:
        raise KubeEdgeError(variable, vip, "expected an IPv4 or IPv6 address with prefix, e.g. 10.10.102.242/24")
    return str(interface.ip)


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
            raise KubeEdgeError("%s[%d]" % (variable, index), str(text)[:60], "is not valid YAML: %s" % exc)
        for doc in docs:
            if doc is None:
                continue
            if not isinstance(doc, dict) or not doc.get("apiVersion") or not doc.get("kind") \
                    or not isinstance(doc.get("metadata"), dict) or not doc["metadata"].get("name"):
                raise KubeEdgeError("%s[%d]" % (variable, index), str(doc)[:60],
                                    "every document needs apiVersion, kind and metadata.name")
            out.append(doc)
    return out


def _is_zero(value: Any) -> bool:
    return value is None or value is False or value == 0 or value == "" or value == [] or value == {}


def covers(live: Any, desired: Any) -> bool:
    """Whether ``live`` holds every setting of ``desired``.

    Mappings: each desired key must be covered by the live value; a desired zero value (false, 0,
    "", [], {}) may be missing, because Go's ``omitempty`` drops it when CloudCore re-marshals its
    configuration. Lists: same length, element by element. Scalars: equal.
    """
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return False
        for key, value in desired.items():
            if key not in live:
                if _is_zero(value):
                    continue
                return False
            if not covers(live[key], value):
                return False
        return True
    if isinstance(desired, (list, tuple)):
        if not isinstance(live, (list, tuple)) or len(live) != len(desired):
            return False
        return all(covers(a, b) for a, b in zip(live, desired))
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


def _ident(doc: Mapping[str, Any]) -> Dict[str, str]:
    md = doc.get("metadata") or {}
    out = {"kind": str(doc.get("kind")), "name": str(md.get("name"))}
    if md.get("namespace"):
        out["namespace"] = str(md["namespace"])
    return out


def apply_plan(docs: Sequence[Mapping[str, Any]], existing_crds: Iterable[str] = (),
               live_configmap: Optional[Mapping[str, Any]] = None, install_crds: bool = True,
               namespace_exists: bool = True, check_mode: bool = False) -> Dict[str, Any]:
    """Split the rendered objects into what to apply (in order) and what to leave alone, with reasons.

    - CRDs: only with ``install_crds``, and only when missing: an installed CRD (keadm, Helm) carries
      the full schema and possibly older served versions; replacing it with our permissive one
      would lose validation, and dropping a stored version is refused by the API server.
    - the CloudCore ConfigMap: left alone when the live cloudcore.yaml already holds our settings.
    - check mode before the namespace exists: namespaced objects cannot be dry-run (the API server
      answers 404 for the namespace); they are listed as ``pending`` instead.
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
    return {"apply": apply, "skipped": skipped, "pending": pending}


# ---------------------------------------------------------------- node labels

_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def check_label(label: Any, variable: str = "cloudcore_node_label") -> Dict[str, str]:
    """A non-empty mapping of valid Kubernetes label keys to string values."""
    if not isinstance(label, Mapping) or not label:
        raise KubeEdgeError(variable, label, "expected a non-empty mapping of label key to value, "
                            "e.g. {kubeedge.io/cloudcore-ha: \"true\"}")
    out = {}
    for key, value in label.items():
        if not isinstance(key, str):
            raise KubeEdgeError(variable, label, "label key %r is not a string" % (key,))
        prefix, _separator, name = key.rpartition("/")
        if (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix))) \
                or len(name) > 63 or not _LABEL_NAME.match(name):
            raise KubeEdgeError(variable, label, "%r is not a valid label key ([prefix/]name)" % key)
        if not isinstance(value, str):
            raise KubeEdgeError(variable, label, "the value of %r must be a string (quote it in YAML: \"%s\")"
                                % (key, str(value).lower() if isinstance(value, bool) else value))
        if len(value) > 63 or not _LABEL_VALUE.match(value):
            raise KubeEdgeError(variable, label, "%r is not a valid label value for %r" % (value, key))
        out[key] = value
    return out


def node_names(hosts: Sequence[str], hostvars: Mapping[str, Any], variable: str = "cloudcore_node_name") -> List[str]:
    """Each host's Kubernetes node name: its ``cloudcore_node_name``, default the inventory name."""
    names = []
    for host in hosts:
        name = None
        try:
            name = hostvars[host].get(variable)
        except (KeyError, AttributeError):
            name = None
        if name in (None, ""):
            name = host
        names.append(str(name))
    seen = set()
    for host, name in zip(hosts, names):
        if name in seen:
            raise KubeEdgeError(variable, name, "two hosts of the cloudcore group map to node %r (%s)"
                                % (name, ", ".join(h for h, n in zip(hosts, names) if n == name)))
        seen.add(name)
    return names


def node_label_plan(nodes: Sequence[Mapping[str, Any]], wanted: Sequence[str], label: Any,
                    prune: bool = False) -> Dict[str, Any]:
    """Which nodes get the label, which lose it (with ``prune``), and which wanted nodes do not exist.

    ``nodes`` are Node objects (k8s_info resources). A node outside ``wanted`` loses the label when
    it carries one of the label's keys with our value.
    """
    label = check_label(label)
    existing = sorted(str((n.get("metadata") or {}).get("name")) for n in nodes)
    by_name = {str((n.get("metadata") or {}).get("name")): n for n in nodes}
    missing = [name for name in wanted if name not in by_name]
    label_nodes = [name for name in wanted if name in by_name]
    unlabel = []
    if prune:
        for name in existing:
            if name in wanted:
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
    label = check_label(label)
    names = []
    for node in nodes:
        metadata = node.get("metadata") or {}
        labels = metadata.get("labels") or {}
        if all(labels.get(key) == value for key, value in label.items()):
            names.append(str(metadata.get("name")))
    return sorted(names)
