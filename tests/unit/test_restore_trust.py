"""Restore under damage: PITR past a damaged newest base, no unproven byte into mongorestore, bad --to input,
two backups in one second. The stand-in member and tools of backup_env; the wire side is tests/protocol."""

import hashlib
import json
import subprocess
import time

import pytest
from click.testing import CliRunner

from installer.backup import archive, catalog, restore, slices as oplog, source, times
from installer.cli import main

from .backup_env import T0, Bed, bed, entry  # noqa: F401


def dbrs(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def one_line_error(r, code):
    assert r.exit_code == code, r.output
    assert r.output.count("\n") == 1 and r.output.startswith("error: "), r.output
    return r.output


@pytest.fixture(autouse=True)
def same_server(monkeypatch):
    monkeypatch.setattr(restore, "cluster_version", lambda spec, pw: "8.0.4")


def two_bases_and_slices(b):
    """Base A, a slice, base B, a slice: A + both slices cover every time after A."""
    a = b.backup()
    b.member.oplog += [entry(T0 + 60, 1), entry(T0 + 70, 1)]
    oplog.run(b.spec, b.config, local=b.local("mongod2"))
    b.member.oplog += [entry(T0 + 80, 1)]
    bb = b.backup(now=lambda: time.time() + 1)
    b.member.oplog += [entry(T0 + 90, 1), entry(T0 + 100, 1)]
    oplog.run(b.spec, b.config, local=b.local("mongod2"), now=lambda: time.time() + 2)
    return a, bb


def flip(path, at):
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


# ------------------------------------------------------------ issue 9 item 4: PITR over verified bases

def test_a_damaged_newest_base_is_passed_over_and_named(bed):
    a, b = two_bases_and_slices(bed)
    flip(bed.bdir / "full" / b.name, 5000)
    r = dbrs("restore", "--to", f"@{T0 + 95}", "--yes", "--config", bed.config)
    assert r.exit_code == 0, r.output
    assert f"skip   {b.name}: damaged (" in r.output and f"base   {a.name}" in r.output
    base_run, replay = bed.records("mongorestore")
    assert base_run["stdin_sha256"] == hashlib.sha256(bed.dump_bytes()).hexdigest()
    assert replay["oplog_ts"] == [[T0 + 60, 1], [T0 + 70, 1], [T0 + 80, 1], [T0 + 90, 1]]


def test_base_pins_the_base_and_a_damaged_pinned_base_fails(bed):
    a, b = two_bases_and_slices(bed)
    r = dbrs("restore", "--to", f"@{T0 + 95}", "--base", a.name, "--dry-run", "--config", bed.config)
    assert r.exit_code == 0 and f"base   {a.name}" in r.output
    flip(bed.bdir / "full" / b.name, 5000)
    r = dbrs("restore", "--to", f"@{T0 + 95}", "--base", b.name, "--yes", "--config", bed.config)
    assert f"--base {b.name}: " in one_line_error(r, 1) and "pick another base" in r.output
    r = dbrs("restore", "--to", f"@{T0 + 95}", "--base", "nope.archive", "--yes", "--config", bed.config)
    assert "--base: nope.archive is not a full backup of this cluster" in one_line_error(r, 2)
    r = dbrs("restore", a.name, "--base", a.name, "--config", bed.config)
    assert "--base: only goes with --to" in one_line_error(r, 2)
    assert bed.records("mongorestore") == []


# ------------------------------------------------------------ issue 9 item 5: no unproven byte is fed

@pytest.mark.parametrize("encrypt", [False, True])
def test_a_byte_changed_while_restoring_never_reaches_mongorestore(tmp_path, monkeypatch, encrypt):
    b = Bed(tmp_path, monkeypatch, encrypt=encrypt)
    monkeypatch.setenv("DBRS_STANDIN_DUMP_BYTES", str(3 << 20))
    r = b.backup()
    path = b.bdir / "full" / r.name
    tap = tmp_path / "tap"
    monkeypatch.setenv("DBRS_STANDIN_RESTORE_TAP", str(tap))
    real = subprocess.Popen

    def popen_then_damage(argv, *a, **kw):
        proc = real(argv, *a, **kw)
        if "--archive" in argv:
            flip(path, (2 << 20) + 12345)       # after every check that ran before the feed
        return proc

    monkeypatch.setattr(subprocess, "Popen", popen_then_damage)
    res = dbrs("restore", r.name, "--yes", "--config", b.config)
    assert res.exit_code == 1, res.output
    assert "chunk 2" in res.output and "cannot be trusted" in res.output
    assert "The cluster now holds:" in res.output
    # the backup failed its proof: redoing it from the same file cannot help (found by the black-box attack)
    assert "Do not redo it from this backup" in res.output and "to redo it" not in res.output
    fed = tap.read_bytes()
    assert fed == b.dump_bytes()[:len(fed)] and len(fed) <= 2 << 20      # only proven chunks, none after
    assert b.records("mongorestore") == []        # killed before it saw an end: never taken for a whole archive


@pytest.mark.parametrize("encrypt", [False, True])
def test_manifests_from_before_the_proofs_still_restore_and_still_prove(tmp_path, monkeypatch, encrypt):
    b = Bed(tmp_path, monkeypatch, encrypt=encrypt)
    monkeypatch.setenv("DBRS_STANDIN_DUMP_BYTES", str(3 << 20))
    r = b.backup()
    mpath = b.bdir / "full" / (r.name + catalog.MANIFEST)
    m = json.loads(mpath.read_text())
    if encrypt:
        assert len(bytes.fromhex(m.pop("salt"))) == 16
    else:
        assert len(m["chunks"]["sha256"]) == 3 and m["chunks"]["size"] == archive.CHUNK
        del m["chunks"]
    mpath.write_text(json.dumps(m))
    res = dbrs("restore", r.name, "--yes", "--config", b.config)
    assert res.exit_code == 0, res.output
    assert b.records("mongorestore")[0]["stdin_sha256"] == hashlib.sha256(b.dump_bytes()).hexdigest()
    flip(b.bdir / "full" / r.name, (1 << 20) + 5)
    res = dbrs("restore", r.name, "--yes", "--config", b.config)
    assert "does not match its manifest" in one_line_error(res, 1) and len(b.records("mongorestore")) == 1


def test_a_name_of_100000_characters_is_bad_input_in_one_bounded_line(bed):
    r = dbrs("restore", "x" * 100_000, "--yes", "--config", bed.config)
    assert len(one_line_error(r, 2)) < 300 and "NAME: " in r.output


def test_an_encrypted_file_swapped_for_another_backup_is_refused_before_feeding(bed):
    first = bed.backup()
    second = bed.backup(now=lambda: time.time() + 1)
    p1, p2 = bed.bdir / "full" / first.name, bed.bdir / "full" / second.name
    p1.write_bytes(p2.read_bytes())          # same key, every chunk authenticates, but it is not `first`
    res = dbrs("restore", first.name, "--yes", "--config", bed.config)
    assert "is not the file its manifest describes" in one_line_error(res, 1)
    assert bed.records("mongorestore") == []


# ------------------------------------------------------------ issue 9 item 7: --to that is no time

@pytest.mark.parametrize("bad", ["@inf", "@nan", "@1e308", "@-1e30", "@99999999999999", "@-1",
                                 "2026-11-28T10:00:00Z+99999999999", "@1764300000.5+2", "x" * 100_000, "yesterday"])
def test_to_that_is_not_a_restorable_time_is_exit_2_one_bounded_line(bed, bad):
    r = dbrs("restore", "--to", bad, "--yes", "--config", bed.config)
    out = one_line_error(r, 2)
    assert out.startswith("error: --to: ") and len(out) < 400
    assert bed.records("mongorestore") == []


def test_parse_time_forms():
    from installer.cli.backup import parse_time

    assert parse_time("2026-11-28T10:00:00Z") == (times.parse_iso("2026-11-28T10:00:00Z"), None)
    assert parse_time("2026-11-28T10:00:00Z+3") == (times.parse_iso("2026-11-28T10:00:00Z"), 3)
    assert parse_time("2026-11-28T11:00:00+01:00+7") == (times.parse_iso("2026-11-28T10:00:00Z"), 7)
    assert parse_time("@1764300000+2") == (1764300000.0, 2)
    assert parse_time("@1764300000.5") == (1764300000.5, None)


# ------------------------------------------------------------ issue 9 item 9: two backups in one second

def test_two_backups_in_the_same_second_get_two_names(bed):
    at = 1_764_300_000.25
    r1 = bed.backup(now=lambda: at)
    r2 = bed.backup(now=lambda: at)
    assert r1.status == r2.status == "done" and r1.name != r2.name
    assert len(catalog.scan(bed.bdir, catalog.FULL)[0]) == 2
    assert r1.name == f"dbrs-65f000000000000000000001-{times.stamp(at)}.archive"
    assert times.stamp(at) == "20251128T032000.250000Z"


@pytest.mark.parametrize("encrypt", [False, True])
def test_a_damaged_base_is_refused_before_any_byte_reaches_the_cluster(tmp_path, monkeypatch, encrypt):
    b = Bed(tmp_path, monkeypatch, encrypt=encrypt)
    monkeypatch.setenv("DBRS_STANDIN_DUMP_BYTES", str(3 << 20))
    r = b.backup()
    flip(b.bdir / "full" / r.name, (2 << 20) + 99)
    tap = tmp_path / "tap"
    monkeypatch.setenv("DBRS_STANDIN_RESTORE_TAP", str(tap))
    res = dbrs("restore", r.name, "--drop", "--yes", "--config", b.config)
    assert "chunk 2" in one_line_error(res, 1) and "cannot be trusted" in res.output
    assert not tap.exists() and b.records("mongorestore") == []     # nothing dropped, nothing fed


# ------------------------------------------------------------ issue 15 item 1: continuity proven by the read itself

def test_a_rollover_between_the_bounds_check_and_the_read_is_a_gap_not_a_silent_hole(bed, monkeypatch):
    bed.backup()
    bed.member.oplog += [entry(T0 + 60, 1), entry(T0 + 70, 1)]
    assert oplog.run(bed.spec, bed.config, local=bed.local("mongod2")).status == "done"
    # the bounds say the oplog still reaches the last slice (T0+70) ...
    monkeypatch.setattr(source, "oplog_bounds", lambda client: (times.ts_int(T0, 1), times.ts_int(T0 + 200, 1)))
    # ... but by the time the entries are read, it rolled past it
    bed.member.oplog = [entry(T0 + 150, 1), entry(T0 + 200, 1)]
    with pytest.raises(oplog.Gap, match=r"rolled past .*previous slice.s last entry.*; nothing was saved"):
        oplog.run(bed.spec, bed.config, local=bed.local("mongod2"), now=lambda: time.time() + 5)
    assert [s.manifest.last for s in catalog.scan(bed.bdir, catalog.OPLOG)[0]] == [times.ts_int(T0 + 70, 1)]
    assert bed.member.finds[-1]["ts"]["$gte"].time == T0 + 70
