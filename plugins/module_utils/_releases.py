# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The KubeEdge releases the collection deploys, and the parser of cloudcore_version.

Per supported KubeEdge minor: the CloudCore config apiVersion, the CRDs CloudCore watches and the
ClusterRole rules it needs (least privilege for the configuration the manifests role writes:
cloudStream, router, dynamicController, taskManager and requireAuthorization off).

Plain Python without Ansible imports (the site plan uses it on the controller).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import InputError

CONFIG_V1ALPHA2 = "cloudcore.config.kubeedge.io/v1alpha2"


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
        raise InputError(variable, version,
                         "expected a KubeEdge release as MAJOR.MINOR.PATCH, e.g. %s (a string; "
                         "quote it in YAML)" % DEFAULT_VERSION)
    major, minor, patch = (int(g) for g in match.groups())
    if (major, minor) not in RELEASES:
        raise InputError(variable, version,
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


_IMAGE_TAG_RE = re.compile(r":v?(\d+)\.(\d+)\.(\d+)(?:[-+@][^:/]*)?$")


def image_version(image: Any) -> Optional[Tuple[int, int, int]]:
    """The KubeEdge release of a CloudCore image reference (kubeedge/cloudcore:v1.23.1), or None
    when its tag is not a release (a digest, latest, a custom build)."""
    match = _IMAGE_TAG_RE.search(str(image)) if isinstance(image, str) else None
    return tuple(int(g) for g in match.groups()) if match else None  # type: ignore[return-value]


def downgrade_rule(planned: str, running_image: Any) -> Optional[str]:
    """Why going from the running CloudCore image to release `planned` is refused (None: allowed).

    A newer minor release stores objects its predecessor cannot read back (1.23's DeviceStatus CRD,
    the CloudCore configuration), and KubeEdge documents upgrades only: a downgrade across a minor
    release is refused. A patch release down within the same minor is allowed."""
    running = image_version(running_image)
    if running is None:
        return None
    major, minor, _patch = parse_version(planned)
    if (major, minor) < running[:2]:
        return ("is older than the running CloudCore %d.%d.%d (image %s): a downgrade across a minor release is"
                " refused (KubeEdge upgrades one way; restore from a backup, or reset the site and install %s)"
                % (running + (running_image, planned)))
    return None
