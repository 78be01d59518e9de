"""The on-disk form of a backup: one streamed pass, hashed, optionally encrypted, visible only when whole.

A backup file is written as `NAME.partial` (0600, O_EXCL), fsync'd, renamed
to NAME and its folder fsync'd; only then does the caller write the
manifest. Anything without a manifest, or still named `.partial`, is not a
backup, so a killed or failed run can never leave a file that looks good.

Encrypted files ("DBRSENC1") are AES-256-GCM in chunks, the STREAM
construction: a per-file key derived by HKDF from backup.key and a random
salt, a nonce made of the chunk counter and a "last chunk" flag, the header
as associated data. Reordered, dropped, repeated or appended chunks and a
cut-off end all fail authentication, not only a flipped bit. The sha256 in
the manifest covers the stored bytes, so `sha256sum NAME` checks a file
without the key.

Hashing and writing run in a second thread (hashlib and the kernel copy
release the GIL) so the pipeline keeps up with the dump instead of adding
its own time to it.
"""

from __future__ import annotations

import hashlib
import os
import queue
import struct
import threading
from dataclasses import dataclass

from ..fsutil import fsync_dir as _fsync_dir
from ..errors import DbrsError

MAGIC = b"DBRSENC1"
CHUNK = 1 << 20
TAG = 16
HEADER = struct.Struct(">8sI16s8s")     # magic, chunk size, salt, key id
HEADER_SIZE = HEADER.size
PARTIAL = ".partial"


class ArchiveError(DbrsError):
    """A backup file that is not what its manifest says (corrupt, cut off, wrong key)."""


def key_id(key):
    """A short public fingerprint of backup.key, so "wrong key" is told apart from "corrupt"."""
    return hashlib.sha256(b"dbrs-backup-key-id\0" + key).digest()[:8]


def file_key(key, salt):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"dbrs-backup-v1").derive(key)


def nonce(counter, last):
    return struct.pack(">7xIB", counter, 1 if last else 0)


@dataclass(frozen=True)
class Written:
    path: str
    bytes: int          # stored bytes (what sha256 covers)
    sha256: str
    plain_bytes: int    # bytes of the dump stream itself
    encrypted: bool
    chunks: dict = None     # plain files: {"size", "sha256": [each chunk's]}, so a reader proves each before use
    salt: str = None        # encrypted files: the header's random salt, which tells this file from any other


class _Disk(threading.Thread):
    """Hashes and writes queued blocks; the first error is kept and re-raised to the producer."""

    def __init__(self, fd, chunk=None):
        super().__init__(daemon=True, name="dbrs-archive-writer")
        self.fd = fd
        self.sha = hashlib.sha256()
        self.count = 0
        self.error = None
        self.q = queue.Queue(maxsize=8)
        self.chunk = chunk
        self.chunks = []
        self.part = hashlib.sha256()
        self.fill = 0

    def _chunk_hashes(self, block):
        view = memoryview(block)
        while view:
            take = min(self.chunk - self.fill, len(view))
            self.part.update(view[:take])
            self.fill += take
            view = view[take:]
            if self.fill == self.chunk:
                self.chunks.append(self.part.hexdigest())
                self.part, self.fill = hashlib.sha256(), 0

    def chunk_list(self):
        return tuple(self.chunks + ([self.part.hexdigest()] if self.fill else []))

    def run(self):
        while True:
            block = self.q.get()
            if block is None:
                return
            if self.error is not None:
                continue
            try:
                self.sha.update(block)
                if self.chunk:
                    self._chunk_hashes(block)
                view = memoryview(block)
                while view:
                    n = os.write(self.fd, view)
                    view = view[n:]
                self.count += len(block)
            except OSError as e:
                self.error = e

    def put(self, block):
        if self.error is not None:
            raise self.error
        self.q.put(block)


class Sink:
    """Write one backup file: `with Sink(path, key) as s: s.write(...); s.commit()`.

    Leaving the block without commit() (an exception, a signal turned into
    one) removes the `.partial`; SIGKILL leaves it, named `.partial`, for the
    next run under the lock to clear away.
    """

    def __init__(self, path, key=None, chunk=CHUNK, mode=0o600):
        self.path = str(path)
        self.partial = self.path + PARTIAL
        self.key = key
        self.chunk = chunk
        self.plain = 0
        self.done = False
        if os.path.lexists(self.path):
            raise DbrsError(f"{self.path} already exists; refusing to overwrite a backup")
        self.fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        os.fchmod(self.fd, mode)
        self.disk = _Disk(self.fd, None if key is not None else chunk)
        self.disk.start()
        self.buf = bytearray()
        self.counter = 0
        self.salt = None
        if key is not None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            salt = self.salt = os.urandom(16)
            self.header = HEADER.pack(MAGIC, chunk, salt, key_id(key))
            self.aead = AESGCM(file_key(key, salt))
            self.disk.put(self.header)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if not self.done:
            self.abort()
        return False

    def write(self, data):
        self.plain += len(data)
        if self.key is None:
            self.disk.put(data if isinstance(data, bytes) else bytes(data))
            return
        view = memoryview(data)
        if self.buf:
            # top up the pending partial chunk first
            need = self.chunk - len(self.buf)
            self.buf += view[:need]
            view = view[need:]
            if len(self.buf) < self.chunk:
                return
            self._seal(self.buf, last=False)
            self.buf = bytearray()
        whole = len(view) - len(view) % self.chunk
        if whole == len(view) and whole:
            whole -= self.chunk   # keep the stream's possible last chunk back: it may be the final one
        for off in range(0, whole, self.chunk):
            self._seal(view[off:off + self.chunk], last=False)
        self.buf += view[whole:]

    def _seal(self, plain, last):
        self.disk.put(self.aead.encrypt(nonce(self.counter, last), plain, self.header))
        self.counter += 1
        if self.counter >= 2**32:
            raise ArchiveError("backup stream longer than 4 Gi chunks; raise the chunk size")

    def _finish_thread(self):
        self.disk.q.put(None)
        self.disk.join()
        if self.disk.error is not None:
            raise self.disk.error

    def commit(self):
        """Final chunk, fsync, rename into place, fsync the folder; returns what was written."""
        if self.key is not None:
            self._seal(self.buf, last=True)
            self.buf = bytearray()
        self._finish_thread()
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = None
        os.rename(self.partial, self.path)
        self.done = True
        _fsync_dir(os.path.dirname(os.path.abspath(self.path)))
        return Written(self.path, self.disk.count, self.disk.sha.hexdigest(), self.plain, self.key is not None,
                       None if self.key is not None else {"size": self.chunk, "sha256": list(self.disk.chunk_list())},
                       self.salt.hex() if self.salt else None)

    def abort(self):
        self.done = True
        try:
            self.disk.q.put(None)
            self.disk.join()
        finally:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None
            try:
                os.unlink(self.partial)
            except FileNotFoundError:
                pass


def proofs(written):
    """The manifest fields that let a reader prove each piece before using it (see proven_stream)."""
    if written.encrypted:
        return {"salt": written.salt}
    return {"chunks": written.chunks}


