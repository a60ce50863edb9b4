"""site.yml end to end on the lab: converges, proves itself (verify), and a second run changes nothing."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from conftest import ROOT, holders, lab, node_exec, run_playbook


def test_first_run_converges_and_verifies(first_site_run):
    assert "VIP 10.213.102.100/24 held by" in first_site_run.output
    assert len(holders()) == 1


def test_edge_reaches_cloudcore_through_the_vip_with_a_certificate_for_it(first_site_run):
    probe = lab("probe")
    assert probe.returncode == 0, probe.stdout + probe.stderr
    node, sans = probe.stdout.split(" ", 1)
    assert node == holders()[0]
    assert "IP:10.213.102.100" in sans


def test_the_role_s_unit_drop_in_decides_how_long_a_stop_may_take(first_site_run):
    # the lab's own keepalived drop-in (00-lab.conf, 5 s) sorts before the role's and must not outrank it
    for node in ("ccha-node1", "ccha-node2", "ccha-node3"):
        shown = node_exec(node, "systemctl show -p TimeoutStopUSec keepalived").stdout.strip()
        assert shown == "TimeoutStopUSec=2s", (node, shown)


def test_second_run_changes_nothing(first_site_run):
    second = run_playbook("site.yml")
    assert second.rc == 0, second.output[-4000:]
    assert second.changed and set(second.changed.values()) == {0}, second.changed


def test_check_mode_on_a_converged_site_reports_no_change(first_site_run):
    check = run_playbook("site.yml", "--check", "--diff")
    assert check.rc == 0, check.output[-4000:]
    assert set(check.changed.values()) == {0}, check.changed


def test_status_playbook_prints_one_holder(first_site_run):
    status = run_playbook("playbooks/status.yml")
    assert status.rc == 0, status.output[-4000:]
    assert "health check" in status.output, status.output[-3000:]
    assert "hold the VIP" not in status.output, status.output[-3000:]  # the table's split-brain warning


def test_failover_drill_moves_the_vip_once_and_not_back(first_site_run):
    before = holders()
    drill = run_playbook("playbooks/failover_drill.yml", "-e", "drill_watch_seconds=8")
    assert drill.rc == 0, drill.output[-4000:]
    assert "failover drill: %s -> " % before[0] in drill.output, drill.output[-3000:]
    assert "VIP moves after the restore: 0 in 8 s" in drill.output, drill.output[-3000:]
    assert len(holders()) == 1 and holders() != before


def reload_order(output: str) -> list:
    """The nodes the rolling-reload handler took, in order, from ansible-playbook's output."""
    section = output.split("RUNNING HANDLER [cloudcore.ha.keepalived : Reload keepalived", 1)
    if len(section) < 2:
        return []
    handler = re.split(r"\n(?:TASK|RUNNING HANDLER|PLAY) \[", section[1], maxsplit=1)[0]
    return re.findall(r"\(item=(\S+)\)", handler)


def watch_vip(seconds: float) -> subprocess.Popen:
    """Who answers for the VIP, sampled every 50 ms from the edge namespace (bounded in time)."""
    return subprocess.Popen(["ip", "netns", "exec", "ccha-edge", "python3", os.path.join(ROOT, "tests", "bench", "vip_watch.py"),
                             "10.213.102.100", "--seconds", str(seconds), "--interval", "0.05"],
                            stdout=subprocess.PIPE, text=True)


@pytest.mark.parametrize("extra", [("-e", "cloudcore_check_interval=2"), ()], ids=["change", "change-back"])
def test_a_reconfiguration_reloads_backups_first_and_the_vip_stays_served(first_site_run, extra):
    holder = holders()
    assert len(holder) == 1
    watcher = watch_vip(seconds=120)
    try:
        run = run_playbook("site.yml", *extra)
    finally:
        watcher.terminate()
        samples = watcher.communicate(timeout=30)[0].split()[1::2]
    assert run.rc == 0, run.output[-4000:]
    order = reload_order(run.output)
    assert sorted(order) == ["ccha-node1", "ccha-node2", "ccha-node3"], run.output[-4000:]
    assert order[-1] == holder[0], "the VIP holder must reload last: %s" % order
    assert samples and "none" not in samples, "the VIP went unanswered during the rolling reload"
    assert set(samples) == set(holder) and holders() == holder
