# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The HA mode's part of the site plan: where CloudCore listens and, in balanced mode, each node's
haproxy.cfg model.

vip (the upstream guide): CloudCore holds its public ports and the VIP holder's CloudCore serves every
edge. balanced: haproxy holds the public ports 10000, 10002 and 10004 on every node, CloudCore moves to
internal ports, and the VIP holder's haproxy spreads the edges over every healthy CloudCore, each edge's
websocket and tunnel on the same one (_haproxy_conf.py). QUIC (UDP 10001) and the stream port 10003
stay CloudCore's in both modes.

Server ids. The pairing table that the haproxies share stores server ids, so every node's haproxy.cfg
must give a CloudCore the same id, and the id must not change when nodes join or leave: a stored pair
that pointed at another server after a renumbering would split an edge's two connections. The id is
therefore a digest of the node name (never its position in a list); two names with the same digest are
reported, with the host variable that settles it.

Plain Python without Ansible imports.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ansible_collections.cloudcore.ha.plugins.module_utils._haproxy_conf import (
    SERVER_ID_MAX,
    HaproxyConfig,
    HaproxyServer,
    config_problems,
    nodes_problems,
)
from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import (
    InputError,
    Problem,
    Problems,
    parse_int,
    parse_path,
    parse_port,
)

HA_MODES = ("vip", "balanced")
HAPROXY_SERVICE = "haproxy"
HAPROXY_PACKAGE = "haproxy"
# nftables for the guard that closes the internal ports to all but the CloudCore nodes (balancer_firewall)
BALANCER_PACKAGES = (HAPROXY_PACKAGE, "nftables")

# CloudCore's public ports (cloudcore.yaml defaults, v1.23.1 pkg/apis/componentconfig/cloudcore/v1alpha1
# default.go), the ones edges are configured with.
PUBLIC_PORTS = {"websocket": 10000, "quic": 10001, "https": 10002, "stream": 10003, "tunnel": 10004}
# The ports haproxy takes over in balanced mode; QUIC is UDP and the stream port is the apiserver's.
BALANCED = ("websocket", "https", "tunnel")
# CloudCore's other ports, which no balancer port may take (metrics 9091 on loopback, router 9443).
RESERVED_PORTS = (9091, 9443, PUBLIC_PORTS["quic"], PUBLIC_PORTS["stream"])


@dataclass(frozen=True)
class BalancerSettings:
    internal_ports: Dict[str, int]
    peers_port: int
    monitor_port: int
    config_path: str
    ca_file: str
    wait_seconds: int

    @property
    def guarded_ports(self) -> List[int]:
        """The ports only the other CloudCore nodes may reach: CloudCore's internal ones and the peers port."""
        return sorted(list(self.internal_ports.values()) + [self.peers_port])

    def as_dict(self) -> Dict[str, Any]:
        return {"internal_ports": dict(self.internal_ports), "guarded_ports": self.guarded_ports, "peers_port": self.peers_port,
                "monitor_port": self.monitor_port, "config_path": self.config_path, "ca_file": self.ca_file,
                "wait_seconds": self.wait_seconds, "service": HAPROXY_SERVICE, "package": HAPROXY_PACKAGE,
                "packages": list(BALANCER_PACKAGES),
                "public_ports": [PUBLIC_PORTS[kind] for kind in BALANCED],
                "monitor_url": "http://127.0.0.1:%d/healthz" % self.monitor_port}


def balancer_settings(found: Problems, settings: Mapping[str, Any]) -> Optional[BalancerSettings]:
    """The balancer role's variables, parsed (also in vip mode: a bad value is reported either way)."""
    internal = {}
    for kind in BALANCED:
        name = "balancer_internal_%s_port" % kind
        port = found.parse(parse_port, settings.get(name), name,
                           "the %s port CloudCore listens on in balanced mode" % kind)
        if port is not None:
            internal[kind] = port
    peers_port = found.parse(parse_port, settings.get("balancer_peers_port"), "balancer_peers_port")
    monitor_port = found.parse(parse_port, settings.get("balancer_monitor_port"), "balancer_monitor_port")
    config_path = found.parse(parse_path, settings.get("balancer_config_path"), "balancer_config_path")
    ca_file = found.parse(parse_path, settings.get("balancer_ca_file"), "balancer_ca_file")
    wait = found.parse(parse_int, settings.get("balancer_wait_seconds"), "balancer_wait_seconds", 1, 3600,
                       "seconds to wait for haproxy to hold the public ports")
    if len(internal) < len(BALANCED) or None in (peers_port, monitor_port, config_path, ca_file, wait):
        return None
    _distinct_ports(found, internal, peers_port, monitor_port)
    return BalancerSettings(internal, peers_port, monitor_port, config_path, ca_file, wait)


