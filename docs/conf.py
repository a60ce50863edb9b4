# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Sphinx configuration of the collection's docs site (`make docs`, scripts/docs).

As `antsibull-docs sphinx-init` writes it, except that the build must work offline: no intersphinx
(it downloads the Ansible docsite's inventory). The few labels of the Ansible docsite that
antsibull-docs' pages point to are resolved by the table below instead; any other unresolved
reference stays a warning, and `sphinx-build -W` fails on it.
"""

from __future__ import annotations

import re

from docutils import nodes

project = "cloudcore.ha"
copyright = "cloudcore.ha contributors"  # noqa: A001 (Sphinx's name)
title = "cloudcore.ha"
html_short_title = "cloudcore.ha"

extensions = ["sphinx_antsibull_ext"]

pygments_style = "ansible"
highlight_language = "YAML+Jinja"

html_theme = "sphinx_ansible_theme"
html_show_sphinx = False
display_version = False
html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False

default_role = "any"
nitpicky = True

ANSIBLE_DOCSITE = "https://docs.ansible.com/projects/ansible/devel/"

# label -> (page and anchor on the Ansible docsite, title when the reference gives none)
ANSIBLE_DOCSITE_LABELS = {
    "common_return_values": ("reference_appendices/common_return_values.html#common-return-values",
                             "Return Values"),
    "ansible_configuration_settings": ("reference_appendices/config.html#ansible-configuration-settings",
                                       "Ansible Configuration Settings"),
}

# another collection's plugin or role page, e.g. ansible_collections.kubernetes.core.k8s_module
# (antsibull-docs lint-collection-docs has already checked that the plugin exists)
OTHER_COLLECTION_PAGE = re.compile(
    r"^ansible_collections\.(?P<ns>\w+)\.(?P<name>\w+)\.(?P<page>\w+_(?:module|filter|test|lookup|callback|connection|"
    r"inventory|become|cache|cliconf|httpapi|netconf|shell|strategy|vars|role))$")


def _resolve_ansible_docsite(app, env, node, contnode):
    if node.get("refdomain") != "std" or node.get("reftype") != "ref":
        return None
    target = node["reftarget"]
    known = ANSIBLE_DOCSITE_LABELS.get(target)
    if known:
        page, text = known
    else:
        match = OTHER_COLLECTION_PAGE.match(target)
        if not match or (match["ns"], match["name"]) == ("cloudcore", "ha"):
            return None  # our own pages must resolve inside this site
        page, text = "collections/{ns}/{name}/{page}.html".format(**match.groupdict()), target
    content = contnode if node.get("refexplicit") else nodes.inline(text, text)
    return nodes.reference("", "", content, refuri=ANSIBLE_DOCSITE + page, internal=False)


def setup(app):
    app.connect("missing-reference", _resolve_ansible_docsite)
