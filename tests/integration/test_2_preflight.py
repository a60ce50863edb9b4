"""Bad input: every case fails in preflight, names the variable, and changes nothing on the nodes or
in the cluster (keepalived.conf checksums and API objects identical before and after).

The cases here are those only a real site can judge (the nodes' interfaces and addresses, the cluster,
the health check's URL) and those a later role used to reject after earlier plays had changed things.
Every other rule of the input (a value's form: prefix lengths, ranges, label syntax, versions) is the
site plan's, judged by the unit tests (tests/unit/plugins/module_utils/test_site.py, test_inputs.py);
test_all_problems_are_reported_at_once proves such messages reach the operator and stop the run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from conftest import INVENTORY, LAB_DIR, run_playbook, snapshot

# Each case: the group of its run, its input, the variable the message names and the rule it states.
# Preflight reports every problem at once, so the cases of one group share one run of site.yml (a
# run costs ~20 s); a group's inputs are independent (none keeps preflight from judging another). A
# value-form problem (group 5) is the site plan's, and preflight reports those alone: it judges what
# the nodes and the cluster show (groups 1-4) only from inputs the plan accepted.
CASES = {
    "vip is a node address": (1, {"cloudcore_vip": "10.213.102.11/24"}, "cloudcore_vip",
                              "is the own address of host ccha-node1"),
    "vip outside the subnet": (2, {"cloudcore_vip": "10.99.0.100/24"}, "cloudcore_vip",
                               "is outside the subnets of interface eth0"),
    "ipv6 vip outside the nodes' ipv6 subnet": (3, {"cloudcore_vip": "fd00:99::100/64"}, "cloudcore_vip", "subnet"),
    "interface missing": (4, {"cloudcore_vrrp_interface": "eth9"}, "cloudcore_vrrp_interface", "no such interface"),
    "priorities that cannot fail over": (
        5, {"cloudcore_failover": "weighted", "keepalived_check_weight": 2,
            "keepalived_priorities": {"ccha-node1": 100, "ccha-node2": 90, "ccha-node3": 80}},
        "keepalived_check_weight", "must exceed the priority gap"),
    "check url failing on every node": (1, {"cloudcore_check_url": "https://127.0.0.1:10002/nonexistent"},
                                        "cloudcore_check_url", "fails on every node"),
    "kubeconfig unreadable": (4, {"cloudcore_kubeconfig": "/nonexistent/kubeconfig"}, "cloudcore_kubeconfig",
                              "cannot be reached"),
    # inputs a later role used to reject after earlier plays had changed things
    "label value not a string": (5, {"cloudcore_node_label": {"kubeedge.io/cloudcore-ha": True}},
                                 "cloudcore_node_label", "must be a string"),
    "unsupported version": (5, {"cloudcore_version": "1.17.0"}, "cloudcore_version", "is not supported"),
    "curl deadline over the check timeout": (5, {"keepalived_check_curl_timeout": 2}, "keepalived_check_curl_timeout",
                                             "must be below cloudcore_check_timeout"),
}


@pytest.fixture
def unchanged(lab_state, first_site_run, nodes, kube):
    before = snapshot(nodes, kube)
    yield
    assert snapshot(nodes, kube) == before, "a run that failed preflight changed something"


def assert_rejected(run, variable, rule):
    assert run.rc != 0, run.output[-3000:]
    assert "Preflight found" in run.output, run.output[-3000:]
    assert variable in run.output and rule in run.output, run.output[-3000:]
    # preflight stopped the run: no later play started
    assert "Label the CloudCore nodes" not in run.output


@pytest.fixture(scope="module")
def group_runs(first_site_run, nodes, kube):
    """group -> (its run of site.yml with every input of the group, whether the run changed nothing)."""
    runs = {}

    def run_of(group):
        if group not in runs:
            extra_vars = {}
            for case_group, case_vars, _variable, _rule in CASES.values():
                if case_group == group:
                    extra_vars.update(case_vars)
            before = snapshot(nodes, kube)
            run = run_playbook("site.yml", "-e", json.dumps(extra_vars))
            runs[group] = (run, snapshot(nodes, kube) == before)
        return runs[group]
    return run_of


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_rejected_before_anything_changes(case, group_runs):
    group, _extra_vars, variable, rule = CASES[case]
    run, changed_nothing = group_runs(group)
    assert_rejected(run, variable, rule)
    assert changed_nothing, "a run that failed preflight changed something"


def test_all_problems_are_reported_at_once(unchanged):
    run = run_playbook("site.yml", "-e", json.dumps(
        {"cloudcore_vip": "10.213.102.0/24", "cloudcore_vrrp_router_id": 0, "cloudcore_failover": "x"}))
    assert run.rc != 0
    problems = re.search(r"Preflight found (\d+) problem\(s\)", run.output)
    assert problems and int(problems.group(1)) >= 3, run.output[-3000:]
    for line in ("- cloudcore_vip='10.213.102.0/24'", "- cloudcore_vrrp_router_id=0", "- cloudcore_failover='x'"):
        assert line in run.output, run.output[-3000:]


def test_a_node_missing_from_the_cluster(unchanged, tmp_path):
    inventory = tmp_path / "inventory"
    shutil.copytree(INVENTORY, inventory)
    host_vars = inventory / "host_vars" / "ccha-node3.yml"
    host_vars.write_text(host_vars.read_text().replace("cloudcore_node_name: ccha-node3", "cloudcore_node_name: ghost"))
    run = run_playbook("site.yml", inventory=str(inventory))
    assert_rejected(run, "cloudcore_node_name", "on host ccha-node3: no such node in the cluster")


def test_cluster_unreachable(unchanged, tmp_path):
    with open(os.path.join(LAB_DIR, "kubeconfig")) as handle:
        config = yaml.safe_load(handle)
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = "https://127.0.0.1:1"  # loopback, closed
    unreachable = tmp_path / "kubeconfig"
    unreachable.write_text(yaml.safe_dump(config))
    run = run_playbook("site.yml", "-e", json.dumps({"cloudcore_kubeconfig": str(unreachable)}))
    assert_rejected(run, "cloudcore_kubeconfig", "cannot be reached")


def test_fewer_than_two_nodes(unchanged, tmp_path):
    inventory = tmp_path / "inventory"
    shutil.copytree(INVENTORY, inventory)
    hosts_file = inventory / "hosts.yml"
    hosts = yaml.safe_load(hosts_file.read_text())
    group = hosts["all"]["children"]["cloudcore"]["hosts"]
    for name in list(group)[1:]:
        del group[name]
    hosts_file.write_text(yaml.safe_dump(hosts))
    run = run_playbook("site.yml", inventory=str(inventory))
    assert_rejected(run, "groups['cloudcore']", "")


def test_vip_already_answering_from_a_host_outside_the_group(unchanged, lab_state):
    # A machine outside the group (the lab's edge namespace) takes the address first.
    edge = lab_state["edge"]
    subprocess.run(["ip", "-n", edge["namespace"], "address", "add", "10.213.102.150/24", "dev", edge["interface"]],
                   check=True)
    try:
        run = run_playbook("site.yml", "-e", json.dumps({"cloudcore_vip": "10.213.102.150/24"}))
    finally:
        subprocess.run(["ip", "-n", edge["namespace"], "address", "del", "10.213.102.150/24", "dev", edge["interface"]],
                       check=False)
    assert_rejected(run, "cloudcore_vip", "another machine uses this address")
