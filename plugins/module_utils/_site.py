# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The site plan: the inventory read once into everything the roles will do.

plan_site() takes the site's settings (the variables of the inventory and the roles' defaults, by
name) and each CloudCore host's own variables and gathered facts, and returns one SitePlan: the hosts
in preference order, the VIP, the VRRP mode and failover, the health check, each host's node name,
VRRP priority, VRRP endpoint, the exact keepalived.conf model its module will write and the firewall
rule it needs, and the parameters of the Kubernetes manifests. Every input is parsed here, through
_inputs.py, and every problem is collected, so preflight judges exactly the plan the roles consume and
reports everything at once.

Two kinds of problem: `problems` (the inputs) and `network_problems` (a host's network facts against
the VIP). A host without gathered facts gets no network part; the roles that need one (keepalived,
preflight, verify) gather facts first. Secrets are parsed but never put into the plan.

Plain Python without Ansible imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ansible_collections.cloudcore.ha.plugins.module_utils._balancer_plan import (
    HA_MODES,
    BalancerSettings,
    balancer_settings,
    cloudcore_ports,
    edge_capacity_problem,
    haproxy_config,
    haproxy_problems,
    server_ids,
)
from ansible_collections.cloudcore.ha.plugins.module_utils._firewall import (
    FIREWALL_CHOICES,
    balancer_traffic,
    vrrp_traffic,
)
from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import (
    FAILOVER_MODES,
    VRRP_MODES,
    InputError,
    Problem,
    Problems,
    Vip,
    parse_advert_int,
    parse_auth_pass,
    HOST_STATES,
    parse_bool,
    parse_choice,
    parse_command,
    parse_dns_names,
    parse_host_list,
    parse_members,
    parse_image_repository,
    parse_int,
    parse_interface,
    parse_multicast_group,
    parse_node_labels,
    parse_node_name,
    parse_number,
    parse_path,
    parse_priorities,
    parse_resources,
    parse_tolerations,
    parse_url,
    parse_user,
    parse_vip,
    parse_vrid,
    parse_whole_seconds,
    parse_word,
    vrrp_version_for,
)
from ansible_collections.cloudcore.ha.plugins.module_utils._haproxy_conf import HaproxyConfig
from ansible_collections.cloudcore.ha.plugins.module_utils._keepalived_conf import (
    KeepalivedConfig,
    config_problems,
)
from ansible_collections.cloudcore.ha.plugins.module_utils._releases import release_facts
from ansible_collections.cloudcore.ha.plugins.module_utils._topology import (
    Endpoint,
    interface_addresses,
    vip_collisions,
    vrrp_endpoint,
    with_peers,
)
from ansible_collections.cloudcore.ha.plugins.module_utils._vrrp_plan import NodePlan, plan_priorities

# The unit is called keepalived on every distribution the role supports (Debian, Ubuntu, EL).
KEEPALIVED_SERVICE = "keepalived"
CHECK_SCRIPT_NAME = "check_cloudcore"
# The host variables the plan reads (from hostvars; the rest of a host's variables are not its input).
HOST_VARIABLES = ("cloudcore_node_name", "cloudcore_vrrp_interface", "balancer_server_id", "cloudcore_state")


@dataclass(frozen=True)
class HostInput:
    """What the plan reads of one CloudCore host: its name, its inventory variables, its facts."""

    name: str
    variables: Mapping[str, Any] = field(default_factory=dict)
    facts: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckPlan:
    url: str
    interval: int
    timeout: int
    fall: int
    rise: int
    curl_timeout: float
    script: str
    drain_file: str

    @property
    def command(self) -> str:
        """What keepalived runs (the bundled check takes URL, its own deadline and the drain file)."""
        return "%s %s %s %s" % (self.script, self.url, _fmt(self.curl_timeout), self.drain_file)

    def as_dict(self) -> Dict[str, Any]:
        return {"url": self.url, "interval": self.interval, "timeout": self.timeout, "fall": self.fall,
                "rise": self.rise, "curl_timeout": self.curl_timeout, "script": self.script,
                "drain_file": self.drain_file, "command": self.command}


