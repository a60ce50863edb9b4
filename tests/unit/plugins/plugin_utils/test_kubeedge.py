# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Kubernetes side's decisions (plugins/plugin_utils/_kubeedge.py)."""

from __future__ import annotations

import pytest
import yaml

from ansible_collections.cloudcore.ha.plugins.plugin_utils._kubeedge import (
    DEFAULT_VERSION,
    RELEASES,
    KubeEdgeError,
    apply_plan,
    check_label,
    config_covers,
    covers,
    documents,
    node_label_plan,
    node_names,
    release_facts,
    supported_minors,
    vip_address,
)


# ---------------------------------------------------------------- releases

def test_default_version_is_supported_and_newest():
    facts = release_facts(DEFAULT_VERSION)
    assert facts["minor"] == supported_minors()[-1]
    assert facts["image_tag"] == "v" + DEFAULT_VERSION


@pytest.mark.parametrize("minor", sorted(RELEASES))
def test_every_release_is_complete(minor):
    facts = release_facts("%d.%d.0" % minor)
    assert facts["config_api_version"] == "cloudcore.config.kubeedge.io/v1alpha2"
    names = facts["crd_names"]
    assert len(names) == len(set(names))
    for crd in facts["crds"]:
        assert sum(v["storage"] for v in crd["versions"]) == 1
        assert crd["name"] == "%s.%s" % (crd["plural"], crd["group"])
    groups = {g for rule in facts["rbac_rules"] for g in rule["apiGroups"]}
    # every CRD group CloudCore watches is readable
    assert {crd["group"] for crd in facts["crds"]} <= groups
    # least privilege: nothing we switched off, no wildcard
    assert "networking.istio.io" not in groups and "operations.kubeedge.io" not in groups
    assert all("*" not in rule["resources"] and "*" not in rule["verbs"] for rule in facts["rbac_rules"])
    crd_rule = [r for r in facts["rbac_rules"] if r["apiGroups"] == ["apiextensions.k8s.io"]]
    assert crd_rule and crd_rule[0]["verbs"] == ["get", "list", "watch"]


def test_1_23_adds_devicestatus():
    assert "devicestatuses.devices.kubeedge.io" in release_facts("1.23.1")["crd_names"]
    assert "devicestatuses.devices.kubeedge.io" not in release_facts("1.22.0")["crd_names"]
    rules = release_facts("1.23.0")["rbac_rules"]
    assert any("devicestatuses" in r["resources"] for r in rules)


def test_leading_v_is_accepted():
    assert release_facts("v1.23.1")["version"] == "1.23.1"


@pytest.mark.parametrize("bad", ["1.19.0", "2.0.0", "1.23", "latest", 1.23, None, ""])
def test_unsupported_version_names_variable_value_and_list(bad):
    with pytest.raises(KubeEdgeError) as err:
        release_facts(bad)
    text = str(err.value)
    assert text.startswith("cloudcore_version=")
    assert repr(bad) in text
    if bad == "1.19.0":
        assert "1.22.x" in text and "1.23.x" in text


def test_vip_address_drops_prefix():
    assert vip_address("10.213.102.100/24") == "10.213.102.100"
    assert vip_address("fd00:0:0::100/64") == "fd00::100"
    with pytest.raises(KubeEdgeError, match="cloudcore_vip"):
        vip_address("10.0.0.300/24")
    with pytest.raises(KubeEdgeError, match="is required"):
        vip_address(None)


# ---------------------------------------------------------------- documents and plan

def test_documents_keeps_order_and_drops_empty():
    docs = documents(["---\n", "apiVersion: v1\nkind: X\nmetadata: {name: a}\n",
                      "---\napiVersion: v1\nkind: Y\nmetadata: {name: b}\n---\n"])
    assert [d["kind"] for d in docs] == ["X", "Y"]


def test_documents_rejects_incomplete_objects():
    with pytest.raises(KubeEdgeError, match="apiVersion, kind and metadata.name"):
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


def test_plan_fresh_cluster_applies_everything_in_order():
    plan = apply_plan(_docs())
    assert [d["kind"] for d in plan["apply"]] == [
        "Namespace", "CustomResourceDefinition", "CustomResourceDefinition", "ConfigMap", "Deployment"]
    assert plan["skipped"] == [] and plan["pending"] == []


def test_plan_leaves_existing_crds_and_covered_config_alone():
    plan = apply_plan(_docs(), existing_crds=["rules.rules.kubeedge.io"], live_configmap=_cm(REWRITTEN))
    assert [d["metadata"]["name"] for d in plan["apply"]] == ["kubeedge", "devices.devices.kubeedge.io", "cloudcore"]
    assert plan["apply"][-1]["kind"] == "Deployment"
    reasons = {s["name"]: s["reason"] for s in plan["skipped"]}
    assert "keeps its own schema" in reasons["rules.rules.kubeedge.io"]
    assert "already holds" in reasons["cloudcore"]


def test_plan_without_crds():
    plan = apply_plan(_docs(), install_crds=False)
    assert all(d["kind"] != "CustomResourceDefinition" for d in plan["apply"])
    assert len(plan["skipped"]) == 2


def test_plan_check_mode_before_namespace_exists():
    plan = apply_plan(_docs(), namespace_exists=False, check_mode=True)
    assert [d["kind"] for d in plan["apply"]] == ["Namespace", "CustomResourceDefinition", "CustomResourceDefinition"]
    assert [p["kind"] for p in plan["pending"]] == ["ConfigMap", "Deployment"]
    # outside check mode, a missing namespace is created first: everything is applied
    assert len(apply_plan(_docs(), namespace_exists=False)["apply"]) == 5


# ---------------------------------------------------------------- node labels

LABEL = {"kubeedge.io/cloudcore-ha": "true"}


def _node(name, labels=None):
    return {"metadata": {"name": name, "labels": labels or {}}}


def test_label_validation():
    assert check_label(LABEL) == LABEL
    with pytest.raises(KubeEdgeError, match="must be a string"):
        check_label({"kubeedge.io/cloudcore-ha": True})
    with pytest.raises(KubeEdgeError, match="not a valid label key"):
        check_label({"Bad_Prefix/x": "1"})
    with pytest.raises(KubeEdgeError, match="non-empty mapping"):
        check_label({})
    with pytest.raises(KubeEdgeError, match="not a valid label value"):
        check_label({"a": "-x"})


def test_node_names_default_and_override():
    hostvars = {"h1": {}, "h2": {"cloudcore_node_name": "node-b"}, "h3": {"cloudcore_node_name": ""}}
    assert node_names(["h1", "h2", "h3"], hostvars) == ["h1", "node-b", "h3"]
    with pytest.raises(KubeEdgeError, match="two hosts"):
        node_names(["h1", "h2"], {"h1": {"cloudcore_node_name": "x"}, "h2": {"cloudcore_node_name": "x"}})


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
