# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters cloudcore.ha.kubeedge_* for the node_labels and manifests roles (docs in the .yml files)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudcore.ha.plugins.module_utils._inputs import InputError
from ansible_collections.cloudcore.ha.plugins.module_utils._releases import release_facts as _release_facts
from ansible_collections.cloudcore.ha.plugins.plugin_utils._kubeedge import (
    apply_plan as _apply_plan,
    deletion_costs as _deletion_costs,
    documents as _documents,
    labelled_nodes as _labelled_nodes,
    live_mode as _live_mode,
    node_label_plan as _node_label_plan,
    ready_pod as _ready_pod,
    rollout_complete as _rollout_complete,
)


def _call(name, func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except InputError as error:
        raise AnsibleFilterError("cloudcore.ha.%s: %s" % (name, error))


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


def kubeedge_documents(texts):
    return _call("kubeedge_documents", _documents, texts)


def kubeedge_apply_plan(docs, existing_crds=None, live_configmap=None, install_crds=True,
                        namespace_exists=True, check_mode=False, live_deployment=None):
    crds = [r.get("metadata", {}).get("name") for r in _resources(existing_crds or [])]
    live = _resources(live_configmap) if live_configmap is not None else []
    if isinstance(namespace_exists, (dict, list)):  # a k8s_info result for the namespace
        namespace_exists = bool(_resources(namespace_exists))
    deployments = _resources(live_deployment) if live_deployment is not None else []
    return _call("kubeedge_apply_plan", _apply_plan, docs, crds, live[0] if live else None,
                 bool(install_crds), bool(namespace_exists), bool(check_mode),
                 deployments[0] if deployments else None)


def kubeedge_deletion_costs(pods, hosts_in_order, site):
    return _call("kubeedge_deletion_costs", _deletion_costs, _resources(pods), list(hosts_in_order or []),
                 site or {})


def kubeedge_rollout_complete(deployment):
    found = _resources(deployment)
    return _call("kubeedge_rollout_complete", _rollout_complete, found[0] if found else None)


def kubeedge_live_mode(live_configmap):
    live = _resources(live_configmap) if live_configmap is not None else []
    return _call("kubeedge_live_mode", _live_mode, live[0] if live else None)


def kubeedge_labelled_nodes(nodes, label):
    return _call("kubeedge_labelled_nodes", _labelled_nodes, _resources(nodes), label)


def kubeedge_node_label_plan(nodes, wanted, label, prune=False, unwanted=None):
    return _call("kubeedge_node_label_plan", _node_label_plan, _resources(nodes), list(wanted or []),
                 label, bool(prune), list(unwanted or []))


def kubeedge_ready_pod(pods, excluding=None):
    uids = [r.get("metadata", {}).get("uid") for r in _resources(excluding or [])] \
        if isinstance(excluding, dict) else list(excluding or [])
    return _call("kubeedge_ready_pod", _ready_pod, _resources(pods), uids)


class FilterModule(object):
    def filters(self):
        return {
            "kubeedge_release": kubeedge_release,
            "kubeedge_labelled_nodes": kubeedge_labelled_nodes,
            "kubeedge_documents": kubeedge_documents,
            "kubeedge_apply_plan": kubeedge_apply_plan,
            "kubeedge_node_label_plan": kubeedge_node_label_plan,
            "kubeedge_ready_pod": kubeedge_ready_pod,
            "kubeedge_live_mode": kubeedge_live_mode,
            "kubeedge_rollout_complete": kubeedge_rollout_complete,
            "kubeedge_deletion_costs": kubeedge_deletion_costs,
        }
