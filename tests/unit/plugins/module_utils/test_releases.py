# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The KubeEdge release table and cloudcore_version (plugins/module_utils/_releases.py)."""

from __future__ import annotations

import pytest

from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import InputError
from ansible_collections.cloudcore.ha.plugins.module_utils._releases import (
    DEFAULT_VERSION,
    RELEASES,
    release_facts,
    supported_minors,
)


# ---------------------------------------------------------------- releases

def test_default_version_is_supported_and_newest():
    facts = release_facts(DEFAULT_VERSION)
    assert facts["minor"] == supported_minors()[-1]
    assert facts["image_tag"] == "v" + DEFAULT_VERSION


@pytest.mark.parametrize("minor", sorted(RELEASES))
def test_every_release_is_complete(minor):
    facts = release_facts("%d.%d.0" % minor)
    assert facts["config_api_version"] == "cloudcore.config.kubeedge.io/v1alpha2"
    names = facts["crd_names"]
    assert len(names) == len(set(names))
    for crd in facts["crds"]:
        assert sum(v["storage"] for v in crd["versions"]) == 1
        assert crd["name"] == "%s.%s" % (crd["plural"], crd["group"])
    groups = {g for rule in facts["rbac_rules"] for g in rule["apiGroups"]}
    # every CRD group CloudCore watches is readable
    assert {crd["group"] for crd in facts["crds"]} <= groups
    # least privilege: nothing we switched off, no wildcard
    assert "networking.istio.io" not in groups and "operations.kubeedge.io" not in groups
    assert all("*" not in rule["resources"] and "*" not in rule["verbs"] for rule in facts["rbac_rules"])
    crd_rule = [r for r in facts["rbac_rules"] if r["apiGroups"] == ["apiextensions.k8s.io"]]
    assert crd_rule and crd_rule[0]["verbs"] == ["get", "list", "watch"]


def test_1_23_adds_devicestatus():
    assert "devicestatuses.devices.kubeedge.io" in release_facts("1.23.1")["crd_names"]
    assert "devicestatuses.devices.kubeedge.io" not in release_facts("1.22.0")["crd_names"]
    rules = release_facts("1.23.0")["rbac_rules"]
    assert any("devicestatuses" in r["resources"] for r in rules)


def test_leading_v_is_accepted():
    assert release_facts("v1.23.1")["version"] == "1.23.1"


@pytest.mark.parametrize("bad", ["1.19.0", "2.0.0", "1.23", "latest", 1.23, None, ""])
def test_unsupported_version_names_variable_value_and_list(bad):
    with pytest.raises(InputError) as err:
        release_facts(bad)
    text = str(err.value)
    assert text.startswith("cloudcore_version=")
    assert repr(bad) in text
    if bad == "1.19.0":
        assert "1.22.x" in text and "1.23.x" in text


def test_the_release_of_an_image_reference():
    from ansible_collections.cloudcore.ha.plugins.module_utils._releases import image_version
    assert image_version("kubeedge/cloudcore:v1.23.1") == (1, 23, 1)
    assert image_version("registry.local:5000/kubeedge/cloudcore:1.22.2") == (1, 22, 2)
    assert image_version("kubeedge/cloudcore:v1.23.1-rc.1") == (1, 23, 1)
    assert image_version("kubeedge/cloudcore:latest") is None
    assert image_version("registry.local:5000/cloudcore") is None
    assert image_version(None) is None
