# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""keepalived's own config test (keepalived -t -e -f) on a rendered keepalived.conf.

The only part of the keepalived code that touches processes and files: it writes the text to a
private temporary file and runs keepalived through a command runner the caller passes (the module
passes AnsibleModule.run_command, tests pass subprocess), so Ansible owns how commands run on a host.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple


@dataclass
class ConfigTestResult:
    ok: bool
    returncode: int
    output: str
    notes: List[str] = field(default_factory=list)


# Runs a command and returns (exit code, combined output). The module passes a wrapper around
# AnsibleModule.run_command; tests pass one around subprocess. Keeping the process handling out of
# this file keeps it plain Python and lets Ansible own how commands run on the host.
CommandRunner = Callable[[List[str]], Tuple[int, str]]


def _excerpt(text: str, limit: int = 40) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-limit:])


_KILLED_BY_SIGTERM = (-15, 143)
_SCRIPT_USER_RE = re.compile(r"^(\s*script_user\s+)\S+", re.MULTILINE)
_VERSION_RE = re.compile(r"Keepalived v(\d+)\.(\d+)\.(\d+)")
# The first release whose config test no longer kills itself with a non-root script_user
# (acassen/keepalived aae8e910 "config_check: Don't kill process when checking validity of scripts").
FIXED_SCRIPT_USER_TEST = (2, 2, 8)


def parse_version(text: str) -> Optional[Tuple[int, int, int]]:
    """(major, minor, patch) from `keepalived --version` output ("Keepalived v2.3.3 (03/30,2025)")."""
    match = _VERSION_RE.search(text or "")
    return (int(match.group(1)), int(match.group(2)), int(match.group(3))) if match else None


def keepalived_config_test(text: str, run: CommandRunner, keepalived: str = "keepalived",
                           unshare: Optional[str] = None,
                           version: Optional[Tuple[int, int, int]] = None) -> ConfigTestResult:
    """Run keepalived's config test on text; returns ok, the exit code and the log excerpt.

    `-e` matters: without it keepalived returns 0 for a missing file. The test needs the
    interfaces to exist, the script user to exist and the scripts to exist in root-owned
    paths (enable_script_security).

    keepalived 2.2.7 (Debian 12) kills itself with SIGTERM in config-test mode whenever the
    script user is not root (after checking a script it compares getppid() with a main pid
    that is 0 in test mode; later versions skip that check in test mode). Running it as PID 1
    of a new PID namespace makes getppid() return 0, so the test completes: pass `unshare`
    (the path of util-linux unshare) to do that. If keepalived still kills itself, the test is
    repeated with script_user root and a note says so.

    With `version` 2.2.8 or later (Debian 13: 2.3.3) the bug is fixed: neither workaround runs, and a
    keepalived that kills itself fails the test rather than being hidden by the retry.
    """
    if version is not None and version >= FIXED_SCRIPT_USER_TEST:
        unshare = None
    notes = []  # type: List[str]
    with tempfile.TemporaryDirectory(prefix="cloudcore-ha-kt-") as tmpdir:
        path = os.path.join(tmpdir, "keepalived.conf")

        def attempt(content: str) -> Tuple[int, str]:
            with open(path, "w") as handle:
                handle.write(content)
            base = [keepalived, "-t", "-e", "-f", path]
            if unshare:
                rc, out = run([unshare, "--pid", "--fork"] + base)
                if not (rc == 1 and out.lstrip().startswith("unshare:")):
                    return rc, out
                notes.append("unshare --pid failed (%s); ran the config test without it"
                             % _excerpt(out, 1))
            return run(base)

        rc, out = attempt(text)
        fixed = version is not None and version >= FIXED_SCRIPT_USER_TEST
        if rc in _KILLED_BY_SIGTERM and _SCRIPT_USER_RE.search(text) and not fixed:
            notes.append("keepalived killed itself during the config test (a keepalived 2.2.x"
                         " bug with a non-root script_user); repeated the test with script_user root")
            rc, out = attempt(_SCRIPT_USER_RE.sub(lambda m: m.group(1) + "root", text))
    return ConfigTestResult(rc == 0, rc, _excerpt(out), notes)
