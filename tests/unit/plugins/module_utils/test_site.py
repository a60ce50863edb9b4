# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The site plan (plugins/module_utils/_site.py): every input parsed once, every problem at once, and
whatever the plan accepts, every later step accepts."""

from __future__ import annotations

import glob
import os

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from hypothesis import example, given, settings as hypothesis_settings, strategies as st

from ansible_collections.cloudcore.ha.plugins.module_utils._certs import vip_in_sans
from ansible_collections.cloudcore.ha.plugins.module_utils._balancer_plan import server_id
from ansible_collections.cloudcore.ha.plugins.module_utils._firewall import balancer_traffic, vrrp_traffic
from ansible_collections.cloudcore.ha.plugins.module_utils._haproxy_conf import from_options as haproxy_model
from ansible_collections.cloudcore.ha.plugins.module_utils._haproxy_conf import render_haproxy_cfg
from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import parse_image_repository, parse_node_labels
from ansible_collections.cloudcore.ha.plugins.module_utils._keepalived_conf import from_options, render_keepalived_conf
from ansible_collections.cloudcore.ha.plugins.module_utils._site import site_plan

from sites import ROOT, facts, hostvars, settings


def plan(hosts=None, **changes):
    return site_plan(settings(**changes), hosts or hostvars())


def test_a_good_site():
    site = plan()
    assert site["problems"] == [] and site["network_problems"] == [] and site["network_planned"]
    assert site["hosts"] == ["n1", "n2"] and site["node_names"] == ["n1", "n2"]
    assert site["vip"] == {"address": "10.1.0.100", "cidr": "10.1.0.100/24", "prefix": 24, "version": 4,
                           "network": "10.1.0.0/24"}
    assert site["vrrp"] == {"router_id": 51, "mode": "multicast", "failover": "fault", "version": 2, "advert_int": 1.0,
                            "multicast_group": "224.0.0.18", "auth": False}
    assert site["check"]["command"] == ("/usr/local/sbin/check_cloudcore https://127.0.0.1:10002/ca.crt 0.8"
                                        " /run/cloudcore-ha/drain")
    assert site["keepalived"]["service"] == "keepalived"
    host = site["host"]["n2"]
    assert host["vrrp"] == {"priority": 240, "state": "BACKUP", "nopreempt": True, "track_weight": 0}
    assert host["endpoint"] == {"interface": "eth0", "address": "10.1.0.12", "peers": ["10.1.0.11"]}
    conf = host["keepalived_conf"]
    assert (conf["router_id"], conf["priority"], conf["vip"], conf["interface"], conf["unicast_peers"]) == (
        "n2", 240, "10.1.0.100/24", "eth0", [])
    assert conf["check_script"] == site["check"]["command"] and "auth_pass" not in conf
    assert host["firewall"] == {"interface": "eth0", "vip": "10.1.0.100/24", "mode": "multicast",
                                "multicast_group": "224.0.0.18", "peers": ["10.1.0.11"], "firewall": "auto"}
    manifests = site["manifests"]
    assert (manifests["vip_address"], manifests["replicas"], manifests["image"]) == (
        "10.1.0.100", 2, "kubeedge/cloudcore:v1.23.1")
    assert manifests["node_selector"] == {"kubeedge.io/cloudcore-ha": "true"} == site["node_labels"]["labels"]
    assert manifests["release"]["minor"] == "1.23"
    assert site["mode"] == "vip" and host["haproxy_conf"] is None
    # planned in vip mode too: a site leaving balanced mode, and the reset, remove these rules
    assert host["balancer_firewall"]["ports"] == [10100, 10102, 10104, 10110]
    assert manifests["ports"] == {"websocket": 10000, "quic": 10001, "https": 10002, "stream": 10003, "tunnel": 10004}
    assert manifests["min_ready_seconds"] == 3  # rise 2 x interval 1 s + 1


def test_a_balanced_site():
    """CloudCore on the internal ports; each host's haproxy.cfg lists every CloudCore under the same name
    and id, at its VRRP address; the internal and peers ports are guarded; keepalived's check stays on the
    public https port, which haproxy now answers."""
    site = plan(cloudcore_ha_mode="balanced")
    assert site["problems"] == [] and site["network_problems"] == [] and site["mode"] == "balanced"
    assert site["manifests"]["ports"] == {"websocket": 10100, "quic": 10001, "https": 10102, "stream": 10003,
                                          "tunnel": 10104}
    assert site["check"]["command"].startswith("/usr/local/sbin/check_cloudcore https://127.0.0.1:10002/ca.crt ")
    servers = {name: site["host"][name]["haproxy_conf"]["cloudcores"] for name in ("n1", "n2")}
    assert servers["n1"] == servers["n2"] == [
        {"name": "n1", "id": server_id("n1"), "address": "10.1.0.11"},
        {"name": "n2", "id": server_id("n2"), "address": "10.1.0.12"}]
    conf = site["host"]["n2"]["haproxy_conf"]
    assert (conf["node"], conf["ca_file"], conf["internal_https_port"], conf["check_fall"]) == (
        "n2", "/etc/cloudcore-ha/ca.crt", 10102, 2)
    assert "localpeer n2" in render_haproxy_cfg(haproxy_model(conf))
    assert site["host"]["n2"]["balancer_firewall"] == {"interface": "eth0", "peers": ["10.1.0.11"],
                                                       "ports": [10100, 10102, 10104, 10110], "firewall": "auto"}
    assert site["balancer"]["public_ports"] == [10000, 10002, 10004]
    assert site["balancer"]["packages"] == ["haproxy", "nftables"]  # nft for the guard (balancer_firewall)
    assert site["balancer"]["package"] == "haproxy"


def test_server_ids_follow_the_node_name_not_the_order():
    """Reordering the hosts or adding one never changes a CloudCore's id (the shared table stores ids)."""
    two = plan(cloudcore_ha_mode="balanced")
    reordered = plan(cloudcore_ha_mode="balanced", keepalived_priorities=["n2", "n1"])
    three = plan(hostvars(n3={"ansible_facts": facts("10.1.0.13")}), cloudcore_ha_mode="balanced",
                 cloudcore_hosts=["n1", "n2", "n3"])

    def ids(site):
        return {s["name"]: s["id"] for s in site["host"]["n1"]["haproxy_conf"]["cloudcores"]}
    assert ids(two) == ids(reordered) == {k: v for k, v in ids(three).items() if k != "n3"}
    pinned = plan(hostvars(n1={"balancer_server_id": 7}), cloudcore_ha_mode="balanced")
    assert ids(pinned)["n1"] == 7
    clash = plan(hostvars(n1={"balancer_server_id": server_id("n2")}), cloudcore_ha_mode="balanced")
    assert any(m.startswith("balancer_server_id=%d: is the haproxy server id of hosts n1, n2" % server_id("n2"))
               for m in clash["problems"]), clash["problems"]


