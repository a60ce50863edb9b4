# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs tests/manifests/validate.py (render every template for every KubeEdge release, validate with
kubernetes-validate --strict for Kubernetes 1.28..newest) as part of the test suite."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_manifests_validate():
    proc = subprocess.run([sys.executable, str(HERE / "validate.py")], capture_output=True, text=True,
                          check=False, timeout=600)
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert summary.startswith("manifests: ") and summary.endswith(" 0 failures"), summary
