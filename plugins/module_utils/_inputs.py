# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The collection's input types: one parser per kind of input, one error type.

Every value a user gives (inventory variables, module options, filter arguments) is parsed here and
nowhere else, so a rule is written once and preflight, the roles and the modules agree on it. A parser
returns the value in its useful form or raises InputError naming the variable, the bad value and the
rule (with the fix). Secrets are never put into an error: their value is replaced by a description.

Plain Python without Ansible imports.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPInterface = Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface]
T = TypeVar("T")


@dataclass(frozen=True)
class Problem:
    """One broken rule: the variable, the offending value and the rule with its fix."""

    variable: str
    value: object
    rule: str

    @property
    def msg(self) -> str:
        return "%s=%r: %s" % (self.variable, self.value, self.rule)

    def as_dict(self) -> Dict[str, object]:
        return {"variable": self.variable, "value": self.value, "rule": self.rule, "msg": self.msg}


class InputError(ValueError):
    """An input breaks a rule; carries the variable, the value and the rule."""

    def __init__(self, variable: str, value: object, rule: str):
        self.variable = variable
        self.value = value
        self.rule = rule
        super().__init__("%s=%r: %s" % (variable, value, rule))

    @property
    def problem(self) -> Problem:
        return Problem(self.variable, self.value, self.rule)


class Problems:
    """Collects every problem of several inputs, so that a run reports all of them at once."""

    def __init__(self) -> None:
        self.items: List[Problem] = []

    def parse(self, parser: Callable[..., T], *args: Any, **kwargs: Any) -> Optional[T]:
        """parser(*args) or None, recording its InputError."""
        try:
            return parser(*args, **kwargs)
        except InputError as error:
            self.add(error.problem)
            return None

    def add(self, problem: Problem) -> None:
        if problem not in self.items:
            self.items.append(problem)

    def __bool__(self) -> bool:
        return bool(self.items)


# ------------------------------------------------------------------------------------ numbers

def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_int(value: object, variable: str, minimum: Optional[int] = None, maximum: Optional[int] = None,
              meaning: str = "") -> int:
    """A whole number (digit strings too: extra vars arrive as text) within minimum..maximum."""
    number = None  # type: Optional[int]
    if _is_int(value):
        number = int(value)  # type: ignore[arg-type]
    elif isinstance(value, str) and re.match(r"^\s*-?\d+\s*$", value):
        number = int(value)
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    what = " (%s)" % meaning if meaning else ""
    if number is None:
        raise InputError(variable, value, "must be a whole number%s%s" % (_span(minimum, maximum, " "), what))
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise InputError(variable, value, "must be%s%s" % (_span(minimum, maximum, " "), what))
    return number


def _span(minimum: Optional[int], maximum: Optional[int], lead: str = "") -> str:
    if minimum is not None and maximum is not None:
        return "%s%d..%d" % (lead, minimum, maximum)
    if minimum is not None:
        return "%s>= %d" % (lead, minimum)
    if maximum is not None:
        return "%s<= %d" % (lead, maximum)
    return ""


def parse_number(value: object, variable: str, minimum: float = 0.0, maximum: Optional[float] = None,
                 above_minimum: bool = True, meaning: str = "") -> float:
    """A number of seconds (or the like): > minimum (or >= with above_minimum False), <= maximum."""
    number = None  # type: Optional[float]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    what = " (%s)" % meaning if meaning else ""
    if number is None or math.isnan(number):
        raise InputError(variable, value, "must be a number%s" % what)
    low_ok = number > minimum if above_minimum else number >= minimum
    if not low_ok or (maximum is not None and number > maximum):
        bound = ("> %s" if above_minimum else ">= %s") % _fmt(minimum)
        if maximum is not None:
            bound += " and <= %s" % _fmt(maximum)
        raise InputError(variable, value, "must be %s%s" % (bound, what))
    return number


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else ("%.3f" % number).rstrip("0")