def test_balanced_edge_capacity_survives_one_cloudcore_down():
    three = dict(cloudcore_hosts=["n1", "n2", "n3"], cloudcore_ha_mode="balanced", manifests_node_limit=500)
    hosts = hostvars(n3={"ansible_facts": facts("10.1.0.13")})
    assert plan(hosts, cloudcore_edge_nodes=1000, **three)["problems"] == []
    problems = plan(hosts, cloudcore_edge_nodes=1001, **three)["problems"]
    assert problems == ["cloudcore_edge_nodes=1001: is more than manifests_node_limit x (nodes - 1) = 500 x 2 = 1000:"
                        " with one CloudCore down the others must hold every edge; raise manifests_node_limit to at"
                        " least 501 or add a node"]
    vip_mode = {**three, "cloudcore_ha_mode": "vip"}
    vip = plan(hosts, cloudcore_edge_nodes=501, **vip_mode)["problems"]
    assert vip and "or use cloudcore_ha_mode: balanced" in vip[0]


def test_unicast_weighted_ipv6():
    v6 = hostvars(n1={"ansible_facts": facts("10.1.0.11", ipv6="fd00::11")},
                  n2={"ansible_facts": facts("10.1.0.12", ipv6="fd00::12")})
    site = plan(v6, cloudcore_vip="fd00::100/64", cloudcore_vrrp_mode="unicast", cloudcore_failover="weighted")
    assert site["problems"] == [] and site["network_problems"] == []
    conf = site["host"]["n1"]["keepalived_conf"]
    assert (conf["state"], conf["check_weight"], conf["vrrp_version"]) == ("MASTER", 2, 3)
    assert (conf["unicast_src_ip"], conf["unicast_peers"], conf["multicast_group"]) == ("fd00::11", ["fd00::12"], None)
    assert site["host"]["n2"]["firewall"]["peers"] == ["fd00::11"]


