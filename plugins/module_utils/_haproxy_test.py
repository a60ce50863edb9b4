# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""haproxy's own config test on a rendered haproxy.cfg, and the bind check haproxy's test cannot do.

`haproxy -c` parses and checks the whole configuration (servers, CA files, users, ACLs) but stops
before binding: a port another process holds passes it, and the daemon fails later, at start, or at a
reload, where master-worker mode keeps the old worker and `systemctl reload` still exits 0. So the
bind check is a second, separate function: it reads what `ss -Hltnp` prints and tells which of
haproxy's bind ports are taken by a process that is not haproxy (before the first start, and in
preflight), and which are not bound by haproxy at all (after a start or reload).

The config test runs haproxy through a command runner the caller passes (the module passes
AnsibleModule.run_command, tests pass subprocess), like _keepalived_test.py; the bind check is pure.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

from ansible_collections.cloudcore.ha.plugins.module_utils._haproxy_conf import HaproxyConfig, bind_ports

# Runs a command and returns (exit code, combined output).
CommandRunner = Callable[[List[str]], Tuple[int, str]]

# What the bind check reads: listening TCP sockets, no header, numeric, with the owning processes
# (the process column needs root). The role runs exactly this.
LISTENERS_COMMAND = ["ss", "-Hltnp"]


@dataclass
class ConfigTestResult:
    ok: bool
    returncode: int
    output: str
    warnings: List[str] = field(default_factory=list)


def _excerpt(text: str, limit: int = 40) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-limit:])


def haproxy_config_test(text: str, run: CommandRunner, haproxy: str = "haproxy") -> ConfigTestResult:
    """Run haproxy's config test on text; returns ok, the exit code, the output and its warnings.

    `-dW` (zero-warning mode, management.txt 3) turns every warning into a failure: haproxy only
    warns about some configurations that do not do what they say, e.g. it drops a peers section
    whose local peer is missing ("Removing incomplete section"), and the shared stick table with it.
    The test needs what the daemon reads at start: the CA file, the user and group."""
    with tempfile.TemporaryDirectory(prefix="cloudcore-ha-hc-") as tmpdir:
        path = os.path.join(tmpdir, "haproxy.cfg")
        with open(path, "w") as handle:
            handle.write(text)
        rc, out = run([haproxy, "-dW", "-c", "-f", path])
    # the temporary path means nothing to the reader: say which file it stands for
    out = out.replace(path, "haproxy.cfg")
    warnings = [line.strip() for line in out.splitlines() if "[WARNING]" in line]
    return ConfigTestResult(rc == 0, rc, _excerpt(out), warnings)


def version_line(output: str) -> str:
    """The first line of `haproxy -v`, e.g. "HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/"."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[0] if lines else ""


# ------------------------------------------------------------------------------------ the bind check

@dataclass(frozen=True)
class Listener:
    """One listening TCP socket as ss shows it: its address (None = `*`, every address), its port and
    the names and pids of the processes that hold it (empty when ss could not tell: not root)."""

    address: Optional[str]
    port: int
    processes: Tuple[Tuple[str, int], ...] = ()

    @property
    def text(self) -> str:
        host = "*" if self.address is None else ("[%s]" % self.address if ":" in self.address else self.address)
        return "%s:%d" % (host, self.port)

    @property
    def owners(self) -> str:
        if not self.processes:
            return "a process ss could not name (run it as root)"
        return ", ".join("%s (pid %d)" % (name, pid) for name, pid in self.processes)


@dataclass(frozen=True)
class BindConflict:
    """One of haproxy's bind ports held by another process."""

    purpose: str
    address: str
    port: int
    listener: Listener

    @property
    def msg(self) -> str:
        return ("%s port %d (haproxy binds %s) is taken by %s listening on %s"
                % (self.purpose, self.port, self.address, self.listener.owners, self.listener.text))


_USERS = re.compile(r'\("([^"]*)",pid=(\d+)')


