"""The lab's kube-controller-manager and kube-scheduler, as small as an installer's tests allow.

Why: CloudCore runs as a Deployment. Without pods nothing "restarts" when the collection changes the
pod template, and a Deployment status faked from its spec lets ``wait: true`` and ``kubectl rollout
status`` succeed while no CloudCore runs. These controllers give the API stand-in what an installer
meets on a real cluster (kubernetes/kubernetes pkg/controller/deployment, pkg/controller/replicaset,
pkg/scheduler, pkg/controller/garbagecollector):

- Deployment -> ReplicaSet ``<name>-<pod-template-hash>`` (label ``pod-template-hash``, revision
  annotations, ownerReferences); RollingUpdate honours maxSurge/maxUnavailable (rolling.go
  ``reconcileNewReplicaSet`` / ``reconcileOldReplicaSets``), Recreate scales old to 0 first;
  old ReplicaSets beyond ``revisionHistoryLimit`` are deleted;
- ReplicaSet -> Pods ``<rs>-<5 chars>`` (ownerReferences), surplus pods deleted unscheduled /
  not ready / newest first (controller_utils ``ActivePods``);
- the scheduler binds each pending pod to a feasible node: nodeSelector, required node affinity,
  taints vs tolerations (NoSchedule/NoExecute), host ports (a hostNetwork pod's container ports),
  required pod anti-affinity (both directions); among feasible nodes the one with the fewest pods
  of the same owner, then the fewest pods, then the name. An unschedulable pod gets
  ``PodScheduled=False`` with the scheduler's style of message;
- status from the pods: ReplicaSet replicas/ready/available (``minReadySeconds``), Deployment
  observedGeneration, replicas, updatedReplicas, readyReplicas, availableReplicas,
  unavailableReplicas and the Available/Progressing conditions (ProgressDeadlineExceeded too);
- garbage collection: ReplicaSets and Pods whose controlling owner is gone are deleted.

Pods only become Running/Ready when a kubelet (the lab's CloudCore stand-in) says so: a pod
without one stays Pending and the Deployment unavailable, as on a real cluster.

It runs in the API process: one thread, woken by every store change and every ``interval``.
All reads and writes go through the Store (its lock, admission and resourceVersions).
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import math
import random
import sys
import threading
import traceback
from typing import Any

from . import errors as E
from .labelsel import match_label_selector_object

SAFE = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand alphanums
HASH_LABEL = "pod-template-hash"
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
REVISION = "deployment.kubernetes.io/revision"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _ts(when: dt.datetime | None = None) -> str:
    return (when or _now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_ts(text: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text or "", "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return None


def template_hash(template: dict[str, Any], collision_count: int = 0) -> str:
    """FNV-1a 32 of the template, safe-encoded (controller.ComputeHash; the bytes hashed differ)."""
    data = json.dumps(template, sort_keys=True).encode() + (str(collision_count).encode() if collision_count else b"")
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    out = ""
    for ch in f"{h:d}":  # rand.SafeEncodeString of the decimal form
        out += SAFE[ord(ch) % len(SAFE)]
    return out


def _suffix() -> str:
    return "".join(random.choice(SAFE) for _char in range(5))


def _owner(obj: dict[str, Any]) -> dict[str, Any] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def _owner_ref(obj: dict[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    md = obj["metadata"]
    return {"apiVersion": api_version, "kind": kind, "name": md["name"], "uid": md["uid"],
            "controller": True, "blockOwnerDeletion": True}


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in ((obj.get("status") or {}).get("conditions") or []):
        if cond.get("type") == kind:
            return cond
    return None


def pod_ready(pod: dict[str, Any]) -> bool:
    cond = _condition(pod, "Ready")
    return bool(cond and cond.get("status") == "True")


def pod_available(pod: dict[str, Any], min_ready: int, now: dt.datetime) -> bool:
    """podutil.IsPodAvailable: Ready for at least minReadySeconds."""
    if not pod_ready(pod):
        return False
    if not min_ready:
        return True
    since = _parse_ts(_condition(pod, "Ready").get("lastTransitionTime"))
    return since is not None and (now - since).total_seconds() >= min_ready


def _int_or_percent(value: Any, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(value, int):
        return value
    text = str(value or "0")
    if text.endswith("%"):
        scaled = total * int(text[:-1]) / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    return int(text)


def rolling_limits(deployment: dict[str, Any]) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as deploymentutil.ResolveFenceposts: both 0 -> unavailable 1."""
    spec = deployment.get("spec") or {}
    replicas = spec.get("replicas", 1)
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0, replicas
    rolling = strategy.get("rollingUpdate") or {}
    surge = _int_or_percent(rolling.get("maxSurge", "25%"), replicas, True)
    unavailable = _int_or_percent(rolling.get("maxUnavailable", "25%"), replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas)