def test_pinned_priorities_decide_the_preference_order():
    site = plan(keepalived_priorities={"n1": 100, "n2": 200})
    assert site["hosts"] == ["n2", "n1"]
    assert site["host"]["n2"]["keepalived_conf"]["priority"] == 200


def test_the_secret_is_checked_but_never_planned():
    site = plan(cloudcore_vrrp_auth_pass="s3cret")
    assert site["vrrp"]["auth"] is True and "s3cret" not in repr(site)
    bad = plan(cloudcore_vrrp_auth_pass="toolongsecret")
    assert bad["problems"] == ["cloudcore_vrrp_auth_pass='<13 characters>': must be at most 8 characters: keepalived"
                               " silently uses only the first 8 (and its config test fails); shorten it"]
    assert "toolongsecret" not in repr(bad)


# Each input a later step would reject, and the message preflight gives (the cases first).
BAD = [
    ({"cloudcore_node_label": {"kubeedge.io/cloudcore-ha": True}}, "cloudcore_node_label", "must be a string"),
    ({"cloudcore_node_label": {"ok": "x" * 64}}, "cloudcore_node_label", "at most 63 characters"),
    ({"cloudcore_node_label": {"-bad": "x"}}, "cloudcore_node_label", "label name must be"),
    ({"cloudcore_version": "1.17.0"}, "cloudcore_version", "KubeEdge 1.17 is not supported"),
    ({"cloudcore_version": "latest"}, "cloudcore_version", "MAJOR.MINOR.PATCH"),
    ({"cloudcore_check_interval": 0}, "cloudcore_check_interval", "whole seconds"),
    ({"cloudcore_check_fall": 0}, "cloudcore_check_fall", "must be 1..255"),
    ({"cloudcore_check_url": "127.0.0.1:10002/ca.crt"}, "cloudcore_check_url", "http or https URL"),
    ({"cloudcore_image": ""}, "cloudcore_image", "image repository"),
    ({"cloudcore_vip": "10.1.0.100"}, "cloudcore_vip", "needs a prefix length"),
    ({"cloudcore_vip": None}, "cloudcore_vip", "is required"),
    ({"cloudcore_vrrp_router_id": 256}, "cloudcore_vrrp_router_id", "1..255"),
    ({"cloudcore_vrrp_router_id": None}, "cloudcore_vrrp_router_id", "must be an integer 1..255"),
    ({"cloudcore_vrrp_mode": "broadcast"}, "cloudcore_vrrp_mode", "is unknown"),
    ({"cloudcore_failover": "sometimes"}, "cloudcore_failover", "is unknown"),
    ({"keepalived_firewall": "iptables"}, "keepalived_firewall", "use one of: auto, none, firewalld, ufw, nftables"),
    ({"keepalived_priorities": {"n1": 100, "n2": 90}, "cloudcore_failover": "weighted", "keepalived_check_weight": 2},
     "keepalived_check_weight", "weight 2 must exceed the priority gap 10"),
    ({"keepalived_priorities": ["n1"]}, "keepalived_priorities", "missing: n2"),
    ({"keepalived_check_weight": 5}, "keepalived_check_weight", "only applies to cloudcore_failover: weighted"),
    ({"keepalived_advert_int": 0.5, "cloudcore_vrrp_auth_pass": "s3cret"}, "cloudcore_vrrp_auth_pass", "VRRPv3"),
    ({"keepalived_advert_int": "fast"}, "keepalived_advert_int", "must be a number"),
    ({"keepalived_check_curl_timeout": 1}, "keepalived_check_curl_timeout", "must be below cloudcore_check_timeout"),
    ({"keepalived_script_dir": "sbin"}, "keepalived_script_dir", "absolute path"),
    ({"keepalived_script_user": "Root User"}, "keepalived_script_user", "system user name"),
    ({"keepalived_multicast_group": "10.0.0.1"}, "keepalived_multicast_group", "multicast address"),
    ({"keepalived_notify_script": "notify.sh"}, "keepalived_notify_script", "absolute path"),
    ({"manifests_dns_names": ["bad_name"]}, "manifests_dns_names", "not a DNS name"),
    ({"manifests_node_limit": 0}, "manifests_node_limit", "must be 1..1000000"),
    ({"manifests_resources": {"limits": {"cpu": "a lot"}}}, "manifests_resources.limits.cpu", "quantity"),
    ({"manifests_tolerations": [{"key": "a", "operator": "In"}]}, "manifests_tolerations[0]", "operator"),
    ({"manifests_install_crds": "maybe"}, "manifests_install_crds", "boolean"),
    ({"cloudcore_rotate_cert": "sometimes"}, "cloudcore_rotate_cert", "boolean"),
    ({"verify_wait_seconds": "long"}, "verify_wait_seconds", "whole number"),
    ({"node_labels_prune": "x"}, "node_labels_prune", "boolean"),
    ({"cloudcore_kubeconfig": "kubeconfig"}, "cloudcore_kubeconfig", "path on the controller"),
    ({"cloudcore_hosts": ["n1"]}, "groups['cloudcore']", "has 1 node(s)"),
    ({"cloudcore_edge_nodes": 1500}, "cloudcore_edge_nodes", "is more than manifests_node_limit (1000)"),
    ({"cloudcore_edge_nodes": -1}, "cloudcore_edge_nodes", "must be >= 0"),
    ({"cloudcore_ha_mode": "ingress"}, "cloudcore_ha_mode", "use one of: vip, balanced"),
    ({"balancer_internal_https_port": 10002}, "balancer_internal_https_port", "is CloudCore's public https port"),
    ({"balancer_peers_port": 10100}, "balancer_peers_port", "is balancer_internal_websocket_port"),
    ({"balancer_monitor_port": 9091}, "balancer_monitor_port", "is reserved for CloudCore"),
    ({"balancer_internal_tunnel_port": 70000}, "balancer_internal_tunnel_port", "must be 1..65535"),
    ({"balancer_ca_file": "ca.crt"}, "balancer_ca_file", "absolute path"),
    ({"balancer_wait_seconds": 0}, "balancer_wait_seconds", "must be 1..3600"),
]


