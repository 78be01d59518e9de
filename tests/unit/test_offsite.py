"""The pure side of off-site copies: the [[offsite]] spec, credentials, the rclone config, the queue,
remote retention, status lines."""

import json
import os
import stat

import pytest

from installer import secrets, spec as specmod
from installer.backup import offsite, rclone, remotes
from installer.errors import InputError, SpecErrors

from ..conftest import PSA, SECRETS
from .backup_records import full, piece, ts

SFTP = """
[[offsite]]
name = "vault"
type = "sftp"
host = "vault.example.net"
user = "dbrs"
path = "backups"
host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
bwlimit = "10M"
"""
S3 = """
[[offsite]]
name = "s3"
type = "s3"
bucket = "acme-db-backups"
prefix = "prod"
region = "eu-central-1"
storage_class = "STANDARD_IA"
"""
PEM = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nQUJDREVGRw==\n-----END OPENSSH PRIVATE KEY-----\n"


def errors_of(text):
    with pytest.raises(SpecErrors) as e:
        specmod.loads(PSA + text)
    return e.value.lines()


# -------------------------------------------------------------------- spec

def test_offsite_targets_parse_with_defaults():
    spec = specmod.loads(PSA + SFTP + S3)
    vault, s3 = spec.offsite
    assert (vault.type, vault.port, vault.bwlimit, vault.max_lag_s) == ("sftp", 22, "10M", 3600)
    assert (s3.bucket, s3.prefix, s3.bwlimit) == ("acme-db-backups", "prod", "off")
    assert specmod.loads(PSA).offsite == ()


@pytest.mark.parametrize("text, line", [
    ('\n[[offsite]]\nname = "x"\ntype = "ftp"\n', "offsite[0].type: 'ftp' is not a target type (use one of sftp, s3, path)"),
    ('\n[[offsite]]\nname = "x"\ntype = "sftp"\nhost = "h"\nuser = "u"\npath = "p"\n', "offsite[0].host_key: is missing"),
    ('\n[[offsite]]\nname = "x"\ntype = "path"\npath = "/mnt/b"\nbwlimit = "fast"\n', "offsite[0].bwlimit: 'fast' is not a bandwidth"),
    ('\n[[offsite]]\nname = "x"\ntype = "path"\npath = "mnt"\n', "offsite[0].path: 'mnt' is not an absolute path"),
    ('\n[[offsite]]\nname = "x"\ntype = "s3"\nbucket = "B_ad"\n', "offsite[0].bucket: 'B_ad' is not an S3 bucket name"),
    ('\n[[offsite]]\nname = "x"\ntype = "s3"\nbucket = "abc"\npassword = "hunter2"\n', "offsite[0].password: unknown key"),
    ('\n[[offsite]]\nname = "x"\ntype = "sftp"\nhost = "h"\nuser = "u"\npath = "p"\nhost_key = "AAAA"\n',
     "offsite[0].host_key: is not a public host key line"),
    ('\n[[offsite]]\ntype = "path"\npath = "/a"\n', "offsite[0].name: is missing"),
    ('\n[[offsite]]\nname = "x"\ntype = "path"\npath = "/a"\n[[offsite]]\nname = "x"\ntype = "path"\npath = "/b"\n',
     "offsite[1].name: 'x' is used twice"),
    ('\n[[offsite]]\nname = "x"\ntype = "path"\npath = "/a"\nmax_lag = "soon"\n', "offsite[0].max_lag: 'soon' is not a time span"),
])
def test_offsite_errors_name_the_field(text, line):
    assert any(ln.startswith(line) for ln in errors_of(text)), errors_of(text)


def test_credentials_in_the_spec_are_refused_with_where_they_belong():
    lines = errors_of('\n[[offsite]]\nname = "x"\ntype = "s3"\nbucket = "abc"\nsecret_access_key = "s"\n')
    assert lines == ["offsite[0].secret_access_key: unknown key (remove it; known keys: name, type, bwlimit, max_lag, "
                     "retention_days, keep_min, bucket, prefix, region, endpoint, storage_class, chunk_size)"]


# ------------------------------------------------------------- credentials

