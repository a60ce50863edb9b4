# A stand-in for get-pip.py, which ansible-test downloads from ci-files.testing.ansible.com (out of
# reach here) to put pip into the venvs of its sanity tests. Same contract: run as __main__ with pip
# install arguments; we bootstrap the interpreter's bundled pip and let it install what was asked
# (pip==X and friends) from PyPI.
import ensurepip
import os
import subprocess
import sys

# ansible-test runs pip without the machine's environment, so pip would not trust a TLS-inspecting
# proxy's CA: point this venv's own pip.conf at the system bundle, this call and later ones.
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
if os.path.exists(SYSTEM_CA_BUNDLE):
    with open(os.path.join(sys.prefix, "pip.conf"), "w") as config:
        config.write("[global]\ncert = %s\n" % SYSTEM_CA_BUNDLE)

ensurepip.bootstrap(upgrade=True)
arguments = [argument for argument in sys.argv[1:] if argument not in ("--no-setuptools", "--no-wheel")]
if os.path.exists(SYSTEM_CA_BUNDLE):
    arguments = ["--cert", SYSTEM_CA_BUNDLE] + arguments
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--upgrade"] + arguments))
