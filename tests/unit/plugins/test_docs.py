# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every plugin has documentation that ansible-doc shows."""

from __future__ import annotations

import glob
import os
import subprocess
import sys

import pytest

import ansible_collections.cloudcore.ha as collection_package

ROOT = os.path.dirname(os.path.abspath(collection_package.__file__)) if getattr(collection_package, "__file__", None) \
    else os.path.abspath(list(collection_package.__path__)[0])
COLLECTIONS = os.path.abspath(os.path.join(ROOT, "..", "..", ".."))
ANSIBLE_DOC = os.path.join(os.path.dirname(sys.executable), "ansible-doc")


def _plugins():
    found = []
    for path in sorted(glob.glob(os.path.join(ROOT, "plugins", "modules", "*.py"))):
        name = os.path.basename(path)[:-3]
        if not name.startswith("_"):
            found.append(("module", name))
    for path in sorted(glob.glob(os.path.join(ROOT, "plugins", "filter", "*.yml"))):
        found.append(("filter", os.path.basename(path)[:-4]))
    return found


def test_every_filter_function_has_docs():
    from ansible_collections.cloudcore.ha.plugins.filter import certs, preflight, vrrp
    documented = {name for kind, name in _plugins() if kind == "filter"}
    for module in (vrrp, certs, preflight):
        assert set(module.FilterModule().filters()) <= documented


@pytest.mark.parametrize("kind, name", _plugins())
def test_ansible_doc_shows_plugin(kind, name):
    if not os.path.exists(ANSIBLE_DOC):
        pytest.skip("ansible-doc is not in this virtualenv")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([ANSIBLE_DOC, "-t", kind, "cloudcore.ha." + name], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "cloudcore.ha." + name in proc.stdout
    assert "ERROR" not in proc.stderr and "WARNING" not in proc.stderr, proc.stderr