@pytest.mark.parametrize("changes, variable, fragment", BAD, ids=[c[1] + "-" + c[2] for c in BAD])
def test_each_bad_input_is_named(changes, variable, fragment):
    site = plan(**changes)
    assert any(message.startswith(variable) and fragment in message for message in site["problems"]), site["problems"]
    assert site["hosts"] == [] and site["host"] == {}  # nothing to act on


def test_every_problem_at_once():
    site = plan(cloudcore_vip="10.1.0.0/24", cloudcore_vrrp_router_id=0, cloudcore_failover="x",
                cloudcore_version="2.0.0", cloudcore_check_url="x")
    variables = {message.split("=", 1)[0] for message in site["problems"]}
    assert {"cloudcore_vip", "cloudcore_vrrp_router_id", "cloudcore_failover", "cloudcore_version",
            "cloudcore_check_url"} <= variables


def test_edge_capacity_only_when_the_site_says_how_many():
    assert plan(cloudcore_edge_nodes=None)["problems"] == []
    assert plan(cloudcore_edge_nodes=1000)["problems"] == []


def test_node_names():
    same = hostvars(n1={"cloudcore_node_name": "same"}, n2={"cloudcore_node_name": "same"})
    assert "cloudcore_node_name='same': is used by hosts n1, n2; every host needs its own node" in plan(same)["problems"]
    bad = hostvars(n1={"cloudcore_node_name": "Bad_Name"})
    assert any(m.startswith("cloudcore_node_name='Bad_Name'") for m in plan(bad)["problems"])
    renamed = hostvars(n1={"cloudcore_node_name": "cloud-1"})
    assert plan(renamed)["node_names"] == ["cloud-1", "n2"]


