# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The haproxy.cfg model and renderer (plugins/module_utils/_haproxy_conf.py).

Golden files: tests/unit/plugins/module_utils/golden/haproxy_*.cfg. Regenerate after an intended
change with CLOUDCORE_HA_UPDATE_GOLDEN=1 and review the diff."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.cloudcore.ha.plugins.module_utils._haproxy_conf import (
    BACKENDS,
    PORT_FIELDS,
    SERVER_ID_MAX,
    HaproxyConfig,
    HaproxyConfigError,
    HaproxyPeer,
    HaproxyServer,
    bind_ports,
    bind_spec,
    config_problems,
    fmt_duration,
    from_options,
    nodes_problems,
    option_spec,
    render_haproxy_cfg,
)

GOLDEN = os.path.join(os.path.dirname(__file__), "golden")
CA_FILE = "/etc/kubeedge/ca/rootCA.crt"


def servers(count=3, base="10.10.102.1%d", prefix="node"):
    return [HaproxyServer("%s%d" % (prefix, i), i, base % i) for i in range(1, count + 1)]


def base(**changes):
    return dataclasses.replace(HaproxyConfig(node="node1", cloudcores=servers(), ca_file=CA_FILE), **changes)


CASES = {
    # the site plan's ordinary case: three IPv4 nodes, the cluster CA, every default
    "haproxy_three_nodes": base(),
    # IPv6 nodes: binds :: with v4v6, an ipv6 stick table, brackets around addresses; no CA file
    "haproxy_ipv6_no_ca": HaproxyConfig(node="cc-b", cloudcores=[HaproxyServer("cc-a", 1, "fd00::11"),
                                                                 HaproxyServer("cc-b", 2, "fd00::12")]),
    # two haproxy nodes on their own addresses in front of three CloudCores (the loopback test's shape),
    # custom ports and timing, no chroot/user/log
    "haproxy_explicit_peers": HaproxyConfig(
        node="lb2", cloudcores=servers(3, "127.0.2.%d", "cc"), bind_address="127.0.0.2",
        peers=[HaproxyPeer("lb1", "127.0.0.1"), HaproxyPeer("lb2", "127.0.0.2")], monitor_address="127.0.0.2",
        ca_file=CA_FILE, check_interval=0.25, check_fall=3, stick_expire=90, hard_stop_after=60,
        timeout_tunnel=120, user=None, group=None, chroot=None, log_socket=None,
        stats_socket="/run/cloudcore-ha/lb2.sock"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rendering_matches_golden(name):
    text = render_haproxy_cfg(CASES[name])
    path = os.path.join(GOLDEN, name + ".cfg")
    if os.environ.get("CLOUDCORE_HA_UPDATE_GOLDEN"):
        with open(path, "w") as handle:
            handle.write(text)
    with open(path) as handle:
        assert text == handle.read()


def test_header_and_determinism():
    text = render_haproxy_cfg(base())
    assert text.startswith("# managed by cloudcore.ha; do not edit")
    assert text == render_haproxy_cfg(from_options(base().as_dict()))
    assert "QUIC (UDP 10001) is not proxied" in text


def _servers_of(text, backend):
    section = text.split("\nbackend %s\n" % backend, 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^    server (\S+) (\S+) id (\d+)(.*)$", section, re.MULTILINE)


def test_every_backend_has_the_same_servers_names_and_ids():
    text = render_haproxy_cfg(base())
    listed = {kind: [(name, ident) for name, _addr, ident, _rest in _servers_of(text, backend)]
              for kind, backend in BACKENDS.items()}
    assert listed["websocket"] == listed["https"] == listed["tunnel"] == [("node1", "1"), ("node2", "2"), ("node3", "3")]


def test_paired_backends_share_one_table_hash_and_health():
    text = render_haproxy_cfg(base())
    for kind in ("websocket", "tunnel"):
        section = text.split("\nbackend %s\n" % BACKENDS[kind], 1)[1].split("\n\n", 1)[0]
        assert "    balance source\n    hash-type consistent\n" in section
        assert "    stick on src table edge_pairs\n" in section
        assert "    tcp-request content track-sc0 src table edge_pairs\n" in section
        assert "on-marked-down shutdown-sessions" in section and "redispatch" not in section.replace(
            "no option redispatch", "")
        for name, _addr, _ident, rest in _servers_of(text, BACKENDS[kind]):
            assert rest.strip() == "track cloudcore_https/%s" % name
    assert "stick-table type ip size 100000 expire 4h peers cloudcore_ha" in text
    https = text.split("\nbackend cloudcore_https\n", 1)[1].split("\n\n", 1)[0]
    assert "option httpchk GET /ca.crt" in https and "http-check expect status 200" in https
    assert "verify required ca-file %s inter 1s fall 2 rise 2" % CA_FILE in https
    assert "balance roundrobin" in https and "stick" not in https
    # ssl-hello-chk after httpchk would silently replace the HTTP check (REFERENCE.md)
    assert "ssl-hello-chk" not in text


def test_internal_ports_and_public_binds():
    text = render_haproxy_cfg(base(internal_websocket_port=20000, internal_https_port=20002, internal_tunnel_port=20004))
    assert "server node2 10.10.102.12:20000 id 2 track" in text
    assert "server node2 10.10.102.12:20002 id 2\n" in text
    assert "server node2 10.10.102.12:20004 id 2 track" in text
    for port in (10000, 10002, 10004):
        assert "    bind 0.0.0.0:%d\n" % port in text


def test_check_without_ca_file_does_not_verify():
    text = render_haproxy_cfg(base(ca_file=None))
    assert "check check-ssl verify none inter 1s" in text and "ca-file" not in text


def test_peers_default_to_the_cloudcores_and_localpeer_is_the_node():
    text = render_haproxy_cfg(base(node="node2"))
    assert "    localpeer node2\n" in text
    assert "peers cloudcore_ha\n    peer node1 10.10.102.11:10110\n    peer node2 10.10.102.12:10110\n" \
           "    peer node3 10.10.102.13:10110\n" in text


def test_ipv6_binds_both_families_and_keys_ipv6():
    config = CASES["haproxy_ipv6_no_ca"]
    assert bind_spec(config, 10000) == "[::]:10000 v4v6"
    assert bind_spec(dataclasses.replace(config, bind_address="fd00::100"), 10000) == "[fd00::100]:10000"
    text = render_haproxy_cfg(config)
    assert "stick-table type ipv6" in text and "peer cc-a [fd00::11]:10110" in text


def test_monitor_reports_on_the_https_backend():
    text = render_haproxy_cfg(base(monitor_port=10200, monitor_uri="/ready"))
    assert "frontend monitor\n    mode http\n    bind 127.0.0.1:10200\n    monitor-uri /ready\n" \
           "    monitor fail if { nbsrv(cloudcore_https) lt 1 }\n" in text


def test_global_reload_settings():
    text = render_haproxy_cfg(base(hard_stop_after=1800, maxconn=2000))
    for line in ("master-worker", "hard-stop-after 30m", "maxconn 2000",
                 "stats socket /run/haproxy/admin.sock mode 660 level admin expose-fd listeners"):
        assert "    %s\n" % line in text
    bare = render_haproxy_cfg(base(user=None, group=None, chroot=None, log_socket=None))
    assert not re.search(r"^\s*(user|group|chroot|log) ", bare, re.MULTILINE)


@pytest.mark.parametrize("seconds, text", [(1, "1s"), (0.25, "250ms"), (1.5, "1500ms"), (60, "1m"), (90, "90s"),
                                           (3600, "1h"), (14400, "4h"), (86400, "1d"), (5400, "90m")])
def test_fmt_duration(seconds, text):
    assert fmt_duration(seconds) == text


_UNITS = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000}


@given(st.integers(min_value=1, max_value=2147483000))
def test_fmt_duration_is_exact(millis):
    number, unit = re.match(r"^(\d+)(ms|s|m|h|d)$", fmt_duration(millis / 1000.0)).groups()
    assert int(number) * _UNITS[unit] == millis


# --- rules -------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, option, fragment", [
    (dict(node="node9"), "node", "must be one of the peers"),
    (dict(node="a b"), "node", "letters, digits"),
    (dict(cloudcores=servers(1)), "cloudcores", "2..16 CloudCore nodes"),
    (dict(cloudcores=servers(17)), "cloudcores", "2..16 CloudCore nodes"),
    (dict(cloudcores="node1"), "cloudcores", "2..16 CloudCore nodes"),
    (dict(cloudcores=servers(2) + [{"name": "x"}]), "cloudcores[2]", "name, id and address (missing: id, address)"),
    (dict(cloudcores=servers(2) + [HaproxyServer("node1", 3, "10.10.102.13")]), "cloudcores", "name node1 more than once"),
    (dict(cloudcores=servers(2) + [HaproxyServer("node3", 1, "10.10.102.13")]), "cloudcores", "id 1 more than once"),
    (dict(cloudcores=servers(2) + [HaproxyServer("node3", 3, "10.10.102.12")]), "cloudcores", "address 10.10.102.12 more"),
    (dict(cloudcores=servers(2) + [HaproxyServer("node3", 3, "fd00::13")]), "cloudcores[2].address", "must be IPv4"),
    (dict(cloudcores=servers(2) + [HaproxyServer("node3", 0, "10.10.102.13")]), "cloudcores[2].id", "1..2147483647"),
    (dict(cloudcores=servers(2) + [HaproxyServer("node3", 2 ** 31, "10.10.102.13")]), "cloudcores[2].id", "1..2147483647"),
    (dict(cloudcores=servers(2) + [HaproxyServer("node 3", 3, "10.10.102.13")]), "cloudcores[2].name", "server name"),
    (dict(cloudcores=servers(2) + [HaproxyServer("node3", 3, "cc3.example")]), "cloudcores[2].address", "IP address"),
    (dict(peers=[HaproxyPeer("lb1", "10.0.0.1")]), "node", "must be one of the peers (lb1)"),
    (dict(peers=[HaproxyPeer("node1", "10.0.0.1"), HaproxyPeer("node1", "10.0.0.2")]), "peers", "name node1 more"),
    (dict(peers=[HaproxyPeer("node1", "10.0.0.1"), HaproxyPeer("node2", "10.0.0.1")]), "peers", "address 10.0.0.1"),
    (dict(peers=[HaproxyPeer("node1", "fd00::1")]), "peers[0].address", "must be IPv4"),
    (dict(peers=[{"name": "node1"}]), "peers[0]", "name and address (missing: address)"),
    (dict(peers="node1"), "peers", "must be a list"),
    (dict(bind_address="fd00::1"), "bind_address", "must be IPv4"),
    (dict(bind_address="any"), "bind_address", "IP address"),
    (dict(monitor_address="10.10.102.11"), "monitor_address", "loopback"),
    (dict(websocket_port=0), "websocket_port", "1..65535"),
    (dict(https_port=65536), "https_port", "1..65535"),
    (dict(tunnel_port="x"), "tunnel_port", "whole number"),
    (dict(internal_websocket_port=10000), "internal_websocket_port", "is also websocket_port"),
    (dict(peers_port=10102), "peers_port", "is also internal_https_port"),
    (dict(monitor_port=10110), "monitor_port", "is also peers_port"),
    (dict(monitor_port=9091), "monitor_port", "reserved port"),
    (dict(internal_tunnel_port=10003), "internal_tunnel_port", "reserved port"),
    (dict(reserved_ports=[0]), "reserved_ports", "1..65535"),
    (dict(reserved_ports="10003"), "reserved_ports", "list of ports"),
    (dict(check_path="ca.crt"), "check_path", "absolute URI path"),
    (dict(check_path="/ca.crt #x"), "check_path", "absolute URI path"),
    (dict(monitor_uri="/health z"), "monitor_uri", "absolute URI path"),
    (dict(check_interval=0), "check_interval", "> 0"),
    (dict(check_interval=0.0005), "check_interval", "whole milliseconds"),
    (dict(check_timeout=-1), "check_timeout", "> 0"),
    (dict(check_fall=0), "check_fall", "1..1000"),
    (dict(check_rise=0), "check_rise", "1..1000"),
    (dict(stick_table_size=0), "stick_table_size", "1..1073741824"),
    (dict(stick_expire=1800), "stick_expire", "at least hard_stop_after (3600 s)"),
    (dict(stick_expire=30 * 86400), "stick_expire", "<= 2147483"),
    (dict(hard_stop_after=0), "hard_stop_after", "> 0"),
    (dict(timeout_connect=0), "timeout_connect", "> 0"),
    (dict(timeout_client="soon"), "timeout_client", "must be a number"),
    (dict(timeout_tunnel=30), "timeout_tunnel", "must exceed 30 s"),
    (dict(maxconn=0), "maxconn", "1..10000000"),
    (dict(ca_file="rootCA.crt"), "ca_file", "absolute path"),
    (dict(stats_socket=None), "stats_socket", "absolute path"),
    (dict(chroot="/var/lib/ha proxy"), "chroot", "absolute path"),
    (dict(log_socket="dev/log"), "log_socket", "absolute path"),
    (dict(user="Root"), "user", "system user name"),
    (dict(group="wheel group"), "group", "system user name"),
])
def test_invalid_input_is_named(changes, option, fragment):
    problems = config_problems(base(**changes))
    assert any(p.variable == option and fragment in p.rule for p in problems), problems
    with pytest.raises(HaproxyConfigError):
        render_haproxy_cfg(base(**changes))


