# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Preflight's observations judged against the site plan (plugins/module_utils/_preflight.py)."""

from __future__ import annotations

from ansible_collections.cloudcore.ha.plugins.module_utils._preflight import (
    ClusterObservation,
    NodeObservation,
    cluster_observation,
    pki_observation,
    preflight_problems,
)
from ansible_collections.cloudcore.ha.plugins.module_utils._site import site_plan

from sites import facts, hostvars, settings

RUNNING = ClusterObservation(reachable=True, node_names=("n1", "n2", "control-plane"), cloudcore_deployed=True)


def nodes(ping=(1, 1), status=(200, 200), held=None):
    return [NodeObservation(host, facts(address, vip="10.1.0.100" if host == held else None), ping[i], status[i])
            for i, (host, address) in enumerate((("n1", "10.1.0.11"), ("n2", "10.1.0.12")))]


def judge(observed, cluster=RUNNING, pki=None, **changes):
    return preflight_problems(site_plan(settings(**changes), hostvars()), observed, cluster, pki)


def test_a_good_site_has_no_problem():
    assert judge(nodes()) == []


def test_something_else_answering_for_the_vip_unless_a_node_holds_it():
    assert any("another machine uses this address" in m for m in judge(nodes(ping=(0, 1))))
    assert judge(nodes(ping=(0, 0), held="n1")) == []


def test_a_health_check_failing_everywhere_blocks_a_running_cloudcore_only():
    failing = nodes(status=(-1, 404))
    assert any("fails on every node (HTTP n1=no answer, n2=404)" in m for m in judge(failing))
    assert judge(failing, preflight_allow_unhealthy_cloudcore=True) == []
    first_install = ClusterObservation(reachable=True, node_names=("n1", "n2"), cloudcore_deployed=False)
    assert judge(failing, first_install) == []
    assert judge(nodes(status=(-1, 200))) == []


def test_the_cluster_and_its_nodes():
    unreachable = judge(nodes(), ClusterObservation(reachable=False, error="connection refused"))
    assert unreachable == ["cloudcore_kubeconfig='~/.kube/config': the cluster cannot be reached with it (context"
                           " current): connection refused"]
    missing = judge(nodes(), ClusterObservation(reachable=True, node_names=("n1",)))
    assert missing == ["cloudcore_node_name='n2': on host n2: no such node in the cluster (nodes: n1)"]


def test_observations_wait_for_sound_inputs():
    assert judge(nodes(ping=(0, 0)), cloudcore_vrrp_router_id=0) == [
        "cloudcore_vrrp_router_id=0: must be 1..255 (VRRP's 8-bit router id, unique on the L2 segment)"]


def test_cluster_observation_from_registered_results():
    assert cluster_observation(None, None) is None and cluster_observation({"skipped": True}, None) is None
    seen = cluster_observation({"resources": [{"metadata": {"name": "a"}}]}, {"resources": []})
    assert seen == ClusterObservation(reachable=True, node_names=("a",), cloudcore_deployed=False)
    assert cluster_observation({"failed": True, "msg": "boom\nmore"}, None).error == "boom"


def test_a_certificate_the_pki_step_would_refuse_is_reported_with_its_variable():
    refused = {"failed": False, "msg": "cloudcore_pki: CloudCore's certificate ... not valid for IP:10.1.0.100 ...",
               "blocked": "CloudCore's certificate ... not valid for IP:10.1.0.100 ...",
               "blocked_variable": "cloudcore_vip", "blocked_value": ["10.1.0.100"]}
    problem = pki_observation(refused)
    assert problem.variable == "cloudcore_vip" and problem.rule.startswith("CloudCore's certificate")
    assert judge(nodes(), RUNNING, pki=problem) == [problem.msg]
    # unreachable clusters are the cluster observation's; skipped or passing checks are none
    for result in (None, {"skipped": True}, {"changed": True}, {"failed": True, "msg": "cannot reach"}):
        assert pki_observation(result) is None
    assert judge(nodes(), ClusterObservation(reachable=False, error="x"), pki=problem) == [
        "cloudcore_kubeconfig='~/.kube/config': the cluster cannot be reached with it (context current): x"]


def test_the_only_healthy_cloudcore_may_not_leave_the_site():
    hosts = hostvars(n3={"ansible_facts": facts("10.1.0.13"), "cloudcore_state": "absent"})
    site = site_plan(settings(cloudcore_hosts=["n1", "n2", "n3"]), hosts)
    cluster = ClusterObservation(reachable=True, node_names=("n1", "n2", "n3"), cloudcore_deployed=True)

    def observed(*statuses):
        return [NodeObservation(host, facts(address), 1, status) for (host, address), status in
                zip((("n1", "10.1.0.11"), ("n2", "10.1.0.12"), ("n3", "10.1.0.13")), statuses)]

    refused = preflight_problems(site, observed(-1, 503, 200), cluster)
    assert refused == ["cloudcore_state='absent': on n3: the only healthy CloudCore would leave the site (the check"
                       " fails on n1, n2); fix CloudCore on the nodes that stay first, or set"
                       " preflight_allow_unhealthy_cloudcore=true"]
    assert preflight_problems(site, observed(200, 503, 200), cluster) == []
    assert preflight_problems(site, observed(200, 200, -1), cluster) == []  # a dead leaving node may go
    allowed = site_plan(settings(cloudcore_hosts=["n1", "n2", "n3"], preflight_allow_unhealthy_cloudcore=True), hosts)
    assert preflight_problems(allowed, observed(-1, 503, 200), cluster) == []


def test_a_downgrade_across_a_minor_release_is_refused():
    def running(image):
        deployment = {"resources": [{"spec": {"template": {"spec": {"containers": [
            {"name": "sidecar", "image": "busybox:1.36"}, {"name": "cloudcore", "image": image}]}}}}]}
        return cluster_observation({"resources": [{"metadata": {"name": "n1"}}, {"metadata": {"name": "n2"}}]},
                                   deployment)

    refused = judge(nodes(), running("kubeedge/cloudcore:v1.23.1"), cloudcore_version="1.22.2")
    assert refused == ["cloudcore_version='1.22.2': is older than the running CloudCore 1.23.1 (image"
                       " kubeedge/cloudcore:v1.23.1): a downgrade across a minor release is refused (KubeEdge"
                       " upgrades one way; restore from a backup, or reset the site and install 1.22.2)"]
    assert judge(nodes(), running("kubeedge/cloudcore:v1.22.2"), cloudcore_version="1.23.1") == []  # the upgrade
    assert judge(nodes(), running("kubeedge/cloudcore:v1.23.1"), cloudcore_version="1.23.0") == []  # a patch down
    assert judge(nodes(), running("registry.local:5000/cloudcore@sha256:ab"), cloudcore_version="1.22.2") == []