@pytest.mark.parametrize("hosts, changes, fragment", [
    (hostvars(n1={"cloudcore_vrrp_interface": "eth9"}), {}, "on host n1: no such interface (interfaces: eth0, lo)"),
    (hostvars(), {"cloudcore_vip": "10.2.0.100/24"}, "on host n1: no interface has an address in the VIP's subnet"),
    (hostvars(), {"cloudcore_vip": "10.1.0.11/24"}, "is the own address of host n1"),
    (hostvars(n1={"cloudcore_vrrp_interface": "eth0"}), {"cloudcore_vip": "fd00::100/64"},
     "on host n1: interface eth0 has no IPv6 address"),
    ({"n1": {"ansible_facts": facts("10.1.0.11")}, "n2": {}}, {}, "on host n2: no network facts were gathered"),
    (hostvars(n1={"cloudcore_vrrp_interface": "bad name"}), {}, "must be an interface name"),
])
def test_network_problems_are_the_hosts(hosts, changes, fragment):
    site = plan(hosts, **changes)
    assert site["problems"] == []
    assert any(fragment in message for message in site["network_problems"]), site["network_problems"]
    assert not site["network_planned"]


def test_without_facts_the_kubernetes_side_is_still_planned():
    site = plan({"n1": {}, "n2": {}})
    assert site["problems"] == [] and site["manifests"]["replicas"] == 2 and site["node_names"] == ["n1", "n2"]
    assert not site["network_planned"] and site["host"]["n1"]["keepalived_conf"] is None


# --- whatever the plan accepts, every later step accepts ------------------------------------------

def _role_argument_specs():
    specs = []
    for path in sorted(glob.glob(os.path.join(ROOT, "roles", "*", "meta", "argument_specs.yml"))):
        with open(path) as handle:
            entries = yaml.safe_load(handle)["argument_specs"]
        for entry, spec in entries.items():
            specs.append(("%s:%s" % (path.split(os.sep)[-3], entry), spec.get("options") or {}))
    return specs


ROLE_SPECS = _role_argument_specs()

