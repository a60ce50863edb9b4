"""pytest configuration of the lab's own tests (tests/lab/test_lab.py)."""


def pytest_configure(config):
    config.addinivalue_line("markers", "lab: needs root and podman; brings the lab up (tests/lab/lab up) and down")
