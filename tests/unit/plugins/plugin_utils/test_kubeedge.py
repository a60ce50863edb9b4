# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Kubernetes side's decisions (plugins/plugin_utils/_kubeedge.py)."""

from __future__ import annotations

import pytest
import yaml

from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import InputError
from ansible_collections.cloudcore.ha.plugins.plugin_utils._kubeedge import (
    apply_plan,
    config_covers,
    covers,
    documents,
    labelled_nodes,
    node_label_plan,
    ready_pod,
)


# ---------------------------------------------------------------- documents and plan

def test_documents_keeps_order_and_drops_empty():
    docs = documents(["---\n", "apiVersion: v1\nkind: X\nmetadata: {name: a}\n",
                      "---\napiVersion: v1\nkind: Y\nmetadata: {name: b}\n---\n"])
    assert [d["kind"] for d in docs] == ["X", "Y"]


def test_documents_rejects_incomplete_objects():
    with pytest.raises(InputError, match="apiVersion, kind and metadata.name"):
        documents(["kind: X\n"])


def _cm(text, labels=None):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cloudcore", "namespace": "kubeedge", "labels": labels or {"a": "b"}},
            "data": {"cloudcore.yaml": text}}


DESIRED = """apiVersion: cloudcore.config.kubeedge.io/v1alpha2
kind: CloudCore
kubeAPIConfig: {kubeConfig: "", master: ""}
modules:
  cloudHub: {advertiseAddress: ["10.0.0.100"], dnsNames: [], nodeLimit: 1000, https: {enable: true, port: 10002}}
  router: {enable: false}
"""

# What CloudCore writes back (yaml.Marshal of the adjusted config): more keys, zero values dropped.
REWRITTEN = """apiVersion: cloudcore.config.kubeedge.io/v1alpha2
kind: CloudCore
kubeAPIConfig: {qps: 5000, burst: 10000, contentType: application/vnd.kubernetes.protobuf}
modules:
  cloudHub:
    advertiseAddress: ["10.0.0.100"]
    nodeLimit: 1000
    https: {address: 0.0.0.0, enable: true, port: 10002}
    tokenRefreshDuration: 12
  router: {}
  edgeController: {load: {queryNodeWorkers: 1000}}
"""


def test_config_rewritten_by_cloudcore_still_covers():
    assert config_covers(_cm(REWRITTEN), _cm(DESIRED))


def test_config_with_other_vip_does_not_cover():
    assert not config_covers(_cm(REWRITTEN.replace("10.0.0.100", "10.0.0.7")), _cm(DESIRED))
    assert not config_covers(_cm(REWRITTEN.replace("enable: true", "enable: false")), _cm(DESIRED))
    assert not config_covers(_cm(REWRITTEN, labels={"x": "y"}), _cm(DESIRED))
    assert not config_covers(None, _cm(DESIRED))
    assert not config_covers(_cm("{{ not yaml"), _cm(DESIRED))


def test_covers_rules():
    assert covers({"a": 1, "b": 2}, {"a": 1})
    assert not covers({"a": 1}, {"a": 1, "b": 2})
    assert covers({}, {"b": False, "c": "", "d": [], "e": 0})
    assert not covers({"a": [1, 2]}, {"a": [1]})
    assert not covers({"a": 0}, {"a": False})
    assert not covers({"a": "1"}, {"a": 1})


def _docs():
    return documents("""
apiVersion: v1
kind: Namespace
metadata: {name: kubeedge}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: devices.devices.kubeedge.io}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: rules.rules.kubeedge.io}
---
""" + yaml.safe_dump(_cm(DESIRED)) + """---
apiVersion: apps/v1
kind: Deployment
metadata: {name: cloudcore, namespace: kubeedge}
""")


def test_plan_fresh_cluster_applies_everything_in_order_the_deployment_last_and_apart():
    plan = apply_plan(_docs())
    assert [d["kind"] for d in plan["apply"]] == [
        "Namespace", "CustomResourceDefinition", "CustomResourceDefinition", "ConfigMap"]
    assert [d["kind"] for d in plan["deploy"]] == ["Deployment"]
    assert plan["skipped"] == [] and plan["pending"] == []
    assert plan["config_changed"] is False  # nothing ran with the old configuration


