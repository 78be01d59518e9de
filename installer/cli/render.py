"""Text for the person on call: the replica-set screen of `dbrs status` (the JSON is Status.to_json)."""

from __future__ import annotations

from ..replset.documents import concern_text
from ..replset.health import ago


def render_status(status):
    """One screen for the person on call."""
    lines = [f"replica set {status.set_name}: " + (f"primary {status.primary}" if status.primary else "NO PRIMARY")]
    rows = [("MEMBER", "ADDRESS", "STATE", "VOTES", "PRIORITY", "LAG", "LAST HEARD")]
    for m in status.members:
        heard = "self" if m.is_self else "never" if m.heard_ago_s is None else ago(m.heard_ago_s) + " ago"
        rows.append((m.name, m.address, m.state, str(m.votes), f"{m.priority:g}",
                     "-" if m.lag_s is None else ago(m.lag_s), heard))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    lines.append(f"majority commit point: {ago(status.commit_lag_s)} behind the primary"
                 if status.commit_lag_s is not None else "majority commit point: unknown")
    lines.append(f"oplog window: {ago(status.oplog_window_s)}" if status.oplog_window_s is not None
                 else "oplog window: unknown")
    read = (status.read_concern or {}).get("level", "local")
    lines.append(f"default write concern: {concern_text(status.write_concern)}; default read concern: {read}")
    for p in status.problems:
        lines.append(f"WARN {p}")
    for n in status.notes:
        lines.append(f"note {n}")
    if status.ok:
        lines.append("all members healthy")
    return "\n".join(lines)
