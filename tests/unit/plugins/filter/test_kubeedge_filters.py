# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters cloudcore.ha.kubeedge_* (plugins/filter/kubeedge.py): the k8s_info shapes they take."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.cloudcore.ha.plugins.filter.kubeedge import FilterModule

FILTERS = FilterModule().filters()
LABEL = {"kubeedge.io/cloudcore-ha": "true"}


def node(name, labels=None):
    return {"metadata": {"name": name, "labels": labels or {}}}


def test_registered():
    assert set(FILTERS) == {"kubeedge_release", "kubeedge_labelled_nodes", "kubeedge_documents",
                            "kubeedge_apply_plan", "kubeedge_node_label_plan", "kubeedge_ready_pod",
                            "kubeedge_live_mode", "kubeedge_rollout_complete", "kubeedge_deletion_costs"}


def configmap(websocket_port=None):
    hub = '{"websocket": {"enable": true, "port": %d}}' % websocket_port if websocket_port else "{}"
    text = "apiVersion: cloudcore.config.kubeedge.io/v1alpha2\nkind: CloudCore\nmodules:\n  cloudHub: %s\n" % hub
    return {"metadata": {"name": "cloudcore"}, "data": {"cloudcore.yaml": text}}


def test_live_mode_from_the_websocket_port():
    live_mode = FILTERS["kubeedge_live_mode"]
    assert live_mode({"resources": []}) == "absent"
    assert live_mode({"resources": [configmap(10000)]}) == "vip"
    assert live_mode({"resources": [configmap()]}) == "vip"  # CloudCore's default port
    assert live_mode({"resources": [configmap(10100)]}) == "balanced"
    assert live_mode({"resources": [{"data": {"cloudcore.yaml": "{not yaml"}}]}) == "vip"


def deployment(generation=2, observed=2, replicas=3, updated=3, total=3, available=3):
    return {"metadata": {"generation": generation}, "spec": {"replicas": replicas},
            "status": {"observedGeneration": observed, "updatedReplicas": updated, "replicas": total,
                       "availableReplicas": available}}


@pytest.mark.parametrize("changes, complete", [
    ({}, True),
    ({"observed": 1}, False),  # the controller has not seen the new template yet
    ({"updated": 2}, False),  # one pod still runs the old template
    ({"total": 4}, False),  # an old pod is still terminating
    ({"available": 2}, False),  # a new pod is not available (minReadySeconds) yet
])
def test_rollout_complete(changes, complete):
    assert FILTERS["kubeedge_rollout_complete"]({"resources": [deployment(**changes)]}) is complete
    assert FILTERS["kubeedge_rollout_complete"]({"resources": []}) is False


def test_deletion_costs_holder_last_unknown_first():
    site = {"host": {"h1": {"node_name": "n1"}, "h2": {"node_name": "n2"}, "h3": {"node_name": "n3"}}}
    pods = {"resources": [{"metadata": {"name": "p%d" % i}, "spec": {"nodeName": node}}
                          for i, node in enumerate(["n1", "n2", "n3", "stray"])]}
    costs = FILTERS["kubeedge_deletion_costs"](pods, ["h2", "h3", "h1"], site)  # h1 holds the VIP
    cost = {item["node"]: item["annotations"]["controller.kubernetes.io/pod-deletion-cost"] for item in costs}
    assert cost == {"n2": "1", "n3": "2", "n1": "3", "stray": "0"}
    assert [item["name"] for item in costs] == ["p0", "p1", "p2", "p3"]