def test_all_problems_reported_at_once():
    problems = config_problems(base(node="x y", websocket_port=0, monitor_address="10.0.0.1", check_fall=0,
                                    stick_expire=60))
    assert {p.variable for p in problems} >= {"node", "websocket_port", "monitor_address", "check_fall", "stick_expire"}


def test_a_port_used_three_times_is_named_twice():
    problems = config_problems(base(https_port=10000, tunnel_port=10000))
    assert [(p.variable, p.value) for p in problems] == [("https_port", 10000), ("tunnel_port", 10000)]


_PORTS = st.integers(min_value=10000, max_value=10012)


@settings(max_examples=200, deadline=None)
@given(st.lists(_PORTS, min_size=len(PORT_FIELDS), max_size=len(PORT_FIELDS)),
       st.lists(_PORTS, max_size=3))
def test_ports_are_accepted_exactly_when_distinct_and_unreserved(ports, reserved):
    config = base(reserved_ports=reserved, **dict(zip(PORT_FIELDS, ports)))
    port_problems = [p for p in config_problems(config) if p.variable in PORT_FIELDS]
    clash = len(set(ports)) < len(ports) or bool(set(ports) & set(reserved))
    assert bool(port_problems) == clash
    # every field whose port is also an earlier field's, or reserved, is named
    named = {p.variable for p in port_problems}
    for index, name in enumerate(PORT_FIELDS):
        if ports[index] in ports[:index] or ports[index] in reserved:
            assert name in named


