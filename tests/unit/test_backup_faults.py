"""Backups under faults (issue 9): every case an independent fault campaign found, reproduced.

Each test drives the real pipeline (stand-in mongodump on PATH, the stand-in
member client) or the CLI, injects one fault, and checks what the operator
would rely on: nothing good is deleted, nothing damaged counts as good,
nothing hangs for ever, every failure is one line with the right exit code.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from installer.backup import archive, catalog, dump, slices as oplog, source, status, times, verification, history
from installer.cli import main
from installer.errors import DbrsError

from .backup_env import STANDINS, T0, Bed, bed, entry  # noqa: F401

DAY = 86400


def dbrs(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def lines(result):
    return [ln for ln in result.output.splitlines() if ln.strip()]


def flip(path, offset, bit=0x01):
    data = bytearray(Path(path).read_bytes())
    data[offset] ^= bit
    Path(path).write_bytes(bytes(data))


def good_names(b, kind=catalog.FULL):
    return [e.name for e in catalog.scan(b.bdir, kind)[0]]


def quarantined(b):
    return sorted(q["name"] for q in catalog.quarantined(b.bdir))


def aged(b, days_ago):
    """One backup taken `days_ago` days ago (the clock handed to run())."""
    return b.backup(now=lambda: time.time() - days_ago * DAY).name


def alive(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return "State:\tZ" not in f.read()
    except FileNotFoundError:
        return False


# ----------------------------------------------------- 1. prune and good means verified

def test_prune_keeps_the_last_good_backups_when_the_newer_ones_have_a_flipped_bit(bed):
    """The campaign's case: all backups past retention, the newest keep_min silently damaged."""
    old = [aged(bed, d) for d in (30, 29, 28)]
    damaged = [aged(bed, d) for d in (21, 20)]          # keep_min = 2
    for n in damaged:
        p = bed.bdir / "full" / n
        flip(p, p.stat().st_size // 2)
    r = dbrs("prune", "--config", bed.config)
    # the two newest good ones stay, the damaged ones are quarantined (never deleted, never counted)
    assert r.exit_code == 1, r.output
    assert good_names(bed) == old[1:]
    assert quarantined(bed) == sorted(damaged)
    assert "quarantined" in r.output and damaged[0] in r.output
    assert r.output.strip().splitlines()[-1].startswith("error: ")
    for n in damaged:
        assert (bed.bdir / "quarantine" / n).exists()


def test_prune_counts_only_verified_backups_and_reverifies_before_deleting(bed, monkeypatch):
    names = [aged(bed, d) for d in (30, 20, 10)]
    calls = []
    real = verification.check

    def spy(entry, key, *a, **kw):
        calls.append(entry.name)
        return real(entry, key, *a, **kw)

    monkeypatch.setattr(verification, "check", spy)
    r = dbrs("prune", "--json", "--config", bed.config)
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["deleted_full"] == names[:1]
    # the two it relies on (keep_min) were read again before the oldest went
    assert sorted(calls) == sorted(names[1:])
    for n in names[1:]:
        rec = verification.last(bed.bdir / "full" / n)
        assert rec["ok"] is True and rec["how"] == "prune"


def test_a_backup_gets_a_verification_record_at_creation_and_list_shows_it(bed):
    r = bed.backup()
    rec = verification.last(bed.bdir / "full" / r.name)
    assert rec["ok"] is True and rec["how"] == "written" and rec["time"]
    out = dbrs("backup", "list", "--config", bed.config)
    assert "verified" in out.output and rec["time"] in out.output
    data = json.loads(dbrs("backup", "list", "--json", "--config", bed.config).output)
    assert data["full"][0]["verification"]["how"] == "written"


def _encrypted_offsets(size):
    """One offset in each part of an encrypted file: header, a chunk's data, its tag, the last chunk."""
    chunk = archive.CHUNK + archive.TAG
    return {
        "header magic": 2,
        "header salt": 14,
        "header key id": archive.HEADER_SIZE - 3,
        "first chunk data": archive.HEADER_SIZE + 100,
        "first chunk tag": archive.HEADER_SIZE + chunk - 5,
        "last chunk": size - 40,
        "last tag": size - 2,
    }


@pytest.mark.parametrize("part", list(_encrypted_offsets(10 << 20)))
def test_a_flipped_bit_anywhere_fails_verify_and_is_quarantined(tmp_path, monkeypatch, part):
    b = Bed(tmp_path, monkeypatch)
    monkeypatch.setenv("DBRS_STANDIN_DUMP_BYTES", str(2_500_000))    # three chunks
    name = b.backup().name
    p = b.bdir / "full" / name
    flip(p, _encrypted_offsets(p.stat().st_size)[part])
    r = dbrs("backup", "verify", "--all", "--config", b.config)
    assert r.exit_code == 1 and f"FAILED {name}" in r.output, r.output
    assert quarantined(b) == [name] and good_names(b) == []
    listing = dbrs("backup", "list", "--config", b.config).output
    assert f"quarantined {name}" in listing


def test_a_flipped_bit_in_a_plain_backup_is_caught_too(tmp_path, monkeypatch):
    b = Bed(tmp_path, monkeypatch, encrypt=False)
    name = b.backup().name
    flip(b.bdir / "full" / name, 1000)
    r = dbrs("backup", "verify", "--config", b.config)
    assert r.exit_code == 1 and "sha256" in r.output
    assert quarantined(b) == [name]


@pytest.mark.parametrize("field,value", [("sha256", "0" * 64), ("plain_bytes", 1), ("key_id", "00" * 8),
                                         ("cluster", None)])
def test_a_changed_manifest_field_fails_verify(bed, field, value):
    name = bed.backup().name
    mp = bed.bdir / "full" / (name + catalog.MANIFEST)
    m = json.loads(mp.read_text())
    if value is None:
        del m[field]
    else:
        m[field] = value
    mp.write_text(json.dumps(m))
    r = dbrs("backup", "verify", name, "--config", bed.config)
    assert r.exit_code == 1, (field, r.output)


def test_swapped_manifests_are_caught(bed):
    a = bed.backup(now=lambda: time.time() - 10).name
    b = bed.backup().name
    fa, fb = (bed.bdir / "full" / (n + catalog.MANIFEST) for n in (a, b))
    ta, tb = fa.read_text(), fb.read_text()
    fa.write_text(tb)
    fb.write_text(ta)
    r = dbrs("backup", "verify", "--all", "--config", bed.config)
    assert r.exit_code == 1 and r.output.count("manifest names another file") == 2


def test_wrong_key_fails_verify_without_quarantining_anything(bed):
    name = bed.backup().name
    Path(bed.config).with_name("backup.key").write_bytes(b"MTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTE=\n")
    r = dbrs("backup", "verify", "--all", "--config", bed.config)
    assert r.exit_code == 1 and "another backup key" in r.output
    assert quarantined(bed) == [] and good_names(bed) == [name]     # the key is wrong, not the backup


def test_garbage_key_is_bad_input_in_one_line(bed):
    Path(bed.config).with_name("backup.key").write_bytes(b"not base64 at all!!\n")
    for args in (["backup"], ["backup", "verify"], ["oplog"]):
        r = dbrs(*args, "--config", bed.config)
        assert r.exit_code == 2 and len(lines(r)) == 1 and "backup.key" in r.output, (args, r.output)


def test_slices_are_verified_and_quarantined_the_same_way(bed):
    bed.backup()
    bed.member.oplog += [entry(T0 + 60, 1), entry(T0 + 70, 1)]
    s = oplog.run(bed.spec, bed.config, local=bed.local("mongod2"))
    p = bed.bdir / "oplog" / s.name
    assert verification.last(p)["ok"] is True
    flip(p, p.stat().st_size - 20)
    r = dbrs("backup", "verify", "--all", "--config", bed.config)
    assert r.exit_code == 1 and f"FAILED {s.name}" in r.output
    assert quarantined(bed) == [s.name] and good_names(bed, catalog.OPLOG) == []


# ----------------------------------------------------- 3. verify checks what list knows

def test_verify_all_fails_on_cut_off_backups(bed):
    names = [aged(bed, d) for d in (3, 2, 1)]
    for n in names:
        p = bed.bdir / "full" / n
        p.write_bytes(p.read_bytes()[:-1000])
    for args in ([], ["--all"]):
        r = dbrs("backup", "verify", *args, "--config", bed.config)
        assert r.exit_code == 1, (args, r.output)
        assert all(n in r.output for n in names), (args, r.output)
    r = dbrs("backup", "list", "--config", bed.config)
    assert all(f"quarantined {n}" in r.output for n in names)


def test_verify_all_fails_on_missing_data_and_extra_files(bed):
    a = bed.backup(now=lambda: time.time() - 10).name
    os.unlink(bed.bdir / "full" / a)                         # the data went, the manifest stayed
    (bed.bdir / "full" / "notes.txt").write_text("x")          # something nobody put there on purpose
    r = dbrs("backup", "verify", "--all", "--config", bed.config)
    assert r.exit_code == 1
    assert f"{a}: data file is missing" in r.output and "notes.txt: not a dbrs file" in r.output
    assert "no full backup" in r.output or "0 of" in r.output or "FAILED" in r.output


def test_verify_all_leaves_the_partial_of_a_running_backup_alone(bed):
    bed.backup()
    (bed.bdir / "full" / "dbrs-20991231T000000Z.archive.partial").write_bytes(b"x")
    with catalog.lock(bed.bdir, catalog.FULL):
        r = dbrs("backup", "verify", "--all", "--config", bed.config)
    assert r.exit_code == 0, r.output
    assert "in progress" in r.output


# ----------------------------------------------------- 6. a lost manifest never deletes data

def test_an_archive_whose_manifest_was_lost_is_quarantined_not_deleted_and_can_be_rebuilt(bed):
    name = bed.backup(now=lambda: time.time() - 60).name
    data = (bed.bdir / "full" / name).read_bytes()
    os.unlink(bed.bdir / "full" / (name + catalog.MANIFEST))
    assert bed.backup().status == "done"
    assert quarantined(bed) == [name]
    assert (bed.bdir / "quarantine" / name).read_bytes() == data
    r = dbrs("backup", "verify", "--rebuild-manifest", name, "--config", bed.config)
    assert r.exit_code == 0, r.output
    assert name in good_names(bed)
    m = json.loads((bed.bdir / "full" / (name + catalog.MANIFEST)).read_text())
    assert m["rebuilt"] and m["sha256"] == hashlib.sha256(data).hexdigest() and m["plain_bytes"] == 300_000
    assert verification.last(bed.bdir / "full" / name)["ok"] is True
    assert "rebuilt" in dbrs("backup", "list", "--config", bed.config).output


def test_a_slice_whose_manifest_was_lost_is_quarantined_and_rebuilt_from_its_entries(bed):
    bed.backup()
    bed.member.oplog += [entry(T0 + 60, 1), entry(T0 + 70, 1), entry(T0 + 80, 2)]
    s = oplog.run(bed.spec, bed.config, local=bed.local("mongod2"))
    os.unlink(bed.bdir / "oplog" / (s.name + catalog.MANIFEST))
    bed.member.oplog += [entry(T0 + 90, 1)]
    nxt = oplog.run(bed.spec, bed.config, local=bed.local("mongod2"), now=lambda: time.time() + 5)
    assert nxt.status == "done" and quarantined(bed) == [s.name]
    # the lost slice's entries are read again: the chain has no hole
    assert nxt.manifest["after"] == {"t": T0 + 50, "i": 1} and nxt.manifest["count"] == 4
    r = dbrs("backup", "verify", "--rebuild-manifest", s.name, "--config", bed.config)
    assert r.exit_code == 0, r.output
    m = json.loads((bed.bdir / "oplog" / (s.name + catalog.MANIFEST)).read_text())
    assert m["rebuilt"] and m["count"] == 3 and m["first"] == {"t": T0 + 60, "i": 1} and m["last"] == {"t": T0 + 80, "i": 2}
    r = dbrs("backup", "verify", "--all", "--config", bed.config)
    assert r.exit_code == 0, r.output


def test_rebuild_refuses_what_is_not_in_quarantine_and_damaged_bytes(bed):
    name = bed.backup().name
    r = dbrs("backup", "verify", "--rebuild-manifest", name, "--config", bed.config)
    assert r.exit_code == 2 and "not in quarantine" in r.output
    p = bed.bdir / "full" / name
    flip(p, p.stat().st_size // 2)
    os.unlink(str(p) + catalog.MANIFEST)
    bed.backup(now=lambda: time.time() + 5)
    r = dbrs("backup", "verify", "--rebuild-manifest", name, "--config", bed.config)
    assert r.exit_code == 1 and "does not authenticate" in r.output and len(lines(r)) == 1
    assert quarantined(bed) == [name]


def test_sigterm_during_a_slice_leaves_no_partial(bed, monkeypatch):
    before = signal.getsignal(signal.SIGTERM)   # another module (the host test bed) may have its own
    bed.backup()
    bed.member.oplog += [entry(T0 + 60, 1)]
    real = oplog.write_slice

    def term(docs, sink, *rest):
        sink.write(b"x" * 1000)
        signal.raise_signal(signal.SIGTERM)
        return real(docs, sink, *rest)

    monkeypatch.setattr(oplog, "write_slice", term)
    with pytest.raises(DbrsError, match="stopped by SIGTERM"):
        oplog.run(bed.spec, bed.config, local=bed.local("mongod2"))
    assert bed.files("oplog") == []
    assert signal.getsignal(signal.SIGTERM) == before                    # the handler is put back


def test_kill_between_rename_and_manifest_loses_nothing(bed, monkeypatch):
    def die(path, manifest):
        raise KeyboardInterrupt                               # the process dies right here

    monkeypatch.setattr(catalog, "write_manifest", die)
    with pytest.raises(KeyboardInterrupt):
        bed.backup(now=lambda: time.time() - 60)
    monkeypatch.undo()
    b2 = Bed(bed.tmp, monkeypatch)
    assert b2.backup().status == "done"
    assert len(quarantined(b2)) == 1


def test_no_room_for_the_record_keeps_the_backup_unverified(bed, monkeypatch, capsys):
    def full(*a, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(verification, "write", full)
    r = bed.backup()
    assert r.status == "done" and good_names(bed) == [r.name]
    assert "could not be written (No space left on device)" in capsys.readouterr().err   # said, not silent
    assert verification.last(bed.bdir / "full" / r.name) is None    # prune reads it back before relying on it


def test_two_verify_runs_quarantining_the_same_file_do_not_collide(bed):
    name = bed.backup().name
    p = bed.bdir / "full" / name
    e = catalog.scan(bed.bdir, catalog.FULL)[0][0]
    assert catalog.quarantine(bed.bdir, p, "first") == name
    assert catalog.quarantine(bed.bdir, e.path, "second") is None    # the other run was first
    assert [q["reason"] for q in catalog.quarantined(bed.bdir)] == ["first"]


def test_a_backup_without_a_record_is_verified_before_prune_relies_on_it(bed, monkeypatch):
    """Killed between manifest and record, or taken by an older dbrs: not trusted until read."""
    names = [aged(bed, d) for d in (30, 20, 10)]
    for n in names:
        os.unlink(verification.record_path(bed.bdir / "full" / n))
    p = bed.bdir / "full" / names[2]
    flip(p, p.stat().st_size // 2)
    r = dbrs("prune", "--config", bed.config)
    assert r.exit_code == 1
    assert good_names(bed) == names[:2] and quarantined(bed) == [names[2]]


# ----------------------------------------------------- 2. a hung dump

def test_a_hung_mongodump_is_killed_by_the_stall_watchdog(bed, monkeypatch, tmp_path):
    monkeypatch.setenv("DBRS_STANDIN_DUMP_HANG_AFTER", "100000")
    monkeypatch.setenv("DBRS_STANDIN_IGNORE_TERM", "1")
    monkeypatch.setenv("DBRS_STANDIN_PIDFILE", str(tmp_path / "dump.pid"))
    t = time.monotonic()
    with pytest.raises(DbrsError, match=r"mongodump: no output for 1 s.*killed"):
        bed.backup(stall=1)
    assert time.monotonic() - t < 15
    assert not alive(int((tmp_path / "dump.pid").read_text()))
    assert bed.files() == []                                      # no .partial
    monkeypatch.delenv("DBRS_STANDIN_DUMP_HANG_AFTER")
    assert bed.backup().status == "done"                          # and the next run works


def _run_in_child(b, tmp_path):
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(STANDINS)!r})
        from installer import spec
        from installer.backup import source
        from installer.cli import main
        from fake_member import FakeMember, entry
        s = spec.load({b.config!r})
        m = FakeMember(s, {{"mongod2": "SECONDARY", "mongod1": "PRIMARY"}}, [entry({T0}, 1)])
        source.connect = m.connect
        source.local_members = lambda spec: [spec.member("mongod2")]
        main(["backup", "--config", {b.config!r}])
    """)
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_sigterm_kills_the_dump_and_leaves_no_partial(bed, monkeypatch, tmp_path):
    monkeypatch.setenv("DBRS_STANDIN_DUMP_HANG_AFTER", "100000")
    monkeypatch.setenv("DBRS_STANDIN_IGNORE_TERM", "1")
    monkeypatch.setenv("DBRS_STANDIN_PIDFILE", str(tmp_path / "dump.pid"))
    proc = _run_in_child(bed, tmp_path)
    deadline = time.time() + 20
    while time.time() < deadline and not (any(n.endswith(".partial") for n in bed.files())
                                          and (tmp_path / "dump.pid").exists()):
        time.sleep(0.05)
    assert any(n.endswith(".partial") for n in bed.files())
    time.sleep(0.3)
    pid = int((tmp_path / "dump.pid").read_text())
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    # ends by the signal (a shell shows 143): `systemctl stop` of the unit is a stop, not a failure to alert on
    assert proc.returncode == -signal.SIGTERM, err
    assert err.decode().count("\n") == 1 and "SIGTERM" in err.decode()
    deadline = time.time() + 5
    while alive(pid) and time.time() < deadline:
        time.sleep(0.05)
    assert not alive(pid), "mongodump was orphaned"
    assert bed.files() == []


def test_the_tool_runs_in_its_own_process_group(bed, monkeypatch, tmp_path):
    monkeypatch.setenv("DBRS_STANDIN_PIDFILE", str(tmp_path / "dump.pid"))
    monkeypatch.setenv("DBRS_STANDIN_DUMP_DELAY", "0.2")
    seen = {}
    real = dump.Progress.__call__

    def peek(self, n):
        pid = int((tmp_path / "dump.pid").read_text())
        seen["pgid"] = os.getpgid(pid)
        seen["pid"] = pid
        return real(self, n)

    monkeypatch.setattr(dump.Progress, "__call__", peek)
    bed.backup(progress=dump.Progress())
    assert seen["pgid"] == seen["pid"] != os.getpgrp()


@pytest.mark.parametrize("unit", ["dbrs-backup.service", "dbrs-oplog.service", "dbrs-verify.service"])
def test_units_have_a_start_timeout(unit):
    import re

    text = (Path(__file__).resolve().parents[2] / "templates" / "systemd" / f"{unit}.j2").read_text()
    m = re.search(r"^TimeoutStartSec=(\S+)$", text, re.M)
    assert m and m.group(1) not in ("infinity", "0"), unit


# ----------------------------------------------------- disk full, read-only, a file for a folder

@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_read_only_backup_dir_is_one_line_for_every_command(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(ro)]).returncode != 0:
        pytest.skip("cannot mount tmpfs here")
    try:
        b = Bed(tmp_path, monkeypatch, backup_dir=ro)
        for d in (30, 29, 28):
            aged(b, d)
        b.member.oplog += [entry(T0 + 60, 1)]
        assert subprocess.run(["mount", "-o", "remount,ro", str(ro)]).returncode == 0
        for args in (["backup"], ["prune"], ["oplog"], ["backup", "verify", "--all"]):
            r = dbrs(*args, "--config", b.config)
            assert r.exit_code == 1 and len(lines(r)) == 1, (args, r.output)
            assert "read-only" in r.output and str(ro) in r.output, (args, r.output)
        r = dbrs("backup", "list", "--config", b.config)
        assert r.exit_code == 0 and "verified" in r.output
    finally:
        subprocess.run(["umount", str(ro)])


def test_backup_dir_that_is_a_file_is_bad_input(tmp_path, monkeypatch):
    f = tmp_path / "afile"
    f.write_text("x")
    b = Bed(tmp_path, monkeypatch, backup_dir=f)
    for args in (["backup"], ["prune"], ["oplog"], ["backup", "list"], ["backup", "verify", "--all"]):
        r = dbrs(*args, "--config", b.config)
        assert r.exit_code == 2 and len(lines(r)) == 1 and "backup.dir" in r.output, (args, r.output)
    assert f.read_text() == "x"


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_disk_full_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    """A guard (this worked before issue 9): the new steps must not turn ENOSPC into a traceback."""
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)]).returncode != 0:
        pytest.skip("cannot mount tmpfs here")
    try:
        b = Bed(tmp_path, monkeypatch, backup_dir=small / "b")
        monkeypatch.setenv("DBRS_STANDIN_DUMP_BYTES", str(4 << 20))
        r = dbrs("backup", "--config", b.config)
        assert r.exit_code == 1 and len(lines(r)) == 1 and "No space left" in r.output
        assert b.files() == []
    finally:
        subprocess.run(["umount", str(small)])


# ----------------------------------------------------- 7. bad input, bounded

def test_config_that_is_not_utf8_is_bad_input(tmp_path):
    p = tmp_path / "cluster.toml"
    p.write_bytes(b"[cluster]\nname = \"\xff\xfe\"\n")
    for args in (["backup", "list"], ["backup"], ["prune"], ["oplog"], ["backup", "verify"]):
        r = dbrs(*args, "--config", str(p))
        assert r.exit_code == 2 and len(lines(r)) == 1 and "UTF-8" in r.output, (args, r.output)


@pytest.mark.parametrize("name", ["/etc/passwd", "../full/x.archive", "x" * 100_000, "dbrs-20990101T000000Z.archive",
                                  "nothing-like-a-backup"])
def test_a_bad_name_is_exit_2_in_one_short_line(bed, name):
    bed.backup()
    for args in (["backup", "verify", name], ["restore", name, "--dry-run"]):
        r = dbrs(*args, "--config", bed.config)
        assert r.exit_code == 2, (args, r.output[:300])
        assert len(lines(r)) == 1 and len(r.output) < 400 and "NAME" in r.output, r.output[:300]


# ----------------------------------------------------- 8. timers before bootstrap; status

class NotYet:
    """A member before bootstrap: the backup user cannot log in (it does not exist yet)."""

    def __init__(self, code=18, msg="Authentication failed."):
        self.code, self.msg = code, msg

    def connect(self, member, password):
        return self

    @property
    def admin(self):
        return self

    def command(self, name):
        from pymongo.errors import OperationFailure

        raise OperationFailure(self.msg, self.code, {"ok": 0, "errmsg": self.msg, "code": self.code})

    def close(self):
        pass


@pytest.mark.parametrize("code,msg", [(18, "Authentication failed."),
                                      (94, "no replset config has been received")])
def test_timers_before_bootstrap_wait_quietly(bed, monkeypatch, code, msg):
    monkeypatch.setattr(source, "connect", NotYet(code, msg).connect)
    monkeypatch.setattr(source, "local_members", lambda spec: [spec.member("mongod2")])
    for args in (["backup"], ["oplog"]):
        r = dbrs(*args, "--config", bed.config)
        assert r.exit_code == 0 and len(lines(r)) == 1 and "not bootstrapped yet" in r.output, (args, r.output)
        assert "password" not in r.output
    assert history.read_state(bed.state).get("failures", []) == []


def test_users_not_yet_on_the_chosen_secondary_wait_quietly(bed, monkeypatch):
    """The single-host layout: mongod1 answers, mongod2 (the source) has not received the users yet — right
    after `dbrs-install`, the oplog timer's first run failed with 'password does not match' (the quickstart)."""
    real = bed.member.connect

    def connect(member, password):
        return NotYet().connect(member, password) if member.name == "mongod2" else real(member, password)

    monkeypatch.setattr(source, "connect", connect)
    monkeypatch.setattr(source, "local_members", lambda spec: [spec.member("mongod1"), spec.member("mongod2")])
    for args in (["backup"], ["oplog"]):
        r = dbrs(*args, "--config", bed.config)
        assert r.exit_code == 0 and len(lines(r)) == 1 and "not bootstrapped yet" in r.output, (args, r.output)
    assert history.read_state(bed.state).get("failures", []) == []


def test_still_not_bootstrapped_after_the_grace_period_fails(bed, monkeypatch):
    monkeypatch.setattr(source, "connect", NotYet().connect)
    monkeypatch.setattr(source, "local_members", lambda spec: [spec.member("mongod2")])
    assert dbrs("backup", "--config", bed.config).exit_code == 0
    monkeypatch.setattr(source, "BOOTSTRAP_GRACE_S", 0)
    r = dbrs("backup", "--config", bed.config)
    assert r.exit_code == 1 and "dbrs bootstrap" in r.output and len(lines(r)) == 1


def test_next_runs_are_parsed_by_unit_not_by_order():
    text = ("NextElapseUSecRealtime=Sun 2026-11-29 02:07:31 UTC\nId=dbrs-backup.timer\n\n"
            "NextElapseUSecRealtime=Sat 2026-11-28 11:25:00 UTC\nId=dbrs-oplog.timer\n\n"
            "NextElapseUSecRealtime=Sun 2026-11-29 04:00:00 UTC\nId=dbrs-verify.timer\n")
    assert status.parse_next_runs(text) == {"dbrs-backup.timer": "Sun 2026-11-29 02:07:31 UTC",
                                            "dbrs-oplog.timer": "Sat 2026-11-28 11:25:00 UTC",
                                            "dbrs-verify.timer": "Sun 2026-11-29 04:00:00 UTC"}
    assert status.parse_next_runs("Id=a.timer\nNextElapseUSecRealtime=\n\nNextElapseUSecRealtime=x\nId=b.timer\n") \
        == {"b.timer": "x"}


def test_status_warns_about_quarantined_files(bed):
    name = bed.backup().name
    flip(bed.bdir / "full" / name, 5000)
    dbrs("backup", "verify", "--config", bed.config)
    s = status.status_summary(bed.spec, str(Path(bed.config).parent))
    assert s["quarantined"] == [name]
    assert any("quarantine" in p for p in status.summary_problems(s))


def test_swapped_manifests_fail_status_before_any_verify_and_a_running_partial_does_not(bed):
    """status --check stayed green with two unusable backups until the weekly verify ran (found by the
    black-box attack); a `.partial` of a run that holds the lock is in progress, not a problem."""
    import fcntl

    a = bed.backup(now=lambda: time.time() - 10).name
    b = bed.backup().name
    fa, fb = (bed.bdir / "full" / (n + catalog.MANIFEST) for n in (a, b))
    ta, tb = fa.read_text(), fb.read_text()
    fa.write_text(tb)
    fb.write_text(ta)
    s = status.status_summary(bed.spec, str(Path(bed.config).parent))
    assert sorted(s["incomplete"]) == sorted([a, b])
    assert any("not usable backups" in p for p in status.summary_problems(s))
    fa.write_text(ta)
    fb.write_text(tb)
    partial = bed.bdir / "full" / "dbrs-65f000000000000000000001-20261128T020000.000000Z.archive.partial"
    partial.write_bytes(b"a dump in progress")
    fd = os.open(bed.bdir / ".full.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        s = status.status_summary(bed.spec, str(Path(bed.config).parent))
        assert s["incomplete"] == [] and not status.summary_problems(s)
        assert "in progress" in dbrs("backup", "list", "--config", bed.config).output
    finally:
        os.close(fd)
    s = status.status_summary(bed.spec, str(Path(bed.config).parent))
    assert s["incomplete"] == [partial.name]          # nobody holds the lock: a killed run's leftover


# ----------------------------------------------------- 9. state follows --config

def test_state_files_follow_config(tmp_path, monkeypatch):
    outside = tmp_path / "outside" / "state.json"
    b = Bed(tmp_path, monkeypatch)
    monkeypatch.setattr(history, "STATE_FILE", outside)
    assert dbrs("backup", "--config", b.config).exit_code == 0
    assert dbrs("backup", "verify", "--config", b.config).exit_code == 0
    assert not outside.exists()
    inside = history.state_path(b.config)
    assert str(inside).startswith(str(tmp_path)) and json.loads(inside.read_text())["last_verify"]
    assert history.state_path("/etc/dbrs/cluster.toml") == Path("/var/lib/dbrs/.backup/state.json")


# ----------------------------------------------------- concurrency and clock jumps

def test_prune_during_a_running_backup_never_touches_its_partial(bed, monkeypatch):
    [aged(bed, d) for d in (30, 29, 28)]
    (bed.bdir / "full" / "dbrs-20991231T000000Z.archive.partial").write_bytes(b"x")
    with catalog.lock(bed.bdir, catalog.OPLOG):
        pass
    r = dbrs("prune", "--config", bed.config)
    assert r.exit_code == 0, r.output
    assert (bed.bdir / "full" / "dbrs-20991231T000000Z.archive.partial").exists()


def test_verify_meeting_a_backup_pruned_meanwhile_quarantines_nothing(bed, monkeypatch):
    names = [aged(bed, d) for d in (2, 1)]
    real = verification.verify_entry

    def pruned_underneath(entry, key):
        if entry.name == names[0]:
            catalog.remove(entry.path)                     # prune deletes it while verify reads
        return real(entry, key)

    monkeypatch.setattr(verification, "verify_entry", pruned_underneath)
    r = dbrs("backup", "verify", "--all", "--config", bed.config)
    assert r.exit_code == 0, r.output
    assert f"skip   {names[0]}: removed while it was being read" in r.output
    assert quarantined(bed) == [] and good_names(bed) == names[1:]


KILL_AT = {
    # stage: (what to patch in the child, which call of it dies)
    "tool started": ("installer.tools", "spawn"),
    "data renamed, no manifest yet": ("installer.backup.catalog", "write_manifest"),
    "manifest written, no record yet": ("installer.backup.verification", "write"),
}


@pytest.mark.parametrize("stage", list(KILL_AT))
def test_kill_9_at_every_stage_of_a_backup_loses_nothing_and_the_next_run_converges(bed, stage):
    first = bed.backup(now=lambda: time.time() - 120).name
    module, fn = KILL_AT[stage]
    script = textwrap.dedent(f"""
        import importlib, os, signal, sys, time
        sys.path.insert(0, {str(STANDINS)!r})
        from installer import spec
        from installer.backup import full as backup
        from fake_member import FakeMember, entry
        mod = importlib.import_module({module!r})
        real = getattr(mod, {fn!r})
        def die(*a, **kw):
            if {fn!r} == "spawn":
                real(*a, **kw)
                time.sleep(0.5)
            os.kill(os.getpid(), signal.SIGKILL)
        setattr(mod, {fn!r}, die)
        s = spec.load({bed.config!r})
        m = FakeMember(s, {{"mongod2": "SECONDARY", "mongod1": "PRIMARY"}}, [entry({T0}, 1)])
        backup.run(s, {bed.config!r}, connect_fn=m.connect, local=[s.member("mongod2")], now=lambda: time.time() - 60)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-500:]
    assert first in good_names(bed)                                  # the older backup is untouched
    r = dbrs("backup", "list", "--config", bed.config)
    assert r.exit_code == 0
    killed = bed.backup()                                             # the next run converges
    assert killed.status == "done"
    good = good_names(bed)
    assert first in good and killed.name in good
    assert not any(n.endswith(".partial") for n in bed.files())
    if stage == "data renamed, no manifest yet":
        assert len(quarantined(bed)) == 1                             # kept, not deleted, not counted
    elif stage == "manifest written, no record yet":
        assert len(good) == 3 and sum(verification.last(bed.bdir / "full" / n) is None for n in good) == 1
        assert "not verified yet" in r.output
    else:
        assert quarantined(bed) == [] and len(good) == 2
    v = dbrs("backup", "verify", "--all", "--config", bed.config)
    assert v.exit_code == (1 if stage == "data renamed, no manifest yet" else 0), v.output


def test_kill_9_in_the_middle_of_prune_never_loses_a_kept_backup(bed):
    names = [aged(bed, d) for d in (30, 29, 20, 10)]
    script = textwrap.dedent(f"""
        import os, signal, sys
        from installer.backup import catalog, times, history
        from installer.cli import main
        real = catalog.remove
        def die(path):
            os.unlink(str(path) + catalog.MANIFEST)       # the manifest goes first, then the process dies
            os.kill(os.getpid(), signal.SIGKILL)
        catalog.remove = die
        main(["prune", "--config", {bed.config!r}])
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-500:]
    assert good_names(bed) == names[1:]
    r = dbrs("prune", "--config", bed.config)
    assert r.exit_code == 0, r.output
    assert good_names(bed) == names[2:]                    # keep_min = 2, both read back
    assert bed.backup().status == "done"                   # the half-deleted one is quarantined, not lost
    assert quarantined(bed) == [names[0]]


def test_a_slice_can_run_while_prune_reads_back_backups(bed, monkeypatch):
    """Prune holds the slices' lock only to delete: the 5-minute slice timer must not fail for its read-back."""
    [aged(bed, d) for d in (30, 20, 10)]
    bed.member.oplog += [entry(T0 + 60, 1)]
    seen = []
    real = verification.check

    def slice_meanwhile(entry, key, *a, **kw):
        if not seen:
            seen.append(oplog.run(bed.spec, bed.config, local=bed.local("mongod2")).status)
        return real(entry, key, *a, **kw)

    monkeypatch.setattr(verification, "check", slice_meanwhile)
    r = dbrs("prune", "--config", bed.config)
    assert r.exit_code == 0, r.output
    assert seen == ["done"]


def test_a_clock_jump_during_a_dump_does_not_trip_the_watchdog(bed, monkeypatch):
    monkeypatch.setenv("DBRS_STANDIN_DUMP_BYTES", str(3 << 20))
    monkeypatch.setenv("DBRS_STANDIN_DUMP_DELAY", "0.3")
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 10 * DAY)     # wall clock leaps ahead
    r = bed.backup(stall=5)
    assert r.status == "done"


def test_a_backup_from_the_future_does_not_shield_damaged_ones(bed):
    """A clock that ran ahead once: the future backup counts only if it verifies."""
    old = [aged(bed, d) for d in (30, 29)]
    future = aged(bed, -400)
    flip(bed.bdir / "full" / future, 5000)
    r = dbrs("prune", "--config", bed.config)
    assert good_names(bed) == old and quarantined(bed) == [future] and r.exit_code == 1


@pytest.mark.parametrize("field,value", [("oplog_end", "hour_after"), ("oplog_start", "after_end")])
def test_oplog_times_a_full_manifest_cannot_have_fail_verify(bed, field, value):
    """An oplog end an hour after the backup finished verified `ok` (found by the black-box attack)."""
    name = bed.backup().name
    mp = bed.bdir / "full" / (name + catalog.MANIFEST)
    m = json.loads(mp.read_text())
    if value == "hour_after":
        m["oplog_end"] = {"t": int(times.parse_iso(m["finished"])) + 3600, "i": 1}
    else:
        m["oplog_start"] = {"t": m["oplog_end"]["t"] + 1, "i": 1}
    mp.write_text(json.dumps(m))
    r = dbrs("backup", "verify", name, "--config", bed.config)
    assert r.exit_code == 1 and "manifest" in r.output, r.output
    assert quarantined(bed) == [name]
