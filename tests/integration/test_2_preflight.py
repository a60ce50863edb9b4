"""Bad input: every case fails in preflight, names the variable, and changes nothing on the nodes or
in the cluster (keepalived.conf checksums and API objects identical before and after)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from conftest import INVENTORY, LAB_DIR, run_playbook, snapshot

CASES = {
    "vip without prefix": ({"cloudcore_vip": "10.213.102.100"}, "cloudcore_vip", "needs a prefix length"),
    "vip not an address": ({"cloudcore_vip": "10.213.102.300/24"}, "cloudcore_vip", "is not an IPv4 or IPv6 address"),
    "vip is the network address": ({"cloudcore_vip": "10.213.102.0/24"}, "cloudcore_vip", "network address"),
    "vip is the broadcast address": ({"cloudcore_vip": "10.213.102.255/24"}, "cloudcore_vip", "broadcast address"),
    "vip is a node address": ({"cloudcore_vip": "10.213.102.11/24"}, "cloudcore_vip", "is the own address of host ccha-node1"),
    "vip outside the subnet": ({"cloudcore_vip": "10.99.0.100/24"}, "cloudcore_vip", "is outside the subnets of interface eth0"),
    "ipv6 vip outside the nodes' ipv6 subnet": ({"cloudcore_vip": "fd00:99::100/64"}, "cloudcore_vip", "subnet"),
    "interface missing": ({"cloudcore_vrrp_interface": "eth9"}, "cloudcore_vrrp_interface", "no such interface"),
    "router id missing": ({"cloudcore_vrrp_router_id": None}, "cloudcore_vrrp_router_id", "must be an integer 1..255"),
    "router id out of range": ({"cloudcore_vrrp_router_id": 256}, "cloudcore_vrrp_router_id", "must be 1..255"),
    "auth secret too long": ({"cloudcore_vrrp_auth_pass": "123456789"}, "cloudcore_vrrp_auth_pass", "at most 8 characters"),
    "priorities that cannot fail over": (
        {"cloudcore_failover": "weighted", "keepalived_check_weight": 2,
         "keepalived_priorities": {"ccha-node1": 100, "ccha-node2": 90, "ccha-node3": 80}},
        "keepalived_check_weight", "must exceed the priority gap"),
    "duplicate node names": ({"cloudcore_node_name": "ccha-node1"}, "cloudcore_node_name", "is used by hosts"),
    "invalid node label": ({"cloudcore_node_label": {"bad key!": "x"}}, "cloudcore_node_label", "label"),
    "unknown failover mode": ({"cloudcore_failover": "sometimes"}, "cloudcore_failover", "is unknown"),
    "unknown vrrp mode": ({"cloudcore_vrrp_mode": "broadcast"}, "cloudcore_vrrp_mode", "is unknown"),
    "check url failing on every node": ({"cloudcore_check_url": "https://127.0.0.1:10002/nonexistent"},
                                        "cloudcore_check_url", "fails on every node"),
    "kubeconfig unreadable": ({"cloudcore_kubeconfig": "/nonexistent/kubeconfig"}, "cloudcore_kubeconfig",
                              "cannot be reached"),
    # inputs a later role used to reject after earlier plays had changed things
    "label value not a string": ({"cloudcore_node_label": {"kubeedge.io/cloudcore-ha": True}}, "cloudcore_node_label",
                                 "must be a string"),
    "label value too long": ({"cloudcore_node_label": {"kubeedge.io/cloudcore-ha": "x" * 64}}, "cloudcore_node_label",
                             "at most 63 characters"),
    "label key with a leading dash": ({"cloudcore_node_label": {"-cloudcore": "true"}}, "cloudcore_node_label",
                                      "label name must be 1..63 characters"),
    "unsupported version": ({"cloudcore_version": "1.17.0"}, "cloudcore_version", "is not supported"),
    "malformed version": ({"cloudcore_version": "latest"}, "cloudcore_version", "MAJOR.MINOR.PATCH"),
    "check interval 0": ({"cloudcore_check_interval": 0}, "cloudcore_check_interval", "whole seconds"),
    "check fall 0": ({"cloudcore_check_fall": 0}, "cloudcore_check_fall", "must be 1..255"),
    "check url not a url": ({"cloudcore_check_url": "127.0.0.1:10002/ca.crt"}, "cloudcore_check_url",
                            "http or https URL"),
    "empty image": ({"cloudcore_image": ""}, "cloudcore_image", "image repository"),
    "dns name not a dns name": ({"manifests_dns_names": ["cloud core"]}, "manifests_dns_names", "not a DNS name"),
    "curl deadline over the check timeout": ({"keepalived_check_curl_timeout": 2}, "keepalived_check_curl_timeout",
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


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_rejected_before_anything_changes(case, unchanged):
    extra_vars, variable, rule = CASES[case]
    run = run_playbook("site.yml", "-e", json.dumps(extra_vars))
    assert_rejected(run, variable, rule)


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