# ------------------------------------------------------------------------------- node filters
def _match_node_requirement(req: dict[str, Any], labels: dict[str, str], name: str, field: bool = False) -> bool:
    key, op, values = req.get("key"), req.get("operator"), req.get("values") or []
    value = name if field else labels.get(key)
    present = field or key in labels
    if op == "In":
        return present and value in values
    if op == "NotIn":
        return not present or value not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and values:
        try:
            return int(value) > int(values[0]) if op == "Gt" else int(value) < int(values[0])
        except ValueError:
            return False
    return False


def node_affinity_ok(pod_spec: dict[str, Any], node: dict[str, Any]) -> bool:
    """nodeSelector AND required node affinity (terms ORed, expressions ANDed)."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    name = node["metadata"]["name"]
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms")
    if not terms:
        return True
    for term in terms:
        exprs = term.get("matchExpressions") or []
        fields = term.get("matchFields") or []
        if not exprs and not fields:
            continue  # an empty term matches nothing
        if all(_match_node_requirement(r, labels, name) for r in exprs) and \
                all(_match_node_requirement(r, labels, name, field=True) for r in fields):
            return True
    return False


def _tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    for tol in tolerations:
        if tol.get("effect") and tol["effect"] != taint.get("effect"):
            continue
        if tol.get("operator", "Equal") == "Exists":
            if not tol.get("key") or tol["key"] == taint.get("key"):
                return True
        elif tol.get("key") == taint.get("key") and (tol.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def untolerated_taint(pod_spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any] | None:
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and \
                not _tolerates(pod_spec.get("tolerations") or [], taint):
            return taint
    return None


def host_ports(pod_spec: dict[str, Any]) -> set[tuple[str, int]]:
    out = set()
    for container in pod_spec.get("containers") or []:
        for port in container.get("ports") or []:
            host = port.get("hostPort") or (port.get("containerPort") if pod_spec.get("hostNetwork") else 0)
            if host:
                out.add((port.get("protocol", "TCP"), host))
    return out


def _anti_affinity_terms(pod: dict[str, Any]) -> list[dict[str, Any]]:
    aff = ((pod.get("spec") or {}).get("affinity") or {}).get("podAntiAffinity") or {}
    return aff.get("requiredDuringSchedulingIgnoredDuringExecution") or []


def _term_matches(term: dict[str, Any], owner_ns: str, other: dict[str, Any]) -> bool:
    namespaces = term.get("namespaces") or [owner_ns]
    if other["metadata"].get("namespace") not in namespaces:
        return False
    selector = term.get("labelSelector")
    if selector is None:
        return False  # a nil selector matches no pod
    return match_label_selector_object(selector, other["metadata"].get("labels") or {})


class Controllers:
    """Deployment, ReplicaSet, scheduler and garbage-collector loops over one Store."""

    def __init__(self, store: Any, interval: float = 0.25) -> None:
        self.store = store
        self.interval = interval
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.rt = {kind: store.find_type(group, "v1", plural) for kind, group, plural in (
            ("Deployment", "apps", "deployments"), ("ReplicaSet", "apps", "replicasets"),
            ("Pod", "", "pods"), ("Node", "", "nodes"))}
        self.last_error = ""
        self.pending_progress: dict[str, tuple[str, str, str]] = {}

    # --------------------------------------------------------------------- lifecycle
    def start(self) -> "Controllers":
        """Own Deployment status from now on and run the loop in a daemon thread."""
        self.store.controlled_kinds.add(("apps", "Deployment"))
        self.store.on_change.append(self.wake.set)
        self.thread = threading.Thread(target=self._loop, name="kubeapi-controllers", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        if self.thread is not None:
            self.thread.join(5)

    def _loop(self) -> None:
        while not self.stopping.is_set():
            self.wake.wait(self.interval)
            self.wake.clear()
            try:
                self.reconcile()
                self.last_error = ""
            except Exception:  # noqa: BLE001 - a controller keeps going; log each new error once
                text = traceback.format_exc()
                if text != self.last_error:
                    print(f"kubeapi controllers: {text}", file=sys.stderr, flush=True)
                self.last_error = text

    # --------------------------------------------------------------------- store access
    def _objects(self, kind: str, ns: str | None = None) -> list[dict[str, Any]]:
        rt = self.rt[kind]
        return [copy.deepcopy(obj) for (group, plural, ons, _name), obj in sorted(self.store.objects.items())
                if group == rt.group and plural == rt.plural and (ns is None or ons == ns)]

    def _owned(self, kind: str, owner: dict[str, Any]) -> list[dict[str, Any]]:
        uid = owner["metadata"]["uid"]
        return [o for o in self._objects(kind, owner["metadata"]["namespace"])
                if (_owner(o) or {}).get("uid") == uid]

    def _write(self, kind: str, obj: dict[str, Any], status: bool = False) -> None:
        md = obj["metadata"]
        body = dict(obj, metadata=dict(md))
        body["metadata"].pop("resourceVersion", None)  # the controller's view is current under the lock
        self.store.update(self.rt[kind], md.get("namespace"), md["name"], body,
                          subresource="status" if status else None)

    def _delete(self, kind: str, obj: dict[str, Any]) -> None:
        try:
            self.store.delete(self.rt[kind], obj["metadata"].get("namespace"), obj["metadata"]["name"])
        except E.ApiError as err:
            if err.code != 404:
                raise

    # --------------------------------------------------------------------- one pass
    def reconcile(self) -> None:
        with self.store.lock:
            self.collect_garbage()
            for rs in self._objects("ReplicaSet"):
                self.replicaset_status(rs)
            for deployment in self._objects("Deployment"):
                self.sync_deployment(deployment)
            for rs in self._objects("ReplicaSet"):
                self.sync_replicaset(rs)
            self.schedule()
            for rs in self._objects("ReplicaSet"):
                self.replicaset_status(rs)
            for deployment in self._objects("Deployment"):
                self.deployment_status(deployment)

    # --------------------------------------------------------------------- garbage collector
    def collect_garbage(self) -> None:
        """Dependents whose controlling owner is gone are deleted (background propagation)."""
        uids = {o["metadata"]["uid"] for kind in ("Deployment", "ReplicaSet") for o in self._objects(kind)}
        for kind, owner_kinds in (("ReplicaSet", ("Deployment",)), ("Pod", ("ReplicaSet",))):
            for obj in self._objects(kind):
                ref = _owner(obj)
                if ref and ref.get("kind") in owner_kinds and ref.get("uid") not in uids:
                    self._delete(kind, obj)

    # --------------------------------------------------------------------- Deployment
    def _new_rs(self, deployment: dict[str, Any], rss: list[dict[str, Any]]) -> dict[str, Any] | None:
        """deploymentutil.FindNewReplicaSet: the RS whose template equals ours (hash label ignored)."""
        template = deployment["spec"]["template"]
        for rs in sorted(rss, key=lambda r: r["metadata"].get("creationTimestamp", "")):
            other = copy.deepcopy(rs["spec"].get("template") or {})
            ((other.get("metadata") or {}).get("labels") or {}).pop(HASH_LABEL, None)
            if other == template:
                return rs
        return None

    def _create_rs(self, deployment: dict[str, Any], revision: int) -> dict[str, Any]:
        md, spec = deployment["metadata"], deployment["spec"]
        digest = template_hash(spec["template"], (deployment.get("status") or {}).get("collisionCount", 0))
        template = copy.deepcopy(spec["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = digest
        selector = copy.deepcopy(spec["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = digest
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": f"{md['name']}-{digest}", "namespace": md["namespace"],
                           "labels": dict(template["metadata"]["labels"]),
                           "annotations": {"deployment.kubernetes.io/desired-replicas": str(spec.get("replicas", 1)),
                                           "deployment.kubernetes.io/max-replicas":
                                               str(spec.get("replicas", 1) + rolling_limits(deployment)[0]),
                                           REVISION: str(revision)},
                           "ownerReferences": [_owner_ref(deployment, "apps/v1", "Deployment")]},
              "spec": {"replicas": 0, "minReadySeconds": spec.get("minReadySeconds", 0),
                       "selector": selector, "template": template}}
        return self.store.create(self.rt["ReplicaSet"], md["namespace"], rs).obj

    def _set_replicas(self, rs: dict[str, Any], replicas: int) -> None:
        if rs["spec"].get("replicas", 0) != replicas:
            rs["spec"]["replicas"] = replicas
            self._write("ReplicaSet", rs)

    def sync_deployment(self, deployment: dict[str, Any]) -> None:
        spec = deployment.get("spec") or {}
        if spec.get("paused"):
            return
        rss = self._owned("ReplicaSet", deployment)
        new = self._new_rs(deployment, rss)
        revisions = [int((r["metadata"].get("annotations") or {}).get(REVISION, "0") or 0) for r in rss]
        top = max(revisions, default=0)
        if new is None:
            new = self._create_rs(deployment, top + 1)
            rss.append(new)
            self._progressing(deployment, "NewReplicaSetCreated", f'Created new replica set "{new["metadata"]["name"]}"')
        elif int((new["metadata"].get("annotations") or {}).get(REVISION, "0") or 0) < top:
            new["metadata"].setdefault("annotations", {})[REVISION] = str(top + 1)  # a rollback: newest again
            self._write("ReplicaSet", new)
        revision = (new["metadata"].get("annotations") or {}).get(REVISION, "1")
        if (deployment["metadata"].get("annotations") or {}).get(REVISION) != revision:
            deployment["metadata"].setdefault("annotations", {})[REVISION] = revision
            self._write("Deployment", deployment)
        old = [r for r in rss if r["metadata"]["uid"] != new["metadata"]["uid"]]
        replicas = spec.get("replicas", 1)
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            self._recreate(new, old, replicas)
        else:
            self._rolling(deployment, new, old, replicas)
        self._cleanup(deployment, old)

    def _recreate(self, new: dict[str, Any], old: list[dict[str, Any]], replicas: int) -> None:
        """recreate.go: old ReplicaSets to 0, wait until their pods are gone, then the new one."""
        for rs in old:
            self._set_replicas(rs, 0)
        if any(self._owned("Pod", rs) for rs in old):
            return
        self._set_replicas(new, replicas)

    def _rolling(self, deployment: dict[str, Any], new: dict[str, Any], old: list[dict[str, Any]],
                 replicas: int) -> None:
        """rolling.go: scale the new ReplicaSet up, then the old ones down, within the fenceposts."""
        surge, unavailable = rolling_limits(deployment)
        new_replicas = new["spec"].get("replicas", 0)
        total = sum(r["spec"].get("replicas", 0) for r in old) + new_replicas
        if new_replicas > replicas:
            self._set_replicas(new, replicas)
        elif new_replicas < replicas and total < replicas + surge:  # NewRSNewReplicas
            self._set_replicas(new, new_replicas + min(replicas + surge - total, replicas - new_replicas))
        self._scale_down_old(new, old, replicas, unavailable)

    def _scale_down_old(self, new: dict[str, Any], old: list[dict[str, Any]], replicas: int, unavailable: int) -> None:
        """reconcileOldReplicaSets: cleanupUnhealthyReplicas, then scaleDownOldReplicaSetsForRollingUpdate."""
        old = sorted((r for r in old if r["spec"].get("replicas", 0) > 0),
                     key=lambda r: r["metadata"].get("creationTimestamp", ""))
        if not old:
            return
        all_pods = sum(r["spec"].get("replicas", 0) for r in old) + new["spec"].get("replicas", 0)
        min_available = replicas - unavailable
        new_unavailable = new["spec"].get("replicas", 0) - (new.get("status") or {}).get("availableReplicas", 0)
        budget = all_pods - min_available - new_unavailable
        if budget <= 0:
            return
        for rs in old:  # unhealthy replicas of old ReplicaSets go first
            unhealthy = rs["spec"]["replicas"] - (rs.get("status") or {}).get("availableReplicas", 0)
            cut = min(max(unhealthy, 0), budget)
            if cut:
                self._set_replicas(rs, rs["spec"]["replicas"] - cut)
                budget -= cut
        available = sum((r.get("status") or {}).get("availableReplicas", 0) for r in old + [new])
        budget = min(budget, available - min_available)
        for rs in old:
            if budget <= 0:
                break
            cut = min(rs["spec"]["replicas"], budget)
            if cut:
                self._set_replicas(rs, rs["spec"]["replicas"] - cut)
                budget -= cut

    def _cleanup(self, deployment: dict[str, Any], old: list[dict[str, Any]]) -> None:
        """Old ReplicaSets with no replicas beyond revisionHistoryLimit are deleted (oldest first)."""
        limit = (deployment.get("spec") or {}).get("revisionHistoryLimit", 10)
        idle = sorted((r for r in old if not r["spec"].get("replicas") and not self._owned("Pod", r)),
                      key=lambda r: int((r["metadata"].get("annotations") or {}).get(REVISION, "0") or 0))
        for rs in idle[:max(len(idle) - limit, 0)]:
            self._delete("ReplicaSet", rs)

    def _progressing(self, deployment: dict[str, Any], reason: str, message: str) -> None:
        """The Progressing reason to publish with the next status (sync.go: NewReplicaSetCreated)."""
        self.pending_progress[deployment["metadata"]["uid"]] = ("True", reason, message)

    # --------------------------------------------------------------------- ReplicaSet
    def sync_replicaset(self, rs: dict[str, Any]) -> None:
        pods = self._owned("Pod", rs)
        wanted = rs["spec"].get("replicas", 1)
        if len(pods) < wanted:
            for _missing in range(wanted - len(pods)):
                self._create_pod(rs)
        elif len(pods) > wanted:
            for pod in sorted(pods, key=_deletion_rank)[:len(pods) - wanted]:
                self._delete("Pod", pod)

    def _create_pod(self, rs: dict[str, Any]) -> None:
        template = copy.deepcopy(rs["spec"]["template"])
        md = template.get("metadata") or {}
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"{rs['metadata']['name']}-{_suffix()}", "namespace": rs["metadata"]["namespace"],
                            "labels": md.get("labels") or {},
                            "ownerReferences": [_owner_ref(rs, "apps/v1", "ReplicaSet")]},
               "spec": template.get("spec") or {}}
        if md.get("annotations"):
            pod["metadata"]["annotations"] = md["annotations"]
        try:
            self.store.create(self.rt["Pod"], rs["metadata"]["namespace"], pod)
        except E.ApiError as err:
            if err.code != 409:  # a name collision: next pass
                raise

    def replicaset_status(self, rs: dict[str, Any]) -> None:
        now = _now()
        pods = self._owned("Pod", rs)
        min_ready = rs["spec"].get("minReadySeconds", 0)
        labels = ((rs["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
        status: dict[str, Any] = {"replicas": len(pods)}
        counts = {"fullyLabeledReplicas": sum(1 for p in pods if all(
                  (p["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items())),
                  "readyReplicas": sum(1 for p in pods if pod_ready(p)),
                  "availableReplicas": sum(1 for p in pods if pod_available(p, min_ready, now))}
        status.update({k: v for k, v in counts.items() if v})
        status["observedGeneration"] = rs["metadata"].get("generation", 1)
        if rs.get("status") != status:
            rs["status"] = status
            self._write("ReplicaSet", rs, status=True)

    # --------------------------------------------------------------------- Deployment status
    def deployment_status(self, deployment: dict[str, Any]) -> None:
        """deployment sync.go calculateStatus + progress.go syncRolloutStatus."""
        spec = deployment.get("spec") or {}
        replicas = spec.get("replicas", 1)
        rss = self._owned("ReplicaSet", deployment)
        new = self._new_rs(deployment, rss)
        old_status = deployment.get("status") or {}

        def total(key: str, sets: list[dict[str, Any]]) -> int:
            return sum((r.get("status") or {}).get(key, 0) for r in sets)

        counts = {"replicas": total("replicas", rss), "updatedReplicas": total("replicas", [new] if new else []),
                  "readyReplicas": total("readyReplicas", rss), "availableReplicas": total("availableReplicas", rss)}
        counts["unavailableReplicas"] = max(replicas - counts["availableReplicas"], 0)
        status: dict[str, Any] = {"observedGeneration": deployment["metadata"].get("generation", 1)}
        status.update({k: v for k, v in counts.items() if v})
        if old_status.get("collisionCount"):
            status["collisionCount"] = old_status["collisionCount"]
        _surge, unavailable = rolling_limits(deployment)
        now = _now()
        conditions = {c.get("type"): c for c in old_status.get("conditions") or []}
        if counts["availableReplicas"] >= replicas - unavailable:
            available = ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        else:
            available = ("False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
        name = new["metadata"]["name"] if new else deployment["metadata"]["name"]
        complete = (counts["updatedReplicas"] == replicas and counts["replicas"] == replicas
                    and counts["availableReplicas"] == replicas)
        previous = conditions.get("Progressing")
        progressed = {k: old_status.get(k, 0) for k in counts} != counts
        if deployment["metadata"]["uid"] in self.pending_progress:
            progressing = self.pending_progress.pop(deployment["metadata"]["uid"])
        elif complete:
            progressing = ("True", "NewReplicaSetAvailable", f'ReplicaSet "{name}" has successfully progressed.')
        elif progressed or previous is None or previous.get("reason") == "NewReplicaSetAvailable":
            progressing = ("True", "ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.')
        else:  # no progress: the condition stays, until progressDeadlineSeconds have passed
            progressing = (previous["status"], previous["reason"], previous.get("message", ""))
            last = _parse_ts(previous.get("lastUpdateTime"))
            if last is not None and (now - last).total_seconds() > spec.get("progressDeadlineSeconds", 600):
                progressing = ("False", "ProgressDeadlineExceeded", f'ReplicaSet "{name}" has timed out progressing.')
        status["conditions"] = [self._cond(conditions.get("Available"), "Available", available, False, now),
                                self._cond(previous, "Progressing", progressing, progressed, now)]
        if old_status != status:
            deployment["status"] = status
            self._write("Deployment", deployment, status=True)

    @staticmethod
    def _cond(old: dict[str, Any] | None, kind: str, value: tuple[str, str, str], touched: bool,
              now: dt.datetime) -> dict[str, Any]:
        status, reason, message = value
        same = old is not None and (old.get("status"), old.get("reason"), old.get("message")) == value
        return {"type": kind, "status": status,
                "lastUpdateTime": old["lastUpdateTime"] if same and not touched else _ts(now),
                "lastTransitionTime": old.get("lastTransitionTime") if old and old.get("status") == status else _ts(now),
                "reason": reason, "message": message}

    # --------------------------------------------------------------------- scheduler
    def schedule(self) -> None:
        nodes = self._objects("Node")
        pods = self._objects("Pod")
        for pod in pods:
            spec = pod.get("spec") or {}
            if spec.get("nodeName") or spec.get("schedulerName", "default-scheduler") != "default-scheduler":
                continue
            bound = [p for p in pods if (p.get("spec") or {}).get("nodeName")]
            reasons: dict[str, int] = {}
            feasible = []
            for node in nodes:
                why = self._unfit(pod, node, bound, nodes)
                if why:
                    reasons[why] = reasons.get(why, 0) + 1
                else:
                    feasible.append(node)
            if feasible:
                owner = (_owner(pod) or {}).get("uid")

                def load(node: dict[str, Any]) -> tuple[int, int, str]:
                    here = [p for p in bound if p["spec"]["nodeName"] == node["metadata"]["name"]]
                    return (sum(1 for p in here if (_owner(p) or {}).get("uid") == owner), len(here),
                            node["metadata"]["name"])

                self._bind(pod, min(feasible, key=load)["metadata"]["name"])  # pods[] sees it bound
            else:
                detail = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
                message = (f"0/{len(nodes)} nodes are available: {detail}. preemption: 0/{len(nodes)} nodes are "
                           f"available: {len(nodes)} Preemption is not helpful for scheduling.")
                self._pod_scheduled(pod, "False", "Unschedulable", message)

    def _unfit(self, pod: dict[str, Any], node: dict[str, Any], bound: list[dict[str, Any]],
               nodes: list[dict[str, Any]]) -> str | None:
        spec = pod["spec"]
        name = node["metadata"]["name"]
        if (node.get("spec") or {}).get("unschedulable"):
            return "node(s) were unschedulable"
        taint = untolerated_taint(spec, node)  # the default profile's filter order: the first failure counts
        if taint:
            return f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value', '')}}}"
        if not node_affinity_ok(spec, node):
            return "node(s) didn't match Pod's node affinity/selector"
        here = [p for p in bound if p["spec"]["nodeName"] == name]
        used = set().union(*(host_ports(p["spec"]) for p in here)) if here else set()
        if host_ports(spec) & used:
            return "node(s) didn't have free ports for the requested pod ports"
        labels_of = {n["metadata"]["name"]: (n["metadata"].get("labels") or {}) for n in nodes}
        node_labels = node["metadata"].get("labels") or {}
        ns = pod["metadata"]["namespace"]
        for term in _anti_affinity_terms(pod):
            key = term.get("topologyKey")
            if key not in node_labels:
                continue
            for other in bound:
                if labels_of.get(other["spec"]["nodeName"], {}).get(key) == node_labels[key] and \
                        _term_matches(term, ns, other):
                    return "node(s) didn't match pod anti-affinity rules"
        for other in bound:
            for term in _anti_affinity_terms(other):
                key = term.get("topologyKey")
                if key in node_labels and labels_of.get(other["spec"]["nodeName"], {}).get(key) == node_labels[key] \
                        and _term_matches(term, other["metadata"]["namespace"], pod):
                    return "node(s) didn't satisfy existing pods anti-affinity rules"
        return None

    def _bind(self, pod: dict[str, Any], node: str) -> None:
        """pods/binding: spec.nodeName, then PodScheduled=True (and the QoS class)."""
        pod["spec"]["nodeName"] = node
        self._write("Pod", pod)
        fresh = self.store.get(self.rt["Pod"], pod["metadata"]["namespace"], pod["metadata"]["name"])
        fresh.setdefault("status", {})["qosClass"] = qos_class(fresh["spec"])
        self._pod_scheduled(fresh, "True", None, None)

    def _pod_scheduled(self, pod: dict[str, Any], status: str, reason: str | None, message: str | None) -> None:
        pod_status = pod.setdefault("status", {"phase": "Pending"})
        conditions = [c for c in pod_status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        old = _condition(pod, "PodScheduled")
        cond = {"type": "PodScheduled", "status": status, "lastProbeTime": None,
                "lastTransitionTime": old["lastTransitionTime"] if old and old.get("status") == status else _ts()}
        if reason:
            cond.update(reason=reason, message=message)
        if old == cond:
            return
        pod_status["conditions"] = conditions + [cond]
        self._write("Pod", pod, status=True)


def _deletion_rank(pod: dict[str, Any]) -> tuple[int, int, int, int, str]:
    """controller.ActivePodsWithRanks order (pkg/controller/controller_utils.go, Less): unscheduled, then
    pending, then not ready, then the LOWER controller.kubernetes.io/pod-deletion-cost (KEP-2255, beta and
    on by default since 1.22; an unparsable value counts as 0), then the newest."""
    phase = {"Pending": 0, "Unknown": 1, "Running": 2}.get((pod.get("status") or {}).get("phase", "Pending"), 0)
    created = pod["metadata"].get("creationTimestamp", "")
    newest_first = "".join(chr(0x10FFFF - ord(c)) for c in created)
    try:
        cost = int((pod["metadata"].get("annotations") or {}).get(DELETION_COST, "0"))
    except ValueError:
        cost = 0
    return (1 if (pod.get("spec") or {}).get("nodeName") else 0, phase, 1 if pod_ready(pod) else 0, cost,
            newest_first)


def qos_class(spec: dict[str, Any]) -> str:
    """qos.GetPodQOS: Guaranteed (requests == limits for cpu and memory everywhere), BestEffort, Burstable."""
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    resources = [c.get("resources") or {} for c in containers]
    if not any((r.get("requests") or r.get("limits")) for r in resources):
        return "BestEffort"
    for r in resources:
        limits, requests = r.get("limits") or {}, r.get("requests") or limits
        if not all(k in limits and str(requests.get(k)) == str(limits[k]) for k in ("cpu", "memory")):
            return "Burstable"
    return "Guaranteed"


def start(store: Any, interval: float = 0.25) -> Controllers:
    return Controllers(store, interval).start()
