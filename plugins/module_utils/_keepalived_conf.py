# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The keepalived.conf model of a CloudCore node, its rules and its renderer.

One health-check script (vrrp_script) and one VRRP instance holding the CloudCore VIP. The fields
of KeepalivedConfig are the model: the site plan fills them, the module keepalived_config takes them
as its `config` option (its argument spec is built from them), the renderer writes them. The rules
shared with other inputs (the VIP, the VRID, the auth secret, the check rhythm, names and paths)
come from _inputs.py; only keepalived.conf's own combinations are written here.

Plain Python without Ansible imports.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import (
    InputError,
    Problem,
    Problems,
    parse_advert_int,
    parse_auth_pass,
    parse_choice,
    parse_command,
    parse_int,
    parse_interface,
    parse_ip,
    parse_multicast_group,
    parse_token,
    parse_user,
    parse_vip,
    parse_vrid,
    parse_whole_seconds,
    parse_word,
    vrrp_version_for,
)
from ansible_collections.cloudcore.ha.plugins.module_utils._vrrp_plan import MAX_TRACK_WEIGHT

HEADER = "# managed by cloudcore.ha; do not edit (changes are overwritten on the next run)"
STATES = ("MASTER", "BACKUP")


class KeepalivedConfigError(ValueError):
    """One or more fields break a rule; .problems lists them (Problem: variable = field name)."""

    def __init__(self, problems: List[Problem]):
        self.problems = problems
        super().__init__("; ".join(problem.msg for problem in problems))


@dataclass(frozen=True)
class KeepalivedConfig:
    router_id: str
    check_script: str
    interface: str
    virtual_router_id: int
    priority: int
    vip: str
    script_user: str = "keepalived_script"
    script_name: str = "chk_cloudcore"
    check_interval: float = 1
    check_timeout: float = 1
    check_fall: int = 2
    check_rise: int = 2
    check_weight: int = 0
    instance_name: str = "CLOUDCORE"
    state: str = "BACKUP"
    advert_int: float = 1
    vrrp_version: Optional[int] = None  # None: decided from the VIP family and advert_int
    nopreempt: bool = False
    preempt_delay: Optional[int] = None
    auth_pass: Optional[str] = None
    multicast_group: Optional[str] = None
    unicast_src_ip: Optional[str] = None
    unicast_peers: List[str] = field(default_factory=list)
    vip_dev: Optional[str] = None
    notify_script: Optional[str] = None
    extra_vips: List[str] = field(default_factory=list)  # a VIP change: the previous VIP, served too

    def as_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


# The argument-spec type of each field (Ansible's names), so the module declares nothing twice.
_SPEC_TYPES = {"str": "str", "int": "int", "float": "float", "bool": "bool", "List[str]": "list"}


def option_spec(exclude: Sequence[str] = ()) -> Dict[str, Dict[str, Any]]:
    """An AnsibleModule argument spec for the fields of KeepalivedConfig (minus `exclude`)."""
    spec = {}
    for item in dataclasses.fields(KeepalivedConfig):
        if item.name in exclude:
            continue
        type_name = str(item.type).replace("Optional[", "").rstrip("]") if "Optional[" in str(item.type) \
            else str(item.type)
        option = {"type": _SPEC_TYPES[type_name]}  # type: Dict[str, Any]
        if option["type"] == "list":
            option["elements"] = "str"
        if item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:  # type: ignore[misc]
            option["required"] = True
        elif item.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            option["default"] = item.default_factory()  # type: ignore[misc]
        elif item.default is not None:
            option["default"] = item.default
        if item.name == "auth_pass":
            option["no_log"] = True
        if item.name == "state":
            option["choices"] = list(STATES)
        if item.name == "vrrp_version":
            option["choices"] = [2, 3]
        spec[item.name] = option
    return spec


def from_options(options: Dict[str, Any]) -> KeepalivedConfig:
    """KeepalivedConfig from a mapping of field names (unknown keys are ignored)."""
    names = {item.name for item in dataclasses.fields(KeepalivedConfig)}
    values = {key: value for key, value in options.items() if key in names}
    for key in ("check_interval", "check_timeout", "advert_int"):
        # keep integral numbers integral, so that "advert_int 1" renders as 1, not 1.0
        if isinstance(values.get(key), float) and values[key].is_integer():
            values[key] = int(values[key])
    return KeepalivedConfig(**values)