# Values for each input: (ones valid on their own, ones some rule rejects).
POOLS = {
    "cloudcore_vip": (["10.1.0.100/24", "10.1.0.200/24", "fd00::100/64"], ["10.1.0.100", "10.1.0.0/24", "10.1.0.11/24",
                                                                           "10.9.0.1/24", "x"]),
    "cloudcore_vrrp_router_id": ([1, 51, 255, "7"], [0, 256, None, "x"]),
    "cloudcore_vrrp_auth_pass": ([None, "s3cret", "12345678"], ["123456789", "a b"]),
    "cloudcore_vrrp_mode": (["multicast", "unicast"], ["broadcast"]),
    "cloudcore_failover": (["fault", "weighted"], ["x"]),
    "cloudcore_check_url": (["https://127.0.0.1:10002/ca.crt", "http://[::1]:9091/metrics"], ["ca.crt", ""]),
    "cloudcore_check_interval": ([1, 2, "3"], [0, 0.5]),
    "cloudcore_check_timeout": ([1, 2], [0, 1.5]),
    "cloudcore_check_fall": ([1, 2], [0, "x"]),
    "cloudcore_check_rise": ([1, 3], [-1]),
    "cloudcore_node_label": ([{"kubeedge.io/cloudcore-ha": "true"}, {"a": ""}], [{"a": True}, {"-a": "b"}, {}]),
    "cloudcore_version": (["1.23.1", "1.22.2", "v1.23.0"], ["1.17.0", "latest", 1.23]),
    "cloudcore_image": (["kubeedge/cloudcore", "registry.example:5000/ke/cloudcore"], ["", "Kube/Edge", "ke:tag"]),
    "keepalived_advert_int": ([1, 2, 0.5, 0.05], [0, 300, "x"]),
    "keepalived_check_curl_timeout": ([0.8, 0.5], [1, 3, 0, "x"]),
    "keepalived_multicast_group": (["224.0.0.18", "224.0.0.19", "ff02::12"], ["10.0.0.1", None]),
    "keepalived_priorities": ([None, ["n2", "n1"], {"n1": 100, "n2": 200}],
                              [{"n1": 100, "n2": 100}, ["n1"], {"n1": 255, "n2": 1}]),
    "keepalived_check_weight": ([None, 2, 50, -60], [0, 300]),
    "keepalived_firewall": (["auto", "none", "ufw"], ["iptables"]),
    "manifests_dns_names": ([[], ["cloudcore.example"], ["*.example.com"]], [["10.0.0.1"], "x"]),
    "manifests_node_limit": ([1000, 1, "50"], [0, -5, "x"]),
    "manifests_tolerations": ([[], [{"key": "a", "operator": "Exists"}]], [[{"operator": "Equal"}], "x"]),
    "cloudcore_rotate_cert": ([False, True, "yes"], ["maybe"]),
    "verify_wait_seconds": ([30, 1], [0, "x"]),
    "cloudcore_ha_mode": (["vip", "balanced"], ["ingress"]),
    "balancer_internal_https_port": ([10102, 20002], [10002, 0]),
    "balancer_peers_port": ([10110, 30000], [10100, 10111]),
}


def _value(pool):
    valid, invalid = pool
    # mostly valid values, so that many sites are accepted and the property has something to prove
    return st.one_of(st.sampled_from(valid), st.sampled_from(valid), st.sampled_from(valid), st.sampled_from(invalid))


ACCEPTED = []

HOSTVARIANTS = [
    hostvars(),
    hostvars(n1={"ansible_facts": facts("10.1.0.11", ipv6="fd00::11")}, n2={"ansible_facts": facts("10.1.0.12", ipv6="fd00::12")}),
    hostvars(n1={"cloudcore_vrrp_interface": "eth0"}, n2={"cloudcore_node_name": "cloud-2"}),
    hostvars(n1={"cloudcore_node_name": "n2"}),
]


def _secret(changes):
    return changes.get("cloudcore_vrrp_auth_pass")


@hypothesis_settings(max_examples=400, deadline=None, derandomize=True, database=None)
@example(changes={"cloudcore_vrrp_mode": "unicast"}, hosts=HOSTVARIANTS[0])
@example(changes={"cloudcore_failover": "weighted", "keepalived_priorities": {"n1": 100, "n2": 200}},
         hosts=HOSTVARIANTS[2])
@example(changes={"cloudcore_vip": "fd00::100/64", "cloudcore_vrrp_mode": "unicast", "keepalived_advert_int": 0.05},
         hosts=HOSTVARIANTS[1])
@given(changes=st.fixed_dictionaries({}, optional={key: _value(pool) for key, pool in POOLS.items()}),
       hosts=st.sampled_from(HOSTVARIANTS))
