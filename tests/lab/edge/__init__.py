"""The lab's edge fleet: edgecore's edgehub + edgestream connection behaviour, N edges per process.

``python -m edge fleet ...`` from tests/lab (see README.md). Needs Python >= 3.11 and cryptography.
"""