def resolve_vrrp_version(config: KeepalivedConfig) -> int:
    """The configured VRRP version, else 3 for an IPv6 VIP or sub-second adverts, else 2."""
    if config.vrrp_version is not None:
        return int(config.vrrp_version)
    try:
        vip = parse_vip(config.vip, "vip")
        return vrrp_version_for(vip, float(config.advert_int))
    except (InputError, TypeError, ValueError):
        return 2


def config_problems(config: KeepalivedConfig) -> List[Problem]:
    """Every rule the config breaks (variable = the field name)."""
    found = Problems()
    found.parse(parse_token, config.router_id, "router_id")
    found.parse(parse_user, config.script_user, "script_user")
    found.parse(parse_word, config.script_name, "script_name")
    found.parse(parse_word, config.instance_name, "instance_name")
    found.parse(parse_interface, config.interface, "interface")
    if config.vip_dev is not None:
        found.parse(parse_interface, config.vip_dev, "vip_dev")
    found.parse(parse_command, config.check_script, "check_script")
    if config.notify_script is not None:
        found.parse(parse_command, config.notify_script, "notify_script")
    found.parse(parse_whole_seconds, config.check_interval, "check_interval")
    found.parse(parse_whole_seconds, config.check_timeout, "check_timeout")
    found.parse(parse_int, config.check_fall, "check_fall", 1)
    found.parse(parse_int, config.check_rise, "check_rise", 1)
    found.parse(parse_int, config.check_weight, "check_weight", -MAX_TRACK_WEIGHT, MAX_TRACK_WEIGHT,
                "0: a failing check puts the node in FAULT")
    state = found.parse(parse_choice, config.state, STATES, "state")
    found.parse(parse_vrid, config.virtual_router_id, "virtual_router_id")
    _priority(found, config.priority)
    vip = found.parse(parse_vip, config.vip, "vip")
    for extra in config.extra_vips or []:
        other = found.parse(parse_vip, extra, "extra_vips")
        if other is not None and vip is not None and (other.version != vip.version or other.ip == vip.ip):
            found.add(Problem("extra_vips", extra, "must be another address of the VIP's family (%s)" % vip.cidr))

    version = None
    if config.vrrp_version is not None and config.vrrp_version not in (2, 3):
        found.add(Problem("vrrp_version", config.vrrp_version,
                          "must be 2 or 3 (or unset: 3 for an IPv6 VIP or sub-second adverts, else 2)"))
    else:
        version = resolve_vrrp_version(config)
    found.parse(parse_advert_int, config.advert_int, version, "advert_int")
    if version == 2 and vip is not None and vip.version == 6:
        found.add(Problem("vrrp_version", config.vrrp_version,
                          "VRRPv2 carries IPv4 only; an IPv6 VIP needs version 3 (or leave it unset)"))
    if config.nopreempt and state == "MASTER":
        found.add(Problem("nopreempt", config.nopreempt,
                          "nopreempt only works with state BACKUP (keepalived ignores it on a MASTER)"))
    if config.preempt_delay is not None:
        if found.parse(parse_int, config.preempt_delay, "preempt_delay", 0, 1000) is not None and config.nopreempt:
            found.add(Problem("preempt_delay", config.preempt_delay, "has no effect with nopreempt: set one or the other"))
    found.parse(parse_auth_pass, config.auth_pass, version, "auth_pass")
    family = vip.version if vip is not None else None
    if config.multicast_group not in (None, "") and family is not None:
        found.parse(parse_multicast_group, config.multicast_group, family, "multicast_group", "error")
        if config.unicast_peers:
            found.add(Problem("multicast_group", config.multicast_group, "cannot be combined with unicast_peers: choose one"))
    _unicast(found, config, family)
    return found.items


def _priority(found: Problems, priority: object) -> None:
    if found.parse(parse_int, priority, "priority", 1, 255) == 255:
        found.add(Problem("priority", priority, "255 makes the node the address owner: keepalived ignores the health"
                                                " check's weight and a failing CloudCore would keep the VIP; use 1..254"))