def test_whatever_the_plan_accepts_every_later_step_accepts(changes, hosts):
    values = settings(**changes)
    site = site_plan(values, hosts)
    if site["problems"] or site["network_problems"]:
        return
    ACCEPTED.append(changes)
    # the modules: keepalived_config renders the model (its own rules pass), vrrp_firewall takes the rule
    for name in site["hosts"]:
        host = site["host"][name]
        render_keepalived_conf(from_options(dict(host["keepalived_conf"], auth_pass=_secret(changes))))
        firewall = dict(host["firewall"])
        firewall.pop("firewall")
        vrrp_traffic(**firewall)
        # haproxy_config renders the balanced model (its own rules pass), balancer_firewall takes its rule
        if site["mode"] == "balanced":
            render_haproxy_cfg(haproxy_model(host["haproxy_conf"]))
            guarded = dict(host["balancer_firewall"])
            guarded.pop("firewall")
            balancer_traffic(**guarded)
    # the filters and templates of the Kubernetes side
    assert vip_in_sans(site["vip"]["cidr"], {"ip": [site["vip"]["address"]]})
    parse_node_labels(site["node_labels"]["labels"])
    parse_image_repository(site["manifests"]["image"].rsplit(":", 1)[0])
    # every role's argument spec, which Ansible checks when the role starts
    for role, spec in ROLE_SPECS:
        parameters = {key: values[key] for key in spec if key in values}
        result = ArgumentSpecValidator(spec).validate(parameters)
        assert not result.error_messages, (role, result.error_messages)


def test_the_property_above_reached_the_accepting_branch_often():
    # runs after the property (file order): a property that never gets past its first `return` proves nothing
    assert len(ACCEPTED) >= 40, len(ACCEPTED)
    assert any(changes.get("cloudcore_vrrp_mode") == "unicast" for changes in ACCEPTED)
    assert any(changes.get("cloudcore_failover") == "weighted" for changes in ACCEPTED)
    assert any(changes.get("cloudcore_ha_mode") == "balanced" for changes in ACCEPTED)


def _three(**per_host):
    hosts = hostvars(n3={"ansible_facts": facts("10.1.0.13")})
    for host, variables in per_host.items():
        hosts[host].update(variables)
    return hosts


def test_a_host_marked_absent_leaves_the_site():
    site = plan(_three(n1={"cloudcore_state": "absent"}), cloudcore_hosts=["n1", "n2", "n3"])
    assert site["problems"] == [] and site["network_problems"] == [] and site["network_planned"]
    assert site["hosts"] == ["n2", "n3"] and site["leaving"] == ["n1"] and site["group"] == ["n2", "n3", "n1"]
    assert site["node_names"] == ["n2", "n3"] and site["leaving_node_names"] == ["n1"]
    assert site["manifests"]["replicas"] == 2
    # the CloudCore nodes are planned without it: priorities, peers, firewall rules
    assert site["host"]["n2"]["vrrp"]["priority"] == 250 and site["host"]["n3"]["vrrp"]["priority"] == 240
    assert site["host"]["n2"]["firewall"]["peers"] == ["10.1.0.13"]
    # the leaving host keeps only what its removal needs: the rules it has, to take them away
    leaving = site["host"]["n1"]
    assert leaving["state"] == "absent" and leaving["vrrp"] is None and leaving["keepalived_conf"] is None
    assert leaving["haproxy_conf"] is None and leaving["node_name"] == "n1"
    assert leaving["firewall"]["peers"] == ["10.1.0.12", "10.1.0.13"] == leaving["balancer_firewall"]["peers"]
    assert site["host"]["n2"]["state"] == "present"


def test_a_balanced_site_plans_its_backends_without_the_leaving_host():
    site = plan(_three(n3={"cloudcore_state": "absent"}), cloudcore_hosts=["n1", "n2", "n3"],
                cloudcore_ha_mode="balanced")
    assert site["problems"] == [] and site["network_problems"] == [], site["network_problems"]
    servers = [server["name"] for server in site["host"]["n1"]["haproxy_conf"]["cloudcores"]]
    assert servers == ["n1", "n2"]


