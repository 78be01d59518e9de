"""Write /usr/bin launchers for the Debian package.

Why not pybuild's generated scripts: they import from dist-packages, while
dbrs lives in the private /usr/lib/dbrs (with its own PyMongo 4 that must
win over a python3-pymongo 3.x in dist-packages). ``-I`` (isolated mode)
ignores PYTHONPATH and the user's site-packages: these run as root.

usage: launchers.py PYPROJECT OUTDIR LIBDIR
"""

import sys
from pathlib import Path

from cliobjects import entry_points

TEMPLATE = '''#!/usr/bin/python3 -I
# {name}: launcher of the Debian package (packaging/launchers.py).
import sys
sys.path.insert(0, "{lib}")
from {module} import {attr}
sys.exit({attr}())
'''


def main(pyproject: str, outdir: str, lib: str) -> None:
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    for name, (module, attr) in entry_points(pyproject).items():
        p = out / name
        p.write_text(TEMPLATE.format(name=name, lib=lib, module=module, attr=attr))
        p.chmod(0o755)


if __name__ == "__main__":
    main(*sys.argv[1:])
