"""Day 2 on the lab, with 50 edges watching (issue 14): a node added (3 -> 4) and removed again, the
VIP holder removed and added back, a removal that would leave one node and a downgrade refused, the
VIP changed and the old one retired. Each step is one run of site.yml from the inventory; the tests
judge what the edges and the VIP saw meanwhile.

The tests run in file order and share one fleet: each starts from the site the previous one left, and
the VIP change comes last (the other tests' `holders()` watch the lab's VIP); the module puts the lab's
VIP back when it ends. A run of site.yml costs 40-75 s on the lab, so each step runs once; the last test
runs site.yml a second time and in check mode on the site all the steps left. make test runs every step
(~10 minutes); `make integration-day2` runs this module alone. Figures are printed at the end (`-s`) for
README's "Day 2"."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from conftest import LAB_DIR, holders, lab, node_exec, run_playbook, samples, snapshot, wait_for, watch_vip

EDGES = 50
FLEET = "day2"
OLD_VIP = "10.213.102.100"
NEW_VIP = "10.213.102.101"  # same subnet and interface; the lab's edges reach it through their gateway
OLD_RELEASE, NEW_RELEASE = "1.22.2", "1.23.1"
# what 1.23 adds to the 1.22 table (plugins/module_utils/_releases.py RELEASES; kubeedge #6534)
DEVICE_STATUS_CRD = "devicestatuses.devices.kubeedge.io"
FIGURES: dict = {}
REMOVED: list = []  # the holder a test removed, for the next to add back
# what the collection puts on a node (the package's own files stay)
OURS = ("/etc/keepalived/keepalived.conf", "/etc/systemd/system/keepalived.service.d/cloudcore-ha.conf",
        "/usr/local/sbin/check_cloudcore")


def fleet_status(name=FLEET):
    with open(os.path.join(LAB_DIR, "edges", name, "status.json")) as handle:
        return json.load(handle)


def extra_inventory(tmp_path, **host_vars):
    """An inventory source added to the lab's: host variables for hosts of group cloudcore."""
    path = tmp_path / "day2.yml"
    path.write_text(json.dumps({"all": {"children": {"cloudcore": {"hosts": host_vars}}}}))
    return str(path)


class Watch:
    """Who answers on VIP:10002 every 50 ms (from the edge namespace), and how many CloudCore pods
    are not Ready, while a run goes on."""

    def __init__(self, kube, vip=OLD_VIP):
        self.core = kube[0]
        self.unready, self.stop = [], threading.Event()
        self.vip_watch = watch_vip(vip, seconds=600)
        self.pods = threading.Thread(target=self._watch_pods)
        self.pods.start()
        self.samples = []

    def _watch_pods(self):
        while not self.stop.is_set():
            pods = self.core.list_namespaced_pod("kubeedge", label_selector="k8s-app=kubeedge,kubeedge=cloudcore").items
            ready = [p for p in pods if any(c.type == "Ready" and c.status == "True"
                                            for c in (p.status.conditions or []))]
            self.unready.append((len(pods), len(ready)))
            time.sleep(1.0)  # a pod takes seconds to be replaced; a busier poll slows the API

    def done(self):
        self.samples = samples(self.vip_watch)
        self.stop.set()
        self.pods.join()
        return self

    @property
    def moves(self):
        answered = [s for s in self.samples if s != "none"]
        return sum(1 for a, b in zip(answered, answered[1:]) if a != b)

    @property
    def longest_gap_s(self):
        runs = "".join("x" if s == "none" else "." for s in self.samples).split(".")
        return max((len(run) for run in runs), default=0) * 0.05


def run_watched(kube, *args, vip=OLD_VIP):
    before = fleet_status()
    watch = Watch(kube, vip)
    try:
        run = run_playbook("site.yml", *args)
    finally:
        watch.done()
    assert run.rc == 0, run.output[-6000:]
    return run, watch, before


def deployment_pods(kube):
    pods = kube[0].list_namespaced_pod("kubeedge", label_selector="k8s-app=kubeedge,kubeedge=cloudcore").items
    return sorted((p.spec.node_name or "", p.spec.containers[0].image) for p in pods
                  if not p.metadata.deletion_timestamp)


def image_tags(kube):
    """The image tags of the Deployment's live pods (v1.22.2, v1.23.1)."""
    return {image.rsplit(":", 1)[1] for _node, image in deployment_pods(kube)}