def test_offsite_credentials_round_trip_through_secrets_toml_and_the_bundle():
    sec = secrets.parse_secrets_toml(SECRETS, b"k" * 8, b"key")
    sec = secrets.Secrets(sec.keyfile, sec.passwords, sec.backup_key, offsite={
        "vault": {"key_pem": PEM}, "s3": {"access_key_id": "AKIA1", "secret_access_key": "s/e+c=\"ret"}})
    text = secrets.secrets_toml(sec)
    again = secrets.parse_secrets_toml(text, sec.keyfile, sec.backup_key)
    assert again.offsite == sec.offsite
    bundle = secrets.open_bundle(secrets.seal_bundle(PSA, sec, "pass phrase"), "pass phrase")
    assert bundle.secrets.offsite == sec.offsite


def test_a_missing_credential_names_its_place_in_secrets_toml():
    spec = specmod.loads(PSA + SFTP)
    sec = secrets.parse_secrets_toml(SECRETS, b"", b"")
    with pytest.raises(InputError) as e:
        rclone.credentials(spec.offsite[0], sec)
    assert e.value.field == "secrets.toml: offsite.vault.key_pem" and "dbrs offsite credentials vault" in e.value.line()


def test_unknown_credential_keys_are_refused():
    with pytest.raises(InputError, match=r"offsite.s3.password"):
        secrets.parse_secrets_toml(SECRETS + b'\n[offsite.s3]\npassword = "x"\n', b"", b"")


# ------------------------------------------------------------ rclone config

def test_rclone_config_for_s3_and_its_redacted_form():
    t = specmod.loads(PSA + S3).offsite[0]
    text = rclone.render_config(t, {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "wJalrSECRET"}).decode()
    assert "[s3]\ntype = s3\nprovider = AWS\nenv_auth = false\naccess_key_id = AKIAEXAMPLE\n" in text
    assert "secret_access_key = wJalrSECRET\nregion = eu-central-1\nstorage_class = STANDARD_IA\n" in text
    shown = rclone.redacted_config(t)
    assert "AKIA" not in shown and "wJalr" not in shown and "secret_access_key = ***" in shown
    assert rclone.root_of(t, "shop") == "s3:acme-db-backups/prod/shop"


def test_rclone_config_for_sftp_pins_the_host_key_and_keeps_the_pem_on_one_line():
    t = specmod.loads(PSA + SFTP).offsite[0]
    text = rclone.render_config(t, {"key_pem": PEM}, "/run/x/known_hosts").decode()
    assert "key_pem = -----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjEAAAAA\\nQUJDREVGRw==\\n-----END" in text
    assert "known_hosts_file = /run/x/known_hosts\n" in text and "shell_type = none\n" in text
    assert "BEGIN" not in rclone.redacted_config(t)
    assert rclone.root_of(t, "shop") == "vault:backups/shop"


def test_session_writes_config_0600_in_a_private_folder_and_removes_it(tmp_path, monkeypatch):
    t = specmod.loads(PSA + SFTP).offsite[0]
    sec = secrets.Secrets(b"", {}, b"", offsite={"vault": {"key_pem": PEM}})
    with rclone.Session(t, sec, tmp_path / "run", binary="/bin/true") as s:
        assert stat.S_IMODE(os.stat(s.conf).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(s.dir).st_mode) == 0o700
        assert (s.dir / "known_hosts").read_text() == f"vault.example.net {t.host_key}\n"
        argv, env = s.argv("copyto", "a", "b", bwlimit=True), s.env()
        assert argv[:3] == ["/bin/true", "--config", str(s.conf)] and argv[-5:] == ["--bwlimit", "10M", "copyto", "a", "b"]
        assert not any("BEGIN" in a or "PRIVATE" in a for a in argv)
        assert set(env) == {"PATH", "HOME", "LANG", "TMPDIR"}
        folder = s.dir
    assert not folder.exists()


def test_sweep_removes_config_folders_of_dead_runs_only(tmp_path):
    dead = tmp_path / "rclone-999999999-abc"
    live = tmp_path / f"rclone-{os.getpid()}-def"
    dead.mkdir()
    live.mkdir()
    rclone.sweep(tmp_path)
    assert not dead.exists() and live.exists()


def test_rclone_errors_become_one_bounded_line_with_a_hint():
    err = ("2026/12/04 07:04:59 ERROR : dbrs.archive: Failed to copy: Forbidden: Forbidden\n\tstatus code: 403\n"
           "2026/12/04 07:04:59 Failed to copyto: Forbidden: Forbidden\n")
    assert rclone.one_line(err, "s3") == ("off-site s3: Failed to copyto: Forbidden: Forbidden (check the target's "
                                          "credentials in secrets.toml and its access policy)")
    assert len(rclone.one_line("ERROR " + "x" * 100_000, "s3")) < 420


