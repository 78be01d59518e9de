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
_HEADER = struct.Struct(">8sI16s8s")     # magic, chunk size, salt, key id
HEADER_SIZE = _HEADER.size
PARTIAL = ".partial"
_READ = 1 << 20


class ArchiveError(DbrsError):
    """A backup file that is not what its manifest says (corrupt, cut off, wrong key)."""


def key_id(key):
    """A short public fingerprint of backup.key, so "wrong key" is told apart from "corrupt"."""
    return hashlib.sha256(b"dbrs-backup-key-id\0" + key).digest()[:8]


def _file_key(key, salt):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"dbrs-backup-v1").derive(key)


def _nonce(counter, last):
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
            self.header = _HEADER.pack(MAGIC, chunk, salt, key_id(key))
            self.aead = AESGCM(_file_key(key, salt))
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
        self.disk.put(self.aead.encrypt(_nonce(self.counter, last), plain, self.header))
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


# ------------------------------------------------------------------- reading

class _NoHash:
    def update(self, data):
        pass


def read_plain(path, key=None, expect_sha256=None, expect_bytes=None, block=_READ, salt=None, header_only=False):
    """Yield the dump stream of a backup file, checking as it goes.

    Raises ArchiveError on a sha256/size mismatch (after the last block, so
    callers that must not act on bad data read it all first: `verify`), a
    failed chunk, a cut-off end or the wrong key. The whole-file sha256 is
    computed only when asked for; `salt` (hex) proves an encrypted file is
    the one its manifest describes before anything is decrypted.
    """
    name = os.path.basename(path)
    sha = hashlib.sha256() if expect_sha256 is not None else _NoHash()
    size = 0
    with _open(path, name) as f:
        head = f.read(HEADER_SIZE)
        sha.update(head)
        size += len(head)
        if head[:len(MAGIC)] != MAGIC:
            yield head
            while True:
                data = f.read(block)
                if not data:
                    break
                sha.update(data)
                size += len(data)
                yield data
        else:
            if len(head) < HEADER_SIZE:
                raise ArchiveError(f"{name}: truncated header")
            if key is None:
                raise ArchiveError(f"{name}: is encrypted and no backup key was given (restore /etc/dbrs/backup.key)")
            _, chunk, file_salt, kid = _HEADER.unpack(head)
            if salt is not None and file_salt.hex() != salt:
                raise ArchiveError(f"{name}: is not the file its manifest describes (another backup's header)")
            if kid != key_id(key):
                raise ArchiveError(f"{name}: encrypted with another backup key (key id {kid.hex()}, "
                                   f"ours {key_id(key).hex()}); use that cluster's backup.key")
            if header_only:
                return
            from cryptography.exceptions import InvalidTag
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            aead = AESGCM(_file_key(key, file_salt))
            want = chunk + TAG
            cur = f.read(want)
            counter = 0
            while True:
                nxt = f.read(want)
                last = not nxt
                sha.update(cur)
                size += len(cur)
                if len(cur) < TAG:
                    raise ArchiveError(f"{name}: truncated (ends inside chunk {counter})")
                try:
                    plain = aead.decrypt(_nonce(counter, last), cur, head)
                except InvalidTag:
                    what = "truncated or altered" if last else "altered or reordered"
                    raise ArchiveError(f"{name}: chunk {counter} does not authenticate ({what}); "
                                       "this backup cannot be trusted") from None
                if plain:
                    yield plain
                if last:
                    break
                cur = nxt
                counter += 1
    if expect_bytes is not None and size != expect_bytes:
        raise ArchiveError(f"{name}: {size} bytes, the manifest says {expect_bytes} (truncated or grown)")
    if expect_sha256 is not None and sha.hexdigest() != expect_sha256:
        raise ArchiveError(f"{name}: sha256 {sha.hexdigest()[:16]}… does not match the manifest's "
                           f"{expect_sha256[:16]}…")


def proofs(written):
    """The manifest fields that let a reader prove each piece before using it (see proven_stream)."""
    if written.encrypted:
        return {"salt": written.salt}
    return {"chunks": written.chunks}


def chunk_hashes(path, expect_sha256, expect_bytes, chunk=CHUNK):
    """One read proving a whole file against its manifest; returns its chunk hashes (for manifests without them)."""
    name = os.path.basename(path)
    whole, out, size = hashlib.sha256(), [], 0
    with _open(path, name) as f:
        while True:
            data = f.read(chunk)
            if not data:
                break
            whole.update(data)
            out.append(hashlib.sha256(data).hexdigest())
            size += len(data)
    if size != expect_bytes or whole.hexdigest() != expect_sha256:
        raise ArchiveError(f"{name}: does not match its manifest (sha256 or size); this backup cannot be trusted")
    return {"size": chunk, "sha256": out}


