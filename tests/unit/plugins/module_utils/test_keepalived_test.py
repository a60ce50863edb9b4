# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""keepalived's real config test (plugins/module_utils/_keepalived_test.py) on rendered configs."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess

import pytest

from ansible_collections.cloudcore.ha.plugins.module_utils._keepalived_conf import render_keepalived_conf
from ansible_collections.cloudcore.ha.plugins.module_utils._keepalived_test import keepalived_config_test, parse_version

from test_keepalived_conf import CASES, base


def run_command(argv):
    """The command runner keepalived_config_test takes (the module passes run_command)."""
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30, check=False)
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


def _unshare():
    return shutil.which("unshare")


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
    result = keepalived_config_test(text, run=run_command, keepalived=binary, unshare=_unshare())
    assert not result.ok and "interface nonexist0 for vrrp_instance CLOUDCORE doesn't exist" in result.output
    text = render_keepalived_conf(dataclasses.replace(config, check_script="/nonexistent/check_cloudcore"))
    result = keepalived_config_test(text, run=run_command, keepalived=binary, unshare=_unshare())
    assert not result.ok and "Disabling track script chk_cloudcore since not found" in result.output


def test_runner_without_unshare_still_validates(keepalived_env):
    # keepalived 2.2.7 kills itself with a non-root script user; the runner then retries as root
    binary, config = _valid_local(keepalived_env)
    result = keepalived_config_test(render_keepalived_conf(config), run=run_command, keepalived=binary, unshare=None)
    assert result.ok, result.output
    broken = render_keepalived_conf(config).replace("virtual_router_id 51", "virtual_router_id 300")
    assert not keepalived_config_test(broken, run=run_command, keepalived=binary, unshare=None).ok


def _sigterm_runner(calls):
    """A keepalived whose config test always kills itself (exit 143), recording each command."""
    def run(argv):
        calls.append(argv)
        return 143, "Terminated"
    return run


def test_version_parsed_from_keepalived_output():
    assert parse_version("Keepalived v2.3.3 (03/30,2025)") == (2, 3, 3)
    assert parse_version("Keepalived v2.2.7 (01/16,2022)\nCopyright ...") == (2, 2, 7)
    assert parse_version("not keepalived") is None


def test_before_2_2_8_a_self_kill_is_retried_as_root():
    calls = []
    text = "global_defs {\n    script_user keepalived_script\n}\n"
    outcome = keepalived_config_test(text, _sigterm_runner(calls), unshare="/usr/bin/unshare", version=(2, 2, 7))
    assert len(calls) == 2 and calls[0][:3] == ["/usr/bin/unshare", "--pid", "--fork"]
    assert outcome.notes and "repeated the test with script_user root" in outcome.notes[0]


def test_from_2_2_8_on_a_self_kill_fails_and_no_workaround_runs():
    calls = []
    text = "global_defs {\n    script_user keepalived_script\n}\n"
    outcome = keepalived_config_test(text, _sigterm_runner(calls), unshare="/usr/bin/unshare", version=(2, 3, 3))
    assert not outcome.ok and outcome.returncode == 143 and outcome.notes == []
    assert len(calls) == 1 and calls[0][0] == "keepalived"  # no unshare, no retry
