# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The input types (plugins/module_utils/_inputs.py): one parser each, errors naming variable, value, rule."""

from __future__ import annotations

import pytest

from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import (
    InputError,
    Problem,
    Problems,
    parse_advert_int,
    parse_auth_pass,
    parse_bool,
    parse_choice,
    parse_command,
    parse_dns_names,
    parse_duration,
    parse_hosts,
    parse_image_repository,
    parse_int,
    parse_interface,
    parse_ip,
    parse_multicast_group,
    parse_node_labels,
    parse_node_name,
    parse_number,
    parse_path,
    parse_port,
    parse_priorities,
    parse_resources,
    parse_tolerations,
    parse_uri_path,
    parse_url,
    parse_vip,
    parse_vrid,
    parse_whole_seconds,
    vrrp_version_for,
)


def rule_of(parser, *args):
    with pytest.raises(InputError) as error:
        parser(*args)
    return error.value


# ------------------------------------------------------------------------------------ the VIP

@pytest.mark.parametrize("text, address, version", [
    ("10.10.102.242/24", "10.10.102.242", 4), (" fd00::100/64 ", "fd00::100", 6), ("10.0.0.0/31", "10.0.0.0", 4),
    ("10.0.0.7/32", "10.0.0.7", 4),
])
def test_a_good_vip(text, address, version):
    vip = parse_vip(text)
    assert (vip.address, vip.version) == (address, version)
    assert vip.as_dict()["cidr"] == text.strip()


@pytest.mark.parametrize("value, fragment", [
    ("10.10.102.242", "needs a prefix length (the subnet the VIP lives in), e.g. 10.10.102.242/24"),
    ("fd00::1", "e.g. fd00::1/64"),
    ("", "is required"),
    (None, "is required"),
    (42, "is required"),
    ("10.10.102.300/24", "is not an IPv4 or IPv6 address with prefix length"),
    ("nope", "is not an IPv4 or IPv6 address with prefix length"),
    ("10.10.102.0/24", "is the network address of 10.10.102.0/24"),
    ("10.10.102.255/24", "is the broadcast address of 10.10.102.0/24"),
    ("127.0.0.5/8", "not loopback"),
    ("224.0.0.18/24", "multicast"),
    ("fe80::5/64", "link-local"),
])
def test_vip_rules(value, fragment):
    error = rule_of(parse_vip, value)
    assert error.variable == "cloudcore_vip" and error.value == value
    assert fragment in error.rule, error.rule


def test_the_variable_name_is_the_callers():
    assert rule_of(parse_vip, "x", "vip").variable == "vip"
    assert rule_of(parse_vrid, 0, "virtual_router_id").variable == "virtual_router_id"


# ------------------------------------------------------------------------------------ VRRP

@pytest.mark.parametrize("value, ok", [(1, True), (255, True), ("51", True), (0, False), (256, False),
                                       (True, False), ("x", False), (None, False), (51.5, False)])
def test_vrid(value, ok):
    if ok:
        assert parse_vrid(value) == int(value)
    else:
        assert "1..255" in rule_of(parse_vrid, value).rule


def test_auth_secret_never_appears_in_an_error():
    assert parse_auth_pass(None) is None and parse_auth_pass("") is None and parse_auth_pass("12345678") == "12345678"
    error = rule_of(parse_auth_pass, "123456789")
    assert error.value == "<9 characters>" and "at most 8" in error.rule and "123456789" not in str(error)
    assert rule_of(parse_auth_pass, "a b").value == "<hidden>"
    assert "VRRPv3" in rule_of(parse_auth_pass, "secret", 3).rule
    assert rule_of(parse_auth_pass, 12345).value == "<hidden>"


def test_vrrp_version_and_advert_interval():
    v4, v6 = parse_vip("10.0.0.5/24"), parse_vip("fd00::5/64")
    assert (vrrp_version_for(v4, 1), vrrp_version_for(v4, 0.5), vrrp_version_for(v6, 1)) == (2, 3, 3)
    assert parse_advert_int("2", 2) == 2 and parse_advert_int(0.05, 3) == 0.05
    assert "whole seconds" in rule_of(parse_advert_int, 1.5, 2).rule
    assert "1..255" in rule_of(parse_advert_int, 300, 2).rule
    assert "10 ms steps" in rule_of(parse_advert_int, 0.005, 3).rule
    assert "must be > 0" in rule_of(parse_advert_int, 0, 2).rule