@dataclass(frozen=True)
class HostPlan:
    """One host's part of the site. A host marked cloudcore_state: absent (leaving the site) has no
    VRRP plan, keepalived.conf or haproxy.cfg: only what its removal needs (node name, endpoint and the
    firewall rules to take away)."""

    host: str
    node_name: str
    vrrp: Optional[NodePlan]
    endpoint: Optional[Endpoint] = None
    keepalived: Optional[KeepalivedConfig] = None
    firewall: Optional[Dict[str, Any]] = None
    haproxy: Optional[HaproxyConfig] = None
    balancer_firewall: Optional[Dict[str, Any]] = None

    def as_dict(self) -> Dict[str, Any]:
        return {"node_name": self.node_name, "state": "present" if self.vrrp is not None else "absent",
                "vrrp": self.vrrp.as_dict() if self.vrrp is not None else None,
                "haproxy_conf": self.haproxy.as_dict() if self.haproxy else None,
                "balancer_firewall": dict(self.balancer_firewall) if self.balancer_firewall else None,
                "endpoint": self.endpoint.as_dict() if self.endpoint else None,
                # the secret never enters the plan: the module takes it as its own option
                "keepalived_conf": {key: value for key, value in self.keepalived.as_dict().items() if key != "auth_pass"}
                if self.keepalived else None,
                "firewall": dict(self.firewall) if self.firewall else None}


@dataclass(frozen=True)
class SitePlan:
    hosts: List[str]  # the CloudCore nodes, in preference order
    leaving: List[str]  # the hosts marked cloudcore_state: absent, in group order
    mode: str
    vip: Vip
    vip_change: Dict[str, Any]  # the previous VIP still served, the retired one, the PKI's addresses
    vrrp: Dict[str, Any]
    check: CheckPlan
    keepalived: Dict[str, Any]
    manifests: Dict[str, Any]
    cluster: Dict[str, Any]
    verify: Dict[str, Any]
    preflight: Dict[str, Any]
    node_labels: Dict[str, Any]
    balancer: Dict[str, Any]
    host: Dict[str, HostPlan]

    @property
    def network_planned(self) -> bool:
        """Whether every CloudCore node has its endpoint, keepalived.conf model and firewall rule, and
        every leaving host its endpoint."""
        return all(self.host[name].keepalived is not None for name in self.hosts) \
            and all(self.host[name].endpoint is not None for name in self.leaving)

    def as_dict(self) -> Dict[str, Any]:
        return {"hosts": list(self.hosts), "leaving": list(self.leaving), "mode": self.mode,
                "vip_change": dict(self.vip_change),
                "group": list(self.hosts) + list(self.leaving),
                "leaving_node_names": [self.host[h].node_name for h in self.leaving], "vip": self.vip.as_dict(), "vrrp": dict(self.vrrp),
                "check": self.check.as_dict(), "keepalived": dict(self.keepalived),
                "manifests": dict(self.manifests), "cluster": dict(self.cluster), "verify": dict(self.verify),
                "preflight": dict(self.preflight), "node_labels": dict(self.node_labels),
                "balancer": dict(self.balancer), "network_planned": self.network_planned,
                "node_names": [self.host[h].node_name for h in self.hosts],
                "host": {name: plan.as_dict() for name, plan in self.host.items()}}


@dataclass(frozen=True)
class PlanResult:
    plan: Optional[SitePlan]
    problems: List[Problem]
    network_problems: List[Problem]

    def as_dict(self) -> Dict[str, Any]:
        """What the role cloudcore.ha.cloudcore stores as the fact cloudcore_site."""
        empty = {"hosts": [], "leaving": [], "group": [], "host": {}, "network_planned": False}
        out = self.plan.as_dict() if self.plan is not None else empty
        out["problems"] = [problem.msg for problem in self.problems]
        out["network_problems"] = [problem.msg for problem in self.network_problems]
        return out


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else ("%.3f" % number).rstrip("0")


