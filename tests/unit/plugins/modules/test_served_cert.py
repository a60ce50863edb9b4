# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Module cloudcore.ha.served_cert against a real TLS server on 127.0.0.1."""

from __future__ import annotations

import pytest

from ansible_collections.cloudcore.ha.plugins.modules import served_cert
from ansible_collections.cloudcore.ha.tests.unit.conftest import LocalTLSServer


@pytest.fixture
def server(tmp_path):
    with LocalTLSServer(tmp_path, ips=("127.0.0.1", "10.10.102.242", "fd00::242"), dns=("cloudcore.test",)) as srv:
        yield srv


@pytest.mark.parametrize("check_mode", [False, True])
def test_reads_served_certificate(run_module, server, check_mode):
    args = dict(host="127.0.0.1", port=server.port, vip="fd00:0:0::242/64")
    failed, result, _unused = run_module(served_cert.main, args, check_mode=check_mode)
    assert not failed, result
    assert result["changed"] is False
    assert result["sans"] == {"ip": ["127.0.0.1", "10.10.102.242", "fd00::242"], "dns": ["cloudcore.test"]}
    assert result["vip_covered"] is True
    assert result["subject"] == "CN=cloudcore"
    assert 360 <= result["days_left"] <= 365
    assert "not_after" in result


def test_vip_not_covered_and_sni(run_module, server):
    args = dict(host="127.0.0.1", port=server.port, vip="10.10.102.243/24", server_name="cloudcore.test")
    failed, result, _unused = run_module(served_cert.main, args)
    assert not failed and result["vip_covered"] is False


def test_no_vip_no_vip_covered(run_module, server):
    failed, result, _unused = run_module(served_cert.main, dict(host="127.0.0.1", port=server.port))
    assert not failed and "vip_covered" not in result


def test_connection_refused_fails_clearly(run_module, closed_port):
    failed, result, _unused = run_module(served_cert.main, dict(host="127.0.0.1", port=closed_port, timeout=2))
    assert failed and "127.0.0.1:%d: cannot connect" % closed_port in result["msg"]


def test_bad_vip_fails_naming_vip(run_module, server):
    failed, result, _unused = run_module(served_cert.main, dict(host="127.0.0.1", port=server.port, vip="nope"))
    assert failed and "vip='nope': is not an IPv4 or IPv6 address with prefix length" in result["msg"]
    failed, result, _unused = run_module(served_cert.main, dict(host="127.0.0.1", port=server.port, vip="10.0.0.1"))
    assert failed and "vip='10.0.0.1': needs a prefix length" in result["msg"]


def test_missing_cryptography_reported(run_module, monkeypatch, server):
    monkeypatch.setattr(served_cert, "HAS_CRYPTOGRAPHY", False)
    failed, result, _unused = run_module(served_cert.main, dict(host="127.0.0.1", port=server.port))
    assert failed and "cryptography" in result["msg"]