# ------------------------------------------------------------------- queue

def test_enqueue_is_a_no_op_without_targets_and_never_raises(tmp_path, capsys):
    spec = specmod.loads(PSA)
    assert offsite.enqueue(spec, tmp_path / "a.archive", tmp_path / "a.archive.manifest.json") is False
    spec = specmod.loads(PSA + '\n[[offsite]]\nname = "u"\ntype = "path"\npath = "/mnt/u"\n')
    blocker = tmp_path / "spool"
    blocker.write_text("a file where the spool folder should be")
    assert offsite.enqueue(spec, "/b/full/x.archive", "/b/full/x.archive.manifest.json", spool=blocker) is False
    err = capsys.readouterr().err.strip()
    assert err.startswith("warning: x.archive not queued for off-site copy") and "--catch-up" in err
    assert len(err.splitlines()) == 1


def test_enqueue_writes_a_private_entry_and_pending_lists_what_each_target_lacks(tmp_path):
    spec = specmod.loads(PSA + '\n[[offsite]]\nname = "u"\ntype = "path"\npath = "/mnt/u"\n')
    for i, name in enumerate(("dbrs-1.archive", "dbrs-2.oplog.gz")):
        kind = "full" if name.endswith(".archive") else "oplog"
        assert offsite.enqueue(spec, f"/b/{kind}/{name}", f"/b/{kind}/{name}.manifest.json", spool=tmp_path, now=1000 + i)
    q = offsite.read_queue(tmp_path)
    assert [x.name for x in q] == ["dbrs-1.archive", "dbrs-2.oplog.gz"] and q[1].entry["kind"] == "oplog"
    assert all(stat.S_IMODE(os.stat(x.file).st_mode) == 0o600 for x in q)
    q[0].entry["done"] = ["a"]
    todo = offsite.pending(q, ["a", "b"])
    assert [x.name for x in todo["a"]] == ["dbrs-2.oplog.gz"] and len(todo["b"]) == 2


# --------------------------------------------------------------- retention

DAY = 86400
NOW = 1_800_000_000


def remote(e, size=1, manifest=True, mtime=NOW):
    return remotes.Remote(e.kind, e.name, size, e.manifest.to_dict() if manifest else None, mtime)


def test_remote_retention_keeps_keep_min_good_backups_however_old():
    fulls = [full(NOW - d * DAY) for d in (40, 30, 20)]
    drop = remotes.decide_remote([remote(f) for f in fulls], keep_min=2, retention_days=7, now=NOW)
    assert [d.name for d in drop] == [fulls[0].name]


def test_remote_retention_does_not_count_broken_copies_toward_keep_min():
    fulls = [full(NOW - d * DAY) for d in (40, 30, 20)]
    files = [remote(fulls[0]), remote(fulls[1]), remote(fulls[2], size=999)]     # newest: size mismatch
    drop = remotes.decide_remote(files, keep_min=2, retention_days=7, now=NOW, orphan_age=10 * 365 * DAY)
    assert drop == []   # the two good ones stay; the broken one is young enough to be an upload in progress
    drop = remotes.decide_remote(files, keep_min=2, retention_days=7, now=NOW + DAY + 1, orphan_age=DAY)
    assert [d.name for d in drop] == [fulls[2].name]


def test_remote_retention_drops_slices_before_the_oldest_kept_backup_and_keeps_recent_ones():
    old, kept = full(NOW - 30 * DAY), full(NOW - DAY)
    s_old = piece(ts(NOW - 30 * DAY), ts(NOW - 30 * DAY + 1), ts(NOW - 29 * DAY))
    s_new = piece(ts(NOW - DAY), ts(NOW - DAY + 1), ts(NOW - DAY + 300))
    drop = remotes.decide_remote([remote(x) for x in (old, kept, s_old, s_new)], keep_min=1, retention_days=7, now=NOW)
    assert {d.name for d in drop} == {old.name, s_old.name}


def test_remote_retention_with_nothing_good_deletes_only_dead_uploads():
    f = full(NOW - 90 * DAY)
    assert remotes.decide_remote([remote(f, manifest=False, mtime=NOW - 60)], 3, 7, NOW) == []
    assert len(remotes.decide_remote([remote(f, manifest=False, mtime=NOW - 2 * DAY)], 3, 7, NOW)) == 1


