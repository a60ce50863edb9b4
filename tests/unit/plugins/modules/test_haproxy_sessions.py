# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Module cloudcore.ha.haproxy_sessions against a master CLI on a unix socket that answers as haproxy 2.6
does: one line of commands, `;quit` closes, `@!<pid>` forwards to that worker."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from ansible_collections.cloudcore.ha.plugins.modules.haproxy_sessions import main

PROC = ("#<PID>          <type>          <reloads>       <uptime>        <version>\n"
        "10              master          1 [failed: 0]   0d00h01m00s     2.6.12\n"
        "# workers\n21              worker          0               0d00h00m10s     2.6.12\n"
        "# old workers\n20              worker          1               0d00h01m00s     2.6.12\n# programs\n\n")
HEADER = "# pxname,svname,qcur,qmax,scur\n"
STATS = {"21": HEADER + "cloudcore_websocket,n1,0,0,2\ncloudcore_websocket,n2,0,0,1\n",
         "20": HEADER + "cloudcore_websocket,n1,0,0,100\ncloudcore_websocket,n2,0,0,90\n"}


@pytest.fixture
def master(tmp_path):
    path = str(tmp_path / "master.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    seen = []

    def serve():
        while True:
            try:
                connection, _address = server.accept()
            except OSError:
                return
            line = connection.makefile("rb").readline().decode().strip()
            seen.append(line)
            command, _sep, rest = line.partition(";")
            if command == "show proc":
                connection.sendall(PROC.encode())
            elif command.startswith("@!") and command.endswith(" show stat"):
                connection.sendall(STATS.get(command[2:].split()[0], "").encode())
            if rest.strip() == "quit":  # without it haproxy keeps the connection: the module would hang
                connection.close()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path, seen
    server.close()
    os.unlink(path)


def test_sums_every_worker(run_module, master):
    path, seen = master
    failed, result, _unused = run_module(main, dict(master_socket=path, timeout=2), check_mode=True)
    assert not failed and not result["changed"], result
    assert result["sessions"] == {"n1": 102, "n2": 91}
    assert [(w["pid"], w["kind"]) for w in result["workers"]] == [(21, "current"), (20, "old")]
    assert seen == ["show proc;quit", "@!21 show stat;quit", "@!20 show stat;quit"]


def test_no_master_cli_fails_naming_the_socket(run_module, tmp_path):
    failed, result, _unused = run_module(main, dict(master_socket=str(tmp_path / "absent.sock")))
    assert failed and "master_socket=" in result["msg"] and "absent.sock" in result["msg"]
