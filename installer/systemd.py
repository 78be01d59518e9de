"""`systemctl show`, read and parsed in one place (a leaf, so host/, backup and alert can all use it).

systemctl prints one blank-line separated block per unit, and the properties
in its own order, not in the order of the -p options: callers pair values
within a block, never by position.
"""

from __future__ import annotations

import subprocess


def parse_show(text):
    """`systemctl show` output -> one {property: value} per unit block."""
    blocks = []
    for block in text.split("\n\n"):
        props = {}
        for line in block.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                props[key.strip()] = value.strip()
        if props:
            blocks.append(props)
    return blocks


def show(units, properties, timeout=10):
    """[{property: value}] per unit, or None where systemctl is missing, hangs or fails."""
    argv = ["systemctl", "show"]
    for prop in properties:
        argv += ["-p", prop]
    try:
        r = subprocess.run([*argv, "--", *units], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_show(r.stdout) if r.returncode == 0 else None