# --- valid models, as the site plan could fill them --------------------------------------

@st.composite
def valid_models(draw):
    """Any model the rules accept: 2..16 nodes of one family, ids in any order, ports distinct."""
    count = draw(st.integers(min_value=2, max_value=16))
    family = draw(st.sampled_from([4, 6]))
    # ids from a preference order, or digests of node names anywhere in haproxy's range
    ids = draw(st.one_of(st.permutations(list(range(1, count + 1))),
                         st.lists(st.integers(min_value=1, max_value=SERVER_ID_MAX), min_size=count, max_size=count,
                                  unique=True)))
    network = ipaddress.ip_network("10.20.0.0/16" if family == 4 else "fd00:20::/64")
    members = [HaproxyServer("cc-%d" % i, ids[i], str(network[10 + i])) for i in range(count)]
    ports = draw(st.lists(st.integers(min_value=1024, max_value=65535), min_size=len(PORT_FIELDS),
                          max_size=len(PORT_FIELDS), unique=True).filter(
        lambda values: not set(values) & {9091, 9443, 10001, 10003}))
    interval = draw(st.sampled_from([0.1, 0.5, 1, 2, 5]))
    hard_stop = draw(st.sampled_from([60, 600, 3600]))
    return HaproxyConfig(
        node=members[draw(st.integers(min_value=0, max_value=count - 1))].name, cloudcores=members,
        bind_address=draw(st.sampled_from([None, str(network[5])])),
        check_interval=interval, check_timeout=interval, check_fall=draw(st.integers(1, 5)),
        check_rise=draw(st.integers(1, 5)), hard_stop_after=hard_stop,
        stick_expire=hard_stop * draw(st.sampled_from([1, 4])), timeout_tunnel=draw(st.sampled_from([31, 3600])),
        **dict(zip(PORT_FIELDS, ports)))


