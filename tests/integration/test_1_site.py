"""site.yml end to end on the lab: converges, proves itself (verify), and check mode on the converged
site reports no change. A second run's changed=0 is test_6's (the installed collection's run on this
site); a reconfiguration's rolling reload, holder last, is test_3's (keepalived_configure); the
failover drill is test_7's, with edges watching."""

from __future__ import annotations

from conftest import holders, lab, node_exec, run_playbook


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


def test_check_mode_on_a_converged_site_reports_no_change(first_site_run):
    check = run_playbook("site.yml", "--check", "--diff")
    assert check.rc == 0, check.output[-4000:]
    assert set(check.changed.values()) == {0}, check.changed


def test_status_playbook_prints_one_holder(first_site_run):
    status = run_playbook("playbooks/status.yml")
    assert status.rc == 0, status.output[-4000:]
    assert "health check" in status.output, status.output[-3000:]
    assert "hold the VIP" not in status.output, status.output[-3000:]  # the table's split-brain warning
