# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters cloudcore.ha.kubeedge_* for the node_labels and manifests roles (docs in the .yml files)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudcore.ha.plugins.plugin_utils._kubeedge import (
    KubeEdgeError,
    apply_plan as _apply_plan,
    check_label as _check_label,
    documents as _documents,
    labelled_nodes as _labelled_nodes,
    node_label_plan as _node_label_plan,
    node_names as _node_names,
    release_facts as _release_facts,
    vip_address as _vip_address,
)


def _call(name, func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except KubeEdgeError as exc:
        raise AnsibleFilterError("cloudcore.ha.%s: %s" % (name, exc))


def _resources(value):
    """k8s_info results (dict with 'resources'), a list of them, or plain objects."""
    if isinstance(value, dict) and "resources" in value:
        return list(value["resources"])
    if isinstance(value, dict) and "results" in value:
        return [r for item in value["results"] for r in _resources(item)]
    if isinstance(value, list):
        out = []
        for item in value:
            out.extend(_resources(item) if isinstance(item, dict) and ("resources" in item or "results" in item)
                       else [item])
        return out
    return []


def kubeedge_release(version, variable="cloudcore_version"):
    return _call("kubeedge_release", _release_facts, version, variable)


def kubeedge_vip_address(vip, variable="cloudcore_vip"):
    return _call("kubeedge_vip_address", _vip_address, vip, variable)


def kubeedge_label(label, variable="cloudcore_node_label"):
    return _call("kubeedge_label", _check_label, label, variable)


def kubeedge_documents(texts):
    return _call("kubeedge_documents", _documents, texts)


def kubeedge_apply_plan(docs, existing_crds=None, live_configmap=None, install_crds=True,
                        namespace_exists=True, check_mode=False):
    crds = [r.get("metadata", {}).get("name") for r in _resources(existing_crds or [])]
    live = _resources(live_configmap) if live_configmap is not None else []
    if isinstance(namespace_exists, (dict, list)):  # a k8s_info result for the namespace
        namespace_exists = bool(_resources(namespace_exists))
    return _call("kubeedge_apply_plan", _apply_plan, docs, crds, live[0] if live else None,
                 bool(install_crds), bool(namespace_exists), bool(check_mode))


def kubeedge_node_names(hosts, hostvars, variable="cloudcore_node_name"):
    return _call("kubeedge_node_names", _node_names, list(hosts or []), hostvars, variable)


def kubeedge_labelled_nodes(nodes, label):
    return _call("kubeedge_labelled_nodes", _labelled_nodes, _resources(nodes), label)


def kubeedge_node_label_plan(nodes, wanted, label, prune=False):
    return _call("kubeedge_node_label_plan", _node_label_plan, _resources(nodes), list(wanted or []),
                 label, bool(prune))


class FilterModule(object):
    def filters(self):
        return {
            "kubeedge_release": kubeedge_release,
            "kubeedge_vip_address": kubeedge_vip_address,
            "kubeedge_label": kubeedge_label,
            "kubeedge_labelled_nodes": kubeedge_labelled_nodes,
            "kubeedge_documents": kubeedge_documents,
            "kubeedge_apply_plan": kubeedge_apply_plan,
            "kubeedge_node_names": kubeedge_node_names,
            "kubeedge_node_label_plan": kubeedge_node_label_plan,
        }
