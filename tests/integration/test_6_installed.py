"""The built tarball, installed offline into an empty collections path, runs as cloudcore.ha.site."""

from __future__ import annotations

import glob
import os
import subprocess

from conftest import ROOT, run_playbook


def test_installed_collection_runs_site(first_site_run, tmp_path):
    kubernetes_core = sorted(glob.glob(os.path.join(ROOT, ".build", "dist", "kubernetes-core-*.tar.gz")))
    assert kubernetes_core, "run scripts/build-install first (it packs kubernetes.core)"
    collections = tmp_path / "collections"
    lab_connection = os.path.join(ROOT, "tests", "lab", "plugins", "connection")  # the lab inventory's connection
    # Away from the checkout and its ansible.cfg: only the installed collection can be found.
    config = tmp_path / "ansible.cfg"
    config.write_text("[defaults]\ncollections_path = %s\nconnection_plugins = %s\n[connection]\npipelining = True\n"
                      % (collections, lab_connection))
    env = dict(os.environ, ANSIBLE_CONFIG=str(config), ANSIBLE_COLLECTIONS_PATH=str(collections))
    dist = tmp_path / "dist"
    subprocess.run(["ansible-galaxy", "collection", "build", "--output-path", str(dist), ROOT], check=True,
                   capture_output=True, env=env, cwd=str(tmp_path))
    subprocess.run(["ansible-galaxy", "collection", "install", "--offline", "-p", str(collections),
                    kubernetes_core[-1], *glob.glob(str(dist / "cloudcore-ha-*.tar.gz"))], check=True,
                   capture_output=True, env=env, cwd=str(tmp_path))
    assert os.path.isfile(collections / "ansible_collections" / "cloudcore" / "ha" / "playbooks" / "site.yml")
    run = run_playbook("cloudcore.ha.site", cwd=str(tmp_path), env={
        "ANSIBLE_COLLECTIONS_PATH": env["ANSIBLE_COLLECTIONS_PATH"], "ANSIBLE_CONFIG": str(config)})
    assert run.rc == 0, run.output[-4000:]
    assert set(run.changed.values()) == {0}, run.changed
