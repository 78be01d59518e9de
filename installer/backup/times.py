"""Times as backups record them: UTC ISO text, names stamped to the microsecond, MongoDB oplog Timestamps.

An oplog Timestamp is kept as one int, (seconds << 32) | increment, which
orders like MongoDB's; manifests store it as {"t": seconds, "i": increment}.
"""

from __future__ import annotations

from datetime import datetime, timezone


def stamp(t):
    """UTC to the microsecond: two runs in one second get two names."""
    d = datetime.fromtimestamp(t, timezone.utc)
    return d.strftime("%Y%m%dT%H%M%S") + f".{d.microsecond:06d}Z"


def iso(t):
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_iso(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def ts_int(t, i):
    return (int(t) << 32) | int(i)


def ts_json(v):
    return None if v is None else {"t": v >> 32, "i": v & 0xFFFFFFFF}


def ts_from_json(d):
    return None if d is None else ts_int(d["t"], d["i"])


def ts_text(v):
    """A Timestamp as mongorestore's --oplogLimit wants it: SECONDS:INCREMENT."""
    return f"{v >> 32}:{v & 0xFFFFFFFF}"


def ts_iso(v):
    return None if v is None else iso(v >> 32)


def ts_exact(v):
    """A Timestamp as `restore --to` takes it back: 2026-11-29T05:20:53Z+3 (the increment within the second)."""
    return None if v is None else f"{iso(v >> 32)}+{v & 0xFFFFFFFF}"