def _get(settings: Mapping[str, Any], name: str) -> Any:
    return settings.get(name)


class _Reader:
    """Parses named settings into a Problems collector."""

    def __init__(self, settings: Mapping[str, Any]):
        self.settings = settings
        self.found = Problems()

    def __call__(self, parser: Any, name: str, *args: Any) -> Any:
        return self.found.parse(parser, self.settings.get(name), *args)

    def optional(self, parser: Any, name: str, *args: Any) -> Any:
        value = self.settings.get(name)
        return None if value in (None, "") else self.found.parse(parser, value, *args)


def plan_site(settings: Mapping[str, Any], hosts: Sequence[HostInput]) -> PlanResult:
    """The site plan, with every problem of the inputs and of the hosts' networks."""
    read = _Reader(settings)
    group = read(parse_host_list, "cloudcore_hosts", "groups['cloudcore']")
    states = _host_states(read.found, group or [], hosts)
    names = read.found.parse(parse_members, group, states) if group is not None else None
    leaving = [name for name in group or [] if states.get(name) == "absent"]
    vip = read(parse_vip, "cloudcore_vip")
    vip_change = _vip_change(read, vip)
    mode = read(parse_choice, "cloudcore_ha_mode", HA_MODES, "cloudcore_ha_mode")
    balancer = balancer_settings(read.found, settings)
    vrrp = _vrrp_settings(read, vip, names, leaving)
    check = _check_settings(read)
    all_node_names = _node_names(read.found, group or [], hosts)
    node_names = {name: node for name, node in all_node_names.items() if name not in leaving}
    ids = _server_ids(read.found, node_names, hosts)
    manifests = _manifest_settings(read, vip, names, cloudcore_ports(mode or "vip", balancer))
    manifests["advertise_addresses"] = vip_change["addresses"] if vip_change else None
    # a pod the Deployment controller started counts as available once keepalived's check can count it
    # healthy (rise passed checks), as the role waits between its own restarts
    manifests["min_ready_seconds"] = check.rise * check.interval + 1 if check is not None else None
    _edge_capacity(read, mode, manifests.get("node_limit"), len(names or []))
    keepalived = _keepalived_settings(read)
    cluster = {"kubeconfig": read(_path_or_tilde, "cloudcore_kubeconfig", "cloudcore_kubeconfig"),
               "context": settings.get("cloudcore_kube_context") or None,
               "rotate_cert": read(parse_bool, "cloudcore_rotate_cert", "cloudcore_rotate_cert")}
    verify = {"probe_from_controller": read(parse_bool, "verify_probe_from_controller", "verify_probe_from_controller"),
              "wait_seconds": read(parse_int, "verify_wait_seconds", "verify_wait_seconds", 1, 3600),
              "check_cluster": read(parse_bool, "verify_check_cluster", "verify_check_cluster")}
    preflight = {"allow_unhealthy_cloudcore": read(parse_bool, "preflight_allow_unhealthy_cloudcore",
                                                   "preflight_allow_unhealthy_cloudcore"),
                 "check_cluster": read(parse_bool, "preflight_check_cluster", "preflight_check_cluster")}
    node_labels = {"labels": manifests["node_selector"],
                   "prune": read(parse_bool, "node_labels_prune", "node_labels_prune")}
    if read.found or vip is None or names is None or vrrp is None or check is None or mode is None \
            or balancer is None or vip_change is None:
        return PlanResult(None, read.found.items, [])
    network = Problems()
    previous = parse_vip(vip_change["previous"]["cidr"]) if vip_change["previous"] else None
    host_plans = _host_plans(network, vip, vrrp, check, keepalived, names, node_names, hosts, previous)
    if all(plan.endpoint is not None for plan in host_plans.values()):
        _balanced_hosts(network, host_plans, names, ids, balancer, check, mode == "balanced")
    host_plans.update(_leaving_hosts(network, vip, vrrp, keepalived, balancer, leaving, all_node_names, hosts,
                                     host_plans))
    order = vrrp.pop("order")
    vrrp.pop("priorities")  # each host's share lives in its HostPlan
    vip_change["rotate"] = bool(cluster["rotate_cert"]) or bool(vip_change["previous"] or vip_change["retired"])
    plan = SitePlan(hosts=order, leaving=leaving, mode=mode, vip_change=vip_change, vip=vip, vrrp=vrrp, check=check, keepalived=keepalived,
                    manifests=manifests, cluster=cluster, verify=verify, preflight=preflight,
                    node_labels=node_labels, balancer=balancer.as_dict(), host=host_plans)
    return PlanResult(plan, [], network.items)


