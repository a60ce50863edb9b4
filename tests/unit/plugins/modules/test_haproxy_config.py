# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Module cloudcore.ha.haproxy_config, run for real (in-process main() and one ansible ad-hoc run)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
import sys

import pytest

from ansible_collections.cloudcore.ha.plugins.modules import haproxy_config
from ansible_collections.cloudcore.ha.plugins.modules.haproxy_config import main
from ansible_collections.cloudcore.ha.tests.unit.conftest import make_cert

# <collections>/ansible_collections/cloudcore/ha/plugins/modules/haproxy_config.py
COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(haproxy_config.__file__), *[".."] * 5))


@pytest.fixture
def args(haproxy_binary, ca_file, haproxy_user, tmp_path):
    user = haproxy_user
    return dict(
        path=str(tmp_path / "haproxy.cfg"),
        config=dict(
            node="node1",
            cloudcores=[dict(name="node%d" % i, id=i, address="10.10.102.1%d" % i) for i in (1, 2, 3)],
            ca_file=ca_file,
            user=user,
            group=user,
        ),
        haproxy_binary=haproxy_binary,
    )


def model(args, **changes):
    """args with fields of the haproxy.cfg model changed."""
    return dict(args, config=dict(args["config"], **changes))


def test_check_real_check_real(run_module, args):
    """changed, changed, not changed, not changed; the file 0640, root's, the checksum its content's."""
    outcomes = []
    for check_mode in (True, False, True, False):
        failed, result, _unused = run_module(main, args, check_mode=check_mode)
        assert not failed, result
        assert result["validated"] and result["haproxy_version"].startswith("HAProxy version ")
        outcomes.append(result["changed"])
    assert outcomes == [True, True, False, False]
    text = open(args["path"]).read()
    assert text.startswith("# managed by cloudcore.ha; do not edit")
    assert stat.S_IMODE(os.stat(args["path"]).st_mode) == 0o640
    if os.geteuid() == 0:
        assert os.stat(args["path"]).st_uid == 0
    assert result["checksum"] == hashlib.sha1(text.encode()).hexdigest()


def test_check_mode_writes_nothing(run_module, args):
    failed, result, _unused = run_module(main, args, check_mode=True)
    assert not failed and result["changed"] and not os.path.exists(args["path"])


def test_config_haproxy_rejects_never_replaces_the_file(run_module, args):
    """Renders fine, but the CA file is missing: only haproxy's own test can tell; also in check mode."""
    run_module(main, args)
    before = open(args["path"]).read()
    for check_mode in (True, False):
        failed, result, _unused = run_module(main, model(args, ca_file="/nonexistent/ca.crt"), check_mode=check_mode)
        assert failed and "haproxy rejected" in result["msg"] and "/nonexistent/ca.crt" in result["msg"]
        assert open(args["path"]).read() == before


def test_mode_fixed_on_existing_file_with_same_content(run_module, args):
    run_module(main, args)
    os.chmod(args["path"], 0o644)
    failed, result, _unused = run_module(main, args, check_mode=True)
    assert result["changed"] and stat.S_IMODE(os.stat(args["path"]).st_mode) == 0o644
    failed, result, _unused = run_module(main, args)
    assert result["changed"] and stat.S_IMODE(os.stat(args["path"]).st_mode) == 0o640


def test_backup_and_diff(run_module, args):
    with open(args["path"], "w") as handle:
        handle.write("old\n")
    failed, result, _unused = run_module(main, dict(args, backup=True), diff=True)
    assert not failed and result["changed"]
    assert open(result["backup_file"]).read() == "old\n"
    assert [d["before"] for d in result["diff"]] == ["old\n"]
    assert result["diff"][0]["after"] == open(args["path"]).read()
    failed, result, _unused = run_module(main, args, check_mode=True)
    assert "diff" not in result


def test_ca_certificate_written_and_validated_before_it_exists(run_module, args, tmp_path):
    """The CA goes to config.ca_file; check mode validates against the given text although the file does
    not exist yet, and writes nothing; a second run changes nothing; a changed CA is a change with a diff."""
    pem = open(args["config"]["ca_file"]).read()
    target = str(tmp_path / "etc" / "ca.crt")
    os.makedirs(os.path.dirname(target))
    wanted = dict(model(args, ca_file=target), ca_certificate=pem)
    failed, result, _unused = run_module(main, wanted, check_mode=True, diff=True)
    assert not failed and result["validated"] and result["ca_changed"], result
    assert not os.path.exists(target) and not os.path.exists(args["path"])
    assert [d["after_header"] for d in result["diff"]] == [target, args["path"]]
    failed, result, _unused = run_module(main, wanted)
    assert not failed and result["ca_changed"] and open(target).read() == pem
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644
    assert "ca-file %s " % target in open(args["path"]).read()
    failed, result, _unused = run_module(main, wanted)
    assert not failed and not result["changed"] and not result["ca_changed"]
    another = make_cert(cn="another CA")[1].decode()
    failed, result, _unused = run_module(main, dict(wanted, ca_certificate=another), diff=True)
    assert not failed and result["ca_changed"] and result["diff"][0]["before"] == pem


