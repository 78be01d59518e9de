"""One backup or slice in the folder, and what is in the folder that is not one."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from . import archive, proof, times
from .manifest import Manifest


@dataclass(frozen=True)
class Entry:
    """A good backup or slice: its file and its typed manifest (timestamps parsed once, planning walks thousands)."""

    kind: str
    name: str
    path: str
    manifest: Manifest

    @cached_property
    def created(self):
        return times.parse_iso(self.manifest.finished)

    @property
    def bytes(self):
        return self.manifest.bytes

    @property
    def cluster(self):
        return self.manifest.cluster

    @property
    def encrypted(self):
        return self.manifest.encrypted

    @property
    def oplog_start(self):
        return self.manifest.oplog_start

    @property
    def oplog_end(self):
        return self.manifest.oplog_end

    # slices
    @property
    def after(self):
        return self.manifest.after

    @property
    def first(self):
        return self.manifest.first

    @property
    def last(self):
        return self.manifest.last

    def open(self, key):
        """The plaintext, verified as it is read: ArchiveError at the first byte that is not what the manifest says
        (the whole file's sha256 and size are checked at its end)."""
        if self.encrypted and key is None:
            raise archive.ArchiveError(f"{self.name}: encrypted, and backup.key is not available")
        return proof.read_plain(self.path, key, self.manifest.sha256, self.manifest.bytes)

    def proven(self, key):
        """The plaintext in one read, no chunk yielded before it is proven (what mongorestore is fed)."""
        return proof.proven_stream(self.path, self.manifest, key)


@dataclass(frozen=True)
class Incomplete:
    """Something in the folder that is not a backup: a `.partial`, or data without a manifest."""

    kind: str
    name: str
    path: str
    reason: str