def _path_or_tilde(value: object, variable: str) -> str:
    """A controller path (a kubeconfig): absolute or starting with ~."""
    if not isinstance(value, str) or not value.strip() or not (value.startswith("/") or value.startswith("~")):
        raise InputError(variable, value, "must be a path on the controller, e.g. ~/.kube/config")
    return value


def _vip_change(read: _Reader, vip: Optional[Vip]) -> Optional[Dict[str, Any]]:
    """A VIP change in two runs. First cloudcore_vip is the new address and cloudcore_vip_previous the
    one the edges still use: keepalived serves both, CloudCore's certificate covers both. When the edges
    have moved, cloudcore_vip_retired names the old one instead: it is served nowhere and the
    certificate is issued again without it. Both may be set only while they mean what they say."""
    previous = read.optional(parse_vip, "cloudcore_vip_previous", "cloudcore_vip_previous")
    retired = read.optional(parse_vip, "cloudcore_vip_retired", "cloudcore_vip_retired")
    if vip is None:
        return None
    ok = True
    for name, other in (("cloudcore_vip_previous", previous), ("cloudcore_vip_retired", retired)):
        if other is not None and other.ip == vip.ip:
            read.found.add(Problem(name, other.cidr, "is cloudcore_vip itself; name the address the edges used"
                                                     " before the change"))
            ok = False
        elif other is not None and other.version != vip.version:
            read.found.add(Problem(name, other.cidr, "is IPv%d and cloudcore_vip IPv%d: one VRRP instance serves one"
                                                     " address family" % (other.version, vip.version)))
            ok = False
    if previous is not None and retired is not None and previous.ip == retired.ip:
        read.found.add(Problem("cloudcore_vip_retired", retired.cidr,
                               "is also cloudcore_vip_previous: keep it previous while edges still use it, then retired"))
        ok = False
    if not ok:
        return None
    return {"previous": previous.as_dict() if previous else None, "retired": retired.as_dict() if retired else None,
            "previous_cidr": previous.cidr if previous else None, "retired_cidr": retired.cidr if retired else None,
            "addresses": [vip.address] + ([previous.address] if previous else []),
            "retired_addresses": [retired.address] if retired else []}


def _host_states(found: Problems, group: Sequence[str], hosts: Sequence[HostInput]) -> Dict[str, str]:
    """Each host's cloudcore_state: present (a CloudCore node, the default) or absent (leaving the site)."""
    by_host = {host.name: host for host in hosts}
    states = {}  # type: Dict[str, str]
    for name in group:
        value = by_host[name].variables.get("cloudcore_state") if name in by_host else None
        state = found.parse(parse_choice, "present" if value in (None, "") else value, HOST_STATES, "cloudcore_state")
        states[name] = state or "present"
    return states


def _without(value: object, leaving: Sequence[str]) -> object:
    """keepalived_priorities without the hosts that leave the site (an order or a mapping may still name them)."""
    if isinstance(value, (list, tuple)):
        return [name for name in value if name not in leaving]
    if isinstance(value, Mapping):
        return {name: priority for name, priority in value.items() if name not in leaving}
    return value


