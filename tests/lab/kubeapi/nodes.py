"""The Node object of a lab node, as the API stand-in seeds it at start and as `lab up` registers a
node added to a running lab. Standard library only: tests/lab/lab.py (Debian's system Python, no
venv) imports it too."""

from __future__ import annotations

from typing import Any


def node_object(name: str, ip: str, kube_version: str, kernel: str, ts: str, labels: dict[str, str] | None = None,
                taints: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """A Ready node with the kubelet's usual labels, addresses and capacity; kube_version as v1.x.y."""
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64", **(labels or {})}},
        "spec": {"taints": taints} if taints else {},
        "status": {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "kubelet is posting ready status", "lastHeartbeatTime": ts,
                            "lastTransitionTime": ts}],
            "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
            "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
            "nodeInfo": {"kubeletVersion": kube_version, "kubeProxyVersion": "",
                         "operatingSystem": "linux", "architecture": "amd64",
                         "containerRuntimeVersion": "containerd://2.0.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
                         "kernelVersion": kernel, "machineID": "", "systemUUID": "", "bootID": ""},
        },
    }
