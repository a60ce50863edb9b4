# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Preflight's judgement: the site plan's problems plus what preflight observed before anything
changes (who answers for the VIP, CloudCore's health on each node, the cluster and its nodes).

The inputs themselves are judged by the site plan (_site.py); this file adds only the rules that need
an observation, and reports every problem at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.cloudcore.ha.plugins.module_utils._haproxy_conf import from_options as haproxy_model
from ansible_collections.cloudcore.ha.plugins.module_utils._haproxy_test import bind_conflicts, parse_listeners
from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import Problem
from ansible_collections.cloudcore.ha.plugins.module_utils._releases import downgrade_rule
from ansible_collections.cloudcore.ha.plugins.module_utils._topology import vip_holders

# Who may hold balanced mode's ports before the run: haproxy itself, and CloudCore, which holds the
# public ports until it moves (the stand-in and the real image both run as "cloudcore").
BALANCER_PORT_OWNERS = ("haproxy", "cloudcore")
# What a haproxy.cfg port is called in the inventory (the public ones cannot be changed: edges use them).
PORT_VARIABLES = {"peers": "balancer_peers_port", "monitor": "balancer_monitor_port"}


@dataclass(frozen=True)
class NodeObservation:
    """What preflight saw on one CloudCore host (None: not checked)."""

    host: str
    facts: Mapping[str, Any]
    vip_ping_rc: Optional[int] = None  # 0: something answered a ping to the VIP from this host
    check_status: Optional[int] = None  # HTTP status of cloudcore_check_url on this host; -1 no answer
    internal_status: Optional[int] = None  # balanced mode: CloudCore's own https port; -1 no answer
    listeners: Optional[str] = None  # balanced mode: `ss -Hltnp`
    haproxy_policy: Optional[str] = None  # balanced mode on Debian: `apt-cache policy haproxy`


@dataclass(frozen=True)
class ClusterObservation:
    reachable: bool
    error: str = ""
    node_names: Tuple[str, ...] = ()
    cloudcore_deployed: bool = False
    cloudcore_image: Optional[str] = None  # the running Deployment's CloudCore image


def _on(host: str, rule: str) -> str:
    return "on host %s: %s" % (host, rule)


def observation_problems(site: Mapping[str, Any], nodes: Sequence[NodeObservation],
                         cluster: Optional[ClusterObservation] = None,
                         pki: Optional[Problem] = None) -> List[Problem]:
    """The rules that need an observation, judged against the site plan (cloudcore_site)."""
    problems = []  # type: List[Problem]
    vip = (site.get("vip") or {}).get("cidr")
    hosts = [node.host for node in nodes]
    answered = [node.host for node in nodes if node.vip_ping_rc == 0]
    if vip and answered and not vip_holders({n.host: {"ansible_facts": n.facts} for n in nodes}, hosts, vip):
        problems.append(Problem("cloudcore_vip", vip, (
            "answers pings from %s, but no host of the cloudcore group holds it: another machine uses this"
            " address; pick a free one" % ", ".join(answered))))

    # a site half-way to balanced mode: CloudCore serves on its internal port, haproxy is not there yet
    healthy = [node for node in nodes if node.check_status == 200 or node.internal_status == 200]
    statuses = [node.check_status for node in nodes if node.check_status is not None]
    deployed = cluster is None or cluster.cloudcore_deployed
    allowed = bool((site.get("preflight") or {}).get("allow_unhealthy_cloudcore"))
    leaving = set(site.get("leaving") or [])
    if statuses and healthy and deployed and not allowed and all(node.host in leaving for node in healthy):
        problems.append(Problem("cloudcore_state", "absent", (
            "on %s: the only healthy CloudCore would leave the site (the check fails on %s); fix CloudCore on"
            " the nodes that stay first, or set preflight_allow_unhealthy_cloudcore=true"
            % (", ".join(sorted(node.host for node in healthy)),
               ", ".join(node.host for node in nodes if node.host not in leaving) or "no other node"))))
    if statuses and not healthy and deployed and not allowed:
        problems.append(Problem("cloudcore_check_url", (site.get("check") or {}).get("url"), (
            "fails on every node (HTTP %s): with the check failing everywhere no node would hold the VIP in"
            " fault mode; fix CloudCore first, or set preflight_allow_unhealthy_cloudcore=true"
            % ", ".join("%s=%s" % (n.host, "no answer" if n.check_status == -1 else n.check_status)
                        for n in nodes if n.check_status is not None))))

    if site.get("mode") == "balanced":
        problems += balancer_problems(site, nodes)

    if cluster is not None:
        settings = site.get("cluster") or {}
        if not cluster.reachable:
            problems.append(Problem("cloudcore_kubeconfig", settings.get("kubeconfig"), (
                "the cluster cannot be reached with it (context %s): %s"
                % (settings.get("context") or "current", cluster.error or "unknown error"))))
        else:
            node_names = dict(zip(site.get("hosts") or [], site.get("node_names") or []))
            for host in site.get("hosts") or []:
                name = node_names.get(host, host)
                if name not in cluster.node_names:
                    problems.append(Problem("cloudcore_node_name", name, _on(
                        host, "no such node in the cluster (nodes: %s)" % ", ".join(sorted(cluster.node_names)))))
        release = (site.get("manifests") or {}).get("release") or {}
        rule = downgrade_rule(release["version"], cluster.cloudcore_image) if cluster.reachable and release else None
        if rule is not None:
            problems.append(Problem("cloudcore_version", release["version"], rule))
        if pki is not None and cluster.reachable:
            problems.append(pki)
    return problems


def balancer_problems(site: Mapping[str, Any], nodes: Sequence[NodeObservation]) -> List[Problem]:
    """Balanced mode: haproxy's ports and CloudCore's internal ones free of other services, and haproxy
    installable."""
    problems = []  # type: List[Problem]
    balancer = site.get("balancer") or {}
    internal = balancer.get("internal_ports") or {}
    for node in nodes:
        conf = ((site.get("host") or {}).get(node.host) or {}).get("haproxy_conf")
        if node.listeners is not None and conf:
            for conflict in bind_conflicts(node.listeners, haproxy_model(conf), BALANCER_PORT_OWNERS):
                variable = PORT_VARIABLES.get(conflict.purpose, "cloudcore_ha_mode")
                value = conflict.port if variable != "cloudcore_ha_mode" else "balanced"
                problems.append(Problem(variable, value, _on(node.host, conflict.msg + (
                    "; stop that service or pick another port" if variable != "cloudcore_ha_mode" else
                    "; balanced mode needs CloudCore's public ports for haproxy"))))
            for kind, port in sorted(internal.items()):
                for listener in parse_listeners(node.listeners):
                    owners = [name for name, _pid in listener.processes]
                    if listener.port == port and not (owners and all(n in BALANCER_PORT_OWNERS for n in owners)):
                        problems.append(Problem("balancer_internal_%s_port" % kind, port, _on(
                            node.host, "is taken by %s listening on %s; CloudCore moves there in balanced mode:"
                                       " pick another port" % (listener.owners, listener.text))))
        if node.haproxy_policy is not None and "Candidate: (none)" in node.haproxy_policy \
                and "Installed: (none)" in node.haproxy_policy:
            problems.append(Problem("cloudcore_ha_mode", "balanced", _on(
                node.host, "apt has no haproxy package to install (apt-cache policy: no candidate); add a"
                           " repository that carries it or use cloudcore_ha_mode: vip")))
    return problems


def preflight_problems(site: Mapping[str, Any], nodes: Sequence[NodeObservation],
                       cluster: Optional[ClusterObservation] = None, pki: Optional[Problem] = None) -> List[str]:
    """Everything preflight reports, one message each: the plan's problems, then the observations'."""
    messages = list(site.get("problems") or []) + list(site.get("network_problems") or [])
    if site.get("problems"):
        return messages  # without a plan the observations cannot be judged
    return messages + [problem.msg for problem in observation_problems(site, nodes, cluster, pki)]


def pki_observation(result: Optional[Mapping[str, Any]]) -> Optional[Problem]:
    """The check-mode result of cloudcore.ha.cloudcore_pki (registered with failed_when: false) as a
    problem, when it refused.

    Only a refusal about the Secrets' content counts (it names the variable); a cluster it cannot
    reach is reported once, by the cluster observation."""
    if not result or result.get("skipped") or not result.get("blocked_variable"):
        return None
    rule = str(result.get("blocked") or result.get("msg") or "").replace("cloudcore_pki: ", "", 1)
    return Problem(str(result["blocked_variable"]), result.get("blocked_value"), rule)


def cluster_observation(nodes_result: Optional[Mapping[str, Any]],
                        deployment_result: Optional[Mapping[str, Any]]) -> Optional[ClusterObservation]:
    """kubernetes.core.k8s_info results (registered with failed_when: false) as an observation."""
    if not nodes_result or nodes_result.get("skipped"):
        return None
    if nodes_result.get("failed") or "resources" not in nodes_result:
        first_line = (str(nodes_result.get("msg") or "no answer").splitlines() or ["no answer"])[0]
        return ClusterObservation(reachable=False, error=first_line[:300])
    names = tuple(str((item.get("metadata") or {}).get("name", "")) for item in nodes_result["resources"])
    deployments = (deployment_result or {}).get("resources") or []
    return ClusterObservation(reachable=True, node_names=names, cloudcore_deployed=bool(deployments),
                              cloudcore_image=_cloudcore_image(deployments[0]) if deployments else None)


def _cloudcore_image(deployment: Mapping[str, Any]) -> Optional[str]:
    """The image of the Deployment's container named cloudcore (our manifests' and keadm's name)."""
    containers = (((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    for container in containers:
        if container.get("name") == "cloudcore":
            return str(container.get("image"))
    return None


def as_int(value: object) -> Optional[int]:
    """A registered number: an int, or text when Jinja's native types are off (ansible-core < 2.19)."""
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _text(value: object) -> Optional[str]:
    return value if isinstance(value, str) and value not in ("", "None") else None


def node_observations(hostvars: Mapping[str, Mapping[str, Any]], hosts: Sequence[str],
                      variable: str = "_preflight_observation") -> List[NodeObservation]:
    observations = []
    for host in hosts:
        host_vars = hostvars[host]
        seen = host_vars.get(variable) or {}  # type: Dict[str, Any]
        observations.append(NodeObservation(host=host, facts=dict(host_vars.get("ansible_facts") or {}),
                                            vip_ping_rc=as_int(seen.get("vip_ping_rc")),
                                            check_status=as_int(seen.get("check_status")),
                                            internal_status=as_int(seen.get("internal_status")),
                                            listeners=_text(seen.get("listeners")),
                                            haproxy_policy=_text(seen.get("haproxy_policy"))))
    return observations