def test_ca_certificate_needs_pem_and_path(run_module, args):
    failed, result, _unused = run_module(main, dict(args, ca_certificate="not a certificate"))
    assert failed and "ca_certificate" in result["msg"] and "PEM" in result["msg"]
    failed, result, _unused = run_module(main, dict(model(args, ca_file=""), ca_certificate=open(
        args["config"]["ca_file"]).read()))
    assert failed and "config.ca_file is empty" in result["msg"]


def test_empty_user_group_chroot_log_are_omitted(run_module, args):
    """An empty string unsets them (ansible-core 2.17 refuses null for an option with a default; later
    versions turn it into "")."""
    failed, result, _unused = run_module(main, model(args, user="", group="", chroot="", log_socket=""))
    assert not failed, result
    text = open(args["path"]).read()
    assert not re.search(r"^    (user|group|chroot|log) ", text, re.MULTILINE)


@pytest.mark.parametrize("changes, option, fragment", [
    (dict(node="node9"), "node", "must be one of the peers"),
    (dict(monitor_port=10000), "monitor_port", "is also websocket_port"),
    (dict(cloudcores=[dict(name="node1", id=1, address="10.10.102.11")]), "cloudcores", "2..16"),
    (dict(cloudcores=[dict(name="a", id=1, address="10.0.0.1"), dict(name="b", id=1, address="10.0.0.2")]),
     "cloudcores", "id 1 more than once"),
    (dict(stick_expire=60), "stick_expire", "at least hard_stop_after"),
])
def test_invalid_input_fails_naming_option(run_module, args, changes, option, fragment):
    failed, result, _unused = run_module(main, model(args, **changes))
    assert failed
    assert "option %s=" % option in result["msg"] and fragment in result["msg"], result["msg"]
    assert any(p["option"] == option for p in result["problems"])
    assert not os.path.exists(args["path"])


def test_every_problem_at_once(run_module, args):
    failed, result, _unused = run_module(main, model(args, node="node9", websocket_port=0, check_fall=0))
    assert failed and {p["option"] for p in result["problems"]} >= {"node", "websocket_port", "check_fall"}


def test_argument_spec_checks_server_fields(run_module, args):
    failed, result, _unused = run_module(main, model(args, cloudcores=[dict(name="a", id=1), dict(name="b", id=2)]))
    assert failed and "address" in result["msg"]


def test_missing_binary_fails_in_real_run_and_warns_in_check_mode(run_module, args):
    missing = dict(args, haproxy_binary="haproxy-does-not-exist")
    failed, result, _unused = run_module(main, missing)
    assert failed and "haproxy_binary" in result["msg"] and "validate=false" in result["msg"]
    assert not os.path.exists(args["path"])
    failed, result, warnings = run_module(main, missing, check_mode=True)
    assert not failed and result["changed"] and not result["validated"]
    assert any("NOT validated" in w for w in warnings)


def test_validate_false_writes_without_haproxy(run_module, args):
    failed, result, _unused = run_module(main, dict(args, haproxy_binary="nope", validate=False))
    assert not failed and result["changed"] and not result["validated"] and "haproxy_version" not in result


def test_real_ansible_adhoc_run(args, tmp_path):
    """The module as ansible runs it (AnsiballZ, module_utils shipped to the 'target')."""
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible")
    if not os.path.exists(ansible):
        pytest.skip("the ansible CLI is not in this virtualenv")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_NOCOLOR="1")
    command = [ansible, "localhost", "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable,
               "-m", "cloudcore.ha.haproxy_config", "-a", json.dumps(args)]

    def run(argv):
        return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=str(tmp_path), check=False)

    first = run(command + ["--check"])
    assert first.returncode == 0 and "CHANGED" in first.stdout, first.stdout + first.stderr
    assert not os.path.exists(args["path"])
    second = run(command)
    assert second.returncode == 0 and "CHANGED" in second.stdout, second.stdout + second.stderr
    third = run(command)
    assert third.returncode == 0 and "SUCCESS" in third.stdout, third.stdout + third.stderr
    bad = run(command[:-1] + [json.dumps(model(args, ca_file="/nonexistent/ca.crt")), "--check"])
    assert bad.returncode != 0 and "haproxy rejected" in bad.stdout
