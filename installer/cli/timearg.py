"""`--to TIME` as the restore commands read it: (seconds, increment or None), bad input in one bounded line.

Shared by `dbrs restore` and `dbrs offsite fetch`, so neither CLI module imports the other.
"""

import re

_INC = re.compile(r"(.*(?:Z|[+-]\d\d:\d\d)|@\d+)\+(\d{1,10})")
_LATEST = 2**32 - 1           # oplog timestamps count seconds in 32 bits
_SHOW = 60                    # an argument is echoed at most this long


def parse_time(text):
    """(seconds, increment or None) from ISO 8601 (no zone = this host's local time) or @EPOCH seconds.

    `…Z+3` or `@SECONDS+3` names one oplog entry within its second, exactly
    as `dbrs backup list` prints the window's ends.
    """
    import math
    from datetime import datetime

    from ..errors import InputError

    shown = text if len(text) <= _SHOW else text[:_SHOW] + "…"
    fix = 'write it like "2026-11-28T10:15:00Z", "2026-11-28T10:15:00Z+3" or "@1764324900"'
    inc = None
    m = _INC.fullmatch(text)
    if m:
        text, inc = m.group(1), int(m.group(2))
        if inc >= 2**32:
            raise InputError("--to", f"{shown!r}: increment {inc} is out of range", fix)
    t = None
    if text.startswith("@"):
        try:
            t = float(text[1:])
        except ValueError:
            pass
    elif len(text) <= 64:
        try:
            t = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except (ValueError, OverflowError, OSError):
            pass
    if t is None:
        raise InputError("--to", f"{shown!r} is not a time", fix)
    if not math.isfinite(t) or not 0 <= t <= _LATEST:
        raise InputError("--to", f"{shown!r} is outside the times an oplog can hold (1970 .. 2106)", fix)
    if inc is not None and t != int(t):
        raise InputError("--to", f"{shown!r}: an increment needs a whole second", fix)
    return t, inc
