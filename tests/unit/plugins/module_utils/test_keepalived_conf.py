# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The keepalived.conf model and renderer (plugins/module_utils/_keepalived_conf.py).

Golden files: tests/unit/plugins/module_utils/golden/*.conf. Regenerate after an intended change
with CLOUDCORE_HA_UPDATE_GOLDEN=1 and review the diff."""

from __future__ import annotations

import dataclasses
import os

import pytest

from ansible_collections.cloudcore.ha.plugins.module_utils._keepalived_conf import (
    KeepalivedConfig,
    KeepalivedConfigError,
    config_problems,
    from_options,
    mask_secrets,
    option_spec,
    render_keepalived_conf,
    resolve_vrrp_version,
)


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
    (dict(vip="10.10.102.242"), "vip", "needs a prefix length"),
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
    (dict(unicast_peers=["fd00::2"]), "unicast_peers", "must be IPv4 like the VIP"),
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
    assert any(p.variable == option and fragment in p.rule for p in problems), problems
    with pytest.raises(KeepalivedConfigError):
        render_keepalived_conf(base(**changes))


def test_secret_never_in_error():
    with pytest.raises(KeepalivedConfigError) as err:
        render_keepalived_conf(base(auth_pass="supersecret"))
    assert "supersecret" not in str(err.value)
    assert "<11 characters>" in str(err.value)


def test_all_problems_reported_at_once():
    problems = config_problems(base(virtual_router_id=0, priority=300, vip="x"))
    assert {p.variable for p in problems} >= {"virtual_router_id", "priority", "vip"}


def test_the_argument_spec_is_the_model():
    spec = option_spec()
    assert list(spec) == [f.name for f in dataclasses.fields(KeepalivedConfig)]
    assert spec["virtual_router_id"] == {"type": "int", "required": True}
    assert spec["unicast_peers"] == {"type": "list", "elements": "str", "default": []}
    assert spec["auth_pass"] == {"type": "str", "no_log": True}
    assert spec["state"]["choices"] == ["MASTER", "BACKUP"] and spec["vrrp_version"]["choices"] == [2, 3]
    assert "auth_pass" not in option_spec(exclude=("auth_pass",))


def test_from_options_keeps_whole_numbers_whole_and_ignores_unknown_keys():
    config = from_options(dict(base().as_dict(), check_interval=2.0, advert_int=1.0, extra="ignored"))
    assert config.check_interval == 2 and isinstance(config.check_interval, int)
    assert "interval 2\n" in render_keepalived_conf(config) and "advert_int 1\n" in render_keepalived_conf(config)
