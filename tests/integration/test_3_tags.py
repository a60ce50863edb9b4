"""Every tag README names runs alone: after a change that its phase owns it changes that, and only
that (the other phases' state stays as it was); the umbrella tag keepalived and verify, which own no
state of their own to change, run alone on the converged site and change nothing. A change of
keepalived.conf reloads the nodes one at a time, the VIP holder last, and the VIP stays served."""

from __future__ import annotations

import json
import re

import pytest

from conftest import holders, node_exec, run_playbook, samples, snapshot, watch_vip

KEEPALIVED_FILES = "keepalived.conf@"


def node_state(nodes, command):
    return {node: node_exec(node, command).stdout for node in nodes}


def differences(before, after):
    return sorted(key for key in set(before) | set(after) if before.get(key) != after.get(key))


@pytest.fixture
def converged(first_site_run, nodes, kube):
    """A converged site; restore(tag) after the test puts back what the test changed, with that tag alone."""
    tags = []
    yield tags.append
    for tag in tags:
        repair = run_playbook("site.yml", "--tags", tag)
        assert repair.rc == 0, repair.output[-3000:]


def reload_order(output: str) -> list:
    """The nodes the rolling-reload handler took, in order, from ansible-playbook's output."""
    section = output.split("RUNNING HANDLER [cloudcore.ha.keepalived : Reload keepalived", 1)
    if len(section) < 2:
        return []
    handler = re.split(r"\n(?:TASK|RUNNING HANDLER|PLAY) \[", section[1], maxsplit=1)[0]
    return re.findall(r"\(item=(\S+)\)", handler)


def run_watched(*args: str):
    """A run of site.yml, and who answered for the VIP while it ran."""
    watcher = watch_vip("10.213.102.100", seconds=120)
    try:
        run = run_playbook("site.yml", *args)
    finally:
        answers = samples(watcher)
    return run, answers


def assert_rolled_holder_last(run, answers, holder, nodes):
    order = reload_order(run.output)
    assert sorted(order) == sorted(nodes), run.output[-4000:]
    assert order[-1] == holder[0], "the VIP holder must reload last: %s" % order
    assert answers and "none" not in answers, "the VIP went unanswered during the rolling reload"
    assert set(answers) == set(holder) and holders() == holder


@pytest.mark.parametrize("tag", ["keepalived", "verify"])
def test_each_tag_alone_on_a_converged_site_changes_nothing(tag, first_site_run, nodes, kube):
    before = snapshot(nodes, kube)
    run = run_playbook("site.yml", "--tags", tag)
    assert run.rc == 0, run.output[-4000:]
    assert run.changed and set(run.changed.values()) == {0}, run.changed
    assert snapshot(nodes, kube) == before


def test_keepalived_configure_after_a_changed_setting_rewrites_only_keepalived_conf(nodes, kube):
    holder = holders()
    assert len(holder) == 1
    before = snapshot(nodes, kube)
    run, answers = run_watched("--tags", "keepalived_configure", "-e", "cloudcore_check_interval=2")
    assert run.rc == 0, run.output[-4000:]
    changed = differences(before, snapshot(nodes, kube))
    assert changed == sorted(KEEPALIVED_FILES + node for node in nodes), changed
    assert "interval 2" in node_exec(nodes[0], "cat /etc/keepalived/keepalived.conf").stdout
    assert_rolled_holder_last(run, answers, holder, nodes)
    # the tag alone puts the setting back the same way, and the site is as it was
    back, answers = run_watched("--tags", "keepalived_configure")
    assert back.rc == 0, back.output[-4000:]
    assert_rolled_holder_last(back, answers, holder, nodes)
    assert snapshot(nodes, kube) == before


def test_keepalived_install_puts_back_the_health_check_only(converged, nodes, kube):
    node_exec(nodes[1], "rm -f /usr/local/sbin/check_cloudcore")
    before = snapshot(nodes, kube)
    run = run_playbook("site.yml", "--tags", "keepalived_install")
    assert run.rc == 0, run.output[-4000:]
    assert run.changed == {nodes[0]: 0, nodes[1]: 1, nodes[2]: 0}, run.changed
    assert node_exec(nodes[1], "test -x /usr/local/sbin/check_cloudcore").returncode == 0
    assert snapshot(nodes, kube) == before


def test_keepalived_service_starts_a_stopped_keepalived_only(converged, nodes, kube):
    backup = [node for node in nodes if node not in holders()][0]
    node_exec(backup, "systemctl stop keepalived")
    before = snapshot(nodes, kube)
    run = run_playbook("site.yml", "--tags", "keepalived_service")
    assert run.rc == 0, run.output[-4000:]
    assert run.changed == {node: int(node == backup) for node in nodes}, run.changed
    assert node_exec(backup, "systemctl is-active keepalived").stdout.strip() == "active"
    assert snapshot(nodes, kube) == before


def test_keepalived_firewall_runs_alone_after_a_changed_group(converged, nodes, kube):
    before = snapshot(nodes, kube)
    run = run_playbook("site.yml", "--tags", "keepalived_firewall", "-e", "keepalived_multicast_group=224.0.0.19")
    assert run.rc == 0, run.output[-4000:]
    # the lab's nodes run no firewall: nothing to change, and keepalived.conf is not this phase's
    assert snapshot(nodes, kube) == before and set(run.changed.values()) == {0}, run.changed
    assert "Set the VRRP rules of the active host firewalls" in run.output


def test_node_labels_puts_back_a_removed_label_only(converged, nodes, kube):
    core, _apps = kube
    core.patch_node(nodes[2], {"metadata": {"labels": {"kubeedge.io/cloudcore-ha": None}}})
    before = snapshot(nodes, kube)
    run = run_playbook("site.yml", "--tags", "node_labels")
    assert run.rc == 0, run.output[-4000:]
    assert differences(before, snapshot(nodes, kube)) == ["node@" + nodes[2]]
    assert core.read_node(nodes[2]).metadata.labels.get("kubeedge.io/cloudcore-ha") == "true"


def test_manifests_after_a_changed_setting_change_only_the_cluster_objects(converged, nodes, kube):
    before = snapshot(nodes, kube)
    run = run_playbook("site.yml", "--tags", "manifests", "-e", json.dumps({"manifests_node_limit": 999}))
    converged("manifests")
    assert run.rc == 0, run.output[-4000:]
    changed = differences(before, snapshot(nodes, kube))
    assert "configmap@cloudcore" in changed and "deployment@cloudcore" in changed, changed
    assert not [key for key in changed if key.startswith(KEEPALIVED_FILES) or key.startswith("node@")], changed
