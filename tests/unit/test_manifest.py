"""The typed manifest: every old shape reads and writes back unchanged; a newer format is refused; Entry.open proves."""

import json
import os

import pytest

from installer.backup import archive, catalog, times
from installer.backup.manifest import FORMAT, Manifest, ManifestError

# a full backup's manifest as the first releases wrote it: no format, no replset_id, no salt or chunk hashes
OLD_FULL = {"kind": "full", "name": "dbrs-20261128T020000Z.archive", "cluster": "dbrs", "member": "mongod2",
            "host": "db2", "started": "2026-11-28T02:00:00Z", "finished": "2026-11-28T02:01:00Z", "bytes": 10,
            "plain_bytes": 8, "sha256": "ab" * 32, "encrypted": False, "oplog_start": {"t": 1, "i": 2},
            "oplog_end": {"t": 3, "i": 4}, "collections": {"app.x": 1}, "some_future_note": [1, 2]}


def test_an_old_manifest_reads_typed_and_writes_back_byte_for_byte():
    m = Manifest.from_dict(OLD_FULL)
    assert m.oplog_start == times.ts_int(1, 2) and m.oplog_end == times.ts_int(3, 4)
    assert m.replset_id is None and m.salt is None and m.chunks is None and m.format == FORMAT
    assert m.to_dict() == OLD_FULL
    assert m.dumps() == json.dumps(OLD_FULL, indent=2, sort_keys=True) + "\n"


def test_a_new_manifest_writes_the_keys_its_kind_always_wrote():
    full = Manifest(kind="full", name="n", cluster="dbrs", bytes=1, sha256="x", encrypted=False, key_id=None,
                    oplog_start=5, oplog_end=6, collections={})
    d = full.to_dict()
    assert d["format"] == FORMAT and d["replset_id"] is None and d["key_id"] is None
    assert d["oplog_start"] == {"t": 0, "i": 5} and d["collections"] == {}
    assert "after" not in d and "salt" not in d and "rebuilt" not in d
    rebuilt = Manifest(kind="oplog", name="s", cluster="dbrs", rebuilt=True, first=1, last=2, after=0, count=2,
                       gap=False)
    d = rebuilt.to_dict()
    assert "replset_id" not in d and "oplog_start" not in d and d["gap"] is False and d["after"] == {"t": 0, "i": 0}


@pytest.mark.parametrize("bad, why", [
    ({"format": FORMAT + 1, "kind": "full", "name": "n"}, "newer than this dbrs reads"),
    ({"kind": "oplog", "name": "n", "first": 17}, "not {t, i}"),
    ([1, 2], "not a JSON object"),
])
def test_what_is_no_manifest_is_refused_by_name(bad, why):
    with pytest.raises(ManifestError, match=why):
        Manifest.from_dict(bad)


def _full_file(tmp_path, data=b"x" * 3000, manifest=None):
    d = tmp_path / "full"
    d.mkdir()
    name = catalog.file_name("dbrs", catalog.FULL, 1_800_000_000)
    with archive.Sink(d / name) as s:
        s.write(data)
        w = s.commit()
    m = Manifest(kind="full", name=name, cluster="dbrs", finished=times.iso(1_800_000_000), bytes=w.bytes,
                 plain_bytes=w.plain_bytes, sha256=w.sha256, encrypted=False, oplog_start=1, oplog_end=2,
                 **(manifest or {}))
    catalog.write_manifest(d / name, m)
    return d / name


def test_a_manifest_of_a_newer_format_makes_its_file_incomplete_not_a_backup(tmp_path):
    path = _full_file(tmp_path, manifest={"format": FORMAT + 1})
    good, bad = catalog.scan(tmp_path, catalog.FULL)
    assert good == [] and [b.name for b in bad] == [path.name]
    assert "newer than this dbrs reads" in bad[0].reason and "upgrade dbrs" in bad[0].reason


def test_entry_open_yields_the_plaintext_and_fails_on_an_altered_byte(tmp_path):
    path = _full_file(tmp_path)
    (e,), _ = catalog.scan(tmp_path, catalog.FULL)
    assert b"".join(e.open(None)) == b"x" * 3000
    with open(path, "r+b") as f:
        f.seek(100)
        f.write(b"y")
    with pytest.raises(archive.ArchiveError, match="does not match the manifest"):
        b"".join(e.open(None))
    os.unlink(path)
    with pytest.raises(archive.ArchiveError, match="missing"):
        b"".join(e.open(None))


def test_a_remote_manifest_that_does_not_read_is_never_counted_good():
    from installer.backup import remotes

    ok = dict(OLD_FULL, bytes=7)
    assert remotes.Remote("full", OLD_FULL["name"], 7, ok).good
    for bad in (dict(ok, format=FORMAT + 1), dict(ok, oplog_start="yesterday"), dict(ok, bytes=8)):
        assert not remotes.Remote("full", OLD_FULL["name"], 7, bad).good
