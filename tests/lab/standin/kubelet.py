"""The lab node's kubelet, for one pod only: the CloudCore pod bound to this node.

Why: a CloudCore pod's life is what an installer changes (rollout restart, a new ConfigMap checksum,
a deleted pod). The API stand-in's controllers create and bind the pods; this module does the
kubelet's part for the pod of Deployment ``kubeedge/cloudcore`` on this node: find it, report the
container started (``Running``, not ready), run the pod's readiness probe against this node's
CloudCore and report ``Ready`` when it answers, report a crashed or stopped container, and notice
when the pod is deleted or replaced (then the process ends: systemd starts a fresh one, a fresh
pod). One API poll every ``poll_seconds`` (no watch).

The status fields are the kubelet's (pkg/kubelet/status, kubelet_pods.go generateAPIPodStatus):
phase, hostIP(s), podIP(s) (hostNetwork: the node's address), startTime, the conditions
PodReadyToStartContainers, Initialized, ContainersReady, Ready, PodScheduled, and
containerStatuses with state/lastState/restartCount.
"""
from __future__ import annotations

import datetime
import hashlib
import http.client
import ssl
import urllib.parse

from kubeclient import KubeClient, KubeError

NAMESPACE = "kubeedge"
DEPLOYMENT = "cloudcore"


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_path(namespace: str, name: str = "", sub: str = "") -> str:
    path = f"/api/v1/namespaces/{urllib.parse.quote(namespace)}/pods"
    return path + (f"/{urllib.parse.quote(name)}" if name else "") + (f"/{sub}" if sub else "")


