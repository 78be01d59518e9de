"""The manifest of a backup or slice: one typed record, read and written here only.

A data file counts as a backup only once `NAME.manifest.json` sits beside
it (catalog). The JSON keeps the shape every dbrs release wrote: oplog
timestamps as {"t": seconds, "i": increment}, keys sorted. In memory they
are one int, (seconds << 32) | increment, which orders like MongoDB's
Timestamp.

Every manifest an older release wrote still reads: fields it lacks are
None (no replset_id, no salt or chunk hashes, no entries hash), and keys
this release does not know are kept and written back untouched. A
manifest written by a newer format than FORMAT is refused, not guessed at.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from .times import ts_from_json, ts_json

FORMAT = 1
FULL = "full"
OPLOG = "oplog"
TIMESTAMPS = ("oplog_start", "oplog_end", "after", "first", "last")


class ManifestError(ValueError):
    """A manifest that cannot be read as one (catalog counts its file as incomplete)."""


@dataclass(frozen=True)
class Manifest:
    kind: str
    name: str
    cluster: str = None
    format: int = FORMAT
    replset_id: str = None
    member: str = None
    host: str = None
    started: str = None
    finished: str = None
    bytes: int = None
    plain_bytes: int = None
    sha256: str = None
    encrypted: bool = None
    key_id: str = None
    salt: str = None            # encrypted: ties the file's header to this manifest
    chunks: dict = None         # plain: {"size", "sha256": [per chunk]}, so each chunk is proven before use
    # full backups
    member_state: str = None
    duration_s: float = None
    oplog_start: int = None
    oplog_end: int = None
    mongod_version: str = None
    mongodump_version: str = None
    collections: dict = None
    # oplog slices
    after: int = None
    first: int = None
    last: int = None
    count: int = None
    entries_sha256: str = None
    gap: bool = None
    reanchored: bool = None
    # brought back by `dbrs backup verify --rebuild-manifest`
    rebuilt: bool = None
    rebuilt_note: str = None
    extra: dict = field(default_factory=dict)
    # the JSON keys this manifest has (a read one keeps exactly its own); None: the ones a new manifest writes
    keys: tuple = field(default=None, compare=False, repr=False)

    @classmethod
    def from_dict(cls, d):
        """Any manifest dbrs ever wrote; ManifestError when `d` is none (not an object, a newer format, bad times)."""
        if not isinstance(d, dict):
            raise ManifestError("not a JSON object")
        fmt = d.get("format", FORMAT)
        if not isinstance(fmt, int) or fmt > FORMAT:
            raise ManifestError(f"format {fmt!r} is newer than this dbrs reads ({FORMAT}); upgrade dbrs")
        known = {f.name for f in dataclasses.fields(cls)} - {"extra", "keys"}
        values = {k: v for k, v in d.items() if k in known}
        try:
            for k in TIMESTAMPS:
                if k in values:
                    values[k] = ts_from_json(values[k])
        except (KeyError, TypeError, ValueError) as e:
            raise ManifestError(f"an oplog time is not {{t, i}} ({e})") from None
        values.setdefault("kind", None)
        values.setdefault("name", None)
        return cls(**values, extra={k: v for k, v in d.items() if k not in known}, keys=tuple(d))

    @classmethod
    def load(cls, path):
        """The manifest at `path`; OSError when it cannot be read, ManifestError when it is not one."""
        with open(path, encoding="utf-8") as f:
            try:
                data = json.load(f)
            except ValueError as e:
                raise ManifestError(str(e)) from None
        return cls.from_dict(data)

    def _written_keys(self):
        always = {"format", "kind", "name", "cluster", "key_id"}
        if not self.rebuilt:
            always.add("replset_id")
        if self.kind == FULL:
            always |= {"oplog_start", "oplog_end"}
        return [f.name for f in dataclasses.fields(self)
                if f.name not in ("extra", "keys") and (f.name in always or getattr(self, f.name) is not None)]

    def to_dict(self):
        """The JSON object, with the keys it was read with (or, new, the ones its kind writes)."""
        keys = self.keys if self.keys is not None else self._written_keys()
        out = {}
        for k in keys:
            if k in self.extra:
                out[k] = self.extra[k]
            else:
                v = getattr(self, k)
                out[k] = ts_json(v) if k in TIMESTAMPS else v
        return out

    def dumps(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def lacks(self, names):
        """Which of `names` this manifest does not carry (an old or damaged one)."""
        return [k for k in names if getattr(self, k, None) is None and k not in self.extra]