def test_multicast_group():
    assert parse_multicast_group(None, 6, "multicast_group", "error") == "ff02::12"  # the model: unset
    assert "multicast address" in rule_of(parse_multicast_group, None, 4).rule  # the inventory: refused
    assert "multicast address" in rule_of(parse_multicast_group, "", 4).rule
    assert parse_multicast_group("224.0.0.19", 4) == "224.0.0.19"
    assert parse_multicast_group("224.0.0.18", 6) == "ff02::12"  # the IPv4 default left set for an IPv6 VIP
    assert "same address family" in rule_of(parse_multicast_group, "224.0.0.18", 6, "g", "error").rule
    assert "multicast address" in rule_of(parse_multicast_group, "10.0.0.1", 4).rule


@pytest.mark.parametrize("hosts, fragment", [
    (["a"], "has 1 node(s)"), (["n%d" % i for i in range(17)], "has 17 node(s)"),
    (["a", "b", "a"], "lists a more than once"), ("a,b", "must be a list"), (["a", ""], "not a non-empty string"),
])
def test_hosts(hosts, fragment):
    error = rule_of(parse_hosts, hosts)
    assert error.variable == "groups['cloudcore']" and fragment in error.rule


def test_priorities_are_an_order_or_pins_of_exactly_the_group():
    assert parse_priorities(None, ["a", "b"]) == (["a", "b"], None)
    assert parse_priorities(["b", "a"], ["a", "b"]) == (["b", "a"], None)
    assert parse_priorities({"a": 100, "b": "120"}, ["a", "b"]) == (["b", "a"], {"a": 100, "b": 120})
    assert "missing: b" in rule_of(parse_priorities, ["a"], ["a", "b"]).rule
    assert "not in the group: c" in rule_of(parse_priorities, {"a": 1, "b": 2, "c": 3}, ["a", "b"]).rule
    assert rule_of(parse_priorities, {"a": 255, "b": 1}, ["a", "b"]).variable == "keepalived_priorities[a]"
    assert "must be a list" in rule_of(parse_priorities, "a", ["a", "b"]).rule


# ------------------------------------------------------------------------------------ numbers and words

def test_numbers():
    assert parse_int("7", "x", 1, 10) == 7 and parse_int(7.0, "x") == 7
    assert rule_of(parse_int, 0, "x", 1).rule == "must be >= 1"
    assert rule_of(parse_int, "seven", "x", 1, 10, "a count").rule == "must be a whole number 1..10 (a count)"
    assert parse_number("0.8", "x") == 0.8
    assert rule_of(parse_number, 0, "x").rule == "must be > 0"
    assert parse_whole_seconds("2", "x") == 2
    for bad in (0, 0.5, "1.5", 5000, "x", None):
        assert "whole seconds 1..4294" in rule_of(parse_whole_seconds, bad, "x").rule


@pytest.mark.parametrize("value, expected", [(True, True), ("yes", True), ("False", False), (0, False), ("on", True)])
def test_booleans_as_ansible_reads_them(value, expected):
    assert parse_bool(value, "x") is expected


def test_bad_boolean_and_choice():
    assert rule_of(parse_bool, "maybe", "x").rule == "must be a boolean (true or false)"
    error = rule_of(parse_choice, "sometimes", ("fault", "weighted"), "cloudcore_failover")
    assert error.problem.msg == "cloudcore_failover='sometimes': is unknown; use one of: fault, weighted"


def test_names_paths_commands_urls():
    assert parse_interface("br-lan.10") == "br-lan.10"
    assert "1..15" in rule_of(parse_interface, "averyveryverylongname").rule
    assert parse_path("/usr/local/sbin", "x") == "/usr/local/sbin"
    assert "absolute path" in rule_of(parse_path, "relative/dir", "x").rule
    assert "absolute path" in rule_of(parse_command, "check_cloudcore", "x").rule
    assert "double quotes" in rule_of(parse_command, '/bin/x "y"', "x").rule
    for good in ("https://127.0.0.1:10002/ca.crt", "http://[::1]:9091/metrics", "https://cloudcore.example/readyz"):
        assert parse_url(good) == good
    for bad in ("127.0.0.1:10002/ca.crt", "ftp://x/", "https://", "https://h/a b", "https://h:99999/"):
        assert rule_of(parse_url, bad).variable == "cloudcore_check_url"
    assert parse_ip("fd00::1", "peers", 6).version == 6
    assert "IPv4 like the VIP" in rule_of(parse_ip, "fd00::1", "peers", 4).rule


# ------------------------------------------------------------------------------------ Kubernetes

