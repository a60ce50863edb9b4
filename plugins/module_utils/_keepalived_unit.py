# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""keepalived's unit on a node, in one pass (the module keepalived_unit): what keepalived's config test
and systemd need before keepalived may start, without starting it.

- the health check script at its path, with the given content, root-owned, mode 0755 (keepalived's
  script security requires root-owned scripts in root-owned directories);
- the unprivileged system user that runs it (nologin shell, home /nonexistent, not created), made
  with useradd as the builtin user module would, or corrected with usermod;
- the systemd drop-in (its directory created), then `systemctl daemon-reload` when the drop-in's
  content changed or systemd says the unit's files changed since it read them;
- the unit enabled when it is not.

It reports whether the unit is running, and never starts, stops or reloads it: the role starts
keepalived one node at a time in preference order.

Check mode reads everything, reports what would change (with a diff) and changes nothing. In check
mode on a fresh node the unit may not exist yet (its package would be installed first): that is
reported, not refused; outside check mode a missing or masked unit fails before anything changes.

The pure parts (parsing `systemctl show` and `getent passwd`, what to run for the user, what differs
in a file) are plain functions; converge() drives them through a Node, which wraps a module-like
object (AnsibleModule, or a stand-in in the unit tests: run_command, get_bin_path, atomic_move,
check_mode). No Ansible imports.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import InputError, parse_path, parse_user

SBIN = ["/usr/sbin", "/sbin", "/usr/local/sbin"]
SYSTEMD_SYSTEM_DIR = "/etc/systemd/system"
DROPIN_NAME = "cloudcore-ha.conf"
SCRIPT_MODE = 0o755
DROPIN_MODE = 0o644
DIRECTORY_MODE = 0o755
USER_SHELL = "/usr/sbin/nologin"
USER_HOME = "/nonexistent"
# `systemctl is-enabled` states the builtin systemd_service module counts as enabled (enabled-runtime,
# indirect and alias it enables again, as here)
ENABLED_STATES = ("enabled", "static", "generated", "transient")
# ActiveState values of a running unit (systemd_service: active and activating; reloading runs too)
RUNNING_STATES = ("active", "activating", "reloading")
SHOW_PROPERTIES = ("LoadState", "ActiveState", "SubState", "UnitFileState", "NeedDaemonReload")
_UNIT = re.compile(r"^[A-Za-z0-9:_.@-]+$")
_UNIT_SUFFIXES = (".service",)


class UnitError(Exception):
    """The node refuses: a command failed, or the unit is missing or masked. The message says what and why."""


# -- the input ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class UnitSpec:
    unit: str          # the full unit name, e.g. keepalived.service
    script_path: str
    script: bytes
    script_user: str
    dropin_path: str
    dropin: bytes

    @property
    def dropin_dir(self) -> str:
        return os.path.dirname(self.dropin_path)


def unit_name(value: object, option: str = "unit") -> str:
    """A systemd service name; `.service` is implied."""
    if not isinstance(value, str) or not _UNIT.match(value):
        raise InputError(option, value, "must be a systemd unit name (letters, digits, : _ . @ -), e.g. keepalived")
    return value if value.endswith(_UNIT_SUFFIXES) else value + ".service"


def default_dropin_path(unit: str) -> str:
    return "%s/%s.d/%s" % (SYSTEMD_SYSTEM_DIR, unit, DROPIN_NAME)


def unit_spec(unit: object, script_path: object, script_content: object, script_user: object,
              dropin_path: object, dropin_content: object) -> UnitSpec:
    """The module's options, checked; raises InputError naming the first option that breaks a rule."""
    name = unit_name(unit)
    path = parse_path(script_path, "script_path")
    if not isinstance(script_content, str) or not script_content.startswith("#!"):
        raise InputError("script_content", _short(script_content),
                         "must be the script's text, starting with an interpreter line (#!): keepalived executes it")
    user = parse_user(script_user, "script_user")
    dropin = default_dropin_path(name) if dropin_path in (None, "") else parse_path(dropin_path, "dropin_path")
    if os.path.basename(os.path.dirname(dropin)) != name + ".d" or not dropin.endswith(".conf"):
        raise InputError("dropin_path", dropin_path, "must be a .conf file in a directory named %s.d: systemd reads"
                                                     " the drop-ins of %s only there" % (name, name))
    if not isinstance(dropin_content, str) or not dropin_content.strip():
        raise InputError("dropin_content", _short(dropin_content), "must be the drop-in's text, e.g. [Service] lines")
    return UnitSpec(name, path, script_content.encode("utf-8"), user, dropin, dropin_content.encode("utf-8"))