@settings(max_examples=100, deadline=None)
@given(valid_models())
def test_valid_models_render_with_every_server_in_every_backend(config):
    assert config_problems(config) == []
    text = render_haproxy_cfg(config)
    for backend in BACKENDS.values():
        assert [(n, int(i)) for n, _a, i, _r in _servers_of(text, backend)] == \
               [(s.name, s.id) for s in config.cloudcores]
    assert text.count("    peer ") == len(config.cloudcores)
    assert render_haproxy_cfg(from_options(config.as_dict())) == text


def test_bind_ports_are_haproxys_own():
    assert bind_ports(base(node="node2")) == [
        ("websocket", "0.0.0.0", 10000), ("https", "0.0.0.0", 10002), ("tunnel", "0.0.0.0", 10004),
        ("peers", "10.10.102.12", 10110), ("monitor", "127.0.0.1", 10111)]
    assert bind_ports(CASES["haproxy_ipv6_no_ca"])[0] == ("websocket", "::", 10000)


# --- the argument spec is the model --------------------------------------------------------

def test_the_argument_spec_is_the_model():
    spec = option_spec()
    assert list(spec) == [f.name for f in dataclasses.fields(HaproxyConfig)]
    assert spec["node"] == {"type": "str", "required": True}
    assert spec["cloudcores"] == {"type": "list", "elements": "dict", "required": True, "options": {
        "name": {"type": "str", "required": True}, "id": {"type": "int", "required": True},
        "address": {"type": "str", "required": True}}}
    assert spec["peers"]["default"] == [] and spec["peers"]["elements"] == "dict"
    assert spec["reserved_ports"] == {"type": "list", "elements": "int", "default": [9091, 9443, 10001, 10003]}
    assert spec["ca_file"] == {"type": "str"} and spec["bind_address"] == {"type": "str"}
    assert spec["check_interval"] == {"type": "float", "default": 1}
    assert "node" not in option_spec(exclude=("node",))


