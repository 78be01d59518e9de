"""The backup pipeline end to end with the mongodump/mongorestore stand-ins on PATH.

The member side (replSetGetStatus, oplog) is the stand-in client of
tests/standins/fake_member.py; the wire-level exchange is covered in
tests/protocol/test_backup_protocol.py.
"""

import hashlib
import json
from pathlib import Path
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from click.testing import CliRunner

from installer import secrets
from installer.backup import archive, catalog, dump, history, proof, restore, slices as oplog, source, status, times, verification
from installer.cli import main
from installer.errors import DbrsError

from .backup_env import BACKUP_PW, RESTORE_PW, STANDINS, T0, Bed, bed, entry  # noqa: F401


def dbrs(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def only_good(b):
    return catalog.scan(b.bdir, catalog.FULL)[0]


# ------------------------------------------------------------------ happy path

def test_backup_streams_hashes_encrypts_and_hands_the_password_over_a_pipe(bed):
    bed.expect_password(BACKUP_PW)
    r = bed.backup()
    assert r.status == "done" and r.manifest["member"] == "mongod2"
    [rec] = bed.records("mongodump")
    # the argv is exactly the pure builder's, with the password pipe as --config
    assert rec["argv"] == list(dump.dump_argv("x", 27018, rec["config"]["path"])[1:])
    assert rec["config"]["path"].startswith("/dev/fd/") and rec["config"]["kind"] == "fifo"
    assert rec["config"]["mode"] == "0600" and rec["config"]["keys"] == ["password"]
    assert rec["password_matches"] is True
    assert rec["password_in_env"] is False and rec["password_in_argv"] is False
    # the file: owner-only, encrypted, matches its manifest, decrypts to exactly the dump stream
    path = bed.bdir / "full" / r.name
    assert path.stat().st_mode & 0o777 == 0o600 and (bed.bdir / "full").stat().st_mode & 0o777 == 0o700
    m = json.loads((bed.bdir / "full" / (r.name + ".manifest.json")).read_text())
    assert m["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert m["encrypted"] and m["plain_bytes"] == 300_000 and m["cluster"] == "dbrs"
    assert m["collections"] == {"app.orders": 1200, "app.users": 40}
    assert m["oplog_start"] == {"t": T0 + 50, "i": 1} and m["mongodump_version"] == "100.10.0"
    key = bed.spec and source.backup_key(secrets.load(bed.config))
    assert b"".join(proof.read_plain(str(path), key, m["sha256"], m["bytes"])) == bed.dump_bytes()
    assert bed.dump_bytes()[:4096] not in path.read_bytes()
    assert r.name.startswith("dbrs-") and r.name.endswith(".archive")
    assert sorted(os.listdir(bed.bdir / "full")) == [r.name, r.name + ".manifest.json", r.name + ".verified.json"]
    # state and metrics for `dbrs status` / node_exporter
    assert history.read_state()["last_success"]["full"]["name"] == r.name
    assert not (bed.tmp / "textfile").exists()          # only where the collector's folder exists


def test_plain_backup_is_the_dump_stream(tmp_path, monkeypatch):
    b = Bed(tmp_path, monkeypatch, encrypt=False)
    r = b.backup()
    assert (b.bdir / "full" / r.name).read_bytes() == b.dump_bytes()
    assert r.manifest["encrypted"] is False and r.manifest["key_id"] is None


def test_other_hosts_skip_with_the_reason_and_exit_0(bed):
    r = bed.backup(local=("mongod1",))
    assert r.status == "skipped" and "mongod2" in r.reason and "healthy secondary" in r.reason
    assert bed.records() == [] and only_good(bed) == []


def test_primary_backs_up_only_when_no_secondary_is_healthy(bed):
    bed.member.states["mongod2"] = "DOWN"
    r = bed.backup(local=("mongod1",))
    assert r.status == "done" and r.manifest["member"] == "mongod1"
    assert "no secondary is healthy" in r.manifest["member_state"]
    assert bed.records("mongodump")[0]["argv"][1] == "--port=27017"


def test_cli_backup_list_verify(bed, tmp_path):
    (tmp_path / "textfile").mkdir()
    r = dbrs("backup", "--config", bed.config)
    assert r.exit_code == 0, r.output
    assert r.output.startswith("backup dbrs-") and "from mongod2" in r.output and "encrypted" in r.output
    r = dbrs("backup", "list", "--config", bed.config)
    assert r.exit_code == 0 and "mongod2@" in r.output
    r = dbrs("backup", "list", "--json", "--config", bed.config)
    data = json.loads(r.output)
    assert len(data["full"]) == 1 and data["incomplete"] == []
    r = dbrs("backup", "verify", "--config", bed.config)
    assert r.exit_code == 0 and r.output.startswith("ok     dbrs-") and "every chunk authenticates" in r.output
    prom = (tmp_path / "textfile" / "dbrs_backup.prom").read_text()
    assert 'dbrs_backup_count{cluster="dbrs",kind="full"} 1' in prom
    assert 'dbrs_backup_last_size_bytes{cluster="dbrs",kind="full"}' in prom


# --------------------------------------------------------------- failures

def test_mongodump_failing_leaves_nothing_and_keeps_older_backups(bed, monkeypatch):
    first = bed.backup()
    before = bed.files()
    monkeypatch.setenv("DBRS_STANDIN_DUMP_FAIL_AFTER", "100000")
    with pytest.raises(DbrsError, match="mongodump exited 1: Failed: error writing data"):
        bed.backup(now=lambda: time.time() + 5)
    assert bed.files() == before and [e.name for e in only_good(bed)] == [first.name]


def test_bad_password_config_is_refused_by_the_strict_standin(bed, monkeypatch):
    """The stand-in rejects what the real tool would; proves the rule is live, not lenient."""
    from installer import tools

    monkeypatch.setattr(tools, "config_text", lambda pw: b"pasword: x\n")
    with pytest.raises(DbrsError, match="unknown key 'pasword'"):
        bed.backup()
    assert bed.files() == []


def test_kill_9_mid_run_leaves_no_good_looking_file(bed, monkeypatch):
    monkeypatch.setenv("DBRS_STANDIN_DUMP_BYTES", str(40 << 20))
    monkeypatch.setenv("DBRS_STANDIN_DUMP_DELAY", "0.05")
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(STANDINS)!r})
        from installer import spec
        from installer.backup import full as backup, catalog, times, dump, source, status, history
        from fake_member import FakeMember, entry
        s = spec.load({bed.config!r})
        history.STATE_FILE = {str(bed.state)!r}
        m = FakeMember(s, {{"mongod2": "SECONDARY", "mongod1": "PRIMARY"}}, [entry({T0}, 1)])
        backup.run(s, {bed.config!r}, connect_fn=m.connect, local=[s.member("mongod2")])
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=os.getcwd())
    partial = None
    deadline = time.time() + 20
    while time.time() < deadline:
        names = bed.files()
        partial = next((n for n in names if n.endswith(".partial")), None)
        if partial and (bed.bdir / "full" / partial).stat().st_size > (1 << 20):
            break
        time.sleep(0.05)
    assert partial, "the run never started writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    good, bad = catalog.scan(bed.bdir, catalog.FULL)
    assert good == [] and [b.name for b in bad] == [partial]
    r = dbrs("backup", "list", "--config", bed.config)
    assert f"incomplete {partial}: unfinished" in r.output
    assert dbrs("backup", "verify", "--config", bed.config).exit_code == 1
    assert dbrs("restore", "--to", f"@{T0 + 60}", "--yes", "--config", bed.config).exit_code == 1
    # the lock died with the process; the next run clears the leftover and succeeds
    monkeypatch.setenv("DBRS_STANDIN_DUMP_BYTES", "1000")
    monkeypatch.delenv("DBRS_STANDIN_DUMP_DELAY")
    time.sleep(1.1)
    r = bed.backup()
    assert r.status == "done" and bed.files() == [r.name, r.name + ".manifest.json", r.name + ".verified.json"]