def _short(value: object) -> object:
    return value[:60] + "..." if isinstance(value, str) and len(value) > 60 else value


# -- what the node says --------------------------------------------------------------------------

@dataclass(frozen=True)
class UnitStatus:
    """The unit as `systemctl show` reports it."""

    load_state: str
    active_state: str
    sub_state: str
    unit_file_state: str
    need_daemon_reload: bool

    @property
    def exists(self) -> bool:
        return self.load_state == "loaded"

    @property
    def masked(self) -> bool:
        return self.load_state == "masked" or self.unit_file_state.startswith("masked")

    @property
    def running(self) -> bool:
        return self.active_state in RUNNING_STATES

    @property
    def enabled(self) -> bool:
        return self.unit_file_state in ENABLED_STATES

    def describe(self) -> str:
        return "LoadState=%s ActiveState=%s SubState=%s UnitFileState=%s" % (
            self.load_state, self.active_state, self.sub_state, self.unit_file_state or "-")


def parse_show(text: str) -> UnitStatus:
    """`systemctl show -p LoadState -p ActiveState ...` (Key=Value lines) as a UnitStatus."""
    values = {}  # type: Dict[str, str]
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return UnitStatus(load_state=values.get("LoadState", ""), active_state=values.get("ActiveState", ""),
                      sub_state=values.get("SubState", ""), unit_file_state=values.get("UnitFileState", ""),
                      need_daemon_reload=values.get("NeedDaemonReload", "no") == "yes")


@dataclass(frozen=True)
class Account:
    """One passwd entry."""

    name: str
    uid: int
    gid: int
    home: str
    shell: str

    def describe(self) -> str:
        return "user %s: uid %d, home %s, shell %s\n" % (self.name, self.uid, self.home, self.shell)


def parse_passwd(line: str) -> Optional[Account]:
    """The first line of `getent passwd NAME`; None when there is none."""
    fields = line.strip().splitlines()[0].split(":") if line.strip() else []
    if len(fields) < 7:
        return None
    try:
        return Account(fields[0], int(fields[2]), int(fields[3]), fields[5], fields[6])
    except ValueError:
        return None


def account_command(user: str, account: Optional[Account], group_exists: bool) -> Optional[List[str]]:
    """The useradd or usermod arguments (without the binary) that give `user` what the health check
    needs, or None when it has it. As the builtin user module does with system=true, shell nologin,
    home /nonexistent, create_home=false: a new user is a system user (-r) without a home (-M), and
    when a group of its name exists already it joins none of its own making (-N); an existing user
    keeps its uid and groups and only gets the shell and home."""
    if account is None:
        return (["useradd"] + (["-N"] if group_exists else []) +
                ["-d", USER_HOME, "-s", USER_SHELL, "-M", "-r", user])
    changes = (["-d", USER_HOME] if account.home != USER_HOME else []) + \
              (["-s", USER_SHELL] if account.shell != USER_SHELL else [])
    return ["usermod"] + changes + [user] if changes else None


def wanted_account(user: str) -> str:
    return "user %s: system user, home %s (not created), shell %s\n" % (user, USER_HOME, USER_SHELL)


@dataclass(frozen=True)
class FileFacts:
    """A path as found: its content (None for a directory), owner, group and permission bits."""

    content: Optional[bytes]
    uid: int
    gid: int
    mode: int
    directory: bool = False

    def describe(self) -> str:
        return "uid %d, gid %d, mode %04o\n" % (self.uid, self.gid, self.mode)


def attributes_differ(found: FileFacts, mode: int, owner: Optional[int]) -> bool:
    return found.mode != mode or (owner is not None and (found.uid, found.gid) != (owner, owner))


def wanted_attributes(mode: int, owner: Optional[int]) -> str:
    return ("uid %d, gid %d, mode %04o\n" % (owner, owner, mode)) if owner is not None else "mode %04o\n" % mode


# -- the outcome ----------------------------------------------------------------------------------

