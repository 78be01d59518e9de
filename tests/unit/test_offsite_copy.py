"""Off-site copies end to end with Debian's rclone: a `path` target and S3 over HTTP (the moto stand-in).

Backups are made by the real pipeline with the mongodump stand-in, queued
through the seam (`offsite.enqueue`) and pushed with rclone; faults are real
(a killed push, a flipped byte on the remote, wrong S3 keys).
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from installer.backup import catalog, offsite, pitr, restore, retrieve, source, verification
from installer.cli import main

from .backup_env import T0
from .offsite_env import OffsiteBed, path_target, s3_standin, s3_target

pytestmark = pytest.mark.skipif(shutil.which("rclone") is None, reason="rclone is not installed (apt-get install rclone)")


def dbrs(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def sha(p):
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


@pytest.fixture
def usb(tmp_path, monkeypatch):
    dest = tmp_path / "usb"
    dest.mkdir()
    b = OffsiteBed(tmp_path, monkeypatch, path_target(dest))
    b.dest = dest / "dbrs"
    return b


def test_path_target_gets_backup_and_slices_byte_for_byte_manifest_last(usb):
    full = usb.backup_and_queue()
    sl = usb.slice_and_queue()
    assert len(offsite.read_queue(usb.spool)) == 2
    report = usb.push()
    assert report.ok and [c[1] for c in report.copied] == [full, sl]
    assert offsite.read_queue(usb.spool) == []          # drained: every target has both
    for kind, name in (("full", full), ("oplog", sl)):
        local = usb.bdir / kind / name
        remote = usb.dest / kind / name
        assert sha(remote) == sha(local) == json.loads((remote.parent / (name + ".manifest.json")).read_text())["sha256"]
    # the data is already encrypted: the remote never holds the dump in the clear
    assert usb.dump_bytes()[:4096] not in (usb.dest / "full" / full).read_bytes()
    # a second push with nothing queued copies nothing
    assert usb.push().copied == []


def _push_in_child(b, kill_after=None):
    """`dbrs offsite push` as its own process (own session, so a kill takes rclone too)."""
    p = subprocess.Popen([str(Path(sys.executable).with_name("dbrs")), "offsite", "push", "--config", b.config],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                         cwd=Path(__file__).resolve().parents[2])
    if kill_after is not None:
        time.sleep(kill_after)
        os.killpg(p.pid, signal.SIGKILL)
    out, _ = p.communicate(timeout=120)
    return p.returncode, out.decode()


def test_push_killed_midway_leaves_no_manifest_on_the_remote_and_the_next_push_finishes(tmp_path, monkeypatch):
    dest = tmp_path / "usb"
    dest.mkdir()
    # 6 MB at 1 MiB/s: the kill lands while the data file is being copied
    b = OffsiteBed(tmp_path, monkeypatch, path_target(dest, bwlimit="1M"), dump_bytes=6_000_000)
    full = b.backup_and_queue()
    rc, out = _push_in_child(b, kill_after=2.0)
    assert rc == -signal.SIGKILL, out
    remote = dest / "dbrs" / "full"
    assert not (remote / (full + catalog.MANIFEST)).exists()
    # what is there is not taken for a backup: listing marks it, verify fails it
    res = dbrs("offsite", "list", "--config", b.config)
    assert res.exit_code == 0 and "0 full backup(s)" in res.output
    assert len(offsite.read_queue(b.spool)) == 1            # still queued
    # a stale config folder of the killed run (it held credentials) is swept by the next push
    rc, out = _push_in_child(b)
    assert rc == 0, out
    assert f"copied {full} to usb" in out
    assert sha(remote / full) == sha(b.bdir / "full" / full)
    assert list((b.spool / "run").iterdir()) == []
    assert dbrs("offsite", "verify", "--config", b.config).exit_code == 0


def test_verify_catches_a_corrupted_remote_object_and_download_authenticates_chunks(usb):
    full = usb.backup_and_queue()
    usb.push()
    res = dbrs("offsite", "verify", "--download", "--config", usb.config)
    assert res.exit_code == 0 and "every chunk authenticates" in res.output, res.output
    p = usb.dest / "full" / full
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01                # same size: only the checksum can tell
    p.write_bytes(bytes(data))
    res = dbrs("offsite", "verify", "--config", usb.config)
    assert res.exit_code == 1
    assert f"FAILED usb: {full}: sha256" in res.output
    assert "error: 1 of 1 off-site file(s) failed verification" in res.output
    res = dbrs("offsite", "verify", "--download", "--config", usb.config)
    assert res.exit_code == 1 and "does not authenticate" in res.output


def test_a_dead_target_keeps_everything_queued_and_local_then_the_queue_drains(usb):
    full = usb.backup_and_queue()
    sl = usb.slice_and_queue()
    before = {p: sha(p) for p in usb.bdir.rglob("*") if p.is_file() and ".offsite" not in p.parts}
    usb.dest.parent.rename(usb.dest.parent.with_name("usb-unplugged"))
    usb.dest.parent.with_name("usb").write_text("not a folder: the disk is gone")
    res = dbrs("offsite", "push", "--config", usb.config)
    assert res.exit_code == 1
    assert res.output.strip().splitlines()[-1].startswith("error: off-site copy failed for usb;")
    assert {p: sha(p) for p in usb.bdir.rglob("*") if p.is_file() and ".offsite" not in p.parts} == before
    summary = offsite.status_summary(usb.spec, now=time.time() + 7200)
    [t] = summary["targets"]
    assert t["waiting"] == 2 and t["last_error"].startswith("off-site usb:")
    probs = offsite.problems(summary)
    assert any("off-site copy to usb failed" in p and "`dbrs offsite push`" in p for p in probs)
    assert any("behind (max_lag 60 min)" in p for p in probs)
    assert dbrs("offsite", "status", "--check", "--config", usb.config).exit_code == 1
    # the disk is back: the queue drains in order and status is clean again
    usb.dest.parent.with_name("usb").unlink()
    usb.dest.parent.with_name("usb-unplugged").rename(usb.dest.parent)
    res = dbrs("offsite", "push", "--config", usb.config)
    assert res.exit_code == 0, res.output
    assert res.output.index(full) < res.output.index(sl)
    assert offsite.problems(offsite.status_summary(usb.spec)) == []
    res = dbrs("offsite", "status", "--check", "--config", usb.config)
    assert res.exit_code == 0 and "off-site usb (path): last copy 0s ago; 0 file(s) waiting" in res.output


def test_a_backup_pruned_locally_before_its_copy_is_reported_not_hidden(usb):
    full = usb.backup_and_queue()
    catalog.remove(usb.bdir / "full" / full)
    res = dbrs("offsite", "push", "--config", usb.config)
    assert res.exit_code == 1 and f"LOST   {full}" in res.output


def test_fetch_uses_the_intact_local_copy_and_downloads_the_rest_and_says_which(usb):
    full = usb.backup_and_queue()
    sl = usb.slice_and_queue()
    usb.push()
    # the slice's local copy is damaged; the full backup's is intact
    p = usb.bdir / "oplog" / sl
    p.write_bytes(b"x" + p.read_bytes()[1:])
    into = usb.tmp / "restore-from"
    res = dbrs("offsite", "fetch", "--to", f"@{T0 + 85}", "--into", str(into), "--config", usb.config)
    assert res.exit_code == 0, res.output
    assert f"local    {full}" in res.output and f"off-site {sl} (from usb" in res.output
    assert sha(into / "oplog" / sl) == sha(usb.dest / "oplog" / sl)
    fulls, slices = restore.entries(retrieve.restore_spec(usb.spec, into))
    key = source.backup_key(usb.sec)
    plan = pitr.plan_pitr(fulls, slices, T0 + 85)
    assert plan.base.name == full and [s.name for s in plan.slices] == [sl]
    for e in (plan.base, *plan.slices):
        verification.verify_entry(e, key)


def test_disaster_recovery_restore_to_time_from_offsite_only(usb, monkeypatch):
    """Every local file is gone; fetch into the backup folder, then the ordinary `dbrs restore --to`."""
    usb.backup_and_queue()
    usb.slice_and_queue()
    usb.push()
    shutil.rmtree(usb.bdir / "full")
    shutil.rmtree(usb.bdir / "oplog")
    res = dbrs("offsite", "fetch", "--to", f"@{T0 + 85.5}", "--config", usb.config)
    assert res.exit_code == 0 and "(2 downloaded, 0 local)" in res.output, res.output
    monkeypatch.setattr(restore, "cluster_version", lambda spec, pw: "8.0.4")
    res = dbrs("restore", "--to", f"@{T0 + 85.5}", "--yes", "--config", usb.config)
    assert res.exit_code == 0, res.output
    base_run, replay = usb.records("mongorestore")
    assert base_run["stdin_sha256"] == hashlib.sha256(usb.dump_bytes()).hexdigest()
    assert f"--oplogLimit={T0 + 86}:0" in replay["argv"]
    assert replay["oplog_first"] == [T0 + 60, 1] and replay["oplog_last_applied"] == [T0 + 80, 1]


def test_restore_from_offsite_in_one_command_leaves_the_backup_folder_as_it_was(usb, monkeypatch):
    """`dbrs restore --from-offsite --to T`: fetched, proven, fed, and the scratch folder gone afterwards."""
    usb.backup_and_queue()
    usb.slice_and_queue()
    usb.push()
    shutil.rmtree(usb.bdir / "full")
    shutil.rmtree(usb.bdir / "oplog")
    monkeypatch.setattr(restore, "cluster_version", lambda spec, pw: "8.0.4")
    res = dbrs("restore", "--to", f"@{T0 + 85.5}", "--from-offsite", "--yes", "--config", usb.config)
    assert res.exit_code == 0, res.output
    assert res.output.count("off-site ") >= 2 and "restore finished" in res.output
    base_run, replay = usb.records("mongorestore")
    assert base_run["stdin_sha256"] == hashlib.sha256(usb.dump_bytes()).hexdigest()
    assert f"--oplogLimit={T0 + 86}:0" in replay["argv"]
    assert not [n for n in os.listdir(usb.bdir) if n.startswith(".from-offsite-")]
    assert not (usb.bdir / "full").exists() or not os.listdir(usb.bdir / "full")
    bad = dbrs("restore", "--to", f"@{T0 + 85.5}", "--target", "usb", "--yes", "--config", usb.config)
    assert bad.exit_code == 2 and "--target" in bad.output


def test_backup_list_and_verify_reach_the_offsite_copies(usb):
    full = usb.backup_and_queue()
    usb.push()
    listing = dbrs("backup", "list", "--offsite", "--config", usb.config)
    assert listing.exit_code == 0 and full in listing.output, listing.output
    ok = dbrs("backup", "verify", "--offsite", "--download", "--config", usb.config)
    assert ok.exit_code == 0 and f"usb: {full}" in ok.output, ok.output
    p = usb.dest / "full" / full
    p.write_bytes(p.read_bytes()[:-1] + bytes([p.read_bytes()[-1] ^ 1]))
    bad = dbrs("backup", "verify", "--offsite", "--config", usb.config)
    assert bad.exit_code == 1 and "FAILED usb" in bad.output
    assert dbrs("backup", "verify", "--download", "--config", usb.config).exit_code == 2


def test_remote_prune_keeps_keep_min_good_backups_and_drops_old_slices(usb):
    names = [usb.backup_and_queue(now=lambda i=i: time.time() - (30 - i) * 86400) for i in range(3)]
    usb.push()
    # an interrupted upload from long ago: data without a manifest
    (usb.dest / "full" / "dbrs-20200101T000000Z.archive").write_bytes(b"half")
    os.utime(usb.dest / "full" / "dbrs-20200101T000000Z.archive", (0, 0))
    res = dbrs("offsite", "prune", "--config", usb.config)
    assert res.exit_code == 0, res.output
    left = sorted(n for n in os.listdir(usb.dest / "full") if not n.endswith(".json"))
    assert left == names[1:]                       # keep_min = 2, all past retention
    assert "dbrs-20200101T000000Z.archive (no good manifest)" in res.output


# ------------------------------------------------------------------ S3 over HTTP (moto stand-in)

@pytest.fixture
def s3(tmp_path, monkeypatch):
    with s3_standin(tmp_path, auth=True) as (url, keys, client):
        # 5M parts and cutoff: a 12 MB backup goes up as a three-part multipart upload
        b = OffsiteBed(tmp_path, monkeypatch, s3_target(url, chunk_size="5M"),
                       creds={"s3": {"access_key_id": keys[0], "secret_access_key": keys[1]}},
                       dump_bytes=12_000_000)
        b.url, b.keys, b.client = url, keys, client
        yield b


def _objects(client):
    return {o["Key"]: o for o in client.list_objects_v2(Bucket="dbrs-offsite").get("Contents", [])}


def test_s3_multipart_upload_listing_verify_fetch_and_prune_over_http(s3):
    full = s3.backup_and_queue()
    sl = s3.slice_and_queue()
    report = s3.push()
    assert report.ok, report.failed
    objs = _objects(s3.client)
    key = f"prod/dbrs/full/{full}"
    assert set(objs) == {key, key + catalog.MANIFEST, f"prod/dbrs/oplog/{sl}", f"prod/dbrs/oplog/{sl}.manifest.json"}
    # a multipart upload: the ETag is "md5-of-md5s-PARTS"
    assert objs[key]["ETag"].strip('"').endswith("-3")
    body = s3.client.get_object(Bucket="dbrs-offsite", Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == sha(s3.bdir / "full" / full)
    res = dbrs("offsite", "list", "--config", s3.config)
    assert res.exit_code == 0 and "off-site s3: 1 full backup(s), 1 oplog slice(s)" in res.output
    assert dbrs("offsite", "verify", "--config", s3.config).exit_code == 0
    # corrupt the object in place (same size) through the S3 API
    bad = bytearray(body)
    bad[100] ^= 0xFF
    s3.client.put_object(Bucket="dbrs-offsite", Key=key, Body=bytes(bad))
    res = dbrs("offsite", "verify", "--config", s3.config)
    assert res.exit_code == 1 and f"FAILED s3: {full}: sha256" in res.output
    # prune with everything past retention keeps keep_min; a manifest-less object counts for nothing
    s3.client.put_object(Bucket="dbrs-offsite", Key="prod/dbrs/full/dbrs-20200101T000000Z.archive", Body=b"x")
    res = dbrs("offsite", "prune", "--dry-run", "--config", s3.config)
    assert res.exit_code == 0 and f"{full}" not in res.output


def test_s3_wrong_credentials_fail_in_one_line_naming_the_target_and_keep_everything(s3):
    full = s3.backup_and_queue()
    sec_file = Path(s3.config).parent / "secrets.toml"
    sec_file.write_text(sec_file.read_text().replace(s3.keys[1], "not-the-secret"))
    res = dbrs("offsite", "push", "--config", s3.config)
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    failed = [ln for ln in lines if ln.startswith("FAILED")]
    assert len(failed) == 1 and failed[0].startswith("FAILED off-site s3:") and len(failed[0]) < 420
    assert "Forbidden" in failed[0] and "check the target's credentials in secrets.toml" in failed[0]
    assert "not-the-secret" not in res.output
    assert lines[-1].startswith("error: off-site copy failed for s3;")
    assert (s3.bdir / "full" / full).exists() and len(offsite.read_queue(s3.spool)) == 1
    assert _objects(s3.client) == {}


def test_s3_prune_deletes_over_http_but_never_below_keep_min(s3, monkeypatch):
    monkeypatch.setenv("DBRS_STANDIN_DUMP_BYTES", "100000")
    names = [s3.backup_and_queue(now=lambda i=i: time.time() - (30 - i) * 86400) for i in range(3)]
    assert s3.push().ok
    res = dbrs("offsite", "prune", "--config", s3.config)
    assert res.exit_code == 0, res.output
    left = sorted(k.rsplit("/", 1)[1] for k in _objects(s3.client))
    assert left == sorted(names[1:] + [n + catalog.MANIFEST for n in names[1:]])
    # again: nothing more goes, however old they are
    assert dbrs("offsite", "prune", "--config", s3.config).exit_code == 0
    assert len(_objects(s3.client)) == 4


# ------------------------------------------------------------------ SFTP (Debian's real sshd on 127.0.0.1)

def sftp_target(port, user, host_key, path):
    return (f'\n[[offsite]]\nname = "vault"\ntype = "sftp"\nhost = "127.0.0.1"\nport = {port}\nuser = "{user}"\n'
            f'path = "{path}"\nhost_key = "{host_key}"\n')


@pytest.fixture
def vault(tmp_path, monkeypatch):
    from .sshd_env import sftp_server

    with sftp_server(tmp_path) as (port, user, host_key, client_pem, served):
        b = OffsiteBed(tmp_path, monkeypatch, sftp_target(port, user, host_key, served))
        sec = Path(b.config).parent / "secrets.toml"
        sec.write_text(sec.read_text() + f'\n[offsite.vault]\nkey_pem = {json.dumps(client_pem)}\n')
        b.served, b.port, b.user = served / "dbrs", port, user
        yield b


def test_sftp_key_auth_pinned_host_key_copy_verify_and_fetch(vault):
    full = vault.backup_and_queue()
    sl = vault.slice_and_queue()
    assert vault.push().ok
    for kind, name in (("full", full), ("oplog", sl)):
        assert sha(vault.served / kind / name) == sha(vault.bdir / kind / name)
        assert (vault.served / kind / (name + catalog.MANIFEST)).exists()
    assert dbrs("offsite", "verify", "--download", "--config", vault.config).exit_code == 0
    into = vault.tmp / "from-vault"
    res = dbrs("offsite", "fetch", full, "--into", str(into), "--config", vault.config)
    assert res.exit_code == 0 and "(0 downloaded, 1 local)" in res.output
    (vault.bdir / "full" / full).unlink()
    shutil.rmtree(into)
    res = dbrs("offsite", "fetch", full, "--into", str(into), "--config", vault.config)
    assert res.exit_code == 0 and "(1 downloaded, 0 local)" in res.output
    assert sha(into / "full" / full) == sha(vault.served / "full" / full)


def test_sftp_a_server_with_another_host_key_is_refused(vault):
    cfg = Path(vault.config)
    other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    text = cfg.read_text()
    cfg.write_text(text[:text.index('host_key = "')] + f'host_key = "{other}"\n')
    vault.spec = __import__("installer.spec", fromlist=["load"]).load(vault.config)
    vault.backup_and_queue()
    res = dbrs("offsite", "push", "--config", vault.config)
    assert res.exit_code == 1
    [line] = [ln for ln in res.output.splitlines() if ln.startswith("FAILED")]
    assert line.startswith("FAILED off-site vault:") and "not the one pinned in host_key" in line
    assert not vault.served.exists()


def test_sftp_wrong_key_fails_in_one_line_naming_the_target(vault, tmp_path):
    from .sshd_env import keygen

    other_pem, _ = keygen(tmp_path / "other")
    sec = Path(vault.config).parent / "secrets.toml"
    text = sec.read_text()
    sec.write_text(text[:text.index("[offsite.vault]")] + f"[offsite.vault]\nkey_pem = {json.dumps(other_pem)}\n")
    vault.backup_and_queue()
    res = dbrs("offsite", "push", "--config", vault.config)
    assert res.exit_code == 1
    [line] = [ln for ln in res.output.splitlines() if ln.startswith("FAILED")]
    assert line.startswith("FAILED off-site vault:") and "check the key in secrets.toml" in line, line
    assert "PRIVATE KEY" not in res.output


def test_a_push_while_another_runs_steps_aside_without_failing_the_timer(usb):
    from installer import locks

    usb.backup_and_queue()
    usb.spool.mkdir(parents=True, exist_ok=True)
    with locks.held(usb.spool / ".push.lock", "dbrs offsite push"):
        res = dbrs("offsite", "push", "--config", usb.config)
    assert res.exit_code == 0 and res.output.startswith("skipped: another dbrs offsite push holds"), res.output
    assert len(offsite.read_queue(usb.spool)) == 1
    assert dbrs("offsite", "push", "--config", usb.config).exit_code == 0
    assert offsite.read_queue(usb.spool) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a 1 MiB tmpfs as the full target: root only")
def test_a_full_target_is_named_as_full_and_leaves_no_manifest_there(tmp_path, monkeypatch):
    dest = tmp_path / "tiny"
    dest.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "dbrs-test-full", str(dest)], check=True)
    try:
        b = OffsiteBed(tmp_path, monkeypatch, path_target(dest, name="tiny"), dump_bytes=3_000_000)
        full = b.backup_and_queue()
        res = dbrs("offsite", "push", "--config", b.config)
        assert res.exit_code == 1
        [line] = [ln for ln in res.output.splitlines() if ln.startswith("FAILED")]
        assert line.startswith("FAILED off-site tiny:") and "the target is full" in line, line
        assert not (dest / "dbrs" / "full" / (full + catalog.MANIFEST)).exists()
        assert (b.bdir / "full" / full).exists() and len(offsite.read_queue(b.spool)) == 1
    finally:
        subprocess.run(["umount", str(dest)], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a read-only tmpfs as the target: root only")
def test_a_target_that_denies_writes_is_named_and_keeps_everything(tmp_path, monkeypatch):
    dest = tmp_path / "ro"
    dest.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "dbrs-test-ro", str(dest)], check=True)
    try:
        b = OffsiteBed(tmp_path, monkeypatch, path_target(dest, name="ro"))
        full = b.backup_and_queue()
        res = dbrs("offsite", "push", "--config", b.config)
        assert res.exit_code == 1
        [line] = [ln for ln in res.output.splitlines() if ln.startswith("FAILED")]
        assert line.startswith("FAILED off-site ro:") and "is the disk mounted, read-write?" in line, line
        assert (b.bdir / "full" / full).exists() and len(offsite.read_queue(b.spool)) == 1
    finally:
        subprocess.run(["umount", str(dest)], check=True)


def test_a_killed_fetch_leaves_only_a_hidden_download_that_no_scan_takes_and_the_next_fetch_clears(usb):
    full = usb.backup_and_queue()
    usb.push()
    (usb.bdir / "full" / full).unlink()
    left = usb.bdir / "full" / f".{full}.fetching"
    left.write_bytes(b"half a download")
    good, bad = catalog.scan(usb.bdir, catalog.FULL)
    assert good == [] and all(b.name != left.name for b in bad)
    res = dbrs("offsite", "fetch", full, "--config", usb.config)
    assert res.exit_code == 0, res.output
    assert not left.exists() and sha(usb.bdir / "full" / full) == sha(usb.dest / "full" / full)


def test_fetch_refuses_a_remote_copy_that_does_not_match_its_manifest(usb):
    full = usb.backup_and_queue()
    usb.push()
    (usb.bdir / "full" / full).unlink()
    p = usb.dest / "full" / full
    p.write_bytes(b"\0" + p.read_bytes()[1:])
    res = dbrs("offsite", "fetch", full, "--config", usb.config)
    assert res.exit_code == 1
    assert res.output.strip() == (f"error: {full} on off-site usb: sha256/size do not match its manifest; this copy "
                                  "cannot be trusted (try another target or `dbrs offsite verify`)")
    # nothing with the backup's name, and no leftover download
    assert sorted(p.name for p in (usb.bdir / "full").iterdir()) == [full + catalog.MANIFEST, full + catalog.RECORD]
