# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The haproxy.cfg model of a CloudCore node in balanced mode, its rules and its renderer.

Balanced mode puts haproxy (TCP mode) on every CloudCore node, bound to CloudCore's PUBLIC ports
(10000 websocket, 10002 https, 10004 tunnel), so edges keep their configuration; CloudCore itself
listens on internal ports (10100, 10102, 10104 by default). keepalived keeps the VIP on a node whose
haproxy works (the monitor endpoint below). One HaproxyConfig is one node's haproxy.cfg: the site
plan fills it, the module haproxy_config takes it as its `config` option (its argument spec is built
from these fields), the renderer writes it.

Pairing. KubeEdge needs one edge's 10000 (websocket) and 10004 (tunnel) connections on the SAME
CloudCore (KubeEdge #3439): both backends `stick on src` in one shared stick table, servers with the
same names and ids everywhere, `balance source` + `hash-type consistent` underneath so that two first
connections racing each other (before any entry exists) still agree, the websocket and tunnel servers
`track` the https servers (one health decision for all three ports) and `on-marked-down
shutdown-sessions` closes an edge's sessions on both ports together when its CloudCore fails, so that
they re-pair together elsewhere. A `peers` section shares the table between the nodes (a VIP move
keeps the pairing) and across reloads.

Not proxied: QUIC (UDP 10001; haproxy's TCP mode is TCP only) stays with the CloudCore of the VIP
holder, and the stream port 10003 is reached by the apiserver hosts directly; both stay CloudCore's.

The rules shared with other inputs (ports, addresses, names, paths, durations) come from
_inputs.py; only haproxy.cfg's own combinations are written here. Plain Python without Ansible
imports. Sections cited as "configuration.txt x.y" are haproxy's doc/configuration.txt (2.6 and 3.0).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import (
    MAX_NODES,
    MIN_NODES,
    IPAddress,
    Problem,
    Problems,
    parse_duration,
    parse_int,
    parse_ip,
    parse_path,
    parse_port,
    parse_uri_path,
    parse_user,
    parse_word,
)

HEADER = "# managed by cloudcore.ha; do not edit (changes are overwritten on the next run)"

# Section names. The stick table lives in a backend of its own, so that both paired backends refer to
# it by name ("stick on src table edge_pairs") and neither owns it.
PEERS_SECTION = "cloudcore_ha"
STICK_TABLE = "edge_pairs"
BACKENDS = {"websocket": "cloudcore_websocket", "https": "cloudcore_https", "tunnel": "cloudcore_tunnel"}
MONITOR = "monitor"

# CloudCore's own idle limit for an edge's websocket (it sends no traffic for longer than the 15 s
# heartbeat of edgecore; CloudCore gives up after 30 s). A haproxy tunnel timeout at or below it would
# cut live sessions before CloudCore does: the daemon, not the balancer, decides when an edge is gone.
CLOUDCORE_KEEPALIVE_SECONDS = 30
SERVER_ID_MAX = 2147483647  # haproxy stores server ids as positive 32-bit integers


@dataclass(frozen=True)
class HaproxyServer:
    """One CloudCore node as a backend server: the same name and id in every backend, on every node."""

    name: str
    id: int
    address: str


@dataclass(frozen=True)
class HaproxyPeer:
    """One haproxy sharing the stick table (a node of the peers section)."""

    name: str
    address: str


@dataclass(frozen=True)
class HaproxyConfig:
    node: str
    cloudcores: List[HaproxyServer]
    peers: List[HaproxyPeer] = field(default_factory=list)  # empty: every CloudCore node runs haproxy
    bind_address: Optional[str] = None  # None (or ""): every address of the cloudcores' family
    websocket_port: int = 10000
    https_port: int = 10002
    tunnel_port: int = 10004
    internal_websocket_port: int = 10100
    internal_https_port: int = 10102
    internal_tunnel_port: int = 10104
    peers_port: int = 10110
    monitor_address: str = "127.0.0.1"
    monitor_port: int = 10111
    monitor_uri: str = "/healthz"
    reserved_ports: List[int] = field(default_factory=lambda: [9091, 9443, 10001, 10003])
    check_path: str = "/ca.crt"
    ca_file: Optional[str] = None
    check_interval: float = 1
    check_timeout: float = 1
    check_fall: int = 2
    check_rise: int = 2
    stick_table_size: int = 100000
    stick_expire: float = 14400
    hard_stop_after: float = 3600
    timeout_connect: float = 5
    timeout_client: float = 60
    timeout_tunnel: float = 3600
    maxconn: Optional[int] = None  # None: haproxy derives it from the file descriptor limit
    stats_socket: str = "/run/haproxy/admin.sock"
    user: Optional[str] = "haproxy"
    group: Optional[str] = "haproxy"
    chroot: Optional[str] = "/var/lib/haproxy"
    log_socket: Optional[str] = "/dev/log"

    def as_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def peer_list(self) -> List[HaproxyPeer]:
        """The peers section: `peers`, or else every CloudCore node (where haproxy runs beside it)."""
        if self.peers:
            return list(self.peers)
        return [HaproxyPeer(server.name, server.address) for server in self.cloudcores
                if isinstance(server, HaproxyServer)]


class HaproxyConfigError(ValueError):
    """One or more fields break a rule; .problems lists them (Problem: variable = field name)."""

    def __init__(self, problems: List[Problem]):
        self.problems = problems
        super().__init__("; ".join(problem.msg for problem in problems))


# ------------------------------------------------------------------------------------ argument spec

# The argument-spec type of each field type (Ansible's names), so the module declares nothing twice.
_SPEC_TYPES = {"str": "str", "int": "int", "float": "float", "bool": "bool",
               "List[str]": "list", "List[int]": "list"}
_NESTED = {"List[HaproxyServer]": HaproxyServer, "List[HaproxyPeer]": HaproxyPeer}
_LIST_ELEMENTS = {"List[str]": "str", "List[int]": "int"}


def _type_name(item: "dataclasses.Field[Any]") -> str:
    text = str(item.type)
    return text[len("Optional["):-1] if text.startswith("Optional[") else text


def _spec_of(cls: type, exclude: Sequence[str] = ()) -> Dict[str, Dict[str, Any]]:
    spec = {}
    for item in dataclasses.fields(cls):
        if item.name in exclude:
            continue
        type_name = _type_name(item)
        option = {}  # type: Dict[str, Any]
        if type_name in _NESTED:
            # a list of mappings: Ansible checks each element against the nested dataclass's fields
            option = {"type": "list", "elements": "dict", "options": _spec_of(_NESTED[type_name])}
        else:
            option = {"type": _SPEC_TYPES[type_name]}
            if type_name in _LIST_ELEMENTS:
                option["elements"] = _LIST_ELEMENTS[type_name]
        if item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:  # type: ignore[misc]
            option["required"] = True
        elif item.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            option["default"] = item.default_factory()  # type: ignore[misc]
        elif item.default is not None:
            option["default"] = item.default
        spec[item.name] = option
    return spec


def option_spec(exclude: Sequence[str] = ()) -> Dict[str, Dict[str, Any]]:
    """An AnsibleModule argument spec for the fields of HaproxyConfig (minus `exclude`); the lists of
    servers and peers are `elements: dict` with their own `options`."""
    return _spec_of(HaproxyConfig, exclude)


def _whole(value: Any) -> Any:
    # keep integral numbers integral, so that "inter 1s" renders from 1.0 the same as from 1
    return int(value) if isinstance(value, float) and value.is_integer() else value


def from_options(options: Dict[str, Any]) -> HaproxyConfig:
    """HaproxyConfig from a mapping of field names (unknown keys are ignored); the servers and peers
    may be mappings (as the module and the site plan's dict give them) or the dataclasses."""
    names = {item.name for item in dataclasses.fields(HaproxyConfig)}
    values = {key: _whole(value) for key, value in options.items() if key in names}
    for key, cls in (("cloudcores", HaproxyServer), ("peers", HaproxyPeer)):
        if isinstance(values.get(key), (list, tuple)):
            values[key] = [_element(cls, item) for item in values[key]]
    return HaproxyConfig(**values)


def _element(cls: type, item: Any) -> Any:
    """A server or peer from a mapping; anything else is kept as it is, for config_problems to name."""
    if not isinstance(item, dict):
        return item
    fields = {f.name for f in dataclasses.fields(cls)}
    if set(fields) - set(item):
        return item  # incomplete: config_problems names what is missing
    return cls(**{key: value for key, value in item.items() if key in fields})


# ------------------------------------------------------------------------------------ rules

def config_problems(config: HaproxyConfig) -> List[Problem]:
    """Every rule the config breaks (variable = the field name, e.g. cloudcores[1].address)."""
    found = Problems()
    family = _servers(found, config.cloudcores)
    peers = _peers(found, config, family)
    found.parse(parse_word, config.node, "node", "this node's name: letters, digits, _ . - (the local peer name)")
    if peers is not None and isinstance(config.node, str) and config.node not in [peer.name for peer in peers]:
        found.add(Problem("node", config.node, "must be one of the peers (%s): haproxy drops a peers section without"
                                               " its local peer (configuration.txt 3.5), and with it the shared"
                                               " stick table" % ", ".join(peer.name for peer in peers)))
    _addresses(found, config, family)
    _ports(found, config)
    _timing(found, config)
    found.parse(parse_uri_path, config.check_path, "check_path")
    found.parse(parse_uri_path, config.monitor_uri, "monitor_uri")
    found.parse(parse_int, config.check_fall, "check_fall", 1, 1000, "failed checks before a CloudCore is down")
    found.parse(parse_int, config.check_rise, "check_rise", 1, 1000, "passed checks before it is up again")
    found.parse(parse_int, config.stick_table_size, "stick_table_size", 1, 2 ** 30,
                "entries, one per edge source address (about 50 bytes each)")
    if config.maxconn is not None:
        found.parse(parse_int, config.maxconn, "maxconn", 1, 10000000,
                    "concurrent connections; every edge holds two (websocket and tunnel)")
    # an optional field is unset when None or empty: a module user writes "" (ansible-core 2.17 refuses
    # null for an option with a default, later versions turn it into "")
    for name in ("ca_file", "stats_socket", "chroot", "log_socket"):
        value = getattr(config, name)
        if value not in (None, "") or name == "stats_socket":
            found.parse(parse_path, value, name)
    for name in ("user", "group"):
        if getattr(config, name) not in (None, ""):
            found.parse(parse_user, getattr(config, name), name)
    return found.items


def _servers(found: Problems, servers: object) -> Optional[int]:
    """The CloudCore servers: 2..16, each a name, an id and an address, all unique, one family.
    Returns the address family, or None when it cannot be told."""
    if not isinstance(servers, (list, tuple)) or not MIN_NODES <= len(servers) <= MAX_NODES:
        found.add(Problem("cloudcores", servers, "must list %d..%d CloudCore nodes (name, id, address): a balancer"
                                                 " needs somewhere to fail over to" % (MIN_NODES, MAX_NODES)))
        return None
    addresses = []  # type: List[Tuple[str, IPAddress]]
    for index, server in enumerate(servers):
        where = "cloudcores[%d]" % index
        if not isinstance(server, HaproxyServer):
            found.add(Problem(where, server, "must be a mapping with name, id and address%s" % _missing(server, HaproxyServer)))
            continue
        found.parse(parse_word, server.name, where + ".name", "a server name: letters, digits, _ . -")
        found.parse(parse_int, server.id, where + ".id", 1, SERVER_ID_MAX,
                    "the server's id, the same on every node: the shared stick table stores it")
        address = found.parse(parse_ip, server.address, where + ".address")
        if address is not None:
            addresses.append((where + ".address", address))
    valid = [s for s in servers if isinstance(s, HaproxyServer)]
    for what, values in (("name", [str(s.name) for s in valid]), ("id", [str(s.id) for s in valid]),
                         ("address", [str(address) for _where, address in addresses])):
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            found.add(Problem("cloudcores", [dataclasses.asdict(s) for s in valid],
                              "lists %s %s more than once: every CloudCore needs its own (the stick table and the"
                              " peers identify servers by name and id)" % (what, ", ".join(twice))))
    return _one_family(found, addresses)


def _missing(item: object, cls: type) -> str:
    if not isinstance(item, dict):
        return ""
    keys = [f.name for f in dataclasses.fields(cls) if f.name not in item]
    return " (missing: %s)" % ", ".join(keys) if keys else ""


def _one_family(found: Problems, addresses: Sequence[Tuple[str, IPAddress]]) -> Optional[int]:
    if not addresses:
        return None
    family = addresses[0][1].version
    for where, address in addresses[1:]:
        _same_family(found, where, address, family, addresses[0][0])
    return family


def _same_family(found: Problems, where: str, address: Optional[IPAddress], family: Optional[int],
                 like: str = "the cloudcores") -> None:
    if address is not None and family is not None and address.version != family:
        found.add(Problem(where, str(address), "must be IPv%d like %s (one address family: the stick table keys"
                                               " and the binds follow it)" % (family, like)))


def _peers(found: Problems, config: HaproxyConfig, family: Optional[int]) -> Optional[List[HaproxyPeer]]:
    """The peers section (explicit `peers`, or the CloudCore nodes): unique names and addresses."""
    if not isinstance(config.peers, (list, tuple)):
        found.add(Problem("peers", config.peers, "must be a list of peers (name, address), or empty for the"
                                                 " CloudCore nodes"))
        return None
    if not config.peers:
        return config.peer_list if family is not None else None
    if len(config.peers) > MAX_NODES:
        found.add(Problem("peers", len(config.peers), "must list at most %d peers" % MAX_NODES))
    peers = []
    for index, peer in enumerate(config.peers):
        where = "peers[%d]" % index
        if not isinstance(peer, HaproxyPeer):
            found.add(Problem(where, peer, "must be a mapping with name and address%s" % _missing(peer, HaproxyPeer)))
            continue
        found.parse(parse_word, peer.name, where + ".name", "a peer name: letters, digits, _ . -")
        _same_family(found, where + ".address", found.parse(parse_ip, peer.address, where + ".address"), family)
        peers.append(peer)
    for what in ("name", "address"):
        values = [str(getattr(p, what)) for p in peers]
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            found.add(Problem("peers", [dataclasses.asdict(p) for p in peers],
                              "lists %s %s more than once: every haproxy needs its own" % (what, ", ".join(twice))))
    return peers


def _addresses(found: Problems, config: HaproxyConfig, family: Optional[int]) -> None:
    if config.bind_address not in (None, ""):
        _same_family(found, "bind_address", found.parse(parse_ip, config.bind_address, "bind_address"), family)
    monitor = found.parse(parse_ip, config.monitor_address, "monitor_address")
    if monitor is not None and not monitor.is_loopback:
        found.add(Problem("monitor_address", config.monitor_address,
                          "must be a loopback address (e.g. 127.0.0.1): the monitor is for this node's keepalived"
                          " check, not for the network"))


PORT_FIELDS = ("websocket_port", "https_port", "tunnel_port", "internal_websocket_port", "internal_https_port",
               "internal_tunnel_port", "peers_port", "monitor_port")


def _ports(found: Problems, config: HaproxyConfig) -> None:
    """Every port that binds on the node (haproxy's public, peers and monitor ports, CloudCore's internal
    ones) is 1..65535 and used once, and none is one of the reserved ports (CloudCore's others)."""
    ports = {}  # type: Dict[str, int]
    for name in PORT_FIELDS:
        port = found.parse(parse_port, getattr(config, name), name)
        if port is not None:
            ports[name] = port
    reserved = config.reserved_ports if isinstance(config.reserved_ports, (list, tuple)) else None
    if reserved is None:
        found.add(Problem("reserved_ports", config.reserved_ports, "must be a list of ports"))
    reserved_ports = [found.parse(parse_port, port, "reserved_ports") for port in reserved or []]
    by_port = {}  # type: Dict[int, List[str]]
    for name, port in ports.items():
        by_port.setdefault(port, []).append(name)
    for port, names in sorted(by_port.items()):
        if len(names) > 1:
            for name in names[1:]:
                found.add(Problem(name, port, "is also %s: every port that binds on the node must be distinct"
                                              % names[0]))
        if port in reserved_ports:
            for name in names:
                found.add(Problem(name, port, "is a reserved port (reserved_ports: CloudCore's other ports, e.g."
                                              " QUIC 10001, stream 10003, metrics 9091, router 9443)"))


def _timing(found: Problems, config: HaproxyConfig) -> None:
    found.parse(parse_duration, config.check_interval, "check_interval", 0, "seconds between two health checks")
    found.parse(parse_duration, config.check_timeout, "check_timeout", 0, "seconds a health check may take")
    found.parse(parse_duration, config.timeout_connect, "timeout_connect", 0, "seconds to connect to a CloudCore")
    found.parse(parse_duration, config.timeout_client, "timeout_client", 0,
                "idle seconds before a connection is a tunnel (and for the https port)")
    tunnel = found.parse(parse_duration, config.timeout_tunnel, "timeout_tunnel", 0,
                         "idle seconds of an established websocket or tunnel session")
    if tunnel is not None and tunnel <= CLOUDCORE_KEEPALIVE_SECONDS:
        found.add(Problem("timeout_tunnel", config.timeout_tunnel,
                          "must exceed %d s, CloudCore's own keepalive timeout (edges send a heartbeat every 15 s):"
                          " a shorter one cuts live sessions" % CLOUDCORE_KEEPALIVE_SECONDS))
    hard_stop = found.parse(parse_duration, config.hard_stop_after, "hard_stop_after", 0,
                            "seconds an old worker keeps its sessions after a reload")
    expire = found.parse(parse_duration, config.stick_expire, "stick_expire", 0,
                         "seconds a pairing entry outlives its edge's last connection")
    if hard_stop is not None and expire is not None and expire < hard_stop:
        found.add(Problem("stick_expire", config.stick_expire,
                          "must be at least hard_stop_after (%s s): after a reload the new worker only has the"
                          " entries the old one taught it, and no live session there keeps them; one that expired"
                          " while the old worker still holds the edge's other connection would pair the next one"
                          " by hash alone" % _plain(hard_stop)))


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


# ------------------------------------------------------------------------------------ rendering

def family_of(config: HaproxyConfig) -> int:
    """The address family of the CloudCore nodes (4 or 6)."""
    return ipaddress.ip_address(config.cloudcores[0].address).version


def _hostport(address: str, port: int) -> str:
    ip = ipaddress.ip_address(address)
    return "[%s]:%d" % (ip, port) if ip.version == 6 else "%s:%d" % (ip, port)


def bind_spec(config: HaproxyConfig, port: int) -> str:
    """The bind argument of a public port: the bind address, or every address of the family. `::` takes
    IPv4 too only with v4v6 (configuration.txt 5.1), whatever net.ipv6.bindv6only says."""
    address = config.bind_address or ("::" if family_of(config) == 6 else "0.0.0.0")
    spec = _hostport(address, port)
    return spec + " v4v6" if ipaddress.ip_address(address) == ipaddress.ip_address("::") else spec


def fmt_duration(seconds: float) -> str:
    """A haproxy time (configuration.txt 2.5): the largest unit that shows the value exactly."""
    millis = int(round(float(seconds) * 1000))
    if millis % 1000:
        return "%dms" % millis
    whole = millis // 1000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole % size == 0:
            return "%d%s" % (whole // size, unit)
    return "%ds" % whole


def render_haproxy_cfg(config: HaproxyConfig) -> str:
    """haproxy.cfg text for one node; raises HaproxyConfigError on bad input."""
    problems = config_problems(config)
    if problems:
        raise HaproxyConfigError(problems)
    out = [HEADER,
           "# Balanced mode: haproxy holds CloudCore's public ports, CloudCore listens on internal ones.",
           "# QUIC (UDP 10001) is not proxied (haproxy's TCP mode is TCP only): it stays with the VIP holder's",
           "# CloudCore.", ""]
    out += _global(config) + [""] + _defaults(config) + [""] + _peers_section(config) + [""] + _table(config) + [""]
    out += _frontends(config) + _backends(config) + _monitor(config)
    return "\n".join(out).rstrip("\n") + "\n"


def _global(config: HaproxyConfig) -> List[str]:
    out = ["global"]
    if config.log_socket:
        out.append("    log %s local0" % config.log_socket)
    if config.chroot:
        out.append("    chroot %s" % config.chroot)
    if config.user:
        out.append("    user %s" % config.user)
    if config.group:
        out.append("    group %s" % config.group)
    out += [
        "    # a reload starts a new worker and leaves the old one its established sessions (configuration.txt 3.1)",
        "    master-worker",
        "    # an old worker ends its sessions after this, so reloads do not pile up workers",
        "    hard-stop-after %s" % fmt_duration(config.hard_stop_after),
        "    # the local peer's name in the peers section; without it haproxy would use the host name",
        "    localpeer %s" % config.node,
    ]
    if config.maxconn is not None:
        # haproxy needs about two descriptors per connection and refuses to start beyond its hard
        # limit (ulimit -Hn); its config test cannot tell. Unset, it takes half of that limit.
        out.append("    maxconn %d" % int(config.maxconn))
    out += [
        "    # expose-fd listeners: a reload takes over the listening sockets, no connection is refused",
        "    stats socket %s mode 660 level admin expose-fd listeners" % config.stats_socket,
        "    stats timeout 30s",
    ]
    return out


def _defaults(config: HaproxyConfig) -> List[str]:
    logging = ["    log global", "    option tcplog", "    option dontlognull"] if config.log_socket else []
    return ["defaults", "    mode tcp"] + logging + [
        "    timeout connect %s" % fmt_duration(config.timeout_connect),
        "    timeout client %s" % fmt_duration(config.timeout_client),
        "    timeout server %s" % fmt_duration(config.timeout_client),
        "    # an established websocket or tunnel is a tunnel (configuration.txt 4.2 timeout tunnel): edges send a",
        "    # heartbeat every 15 s and CloudCore drops an edge idle for 30 s, so this only reaps dead sessions",
        "    timeout tunnel %s" % fmt_duration(config.timeout_tunnel),
        "    timeout client-fin 30s",
        "    timeout server-fin 30s",
        "    timeout check %s" % fmt_duration(config.check_timeout),
    ]


def _peers_section(config: HaproxyConfig) -> List[str]:
    out = ["# every node's haproxy: the pairing table is shared between them (a VIP move keeps it) and handed",
           "# from the old worker to the new one on a reload (configuration.txt 3.5)",
           "peers %s" % PEERS_SECTION]
    out += ["    peer %s %s" % (peer.name, _hostport(peer.address, int(config.peers_port))) for peer in config.peer_list]
    return out


def _table(config: HaproxyConfig) -> List[str]:
    key = "ip" if family_of(config) == 4 else "ipv6"  # a type ip table stores IPv4 only
    return ["# edge source address -> CloudCore server id, shared by the websocket and tunnel backends",
            "backend %s" % STICK_TABLE,
            "    stick-table type %s size %d expire %s peers %s"
            % (key, int(config.stick_table_size), fmt_duration(config.stick_expire), PEERS_SECTION)]


def _frontends(config: HaproxyConfig) -> List[str]:
    out = []
    for kind, port in (("websocket", config.websocket_port), ("https", config.https_port),
                       ("tunnel", config.tunnel_port)):
        out += ["frontend %s" % kind,
                "    bind %s" % bind_spec(config, int(port)),
                "    default_backend %s" % BACKENDS[kind], ""]
    return out


def _backends(config: HaproxyConfig) -> List[str]:
    return _https_backend(config) + [""] + _paired_backend(config, "websocket", config.internal_websocket_port) + [""] \
        + _paired_backend(config, "tunnel", config.internal_tunnel_port) + [""]


def _https_backend(config: HaproxyConfig) -> List[str]:
    if config.ca_file:
        # no SNI and no verifyhost: the chain is verified, the names are not (configuration.txt 5.2 verify):
        # CloudCore's certificate names the VIP, not the node address haproxy connects to
        verify = "verify required ca-file %s" % config.ca_file
    else:
        verify = "verify none"
    out = ["# the health decision for all three ports: GET %s over TLS on CloudCore's https port" % config.check_path,
           "backend %s" % BACKENDS["https"],
           "    balance roundrobin",
           "    # plain requests: a connection that fails may be retried on another CloudCore",
           "    option redispatch",
           "    option httpchk GET %s" % config.check_path,
           "    http-check expect status 200",
           "    default-server check check-ssl %s inter %s fall %d rise %d on-marked-down shutdown-sessions"
           % (verify, fmt_duration(config.check_interval), int(config.check_fall), int(config.check_rise))]
    out += ["    server %s %s id %d" % (server.name, _hostport(server.address, int(config.internal_https_port)),
                                        int(server.id)) for server in config.cloudcores]
    return out


def _paired_backend(config: HaproxyConfig, kind: str, port: int) -> List[str]:
    if kind == "websocket":
        why = ["    # the same hash on both ports, before any stick entry exists (two first connections racing);",
               "    # consistent: a server going down moves only its own edges (configuration.txt 4.2 hash-type)",
               "    balance source",
               "    hash-type consistent",
               "    # a tracked entry does not expire while one of its edge's sessions lives and holds it",
               "    tcp-request content track-sc0 src table %s" % STICK_TABLE,
               "    # the entry written by whichever port connected first sends the other port to the same CloudCore",
               "    stick on src table %s" % STICK_TABLE,
               "    # no option redispatch here: a retry elsewhere would split the edge's two connections.",
               "    # One health decision (the https check); a CloudCore marked down loses its sessions on both",
               "    # ports at once, so that the edge's reconnects pair again on another one",
               "    default-server on-marked-down shutdown-sessions"]
    else:
        why = ["    # paired with %s: the same table, hash, servers, ids and health" % BACKENDS["websocket"],
               "    balance source",
               "    hash-type consistent",
               "    tcp-request content track-sc0 src table %s" % STICK_TABLE,
               "    stick on src table %s" % STICK_TABLE,
               "    default-server on-marked-down shutdown-sessions"]
    out = ["backend %s" % BACKENDS[kind]] + why
    for server in config.cloudcores:
        address = _hostport(server.address, int(port))
        tracked = "%s/%s" % (BACKENDS["https"], server.name)
        out.append("    server %s %s id %d track %s" % (server.name, address, int(server.id), tracked))
    return out


def _monitor(config: HaproxyConfig) -> List[str]:
    return ["# keepalived's check: 200 while at least one CloudCore is healthy, 503 when none is",
            "frontend %s" % MONITOR,
            "    mode http",
            "    bind %s" % _hostport(config.monitor_address, int(config.monitor_port)),
            "    monitor-uri %s" % config.monitor_uri,
            "    monitor fail if { nbsrv(%s) lt 1 }" % BACKENDS["https"]]


def bind_ports(config: HaproxyConfig) -> List[Tuple[str, str, int]]:
    """What haproxy itself binds: (purpose, address, port), the address `0.0.0.0` or `::` for every
    address; for the bind check before a start or reload. The internal ports are CloudCore's."""
    wildcard = "::" if family_of(config) == 6 else "0.0.0.0"
    public = config.bind_address or wildcard
    local = next((peer.address for peer in config.peer_list if peer.name == config.node), None)
    out = [("websocket", public, int(config.websocket_port)), ("https", public, int(config.https_port)),
           ("tunnel", public, int(config.tunnel_port))]
    if local is not None:
        out.append(("peers", local, int(config.peers_port)))
    out.append(("monitor", config.monitor_address, int(config.monitor_port)))
    return out


# The fields every node's haproxy.cfg must agree on: the servers (the stick table stores their ids
# and names, and the consistent hash is built from the ids), the peers and their port (every node
# connects to every other), and the table and health settings (peers only sync a table of the same
# name and type; one node marking a CloudCore down while another keeps it would split edges).
SHARED_FIELDS = ("cloudcores", "peers", "peers_port", "stick_table_size", "stick_expire",
                 "internal_websocket_port", "internal_https_port", "internal_tunnel_port",
                 "check_path", "check_interval", "check_timeout", "check_fall", "check_rise")


def nodes_problems(configs: Dict[str, HaproxyConfig]) -> List[Problem]:
    """What breaks between the nodes' configurations (host name -> its HaproxyConfig), beyond each one's
    own rules: every node is a peer under its own name, and the shared fields are the same everywhere."""
    found = Problems()
    if not configs:
        return found.items
    first_host = sorted(configs)[0]
    first = configs[first_host]
    names = {}  # type: Dict[str, str]
    for host, config in sorted(configs.items()):
        if config.node in names:
            found.add(Problem("node", config.node, "is the node name of hosts %s and %s: every haproxy needs its own"
                                                   " local peer name" % (names[config.node], host)))
        names[config.node] = host
        for name in SHARED_FIELDS:
            if getattr(config, name) != getattr(first, name):
                found.add(Problem(name, _shown(getattr(config, name)),
                                  "on host %s differs from host %s (%r): every node's haproxy.cfg must agree on it"
                                  % (host, first_host, _shown(getattr(first, name)))))
    peers = [peer.name for peer in first.peer_list]
    missing = [peer for peer in peers if peer not in names]
    if len(configs) > 1 and missing:
        found.add(Problem("peers", peers, "lists %s, which no host's haproxy.cfg is: a peer nobody runs keeps"
                                          " the others reconnecting" % ", ".join(missing)))
    return found.items


def _shown(value: Any) -> Any:
    if isinstance(value, list):
        return [dataclasses.asdict(item) if dataclasses.is_dataclass(item) else item for item in value]
    return value
