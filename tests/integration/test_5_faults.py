"""Faults on the VIP holder, one kind at a time: exactly one healthy holder within the failover bound
afterwards, and no move back after the heal (fault mode, nopreempt)."""

from __future__ import annotations

import time

import pytest

from conftest import holders, lab, single_holder, wait_for

FAILOVER_BOUND_S = 12  # keepalived-kill: master-down 3.6 s + systemd's stop timeout on cgroup v1 nodes
NO_FAILBACK_WATCH_S = 6
FIGURES = []


def settled_holder():
    return wait_for(single_holder, 20)


@pytest.mark.parametrize("kind", ["cloudcore", "keepalived-kill", "link", "restart"])
def test_fault_moves_the_vip_once_to_a_healthy_node(kind, first_site_run):
    holder = settled_holder()
    assert holder, "no single holder before the fault: %s" % holders()
    started = time.monotonic()
    assert lab("fault", holder, kind).returncode == 0
    try:  # healed whatever happens: a node left broken fails every later test
        new = wait_for(lambda: single_holder(other_than=holder), FAILOVER_BOUND_S)
        seconds = time.monotonic() - started
        assert new, "after %s on %s: holders %s" % (kind, holder, holders())
        probe = lab("probe")
        assert probe.returncode == 0 and probe.stdout.startswith(new + " "), probe.stdout
    finally:
        assert lab("heal", holder, kind).returncode == 0
    deadline = time.monotonic() + NO_FAILBACK_WATCH_S
    while time.monotonic() < deadline:
        assert holders() == [new], "the VIP moved after healing %s on %s" % (kind, holder)
        time.sleep(0.25)
    FIGURES.append((kind, round(seconds, 1), " ".join(holders())))


def test_partition_heals_to_exactly_one_holder_within_5_s(first_site_run):
    holder = settled_holder()
    assert lab("fault", holder, "partition").returncode == 0
    try:
        # Cut off, the holder keeps the VIP while the others elect a new master: two holders are allowed.
        others = wait_for(lambda: [h for h in holders() if h != holder], FAILOVER_BOUND_S)
        assert others, "no other node took the VIP while %s was partitioned: %s" % (holder, holders())
    finally:
        assert lab("heal", holder, "partition").returncode == 0
    healed_at = time.monotonic()
    single = wait_for(single_holder, 5)
    assert single, "still %s 5 s after healing the partition" % holders()
    FIGURES.append(("partition", round(time.monotonic() - healed_at, 1), single))
    # One holder is not yet one address: once (1 run in 3) the edge's connections to the VIP timed out
    # after the heal, likely a stale neighbour entry for the VIP (the node that kept MASTER sent no new
    # gratuitous ARP). Until that is fixed, this waits for the edge to reach the VIP and reports how long.
    answered = wait_for(lambda: lab("probe", "--timeout", "2").returncode == 0, 60, 0.5)
    FIGURES.append(("partition: VIP answers the edge", round(time.monotonic() - healed_at, 1), single))
    assert answered, "the VIP did not answer the edge within 60 s of healing the partition"


def test_print_fault_table():
    print("\nfault            seconds  holders after")
    for kind, seconds, after in FIGURES:
        print("%-16s %7s  %s" % (kind, seconds, after))