def test_two_backups_at_once_the_second_refuses(bed, monkeypatch):
    monkeypatch.setenv("DBRS_STANDIN_DUMP_BYTES", str(3 << 20))
    monkeypatch.setenv("DBRS_STANDIN_DUMP_DELAY", "0.3")
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", bed.backup()))
    t.start()
    deadline = time.time() + 10
    while not any(n.endswith(".partial") for n in bed.files()) and time.time() < deadline:
        time.sleep(0.02)
    with pytest.raises(DbrsError, match=r"another dbrs full run holds .*\(pid \d+\)"):
        bed.backup(now=lambda: time.time() + 3)
    t.join()
    assert out["r"].status == "done" and len(only_good(bed)) == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_full_disk_leaves_nothing(tmp_path, monkeypatch):
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)]).returncode != 0:
        pytest.skip("cannot mount tmpfs here")
    try:
        b = Bed(tmp_path, monkeypatch, backup_dir=small / "backups")
        monkeypatch.setenv("DBRS_STANDIN_DUMP_BYTES", str(4 << 20))
        with pytest.raises(DbrsError, match="No space left on device; nothing was kept"):
            b.backup()
        assert b.files() == [] and os.listdir(small / "backups" / "full") == []
        r = dbrs("backup", "--config", b.config)
        assert r.exit_code == 1 and r.output.count("\n") == 1 and "No space left" in r.output
    finally:
        subprocess.run(["umount", str(small)])