def parse_whole_seconds(value: object, variable: str, maximum: int = 4294, meaning: str = "") -> int:
    """Whole seconds 1..maximum: keepalived 2.2 reads a vrrp_script interval/timeout as whole seconds
    and rejects fractions ("invalid number '0.5'")."""
    try:
        number = parse_number(value, variable, 0, None)
    except InputError:
        number = None
    if number is None or not number.is_integer() or not 1 <= number <= maximum:
        raise InputError(variable, value, "must be whole seconds 1..%d (keepalived 2.2 rejects fractions for"
                                          " vrrp_script)%s" % (maximum, " (%s)" % meaning if meaning else ""))
    return int(number)


def parse_port(value: object, variable: str, meaning: str = "a TCP port") -> int:
    """A TCP port 1..65535."""
    return parse_int(value, variable, 1, 65535, meaning)


# haproxy keeps its timers as signed 32-bit milliseconds: "slightly above 24 days" (configuration.txt
# 2.5 "Time format", and the stick-table expire argument)
DURATION_MAX_SECONDS = 2147483


def parse_duration(value: object, variable: str, minimum: float = 0.0, meaning: str = "seconds") -> float:
    """Seconds for a haproxy timer: > minimum, at most DURATION_MAX_SECONDS, in whole milliseconds
    (haproxy's finest unit for timeouts and check intervals)."""
    number = parse_number(value, variable, minimum, DURATION_MAX_SECONDS, meaning=meaning)
    if abs(number * 1000 - round(number * 1000)) > 1e-6:
        raise InputError(variable, value, "must be whole milliseconds (haproxy's finest unit for timers): %s"
                         % meaning)
    return number


