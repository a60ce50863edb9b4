# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""haproxy's real config test and the bind check (plugins/module_utils/_haproxy_test.py).

The config tests run every haproxy in haproxy_binaries() (conftest): the installed one, and with
CLOUDCORE_HA_HAPROXY_EXTRA any other (e.g. Debian 13's 3.0) for reference."""

from __future__ import annotations

import dataclasses
import socket
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings

from ansible_collections.cloudcore.ha.plugins.module_utils._haproxy_conf import HaproxyConfig, bind_ports, render_haproxy_cfg
from ansible_collections.cloudcore.ha.plugins.module_utils._haproxy_test import (
    LISTENERS_COMMAND,
    Listener,
    bind_conflicts,
    haproxy_config_test,
    overlaps,
    parse_listeners,
    bound_ports,
    unbound_ports,
    version_line,
)

from test_haproxy_conf import CASES, base, valid_models


def run_command(argv):
    """The command runner haproxy_config_test takes (the module passes run_command)."""
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30, check=False)
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


def local(config: HaproxyConfig, ca_file: str, user: str) -> HaproxyConfig:
    """config with what this machine has: a CA file that exists, a user that exists."""
    return dataclasses.replace(config, ca_file=ca_file if config.ca_file else None,
                               user=user if config.user else None, group=user if config.group else None)


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_config_passes_real_haproxy_config_test(name, haproxy_binary, ca_file, haproxy_user):
    text = render_haproxy_cfg(local(CASES[name], ca_file, haproxy_user))
    result = haproxy_config_test(text, run=run_command, haproxy=haproxy_binary)
    assert result.ok, result.output
    assert result.warnings == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=valid_models())
def test_every_valid_model_passes_real_haproxy_config_test(config, haproxy_binary, ca_file, haproxy_user):
    """Whatever the rules accept, haproxy accepts (without a single warning)."""
    text = render_haproxy_cfg(local(dataclasses.replace(config, ca_file="/x"), ca_file, haproxy_user))
    result = haproxy_config_test(text, run=run_command, haproxy=haproxy_binary)
    assert result.ok, result.output


@pytest.mark.parametrize("mangle, expected", [
    (lambda t: t.replace("    balance roundrobin\n", "    balance roundrobin\n    bogus_keyword 1\n"), "unknown keyword"),
    (lambda t: t.replace("track cloudcore_https/node2", "track cloudcore_https/node9"), "node9"),
    (lambda t: t.replace("ca-file ", "ca-file /nonexistent"), "ca-file"),
    # a peers section without the local peer is only a warning; -dW makes it fatal
    (lambda t: t.replace("localpeer node1", "localpeer node9"), "Removing incomplete section 'peers cloudcore_ha'"),
    (lambda t: t.replace("user haproxy", "user no-such-user-here").replace("user root", "user no-such-user-here"),
     "no-such-user-here"),
])
def test_runner_reports_failure_for_broken_config(mangle, expected, haproxy_binary, ca_file, haproxy_user):
    text = mangle(render_haproxy_cfg(local(base(), ca_file, haproxy_user)))
    result = haproxy_config_test(text, run=run_command, haproxy=haproxy_binary)
    assert not result.ok and result.returncode != 0
    assert expected.lower() in result.output.lower(), result.output
    assert "cloudcore-ha-hc-" not in result.output  # the temporary path is replaced by the file's name


def test_port_clash_passes_the_config_test_so_the_bind_check_exists(haproxy_binary, ca_file, haproxy_user):
    """haproxy -c stops before binding (REFERENCE.md): a taken port is the bind check's job."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = local(base(monitor_port=port), ca_file, haproxy_user)
        assert haproxy_config_test(render_haproxy_cfg(config), run=run_command, haproxy=haproxy_binary).ok
        listing = subprocess.run(LISTENERS_COMMAND, capture_output=True, text=True, check=False).stdout
        conflicts = bind_conflicts(listing, config)
    assert [(c.purpose, c.port) for c in conflicts] == [("monitor", port)]
    assert "python" in conflicts[0].msg or "could not name" in conflicts[0].msg


def test_version_line(haproxy_binary):
    rc, out = run_command([haproxy_binary, "-v"])
    assert rc == 0 and version_line(out).startswith("HAProxy version ")


# --- the bind check on ss's output ---------------------------------------------------------

SS = """\
LISTEN 0      4096         0.0.0.0:10000 0.0.0.0:* users:(("cloudcore",pid=812,fd=9))
LISTEN 0      4096       127.0.0.1:10111 0.0.0.0:* users:(("haproxy",pid=900,fd=11),("haproxy",pid=901,fd=11))
LISTEN 0      128     127.0.0.53%lo:53   0.0.0.0:* users:(("systemd-resolve",pid=400,fd=14))
LISTEN 0      128          [::]:10002    [::]:* users:(("nginx",pid=77,fd=6))
LISTEN 0      128             *:10004       *:* users:(("edgemesh",pid=78,fd=6))
LISTEN 0      128   10.10.102.12:10110 0.0.0.0:*
LISTEN 0      128 [::ffff:10.10.102.11]:10110 [::]:* users:(("socat",pid=79,fd=3))
"""


def test_parse_listeners():
    listeners = parse_listeners("State Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n" + SS)
    assert listeners[0] == Listener("0.0.0.0", 10000, (("cloudcore", 812),))
    assert listeners[1].processes == (("haproxy", 900), ("haproxy", 901))
    assert listeners[2].address == "127.0.0.53"
    assert listeners[3].address == "::" and listeners[4].address is None
    assert listeners[5].processes == () and listeners[6].address == "10.10.102.11"
    assert listeners[4].text == "*:10004" and listeners[3].text == "[::]:10002"


@pytest.mark.parametrize("ours, theirs, expected", [
    ("0.0.0.0", "0.0.0.0", True), ("0.0.0.0", "10.0.0.1", True), ("10.0.0.1", "0.0.0.0", True),
    ("10.0.0.1", "10.0.0.2", False), ("10.0.0.1", None, True), ("0.0.0.0", "::", False),
    ("::", "0.0.0.0", True), ("::", "10.0.0.1", True), ("::", "fd00::1", True), ("fd00::1", "::", True),
    ("fd00::1", "0.0.0.0", False), ("0.0.0.0", "fd00::1", False), ("10.0.0.1", "::ffff:10.0.0.1", True),
])
def test_overlaps(ours, theirs, expected):
    assert overlaps(ours, theirs) is expected


def test_bind_conflicts_name_the_port_and_the_process():
    conflicts = bind_conflicts(SS, base(node="node1"))
    assert [(c.purpose, c.port, c.listener.address) for c in conflicts] == [
        ("websocket", 10000, "0.0.0.0"), ("tunnel", 10004, None), ("peers", 10110, "10.10.102.11")]
    assert conflicts[0].msg == ("websocket port 10000 (haproxy binds 0.0.0.0) is taken by cloudcore (pid 812)"
                                " listening on 0.0.0.0:10000")
    # the [::]:10002 listener is v6-only: an IPv4 bind does not collide with it; haproxy's monitor is allowed
    node2 = bind_conflicts(SS, base(node="node2"))
    assert ("peers", 10110) in [(c.purpose, c.port) for c in node2]
    assert "could not name (run it as root)" in [c for c in node2 if c.purpose == "peers"][0].msg
    assert [c.purpose for c in bind_conflicts(SS, base(), allowed=("haproxy", "cloudcore", "edgemesh", "socat"))] == []


def test_bind_conflicts_ipv6_wildcard_collides_with_both_families():
    config = CASES["haproxy_ipv6_no_ca"]
    purposes = [c.purpose for c in bind_conflicts(SS, config)]
    assert purposes == ["websocket", "https", "tunnel"]


def test_unbound_ports_are_those_without_haproxy():
    config = base(node="node1")
    assert unbound_ports(SS, config) == [("websocket", "0.0.0.0", 10000), ("https", "0.0.0.0", 10002),
                                         ("tunnel", "0.0.0.0", 10004), ("peers", "10.10.102.11", 10110)]
    bound = "\n".join('LISTEN 0 4096 %s:%d 0.0.0.0:* users:(("haproxy",pid=9,fd=%d))' % (a, p, p)
                      for _purpose, a, p in [("", "0.0.0.0", 10000), ("", "0.0.0.0", 10002), ("", "0.0.0.0", 10004),
                                             ("", "10.10.102.11", 10110), ("", "127.0.0.1", 10111)])
    assert unbound_ports(bound, config) == []
    assert bound_ports(SS, config) == [("monitor", "127.0.0.1", 10111)]
    assert bound_ports(bound, config) == list(bind_ports(config))
    # a haproxy on the package's default configuration listens nowhere: it serves nothing
    assert bound_ports('LISTEN 0 100 *:10000 *:* users:(("cloudcore",pid=7,fd=3))', config) == []
    # haproxy's [::]:port v4v6 shows as *:port
    ipv6 = CASES["haproxy_ipv6_no_ca"]
    star = 'LISTEN 0 4096 *:10000 *:* users:(("haproxy",pid=9,fd=7))'
    assert ("websocket", "::", 10000) not in unbound_ports(star, ipv6)
