"""``python -m kubeapi`` (from tests/lab) or ``python tests/lab/kubeapi`` (path form)."""

import os
import sys

if __package__ in (None, ""):  # run as a path: make the package importable
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]  # no shadowing of stdlib names
    sys.path.insert(0, os.path.dirname(_here))
    from kubeapi.cli import main
else:
    from .cli import main

sys.exit(main())