def parse_bool(value: object, variable: str) -> bool:
    """Ansible's booleans: true/false, yes/no, on/off, 1/0 (any case)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if text in ("true", "yes", "on", "1", "y", "t"):
        return True
    if text in ("false", "no", "off", "0", "n", "f"):
        return False
    raise InputError(variable, value, "must be a boolean (true or false)")


def parse_choice(value: object, choices: Sequence[str], variable: str) -> str:
    if isinstance(value, str) and value in choices:
        return value
    raise InputError(variable, value, "is unknown; use one of: %s" % ", ".join(choices))


# ------------------------------------------------------------------------------------ addresses

@dataclass(frozen=True)
class Vip:
    """The VIP: an address with the prefix of the subnet it serves, e.g. 10.10.102.242/24."""

    interface: IPInterface

    @property
    def ip(self) -> IPAddress:
        return self.interface.ip

    @property
    def address(self) -> str:
        """The address alone, as CloudCore wants it in advertiseAddress and edges dial it."""
        return str(self.interface.ip)

    @property
    def cidr(self) -> str:
        return self.interface.with_prefixlen

    @property
    def version(self) -> int:
        return self.interface.version

    @property
    def network(self) -> Union[ipaddress.IPv4Network, ipaddress.IPv6Network]:
        return self.interface.network

    def as_dict(self) -> Dict[str, object]:
        return {"address": self.address, "cidr": self.cidr, "prefix": self.interface.network.prefixlen,
                "version": self.version, "network": str(self.network)}


def parse_vip(value: object, variable: str = "cloudcore_vip") -> Vip:
    """The VIP: a unicast IPv4 or IPv6 address with prefix length, not its subnet's network or broadcast
    address. Where it must live (the nodes' subnet) is the site plan's rule, which knows the nodes."""
    text = value.strip() if isinstance(value, str) else ""
    example = "e.g. 10.10.102.242/24 or fd00::100/64"
    if not text:
        raise InputError(variable, value, "is required: the VIP with prefix length, %s" % example)
    try:
        interface = ipaddress.ip_interface(text)
    except ValueError:
        raise InputError(variable, value, "is not an IPv4 or IPv6 address with prefix length, %s" % example)
    if "/" not in text:
        raise InputError(variable, value, "needs a prefix length (the subnet the VIP lives in), e.g. %s/%d"
                         % (text, 24 if interface.version == 4 else 64))
    ip, network = interface.ip, interface.network
    if ip.is_loopback or ip.is_multicast or ip.is_unspecified or ip.is_link_local:
        raise InputError(variable, value, "must be a unicast address on the node network (not loopback,"
                                          " multicast, unspecified or link-local)")
    if network.prefixlen < network.max_prefixlen - 1:
        if ip == network.network_address:
            raise InputError(variable, value, "is the network address of %s; pick a host address" % network)
        if ip.version == 4 and ip == network.broadcast_address:
            raise InputError(variable, value, "is the broadcast address of %s; pick a host address" % network)
    return Vip(interface)


def parse_ip(value: object, variable: str, version: Optional[int] = None) -> IPAddress:
    """A plain IP address (a peer, a source address), of the VIP's family when version is given."""
    try:
        address = ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise InputError(variable, value, "must be an IP address, e.g. 10.10.102.11 or fd00::11")
    if version is not None and address.version != version:
        raise InputError(variable, value, "must be IPv%d like the VIP (VRRP runs in one address family)" % version)
    return address


# keepalived's defaults when no group of the VIP's family is configured (RFC 3768 / 5798).
DEFAULT_MULTICAST_GROUPS = {4: "224.0.0.18", 6: "ff02::12"}


def parse_multicast_group(value: object, version: int, variable: str = "keepalived_multicast_group",
                          other_family: str = "default") -> str:
    """The VRRP multicast group for the VIP's family. A group of the other family (the IPv4 default
    left set for an IPv6 VIP) is replaced by the default of the VIP's family, as keepalived does, or
    refused with other_family="error" (the keepalived.conf model, where None is keepalived's default).
    An inventory value must be an address: the role's argument spec refuses null on ansible-core 2.17."""
    if value is None and other_family == "error":
        return DEFAULT_MULTICAST_GROUPS[version]
    try:
        group = ipaddress.ip_address(str(value).strip())
    except ValueError:
        group = None
    if group is None or not group.is_multicast:
        raise InputError(variable, value, "must be a multicast address, e.g. 224.0.0.18 or ff02::12")
    if group.version != version:
        if other_family == "error":
            raise InputError(variable, value, "must be the same address family as the VIP (IPv%d)" % version)
        return DEFAULT_MULTICAST_GROUPS[version]
    return str(group)


# ------------------------------------------------------------------------------------ VRRP

VRRP_MODES = ("multicast", "unicast")
FAILOVER_MODES = ("fault", "weighted")
VRID_RULE = "VRRP's 8-bit router id, unique on the L2 segment"
AUTH_PASS_MAX = 8  # keepalived uses only the first 8 characters (and warns); we refuse instead
MIN_NODES = 2
# VRRP has no member limit of its own. 16 keeps every plan in range with room to spare (fault mode:
# 250 down to 100 in steps of 10; weighted mode: 100 + weight 16 = 116 at most); beyond that every
# node sends an advert per advert_int to every other (unicast: n*(n-1) packets).
MAX_NODES = 16
PRIORITY_MIN = 1
PRIORITY_MAX = 254
_UNQUOTED = re.compile(r'^[^\s"{}!#]+$')
_WORD = re.compile(r"^[A-Za-z0-9_.-]+$")


def parse_vrid(value: object, variable: str = "cloudcore_vrrp_router_id") -> int:
    if value is None or value == "":
        raise InputError(variable, value, "must be an integer 1..255 (%s)" % VRID_RULE)
    return parse_int(value, variable, 1, 255, VRID_RULE)


def vrrp_version_for(vip: Vip, advert_int: float) -> int:
    """3 for an IPv6 VIP or sub-second adverts, else 2 (VRRPv2 is IPv4-only with whole seconds)."""
    return 3 if vip.version == 6 or not float(advert_int).is_integer() else 2


def parse_advert_int(value: object, vrrp_version: Optional[int], variable: str = "keepalived_advert_int") -> float:
    """Seconds between adverts: whole seconds 1..255 with VRRPv2 (keepalived rounds fractions and its
    config test fails), 0.01..40.95 in 10 ms steps with VRRPv3."""
    number = parse_number(value, variable, 0, meaning="seconds between VRRP adverts")
    if vrrp_version == 2:
        if not number.is_integer():
            raise InputError(variable, value, "VRRPv2 advertises in whole seconds (keepalived rounds %s and its config"
                                              " test fails): use a whole number or VRRPv3" % _fmt(number))
        if not 1 <= number <= 255:
            raise InputError(variable, value, "VRRPv2 adverts must be 1..255 seconds apart")
    elif abs(number * 100 - round(number * 100)) > 1e-6 or not 0.01 <= number <= 40.95:
        raise InputError(variable, value, "VRRPv3 adverts must be 0.01..40.95 seconds apart, in 10 ms steps")
    return number


def parse_auth_pass(value: object, vrrp_version: Optional[int] = None,
                    variable: str = "cloudcore_vrrp_auth_pass") -> Optional[str]:
    """The VRRP PASS secret, or None when unset. Errors name its length, never the value."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InputError(variable, "<hidden>", "must be a string of at most %d characters" % AUTH_PASS_MAX)
    if len(value) > AUTH_PASS_MAX:
        raise InputError(variable, "<%d characters>" % len(value),
                         "must be at most %d characters: keepalived silently uses only the first %d (and its"
                         " config test fails); shorten it" % (AUTH_PASS_MAX, AUTH_PASS_MAX))
    if not _UNQUOTED.match(value):
        raise InputError(variable, "<hidden>", "must not contain spaces, quotes, braces, '!' or '#'")
    if vrrp_version == 3:
        raise InputError(variable, "<hidden>",
                         "VRRPv3 (RFC 5798) has no authentication and keepalived rejects it; VRRPv3 is used for an"
                         " IPv6 VIP or a sub-second advert interval: remove the secret, or use an IPv4 VIP with"
                         " whole-second adverts (VRRPv2)")
    return value


def parse_hosts(value: object, variable: str = "groups['cloudcore']") -> List[str]:
    """The CloudCore hosts in preference order: 2..16 distinct names."""
    names = parse_host_list(value, variable)
    if not MIN_NODES <= len(names) <= MAX_NODES:
        raise InputError(variable, names, "has %d node(s); VRRP high availability needs %d..%d: put %d..%d hosts"
                         " in the inventory group cloudcore" % (len(names), MIN_NODES, MAX_NODES, MIN_NODES, MAX_NODES))
    return names


HOST_STATES = ("present", "absent")


def parse_host_list(value: object, variable: str = "groups['cloudcore']") -> List[str]:
    """The inventory group as a list of distinct host names (any length: members and leaving hosts)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise InputError(variable, value, "must be a list of host names (the inventory group cloudcore)")
    names = []
    for name in value:
        if not isinstance(name, str) or not name.strip():
            raise InputError(variable, list(value), "host name %r is not a non-empty string" % (name,))
        names.append(name)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(variable, names, "lists %s more than once; each node needs its own name"
                         % ", ".join(duplicates))
    return names


def parse_members(group: Sequence[str], states: Mapping[str, str]) -> List[str]:
    """The hosts that stay CloudCore nodes (cloudcore_state present), in group order: 2..16 of them.

    A host marked cloudcore_state: absent leaves the site; the rest must still make an HA pair."""
    members = [name for name in group if states.get(name, "present") == "present"]
    leaving = [name for name in group if name not in members]
    if leaving and len(members) < MIN_NODES:
        raise InputError("cloudcore_state", "absent", "on %s would leave %d CloudCore node(s) (%s); VRRP high"
                         " availability needs at least %d: add a node first, or use the reset playbook to remove"
                         " the site" % (", ".join(leaving), len(members), ", ".join(members) or "none", MIN_NODES))
    return parse_hosts(members)


def parse_priorities(value: object, hosts: Sequence[str],
                     variable: str = "keepalived_priorities") -> Tuple[List[str], Optional[Dict[str, int]]]:
    """(hosts in preference order, pinned base priorities or None).

    A list is a preference order of exactly the CloudCore hosts; a mapping pins each host's base priority
    (1..254; 255 is the address owner, which a health check cannot move) and its order is by priority."""
    if value is None:
        return list(hosts), None
    if isinstance(value, dict):
        names = [str(name) for name in value]
        pinned = {}  # type: Dict[str, int]
        for name, priority in value.items():
            pinned[str(name)] = parse_int(priority, "%s[%s]" % (variable, name), PRIORITY_MIN, PRIORITY_MAX,
                                          "a base priority; 255 is the address owner, which a health check"
                                          " cannot move")
        _same_hosts(names, hosts, value, variable)
        return sorted(names, key=lambda n: -pinned[n]), pinned
    if isinstance(value, (list, tuple)) and not isinstance(value, (str, bytes)):
        _same_hosts([str(name) for name in value], hosts, value, variable)
        return parse_hosts(value, variable), None
    raise InputError(variable, value, "must be a list of the cloudcore hosts in preference order, or a mapping"
                                      " host -> base priority")


def _same_hosts(names: Sequence[str], hosts: Sequence[str], value: object, variable: str) -> None:
    if sorted(names) != sorted(hosts):
        missing = [h for h in hosts if h not in names]
        extra = [n for n in names if n not in hosts]
        raise InputError(variable, value, "must name exactly the hosts of the cloudcore group (%s)%s%s"
                         % (", ".join(hosts), "; missing: %s" % ", ".join(missing) if missing else "",
                            "; not in the group: %s" % ", ".join(extra) if extra else ""))


def parse_word(value: object, variable: str, what: str = "a word of letters, digits, _ . -") -> str:
    if not isinstance(value, str) or not _WORD.match(value):
        raise InputError(variable, value, "must be %s" % what)
    return value


def parse_token(value: object, variable: str) -> str:
    """A word for keepalived.conf: non-empty, without spaces, quotes, braces, '!' or '#'."""
    if not isinstance(value, str) or not _UNQUOTED.match(value):
        raise InputError(variable, value, "must be a non-empty word without spaces, quotes, braces, '!' or '#'")
    return value


def parse_interface(value: object, variable: str = "cloudcore_vrrp_interface") -> str:
    """A Linux interface name: 1..15 characters (IFNAMSIZ) of letters, digits, _ . -"""
    if not isinstance(value, str) or not _WORD.match(value) or len(value) > 15:
        raise InputError(variable, value, "must be an interface name of 1..15 characters (letters, digits,"
                                          " _ . -), e.g. eth0")
    return value


def parse_user(value: object, variable: str) -> str:
    if not isinstance(value, str) or not re.match(r"^[a-z_][a-z0-9_.-]{0,31}$", value):
        raise InputError(variable, value, "must be a system user name (lowercase letters, digits, _ . -,"
                                          " at most 32 characters)")
    return value


def parse_path(value: object, variable: str) -> str:
    """An absolute path without whitespace or quotes (it goes into keepalived.conf and unit files)."""
    if not isinstance(value, str) or not value.startswith("/") or not _UNQUOTED.match(value):
        raise InputError(variable, value, "must be an absolute path without spaces, quotes, braces, '!' or '#'")
    return value


def parse_command(value: object, variable: str) -> str:
    """A command for keepalived (absolute path plus arguments): keepalived searches PATH for a relative
    one and warns, and its quoting cannot carry double quotes or newlines."""
    text = value.strip() if isinstance(value, str) else ""
    if not text.startswith("/"):
        raise InputError(variable, value, "must start with an absolute path, e.g. /usr/local/sbin/check_cloudcore"
                                          " https://127.0.0.1:10002/ca.crt")
    if '"' in text or "\n" in text:
        raise InputError(variable, value, "must not contain double quotes or newlines")
    return text


def parse_url(value: object, variable: str = "cloudcore_check_url") -> str:
    """An http(s) URL with a host, and without spaces or quotes (it is an argument in keepalived.conf)."""
    match = re.match(r"^(https?)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?(/[^\s\"'{}!#]*)?$",
                     value.strip() if isinstance(value, str) else "")
    if not match:
        raise InputError(variable, value, "must be an http or https URL with a host and no spaces or quotes,"
                                          " e.g. https://127.0.0.1:10002/ca.crt")
    if match.group(3) and not 1 <= int(match.group(3)[1:]) <= 65535:
        raise InputError(variable, value, "has a port outside 1..65535")
    return value.strip()  # type: ignore[union-attr]


_URI_PATH = re.compile(r"^/[A-Za-z0-9._~/%-]*$")


def parse_uri_path(value: object, variable: str) -> str:
    """An absolute URI path (e.g. /ca.crt) of letters, digits and . _ ~ / % -: it is written unquoted into
    haproxy.cfg, where spaces separate words and '#' starts a comment."""
    if not isinstance(value, str) or not _URI_PATH.match(value):
        raise InputError(variable, value, "must be an absolute URI path of letters, digits and . _ ~ / % -,"
                                          " e.g. /ca.crt")
    return value


# ------------------------------------------------------------------------------------ Kubernetes

# Kubernetes label syntax (k8s.io/apimachinery validation: IsQualifiedName, IsValidLabelValue).
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def parse_node_labels(value: object, variable: str = "cloudcore_node_label") -> Dict[str, str]:
    """A non-empty mapping of Kubernetes label keys ([prefix/]name) to string values."""
    if not isinstance(value, dict) or not value:
        raise InputError(variable, value, "must be a non-empty mapping of label key to value, e.g."
                                          " {kubeedge.io/cloudcore-ha: 'true'}")
    labels = {}
    for key, item in value.items():
        where = "%s[%r]" % (variable, key)
        if not isinstance(key, str) or not key:
            raise InputError(where, key, "a label key must be a non-empty string")
        prefix, slash, name = key.rpartition("/")
        if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
            raise InputError(where, key, "a label key's prefix must be a lowercase DNS subdomain of at most 253"
                                         " characters, e.g. kubeedge.io/cloudcore-ha")
        if not _LABEL_NAME.match(name):
            raise InputError(where, key, "a label name must be 1..63 characters of [A-Za-z0-9_.-], starting and"
                                         " ending alphanumeric")
        if not isinstance(item, str):
            raise InputError(where, item, "a label value must be a string: quote it in YAML, e.g. '%s'"
                             % (str(item).lower() if isinstance(item, bool) else item))
        if not _LABEL_VALUE.match(item):
            raise InputError(where, item, "a label value must be at most 63 characters of [A-Za-z0-9_.-],"
                                          " starting and ending alphanumeric (or empty)")
        labels[key] = item
    return labels


def parse_node_name(value: object, variable: str = "cloudcore_node_name") -> str:
    """A Kubernetes node name: a lowercase DNS subdomain of at most 253 characters."""
    if not isinstance(value, str) or len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        raise InputError(variable, value, "must be a Kubernetes node name: lowercase letters, digits, '-' and '.',"
                                          " at most 253 characters, starting and ending alphanumeric")
    return value


_DNS_NAME = re.compile(r"^(\*\.)?([A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*$")


def parse_dns_names(value: object, variable: str) -> List[str]:
    """DNS names for a certificate's SANs: host names (RFC 1123), an optional leading '*.', <= 253
    characters. An IP address is not a DNS name (it belongs in the VIP)."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise InputError(variable, value, "must be a list of DNS names, e.g. [cloudcore.example.com]")
    names = []
    for name in value:
        if not isinstance(name, str) or len(name) > 253 or not _DNS_NAME.match(name):
            raise InputError(variable, name, "is not a DNS name usable as a certificate SAN (labels of letters,"
                                             " digits and '-', separated by dots; an optional leading '*.')")
        try:
            ipaddress.ip_address(name)
        except ValueError:
            pass
        else:
            raise InputError(variable, name, "is an IP address, not a DNS name: IP SANs come from the VIP")
        if name.lower() not in (n.lower() for n in names):
            names.append(name)
    return names


# An image repository without tag or digest (the tag comes from the KubeEdge version), as
# distribution/reference reads it: the first component is a registry only if it has a '.' or ':' or
# is localhost; the path components are lowercase.
_REGISTRY = re.compile(r"^(localhost|[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*)"
                       r"(:\d+)?$")
_PATH_COMPONENT = re.compile(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$")


def parse_image_repository(value: object, variable: str = "cloudcore_image") -> str:
    text = value.strip() if isinstance(value, str) else ""
    parts = text.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        registry, path = parts[0], parts[1:]
    else:
        registry, path = None, parts
    if not text or len(text) > 255 or (registry is not None and not _REGISTRY.match(registry)) \
            or not all(_PATH_COMPONENT.match(part) for part in path):
        raise InputError(variable, value, "must be an image repository without tag or digest, e.g. kubeedge/cloudcore"
                                          " or registry.example.com:5000/kubeedge/cloudcore (the tag is"
                                          " v<cloudcore_version>)")
    return text


_QUANTITY = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+)?$")


def parse_resources(value: object, variable: str = "manifests_resources") -> Dict[str, Dict[str, str]]:
    """A container's requests/limits: {requests|limits: {cpu|memory|ephemeral-storage: quantity}}."""
    if not isinstance(value, dict):
        raise InputError(variable, value, "must be a mapping with requests and/or limits")
    out = {}  # type: Dict[str, Dict[str, str]]
    for section, amounts in value.items():
        if section not in ("requests", "limits") or not isinstance(amounts, dict):
            raise InputError("%s.%s" % (variable, section), amounts,
                             "only requests and limits, each a mapping of resource to quantity, e.g. {cpu: 100m}")
        out[section] = {}
        for resource, quantity in amounts.items():
            where = "%s.%s.%s" % (variable, section, resource)
            if resource not in ("cpu", "memory", "ephemeral-storage"):
                raise InputError(where, resource, "resource must be cpu, memory or ephemeral-storage")
            text = str(quantity).strip() if isinstance(quantity, (str, int, float)) and not isinstance(quantity, bool) \
                else ""
            if not _QUANTITY.match(text):
                raise InputError(where, quantity, "must be a Kubernetes quantity, e.g. 100m, 0.5, 512Mi, 1Gi")
            out[section][resource] = text
    return out


_TOLERATION_KEYS = ("key", "operator", "value", "effect", "tolerationSeconds")


def parse_tolerations(value: object, variable: str = "manifests_tolerations") -> List[Dict[str, Any]]:
    """Pod tolerations: key (a label key), operator Exists|Equal, value, effect, tolerationSeconds."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise InputError(variable, value, "must be a list of tolerations, e.g. [{key: node-role.kubernetes.io/"
                                          "control-plane, operator: Exists, effect: NoSchedule}]")
    out = []
    for index, item in enumerate(value):
        where = "%s[%d]" % (variable, index)
        if not isinstance(item, dict) or set(item) - set(_TOLERATION_KEYS):
            raise InputError(where, item, "a toleration is a mapping of %s" % ", ".join(_TOLERATION_KEYS))
        operator = item.get("operator", "Equal")
        if operator not in ("Exists", "Equal"):
            raise InputError(where, item, "operator must be Exists or Equal")
        if operator == "Exists" and item.get("value"):
            raise InputError(where, item, "operator Exists takes no value")
        if item.get("key"):
            parse_node_labels({item["key"]: str(item.get("value") or "")}, where)
        elif operator != "Exists":
            raise InputError(where, item, "an empty key needs operator Exists (it tolerates every taint)")
        if item.get("effect") not in (None, "", "NoSchedule", "PreferNoSchedule", "NoExecute"):
            raise InputError(where, item, "effect must be NoSchedule, PreferNoSchedule or NoExecute")
        if "tolerationSeconds" in item:
            parse_int(item["tolerationSeconds"], where + ".tolerationSeconds")
            if item.get("effect") != "NoExecute":
                raise InputError(where, item, "tolerationSeconds only applies to effect NoExecute")
        out.append(dict(item))
    return out
