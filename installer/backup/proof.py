"""Reading a backup back, no byte handed on before it is proven: AES-GCM tags for encrypted files, the
manifest's per-chunk sha256 for plain ones, the whole file's sha256 and size at its end (archive writes them)."""

from __future__ import annotations

import hashlib
import os
import threading

from .archive import CHUNK, HEADER, HEADER_SIZE, MAGIC, TAG, ArchiveError, file_key, key_id, nonce


READ = 1 << 20



class _NoHash:
    def update(self, data):
        pass



def read_plain(path, key=None, expect_sha256=None, expect_bytes=None, block=READ, salt=None, header_only=False):
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
            _, chunk, file_salt, kid = HEADER.unpack(head)
            if salt is not None and file_salt.hex() != salt:
                raise ArchiveError(f"{name}: is not the file its manifest describes (another backup's header)")
            if kid != key_id(key):
                raise ArchiveError(f"{name}: encrypted with another backup key (key id {kid.hex()}, "
                                   f"ours {key_id(key).hex()}); use that cluster's backup.key")
            if header_only:
                return
            from cryptography.exceptions import InvalidTag
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            aead = AESGCM(file_key(key, file_salt))
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
                    plain = aead.decrypt(nonce(counter, last), cur, head)
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
            _, chunk, file_salt, _ = HEADER.unpack(head)
            from cryptography.exceptions import InvalidTag
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            aead = AESGCM(file_key(key, file_salt))
            step = chunk + TAG
            body = size - HEADER_SIZE
            n = max(1, -(-body // step))
            if body - (n - 1) * step < TAG:
                raise ArchiveError(f"{name}: truncated (ends inside chunk {n - 1})")

            def one(i):
                data = os.pread(fd, step, HEADER_SIZE + i * step)
                try:
                    return len(aead.decrypt(nonce(i, i == n - 1), data, head))
                except InvalidTag:
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
