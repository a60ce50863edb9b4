# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""roles/keepalived/files/check_cloudcore against a real HTTPS server on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "keepalived", "files", "check_cloudcore")

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (the check needs it)")


def run(url, curl_timeout="2", timeout=10, drain_file="/nonexistent/cloudcore-ha-drain"):
    """The check as keepalived runs it: URL, curl's deadline, the drain file (no environment)."""
    started = time.monotonic()
    proc = subprocess.run(["/bin/sh", SCRIPT, url, curl_timeout, drain_file], capture_output=True, timeout=timeout,
                          check=False, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    return proc, time.monotonic() - started


def test_drained_node_fails_even_when_cloudcore_answers(tls_server, tmp_path):
    drain = tmp_path / "drain"
    assert run(tls_server.url("/ca.crt"), "2", drain_file=str(drain))[0].returncode == 0
    drain.touch()
    proc, _unused = run(tls_server.url("/ca.crt"), "2", drain_file=str(drain))
    assert proc.returncode == 1
    assert proc.stdout == b"" and proc.stderr == b""


def test_http_200_exits_0_quietly(tls_server):
    proc, _unused = run(tls_server.url("/ca.crt"), "2")
    assert proc.returncode == 0
    assert proc.stdout == b"" and proc.stderr == b""


def test_old_readyz_endpoint_works_when_given(tls_server):
    tls_server.statuses["/readyz"] = 200
    assert run(tls_server.url("/readyz"), "2")[0].returncode == 0


def test_http_404_fails(tls_server):
    # what /readyz answers on KubeEdge >= v1.7
    proc, _unused = run(tls_server.url("/readyz"), "2")
    assert proc.returncode != 0
    assert proc.stdout == b"" and proc.stderr == b""


def test_http_500_fails(tls_server):
    tls_server.statuses["/ca.crt"] = 500
    assert run(tls_server.url(), "2")[0].returncode != 0


def test_connection_refused_fails(closed_port):
    proc, _unused = run("https://127.0.0.1:%d/ca.crt" % closed_port, "2")
    assert proc.returncode != 0
    assert proc.stdout == b"" and proc.stderr == b""


def test_server_that_accepts_and_hangs_fails_within_timeout(tls_server):
    tls_server.hang = True  # TLS handshake done, no HTTP answer
    proc, elapsed = run(tls_server.url(), "0.8")
    assert proc.returncode != 0
    assert elapsed < 0.8 + 0.7


def test_listener_that_never_answers_tls_fails_within_timeout():
    with socket.socket() as listener:  # the kernel completes the TCP handshake; nobody reads
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        proc, elapsed = run("https://127.0.0.1:%d/ca.crt" % listener.getsockname()[1], "0.8")
    assert proc.returncode != 0
    assert elapsed < 0.8 + 0.7


def test_default_url_and_timeout_are_the_documented_ones():
    text = open(SCRIPT).read()
    assert "url=${1:-https://127.0.0.1:10002/ca.crt}" in text
    assert "timeout=${2:-0.8}" in text
    assert "v1.7" in text  # why not /readyz


def test_script_is_executable():
    assert os.access(SCRIPT, os.X_OK)


def test_shellcheck_clean():
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed; install it (apt-get install shellcheck) to lint the script")
    proc = subprocess.run([shellcheck, "--shell=sh", SCRIPT], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