def test_priorities_may_still_name_the_leaving_host():
    order = plan(_three(n1={"cloudcore_state": "absent"}), cloudcore_hosts=["n1", "n2", "n3"],
                 keepalived_priorities=["n3", "n1", "n2"])
    assert order["problems"] == [] and order["hosts"] == ["n3", "n2"]
    pinned = plan(_three(n2={"cloudcore_state": "absent"}), cloudcore_hosts=["n1", "n2", "n3"],
                  keepalived_priorities={"n1": 200, "n2": 150, "n3": 100})
    assert pinned["problems"] == [] and pinned["hosts"] == ["n1", "n3"]


def test_a_removal_that_leaves_fewer_than_two_nodes_is_refused():
    site = plan(hostvars(n2={"cloudcore_state": "absent"}))
    assert site["hosts"] == [] and len(site["problems"]) == 1, site["problems"]
    assert site["problems"][0].startswith("cloudcore_state='absent': on n2 would leave 1 CloudCore node(s) (n1)")


def test_an_unknown_state_is_named():
    site = plan(hostvars(n2={"cloudcore_state": "gone"}))
    assert "cloudcore_state='gone': is unknown; use one of: present, absent" in site["problems"]


def test_a_vip_change_serves_the_previous_vip_until_it_is_retired():
    during = plan(cloudcore_vip="10.1.0.101/24", cloudcore_vip_previous="10.1.0.100/24")
    assert during["problems"] == [] and during["network_problems"] == [], during["network_problems"]
    assert during["vip"]["cidr"] == "10.1.0.101/24"
    assert during["vip_change"]["addresses"] == ["10.1.0.101", "10.1.0.100"] == during["manifests"]["advertise_addresses"]
    assert during["vip_change"]["rotate"] and during["vip_change"]["retired_addresses"] == []
    conf = during["host"]["n1"]["keepalived_conf"]
    assert (conf["vip"], conf["extra_vips"]) == ("10.1.0.101/24", ["10.1.0.100/24"])
    text = render_keepalived_conf(from_options(conf))
    assert "        10.1.0.101/24 dev eth0\n        10.1.0.100/24 dev eth0\n" in text
    after = plan(cloudcore_vip="10.1.0.101/24", cloudcore_vip_retired="10.1.0.100/24")
    assert after["problems"] == [] and after["host"]["n1"]["keepalived_conf"]["extra_vips"] == []
    assert after["vip_change"]["addresses"] == ["10.1.0.101"] and after["vip_change"]["retired_addresses"] == ["10.1.0.100"]
    plain = plan()
    assert plain["vip_change"] == {"previous": None, "retired": None, "addresses": ["10.1.0.100"],
                                   "previous_cidr": None, "retired_cidr": None, "retired_addresses": [],
                                   "rotate": False}


@pytest.mark.parametrize("changes, fragment", [
    ({"cloudcore_vip_previous": "10.1.0.100/24"}, "cloudcore_vip_previous='10.1.0.100/24': is cloudcore_vip itself"),
    ({"cloudcore_vip_previous": "fd00::100/64"}, "is IPv6 and cloudcore_vip IPv4"),
    ({"cloudcore_vip_previous": "10.1.0.99/24", "cloudcore_vip_retired": "10.1.0.99/24"}, "is also cloudcore_vip_previous"),
    ({"cloudcore_vip_retired": "10.1.0.999/24"}, "cloudcore_vip_retired='10.1.0.999/24'"),
])
def test_a_bad_vip_change_is_named(changes, fragment):
    assert any(fragment in message for message in plan(**changes)["problems"]), plan(**changes)["problems"]


def test_the_previous_vip_must_fit_the_interface_and_be_free():
    elsewhere = plan(cloudcore_vip_previous="10.9.0.100/24")
    assert any("cloudcore_vip_previous='10.9.0.100/24': on host n1: interface eth0 has no address in its subnet" in m
               for m in elsewhere["network_problems"]), elsewhere["network_problems"]
    taken = plan(cloudcore_vip_previous="10.1.0.12/24")
    assert any("is the own address of host n2" in m for m in taken["network_problems"])
