"""Doing: carry out the changed items of a plan, in order, each by its kind's step (host/registry).

What to do is read from `Change.actions` alone; the reasons are words for
the operator and never steer this loop.
"""

from __future__ import annotations

from ..errors import StepFailed
from . import registry, steps
from .items import Action

# steps that act through systemd: a unit file changed earlier in the plan must be reloaded first
_SERVICE_STEPS = frozenset({Action.STOP, Action.DISABLE, Action.ENABLE, Action.START, Action.RESTART,
                            Action.RELOAD_TABLE})


def apply(changes, root=None, live=True, progress=None, done=None):
    """Carry out the changed items in order; returns the changes as done.

    Units are reloaded once after unit files changed, then services are
    enabled/started, or reloaded/restarted when a file they use changed.
    `done(change)` is called for every item once it is settled (at once for
    an unchanged one), so the report streams as the host changes.
    """
    unit_files_changed = False
    for change in changes:
        if not change.changed:
            if done:
                done(change)
            continue
        item, acts = change.item, change.actions
        if progress:
            progress(change)
        try:
            if unit_files_changed and live and not _SERVICE_STEPS.isdisjoint(acts):
                steps.systemctl("daemon-reload")
                unit_files_changed = False
            registry.handler(item).act(item, acts, root, live)
            if Action.UNITS_CHANGED in acts:
                unit_files_changed = True
        except StepFailed:
            raise
        except OSError as e:
            raise StepFailed(item.label(), e.strerror or str(e)) from None
        if done:
            done(change)
    if unit_files_changed and live:
        steps.systemctl("daemon-reload")
    return changes