def test_corrupted_byte_verify_fails_and_restore_refuses(bed):
    r = bed.backup()
    path = bed.bdir / "full" / r.name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))
    v = dbrs("backup", "verify", r.name, "--config", bed.config)
    assert v.exit_code == 1 and "FAILED" in v.output and "do not restore" in v.output
    # verify moved it to quarantine: restore refuses the name as bad input
    res = dbrs("restore", r.name, "--yes", "--config", bed.config)
    assert res.exit_code == 2 and "is in quarantine" in res.output
    assert bed.records("mongorestore") == []
    assert history.read_state()["last_verify"]["failed"] == 1


def test_truncated_encrypted_file_is_not_a_backup(bed):
    r = bed.backup()
    path = bed.bdir / "full" / r.name
    path.write_bytes(path.read_bytes()[:-100])
    good, bad = catalog.scan(bed.bdir, catalog.FULL)
    assert good == [] and "manifest says" in bad[0].reason
    res = dbrs("restore", r.name, "--yes", "--config", bed.config)
    assert res.exit_code == 2 and "not a usable backup" in res.output
    # even with a manifest edited to match, the missing final chunk is caught
    m = json.loads((bed.bdir / "full" / (r.name + ".manifest.json")).read_text())
    m["bytes"] = path.stat().st_size
    m["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (bed.bdir / "full" / (r.name + ".manifest.json")).write_text(json.dumps(m))
    with pytest.raises(archive.ArchiveError, match="truncated"):
        verification.verify_entry(catalog.find(bed.bdir, r.name), source.backup_key(secrets.load(bed.config)))


def test_wrong_key_verify_fails_and_says_so(bed):
    r = bed.backup()
    Path(bed.config).with_name("backup.key").write_bytes(b"MTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTE=\n")
    v = dbrs("backup", "verify", r.name, "--config", bed.config)
    assert v.exit_code == 1 and "another backup key" in v.output


# -------------------------------------------------------------- restore

def test_restore_name_streams_the_verified_dump_into_mongorestore(bed, monkeypatch):
    r = bed.backup()
    bed.expect_password(RESTORE_PW)
    monkeypatch.setattr(restore, "cluster_version", lambda spec, pw: "8.0.9")
    res = dbrs("restore", r.name, "--yes", "--drop", "--config", bed.config)
    assert res.exit_code == 0, res.output
    assert "proved 1 file(s)" in res.output and "restore finished in" in res.output
    assert "base restored from " + r.name + ": app.orders (1200 documents), app.users (40 documents)" in res.output
    [rec] = bed.records("mongorestore")
    assert rec["stdin_sha256"] == hashlib.sha256(bed.dump_bytes()).hexdigest()
    assert rec["password_matches"] and not rec["password_in_env"] and not rec["password_in_argv"]
    assert {"--nsExclude=admin.*", "--nsExclude=config.*", "--nsExclude=local.*", "--drop",
            "--oplogReplay", "--username=restore"} <= set(rec["argv"])
    assert rec["argv"][0] == "--host=dbrs/127.0.0.1:27017,127.0.0.1:27018"


def test_restore_dry_run_and_confirmation(bed, monkeypatch):
    r = bed.backup()
    res = dbrs("restore", r.name, "--dry-run", "--config", bed.config)
    assert res.exit_code == 0 and "dry run: nothing restored" in res.output and "never admin, config, local" in res.output
    res = dbrs("restore", r.name, "--config", bed.config)     # no tty, no --yes
    assert res.exit_code == 2 and "--yes" in res.output
    assert bed.records("mongorestore") == []


def test_restore_refuses_another_clusters_backup_unless_forced(bed, monkeypatch):
    r = bed.backup()
    mpath = bed.bdir / "full" / (r.name + ".manifest.json")
    m = json.loads(mpath.read_text())
    m["cluster"] = "payments"
    mpath.write_text(json.dumps(m))
    res = dbrs("restore", r.name, "--yes", "--config", bed.config)
    assert res.exit_code == 2 and "cluster 'payments'" in res.output and "--force-other-cluster" in res.output
    monkeypatch.setattr(restore, "cluster_version", lambda spec, pw: "8.0.9")
    res = dbrs("restore", r.name, "--yes", "--force-other-cluster", "--config", bed.config)
    assert res.exit_code == 0, res.output


def test_restore_refuses_a_mismatched_mongorestore_or_server(bed, monkeypatch):
    r = bed.backup()
    monkeypatch.setattr(restore, "cluster_version", lambda spec, pw: "8.0.9")
    monkeypatch.setenv("DBRS_STANDIN_TOOLS_VERSION", "100.9.4")
    res = dbrs("restore", r.name, "--yes", "--config", bed.config)
    assert res.exit_code == 2 and "mongorestore: is 100.9.4, the dump was made by mongodump 100.10.0" in res.output
    monkeypatch.setenv("DBRS_STANDIN_TOOLS_VERSION", "100.10.2")
    monkeypatch.setattr(restore, "cluster_version", lambda spec, pw: "7.0.14")
    res = dbrs("restore", r.name, "--yes", "--config", bed.config)
    assert res.exit_code == 2 and "runs MongoDB 7.0.14, the backup is of 8.0.4" in res.output
    assert bed.records("mongorestore") == []


def test_restore_refuses_ns_include_with_to_and_into_system_dbs(bed):
    res = dbrs("restore", "--to", "2026-11-28T10:00:00Z", "--ns-include", "app.*", "--config", bed.config)
    assert res.exit_code == 2 and "cannot be combined with --to" in res.output
    res = dbrs("restore", "x.archive", "--ns-include", "admin.system.users", "--config", bed.config)
    assert res.exit_code == 2 and "never restored" in res.output


def test_oplog_slice_then_restore_to_a_point_in_time(bed, monkeypatch):
    bed.backup()
    base_start = T0 + 50
    bed.member.oplog += [entry(T0 + s, 1) for s in (60, 70, 80, 90, 100, 110, 120)]
    bed.member.oplog += [entry(T0 + 85, 2, ns="admin.system.users"), entry(T0 + 86, 1, ns="config.transactions")]
    bed.member.oplog.sort(key=lambda d: d["ts"])
    s = oplog.run(bed.spec, bed.config, local=bed.local("mongod2"))
    assert s.status == "done" and s.manifest["count"] == 9
    assert s.manifest["after"] == {"t": base_start, "i": 1} and s.manifest["last"] == {"t": T0 + 120, "i": 1}
    assert bed.member.finds[-1]["ts"]["$gte"].time == base_start
    assert dbrs("backup", "verify", "--all", "--config", bed.config).exit_code == 0
    monkeypatch.setattr(restore, "cluster_version", lambda spec, pw: "8.0.4")
    res = dbrs("restore", "--to", f"@{T0 + 90.5}", "--yes", "--config", bed.config)
    assert res.exit_code == 0, res.output
    assert f"--oplogLimit={T0 + 91}:0" in res.output
    base_run, replay = bed.records("mongorestore")
    assert "--archive" in base_run["argv"]
    # mongorestore only inserts: the state at TIME needs today's collections dropped first
    assert "--drop" in base_run["argv"] and "--drop" not in replay["argv"]
    assert "dropping each restored collection first" in res.output
    assert f"--oplogLimit={T0 + 91}:0" in replay["argv"] and "--oplogReplay" in replay["argv"]
    # replayed: after the base's oplog start, before the limit, none for admin's collections or config
    assert replay["oplog_entries"] == 4 and replay["oplog_first"] == [T0 + 60, 1]
    assert replay["oplog_last_applied"] == [T0 + 90, 1]
    assert not list((bed.tmp).glob("dbrs-oplog-*"))


def test_oplog_gap_is_saved_marked_and_fails(bed):
    bed.backup()
    bed.member.oplog += [entry(T0 + 60, 1)]
    assert oplog.run(bed.spec, bed.config, local=bed.local("mongod2")).status == "done"
    # the oplog rolls over past the last slice
    bed.member.oplog = [entry(T0 + 500, 1), entry(T0 + 510, 1)]
    with pytest.raises(oplog.Gap, match="point-in-time restore is broken until the next full backup"):
        oplog.run(bed.spec, bed.config, local=bed.local("mongod2"), now=lambda: time.time() + 5)
    slices = catalog.scan(bed.bdir, catalog.OPLOG)[0]
    assert slices[-1].manifest.gap is True and slices[-1].manifest.count == 2
    # a new full backup re-anchors: the next slice starts at its oplog start, no failure
    bed.backup(now=lambda: time.time() + 10)
    bed.member.oplog += [entry(T0 + 520, 1)]
    s = oplog.run(bed.spec, bed.config, local=bed.local("mongod2"), now=lambda: time.time() + 15)
    assert s.status == "done" and not s.manifest["gap"]


def test_no_full_backup_yet_skips_slicing(bed):
    s = oplog.run(bed.spec, bed.config, local=bed.local("mongod2"))
    assert s.status == "skipped" and "no full backup yet" in s.reason


def test_prune_cli(bed, monkeypatch):
    names = []
    for days in (20, 15, 10, 1):
        names.append(bed.backup(now=lambda d=days: time.time() - d * 86400).name)
    res = dbrs("prune", "--dry-run", "--config", bed.config)
    assert res.exit_code == 0 and f"would delete {names[0]}" in res.output and len(only_good(bed)) == 4
    res = dbrs("prune", "--json", "--config", bed.config)
    data = json.loads(res.output)
    assert data["deleted_full"] == names[:2] and data["kept_full"] == names[2:]   # keep_min = 2
    assert [e.name for e in only_good(bed)] == names[2:]


# ---------------------------------------------------------------- status

def test_status_summary_shape(bed):
    r = bed.backup()
    bed.member.oplog += [entry(T0 + 60, 1), entry(T0 + 70, 1)]
    oplog.run(bed.spec, bed.config, local=bed.local("mongod2"))
    history.update_state(lambda s: s.setdefault("failures", []).append({"unit": "dbrs-oplog.service"}))
    s = status.status_summary(bed.spec, str(Path(bed.config).parent))
    assert s["last_full"]["name"] == r.name and s["last_full"]["host"] and s["last_full"]["age_s"] >= 0
    assert s["last_slice"]["last_ts"] == times.iso(T0 + 70) and s["slice_count"] == 1
    assert s["pitr_window"] == {"from": times.iso(T0 + 50) + "+1", "to": times.iso(T0 + 70) + "+1"}
    assert s["recent_failures"] == [{"unit": "dbrs-oplog.service"}] and s["incomplete"] == []
    json.dumps(s)


def test_prune_waits_briefly_for_a_running_slice_instead_of_failing(bed):
    with catalog.lock(bed.bdir, catalog.OPLOG):
        t = time.monotonic()
        with pytest.raises(DbrsError, match="another dbrs oplog run holds"):
            with catalog.lock(bed.bdir, catalog.OPLOG, wait=0.5):
                pass
        assert time.monotonic() - t >= 0.5
    held = threading.Event()

    def hold():
        with catalog.lock(bed.bdir, catalog.OPLOG):
            held.set()
            time.sleep(0.3)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    t = time.monotonic()
    with catalog.lock(bed.bdir, catalog.OPLOG, wait=5):
        assert time.monotonic() - t >= 0.1     # it did wait, then got the lock
    holder.join()


def test_next_runs_parses_systemctl_show():
    text = ("Id=dbrs-backup.timer\nNextElapseUSecRealtime=Sun 2026-11-29 02:07:31 UTC\n\n"
            "Id=dbrs-oplog.timer\nNextElapseUSecRealtime=\n")
    assert status.parse_next_runs(text) == {"dbrs-backup.timer": "Sun 2026-11-29 02:07:31 UTC"}


def test_ns_include_restores_and_reports_only_what_it_names(bed, monkeypatch):
    """`--ns-include app.users --drop` reported app.orders as restored too; garbage and no-match patterns
    restored nothing and said both collections were restored (found by the black-box attack)."""
    r = bed.backup()
    monkeypatch.setattr(restore, "cluster_version", lambda spec, pw: "8.0.4")
    res = dbrs("restore", r.name, "--ns-include", "app.users", "--drop", "--yes", "--config", bed.config)
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if x.startswith("base restored"))
    assert "app.users (40 documents)" in line and "app.orders" not in line
    for bad, why in (("garbage", "is not a namespace pattern"), ("nosuch.coll", "matches no collection")):
        res = dbrs("restore", r.name, "--ns-include", bad, "--yes", "--config", bed.config)
        assert res.exit_code == 2 and why in res.output and "--ns-include" in res.output, res.output


def test_restore_flags_name_themselves(bed):
    """--base without --to and a malformed --cluster-id were reported as something else (black-box attack)."""
    name = bed.backup().name
    r = dbrs("restore", "--base", name, "--dry-run", "--config", bed.config)
    assert r.exit_code == 2 and r.output.startswith("error: --base: only goes with --to"), r.output
    r = dbrs("restore", "--to", "@1764300000", "--cluster-id", "zzz", "--dry-run", "--config", bed.config)
    assert r.exit_code == 2 and "--cluster-id" in r.output and "24 hex digits" in r.output, r.output


def test_prune_says_when_it_waits_for_a_running_backup(bed, monkeypatch):
    """It sat silent for up to 5 minutes behind a running backup (found by the black-box attack)."""
    from installer.backup import catalog

    bed.backup()
    monkeypatch.setattr(catalog, "busy", lambda d, kind: kind == catalog.FULL)
    r = dbrs("prune", "--config", bed.config)
    assert r.exit_code == 0 and "a backup is running: prune waits for it" in r.output, r.output
