"""Resource types the stand-in serves: built-in kinds and the kinds of admitted CRDs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .validation import NAME_LABEL, NAME_PATH, NAME_SUBDOMAIN

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update"]


@dataclass
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: list[str] = field(default_factory=list)
    subresources: tuple[str, ...] = ()
    name_rule: str = NAME_SUBDOMAIN
    generation: bool = False          # metadata.generation bumps on non-metadata changes
    status_subresource: bool = False  # main-resource writes keep the stored status
    categories: list[str] = field(default_factory=list)
    crd: dict[str, Any] | None = None  # the CRD version entry for custom resources

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    def discovery(self) -> list[dict[str, Any]]:
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular or self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(VERBS),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        out = [entry]
        for sub in self.subresources:
            sub_entry = {"name": f"{self.plural}/{sub}", "singularName": "", "namespaced": self.namespaced,
                         "kind": self.kind, "verbs": ["get", "patch", "update"]}
            if sub == "scale":
                sub_entry.update(group="autoscaling", version="v1", kind="Scale")
            out.append(sub_entry)
        return out


def _rt(group: str, version: str, plural: str, kind: str, namespaced: bool, **kw: Any) -> ResourceType:
    return ResourceType(group, version, plural, kind, namespaced, **kw)


BUILTIN: list[ResourceType] = [
    _rt("", "v1", "namespaces", "Namespace", False, short_names=["ns"], subresources=("status",),
        name_rule=NAME_LABEL, status_subresource=True),
    _rt("", "v1", "nodes", "Node", False, short_names=["no"], subresources=("status",), status_subresource=True),
    _rt("", "v1", "configmaps", "ConfigMap", True, short_names=["cm"]),
    _rt("", "v1", "secrets", "Secret", True),
    _rt("", "v1", "serviceaccounts", "ServiceAccount", True, short_names=["sa"]),
    _rt("", "v1", "services", "Service", True, short_names=["svc"], subresources=("status",),
        name_rule=NAME_LABEL, status_subresource=True, categories=["all"]),
    _rt("", "v1", "endpoints", "Endpoints", True, short_names=["ep"]),
    _rt("", "v1", "pods", "Pod", True, short_names=["po"], subresources=("status",), status_subresource=True,
        categories=["all"]),
    _rt("", "v1", "events", "Event", True, short_names=["ev"]),
    _rt("apps", "v1", "deployments", "Deployment", True, short_names=["deploy"],
        subresources=("status", "scale"), generation=True, status_subresource=True, categories=["all"]),
    _rt("apps", "v1", "replicasets", "ReplicaSet", True, short_names=["rs"],
        subresources=("status", "scale"), generation=True, status_subresource=True, categories=["all"]),
    _rt("apps", "v1", "daemonsets", "DaemonSet", True, short_names=["ds"], subresources=("status",),
        generation=True, status_subresource=True, categories=["all"]),
    _rt("apps", "v1", "statefulsets", "StatefulSet", True, short_names=["sts"],
        subresources=("status", "scale"), generation=True, status_subresource=True, categories=["all"]),
    _rt("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False, name_rule=NAME_PATH),
    _rt("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False, name_rule=NAME_PATH),
    _rt("rbac.authorization.k8s.io", "v1", "roles", "Role", True, name_rule=NAME_PATH),
    _rt("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True, name_rule=NAME_PATH),
    _rt("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False,
        short_names=["crd", "crds"], subresources=("status",), generation=True, status_subresource=True,
        categories=["api-extensions"]),
    _rt("coordination.k8s.io", "v1", "leases", "Lease", True),
]

_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(v: str) -> tuple[int, int, int, str]:
    """Kubernetes version priority: GA > beta > alpha, then by number; others last, alphabetically."""
    m = _VERSION_RE.match(v)
    if not m:
        return (0, 0, 0, v)
    major, level, minor = m.groups()
    rank = {None: 3, "beta": 2, "alpha": 1}[level]
    return (rank, int(major), int(minor or 0), "")


def crd_resource_types(crd: dict[str, Any]) -> list[ResourceType]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out = []
    for ver in spec.get("versions") or []:
        if not ver.get("served", True):
            continue
        subs = ver.get("subresources") or {}
        out.append(ResourceType(
            group=spec.get("group", ""), version=ver.get("name", ""), plural=names.get("plural", ""),
            kind=names.get("kind", ""), namespaced=spec.get("scope") == "Namespaced",
            singular=names.get("singular") or names.get("kind", "").lower(),
            short_names=list(names.get("shortNames") or []),
            subresources=tuple(s for s in ("status", "scale") if s in subs),
            generation=True, status_subresource="status" in subs,
            categories=list(names.get("categories") or []), crd=ver,
        ))
    return out