def test_parse_listing_pairs_files_with_their_manifests():
    m = {"name": "dbrs-1.archive", "bytes": 5, "finished": "2026-01-01T00:00:00Z"}
    rows = [{"Path": "full/dbrs-1.archive", "Size": 5, "ModTime": "2026-01-01T00:00:00.123Z"},
            {"Path": "full/dbrs-1.archive.manifest.json", "Size": 10},
            {"Path": "oplog/dbrs-2.oplog.gz", "Size": 3},
            {"Path": "elsewhere/x", "Size": 1}]
    files = remotes.parse_listing(rows, {"full/dbrs-1.archive.manifest.json": m})
    assert [(f.kind, f.name, f.good) for f in files] == [("full", "dbrs-1.archive", True), ("oplog", "dbrs-2.oplog.gz", False)]


# ------------------------------------------------------------------ status

def test_status_says_the_lag_and_problems_name_the_next_command(tmp_path):
    spec = specmod.loads(PSA + '\n[[offsite]]\nname = "u"\ntype = "path"\npath = "/mnt/u"\nmax_lag = "30min"\n')
    offsite.enqueue(spec, "/b/full/dbrs-1.archive", "/b/full/dbrs-1.archive.manifest.json", spool=tmp_path, now=NOW)
    (tmp_path / "state.json").write_text(json.dumps({"u": {"last_ok": "x", "last_ok_t": NOW - 180}}))
    s = offsite.status_summary(spec, spool=tmp_path, now=NOW + 60)
    assert offsite.render_summary(s) == ["off-site u (path): last copy 4 min ago; 1 file(s) waiting"]
    s = offsite.status_summary(spec, spool=tmp_path, now=NOW + 3600)
    assert offsite.problems(s) == ["off-site u is 60 min behind (max_lag 30 min): 1 file(s) waiting; "
                                   "run `dbrs offsite push`"]
    (tmp_path / "state.json").write_text(json.dumps({"u": {"last_ok_t": NOW - 180, "last_error": "off-site u: boom",
                                                           "last_error_t": NOW, "last_error_at": "T"}}))
    s = offsite.status_summary(spec, spool=tmp_path, now=NOW + 60)
    assert offsite.problems(s) == ["off-site copy to u failed at T: off-site u: boom (1 file(s) waiting; fix the "
                                   "target, then `dbrs offsite push`)"]


# --------------------------------------------------------------------- CLI

