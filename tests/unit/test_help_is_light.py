"""`dbrs --help` and `dbrs-install --help` load click and nothing heavy (checked in a fresh interpreter)."""

import subprocess
import sys

import pytest

HEAVY = ("pymongo", "bson", "jinja2", "cryptography", "psutil")


@pytest.mark.parametrize("module", ["installer.cli", "installer.cli.install"])
def test_help_imports_nothing_heavy(module):
    code = (f"import sys; from {module} import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout
