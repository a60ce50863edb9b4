# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""keepalived.conf model, renderer and keepalived's real config test.

Golden files: tests/unit/plugins/module_utils/golden/*.conf. Regenerate after an intended change
with CLOUDCORE_HA_UPDATE_GOLDEN=1 and review the diff."""

from __future__ import annotations

import dataclasses
import os
import subprocess

import pytest

from ansible_collections.cloudcore.ha.plugins.module_utils._vrrp import (
    KeepalivedConfig,
    KeepalivedConfigError,
    config_problems,
    keepalived_config_test,
    mask_secrets,
    render_keepalived_conf,
    resolve_vrrp_version,
)


def run_command(argv):
    """The command runner keepalived_config_test takes (the module passes run_command)."""
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30, check=False)
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


GOLDEN = os.path.join(os.path.dirname(__file__), "golden")
CHECK = "/usr/local/libexec/cloudcore-ha/check_cloudcore https://127.0.0.1:10002/ca.crt 0.8"


def base(**changes):
    config = KeepalivedConfig(router_id="node1", check_script=CHECK, interface="eth0",
                              virtual_router_id=51, priority=200, vip="10.10.102.242/24",
                              nopreempt=True)
    return dataclasses.replace(config, **changes)


CASES = {
    # fault mode (default): weight 0, nopreempt, every node BACKUP, multicast
    "fault_multicast": base(multicast_group="224.0.0.19", auth_pass="s3cret"),
    # seed-style weighted check: MASTER/BACKUP with preempt
    "weighted": base(state="MASTER", priority=100, nopreempt=False, check_weight=2,
                     check_interval=2, auth_pass="s3cret"),
    "unicast": base(unicast_src_ip="10.10.102.11", unicast_peers=["10.10.102.12", "10.10.102.13"],
                    priority=190, notify_script="/usr/local/libexec/cloudcore-ha/notify"),
    # IPv6 VIP -> VRRPv3, sub-second adverts
    "ipv6_vrrpv3": base(vip="fd00::100/64", advert_int=0.5,
                        unicast_src_ip="fd00::11", unicast_peers=["fd00::12"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rendering_matches_golden(name):
    text = render_keepalived_conf(CASES[name])
    path = os.path.join(GOLDEN, name + ".conf")
    if os.environ.get("CLOUDCORE_HA_UPDATE_GOLDEN"):
        with open(path, "w") as handle:
            handle.write(text)
    with open(path) as handle:
        assert text == handle.read()


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_config_passes_real_keepalived_config_test(name, keepalived_env):
    binary, interface, user, script = keepalived_env
    config = CASES[name]
    arguments = config.check_script.split(" ", 1)[1]
    notify = config.notify_script and script  # notify scripts must exist too
    local = dataclasses.replace(config, interface=interface, script_user=user,
                                check_script=script + " " + arguments, notify_script=notify)
    result = keepalived_config_test(render_keepalived_conf(local), run=run_command, keepalived=binary, unshare=_unshare())
    assert result.ok, result.output + "\n".join(result.notes)


def _unshare():
    import shutil
    return shutil.which("unshare")


def test_header_and_determinism():
    text = render_keepalived_conf(CASES["unicast"])
    assert text.startswith("# managed by cloudcore.ha; do not edit")
    assert text == render_keepalived_conf(CASES["unicast"])


def test_fault_mode_renders_weight_0_and_nopreempt():
    text = render_keepalived_conf(base())
    assert "    weight 0\n" in text and "    nopreempt\n" in text and "    state BACKUP\n" in text


def test_version_choice():
    assert resolve_vrrp_version(base()) == 2
    assert resolve_vrrp_version(base(vip="fd00::1/64")) == 3
    assert resolve_vrrp_version(base(advert_int=0.5)) == 3
    assert resolve_vrrp_version(base(vrrp_version=3)) == 3


def test_mask_secrets():
    text = render_keepalived_conf(base(auth_pass="s3cret"))
    masked = mask_secrets(text)
    assert "s3cret" not in masked and "auth_pass ********" in masked
    assert masked.replace("********", "s3cret") == text


@pytest.mark.parametrize("changes, option, fragment", [
    (dict(auth_pass="123456789"), "auth_pass", "at most 8 characters"),
    (dict(auth_pass="secret", vip="fd00::1/64"), "auth_pass", "VRRPv3 (RFC 5798) has no authentication"),
    (dict(auth_pass="secret", advert_int=0.5), "auth_pass", "VRRPv3"),
    (dict(vrrp_version=2, advert_int=0.5), "advert_int", "whole seconds"),
    (dict(vrrp_version=2, vip="fd00::1/64"), "vrrp_version", "IPv4 only"),
    (dict(vrrp_version=3, advert_int=0.005), "advert_int", "10 ms steps"),
    (dict(vip="10.10.102.242"), "vip", "with prefix length"),
    (dict(vip="10.10.102.300/24"), "vip", "not an IPv4 or IPv6 address"),
    (dict(virtual_router_id=256), "virtual_router_id", "1..255"),
    (dict(priority=255), "priority", "address owner"),
    (dict(priority=0), "priority", "1..255"),
    (dict(check_weight=254), "check_weight", "-253..253"),
    (dict(check_script="check_cloudcore"), "check_script", "absolute path"),
    (dict(check_script='/x "y"'), "check_script", "double quotes"),
    (dict(state="MASTER"), "nopreempt", "state BACKUP"),
    (dict(preempt_delay=5), "preempt_delay", "no effect with nopreempt"),
    (dict(multicast_group="10.0.0.1"), "multicast_group", "multicast address"),
    (dict(multicast_group="ff02::12"), "multicast_group", "same address family"),
    (dict(unicast_src_ip="10.0.0.1"), "unicast_peers", "at least one peer"),
    (dict(unicast_peers=["10.0.0.2", "nope"]), "unicast_peers", "must be an IP address"),
    (dict(unicast_peers=["fd00::2"]), "unicast_peers", "same address family"),
    (dict(unicast_src_ip="10.0.0.1", unicast_peers=["10.0.0.1"]), "unicast_peers", "must not contain unicast_src_ip"),
    (dict(check_fall=0), "check_fall", ">= 1"),
    (dict(check_interval=0), "check_interval", "whole seconds"),
    (dict(check_interval=0.5), "check_interval", "whole seconds"),
    (dict(check_timeout=0.8), "check_timeout", "whole seconds"),
    (dict(router_id="a b"), "router_id", "without spaces"),
    (dict(interface=""), "interface", "interface name"),
])
def test_invalid_input_is_named(changes, option, fragment):
    problems = config_problems(base(**changes))
    assert any(o == option and fragment in rule for o, _unused, rule in problems), problems
    with pytest.raises(KeepalivedConfigError):
        render_keepalived_conf(base(**changes))


def test_secret_never_in_error():
    with pytest.raises(KeepalivedConfigError) as err:
        render_keepalived_conf(base(auth_pass="supersecret"))
    assert "supersecret" not in str(err.value)
    assert "<11 characters>" in str(err.value)


def test_all_problems_reported_at_once():
    problems = config_problems(base(virtual_router_id=0, priority=300, vip="x"))
    assert {o for o, _unused, _unused2 in problems} >= {"virtual_router_id", "priority", "vip"}


# --- the runner on configs keepalived rejects -------------------------------------------------

def _valid_local(keepalived_env, **changes):
    binary, interface, user, script = keepalived_env
    return binary, dataclasses.replace(base(), interface=interface, script_user=user,
                                       check_script=script + " https://127.0.0.1:10002/ca.crt 0.8", **changes)


def test_runner_reports_success(keepalived_env):
    binary, config = _valid_local(keepalived_env)
    result = keepalived_config_test(render_keepalived_conf(config), run=run_command, keepalived=binary, unshare=_unshare())
    assert result.ok and result.returncode == 0


@pytest.mark.parametrize("mangle, expected", [
    (lambda t: t.replace("    nopreempt\n", "    nopreempt\n    bogus_keyword 1\n"), "Unknown keyword"),
    (lambda t: t.replace("virtual_router_id 51", "virtual_router_id 300"), "300"),
    (lambda t: t.rstrip("}\n") + "\n", ""),  # unbalanced braces
    (lambda t: t.replace("advert_int 1\n    version 2", "advert_int 0.5\n    version 2"), "must be an integer"),
    (lambda t: t.replace("    nopreempt\n", "    nopreempt\n    authentication {\n        auth_type PASS\n"
                         "        auth_pass 123456789\n    }\n"), "Truncating auth_pass"),
])
def test_runner_reports_failure_for_broken_config(keepalived_env, mangle, expected):
    binary, config = _valid_local(keepalived_env)
    result = keepalived_config_test(mangle(render_keepalived_conf(config)), run=run_command, keepalived=binary, unshare=_unshare())
    assert not result.ok
    assert expected in result.output


def test_runner_reports_missing_interface_and_script(keepalived_env):
    binary, config = _valid_local(keepalived_env)
    text = render_keepalived_conf(dataclasses.replace(config, interface="nonexist0"))
    assert not keepalived_config_test(text, run=run_command, keepalived=binary, unshare=_unshare()).ok
    text = render_keepalived_conf(dataclasses.replace(config, check_script="/nonexistent/check_cloudcore"))
    assert not keepalived_config_test(text, run=run_command, keepalived=binary, unshare=_unshare()).ok


def test_runner_without_unshare_still_validates(keepalived_env):
    # keepalived 2.2.7 kills itself with a non-root script user; the runner then retries as root
    binary, config = _valid_local(keepalived_env)
    result = keepalived_config_test(render_keepalived_conf(config), run=run_command, keepalived=binary, unshare=None)
    assert result.ok, result.output
    broken = render_keepalived_conf(config).replace("virtual_router_id 51", "virtual_router_id 300")
    assert not keepalived_config_test(broken, run=run_command, keepalived=binary, unshare=None).ok