def _distinct_ports(found: Problems, internal: Mapping[str, int], peers_port: int, monitor_port: int) -> None:
    """Reported with the variable names the inventory uses (the model checks the same by field name)."""
    taken = {port: "CloudCore's public %s port" % kind for kind, port in PUBLIC_PORTS.items()}
    taken.update({port: "reserved for CloudCore" for port in RESERVED_PORTS if port not in taken})
    ports = [("balancer_internal_%s_port" % kind, port) for kind, port in internal.items()]
    ports += [("balancer_peers_port", peers_port), ("balancer_monitor_port", monitor_port)]
    for variable, port in ports:
        if port in taken:
            found.add(Problem(variable, port, "is %s; every port of balanced mode must be distinct" % taken[port]))
        else:
            taken[port] = variable


def cloudcore_ports(mode: str, balancer: Optional[BalancerSettings]) -> Dict[str, int]:
    """The ports in CloudCore's own configuration (cloudHub, cloudStream) for the mode."""
    ports = dict(PUBLIC_PORTS)
    if mode == "balanced" and balancer is not None:
        ports.update(balancer.internal_ports)
    return ports


def server_id(node_name: str) -> int:
    """A CloudCore's haproxy server id: 1..SERVER_ID_MAX, from its node name alone (see above)."""
    return zlib.crc32(node_name.encode("utf-8")) % SERVER_ID_MAX + 1


def server_ids(node_names: Mapping[str, str], overrides: Mapping[str, object]) -> Dict[str, int]:
    """Each host's server id (the host variable balancer_server_id, else the digest of its node name);
    raises InputError for a bad or shared id."""
    ids = {}  # type: Dict[str, int]
    for host, node in node_names.items():
        override = overrides.get(host)
        if override not in (None, ""):
            ids[host] = parse_int(override, "balancer_server_id", 1, SERVER_ID_MAX,
                                  "the host's haproxy server id, the same on every node")
        else:
            ids[host] = server_id(node)
    by_id = {}  # type: Dict[int, List[str]]
    for host, number in ids.items():
        by_id.setdefault(number, []).append(host)
    for number, hosts in sorted(by_id.items()):
        if len(hosts) > 1:
            raise InputError("balancer_server_id", number,
                             "is the haproxy server id of hosts %s; set balancer_server_id on one of them to a"
                             " number no other host uses (an id must never change while edges are paired)"
                             % ", ".join(sorted(hosts)))
    return ids


def haproxy_config(host: str, hosts: Sequence[str], node_names: Mapping[str, str], ids: Mapping[str, int],
                   addresses: Mapping[str, str], balancer: BalancerSettings,
                   check: Mapping[str, Any]) -> HaproxyConfig:
    """One host's haproxy.cfg model: every CloudCore node as a server (by node name, with its id and
    the address of its VRRP endpoint) and as a peer."""
    internal = balancer.internal_ports
    return HaproxyConfig(
        node=node_names[host],
        cloudcores=[HaproxyServer(node_names[name], ids[name], addresses[name]) for name in hosts],
        websocket_port=PUBLIC_PORTS["websocket"], https_port=PUBLIC_PORTS["https"],
        tunnel_port=PUBLIC_PORTS["tunnel"], internal_websocket_port=internal["websocket"],
        internal_https_port=internal["https"], internal_tunnel_port=internal["tunnel"],
        peers_port=balancer.peers_port, monitor_port=balancer.monitor_port,
        reserved_ports=list(RESERVED_PORTS), ca_file=balancer.ca_file,
        check_interval=check["interval"], check_timeout=check["timeout"], check_fall=check["fall"],
        check_rise=check["rise"])


def haproxy_problems(configs: Mapping[str, HaproxyConfig]) -> List[Problem]:
    """The model's rules, as the module will apply them to each host's config, and what the hosts'
    configs must agree on, worded for the inventory."""
    out = []
    for host, config in configs.items():
        out += [Problem(problem.variable, problem.value, "on host %s: the planned haproxy.cfg breaks a rule: %s"
                        % (host, problem.rule)) for problem in config_problems(config)]
    out += [Problem(problem.variable, problem.value, "the planned haproxy.cfg files disagree: %s" % problem.rule)
            for problem in nodes_problems(dict(configs))]
    return out


def edge_capacity_problem(mode: str, edges: int, node_limit: int, nodes: int) -> Optional[Problem]:
    """vip: one CloudCore holds every edge. balanced: the edges spread, and the site must still hold them
    all with one CloudCore down (CloudHub serves at most nodeLimit edges each:
    cloud/pkg/cloudhub/handler/message_handler.go)."""
    if mode == "vip" and edges > node_limit:
        return Problem("cloudcore_edge_nodes", edges,
                       "is more than manifests_node_limit (%d): with a VIP one CloudCore holds every edge and"
                       " serves at most nodeLimit of them; raise manifests_node_limit to at least %d, or use"
                       " cloudcore_ha_mode: balanced" % (node_limit, edges))
    survivors = nodes - 1
    if mode == "balanced" and edges > node_limit * survivors:
        need = -(-edges // survivors)
        return Problem("cloudcore_edge_nodes", edges,
                       "is more than manifests_node_limit x (nodes - 1) = %d x %d = %d: with one CloudCore down the"
                       " others must hold every edge; raise manifests_node_limit to at least %d or add a node"
                       % (node_limit, survivors, node_limit * survivors, need))
    return None
