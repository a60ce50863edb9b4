# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""keepalived's unit in one pass: real files in a temporary directory, systemctl and the account tools
answered by a node that keeps state as systemd and passwd do."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import InputError
from ansible_collections.cloudcore.ha.plugins.module_utils._keepalived_unit import (
    Node,
    UnitError,
    account_command,
    converge,
    parse_passwd,
    parse_show,
    result,
    unit_spec,
)

SCRIPT = "#!/bin/sh\nexit 0\n"
DROPIN = "# managed by cloudcore.ha\n[Service]\nRestart=on-failure\n"
MUTATING = ("daemon-reload", "enable", "useradd", "usermod")


class FakeSystem(object):
    """systemctl, getent, useradd and usermod as a node answers them; every command is recorded."""

    def __init__(self, check_mode=False, load_state="loaded", unit_file_state="disabled", active="inactive",
                 need_reload=False, users=None, groups=()):
        self.check_mode = check_mode
        self.load_state, self.unit_file_state, self.active = load_state, unit_file_state, active
        self.need_reload = need_reload
        self.users = dict(users or {})
        self.groups = set(groups)
        self.commands = []

    def get_bin_path(self, tool, required=False, opt_dirs=None):
        return "/usr/bin/" + tool

    def atomic_move(self, src, dest, unsafe_writes=False):
        os.replace(src, dest)

    def run_command(self, argv, check_rc=False):
        tool, args = os.path.basename(argv[0]), list(argv[1:])
        self.commands.append([tool] + args)
        if tool == "systemctl" and args[0] == "show":
            return 0, ("LoadState=%s\nActiveState=%s\nSubState=dead\nUnitFileState=%s\nNeedDaemonReload=%s\n"
                       % (self.load_state, self.active, self.unit_file_state,
                          "yes" if self.need_reload else "no")), ""
        if tool == "systemctl" and args == ["daemon-reload"]:
            self.need_reload = False
            return 0, "", ""
        if tool == "systemctl" and args[0] == "enable":
            self.unit_file_state = "enabled"
            return 0, "", ""
        if tool == "getent":
            table, name = args
            if table == "passwd" and name in self.users:
                home, shell = self.users[name]
                return 0, "%s:x:998:998::%s:%s\n" % (name, home, shell), ""
            if table == "group" and name in self.groups:
                return 0, "%s:x:998:\n" % name, ""
            return 2, "", ""
        if tool == "useradd":
            self.users[args[-1]] = (args[args.index("-d") + 1], args[args.index("-s") + 1])
            return 0, "", ""
        if tool == "usermod":
            home, shell = self.users[args[-1]]
            if "-d" in args:
                home = args[args.index("-d") + 1]
            if "-s" in args:
                shell = args[args.index("-s") + 1]
            self.users[args[-1]] = (home, shell)
            return 0, "", ""
        return 1, "", "unexpected command %r" % argv

    def mutations(self):
        return [c for c in self.commands if c[0] in MUTATING or (c[0] == "systemctl" and c[1] in MUTATING)]


@pytest.fixture
def spec(tmp_path):
    (tmp_path / "sbin").mkdir()
    (tmp_path / "system").mkdir()
    return unit_spec("keepalived", str(tmp_path / "sbin" / "check_cloudcore"), SCRIPT, "keepalived_script",
                     str(tmp_path / "system" / "keepalived.service.d" / "cloudcore-ha.conf"), DROPIN)


