"""The built tarball, installed offline into an empty collections path, runs as cloudcore.ha.site."""

from __future__ import annotations

import glob
import os
import subprocess

from conftest import ROOT, run_playbook


def test_installed_collection_runs_site(first_site_run, tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(["ansible-galaxy", "collection", "build", "--output-path", str(dist), ROOT], check=True,
                   capture_output=True)
    collections = tmp_path / "collections"
    deps = os.path.join(ROOT, ".build", "dist")
    kubernetes_core = sorted(glob.glob(os.path.join(deps, "kubernetes-core-*.tar.gz")))
    assert kubernetes_core, "run scripts/build-install first (it packs kubernetes.core)"
    subprocess.run(["ansible-galaxy", "collection", "install", "--offline", "-p", str(collections),
                    kubernetes_core[-1], *glob.glob(str(dist / "cloudcore-ha-*.tar.gz"))], check=True, capture_output=True)
    podman = os.path.join(ROOT, ".build", "deps")  # containers.podman: the lab's connection plugin
    run = run_playbook("cloudcore.ha.site", env={"ANSIBLE_COLLECTIONS_PATH": "%s:%s" % (collections, podman),
                                                 "ANSIBLE_CONFIG": os.devnull})
    assert run.rc == 0, run.output[-4000:]
    assert set(run.changed.values()) == {0}, run.changed