def test_ready_pod_from_k8s_info_results():
    ready = {"metadata": {"name": "p", "uid": "u2"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    old = {"resources": [{"metadata": {"name": "o", "uid": "u1"}}]}
    assert FILTERS["kubeedge_ready_pod"]({"resources": [ready]}, old) == "p"
    assert FILTERS["kubeedge_ready_pod"]({"resources": [ready]}, ["u2"]) == ""


def test_release_and_its_error():
    assert FILTERS["kubeedge_release"]("1.22.2")["image_tag"] == "v1.22.2"
    with pytest.raises(AnsibleFilterError, match="cloudcore.ha.kubeedge_release: cloudcore_version='9.9.9'"):
        FILTERS["kubeedge_release"]("9.9.9")


def test_k8s_info_results_a_loop_of_them_or_plain_objects():
    single = {"resources": [node("a", LABEL), node("b")]}
    looped = {"results": [{"resources": [node("a", LABEL)]}, {"resources": [node("b")]}]}
    for value in (single, looped, [node("a", LABEL), node("b")]):
        assert FILTERS["kubeedge_labelled_nodes"](value, LABEL) == ["a"]
    plan = FILTERS["kubeedge_node_label_plan"](single, ["a", "b", "c"], LABEL, prune=True)
    assert plan["missing"] == ["c"] and plan["label"] == ["b"] and plan["unlabel"] == []  # a carries it already
    assert FILTERS["kubeedge_node_label_plan"](single, ["a"], LABEL, False, ["b"])["unlabel"] == []  # b has none
    with pytest.raises(AnsibleFilterError, match="cloudcore.ha.kubeedge_labelled_nodes: cloudcore_node_label"):
        FILTERS["kubeedge_labelled_nodes"](single, {"a": True})


def test_documents_and_apply_plan_from_registered_results():
    docs = FILTERS["kubeedge_documents"]("apiVersion: v1\nkind: Namespace\nmetadata: {name: kubeedge}\n---\n"
                                         "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
                                         "metadata: {name: devices.devices.kubeedge.io}\n")
    plan = FILTERS["kubeedge_apply_plan"](docs, existing_crds={"resources": [{"metadata": {"name": "devices.devices.kubeedge.io"}}]},
                                          live_configmap={"resources": []}, namespace_exists={"resources": []})
    assert [d["kind"] for d in plan["apply"]] == ["Namespace"] and plan["rollout"] is False
    assert plan["skipped"][0]["reason"] == "exists; an installed CRD keeps its own schema"
    with pytest.raises(AnsibleFilterError, match="cloudcore.ha.kubeedge_documents: manifests"):
        FILTERS["kubeedge_documents"]("kind: X\n")


def test_apply_plan_tells_a_new_pod_template():
    """A live template that lacks a rendered setting means the controller replaces the pods; server
    defaults the live object carries beyond ours do not."""
    rendered = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cloudcore", "namespace": "kubeedge"},
                "spec": {"replicas": 3, "template": {"spec": {"containers": [
                    {"name": "cloudcore", "readinessProbe": {"httpGet": {"port": 10102}}}]}}}}
    live = {"metadata": {"name": "cloudcore"}, "spec": {"replicas": 3, "template": {"spec": {
        "schedulerName": "default-scheduler",
        "containers": [{"name": "cloudcore", "terminationMessagePath": "/dev/termination-log",
                        "readinessProbe": {"httpGet": {"port": 10002}, "successThreshold": 1}}]}}}}
    plan = FILTERS["kubeedge_apply_plan"]([rendered], live_deployment={"resources": [live]})
    assert plan["rollout"] is True and [d["kind"] for d in plan["deploy"]] == ["Deployment"]
    live["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = 10102
    assert FILTERS["kubeedge_apply_plan"]([rendered], live_deployment={"resources": [live]})["rollout"] is False
    assert FILTERS["kubeedge_apply_plan"]([rendered], live_deployment={"resources": []})["rollout"] is False


def test_apply_plan_tells_a_node_leaving_or_joining_the_site():
    rendered = {"kind": "Deployment", "metadata": {"name": "cloudcore", "namespace": "kubeedge"},
                "spec": {"replicas": 3, "template": {}}}

    def plan(live_replicas):
        live = {"spec": {"replicas": live_replicas, "template": {}}}
        result = FILTERS["kubeedge_apply_plan"]([rendered], live_deployment={"resources": [live]})
        assert result["wait"] == (result["scale_down"] or result["scale_up"] or result["rollout"])
        return result["scale_down"], result["scale_up"], result["rollout"]

    assert plan(4) == (True, False, False)
    assert plan(2) == (False, True, False)
    assert plan(3) == (False, False, False)
    first = FILTERS["kubeedge_apply_plan"]([rendered], live_deployment={"resources": []})
    assert (first["scale_down"], first["scale_up"]) == (False, False)  # a first deploy scales nothing


def test_a_template_whose_keyed_lists_came_back_in_another_order_is_no_rollout():
    """Server-side apply merges ports (containerPort, protocol) by key: after a change the server may list
    the kept ports first and the new ones after them (the lab's API stand-in does)."""
    ports = [{"containerPort": 10100, "name": "cloudhub"}, {"containerPort": 10001, "name": "quic", "protocol": "UDP"},
             {"containerPort": 10102, "name": "https"}]
    rendered = {"kind": "Deployment", "metadata": {"name": "cloudcore", "namespace": "kubeedge"},
                "spec": {"template": {"spec": {"containers": [{"name": "cloudcore", "ports": ports}]}}}}
    live = {"spec": {"template": {"spec": {"containers": [{"name": "cloudcore", "ports": [ports[1], ports[0], ports[2]]}]}}}}
    assert FILTERS["kubeedge_apply_plan"]([rendered], live_deployment={"resources": [live]})["rollout"] is False
    live["spec"]["template"]["spec"]["containers"][0]["ports"][1] = {"containerPort": 10000, "name": "cloudhub"}
    assert FILTERS["kubeedge_apply_plan"]([rendered], live_deployment={"resources": [live]})["rollout"] is True