def test_a_fresh_node_gets_script_user_dropin_reload_and_enablement_in_one_pass(spec):
    system = FakeSystem()
    out = converge(Node(system), spec)
    assert out.changed and out.daemon_reloaded and out.enabled and out.exists and not out.active
    with open(spec.script_path) as handle:
        assert handle.read() == SCRIPT
    assert stat.S_IMODE(os.stat(spec.script_path).st_mode) == 0o755
    with open(spec.dropin_path) as handle:
        assert handle.read() == DROPIN
    assert stat.S_IMODE(os.stat(spec.dropin_path).st_mode) == 0o644
    assert system.users["keepalived_script"] == ("/nonexistent", "/usr/sbin/nologin")
    assert system.mutations() == [
        ["useradd", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", "-M", "-r", "keepalived_script"],
        ["systemctl", "daemon-reload"], ["systemctl", "enable", "keepalived.service"]]
    assert not any(c[:2] in (["systemctl", "start"], ["systemctl", "restart"], ["systemctl", "reload"])
                   for c in system.commands)


def test_a_converged_node_changes_nothing_and_reports_the_unit_running(spec):
    system = FakeSystem()
    converge(Node(system), spec)
    system.active = "active"
    system.commands = []
    again = converge(Node(system), spec)
    assert not again.changed and again.changes == [] and again.active and again.state == "active"
    assert system.mutations() == []


def test_check_mode_reports_every_change_with_a_diff_and_changes_nothing(spec):
    system = FakeSystem(check_mode=True)
    out = converge(Node(system), spec)
    assert out.changed and out.daemon_reloaded and system.mutations() == []
    assert not os.path.exists(spec.script_path) and not os.path.exists(spec.dropin_dir)
    headers = [d["before_header"] for d in result(out, diff=True)["diff"]]
    assert spec.script_path in headers and spec.dropin_path in headers and "user keepalived_script" in headers
    assert "diff" not in result(out, diff=False)


def test_check_mode_on_a_node_without_the_package_notes_it_instead_of_failing(spec):
    system = FakeSystem(check_mode=True, load_state="not-found", unit_file_state="")
    out = converge(Node(system), spec)
    assert not out.exists and not out.daemon_reloaded and "does not exist yet" in out.notes[0]
    assert system.mutations() == []


def test_a_missing_unit_fails_before_anything_changes(spec):
    system = FakeSystem(load_state="not-found", unit_file_state="")
    with pytest.raises(UnitError, match="install its package first"):
        converge(Node(system), spec)
    assert system.mutations() == [] and not os.path.exists(spec.script_path)


def test_a_masked_unit_fails_before_anything_changes_naming_the_fix(spec):
    system = FakeSystem(load_state="masked", unit_file_state="masked")
    with pytest.raises(UnitError, match="systemctl unmask keepalived.service"):
        converge(Node(system), spec)
    assert system.mutations() == [] and not os.path.exists(spec.script_path)


def test_systemd_is_reloaded_when_it_says_the_unit_files_changed_even_if_the_dropin_did_not(spec):
    system = FakeSystem()
    converge(Node(system), spec)
    system.need_reload, system.commands = True, []
    out = converge(Node(system), spec)
    assert out.daemon_reloaded and system.mutations() == [["systemctl", "daemon-reload"]]
    assert "NeedDaemonReload=yes" in out.changes[0]


def test_a_changed_dropin_reloads_systemd_and_a_changed_script_alone_does_not(spec):
    system = FakeSystem()
    converge(Node(system), spec)
    with open(spec.script_path, "w") as handle:
        handle.write("#!/bin/sh\nexit 1\n")
    system.commands = []
    out = converge(Node(system), spec)
    assert out.changed and not out.daemon_reloaded and system.mutations() == []
    with open(spec.dropin_path, "w") as handle:
        handle.write("[Service]\n")
    system.commands = []
    assert converge(Node(system), spec).daemon_reloaded
    assert system.mutations() == [["systemctl", "daemon-reload"]]


def test_a_wrong_mode_is_set_without_rewriting_the_file(spec):
    system = FakeSystem()
    converge(Node(system), spec)
    os.chmod(spec.script_path, 0o777)
    inode = os.stat(spec.script_path).st_ino
    out = converge(Node(system), spec)
    assert out.changed and "owner or mode set" in out.changes[0]
    assert stat.S_IMODE(os.stat(spec.script_path).st_mode) == 0o755 and os.stat(spec.script_path).st_ino == inode


def test_an_existing_user_keeps_its_uid_and_only_gets_shell_and_home(spec):
    system = FakeSystem(users={"keepalived_script": ("/home/keepalived_script", "/bin/bash")})
    converge(Node(system), spec)
    assert ["usermod", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", "keepalived_script"] in system.mutations()
    assert not any(c[0] == "useradd" for c in system.commands)


def test_a_new_user_joins_an_existing_group_of_its_name_as_the_user_module_does():
    assert account_command("kas", None, group_exists=True)[:2] == ["useradd", "-N"]
    assert account_command("kas", None, group_exists=False)[:2] == ["useradd", "-d"]
    assert account_command("kas", parse_passwd("kas:x:9:9::/nonexistent:/usr/sbin/nologin\n"), False) is None


def test_a_script_directory_that_does_not_exist_fails_naming_it(tmp_path):
    spec = unit_spec("keepalived", str(tmp_path / "missing" / "check"), SCRIPT, "kas", None, DROPIN)
    with pytest.raises(UnitError, match="script_path=.*does not exist"):
        converge(Node(FakeSystem()), spec)


def test_parse_show_reads_the_properties_and_tolerates_unknown_lines():
    status = parse_show("LoadState=loaded\nActiveState=activating\nUnitFileState=enabled\nNeedDaemonReload=yes\nX\n")
    assert status.exists and status.running and status.enabled and status.need_daemon_reload
    assert not parse_show("LoadState=not-found\nActiveState=inactive\n").exists


@pytest.mark.parametrize("args, option", [
    (("keep alived", "/usr/local/sbin/c", SCRIPT, "kas", None, DROPIN), "unit"),
    (("keepalived", "relative/c", SCRIPT, "kas", None, DROPIN), "script_path"),
    (("keepalived", "/usr/local/sbin/c", "exit 0\n", "kas", None, DROPIN), "script_content"),
    (("keepalived", "/usr/local/sbin/c", SCRIPT, "Root User", None, DROPIN), "script_user"),
    (("keepalived", "/usr/local/sbin/c", SCRIPT, "kas", "/etc/systemd/system/haproxy.service.d/x.conf", DROPIN),
     "dropin_path"),
    (("keepalived", "/usr/local/sbin/c", SCRIPT, "kas", None, "  "), "dropin_content"),
])
def test_bad_input_names_the_option(args, option):
    with pytest.raises(InputError) as error:
        unit_spec(*args)
    assert error.value.variable == option


def test_the_default_dropin_path_is_the_units_own_directory():
    spec = unit_spec("keepalived", "/usr/local/sbin/c", SCRIPT, "kas", None, DROPIN)
    assert spec.unit == "keepalived.service"
    assert spec.dropin_path == "/etc/systemd/system/keepalived.service.d/cloudcore-ha.conf"