def wait_every_edge_back(count=EDGES, name=FLEET, seconds=150):
    return wait_for(lambda: fleet_status(name)["connected_total"] == count, seconds, 1.0)


def nothing_of_ours(node, kube):
    """Files, unit state and firewall rules of the collection on a node taken out of the site, and its label."""
    left = node_exec(node, "ls -d %s 2>/dev/null; systemctl is-enabled keepalived; systemctl is-active keepalived;"
                           " nft list ruleset | grep -c cloudcore-ha; ls /etc/cloudcore-ha 2>/dev/null" % " ".join(OURS))
    labels = kube[0].read_node(node).metadata.labels or {}
    return left.stdout.split(), labels.get("kubeedge.io/cloudcore-ha")


def kubeedge_crds(kube):
    from kubernetes import client

    crds = client.ApiextensionsV1Api(kube[0].api_client).list_custom_resource_definition().items
    return sorted(c.metadata.name for c in crds if c.spec.group.endswith(".kubeedge.io"))


def uninstall_kubeedge(kube):
    """The cluster as it was before CloudCore: namespace kubeedge, ClusterRole(Binding) cloudcore and the
    KubeEdge CRDs deleted (what the reset playbook deletes in the cluster); keepalived stays."""
    from kubernetes import client

    core = kube[0]
    rbac = client.RbacAuthorizationV1Api(core.api_client)
    crds = client.ApiextensionsV1Api(core.api_client)
    core.delete_namespace("kubeedge")
    rbac.delete_cluster_role_binding("cloudcore")
    rbac.delete_cluster_role("cloudcore")
    for name in kubeedge_crds(kube):
        crds.delete_custom_resource_definition(name)
    assert wait_for(lambda: "kubeedge" not in [n.metadata.name for n in core.list_namespace().items], 60)


def start_fleet():
    """The day-2 fleet, its edge certificates signed by the CA the site serves now."""
    lab("edges", "down", "--name", FLEET)
    up = lab("edges", "up", "--name", FLEET, "--profile", "edgecore-1.23", "--count", str(EDGES), "--offset", "900")
    assert up.returncode == 0, up.stdout + up.stderr


@pytest.fixture(scope="module")
def day2(first_site_run, kube):
    assert len(holders()) == 1
    start_fleet()
    yield
    for name in (FLEET, FLEET + "-new"):
        lab("edges", "down", "--name", name)
    print("\nDay 2 figures (tests/integration/test_8_day2.py):")
    for key, value in FIGURES.items():
        print("  %s: %s" % (key, value))
    if holders(NEW_VIP):  # the VIP change ran: the modules after this one use the lab's inventory (OLD_VIP)
        back = run_playbook("site.yml", "-e", "cloudcore_rotate_cert=true")
        assert back.rc == 0 and holders() and not holders(NEW_VIP), back.output[-6000:]


def test_an_upgrade_applies_the_new_table_rolls_one_pod_at_a_time_and_moves_the_vip_at_most_once(day2, kube):
    """From the site as KubeEdge 1.22.2 installed it: the 1.23 objects removed, 1.22.2 installed. The
    uninstall deletes casecret, so the install issues a new CA: the edges join again (new certificates)."""
    lab("edges", "down", "--name", FLEET)
    uninstall_kubeedge(kube)
    install = run_playbook("site.yml", "-e", "cloudcore_version=" + OLD_RELEASE)
    assert install.rc == 0, install.output[-6000:]
    assert wait_for(lambda: len(holders()) == 1, 30), holders()
    start_fleet()
    assert DEVICE_STATUS_CRD not in kubeedge_crds(kube)
    assert image_tags(kube) == {"v" + OLD_RELEASE}
    run, watch, before = run_watched(kube, "-e", "cloudcore_version=" + NEW_RELEASE)
    assert watch.moves <= 1, watch.moves
    assert min(ready for _total, ready in watch.unready) >= 2, sorted(set(watch.unready))  # one of 3 down at most
    assert image_tags(kube) == {"v" + NEW_RELEASE}
    assert DEVICE_STATUS_CRD in kubeedge_crds(kube)
    assert wait_every_edge_back(), fleet_status()
    after = fleet_status()
    FIGURES["upgrade %s -> %s" % (OLD_RELEASE, NEW_RELEASE)] = (
        "VIP moves %d, VIP unanswered %.2f s, fewest Ready pods %d of 3, reconnects %d for %d edges, run %.0f s"
        % (watch.moves, watch.longest_gap_s, min(r for _t, r in watch.unready),
           after["reconnects"] - before["reconnects"], EDGES, run.seconds))


