# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An execution environment built from the released tarball gets our Python and system requirements.

`ansible-builder create` writes the build context offline (no podman needed); the image build would
then install the collections (galaxy stage) and introspect them (builder stage). Those two stages run
here too, offline, with the very commands and scripts the context holds: `ansible-galaxy collection
install --offline` from the tarballs copied into the context, then the context's own introspect.py.
The tarballs come from `make build-install` (.build/dist), which `make ee` runs first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / ".build" / "dist"
BIN = Path(sys.executable).parent

EE_DEFINITION = """\
---
version: 3
images:
  base_image:
    name: quay.io/fedora/fedora:41  # never pulled by `create`
dependencies:
  ansible_core:
    package_pip: ansible-core
  ansible_runner:
    package_pip: ansible-runner
  galaxy:
    collections:
      - name: collections/{k8s}
        type: file
      - name: collections/{ours}
        type: file
additional_build_files:
  - src: {k8s}
    dest: collections
  - src: {ours}
    dest: collections
build_arg_defaults:
  ANSIBLE_GALAXY_CLI_COLLECTION_OPTS: "--offline"
"""


def _tarball(pattern: str) -> Path:
    found = sorted(DIST.glob(pattern))
    if not found:
        pytest.fail(f"no {pattern} in {DIST}: run `make build-install` first (`make ee` does)")
    return found[-1]


def _run(argv, cwd, env=None):
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, env=env,
                          check=False, timeout=300)
    assert proc.returncode == 0, f"{argv[0]} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def _requirement_names(path: Path) -> list[str]:
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(line.split()[0].split(">")[0].split("=")[0].split("<")[0].lower())
    return names


@pytest.fixture(scope="module")
def introspected(tmp_path_factory):
    """(context dir, {file name: text}) of the introspection an image build of our tarball runs."""
    ours, k8s = _tarball("cloudcore-ha-*.tar.gz"), _tarball("kubernetes-core-*.tar.gz")
    work = tmp_path_factory.mktemp("ee")
    for tarball in (ours, k8s):
        (work / tarball.name).symlink_to(tarball)
    (work / "execution-environment.yml").write_text(EE_DEFINITION.format(ours=ours.name, k8s=k8s.name))
    context = work / "context"
    _run([BIN / "ansible-builder", "create", "-f", "execution-environment.yml", "-c", context,
          "--output-filename", "Containerfile"], cwd=work)
    build = context / "_build"
    containerfile = (context / "Containerfile").read_text()
    # the steps the emulation below stands in for
    assert "ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml" in containerfile
    assert '--collections-path "/usr/share/ansible/collections"' in containerfile
    assert "/output/scripts/introspect.py introspect" in containerfile
    assert (build / "collections" / ours.name).is_file()

    # galaxy stage: WORKDIR /build holds the context's _build; offline, from the copied tarballs
    collections = work / "usr-share-ansible-collections"
    env = dict(os.environ, ANSIBLE_GALAXY_DISABLE_GPG_VERIFY="1", ANSIBLE_COLLECTIONS_PATH=str(collections))
    _run([BIN / "ansible-galaxy", "collection", "install", "--offline", "-r", "requirements.yml",
          "--collections-path", collections], cwd=build, env=env)
    # builder stage: the context's introspect.py over what was installed
    out = work / "introspected"
    _run([sys.executable, build / "scripts" / "introspect.py", "introspect", collections,
          "--write-pip", out / "requirements.txt", "--write-bindep", out / "bindep.txt"], cwd=build)
    return context, {name: (out / name).read_text() for name in ("requirements.txt", "bindep.txt")}


def test_tarball_ships_the_ee_metadata():
    ours = _tarball("cloudcore-ha-*.tar.gz")
    with tarfile.open(ours) as tar:
        names = set(tar.getnames())
        definition = yaml.safe_load(tar.extractfile("meta/execution-environment.yml"))
    assert definition["dependencies"] == {"python": "meta/ee-requirements.txt", "system": "meta/ee-bindep.txt"}
    assert {"meta/ee-requirements.txt", "meta/ee-bindep.txt"} <= names


def test_collection_declares_what_its_controller_side_imports():
    assert _requirement_names(ROOT / "meta" / "ee-requirements.txt") == ["kubernetes", "cryptography", "pyyaml"]


def test_introspection_gets_our_python_requirements(introspected):
    _context, files = introspected
    ours = [line for line in files["requirements.txt"].splitlines() if line.endswith("# from collection cloudcore.ha")]
    assert [line.split()[0] for line in ours] == ["kubernetes>=24.2.0", "cryptography"]
    # ansible-builder drops PyYAML on purpose (EXCLUDE_REQUIREMENTS: every EE has it); kubernetes.core,
    # our dependency, was installed from its tarball and introspected too
    assert "pyyaml" not in files["requirements.txt"].lower()
    assert "# from collection kubernetes.core" in files["requirements.txt"]


def test_introspection_gets_our_system_requirements(introspected):
    _context, files = introspected
    ours = [line for line in files["bindep.txt"].splitlines() if line.endswith("# from collection cloudcore.ha")]
    assert [line.split("#")[0].strip() for line in ours] == ["openssh-client [platform:dpkg]",
                                                             "openssh-clients [platform:rpm]"]


def test_bindep_parses_the_introspected_file(introspected, tmp_path):
    """The image's assemble script runs `bindep -l newline` on this file and fails on exit code 2
    (unparsable); 0 or 1 (packages missing on this machine) are what a good file gives."""
    _context, files = introspected
    (tmp_path / "bindep.txt").write_text(files["bindep.txt"])
    proc = subprocess.run([str(BIN / "bindep"), "-f", "bindep.txt", "-l", "newline"], cwd=tmp_path,
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode in (0, 1), proc.stderr