def test_plan_leaves_existing_crds_and_covered_config_alone():
    plan = apply_plan(_docs(), existing_crds=["rules.rules.kubeedge.io"], live_configmap=_cm(REWRITTEN))
    assert [d["metadata"]["name"] for d in plan["apply"]] == ["kubeedge", "devices.devices.kubeedge.io"]
    assert plan["deploy"][0]["kind"] == "Deployment"
    reasons = {s["name"]: s["reason"] for s in plan["skipped"]}
    assert "keeps its own schema" in reasons["rules.rules.kubeedge.io"]
    assert "already holds" in reasons["cloudcore"]
    assert plan["config_changed"] is False


def test_a_changed_live_configuration_asks_for_a_restart():
    other = {"modules": {"cloudHub": {"advertiseAddress": ["10.0.0.9"]}}}
    plan = apply_plan(_docs(), live_configmap=_cm(yaml.safe_dump(other)))
    assert plan["config_changed"] is True


def test_plan_without_crds():
    plan = apply_plan(_docs(), install_crds=False)
    assert all(d["kind"] != "CustomResourceDefinition" for d in plan["apply"])
    assert len(plan["skipped"]) == 2


def test_plan_check_mode_before_namespace_exists():
    plan = apply_plan(_docs(), namespace_exists=False, check_mode=True)
    assert [d["kind"] for d in plan["apply"]] == ["Namespace", "CustomResourceDefinition", "CustomResourceDefinition"]
    assert [p["kind"] for p in plan["pending"]] == ["ConfigMap", "Deployment"] and plan["deploy"] == []
    # outside check mode, a missing namespace is created first: everything is applied
    outside = apply_plan(_docs(), namespace_exists=False)
    assert len(outside["apply"]) == 4 and len(outside["deploy"]) == 1


def test_ready_pod_is_a_new_ready_one():
    old = {"metadata": {"name": "a", "uid": "1"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    new = {"metadata": {"name": "b", "uid": "2"}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    assert ready_pod([old, new], ["1"]) == ""
    new["status"]["conditions"][0]["status"] = "True"
    assert ready_pod([old, new], ["1"]) == "b" and ready_pod([old], []) == "a"
    gone = dict(new, metadata={"name": "b", "uid": "2", "deletionTimestamp": "x"})
    assert ready_pod([gone], []) == ""


# ---------------------------------------------------------------- node labels

LABEL = {"kubeedge.io/cloudcore-ha": "true"}


def _node(name, labels=None):
    return {"metadata": {"name": name, "labels": labels or {}}}


def test_labels_are_parsed_by_the_one_label_parser():
    with pytest.raises(InputError, match="must be a string"):
        node_label_plan([], ["a"], {"kubeedge.io/cloudcore-ha": True})
    with pytest.raises(InputError, match="prefix must be a lowercase DNS subdomain"):
        labelled_nodes([], {"Bad_Prefix/x": "1"})


def test_labelled_nodes_need_every_key_with_our_value():
    nodes = [_node("a", LABEL), _node("b", {"kubeedge.io/cloudcore-ha": "false"}), _node("c")]
    assert labelled_nodes(nodes, LABEL) == ["a"]


def test_node_plan_missing_lists_existing():
    plan = node_label_plan([_node("a"), _node("b")], ["a", "c"], LABEL)
    assert plan["missing"] == ["c"]
    assert plan["existing"] == ["a", "b"]
    assert plan["label"] == ["a"]


def test_node_plan_prune_only_our_value():
    nodes = [_node("a", LABEL), _node("b", LABEL), _node("c", {"kubeedge.io/cloudcore-ha": "other"}), _node("d")]
    assert node_label_plan(nodes, ["a"], LABEL)["unlabel"] == []
    plan = node_label_plan(nodes, ["a"], LABEL, prune=True)
    assert plan["unlabel"] == ["b"]
    assert plan["remove"] == {"kubeedge.io/cloudcore-ha": None}


def test_a_node_leaving_the_site_loses_the_label_without_prune():
    nodes = [_node("a", LABEL), _node("b", LABEL), _node("c", LABEL), _node("d")]
    plan = node_label_plan(nodes, ["a", "b"], LABEL, unwanted=["c", "d"])
    assert plan["unlabel"] == ["c"]  # d carries no label: nothing to take away
    assert node_label_plan(nodes, ["a"], LABEL, prune=True, unwanted=["c"])["unlabel"] == ["b", "c"]


def test_a_node_that_carries_the_label_is_not_patched_again():
    nodes = [_node("a", LABEL), _node("b", {"kubeedge.io/cloudcore-ha": "false"}), _node("c")]
    assert node_label_plan(nodes, ["a", "b", "c"], LABEL)["label"] == ["b", "c"]
