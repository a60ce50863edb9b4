"""site.yml end to end on the lab: converges, proves itself (verify), and a second run changes nothing."""

from __future__ import annotations

from conftest import holders, lab, run_playbook


def test_first_run_converges_and_verifies(first_site_run):
    assert "VIP 10.213.102.100/24 held by" in first_site_run.output
    assert len(holders()) == 1


def test_edge_reaches_cloudcore_through_the_vip_with_a_certificate_for_it(first_site_run):
    probe = lab("probe")
    assert probe.returncode == 0, probe.stdout + probe.stderr
    node, sans = probe.stdout.split(" ", 1)
    assert node == holders()[0]
    assert "IP:10.213.102.100" in sans


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
