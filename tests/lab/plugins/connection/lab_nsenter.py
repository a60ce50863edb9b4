# -*- coding: utf-8 -*-
# Copyright (c) 2026 cloudcore.ha contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Connection to the lab's nodes through nsenter, with pipelining. Part of the lab, not the collection.

containers.podman.podman costs one `podman exec` (~175 ms of CPU on the lab machine) per step and
cannot pipeline, so a module takes three or four of them. This plugin enters the node container's
namespaces with nsenter (~3 ms) and pipes the module to python3 on stdin, like SSH with pipelining
on a real host: one process per module. Files go through /proc/PID/root.

Differences from `podman exec`, all in the direction of a real host reached as root over SSH: the
process runs with the controller's full root capabilities and cgroup, not the container's.

With LAB_NSENTER_TRACE=FILE in the environment every command run on a node appends the node's name to
FILE: the benchmarks count round trips per node with it (a pipelined module is one).
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: lab_nsenter
short_description: Run tasks in a cloudcore.ha lab node (a podman container) through nsenter, with pipelining
description:
  - Enters all namespaces of the node container's init process and runs the command there.
  - The init PID is looked up with C(podman inspect) once and cached under /run; a cached PID is
    used only while it is still that container's systemd in the node's network namespace.
author: cloudcore.ha contributors (@cloudcore-ha)
options:
  container:
    description:
      - The podman container of the node. In the lab its network namespace (under /run/netns) has the
        same name, against which a cached PID is checked.
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
      - name: delegated_vars['ansible_host']
  pipelining:
    description: Pipe modules to the interpreter on stdin.
    type: bool
    default: true
    vars:
      - name: ansible_pipelining
"""

import os
import shutil
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.common.text.converters import to_bytes
from ansible.plugins.connection import ConnectionBase

PID_CACHE = "/run/cloudcore-ha-lab/nsenter"
ENV = ["env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
       "LANG=C.UTF-8", "TERM=dumb"]


def _same_file(first: str, second: str) -> bool:
    try:
        a, b = os.stat(first), os.stat(second)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


class Connection(ConnectionBase):
    transport = "lab_nsenter"
    has_pipelining = True
    default_user = "root"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pid = None

    def _valid(self, pid: int) -> bool:
        try:
            with open("/proc/%d/comm" % pid) as handle:
                if handle.read().strip() != "systemd":
                    return False
        except OSError:
            return False
        return _same_file("/proc/%d/ns/net" % pid, "/run/netns/%s" % self.get_option("container"))

    def _lookup_pid(self, container: str) -> int:
        cache = os.path.join(PID_CACHE, container)
        try:
            with open(cache) as handle:
                pid = int(handle.read().strip())
            if self._valid(pid):
                return pid
        except (OSError, ValueError):
            pass
        proc = subprocess.run(["podman", "inspect", "--format", "{{.State.Pid}}", container],
                              capture_output=True, text=True, check=False)
        try:
            pid = int(proc.stdout.strip())
        except ValueError:
            pid = 0
        if proc.returncode != 0 or pid <= 0 or not self._valid(pid):
            raise AnsibleConnectionFailure("lab node %s is not running (podman inspect: %s)"
                                           % (container, (proc.stderr or proc.stdout).strip()))
        os.makedirs(PID_CACHE, exist_ok=True)
        with open(cache + ".tmp", "w") as handle:
            handle.write("%d\n" % pid)
        os.replace(cache + ".tmp", cache)
        return pid

    def _connect(self):
        if not self._connected:
            self._pid = self._lookup_pid(self.get_option("container"))
            self._connected = True
        return self

    def exec_command(self, cmd, in_data=None, sudoable=True):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        self._connect()
        trace = os.environ.get("LAB_NSENTER_TRACE")
        if trace:
            with open(trace, "a") as handle:
                handle.write(self.get_option("container") + "\n")
        argv = ["nsenter", "--target", str(self._pid), "--all", "--root", "--wd", *ENV, "/bin/sh", "-c", cmd]
        proc = subprocess.run([to_bytes(a) for a in argv], input=in_data,
                              stdin=None if in_data is not None else subprocess.DEVNULL,
                              capture_output=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    def _node_path(self, path: str) -> str:
        return "/proc/%d/root/%s" % (self._pid, path.lstrip("/"))

    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        self._connect()
        try:
            shutil.copyfile(in_path, self._node_path(out_path))
        except OSError as error:
            raise AnsibleError("copying %s to %s on %s: %s" % (in_path, out_path, self.get_option("container"), error))

    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        self._connect()
        try:
            shutil.copyfile(self._node_path(in_path), out_path)
        except OSError as error:
            raise AnsibleError("fetching %s from %s: %s" % (in_path, self.get_option("container"), error))

    def close(self):
        self._connected = False