def _vrrp_settings(read: _Reader, vip: Optional[Vip], names: Optional[List[str]],
                   leaving: Sequence[str] = ()) -> Optional[Dict[str, Any]]:
    vrid = read(parse_vrid, "cloudcore_vrrp_router_id")
    mode = read(parse_choice, "cloudcore_vrrp_mode", VRRP_MODES, "cloudcore_vrrp_mode")
    failover = read(parse_choice, "cloudcore_failover", FAILOVER_MODES, "cloudcore_failover")
    advert_raw = parse_number_or_none(read.settings.get("keepalived_advert_int"))
    version = vrrp_version_for(vip, advert_raw) if vip is not None and advert_raw is not None else None
    advert_int = read(parse_advert_int, "keepalived_advert_int", version, "keepalived_advert_int")
    auth = read(parse_auth_pass, "cloudcore_vrrp_auth_pass", version)
    group = read(parse_multicast_group, "keepalived_multicast_group", vip.version) if vip is not None else None
    plan = None
    order = None  # type: Optional[List[str]]
    if names is not None and failover is not None:
        try:
            order, pinned = parse_priorities(_without(read.settings.get("keepalived_priorities"), leaving), names)
            plan = plan_priorities(pinned if pinned is not None else order, failover,
                                   read.settings.get("keepalived_check_weight"), "keepalived_priorities")
        except InputError as error:
            read.found.add(error.problem)
    if None in (vrid, mode, failover, advert_int, version, plan, order):
        return None
    return {"router_id": vrid, "mode": mode, "failover": failover, "version": version, "advert_int": advert_int,
            "multicast_group": group if mode == "multicast" else None, "auth": auth is not None,
            "priorities": plan, "order": order}


def parse_number_or_none(value: object) -> Optional[float]:
    try:
        return parse_number(value, "keepalived_advert_int", 0)
    except InputError:
        return None  # reported by parse_advert_int with the rule


def _check_settings(read: _Reader) -> Optional[CheckPlan]:
    url = read(parse_url, "cloudcore_check_url", "cloudcore_check_url")
    interval = read(parse_whole_seconds, "cloudcore_check_interval", "cloudcore_check_interval")
    timeout = read(parse_whole_seconds, "cloudcore_check_timeout", "cloudcore_check_timeout")
    fall = read(parse_int, "cloudcore_check_fall", "cloudcore_check_fall", 1, 255, "failed checks before the node is unhealthy")
    rise = read(parse_int, "cloudcore_check_rise", "cloudcore_check_rise", 1, 255, "passed checks before it is healthy again")
    curl_timeout = None
    if timeout is not None:
        curl_timeout = read(parse_number, "keepalived_check_curl_timeout", "keepalived_check_curl_timeout", 0, None, True,
                            "seconds")
        if curl_timeout is not None and curl_timeout >= timeout:
            read.found.add(Problem("keepalived_check_curl_timeout", read.settings.get("keepalived_check_curl_timeout"),
                                   "must be below cloudcore_check_timeout (%d s): keepalived kills a check that runs"
                                   " longer, and the next one overlaps" % timeout))
            curl_timeout = None
    script_dir = read(parse_path, "keepalived_script_dir", "keepalived_script_dir")
    drain_file = read(parse_path, "keepalived_drain_file", "keepalived_drain_file")
    if None in (url, interval, timeout, fall, rise, curl_timeout, script_dir, drain_file):
        return None
    return CheckPlan(url, interval, timeout, fall, rise, curl_timeout, "%s/%s" % (script_dir.rstrip("/"), CHECK_SCRIPT_NAME),
                     drain_file)


def _keepalived_settings(read: _Reader) -> Dict[str, Any]:
    return {
        "service": KEEPALIVED_SERVICE,
        "config_path": read(parse_path, "keepalived_config_path", "keepalived_config_path"),
        "config_backup": read(parse_bool, "keepalived_config_backup", "keepalived_config_backup"),
        "script_user": read(parse_user, "keepalived_script_user", "keepalived_script_user"),
        "script_dir": read(parse_path, "keepalived_script_dir", "keepalived_script_dir"),
        "instance_name": read(parse_word, "keepalived_instance_name", "keepalived_instance_name"),
        "notify_script": read.optional(parse_command, "keepalived_notify_script", "keepalived_notify_script"),
        "firewall": read(parse_choice, "keepalived_firewall", FIREWALL_CHOICES, "keepalived_firewall"),
        "drain_file": read(parse_path, "keepalived_drain_file", "keepalived_drain_file"),
    }