def test_add_a_node_moves_no_vip_and_disconnects_no_edge(day2, kube):
    holder = holders()
    grow = lab("up", "--nodes", "4")
    assert grow.returncode == 0 and "added ccha-node4" in grow.stdout, grow.stdout + grow.stderr
    run, watch, before = run_watched(kube)
    after = fleet_status()
    assert watch.moves == 0 and watch.longest_gap_s == 0, (watch.moves, watch.longest_gap_s)
    assert after["reconnects"] == before["reconnects"] and after["connected_total"] == EDGES, after
    assert [node for node, _image in deployment_pods(kube)] == ["ccha-node%d" % i for i in (1, 2, 3, 4)]
    assert holders() == holder
    conf = node_exec("ccha-node4", "grep -E '^ *(state|priority) ' /etc/keepalived/keepalived.conf").stdout.split()
    assert conf == ["state", "BACKUP", "priority", "220"], conf  # the lowest of 250, 240, 230, 220
    assert node_exec("ccha-node4", "systemctl is-active keepalived").stdout.strip() == "active"
    FIGURES["add a node"] = "VIP moves %d, edges disconnected %d, VIP unanswered %.2f s, run %.0f s" % (
        watch.moves, after["reconnects"] - before["reconnects"], watch.longest_gap_s, run.seconds)


def test_remove_a_backup_moves_no_vip_and_leaves_nothing_behind(day2, kube, tmp_path, nodes):
    holder = holders()
    assert holder != ["ccha-node4"]
    leaving = extra_inventory(tmp_path, **{"ccha-node4": {"cloudcore_state": "absent"}})
    run, watch, before = run_watched(kube, "-i", leaving)
    after = fleet_status()
    assert watch.moves == 0 and watch.longest_gap_s == 0, (watch.moves, watch.longest_gap_s)
    assert after["reconnects"] == before["reconnects"] and after["connected_total"] == EDGES, after
    assert [node for node, _image in deployment_pods(kube)] == ["ccha-node1", "ccha-node2", "ccha-node3"]
    assert max(total for total, _ready in watch.unready) <= 4
    assert nothing_of_ours("ccha-node4", kube) == (["disabled", "inactive", "0"], None)
    shrink = lab("up", "--nodes", "3")
    assert shrink.returncode == 0 and "removed ccha-node4" in shrink.stdout, shrink.stdout + shrink.stderr
    FIGURES["remove a backup"] = "VIP moves %d, edges disconnected %d, run %.0f s" % (
        watch.moves, after["reconnects"] - before["reconnects"], run.seconds)


def test_a_removal_that_would_leave_one_node_is_refused_before_anything_changes(day2, kube, tmp_path, nodes):
    before = snapshot(nodes, kube)
    two = extra_inventory(tmp_path, **{"ccha-node2": {"cloudcore_state": "absent"},
                                       "ccha-node3": {"cloudcore_state": "absent"}})
    refused = run_playbook("site.yml", "-i", two)
    assert refused.rc != 0 and "would leave 1 CloudCore node(s) (ccha-node1)" in refused.output, refused.output[-3000:]
    assert snapshot(nodes, kube) == before


def test_a_downgrade_across_a_minor_is_refused_before_anything_changes(day2, kube, nodes):
    before = snapshot(nodes, kube)
    refused = run_playbook("site.yml", "-e", "cloudcore_version=" + OLD_RELEASE)
    assert refused.rc != 0 and "a downgrade across a minor release is refused" in refused.output, refused.output[-3000:]
    assert snapshot(nodes, kube) == before


def test_remove_the_holder_moves_the_vip_once_and_every_edge_comes_back(day2, kube, tmp_path):
    holder = holders()
    assert len(holder) == 1, holder
    leaving = extra_inventory(tmp_path, **{holder[0]: {"cloudcore_state": "absent"}})
    run, watch, before = run_watched(kube, "-i", leaving)
    assert watch.moves == 1, watch.moves
    assert len(holders()) == 1 and holders() != holder, holders()
    assert wait_every_edge_back(), fleet_status()
    assert len(deployment_pods(kube)) == 2 and holder[0] not in dict(deployment_pods(kube)), deployment_pods(kube)
    assert nothing_of_ours(holder[0], kube) == (["disabled", "inactive", "0"], None)
    after = fleet_status()
    FIGURES["remove the holder"] = "VIP moves %d, VIP unanswered %.2f s, edges reconnected %d of %d, run %.0f s" % (
        watch.moves, watch.longest_gap_s, after["reconnects"] - before["reconnects"], EDGES, run.seconds)
    REMOVED.append(holder[0])


