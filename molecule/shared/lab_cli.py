"""The lab's CLI for the molecule verifiers: who holds the VIP, faults, probes. The CLI runs every
probe inside the lab's edge namespace, so nothing here addresses the lab subnet."""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any, Callable, List

import pytest

LAB = os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests", "lab", "lab")


def lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([LAB, *args], capture_output=True, text=True, timeout=60, check=False)


def holders() -> List[str]:
    out = lab("holder").stdout.split()
    return [] if out == ["none"] else out


def wait_until(read: Callable[[], Any], condition: Callable[[Any], bool], timeout: float, what: str,
               interval: float = 0.2) -> Any:
    """The first value of read() that meets condition within timeout seconds; else the test fails with what."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = read()
        if condition(current):
            return current
        time.sleep(interval)
    pytest.fail("%s within %ss (last: %s)" % (what, timeout, read()))


def wait_for_holders(condition: Callable[[List[str]], bool], timeout: float, what: str) -> List[str]:
    """The first holder list that meets condition within timeout seconds; else the test fails with what."""
    return wait_until(holders, condition, timeout, what)