def _manifest_settings(read: _Reader, vip: Optional[Vip], names: Optional[List[str]],
                       ports: Dict[str, int]) -> Dict[str, Any]:
    release = read(release_facts, "cloudcore_version", "cloudcore_version")
    image = read(parse_image_repository, "cloudcore_image", "cloudcore_image")
    return {
        "vip_address": vip.address if vip is not None else None,
        "replicas": len(names or []),
        "node_selector": read(parse_node_labels, "cloudcore_node_label", "cloudcore_node_label"),
        "release": release,
        "image": "%s:%s" % (image, release["image_tag"]) if image and release else None,
        "dns_names": read(parse_dns_names, "manifests_dns_names", "manifests_dns_names"),
        "node_limit": read(parse_int, "manifests_node_limit", "manifests_node_limit", 1, 1000000,
                           "the most edge nodes one CloudCore accepts"),
        "quic": read(parse_bool, "manifests_quic", "manifests_quic"),
        "install_crds": read(parse_bool, "manifests_install_crds", "manifests_install_crds"),
        "resources": read(parse_resources, "manifests_resources", "manifests_resources"),
        "tolerations": read(parse_tolerations, "manifests_tolerations", "manifests_tolerations"),
        "restart_wait_seconds": read(parse_int, "manifests_restart_wait_seconds", "manifests_restart_wait_seconds", 1, 3600),
        "cert_renew_days": read(parse_int, "manifests_cert_renew_days", "manifests_cert_renew_days", 0, 36500),
        "reset_crds": read(parse_bool, "manifests_reset_crds", "manifests_reset_crds"),
        "reset_wait_seconds": read(parse_int, "manifests_reset_wait_seconds", "manifests_reset_wait_seconds", 1, 3600),
        "ports": ports,
    }


def _edge_capacity(read: _Reader, mode: Optional[str], node_limit: Optional[int], nodes: int) -> None:
    """Whether the CloudCores' nodeLimit holds the edges the site expects, for the HA mode."""
    edges = read.optional(parse_int, "cloudcore_edge_nodes", "cloudcore_edge_nodes", 0, None, "edge nodes expected")
    if edges is not None and node_limit is not None and mode is not None and (mode == "vip" or nodes >= 2):
        problem = edge_capacity_problem(mode, edges, node_limit, nodes)
        if problem is not None:
            read.found.add(problem)


def _server_ids(found: Problems, node_names: Mapping[str, str], hosts: Sequence[HostInput]) -> Dict[str, int]:
    overrides = {host.name: host.variables.get("balancer_server_id") for host in hosts}
    try:
        return server_ids(node_names, overrides)
    except InputError as error:
        found.add(error.problem)
        return {}


def _balanced_hosts(network: Problems, plans: Dict[str, HostPlan], names: Sequence[str], ids: Mapping[str, int],
                    balancer: BalancerSettings, check: CheckPlan, balanced: bool) -> None:
    """Each host's haproxy.cfg model (balanced mode): the CloudCores at the addresses of their VRRP
    endpoints; and in either mode its balancer firewall rule, which a site leaving balanced mode, or its
    reset, removes."""
    node_names = {name: plans[name].node_name for name in names}
    addresses = {name: plans[name].endpoint.address for name in names}  # type: ignore[union-attr]
    timing = {"interval": check.interval, "timeout": check.timeout, "fall": check.fall, "rise": check.rise}
    configs = {}  # type: Dict[str, HaproxyConfig]
    if balanced:
        configs = {name: haproxy_config(name, names, node_names, ids, addresses, balancer, timing) for name in names}
        # each node's own rules, then what the nodes must agree on (the same servers, ids and peers)
        for problem in haproxy_problems(configs):
            network.add(problem)
    for name in names:
        config = configs.get(name)
        endpoint = plans[name].endpoint
        firewall = _balancer_firewall(endpoint, balancer, plans[name].firewall["firewall"])  # type: ignore[arg-type,index]
        # the module balancer_firewall parses the same options again: prove here that it will accept them
        network.parse(balancer_traffic, firewall["interface"], firewall["peers"], firewall["ports"])
        plans[name] = replace(plans[name], haproxy=config, balancer_firewall=firewall)