@dataclass
class Outcome:
    unit: str
    changes: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    diffs: List[Dict[str, str]] = field(default_factory=list)
    exists: bool = False
    active: bool = False
    enabled: bool = False
    daemon_reloaded: bool = False
    state: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def change(self, what: str, header: Optional[str] = None, before: str = "", after: str = "") -> None:
        self.changes.append(what)
        if header is not None:
            self.diffs.append({"before_header": header, "after_header": header, "before": before, "after": after})

    def as_dict(self) -> Dict[str, Any]:
        return {"changed": self.changed, "unit": self.unit, "changes": list(self.changes), "notes": list(self.notes),
                "exists": self.exists,
                "active": self.active, "enabled": self.enabled, "daemon_reloaded": self.daemon_reloaded,
                "state": self.state}


# -- the node -------------------------------------------------------------------------------------

def _text(data: Any) -> str:
    return data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else str(data or "")


class Node(object):
    """The commands and files of one node, through a module-like object."""

    def __init__(self, module: Any):
        self.module = module

    @property
    def check_mode(self) -> bool:
        return bool(self.module.check_mode)

    @property
    def owner(self) -> Optional[int]:
        """root's uid when we are root (files are then made root's); None otherwise (tests as a user)."""
        return 0 if os.geteuid() == 0 else None

    def run(self, tool: str, args: List[str], ok: Tuple[int, ...] = (0,)) -> Tuple[int, str]:
        binary = self.module.get_bin_path(tool, required=False, opt_dirs=SBIN)
        if binary is None:
            raise UnitError("%s is not installed on this node (looked in PATH and %s)" % (tool, ", ".join(SBIN)))
        rc, out, err = self.module.run_command([binary] + args, check_rc=False)
        if rc not in ok:
            raise UnitError("%s %s failed (exit %d): %s" % (tool, " ".join(args), rc, (_text(err) or _text(out)).strip()))
        return rc, _text(out)

    def unit_status(self, unit: str) -> UnitStatus:
        args = ["show"] + [arg for name in SHOW_PROPERTIES for arg in ("-p", name)] + [unit]
        return parse_show(self.run("systemctl", args)[1])

    def account(self, user: str) -> Optional[Account]:
        rc, out = self.run("getent", ["passwd", user], ok=(0, 2))
        return parse_passwd(out) if rc == 0 else None

    def group_exists(self, group: str) -> bool:
        return self.run("getent", ["group", group], ok=(0, 2))[0] == 0

    @staticmethod
    def facts(path: str) -> Optional[FileFacts]:
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return None
        if stat.S_ISDIR(info.st_mode):
            return FileFacts(None, info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode), directory=True)
        if not stat.S_ISREG(info.st_mode):
            raise UnitError("%s exists and is neither a regular file nor a directory" % path)
        with open(path, "rb") as handle:
            return FileFacts(handle.read(), info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode))

    def set_attributes(self, path: str, mode: int) -> None:
        if self.owner is not None:
            os.chown(path, self.owner, self.owner)
        os.chmod(path, mode)

    def write(self, path: str, content: bytes, mode: int) -> None:
        """Atomically: a private temporary file beside it, its owner and mode set, then moved over it."""
        fd, tmp = tempfile.mkstemp(prefix=".cloudcore-ha.", dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
            self.set_attributes(tmp, mode)
            self.module.atomic_move(tmp, path, unsafe_writes=False)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        # atomic_move may keep the old file's owner and mode: make them ours
        self.set_attributes(path, mode)

    def mkdir(self, path: str, mode: int) -> None:
        os.mkdir(path, mode)
        self.set_attributes(path, mode)


# -- one pass -------------------------------------------------------------------------------------

def converge(node: Node, spec: UnitSpec, out: Optional[Outcome] = None) -> Outcome:
    """Everything keepalived's unit needs before it may start, in one pass; never starts it. Pass `out`
    to keep what was done when a later step raises UnitError."""
    out = out if out is not None else Outcome(spec.unit)
    status = node.unit_status(spec.unit)
    if status.masked:
        raise UnitError("unit=%r: %s is masked (%s), so systemd will not run it; unmask it (systemctl unmask %s)"
                        % (spec.unit.rsplit(".", 1)[0], spec.unit, status.describe(), spec.unit))
    if not status.exists and not node.check_mode:
        raise UnitError("unit=%r: systemd knows no %s (%s): install its package first"
                        % (spec.unit.rsplit(".", 1)[0], spec.unit, status.describe()))
    script_dir = os.path.dirname(spec.script_path)
    if not os.path.isdir(script_dir):
        raise UnitError("script_path=%r: the directory %s does not exist (it must be an existing root-owned"
                        " directory, writable by root only)" % (spec.script_path, script_dir))
    ensure_file(node, out, spec.script_path, spec.script, SCRIPT_MODE, "the health check script")
    ensure_account(node, out, spec.script_user)
    ensure_directory(node, out, spec.dropin_dir)
    dropin_changed = ensure_file(node, out, spec.dropin_path, spec.dropin, DROPIN_MODE, "the unit drop-in")
    out.exists = status.exists
    out.active = status.running
    out.state = status.active_state
    if status.exists and (dropin_changed or status.need_daemon_reload):
        if not node.check_mode:
            node.run("systemctl", ["daemon-reload"])
        out.daemon_reloaded = True
        reason = "the drop-in changed" if dropin_changed else "systemd reported NeedDaemonReload=yes for " + spec.unit
        out.change("systemd reloaded its units (%s)" % reason)
    if not status.exists:
        out.notes.append("%s does not exist yet (check mode: its package is not installed): the real run enables it"
                         " once it does" % spec.unit)
        return out
    if not status.enabled:
        if not node.check_mode:
            node.run("systemctl", ["enable", spec.unit])
        out.change("%s enabled" % spec.unit, "%s (enabled)" % spec.unit,
                   (status.unit_file_state or "unknown") + "\n", "enabled\n")
    out.enabled = True
    return out


def ensure_file(node: Node, out: Outcome, path: str, content: bytes, mode: int, what: str) -> bool:
    """The file with this content and mode (and root's when we are root); True when its content changed."""
    found = node.facts(path)
    if found is not None and found.directory:
        raise UnitError("%s: %s is a directory" % (what, path))
    owner = node.owner
    if found is None or found.content != content:
        if not node.check_mode:
            node.write(path, content, mode)
        out.change("%s %s: %s" % (what, path, "created" if found is None else "content replaced"), path,
                   _text(found.content) if found is not None else "", _text(content))
        if found is not None and attributes_differ(found, mode, owner):
            out.diffs.append(_attributes_diff(path, found, mode, owner))
        return True
    if attributes_differ(found, mode, owner):
        if not node.check_mode:
            node.set_attributes(path, mode)
        diff = _attributes_diff(path, found, mode, owner)
        out.change("%s %s: owner or mode set" % (what, path), diff["before_header"], diff["before"], diff["after"])
    return False


def ensure_directory(node: Node, out: Outcome, path: str) -> None:
    found = node.facts(path)
    owner = node.owner
    if found is None:
        if not os.path.isdir(os.path.dirname(path)):
            raise UnitError("dropin_path: the directory %s does not exist (is systemd installed?)" % os.path.dirname(path))
        if not node.check_mode:
            node.mkdir(path, DIRECTORY_MODE)
        out.change("directory %s created" % path, path, "absent\n", "directory, " + wanted_attributes(DIRECTORY_MODE, owner))
        return
    if not found.directory:
        raise UnitError("dropin_path: %s exists and is not a directory" % path)
    if attributes_differ(found, DIRECTORY_MODE, owner):
        if not node.check_mode:
            node.set_attributes(path, DIRECTORY_MODE)
        diff = _attributes_diff(path, found, DIRECTORY_MODE, owner)
        out.change("directory %s: owner or mode set" % path, diff["before_header"], diff["before"], diff["after"])


def ensure_account(node: Node, out: Outcome, user: str) -> None:
    account = node.account(user)
    command = account_command(user, account, node.group_exists(user) if account is None else False)
    if command is None:
        return
    if not node.check_mode:
        node.run(command[0], command[1:])
    out.change("%s %s" % (user, "created" if account is None else "given shell %s and home %s" % (USER_SHELL, USER_HOME)),
               "user %s" % user, account.describe() if account is not None else "", wanted_account(user))


def _attributes_diff(path: str, found: FileFacts, mode: int, owner: Optional[int]) -> Dict[str, str]:
    header = "%s (owner, group, mode)" % path
    before = found.describe() if owner is not None else "mode %04o\n" % found.mode
    return {"before_header": header, "after_header": header, "before": before, "after": wanted_attributes(mode, owner)}


def result(outcome: Outcome, diff: bool) -> Mapping[str, Any]:
    """What the module returns: the outcome, and its diffs when asked for and anything changed."""
    out = dict(outcome.as_dict())
    if diff and outcome.diffs:
        out["diff"] = list(outcome.diffs)
    return out