def test_from_options_builds_servers_and_keeps_whole_numbers_whole():
    options = dict(base().as_dict(), check_interval=2.0, hard_stop_after=60.0, stick_expire=120.0, extra="ignored")
    config = from_options(options)
    assert config.cloudcores[0] == HaproxyServer("node1", 1, "10.10.102.11")
    assert isinstance(config.check_interval, int)
    assert "inter 2s" in render_haproxy_cfg(config) and "hard-stop-after 1m" in render_haproxy_cfg(config)
    assert config_problems(from_options(dict(options, cloudcores=[{"name": "a"}, {"name": "b"}])))


# --- between the nodes -----------------------------------------------------------------------

def test_nodes_that_agree_have_no_problems():
    configs = {"host%d" % i: base(node="node%d" % i) for i in (1, 2, 3)}
    assert nodes_problems(configs) == []
    assert nodes_problems({}) == []


@pytest.mark.parametrize("changes, option, fragment", [
    (dict(cloudcores=[HaproxyServer("node1", 1, "10.10.102.11"), HaproxyServer("node2", 3, "10.10.102.12"),
                      HaproxyServer("node3", 2, "10.10.102.13")]), "cloudcores", "on host host3 differs from host host1"),
    (dict(peers_port=10120), "peers_port", "must agree on it"),
    (dict(stick_expire=7200), "stick_expire", "must agree on it"),
    (dict(check_fall=3), "check_fall", "must agree on it"),
    (dict(internal_https_port=20002), "internal_https_port", "must agree on it"),
    (dict(node="node2"), "node", "node name of hosts host2 and host3"),
])
def test_nodes_that_disagree_are_named(changes, option, fragment):
    configs = {"host1": base(node="node1"), "host2": base(node="node2"), "host3": dataclasses.replace(base(node="node3"), **changes)}
    problems = nodes_problems(configs)
    assert any(p.variable == option and fragment in p.rule for p in problems), problems


def test_a_peer_without_its_haproxy_is_named():
    problems = nodes_problems({"host1": base(node="node1"), "host2": base(node="node2")})
    assert [(p.variable, "node3" in p.rule) for p in problems] == [("peers", True)]
