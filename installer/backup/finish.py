"""What every finished backup or slice goes through: its manifest (last), its first verification record,
the off-site queue, the metrics."""

from __future__ import annotations

import os
import sys

from . import catalog, offsite, verification
from .metrics import write_metrics
from ..errors import DbrsError


def queue_offsite(spec, path):
    """Hand a finished backup or slice to the off-site queue (cheap, no network, never fails the run)."""
    if spec.offsite:
        offsite.enqueue(spec, str(path), str(path) + catalog.MANIFEST)


def record_written(path):
    """The verification record at creation: the bytes were hashed as they were written.

    Without it (disk full at this very moment) the backup stays, merely
    unverified: prune reads it back before relying on it.
    """
    try:
        verification.write(path, True, "written", "hashed as written")
    except OSError as e:
        print(f"warning: {os.path.basename(str(path))}: its verification record could not be written "
              f"({e.strerror or e}); it counts as unverified until `dbrs backup verify` reads it back",
              file=sys.stderr)


def write_manifest_or_remove(path, manifest):
    """The manifest makes a file a backup; if it cannot be written, the data file goes too."""
    try:
        catalog.write_manifest(path, manifest)
    except OSError as e:
        catalog.remove(path)
        raise DbrsError(f"writing the manifest of {path}: {e.strerror or e}; the backup was removed") from None


def metrics(spec, state_file=None):
    try:
        write_metrics(spec, state_file=state_file)
    except OSError:
        pass  # metrics are a convenience; the backup itself succeeded