@pytest.mark.parametrize("labels, fragment", [
    ({"kubeedge.io/cloudcore": "true"}, None),
    ({"cloudcore": ""}, None),
    ({"node-role.kubernetes.io/cloudcore": "enabled_1.0"}, None),
    ({"Kube_Edge.io/x": "y"}, "prefix must be a lowercase DNS subdomain"),
    ({"a/b/c": "y"}, "prefix must be a lowercase DNS subdomain"),
    ({"/x": "y"}, "prefix must be a lowercase DNS subdomain"),
    ({"-bad": "y"}, "label name must be 1..63 characters"),
    ({"x" * 64: "y"}, "label name must be 1..63 characters"),
    ({"ok": "bad value"}, "label value must be at most 63 characters"),
    ({"ok": "-dash"}, "label value must be at most 63 characters"),
    ({"ok": "v" * 64}, "label value must be at most 63 characters"),
    ({"ok": True}, "must be a string: quote it in YAML, e.g. 'true'"),
    ({"ok": 1}, "must be a string"),
    ({}, "non-empty mapping"),
    ("cloudcore=true", "non-empty mapping"),
])
def test_labels(labels, fragment):
    if fragment is None:
        assert parse_node_labels(labels) == labels
    else:
        error = rule_of(parse_node_labels, labels)
        assert error.variable.startswith("cloudcore_node_label") and fragment in error.rule, error


def test_node_names_dns_names_images():
    assert parse_node_name("edge-1.example") == "edge-1.example"
    assert "lowercase" in rule_of(parse_node_name, "Node_1").rule
    assert parse_dns_names(None, "x") == [] and parse_dns_names(["a.example", "*.b.example", "A.EXAMPLE"], "x") == [
        "a.example", "*.b.example"]
    assert "is an IP address" in rule_of(parse_dns_names, ["10.0.0.1"], "x").rule
    assert "not a DNS name" in rule_of(parse_dns_names, ["bad_name.example"], "x").rule
    assert "list of DNS names" in rule_of(parse_dns_names, "a.example", "x").rule
    for good in ("kubeedge/cloudcore", "registry.example.com:5000/kubeedge/cloudcore", "cloudcore"):
        assert parse_image_repository(good) == good
    for bad in ("", "kubeedge/cloudcore:v1.23.1", "KubeEdge/cloudcore", "kubeedge/cloudcore@sha256:ab", None):
        assert "without tag or digest" in rule_of(parse_image_repository, bad).rule


def test_resources_and_tolerations():
    resources = {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"cpu": 1, "memory": "1Gi"}}
    assert parse_resources(resources)["limits"]["cpu"] == "1"
    assert "quantity" in rule_of(parse_resources, {"limits": {"memory": "lots"}}).rule
    assert rule_of(parse_resources, {"limits": {"gpu": "1"}}).variable == "manifests_resources.limits.gpu"
    assert parse_tolerations([{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                               "effect": "NoSchedule"}])
    assert parse_tolerations(None) == []
    assert "operator must be Exists or Equal" in rule_of(parse_tolerations, [{"key": "a", "operator": "In"}]).rule
    assert "effect must be" in rule_of(parse_tolerations, [{"key": "a", "effect": "Sometimes"}]).rule
    assert "only applies to effect NoExecute" in rule_of(parse_tolerations, [
        {"key": "a", "effect": "NoSchedule", "tolerationSeconds": 5}]).rule
    assert "empty key needs operator Exists" in rule_of(parse_tolerations, [{"value": "x"}]).rule


def test_problems_collects_each_problem_once():
    found = Problems()
    assert found.parse(parse_vrid, 51) == 51
    assert found.parse(parse_vrid, 0) is None and found.parse(parse_vrid, 0) is None
    assert not found.parse(parse_vip, "x") and bool(found)
    assert [p.variable for p in found.items] == ["cloudcore_vrrp_router_id", "cloudcore_vip"]
    assert Problem("a", 1, "r").as_dict() == {"variable": "a", "value": 1, "rule": "r", "msg": "a=1: r"}


def test_ports_durations_and_uri_paths():
    assert parse_port("10000", "p") == 10000
    for bad in (0, 65536, "x", None, 1.5):
        assert rule_of(parse_port, bad, "p").variable == "p"
    assert "1..65535 (a TCP port)" in rule_of(parse_port, 0, "p").rule
    assert parse_duration(0.25, "d") == 0.25 and parse_duration("3600", "d") == 3600
    assert "whole milliseconds" in rule_of(parse_duration, 0.0005, "d").rule
    assert "<= 2147483" in rule_of(parse_duration, 30 * 86400, "d").rule
    assert "> 0" in rule_of(parse_duration, 0, "d").rule
    assert parse_uri_path("/ca.crt", "u") == "/ca.crt"
    for bad in ("ca.crt", "/a b", "/a#b", '/"x"', None, ""):
        assert "absolute URI path" in rule_of(parse_uri_path, bad, "u").rule
