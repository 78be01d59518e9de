"""The backup file format: streamed sha256, AES-256-GCM chunks, and files that look good only when whole."""

import hashlib
import os

import pytest
from hypothesis import given, settings, strategies as st

from installer.backup import archive, proof

KEY = bytes(range(32))
OTHER = bytes(32)


def write(path, data, key=KEY, chunk=64, pieces=7):
    with archive.Sink(path, key, chunk=chunk) as s:
        for i in range(0, len(data), pieces):
            s.write(data[i:i + pieces])
        return s.commit()


def read(path, key=KEY, w=None):
    return b"".join(proof.read_plain(str(path), key, w and w.sha256, w and w.bytes))


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=700), chunk=st.sampled_from([16, 64, 100]), pieces=st.integers(1, 300))
def test_round_trip_any_length_and_split(tmp_path_factory, data, chunk, pieces):
    p = tmp_path_factory.mktemp("a") / "b.archive"
    w = write(p, data, chunk=chunk, pieces=pieces)
    assert read(p, w=w) == data
    assert w.plain_bytes == len(data) and w.bytes == p.stat().st_size
    assert w.sha256 == hashlib.sha256(p.read_bytes()).hexdigest()   # `sha256sum` checks it without the key
    assert data[:16] not in p.read_bytes()[archive.HEADER_SIZE:] or len(data) < 16


def test_plain_file_is_the_stream_itself(tmp_path):
    p = tmp_path / "b.archive"
    w = write(p, b"mongodump bytes" * 100, key=None)
    assert p.read_bytes() == b"mongodump bytes" * 100 and not w.encrypted
    assert read(p, key=None, w=w) == b"mongodump bytes" * 100


def test_file_is_owner_only_and_partial_only_until_commit(tmp_path):
    p = tmp_path / "b.archive"
    with archive.Sink(p, KEY, chunk=64) as s:
        s.write(b"x" * 1000)
        assert not p.exists() and (tmp_path / "b.archive.partial").exists()
        assert (tmp_path / "b.archive.partial").stat().st_mode & 0o777 == 0o600
        s.commit()
    assert p.exists() and not (tmp_path / "b.archive.partial").exists()
    assert p.stat().st_mode & 0o777 == 0o600


def test_exception_removes_partial_and_never_creates_the_name(tmp_path):
    p = tmp_path / "b.archive"
    with pytest.raises(RuntimeError):
        with archive.Sink(p, KEY) as s:
            s.write(b"x" * 5000)
            raise RuntimeError("mongodump died")
    assert os.listdir(tmp_path) == []


def test_never_overwrites_an_existing_backup(tmp_path):
    p = tmp_path / "b.archive"
    p.write_bytes(b"old")
    with pytest.raises(archive.DbrsError, match="already exists"):
        archive.Sink(p, KEY)
    assert p.read_bytes() == b"old"


@pytest.mark.parametrize("cut", [1, 15, 16, 17, 80, 80 + 16])
def test_truncated_encrypted_file_fails_even_without_manifest(tmp_path, cut):
    """Cutting at or inside a chunk boundary: the last-chunk flag catches what a length check cannot see."""
    p = tmp_path / "b.archive"
    write(p, b"y" * 64 * 5 + b"z" * 10, chunk=64)
    data = p.read_bytes()
    p.write_bytes(data[:-cut])
    with pytest.raises(archive.ArchiveError, match="truncated|authenticate"):
        read(p)


def test_truncated_exactly_at_a_chunk_boundary(tmp_path):
    p = tmp_path / "b.archive"
    write(p, b"y" * 64 * 4, chunk=64)     # 4 full chunks + an empty final chunk (16-byte tag)
    data = p.read_bytes()
    one = 64 + archive.TAG
    p.write_bytes(data[:archive.HEADER_SIZE + 2 * one])   # two whole chunks, no final one
    with pytest.raises(archive.ArchiveError, match="chunk 1 does not authenticate \\(truncated"):
        read(p)


def test_reordered_and_appended_chunks_fail(tmp_path):
    p = tmp_path / "b.archive"
    write(p, bytes(range(256)) * 2, chunk=64)
    data = p.read_bytes()
    h, one = archive.HEADER_SIZE, 64 + archive.TAG
    chunks = [data[h + i * one:h + (i + 1) * one] for i in range((len(data) - h) // one + 1)]
    swapped = data[:h] + chunks[1] + chunks[0] + b"".join(chunks[2:])
    p.write_bytes(swapped)
    with pytest.raises(archive.ArchiveError, match="chunk 0"):
        read(p)
    p.write_bytes(data + chunks[0])
    with pytest.raises(archive.ArchiveError):
        read(p)


def test_flipped_byte_anywhere_fails(tmp_path):
    p = tmp_path / "b.archive"
    w = write(p, os.urandom(1000), chunk=128)
    data = bytearray(p.read_bytes())
    for pos in (0, 9, archive.HEADER_SIZE - 1, archive.HEADER_SIZE + 5, len(data) - 1):
        bad = bytearray(data)
        bad[pos] ^= 0x01
        p.write_bytes(bytes(bad))
        with pytest.raises(archive.ArchiveError):
            read(p, w=w)


def test_flipped_byte_in_plain_file_fails_on_sha(tmp_path):
    p = tmp_path / "b.archive"
    w = write(p, b"a" * 3000, key=None)
    data = bytearray(p.read_bytes())
    data[1500] ^= 0x20
    p.write_bytes(bytes(data))
    with pytest.raises(archive.ArchiveError, match="sha256"):
        read(p, key=None, w=w)


def test_wrong_key_is_named_as_such(tmp_path):
    p = tmp_path / "b.archive"
    write(p, b"secret data" * 50)
    with pytest.raises(archive.ArchiveError, match="another backup key"):
        read(p, key=OTHER)
    with pytest.raises(archive.ArchiveError, match="no backup key"):
        read(p, key=None)


def test_no_two_files_share_a_file_key(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write(a, b"same" * 100)
    write(b, b"same" * 100)
    assert a.read_bytes()[archive.HEADER_SIZE:] != b.read_bytes()[archive.HEADER_SIZE:]


def test_disk_error_surfaces_and_leaves_nothing(tmp_path, monkeypatch):
    p = tmp_path / "b.archive"
    real = os.write
    calls = {"n": 0}

    def failing(fd, data):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(28, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(archive.os, "write", failing)
    with pytest.raises(OSError, match="No space"):
        with archive.Sink(p, KEY, chunk=64) as s:
            for _ in range(100):
                s.write(b"q" * 64)
            s.commit()
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []
