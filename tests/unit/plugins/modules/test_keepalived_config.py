# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Module cloudcore.ha.keepalived_config, run for real (in-process main() and one ansible ad-hoc run)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from ansible_collections.cloudcore.ha.plugins.modules import keepalived_config
from ansible_collections.cloudcore.ha.plugins.modules.keepalived_config import main

# <collections>/ansible_collections/cloudcore/ha/plugins/modules/keepalived_config.py
COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(keepalived_config.__file__), *[".."] * 5))


@pytest.fixture
def args(keepalived_env, tmp_path):
    binary, interface, user, script = keepalived_env
    return dict(
        path=str(tmp_path / "keepalived.conf"),
        config=dict(
            router_id="node1",
            script_user=user,
            check_script=script + " https://127.0.0.1:10002/ca.crt 0.8",
            interface=interface,
            virtual_router_id=51,
            priority=200,
            nopreempt=True,
            vip="10.10.102.242/24",
        ),
        auth_pass="s3cret",
        keepalived_binary=binary,
    )


def model(args, **changes):
    """args with fields of the keepalived.conf model changed."""
    return dict(args, config=dict(args["config"], **changes))


def test_writes_when_absent_then_idempotent(run_module, args):
    failed, result, _unused = run_module(main, args)
    assert not failed, result
    assert result["changed"] and result["validated"]
    text = open(args["path"]).read()
    assert text.startswith("# managed by cloudcore.ha; do not edit")
    assert "auth_pass s3cret" in text
    mode = stat.S_IMODE(os.stat(args["path"]).st_mode)
    assert mode == 0o640
    assert os.stat(args["path"]).st_uid == 0
    import hashlib
    assert result["checksum"] == hashlib.sha1(text.encode()).hexdigest()

    failed, result, _unused = run_module(main, args)
    assert not failed and not result["changed"]


def test_check_mode_writes_nothing_but_validates_and_reports_changed(run_module, args):
    failed, result, _unused = run_module(main, args, check_mode=True)
    assert not failed, result
    assert result["changed"] and result["validated"]
    assert not os.path.exists(args["path"])


def test_check_mode_fails_on_config_keepalived_rejects(run_module, args):
    # renders fine, but the interface does not exist: only keepalived's own test can tell
    failed, result, _unused = run_module(main, model(args, interface="nonexist0"), check_mode=True)
    assert failed
    assert "keepalived rejected" in result["msg"] and "nonexist0" in result["msg"]
    assert not os.path.exists(args["path"])


def test_missing_script_fails(run_module, args):
    failed, result, _unused = run_module(main, model(args, check_script="/nonexistent/check_cloudcore"))
    assert failed and not os.path.exists(args["path"])
    assert "keepalived rejected" in result["msg"]
    assert "Disabling track script chk_cloudcore since not found" in result["msg"]


def test_mode_fixed_on_existing_file_with_same_content(run_module, args):
    run_module(main, args)
    os.chmod(args["path"], 0o644)
    failed, result, _unused = run_module(main, args, check_mode=True)
    assert result["changed"] and stat.S_IMODE(os.stat(args["path"]).st_mode) == 0o644
    failed, result, _unused = run_module(main, args)
    assert result["changed"] and stat.S_IMODE(os.stat(args["path"]).st_mode) == 0o640


def test_rewrite_keeps_mode_0640_even_if_old_file_was_0644(run_module, args):
    with open(args["path"], "w") as handle:
        handle.write("old\n")
    os.chmod(args["path"], 0o644)
    failed, result, _unused = run_module(main, dict(args, backup=True))
    assert not failed and result["changed"]
    assert stat.S_IMODE(os.stat(args["path"]).st_mode) == 0o640
    assert open(result["backup_file"]).read() == "old\n"


def test_diff_masks_auth_pass(run_module, args):
    with open(args["path"], "w") as handle:
        handle.write("    auth_pass oldpass1\n")
    failed, result, _unused = run_module(main, args, check_mode=True, diff=True)
    assert not failed
    diff = result["diff"]
    assert "s3cret" not in diff["after"] and "auth_pass ********" in diff["after"]
    assert "oldpass1" not in diff["before"]


def test_no_diff_unless_asked(run_module, args):
    failed, result, _unused = run_module(main, args, check_mode=True)
    assert "diff" not in result


@pytest.mark.parametrize("secret, changes, option, fragment", [
    ("123456789", {}, "auth_pass", "at most 8 characters"),
    ("s3cret", dict(vrrp_version=2, advert_int=0.5), "advert_int", "whole seconds"),
    ("s3cret", dict(vip="10.10.102.242"), "vip", "prefix length"),
    ("s3cret", dict(vip="fd00::1/64"), "auth_pass", "VRRPv3"),
])
def test_invalid_input_fails_naming_option(run_module, args, secret, changes, option, fragment):
    failed, result, _unused = run_module(main, dict(model(args, **changes), auth_pass=secret))
    assert failed
    assert "option %s=" % option in result["msg"] and fragment in result["msg"]
    assert "123456789" not in result["msg"]
    assert not os.path.exists(args["path"])


def test_missing_binary_fails_in_real_run_and_warns_in_check_mode(run_module, args):
    missing = dict(args, keepalived_binary="keepalived-does-not-exist")
    failed, result, _unused = run_module(main, missing)
    assert failed and "keepalived_binary" in result["msg"] and "validate=false" in result["msg"]
    assert not os.path.exists(args["path"])
    failed, result, warnings = run_module(main, missing, check_mode=True)
    assert not failed and result["changed"] and not result["validated"]
    assert any("NOT validated" in w for w in warnings)


def test_validate_false_writes_without_keepalived(run_module, args):
    failed, result, _unused = run_module(main, dict(args, keepalived_binary="nope", validate=False))
    assert not failed and result["changed"] and not result["validated"]


def test_real_ansible_adhoc_run(args, tmp_path):
    """The module as ansible runs it (AnsiballZ, module_utils shipped to the 'target')."""
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible")
    if not os.path.exists(ansible):
        pytest.skip("the ansible CLI is not in this virtualenv")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_NOCOLOR="1")
    module_args = json.dumps(args)
    command = [ansible, "localhost", "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable,
               "-m", "cloudcore.ha.keepalived_config", "-a", module_args]
    first = subprocess.run(command + ["--check"], capture_output=True, text=True, env=env, cwd=str(tmp_path), check=False)
    assert first.returncode == 0 and "CHANGED" in first.stdout, first.stdout + first.stderr
    assert not os.path.exists(args["path"])
    second = subprocess.run(command, capture_output=True, text=True, env=env, cwd=str(tmp_path), check=False)
    assert second.returncode == 0 and "CHANGED" in second.stdout, second.stdout + second.stderr
    third = subprocess.run(command, capture_output=True, text=True, env=env, cwd=str(tmp_path), check=False)
    assert third.returncode == 0 and "SUCCESS" in third.stdout, third.stdout + third.stderr
    bad = subprocess.run(command[:-1] + [json.dumps(model(args, interface="nonexist0")), "--check"],
                         capture_output=True, text=True, env=env, cwd=str(tmp_path), check=False)
    assert bad.returncode != 0 and "keepalived rejected" in bad.stdout