def _unicast(found: Problems, config: KeepalivedConfig, family: Optional[int]) -> None:
    peers = list(config.unicast_peers or [])
    if config.unicast_src_ip:
        found.parse(parse_ip, config.unicast_src_ip, "unicast_src_ip", family)
        if not peers:
            found.add(Problem("unicast_peers", peers,
                              "unicast_src_ip needs at least one peer (keepalived falls back to multicast)"))
    for peer in peers:
        found.parse(parse_ip, peer, "unicast_peers", family)
    if len(set(peers)) != len(peers):
        found.add(Problem("unicast_peers", peers, "lists a peer twice"))
    if peers and config.unicast_src_ip in peers:
        found.add(Problem("unicast_peers", peers, "must not contain unicast_src_ip (this node's own address)"))


def _fmt_number(value: float) -> str:
    value = float(value)
    if value.is_integer():
        return str(int(value))
    return ("%.2f" % value).rstrip("0").rstrip(".")


def _quote(text: str) -> str:
    return '"%s"' % text


def render_keepalived_conf(config: KeepalivedConfig) -> str:
    """keepalived.conf text for one CloudCore VIP; raises KeepalivedConfigError on bad input."""
    problems = config_problems(config)
    if problems:
        raise KeepalivedConfigError(problems)
    vip = parse_vip(config.vip, "vip")
    version = resolve_vrrp_version(config)
    out = [HEADER, "", "global_defs {", "    router_id %s" % config.router_id,
           # without it keepalived logs a SECURITY VIOLATION and its config test fails
           "    enable_script_security", "    script_user %s" % config.script_user]
    if config.multicast_group:
        group = ipaddress.ip_address(config.multicast_group)
        out.append("    vrrp_mcast_group%d %s" % (group.version, group))
    out += ["}", ""]
    out += ["vrrp_script %s {" % config.script_name,
            "    script %s" % _quote(config.check_script.strip()),
            "    interval %s" % _fmt_number(config.check_interval),
            "    timeout %s" % _fmt_number(config.check_timeout),
            "    fall %d" % int(config.check_fall),
            "    rise %d" % int(config.check_rise),
            "    weight %d" % int(config.check_weight),
            "}", ""]
    out += ["vrrp_instance %s {" % config.instance_name,
            "    state %s" % config.state,
            "    interface %s" % config.interface,
            "    virtual_router_id %d" % int(config.virtual_router_id),
            "    priority %d" % int(config.priority),
            "    advert_int %s" % _fmt_number(config.advert_int),
            "    version %d" % version]
    if config.nopreempt:
        out.append("    nopreempt")
    if config.preempt_delay is not None:
        out.append("    preempt_delay %d" % int(config.preempt_delay))
    if config.auth_pass:
        out += ["    authentication {", "        auth_type PASS", "        auth_pass %s" % config.auth_pass, "    }"]
    if config.unicast_peers:
        if config.unicast_src_ip:
            out.append("    unicast_src_ip %s" % ipaddress.ip_address(config.unicast_src_ip))
        out.append("    unicast_peer {")
        out += ["        %s" % ipaddress.ip_address(peer) for peer in config.unicast_peers]
        out.append("    }")
    dev = config.vip_dev or config.interface
    extra = [parse_vip(address, "extra_vips").cidr for address in config.extra_vips or []]
    out.append("    virtual_ipaddress {")
    out += ["        %s dev %s" % (cidr, dev) for cidr in [vip.cidr] + extra]
    # the weight lives in vrrp_script; repeating it here would only override it with the same value
    out += ["    }", "    track_script {", "        %s" % config.script_name, "    }"]
    if config.notify_script:
        out.append("    notify %s" % _quote(config.notify_script.strip()))
    out.append("}")
    return "\n".join(out) + "\n"


_AUTH_RE = re.compile(r"^(\s*auth_pass\s+)(\S+)", re.MULTILINE)
MASK = "********"


def mask_secrets(text: str) -> str:
    """The config text with auth_pass values replaced, for diffs and logs."""
    return _AUTH_RE.sub(lambda m: m.group(1) + MASK, text)
