"""In-memory object store with the API server's write semantics (admission, versions, cascades).

One re-entrant lock serialises every read and write; an optional JSON state file is rewritten
atomically after every change and loaded on start.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import ipaddress
import json
import os
import random
import string
import threading
import uuid
from typing import Any

import yaml

from . import errors as E
from . import patch as P
from . import schema as sch
from .registry import BUILTIN, ResourceType, crd_resource_types, version_priority
from .labelsel import match_label_selector_object, parse_field_selector, parse_label_selector
from .validation import (annotation_errors, drop_fields, label_errors, name_errors, schema_check,
                         secret_data_errors, NAME_LABEL)
from . import crvalidation
from .nodes import node_object

Key = tuple[str, str, str, str]  # group, plural, namespace ("" if cluster-scoped), name

FIELD_VALIDATION = ("Strict", "Warn", "Ignore")
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSONPATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"
APPLY_CBOR = "application/apply-patch+cbor"
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
RETURN_OBJECT_ON_DELETE = {("", "namespaces"), ("", "pods"), ("apiextensions.k8s.io", "customresourcedefinitions")}


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _strip_volatile(obj: dict[str, Any]) -> dict[str, Any]:
    o = copy.deepcopy(obj)
    md = o.get("metadata") or {}
    for k in ("resourceVersion", "managedFields", "generation"):
        md.pop(k, None)
    return o


class WriteResult:
    def __init__(self, obj: dict[str, Any], created: bool = False, warnings: list[str] | None = None):
        self.obj = obj
        self.created = created
        self.warnings = warnings or []


class Store:
    def __init__(self, state_file: str | None = None, field_validation: str = "Strict",
                 kube_version: str = "1.37.0") -> None:
        self.lock = threading.RLock()
        self.rv = 0
        self.objects: dict[Key, dict[str, Any]] = {}
        self.applied: dict[str, Any] = {}  # "group|plural|ns|name|manager" -> last applied config
        self.state_file = state_file
        self.default_field_validation = field_validation
        self.kube_version = kube_version
        self._crd_types: dict[tuple[str, str, str], ResourceType] = {}
        self._next_cluster_ip = 10
        # controllers.py hooks: called after every change; kinds whose status a controller owns
        self.on_change: list = []
        self.controlled_kinds: set[tuple[str, str]] = set()
        if state_file and os.path.exists(state_file):
            self._load()
        self._seed_namespaces()

    # ---------------------------------------------------------------- persistence
    def _load(self) -> None:
        with open(self.state_file, encoding="utf-8") as f:  # type: ignore[arg-type]
            data = json.load(f)
        self.rv = int(data.get("resourceVersion", 0))
        self._next_cluster_ip = int(data.get("nextClusterIP", 10))
        self.applied = data.get("applied", {})
        for entry in data.get("objects", []):
            key = tuple(entry["key"])
            self.objects[key] = entry["object"]  # type: ignore[index]
        for (group, plural, _ns, _name), obj in list(self.objects.items()):
            if (group, plural) == ("apiextensions.k8s.io", "customresourcedefinitions"):
                self._register_crd(obj)

    def save(self) -> None:
        for notify in self.on_change:
            notify()
        if not self.state_file:
            return
        data = {
            "resourceVersion": self.rv,
            "nextClusterIP": self._next_cluster_ip,
            "applied": self.applied,
            "objects": [{"key": list(k), "object": v} for k, v in sorted(self.objects.items())],
        }
        tmp = f"{self.state_file}.tmp.{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, self.state_file)

    # ---------------------------------------------------------------- types
    def types(self) -> list[ResourceType]:
        with self.lock:
            return list(BUILTIN) + list(self._crd_types.values())

    def find_type(self, group: str, version: str, plural: str) -> ResourceType | None:
        for rt in self.types():
            if rt.group == group and rt.version == version and rt.plural == plural:
                return rt
        return None

    def type_for_kind(self, api_version: str, kind: str) -> ResourceType | None:
        for rt in self.types():
            if rt.api_version == api_version and rt.kind == kind:
                return rt
        return None

    def group_versions(self) -> dict[str, list[str]]:
        """group -> served versions, preferred first."""
        out: dict[str, list[str]] = {}
        for rt in self.types():
            if rt.group and rt.version not in out.setdefault(rt.group, []):
                out[rt.group].append(rt.version)
        for g in out:
            out[g].sort(key=version_priority, reverse=True)
        return out

    def _register_crd(self, crd: dict[str, Any]) -> None:
        name = crd["metadata"]["name"]
        for k in [k for k, rt in self._crd_types.items() if rt.crd is not None and rt.crd.get("_crd") == name]:
            del self._crd_types[k]
        for rt in crd_resource_types(crd):
            rt.crd = dict(rt.crd or {}, _crd=name)
            self._crd_types[(rt.group, rt.version, rt.plural)] = rt

    def _unregister_crd(self, name: str) -> None:
        for k in [k for k, rt in self._crd_types.items() if rt.crd and rt.crd.get("_crd") == name]:
            del self._crd_types[k]

    # ---------------------------------------------------------------- helpers
    def _bump(self) -> str:
        self.rv += 1
        return str(self.rv)

    @staticmethod
    def _key(rt: ResourceType, ns: str | None, name: str) -> Key:
        return (rt.group, rt.plural, (ns or "") if rt.namespaced else "", name)

    def _present(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(obj)
        out["apiVersion"] = rt.api_version
        return out

    def _require_namespace(self, rt: ResourceType, ns: str | None) -> None:
        if rt.namespaced and ("", "namespaces", "", ns) not in self.objects:
            raise E.not_found("", "namespaces", ns or "")

    def _seed_namespaces(self) -> None:
        ns_rt = BUILTIN[0]
        changed = False
        for ns in SYSTEM_NAMESPACES:
            if ("", "namespaces", "", ns) not in self.objects:
                self._create(ns_rt, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
                             dry_run=False, field_validation="Strict", save=False)
                changed = True
        if changed:
            self.save()

    # ---------------------------------------------------------------- reads
    def get(self, rt: ResourceType, ns: str | None, name: str) -> dict[str, Any]:
        with self.lock:
            if rt.namespaced:
                self._require_namespace(rt, ns)
            obj = self.objects.get(self._key(rt, ns, name))
            if obj is None:
                raise E.not_found(rt.group, rt.plural, name)
            return self._present(rt, obj)

    def list(self, rt: ResourceType, ns: str | None, label_selector: str | None = None,
             field_selector: str | None = None, limit: int | None = None,
             continue_token: str | None = None) -> dict[str, Any]:
        lpred = parse_label_selector(label_selector)
        fpred = parse_field_selector(field_selector)
        with self.lock:
            items = []
            for (group, plural, ons, _name), obj in sorted(self.objects.items()):
                if group != rt.group or plural != rt.plural:
                    continue
                if rt.namespaced and ns and ons != ns:
                    continue
                if not lpred(obj.get("metadata", {}).get("labels") or {}) or not fpred(obj):
                    continue
                item = self._present(rt, obj)
                if rt.crd is None:  # built-in list items carry no kind/apiVersion, like the real server
                    item.pop("kind", None)
                    item.pop("apiVersion", None)
                items.append(item)
            start = 0
            if continue_token:
                try:
                    start = int(base64.urlsafe_b64decode(continue_token.encode()).decode())
                except ValueError:
                    raise E.ApiError(410, "Expired", "The provided continue parameter is too old or malformed") from None
            meta: dict[str, Any] = {"resourceVersion": str(self.rv)}
            if limit and limit > 0:
                page = items[start:start + limit]
                if start + limit < len(items):
                    meta["continue"] = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
                    meta["remainingItemCount"] = len(items) - start - limit
                items = page
            return {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta, "items": items}

    # ---------------------------------------------------------------- admission
    def _field_validation(self, value: str | None) -> str:
        if value is None or value == "":
            return self.default_field_validation
        if value not in FIELD_VALIDATION:
            raise E.bad_request(f"fieldValidation parameter unsupported: {value}")
        return value

    def _normalise(self, rt: ResourceType, body: Any, ns: str | None, url_name: str | None) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise E.bad_request(f"Object '{rt.kind}' is not a JSON object")
        obj = copy.deepcopy(body)
        kind = obj.get("kind")
        api_version = obj.get("apiVersion")
        if kind and kind != rt.kind:
            raise E.bad_request(f'{kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                                f'no kind "{kind}" is registered for version "{rt.api_version}"')
        if api_version and api_version != rt.api_version:
            raise E.bad_request(f'the API version in the data ({api_version}) does not match the expected '
                                f'API version ({rt.api_version})')
        obj["kind"], obj["apiVersion"] = rt.kind, rt.api_version
        md = obj.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise E.bad_request("metadata must be an object")
        if rt.namespaced:
            if md.get("namespace") and ns and md["namespace"] != ns:
                raise E.bad_request("the namespace of the provided object does not match the namespace sent on the request")
            md["namespace"] = ns or md.get("namespace") or "default"
        else:
            md.pop("namespace", None)
        if url_name is not None and md.get("name") and md["name"] != url_name:
            raise E.bad_request(f"the name of the object ({md['name']}) does not match the name on the URL ({url_name})")
        if url_name is not None and not md.get("name"):
            md["name"] = url_name
        return obj

    def _admit(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None,
               field_validation: str) -> list[str]:
        """Defaulting + validation.  Mutates ``obj``; raises ApiError; returns warnings."""
        md = obj["metadata"]
        name = md.get("name") or ""
        warnings: list[str] = []
        self._default(rt, obj, old)
        if rt.crd is None:
            unknown = schema_check(obj, rt.group, rt.kind, name, strict_fields=field_validation == "Strict")
            if unknown:
                drop_fields(obj, [u.split('"')[1] for u in unknown])
                if field_validation == "Warn":
                    warnings += unknown
        else:
            warnings += crvalidation.validate(rt, obj, field_validation)
        causes = []
        if not name:
            causes.append(E.cause("FieldValueRequired", "metadata.name", "Required value: name or generateName is required"))
        else:
            causes += name_errors(name, rt.name_rule)
        if rt.namespaced and md.get("namespace"):
            causes += name_errors(md["namespace"], NAME_LABEL, "metadata.namespace")
        causes += label_errors(md.get("labels"))
        causes += annotation_errors(md.get("annotations"))
        causes += self._semantic(rt, obj, old)
        if causes:
            raise E.invalid(rt.group, rt.kind, name, causes)
        return warnings

    def _default(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        gk = (rt.group, rt.kind)
        if gk == ("", "Secret"):
            sd = obj.pop("stringData", None)
            secret_data_errors(obj.get("data"))
            if isinstance(sd, dict):
                data = obj.setdefault("data", {}) or {}
                obj["data"] = data
                for k, v in sd.items():
                    data[k] = base64.b64encode(str(v).encode()).decode()
            obj.setdefault("type", "Opaque")
        elif gk == ("", "Namespace"):
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"].get("name", "")
            obj["status"] = {"phase": "Active"}
        elif gk == ("", "Service"):
            spec = obj.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            spec.setdefault("sessionAffinity", "None")
            if spec.get("clusterIP") != "None":
                if old and (old.get("spec") or {}).get("clusterIP"):
                    spec.setdefault("clusterIP", old["spec"]["clusterIP"])
                elif not spec.get("clusterIP"):
                    spec["clusterIP"] = str(ipaddress.ip_address("10.96.0.0") + self._next_cluster_ip)
                    self._next_cluster_ip += 1
                spec.setdefault("clusterIPs", [spec["clusterIP"]])
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
            for port in spec.get("ports") or []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")
                    if "port" in port:
                        port.setdefault("targetPort", port["port"])
            obj.setdefault("status", {"loadBalancer": {}})
        elif gk == ("apps", "ReplicaSet"):
            spec = obj.setdefault("spec", {})
            spec.setdefault("replicas", 1)
            tmpl = spec.get("template")
            if isinstance(tmpl, dict) and isinstance(tmpl.get("spec"), dict):
                _default_pod_spec(tmpl["spec"])
        elif gk in (("apps", "Deployment"), ("apps", "StatefulSet"), ("apps", "DaemonSet")):
            spec = obj.setdefault("spec", {})
            if rt.kind != "DaemonSet":
                spec.setdefault("replicas", 1)
            spec.setdefault("revisionHistoryLimit", 10)
            if rt.kind == "Deployment":
                spec.setdefault("progressDeadlineSeconds", 600)
                strategy = spec.setdefault("strategy", {})
                strategy.setdefault("type", "RollingUpdate")
                if strategy["type"] == "RollingUpdate":
                    strategy.setdefault("rollingUpdate", {"maxSurge": "25%", "maxUnavailable": "25%"})
            tmpl = spec.get("template")
            if isinstance(tmpl, dict) and isinstance(tmpl.get("spec"), dict):
                _default_pod_spec(tmpl["spec"])
        elif gk == ("", "Pod"):
            if isinstance(obj.get("spec"), dict):
                _default_pod_spec(obj["spec"])
        elif gk == ("", "ServiceAccount"):
            pass

    def _semantic(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> list[dict[str, str]]:
        causes: list[dict[str, str]] = []
        gk = (rt.group, rt.kind)
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        if gk in (("apps", "Deployment"), ("apps", "StatefulSet"), ("apps", "DaemonSet"), ("apps", "ReplicaSet")):
            selector = spec.get("selector")
            labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
                causes.append(E.cause("FieldValueInvalid", "spec.selector",
                                      "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
                                      "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is "
                                      "invalid for deployment"))
            elif not match_label_selector_object(selector, labels):
                causes.append(E.cause("FieldValueInvalid", "spec.template.metadata.labels",
                                      f"Invalid value: {json.dumps(labels)}: `selector` does not match template `labels`"))
            if old is not None and (old.get("spec") or {}).get("selector") != selector:
                causes.append(E.cause("FieldValueInvalid", "spec.selector",
                                      "Invalid value: " + json.dumps(selector) + ": field is immutable"))
            pod = (spec.get("template") or {}).get("spec") or {}
            causes += _pod_spec_causes(pod, "spec.template.spec")
            causes += label_errors(labels, "spec.template.metadata.labels")
        elif gk == ("", "Pod"):
            causes += _pod_spec_causes(spec, "spec")
        elif gk in (("", "ConfigMap"), ("", "Secret")):
            for k in list((obj.get("data") or {}).keys()) + list((obj.get("binaryData") or {}).keys()):
                if not k or len(k) > 253 or not all(c.isalnum() or c in "-._" for c in k):
                    causes.append(E.cause("FieldValueInvalid", f"data[{k}]",
                                          f"Invalid value: {json.dumps(k)}: a valid config key must consist of "
                                          "alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
                                          "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"))
            if old is not None and old.get("immutable"):
                for fld in ("data", "binaryData"):
                    if (old.get(fld) or {}) != (obj.get(fld) or {}):
                        causes.append(E.cause("FieldValueForbidden", fld, "Forbidden: field is immutable when `immutable` is set"))
                if obj.get("immutable") is not True:
                    causes.append(E.cause("FieldValueForbidden", "immutable", "Forbidden: field is immutable when `immutable` is set"))
            if old is not None and rt.kind == "Secret" and old.get("type") != obj.get("type"):
                causes.append(E.cause("FieldValueInvalid", "type", f"Invalid value: {json.dumps(obj.get('type'))}: field is immutable"))
        elif gk == ("apiextensions.k8s.io", "CustomResourceDefinition"):
            causes += _crd_causes(obj)
        elif gk == ("rbac.authorization.k8s.io", "ClusterRoleBinding") or gk == ("rbac.authorization.k8s.io", "RoleBinding"):
            if old is not None and old.get("roleRef") != obj.get("roleRef"):
                causes.append(E.cause("FieldValueInvalid", "roleRef",
                                      f"Invalid value: {json.dumps(obj.get('roleRef'))}: cannot change roleRef"))
        return causes

    # ---------------------------------------------------------------- writes
    def create(self, rt: ResourceType, ns: str | None, body: Any, dry_run: bool = False,
               field_validation: str | None = None) -> WriteResult:
        with self.lock:
            return self._create(rt, ns, body, dry_run, self._field_validation(field_validation))

    def _create(self, rt: ResourceType, ns: str | None, body: Any, dry_run: bool, field_validation: str,
                save: bool = True) -> WriteResult:
        obj = self._normalise(rt, body, ns, None)
        md = obj["metadata"]
        if not md.get("name") and md.get("generateName"):
            md["name"] = md["generateName"] + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        if rt.namespaced:
            self._require_namespace(rt, md["namespace"])
        for k in ("resourceVersion", "uid", "creationTimestamp", "deletionTimestamp", "managedFields", "generation"):
            if k == "resourceVersion" and md.get(k):
                raise E.bad_request("resourceVersion should not be set on objects to be created")
            md.pop(k, None)
        if rt.status_subresource and rt.kind not in ("Namespace", "Node", "Service"):
            obj.pop("status", None)
        warnings = self._admit(rt, obj, None, field_validation)
        key = self._key(rt, md.get("namespace"), md["name"])
        if key in self.objects:
            raise E.already_exists(rt.group, rt.plural, md["name"])
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = now()
        if rt.generation:
            md["generation"] = 1
        self._after_write(rt, obj, None)
        if dry_run:
            return WriteResult(self._present(rt, obj), True, warnings)
        md["resourceVersion"] = self._bump()
        self.objects[key] = obj
        self._on_created(rt, obj)
        if save:
            self.save()
        return WriteResult(self._present(rt, obj), True, warnings)

    def _after_write(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        """What controllers would do at once: status of workloads, CRD conditions."""
        if (rt.group, rt.kind) in self.controlled_kinds:
            pass  # controllers.py computes it from the pods
        elif (rt.group, rt.kind) == ("apps", "Deployment") or (rt.group, rt.kind) == ("apps", "StatefulSet"):
            n = (obj.get("spec") or {}).get("replicas", 1)
            gen = obj["metadata"].get("generation", 1)
            status: dict[str, Any] = {"observedGeneration": gen}
            if n:
                status.update(replicas=n, updatedReplicas=n, readyReplicas=n, availableReplicas=n)
                if rt.kind == "StatefulSet":
                    status.update(currentReplicas=n)
            if rt.kind == "Deployment":
                ts = now()
                status["conditions"] = [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                     "message": "Deployment has minimum availability.", "lastUpdateTime": ts, "lastTransitionTime": ts},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                     "message": f'ReplicaSet "{obj["metadata"]["name"]}" has successfully progressed.',
                     "lastUpdateTime": ts, "lastTransitionTime": ts},
                ]
                if old is not None and isinstance(old.get("status"), dict):
                    prev = old["status"].get("conditions")
                    if prev and [c.get("status") for c in prev] == [c["status"] for c in status["conditions"]]:
                        status["conditions"] = prev
            else:
                status["availableReplicas"] = n
            obj["status"] = status
        elif (rt.group, rt.kind) == ("apps", "DaemonSet"):
            obj["status"] = {"observedGeneration": obj["metadata"].get("generation", 1), "currentNumberScheduled": 0,
                             "desiredNumberScheduled": 0, "numberMisscheduled": 0, "numberReady": 0}
        elif (rt.group, rt.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition"):
            spec = obj.get("spec") or {}
            storage = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
            prev = (old or {}).get("status") or {}
            ts = ((prev.get("conditions") or [{}])[0]).get("lastTransitionTime") or now()
            stored = list(prev.get("storedVersions") or [])
            for v in storage:
                if v not in stored:
                    stored.append(v)
            obj["status"] = {
                "acceptedNames": dict(spec.get("names") or {}),
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                     "message": "no conflicts found", "lastTransitionTime": ts},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                     "message": "the initial names have been accepted", "lastTransitionTime": ts},
                ],
                "storedVersions": stored,
            }
        elif (rt.group, rt.kind) == ("", "Pod"):
            obj.setdefault("status", {"phase": "Pending", "qosClass": "BestEffort"})

    def _on_created(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        if (rt.group, rt.kind) == ("", "Namespace"):
            sa_rt = self.find_type("", "v1", "serviceaccounts")
            self._create(sa_rt, obj["metadata"]["name"],  # type: ignore[arg-type]
                         {"metadata": {"name": "default"}}, False, "Strict", save=False)
        elif (rt.group, rt.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition"):
            self._register_crd(obj)

    def update(self, rt: ResourceType, ns: str | None, name: str, body: Any, dry_run: bool = False,
               field_validation: str | None = None, subresource: str | None = None) -> WriteResult:
        with self.lock:
            fv = self._field_validation(field_validation)
            if rt.namespaced:
                self._require_namespace(rt, ns)
            old = self.objects.get(self._key(rt, ns, name))
            if old is None:
                raise E.not_found(rt.group, rt.plural, name)
            if subresource == "scale":
                body = self._from_scale(rt, old, body)
            obj = self._normalise(rt, body, ns, name)
            rv = obj["metadata"].get("resourceVersion")
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise E.conflict(rt.group, rt.plural, name)
            if not rv and rt.crd is not None:
                raise E.invalid(rt.group, rt.kind, name, [E.cause(
                    "FieldValueInvalid", "metadata.resourceVersion",
                    "Invalid value: 0x0: must be specified for an update")])
            return self._replace(rt, old, obj, dry_run, fv, subresource)

    def _replace(self, rt: ResourceType, old: dict[str, Any], obj: dict[str, Any], dry_run: bool,
                 fv: str, subresource: str | None) -> WriteResult:
        md = obj["metadata"]
        omd = old["metadata"]
        if subresource == "status":
            new = copy.deepcopy(old)
            new["status"] = obj.get("status")
            if new["status"] is None:
                new.pop("status")
            obj, md = new, new["metadata"]
        elif rt.status_subresource:
            if "status" in old:
                obj["status"] = copy.deepcopy(old["status"])
            else:
                obj.pop("status", None)
        for k in ("uid", "creationTimestamp", "generation", "deletionTimestamp"):
            if k in omd:
                md[k] = omd[k]
            else:
                md.pop(k, None)
        md["resourceVersion"] = omd["resourceVersion"]
        md.pop("managedFields", None)
        warnings = self._admit(rt, obj, old, fv)
        if rt.generation and _spec_changed(old, obj):
            md["generation"] = omd.get("generation", 1) + 1
        self._after_write(rt, obj, old)
        if _strip_volatile(obj) == _strip_volatile(old) and md.get("generation") == omd.get("generation"):
            return WriteResult(self._present(rt, old), False, warnings)
        if dry_run:
            return WriteResult(self._present(rt, obj), False, warnings)
        md["resourceVersion"] = self._bump()
        self.objects[self._key(rt, md.get("namespace"), md["name"])] = obj
        if (rt.group, rt.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition"):
            self._register_crd(obj)
        self.save()
        return WriteResult(self._present(rt, obj), False, warnings)

    def patch(self, rt: ResourceType, ns: str | None, name: str, content_type: str, raw: bytes,
              dry_run: bool = False, field_validation: str | None = None, field_manager: str | None = None,
              force: bool = False, subresource: str | None = None) -> WriteResult:
        ct = content_type.split(";")[0].strip().lower()
        accepted = [JSONPATCH, MERGE, APPLY] + ([] if rt.crd is not None else [STRATEGIC])
        if ct not in accepted:
            raise E.unsupported_media_type(ct, accepted)
        try:
            body = yaml.safe_load(raw) if ct == APPLY else json.loads(raw or b"null")
        except (ValueError, yaml.YAMLError) as exc:
            raise E.bad_request(f"error decoding patch: {exc}") from None
        with self.lock:
            fv = self._field_validation(field_validation)
            if rt.namespaced:
                self._require_namespace(rt, ns)
            key = self._key(rt, ns, name)
            old = self.objects.get(key)
            if ct == APPLY:
                return self._apply(rt, ns, name, old, body, dry_run, fv, field_manager, force, subresource)
            if old is None:
                raise E.not_found(rt.group, rt.plural, name)
            base = self._present(rt, old)
            if subresource == "scale":
                base = self._to_scale(rt, old)
            if ct == MERGE:
                if not isinstance(body, dict):
                    raise E.bad_request("merge patch must be a JSON object")
                new = P.merge_patch(base, body)
            elif ct == STRATEGIC:
                if not isinstance(body, dict):
                    raise E.bad_request("strategic merge patch must be a JSON object")
                new = P.strategic_merge_patch(base, body, rt.api_version, rt.kind)
            else:
                new = P.json_patch(base, body)
            if subresource == "scale":
                new = self._from_scale(rt, old, new)
            rv = (new.get("metadata") or {}).get("resourceVersion") if isinstance(new, dict) else None
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise E.conflict(rt.group, rt.plural, name)
            obj = self._normalise(rt, new, ns, name)
            return self._replace(rt, old, obj, dry_run, fv, subresource)

    def _apply(self, rt: ResourceType, ns: str | None, name: str, old: dict[str, Any] | None, body: Any,
               dry_run: bool, fv: str, field_manager: str | None, force: bool, subresource: str | None) -> WriteResult:
        if not field_manager:
            raise E.bad_request("PATCH /apply: fieldManager is required for apply requests")
        if not isinstance(body, dict):
            raise E.bad_request("apply patch must be an object")
        if not body.get("apiVersion") or not body.get("kind"):
            raise E.bad_request("apiVersion and kind must be set for an apply patch")
        akey = "|".join([rt.group, rt.plural, (ns or "") if rt.namespaced else "", name, field_manager])
        config = self._normalise(rt, body, ns, name)
        config_md = config["metadata"]
        rv = config_md.get("resourceVersion")
        if old is None:
            if rv:
                raise E.conflict(rt.group, rt.plural, name)
            result = self._create(rt, ns, config, dry_run, fv)
            if not dry_run:
                self.applied[akey] = body
                self.save()
            return result
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise E.conflict(rt.group, rt.plural, name)
        current = self._present(rt, old)
        merged = P.strategic_merge_patch(current, config, rt.api_version, rt.kind) if rt.crd is None \
            else P.merge_patch(current, config)
        last = self.applied.get(akey)
        if last is not None:
            merged = P.prune_removed(merged, last, body,
                                     sch.root_node(rt.api_version, rt.kind) if rt.crd is None else None)
        obj = self._normalise(rt, merged, ns, name)
        result = self._replace(rt, old, obj, dry_run, fv, subresource)
        if not dry_run and self.applied.get(akey) != body:
            self.applied[akey] = body
            self.save()
        return result

    def _to_scale(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        md = obj["metadata"]
        sel = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in md},
                "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
                "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                           "selector": ",".join(f"{k}={v}" for k, v in sorted(sel.items()))}}

    def _from_scale(self, rt: ResourceType, old: dict[str, Any], scale: Any) -> dict[str, Any]:
        if not isinstance(scale, dict):
            raise E.bad_request("Scale must be an object")
        new = self._present(rt, old)
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise E.invalid("autoscaling", "Scale", old["metadata"]["name"], [E.cause(
                "FieldValueInvalid", "spec.replicas", f"Invalid value: {json.dumps(replicas)}: must be greater than or equal to 0")])
        new["spec"]["replicas"] = replicas
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        new["metadata"]["resourceVersion"] = rv or old["metadata"]["resourceVersion"]
        return new

    def scale(self, rt: ResourceType, ns: str | None, name: str) -> dict[str, Any]:
        with self.lock:
            obj = self.get(rt, ns, name)
            return self._to_scale(rt, obj)

    def delete(self, rt: ResourceType, ns: str | None, name: str, dry_run: bool = False,
               preconditions: dict[str, Any] | None = None) -> dict[str, Any]:
        with self.lock:
            if rt.namespaced:
                self._require_namespace(rt, ns)
            key = self._key(rt, ns, name)
            obj = self.objects.get(key)
            if obj is None:
                raise E.not_found(rt.group, rt.plural, name)
            pre = preconditions or {}
            if pre.get("uid") and pre["uid"] != obj["metadata"]["uid"]:
                raise E.conflict(rt.group, rt.plural, name,
                                 f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {obj['metadata']['uid']}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != obj["metadata"]["resourceVersion"]:
                raise E.conflict(rt.group, rt.plural, name,
                                 f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                                 f"ResourceVersion in object meta: {obj['metadata']['resourceVersion']}")
            out = self._present(rt, obj)
            if not dry_run:
                self._remove(rt, key, obj)
                self.save()
            if (rt.group, rt.plural) in RETURN_OBJECT_ON_DELETE:
                out["metadata"]["deletionTimestamp"] = now()
                if rt.kind == "Namespace":
                    out["status"] = {"phase": "Terminating"}
                return out
            details = {"name": name, "kind": rt.plural, "uid": obj["metadata"]["uid"]}
            if rt.group:
                details["group"] = rt.group
            return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    def _remove(self, rt: ResourceType, key: Key, obj: dict[str, Any]) -> None:
        del self.objects[key]
        self.rv += 1
        prefix = "|".join(key) + "|"
        for akey in [a for a in self.applied if a.startswith(prefix)]:
            del self.applied[akey]
        if (rt.group, rt.kind) == ("", "Namespace"):
            ns = obj["metadata"]["name"]
            for k in [k for k in self.objects if k[2] == ns]:
                del self.objects[k]
            for akey in [a for a in self.applied if a.split("|")[2] == ns]:
                del self.applied[akey]
        elif (rt.group, rt.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition"):
            spec = obj.get("spec") or {}
            group, plural = spec.get("group"), (spec.get("names") or {}).get("plural")
            for k in [k for k in self.objects if k[0] == group and k[1] == plural]:
                del self.objects[k]
            self._unregister_crd(obj["metadata"]["name"])

    def delete_collection(self, rt: ResourceType, ns: str | None, label_selector: str | None,
                          field_selector: str | None, dry_run: bool = False) -> dict[str, Any]:
        with self.lock:
            if rt.namespaced and ns:
                self._require_namespace(rt, ns)
            listed = self.list(rt, ns, label_selector, field_selector)
            for item in listed["items"]:
                md = item["metadata"]
                if not dry_run:
                    key = self._key(rt, md.get("namespace"), md["name"])
                    self._remove(rt, key, self.objects[key])
            if not dry_run and listed["items"]:
                self.save()
            for item in listed["items"]:
                item.setdefault("kind", rt.kind)
                item.setdefault("apiVersion", rt.api_version)
            listed["metadata"] = {"resourceVersion": str(self.rv)}
            return listed

    # ---------------------------------------------------------------- nodes
    def seed_node(self, name: str, ip: str, labels: dict[str, str] | None = None,
                  taints: list[dict[str, str]] | None = None) -> None:
        with self.lock:
            rt = self.find_type("", "v1", "nodes")
            if ("", "nodes", "", name) in self.objects:
                return
            node = node_object(name, ip, f"v{self.kube_version}", os.uname().release, now(), labels, taints)
            self._create(rt, None, node, False, "Strict")  # type: ignore[arg-type]


def _spec_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    def body(o: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in o.items() if k not in ("metadata", "status", "apiVersion", "kind")}
    return body(old) != body(new)


def _default_pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if not isinstance(c, dict):
            continue
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        image = c.get("image") or ""
        tag_latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
        c.setdefault("imagePullPolicy", "Always" if tag_latest and "@" not in image else "IfNotPresent")
        c.setdefault("resources", {})
        for p in c.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")
                if spec.get("hostNetwork") and not p.get("hostPort") and p.get("containerPort"):
                    p["hostPort"] = p["containerPort"]  # SetDefaults_PodSpec: defaultHostNetworkPorts


def _pod_spec_causes(pod: dict[str, Any], at: str) -> list[dict[str, str]]:
    causes = []
    containers = pod.get("containers")
    if isinstance(containers, list) and not containers:
        causes.append(E.cause("FieldValueRequired", f"{at}.containers", "Required value"))
    seen = set()
    for i, c in enumerate((containers or []) + (pod.get("initContainers") or [])):
        if not isinstance(c, dict):
            continue
        field = f"{at}.containers[{i}]"
        nm = c.get("name") or ""
        causes += name_errors(nm, NAME_LABEL, f"{field}.name") if nm else []
        if nm in seen:
            causes.append(E.cause("FieldValueDuplicate", f"{field}.name", f"Duplicate value: {json.dumps(nm)}"))
        seen.add(nm)
        if not c.get("image"):
            causes.append(E.cause("FieldValueRequired", f"{field}.image", "Required value"))
        for j, p in enumerate(c.get("ports") or []):
            port = p.get("containerPort") if isinstance(p, dict) else None
            if isinstance(port, int) and not 0 < port < 65536:
                causes.append(E.cause("FieldValueInvalid", f"{field}.ports[{j}].containerPort",
                                      f"Invalid value: {port}: must be between 1 and 65535, inclusive"))
            proto = p.get("protocol") if isinstance(p, dict) else None
            if proto and proto not in ("TCP", "UDP", "SCTP"):
                causes.append(E.cause("FieldValueNotSupported", f"{field}.ports[{j}].protocol",
                                      f'Unsupported value: {json.dumps(proto)}: supported values: "SCTP", "TCP", "UDP"'))
    return causes


def _crd_causes(crd: dict[str, Any]) -> list[dict[str, str]]:
    causes = []
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, plural = spec.get("group", ""), names.get("plural", "")
    name = crd["metadata"].get("name", "")
    if name != f"{plural}.{group}":
        causes.append(E.cause("FieldValueInvalid", "metadata.name",
                              f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'))
    if "." not in group:
        causes.append(E.cause("FieldValueInvalid", "spec.group", f'Invalid value: "{group}": should be a domain with at least one dot'))
    versions = spec.get("versions") or []
    if sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(E.cause("FieldValueInvalid", "spec.versions",
                              "Invalid value: " + json.dumps(versions)[:200] + ": must have exactly one version marked as storage version"))
    for i, v in enumerate(versions):
        if not ((v.get("schema") or {}).get("openAPIV3Schema")):
            causes.append(E.cause("FieldValueRequired", f"spec.versions[{i}].schema.openAPIV3Schema",
                                  "Required value: schemas are required"))
    if plural and plural != plural.lower():
        causes.append(E.cause("FieldValueInvalid", "spec.names.plural", f'Invalid value: "{plural}": must be lowercase'))
    return causes