def parse_listeners(text: str) -> List[Listener]:
    """The listening sockets in the output of `ss -Hltnp` (a header line and other states are skipped)."""
    out = []
    for line in text.splitlines():
        words = line.split()
        # local and peer address are the two words before the process column: "... 0.0.0.0:10000 0.0.0.0:* users:(...)"
        index = next((i for i in range(len(words) - 1) if words[i + 1].endswith(":*") and ":" in words[i]), None)
        if index is None:
            continue
        local = _split_hostport(words[index])
        if local is None:
            continue
        processes = tuple((name, int(pid)) for name, pid in _USERS.findall(" ".join(words[index + 2:])))
        out.append(Listener(local[0], local[1], processes))
    return out


def _split_hostport(text: str) -> Optional[Tuple[Optional[str], int]]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return None
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    host = host.split("%", 1)[0]  # 127.0.0.53%lo: the interface a socket is bound to
    if host == "*":
        return None, int(port)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return str(_unmapped(address)), int(port)


def _unmapped(address: "ipaddress.IPv4Address | ipaddress.IPv6Address") -> "ipaddress.IPv4Address | ipaddress.IPv6Address":
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped if mapped is not None else address


def overlaps(ours: str, theirs: Optional[str]) -> bool:
    """Whether a bind on `ours` collides with a listener on `theirs` (same port assumed). ss shows a
    dual-stack `::` socket as `*` (theirs None: every address) and a v6-only one as `[::]`; haproxy
    binds our `::` with v4v6, so it collides with listeners of both families."""
    if theirs is None:
        return True
    mine, other = _unmapped(ipaddress.ip_address(ours)), _unmapped(ipaddress.ip_address(theirs))
    if mine.is_unspecified:
        return mine.version == 6 or other.version == 4
    if other.is_unspecified:
        return other.version == mine.version
    return mine == other


def bind_conflicts(listeners_text: str, config: HaproxyConfig, allowed: Sequence[str] = ("haproxy",)) -> List[BindConflict]:
    """Which of haproxy's bind ports (public, peers, monitor) are taken by a process not in `allowed`.

    Run it on `ss -Hltnp` before the first start, where CloudCore may still hold the public ports
    (balanced mode moves it to the internal ones first), and in preflight. haproxy's own listeners
    are allowed: Linux lets haproxy's SO_REUSEPORT sockets share a port with each other, a reload
    does, and nobody else can. A socket whose owner ss cannot name counts as a conflict."""
    conflicts = []
    listeners = parse_listeners(listeners_text)
    for purpose, address, port in bind_ports(config):
        for listener in listeners:
            if listener.port != port or not overlaps(address, listener.address):
                continue
            names = [name for name, _pid in listener.processes]
            if names and all(name in allowed for name in names):
                continue
            conflicts.append(BindConflict(purpose, address, port, listener))
    return conflicts


def unbound_ports(listeners_text: str, config: HaproxyConfig) -> List[Tuple[str, str, int]]:
    """haproxy's bind ports (purpose, address, port) where no haproxy listens: after a start or a
    reload, a port the new worker could not bind (haproxy -c cannot tell, and a reload that fails to
    bind keeps the old worker without the new port while `systemctl reload` exits 0). Needs the
    process column (root)."""
    listeners = [listener for listener in parse_listeners(listeners_text)
                 if any(name == "haproxy" for name, _pid in listener.processes)]
    missing = []
    for purpose, address, port in bind_ports(config):
        if not any(listener.port == port and _same_bind(address, listener.address) for listener in listeners):
            missing.append((purpose, address, port))
    return missing


def bound_ports(listeners_text: str, config: HaproxyConfig) -> List[Tuple[str, str, int]]:
    """haproxy's bind ports (purpose, address, port) where a haproxy listens: none for a haproxy that
    runs without serving (the package's own start on its default configuration, or a start or reload
    that could not bind), which the balancer role then restarts rather than reloads."""
    missing = set(unbound_ports(listeners_text, config))
    return [item for item in bind_ports(config) if item not in missing]


def _same_bind(ours: str, theirs: Optional[str]) -> bool:
    if theirs is None:  # ss shows a dual-stack `::` socket as *
        return ipaddress.ip_address(ours).is_unspecified
    return _unmapped(ipaddress.ip_address(ours)) == _unmapped(ipaddress.ip_address(theirs))