def _open(path, name):
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise ArchiveError(f"{name}: file is missing") from None


def read_chunked(path, chunks, expect_bytes):
    """Yield a plain file chunk by chunk, each only after its sha256 matched `chunks` ({"size", "sha256"})."""
    name = os.path.basename(path)
    size, hashes = chunks["size"], chunks["sha256"]
    total = 0
    with _open(path, name) as f:
        for i, want in enumerate(hashes):
            data = f.read(size)
            if hashlib.sha256(data).hexdigest() != want:
                what = "cut off" if len(data) < size and i < len(hashes) - 1 else "altered"
                raise ArchiveError(f"{name}: chunk {i} (bytes {i * size}..{i * size + size - 1}) does not match "
                                   f"its manifest hash ({what}); this backup cannot be trusted")
            total += len(data)
            yield data
        if f.read(1) or total != expect_bytes:
            raise ArchiveError(f"{name}: {expect_bytes} bytes in the manifest, the file differs (grown or cut off)")


def prove(path, manifest, key, workers=2):
    """Prove a whole file against its manifest without yielding anything; returns the dump's byte count.

    Chunks are independent (AES-GCM with the chunk number in the nonce, or
    a sha256 each), so `workers` threads prove disjoint ranges at once
    (both the cipher and hashlib release the GIL). Manifests from before
    the salt/chunk hashes are proven by one serial read instead.
    """
    import threading

    name = os.path.basename(path)
    enc = manifest.encrypted
    if (enc and manifest.salt is None) or (not enc and not manifest.chunks):
        return sum(len(d) for d in proven_stream(path, manifest, key))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ArchiveError(f"{name}: file is missing") from None
    try:
        size = os.fstat(fd).st_size
        if size != manifest.bytes:
            raise ArchiveError(f"{name}: {size} bytes, the manifest says {manifest.bytes} (truncated or grown)")
        if enc:
            head = os.pread(fd, HEADER_SIZE, 0)
            next(iter(read_plain(path, key, None, None, salt=manifest.salt, block=0, header_only=True)), None)
            _, chunk, file_salt, _ = _HEADER.unpack(head)
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            aead = AESGCM(_file_key(key, file_salt))
            step = chunk + TAG
            body = size - HEADER_SIZE
            n = max(1, -(-body // step))
            if body - (n - 1) * step < TAG:
                raise ArchiveError(f"{name}: truncated (ends inside chunk {n - 1})")

            def one(i):
                data = os.pread(fd, step, HEADER_SIZE + i * step)
                try:
                    return len(aead.decrypt(_nonce(i, i == n - 1), data, head))
                except Exception:
                    what = "truncated or altered" if i == n - 1 else "altered or reordered"
                    raise ArchiveError(f"{name}: chunk {i} does not authenticate ({what}); "
                                       "this backup cannot be trusted") from None
        else:
            step, hashes = manifest.chunks["size"], manifest.chunks["sha256"]
            n = len(hashes)
            if -(-size // step) != n:
                raise ArchiveError(f"{name}: {size} bytes do not make the manifest's {n} chunks")

            def one(i):
                data = os.pread(fd, step, i * step)
                if hashlib.sha256(data).hexdigest() != hashes[i]:
                    raise ArchiveError(f"{name}: chunk {i} (bytes {i * step}..{i * step + step - 1}) does not "
                                       "match its manifest hash (altered); this backup cannot be trusted")
                return len(data)
        totals, errors = [0] * workers, []

        def work(w):
            try:
                for i in range(w, n, workers):
                    if errors:
                        return
                    totals[w] += one(i)
            except ArchiveError as e:
                errors.append((i, e))

        threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise min(errors, key=lambda e: e[0])[1]
        return sum(totals)
    finally:
        os.close(fd)


def proven_stream(path, manifest, key):
    """The dump stream of a backup in ONE read, no byte yielded before it is proven.

    Encrypted: every chunk's tag checks before its plaintext is yielded, the
    header's salt ties the file to its manifest. Plain: each chunk's sha256
    from the manifest. Manifests from before those fields get one proving
    read first (sha256 + size), then the same chunk-by-chunk checks.
    """
    if manifest.encrypted:
        if manifest.salt is None:
            chunk_hashes(path, manifest.sha256, manifest.bytes)
        return read_plain(path, key, None, manifest.bytes, salt=manifest.salt)
    chunks = manifest.chunks or chunk_hashes(path, manifest.sha256, manifest.bytes)
    return read_chunked(path, chunks, manifest.bytes)