def _cli(*args):
    from click.testing import CliRunner

    from installer.cli import main

    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help_of_offsite_loads_nothing_heavy():
    import subprocess
    import sys

    code = ("import sys\nfrom installer.cli import main\n"
            "try:\n    main(['offsite', 'push', '--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('pymongo', 'jinja2', 'cryptography', 'bson') if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "Copy every queued backup" in r.stdout and "HEAVY []" in r.stdout, r.stdout + r.stderr


@pytest.fixture
def cluster(tmp_path):
    from ..conftest import write_cluster

    cfg = write_cluster(tmp_path, PSA + SFTP + S3)
    passfile = tmp_path / "pass"
    passfile.write_text("correct horse\n")
    sec = secrets.parse_secrets_toml(SECRETS, b"K" * 8 + b"\n", b"bk\n")
    (cfg.parent / "bundle.dbrs").write_bytes(secrets.seal_bundle(PSA, sec, "correct horse"))
    return cfg, passfile


def test_credentials_go_into_secrets_toml_and_the_resealed_bundle(cluster, tmp_path):
    cfg, passfile = cluster
    key = tmp_path / "vault.key"
    key.write_text(PEM)
    res = _cli("offsite", "credentials", "vault", "--key-file", str(key), "--passphrase-file", str(passfile),
               "--config", str(cfg))
    assert res.exit_code == 0, res.output
    sec_path = cfg.parent / "secrets.toml"
    assert stat.S_IMODE(os.stat(sec_path).st_mode) == 0o600
    assert secrets.parse_secrets_toml(sec_path.read_bytes(), b"", b"").offsite == {"vault": {"key_pem": PEM}}
    bundle = secrets.open_bundle((cfg.parent / "bundle.dbrs").read_bytes(), "correct horse")
    assert bundle.secrets.offsite == {"vault": {"key_pem": PEM}}
    assert bundle.secrets.keyfile == b"K" * 8 + b"\n"          # the cluster's keyfile survives the re-seal
    assert "[[offsite]]" in bundle.spec_text and bundle.secrets.passwords["admin"]
    keys = tmp_path / "s3.keys"
    keys.write_text("AKIAEXAMPLE\nwJalrSECRET\n")
    res = _cli("offsite", "credentials", "s3", "--s3-keys-file", str(keys), "--config", str(cfg))
    assert res.exit_code == 0 and "WARN bundle.dbrs does not hold these credentials yet" in res.output
    assert set(secrets.parse_secrets_toml(sec_path.read_bytes(), b"", b"").offsite) == {"vault", "s3"}
    assert "wJalr" not in res.output


@pytest.mark.parametrize("args, field", [
    (["vault", "--key-file", "{tmp}/vault.key", "--passphrase-file", "{tmp}/wrongpass"], "--passphrase-file"),
    (["vault", "--key-file", "{tmp}/vault.key.pub"], "--key-file"),
    (["vault", "--key-file", "{tmp}/locked.key"], "--key-file"),
    (["nosuch", "--key-file", "{tmp}/vault.key"], "--target"),
    (["s3", "--s3-keys-file", "{tmp}/vault.key"], "--s3-keys-file"),
])
def test_credentials_refusals_exit_2_and_change_nothing(cluster, tmp_path, args, field):
    cfg, _ = cluster
    (tmp_path / "vault.key").write_text(PEM)
    (tmp_path / "vault.key.pub").write_text("ssh-ed25519 AAAA x\n")
    (tmp_path / "locked.key").write_text("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n-----END RSA PRIVATE KEY-----\n")
    (tmp_path / "wrongpass").write_text("wrong\n")
    before = {p.name: p.read_bytes() for p in cfg.parent.iterdir()}
    res = _cli("offsite", "credentials", *[a.format(tmp=tmp_path) for a in args], "--config", str(cfg))
    assert res.exit_code == 2 and res.output.startswith(f"error: {field}"), res.output
    assert len(res.output.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in cfg.parent.iterdir()} == before


def test_queued_names_are_what_local_retention_must_keep(tmp_path):
    spec = specmod.loads(PSA + '\n[[offsite]]\nname = "a"\ntype = "path"\npath = "/a"\n'
                         '\n[[offsite]]\nname = "b"\ntype = "path"\npath = "/b"\n')
    offsite.enqueue(spec, "/b/full/dbrs-1.archive", "/b/full/dbrs-1.archive.manifest.json", spool=tmp_path, now=1)
    offsite.enqueue(spec, "/b/full/dbrs-2.archive", "/b/full/dbrs-2.archive.manifest.json", spool=tmp_path, now=2)
    q = offsite.read_queue(tmp_path)
    q[0].entry["done"] = ["a", "b"]
    offsite._save(q[0])
    q[1].entry["done"] = ["a"]
    offsite._save(q[1])
    assert offsite.queued_names(spec, spool=tmp_path) == {"dbrs-2.archive"}


def _remote(kind, name, rid, cluster="dbrs"):
    m = {"name": name, "kind": kind, "bytes": 10, "cluster": cluster, "replset_id": rid,
         "finished": "2026-11-28T00:00:00Z"}
    return remotes.Remote(kind, name, 10, m)


def test_remote_files_of_a_reinitiated_cluster_of_the_same_name_never_count_as_ours():
    from installer.backup import catalog

    ours, theirs = "a" * 24, "b" * 24
    files = [_remote("full", f"dbrs-{ours}-20261128T000000.000000Z.archive", ours),
             _remote("full", f"dbrs-{theirs}-20261129T000000.000000Z.archive", theirs),
             _remote("full", "dbrs-20261101T000000Z.archive", None)]   # from before ids: the name's cluster
    kept = remotes.own_files(files, catalog.Identity("dbrs", ours))
    assert [f.name for f in kept] == [files[0].name, files[2].name]
    # a brand-new host knows no id: one id on the remote is taken, two are refused with the fix
    assert remotes.own_files(files[:1] + files[2:], catalog.Identity("dbrs")) == files[:1] + files[2:]
    with pytest.raises(InputError, match="--cluster-id") as e:
        remotes.own_files(files, catalog.Identity("dbrs"))
    assert e.value.exit_code == 2