def _host_endpoint(network: Problems, name: str, host: Optional[HostInput], vip: Vip) -> Optional[Endpoint]:
    """A host's VRRP endpoint from its facts and cloudcore_vrrp_interface (no peers yet), or None with
    the problem recorded."""
    facts = dict(host.facts) if host is not None else {}
    if not facts:
        network.add(Problem("ansible_facts", name, "on host %s: no network facts were gathered (setup,"
                                                   " gather_subset network): the host's VRRP endpoint cannot be"
                                                   " planned" % name))
        return None
    interface = host.variables.get("cloudcore_vrrp_interface")  # type: ignore[union-attr]
    try:
        if interface not in (None, ""):
            parse_interface(interface)
        return vrrp_endpoint(name, facts, vip, interface or None)
    except InputError as error:
        network.add(error.problem)
        return None


def _vrrp_firewall(endpoint: Endpoint, vip: Vip, vrrp: Dict[str, Any], choice: str) -> Dict[str, Any]:
    """The options of the module vrrp_firewall for one host."""
    return {"interface": endpoint.interface, "vip": vip.cidr, "mode": vrrp["mode"],
            "multicast_group": vrrp["multicast_group"], "peers": list(endpoint.peers), "firewall": choice}


def _balancer_firewall(endpoint: Endpoint, balancer: BalancerSettings, choice: str) -> Dict[str, Any]:
    """The options of the module balancer_firewall for one host."""
    return {"interface": endpoint.interface, "peers": list(endpoint.peers), "ports": balancer.guarded_ports,
            "firewall": choice}


def _leaving_hosts(network: Problems, vip: Vip, vrrp: Dict[str, Any], keepalived: Dict[str, Any],
                   balancer: BalancerSettings, leaving: Sequence[str], node_names: Mapping[str, str],
                   hosts: Sequence[HostInput], members: Mapping[str, HostPlan]) -> Dict[str, HostPlan]:
    """What the removal of each leaving host needs: its endpoint and the VRRP and balancer firewall
    rules it has (its peers: the CloudCore nodes), so that they can be taken away."""
    by_host = {host.name: host for host in hosts}
    peers = [plan.endpoint.address for plan in members.values() if plan.endpoint is not None]
    plans = {}
    for name in leaving:
        found = _host_endpoint(network, name, by_host.get(name), vip)
        endpoint = Endpoint(found.host, found.interface, found.address, list(peers)) if found else None
        plans[name] = HostPlan(name, node_names.get(name, name), None, endpoint, None,
                               _vrrp_firewall(endpoint, vip, vrrp, keepalived["firewall"]) if endpoint else None,
                               balancer_firewall=_balancer_firewall(endpoint, balancer, keepalived["firewall"])
                               if endpoint else None)
    return plans


def _node_names(found: Problems, names: Sequence[str], hosts: Sequence[HostInput]) -> Dict[str, str]:
    """Each host's Kubernetes node name (cloudcore_node_name, default the inventory name); two hosts
    may not share one."""
    by_host = {host.name: host for host in hosts}
    out = {}  # type: Dict[str, str]
    for name in names:
        variables = by_host[name].variables if name in by_host else {}
        node = found.parse(parse_node_name, variables.get("cloudcore_node_name") or name,
                           "cloudcore_node_name")
        if node is not None:
            out[name] = node
    for node in sorted({n for n in out.values() if list(out.values()).count(n) > 1}):
        found.add(Problem("cloudcore_node_name", node, "is used by hosts %s; every host needs its own node"
                          % ", ".join(h for h in names if out.get(h) == node)))
    return out


