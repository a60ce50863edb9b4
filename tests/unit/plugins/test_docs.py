# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every plugin has documentation that ansible-doc shows."""

from __future__ import annotations

import functools
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


def _filter_files():
    return sorted(os.path.basename(path)[:-3] for path in glob.glob(os.path.join(ROOT, "plugins", "filter", "*.py"))
                  if not os.path.basename(path).startswith("_"))


def test_every_filter_of_every_filter_file_has_docs_and_every_doc_a_filter():
    import importlib

    documented = {name for kind, name in _plugins() if kind == "filter"}
    provided = set()
    for name in _filter_files():
        module = importlib.import_module("ansible_collections.cloudcore.ha.plugins.filter." + name)
        provided |= set(module.FilterModule().filters())
    assert len(_filter_files()) >= 6
    assert provided == documented, (sorted(provided - documented), sorted(documented - provided))


def _same_options(documented, spec, where):
    """The documented options are the spec's, in its order, with its types, defaults, requirements,
    choices and list elements; nested suboptions likewise."""
    assert list(documented) == list(spec), where
    for name, option in spec.items():
        doc, here = documented[name], "%s.%s" % (where, name)
        assert doc["type"] == option["type"], here
        assert doc.get("default") == option.get("default"), here
        assert bool(doc.get("required")) == bool(option.get("required")), here
        assert doc.get("choices") == option.get("choices"), here
        assert doc.get("elements") == option.get("elements"), here
        assert doc.get("description"), here
        assert ("suboptions" in doc) == ("options" in option), here
        if "options" in option:
            _same_options(doc["suboptions"], option["options"], here)


def test_keepalived_config_documents_exactly_the_model():
    """The module's `config` suboptions are documented field by field, as the model declares them."""
    import yaml

    from ansible_collections.cloudcore.ha.plugins.module_utils._keepalived_conf import option_spec
    from ansible_collections.cloudcore.ha.plugins.modules import keepalived_config

    documented = yaml.safe_load(keepalived_config.DOCUMENTATION)["options"]["config"]["suboptions"]
    _same_options(documented, option_spec(exclude=("auth_pass",)), "config")


def test_haproxy_config_documents_exactly_the_model():
    """The same for haproxy_config, down to the fields of each CloudCore server and peer."""
    import yaml

    from ansible_collections.cloudcore.ha.plugins.module_utils._haproxy_conf import option_spec
    from ansible_collections.cloudcore.ha.plugins.modules import haproxy_config

    documented = yaml.safe_load(haproxy_config.DOCUMENTATION)["options"]["config"]["suboptions"]
    _same_options(documented, option_spec(), "config")


@functools.lru_cache(maxsize=None)
def _ansible_doc(kind):
    """One ansible-doc run per plugin type for all our plugins of that type: each run costs about half
    a second of start-up, and this suite runs once per tested ansible-core."""
    names = ["cloudcore.ha." + name for plugin_kind, name in _plugins() if plugin_kind == kind]
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR="1")
    return subprocess.run([ANSIBLE_DOC, "-t", kind] + names, capture_output=True, text=True, env=env, check=False)


@pytest.mark.parametrize("kind, name", _plugins())
def test_ansible_doc_shows_plugin(kind, name):
    if not os.path.exists(ANSIBLE_DOC):
        pytest.skip("ansible-doc is not in this virtualenv")
    proc = _ansible_doc(kind)
    assert proc.returncode == 0, proc.stderr
    assert "cloudcore.ha." + name in proc.stdout
    assert "ERROR" not in proc.stderr and "WARNING" not in proc.stderr, proc.stderr