def test_add_the_removed_holder_back_moves_no_vip(day2, kube):
    assert REMOVED, "runs after test_remove_the_holder_moves_the_vip_once_and_every_edge_comes_back"
    returning = REMOVED.pop()
    holder = holders()
    run, watch, before = run_watched(kube)
    after = fleet_status()
    assert watch.moves == 0 and watch.longest_gap_s == 0, (watch.moves, watch.longest_gap_s)
    assert after["reconnects"] == before["reconnects"] and after["connected_total"] == EDGES, after
    assert holders() == holder  # no failback: the returning node's priority may be the highest
    assert [node for node, _image in deployment_pods(kube)] == ["ccha-node1", "ccha-node2", "ccha-node3"]
    assert node_exec(returning, "systemctl is-active keepalived").stdout.strip() == "active"
    FIGURES["add the removed holder back"] = "VIP moves %d, edges disconnected %d, run %.0f s" % (
        watch.moves, after["reconnects"] - before["reconnects"], run.seconds)


def test_a_vip_change_serves_both_vips_and_new_edges_verify_the_new_one(day2, kube):
    holder = holders()
    change = ("-e", "cloudcore_vip=%s/24" % NEW_VIP, "-e", "cloudcore_vip_previous=%s/24" % OLD_VIP)
    run, watch, before = run_watched(kube, *change)
    assert watch.samples[-1] != "none"  # the old VIP is served at the end of the run
    assert holders(NEW_VIP) == holders(OLD_VIP) and len(holders(NEW_VIP)) == 1, (
        holders(NEW_VIP), holders(OLD_VIP))
    assert wait_every_edge_back(), fleet_status()
    new = lab("edges", "up", "--name", FLEET + "-new", "--profile", "edgecore-1.23", "--count", "10",
              "--offset", "960", "--server", NEW_VIP)
    assert new.returncode == 0, new.stdout + new.stderr  # every new edge verified the new VIP's SAN
    assert wait_every_edge_back(10, FLEET + "-new", 60), fleet_status(FLEET + "-new")
    after = fleet_status()
    FIGURES["change the VIP"] = ("VIP moves %d, old VIP unanswered %.2f s, edges reconnected %d of %d, new edges "
                                 "verified 10 of 10, run %.0f s (holder before: %s, after: %s)") % (
        watch.moves, watch.longest_gap_s, after["reconnects"] - before["reconnects"], EDGES, run.seconds,
        holder[0], holders(NEW_VIP)[0])


def test_a_retired_vip_answers_nowhere_and_the_site_is_idempotent(day2, kube):
    lab("edges", "down", "--name", FLEET)  # its edges are on the old VIP: stop them before it goes
    retire = ("-e", "cloudcore_vip=%s/24" % NEW_VIP, "-e", "cloudcore_vip_retired=%s/24" % OLD_VIP)
    run = run_playbook("site.yml", *retire)
    assert run.rc == 0, run.output[-6000:]
    assert holders(OLD_VIP) == [] and len(holders(NEW_VIP)) == 1, (holders(OLD_VIP), holders(NEW_VIP))
    assert lab("probe", "--address", OLD_VIP, "--timeout", "2").returncode != 0
    assert wait_every_edge_back(10, FLEET + "-new", 90), fleet_status(FLEET + "-new")
    again = run_playbook("site.yml", *retire)
    assert again.rc == 0 and set(again.changed.values()) == {0}, again.output[-4000:]
    check = run_playbook("site.yml", *retire, "--check", "--diff")
    assert check.rc == 0 and set(check.changed.values()) == {0}, check.output[-4000:]
    FIGURES["retire the old VIP"] = "old VIP holders %d, run %.0f s; second run changed=0 (%.0f s), check mode " \
        "changed=0 (%.0f s)" % (len(holders(OLD_VIP)), run.seconds, again.seconds, check.seconds)