def _host_plans(network: Problems, vip: Vip, vrrp: Dict[str, Any], check: CheckPlan, keepalived: Dict[str, Any],
                names: Sequence[str], node_names: Mapping[str, str], hosts: Sequence[HostInput],
                previous: Optional[Vip] = None) -> Dict[str, HostPlan]:
    by_host = {host.name: host for host in hosts}
    facts = {name: dict(by_host[name].facts) for name in names if name in by_host and by_host[name].facts}
    for variable, address in (("cloudcore_vip", vip), ("cloudcore_vip_previous", previous)):
        for host in vip_collisions(address, facts) if address is not None else []:
            network.add(Problem(variable, address.cidr, "is the own address of host %s; the VIP must be an unused"
                                                        " address" % host))
    endpoints = [endpoint for endpoint in (_host_endpoint(network, name, by_host.get(name), vip) for name in names)
                 if endpoint is not None]
    complete = with_peers(endpoints) if len(endpoints) == len(names) and not network else {}
    plans = {}
    for name in names:
        endpoint = complete.get(name)
        node = vrrp["priorities"][name]
        if endpoint is not None and previous is not None and not any(
                previous.ip in address.network for address in interface_addresses(facts[name], endpoint.interface,
                                                                                  previous.version)):
            network.add(Problem("cloudcore_vip_previous", previous.cidr, "on host %s: interface %s has no address in"
                                " its subnet; the previous VIP stays on the VIP's interface" % (name, endpoint.interface)))
        config = _keepalived_config(name, node, endpoint, vip, vrrp, check, keepalived, previous) if endpoint else None
        if config is not None:
            for problem in config_problems(config):
                network.add(Problem(problem.variable, problem.value, "on host %s: the planned keepalived.conf breaks"
                                                                     " a rule: %s" % (name, problem.rule)))
        firewall = None
        if endpoint is not None:
            firewall = _vrrp_firewall(endpoint, vip, vrrp, keepalived["firewall"])
            # the module vrrp_firewall parses the same options again: prove here that it will accept them
            network.parse(vrrp_traffic, endpoint.interface, vip.cidr, vrrp["mode"], vrrp["multicast_group"],
                          endpoint.peers)
        plans[name] = HostPlan(name, node_names.get(name, name), node, endpoint, config, firewall)
    return plans


def _keepalived_config(name: str, node: NodePlan, endpoint: Endpoint, vip: Vip, vrrp: Dict[str, Any],
                       check: CheckPlan, keepalived: Dict[str, Any], previous: Optional[Vip] = None) -> KeepalivedConfig:
    unicast = vrrp["mode"] == "unicast"
    return KeepalivedConfig(
        router_id=name, check_script=check.command, interface=endpoint.interface,
        virtual_router_id=vrrp["router_id"], priority=node.priority, vip=vip.cidr,
        script_user=keepalived["script_user"], check_interval=check.interval, check_timeout=check.timeout,
        check_fall=check.fall, check_rise=check.rise, check_weight=node.track_weight,
        instance_name=keepalived["instance_name"], state=node.state, advert_int=vrrp["advert_int"],
        vrrp_version=vrrp["version"], nopreempt=node.nopreempt,
        multicast_group=vrrp["multicast_group"],
        unicast_src_ip=endpoint.address if unicast else None,
        unicast_peers=list(endpoint.peers) if unicast else [],
        notify_script=keepalived["notify_script"],
        extra_vips=[previous.cidr] if previous is not None else [])


def site_plan(settings: Mapping[str, Any], hostvars: Mapping[str, Mapping[str, Any]]) -> Dict[str, Any]:
    """plan_site from Ansible's view: settings by variable name and hostvars (the filter's input)."""
    hosts = []
    names = settings.get("cloudcore_hosts")
    for name in names if isinstance(names, (list, tuple)) else []:
        try:
            variables = hostvars[name]
        except KeyError:
            variables = {}
        hosts.append(HostInput(
            name=str(name),
            variables={key: variables.get(key) for key in HOST_VARIABLES},
            facts=dict(variables.get("ansible_facts") or {})))
    return plan_site(settings, hosts).as_dict()