class Kubelet:
    """API calls and status reports for this node's CloudCore pod."""

    def __init__(self, api: KubeClient, node: str, log, namespace: str = NAMESPACE, deployment: str = DEPLOYMENT):
        self.api, self.node, self.log = api, node, log
        self.namespace, self.deployment_name = namespace, deployment
        self.node_ip = ""

    # ------------------------------------------------------------------ reads
    def deployment(self) -> dict | None:
        """The Deployment, or None (also when the namespace is gone). KubeError when unreachable."""
        return self.api.get(f"/apis/apps/v1/namespaces/{urllib.parse.quote(self.namespace)}/deployments/"
                            f"{urllib.parse.quote(self.deployment_name)}")

    def host_ip(self) -> str:
        """The node's InternalIP (what the kubelet reports as hostIP); "" when unknown."""
        if not self.node_ip:
            node = self.api.get(f"/api/v1/nodes/{urllib.parse.quote(self.node)}") or {}
            for address in (node.get("status") or {}).get("addresses") or []:
                if address.get("type") == "InternalIP":
                    self.node_ip = address.get("address", "")
                    break
        return self.node_ip

    def bound_pod(self, deployment: dict) -> dict | None:
        """The oldest pod of the Deployment bound to this node (not being deleted), or None."""
        labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        pods = self.api.list(pod_path(self.namespace), label_selector=selector,
                             field_selector=f"spec.nodeName={self.node}")
        prefix = f"{self.deployment_name}-"
        mine = [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")
                and any(ref.get("kind") == "ReplicaSet" and str(ref.get("name", "")).startswith(prefix)
                        for ref in (p.get("metadata") or {}).get("ownerReferences") or [])]
        mine.sort(key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"]))
        return mine[0] if mine else None

    def current(self, pod: dict) -> dict | None:
        """This pod as the API has it now (None when deleted or replaced by one of the same name)."""
        fresh = self.api.get(pod_path(self.namespace, pod["metadata"]["name"]))
        if fresh is None or fresh["metadata"].get("uid") != pod["metadata"].get("uid"):
            return None
        if fresh["metadata"].get("deletionTimestamp"):
            return None
        return fresh

    # ------------------------------------------------------------------ status reports
    def _patch(self, pod: dict, status: dict) -> None:
        try:
            self.api.merge_patch(pod_path(self.namespace, pod["metadata"]["name"], "status"), {"status": status})
        except KubeError as exc:
            if exc.status != 404:
                self.log(f"kubelet: status of pod {pod['metadata']['name']} not updated: {exc}")

    def _conditions(self, pod: dict, ready: bool) -> list[dict]:
        old = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or []}

        def cond(kind: str, value: bool, reason: str | None = None) -> dict:
            status = "True" if value else "False"
            previous = old.get(kind) or {}
            out = {"type": kind, "status": status, "lastProbeTime": None,
                   "lastTransitionTime": previous.get("lastTransitionTime") if previous.get("status") == status
                   else now()}
            if reason and not value:
                out.update(reason=reason, message="containers with unready status: [cloudcore]")
            return out

        return [cond("PodReadyToStartContainers", True), cond("Initialized", True),
                cond("Ready", ready, "ContainersNotReady"), cond("ContainersReady", ready, "ContainersNotReady"),
                cond("PodScheduled", True)]

    def _container(self, pod: dict) -> dict:
        spec = (pod.get("spec") or {}).get("containers") or [{}]
        image = spec[0].get("image", "")
        return {"name": spec[0].get("name", "cloudcore"), "image": image,
                "imageID": "docker.io/" + image.split("@")[0] + "@sha256:" + hashlib.sha256(image.encode()).hexdigest()}

    def started(self, pod: dict) -> dict:
        """The container started (again): Running, not ready; a restart counts in restartCount."""
        old = ((pod.get("status") or {}).get("containerStatuses") or [None])[0]
        restarts = 0
        last = {}
        if old:  # this pod ran a container before: a container restart, as the kubelet counts it
            restarts = int(old.get("restartCount", 0)) + 1
            state = old.get("state") or {}
            last = {"terminated": state["terminated"]} if "terminated" in state else \
                {"terminated": {"exitCode": 137, "reason": "Error", "startedAt": (state.get("running") or {})
                                .get("startedAt", now()), "finishedAt": now()}}
        container = dict(self._container(pod), ready=False, started=True, restartCount=restarts,
                         containerID="containerd://" + hashlib.sha256(f"{pod['metadata']['uid']}{restarts}".encode())
                         .hexdigest(), state={"running": {"startedAt": now()}}, lastState=last)
        ip = self.host_ip()
        status = {"phase": "Running", "conditions": self._conditions(pod, False), "containerStatuses": [container],
                  "startTime": (pod.get("status") or {}).get("startTime") or now()}
        if ip:
            status.update(hostIP=ip, hostIPs=[{"ip": ip}], podIP=ip, podIPs=[{"ip": ip}])
        self._patch(pod, status)
        pod = dict(pod, status=dict(pod.get("status") or {}, **status))
        return pod

    def readiness(self, pod: dict, ready: bool) -> dict:
        status = dict(pod.get("status") or {})
        containers = [dict(c, ready=ready) for c in status.get("containerStatuses") or []]
        status.update(conditions=self._conditions(pod, ready), containerStatuses=containers)
        self._patch(pod, {"conditions": status["conditions"], "containerStatuses": containers})
        return dict(pod, status=status)

    def exited(self, pod: dict, code: int) -> None:
        """The container ended: terminated (restartPolicy Always keeps the phase Running)."""
        status = pod.get("status") or {}
        containers = []
        for c in status.get("containerStatuses") or [dict(self._container(pod), restartCount=0, started=False)]:
            started = ((c.get("state") or {}).get("running") or {}).get("startedAt", now())
            containers.append(dict(c, ready=False, started=False, state={"terminated": {
                "exitCode": code, "reason": "Completed" if code == 0 else "Error", "startedAt": started,
                "finishedAt": now(), "containerID": c.get("containerID", "")}}))
        self._patch(pod, {"conditions": self._conditions(pod, False), "containerStatuses": containers})


def readiness_probe(pod: dict) -> dict:
    """The container's readinessProbe (httpGet), or {} when it has none."""
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    return containers[0].get("readinessProbe") or {}


def http_probe(host: str, port: int, path: str, scheme: str, timeout: float) -> bool:
    """prober.go httpGet: success is a status in [200, 400); HTTPS without verification."""
    try:
        if scheme.upper() == "HTTPS":
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request("GET", path or "/", headers={"User-Agent": "kube-probe/1.37"})
            return 200 <= conn.getresponse().status < 400
        finally:
            conn.close()
    except (OSError, http.client.HTTPException):
        return False
