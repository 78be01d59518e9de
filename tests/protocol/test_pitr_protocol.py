"""Point-in-time restore against stand-in replica sets whose oplog has real (ts, increment) entries.

Two clusters, both named "dbrs" (the default) but with their own
replicaSetId, share one backup folder, as on an NFS path or a bucket. Every
command runs through the CLI against the MockupDB stand-in sets; mongodump
and mongorestore are the strict stand-ins on PATH, and the mongorestore
stand-in records each oplog entry it is fed as (seconds, increment).
"""

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from bson import Int64, Timestamp
from click.testing import CliRunner

from installer.backup import catalog, slices as oplog, times, history
from installer.cli import main

from ..conftest import write_cluster
from .conftest import PSA_ROLES, spec_text
from .standin import StandInMember, StandInSet

STANDINS = Path(__file__).resolve().parents[1] / "standins"
T0 = 1_764_300_000
DUMP_BYTES = 300_000


def op(sec, inc, ns="app.orders"):
    return {"ts": Timestamp(sec, inc), "t": Int64(1), "h": Int64(0), "v": 2, "op": "i", "ns": ns,
            "o": {"_id": f"{sec}.{inc}"}, "wall": dt.datetime.fromtimestamp(sec, dt.timezone.utc)}


def serve_oplog(self, request, doc):
    """local.oplog.rs as a server answers a find: ts filters, $natural order, limit, projection."""
    if doc["find"] != "oplog.rs" or doc.get("$db") != "local":
        return request.command_err(code=2, codeName="BadValue", errmsg="stand-in: only local.oplog.rs is served")
    docs = sorted(self.rs.oplog, key=lambda d: d["ts"])
    cond = (doc.get("filter") or {}).get("ts", {})
    tests = {"$gt": lambda a, b: a > b, "$gte": lambda a, b: a >= b, "$lt": lambda a, b: a < b,
             "$lte": lambda a, b: a <= b}
    for k, v in cond.items():
        docs = [d for d in docs if tests[k](d["ts"], v)]
    if (doc.get("sort") or {}).get("$natural") == -1:
        docs.reverse()
    if doc.get("limit"):
        docs = docs[:doc["limit"]]
    if doc.get("projection") == {"ts": 1}:
        docs = [{"ts": d["ts"]} for d in docs]
    return request.reply({"cursor": {"id": Int64(0), "ns": "local.oplog.rs", "firstBatch": docs}, "ok": 1})


class Cluster:
    """One stand-in set with its own spec and state file, backing up into the shared folder."""

    def __init__(self, tmp, label, shared, mp):
        self.rs = StandInSet(PSA_ROLES).initiated().start()
        self.rs.oplog = [op(T0 + i, 1) for i in range(0, 51, 10)]
        self.rs.oplog += [op(T0 + 50, 2), op(T0 + 50, 3)]
        self.mp = mp
        text = spec_text(self.rs) + f'\n[backup]\ndir = "{shared}"\nkeep_min = 2\nretention_days = 7\nencrypt = true\n'
        self.config = str(write_cluster(tmp / label, text))
        self.state = tmp / label / "state.json"
        self.rsid = str(self.rs.config["settings"]["replicaSetId"])

    def use(self):
        self.mp.setattr(history, "STATE_FILE", self.state)
        return self

    def dbrs(self, *args):
        self.use()
        return CliRunner().invoke(main, [*args, "--config", self.config], catch_exceptions=False)

    def add(self, *entries):
        self.rs.oplog += list(entries)

    def spec(self):
        from installer import spec

        return spec.load(self.config)


@pytest.fixture
def world(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("mongodump", "mongorestore"):
        (bin_dir / tool).symlink_to(STANDINS / tool)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DBRS_STANDIN_RECORD", str(tmp_path / "record.jsonl"))
    monkeypatch.setenv("DBRS_STANDIN_DUMP_BYTES", str(DUMP_BYTES))
    monkeypatch.setattr(StandInMember, "cmd_find", serve_oplog)
    monkeypatch.setattr(StandInMember, "cmd_buildinfo",
                        lambda self, request, doc: request.reply({"version": "8.0.4", "ok": 1}), raising=False)
    allowed = StandInMember.allowed
    monkeypatch.setattr(StandInMember, "allowed",
                        lambda self, user, low, doc: low == "buildinfo" or allowed(self, user, low, doc))
    shared = tmp_path / "shared-backups"
    made = []

    class World:
        tmp = tmp_path
        folder = shared

        def cluster(self, label):
            c = Cluster(tmp_path, label, shared, monkeypatch)
            made.append(c)
            return c

        def records(self, tool="mongorestore"):
            p = tmp_path / "record.jsonl"
            if not p.exists():
                return []
            return [r for r in map(json.loads, p.read_text().splitlines()) if r["tool"] == tool]

        def forget_records(self):
            (tmp_path / "record.jsonl").unlink(missing_ok=True)

    yield World()
    for c in made:
        c.rs.stop()


def ok(r):
    assert r.exit_code == 0, r.output
    return r.output


def one_error_line(r, code=1):
    assert r.exit_code == code, r.output
    err = [line for line in r.output.splitlines() if line.startswith("error: ")]
    assert len(err) == 1, r.output
    return err[0]


def slices_of(c):
    return catalog.scan(c.spec().backup.dir, catalog.OPLOG,
                        catalog.Identity("dbrs", c.rsid))[0]


def fulls_of(c):
    return catalog.scan(c.spec().backup.dir, catalog.FULL, catalog.Identity("dbrs", c.rsid))[0]


def manifest_path(e):
    return Path(e.path + catalog.MANIFEST)


# ------------------------------------------------------------ 3: two clusters, one folder

def test_another_clusters_files_never_steer_ours(world):
    a, b = world.cluster("a"), world.cluster("b")
    assert a.rsid != b.rsid
    ok(a.dbrs("backup"))
    a.add(op(T0 + 60, 1), op(T0 + 60, 2), op(T0 + 70, 1))
    ok(a.dbrs("oplog"))
    # the other cluster's oplog runs well ahead of ours
    b.rs.oplog = [op(T0 + 1000 + i, 1) for i in range(0, 500, 10)]
    ok(b.dbrs("backup"))
    b.add(op(T0 + 2000, 1), op(T0 + 2000, 2))
    ok(b.dbrs("oplog"))
    names = sorted(os.listdir(world.folder / "oplog"))
    assert any(n.startswith(f"dbrs-{a.rsid}-") for n in names) and any(n.startswith(f"dbrs-{b.rsid}-") for n in names)
    # our next slice chains after OUR last slice and saves our new entries
    a.add(op(T0 + 80, 1), op(T0 + 90, 1))
    out = ok(a.dbrs("oplog", "--json"))
    data = json.loads(out)
    assert data["status"] == "done", out
    assert data["manifest"]["after"] == {"t": T0 + 70, "i": 1} and data["manifest"]["count"] == 2
    assert data["manifest"]["replset_id"] == a.rsid and data["manifest"]["cluster"] == "dbrs"
    # the window and the list are ours; the other cluster is named once, as foreign
    listing = ok(a.dbrs("backup", "list"))
    assert f"restore --to works from {times.iso(T0 + 50)}+3 to {times.iso(T0 + 90)}+1" in listing
    foreign = [line for line in listing.splitlines() if line.startswith("foreign:")]
    assert foreign == [f"foreign: 2 file(s) of cluster dbrs (replica set id {b.rsid}) in {world.folder}: "
                       "not this cluster's, left alone"]
    assert str(T0 + 2000) not in listing and times.iso(T0 + 2000) not in listing
    assert ok(a.dbrs("backup", "verify", "--all")).count("ok ") == 3
    status = ok(a.dbrs("status", "--check"))
    assert f"restore --to window: {times.iso(T0 + 50)}+3 .. {times.iso(T0 + 90)}+1" in status
    assert foreign[0] in status and "WARN" not in status


def test_prune_never_counts_or_deletes_another_clusters_backups(world):
    from installer.backup import full as backup

    a, b = world.cluster("a"), world.cluster("b")
    a.use()
    old = [backup.run(a.spec(), a.config, now=lambda d=d: dt.datetime.now().timestamp() - d * 86400).name
           for d in (30, 20)]
    for _ in range(3):
        ok(b.dbrs("backup"))
    before_b = sorted(n for n in os.listdir(world.folder / "full") if n.startswith(f"dbrs-{b.rsid}-"))
    out = json.loads(ok(a.dbrs("prune", "--json")))
    # keep_min = 2 counts only our backups: both of ours stay, however many newer ones the other cluster has
    assert out["deleted_full"] == [] and sorted(out["kept_full"]) == sorted(old)
    assert [e.name for e in fulls_of(a)] == old
    after_b = sorted(n for n in os.listdir(world.folder / "full") if n.startswith(f"dbrs-{b.rsid}-"))
    assert after_b == before_b and len(after_b) == 9          # 3 archives, manifests and records, untouched


def test_a_killed_run_of_the_other_cluster_is_not_cleared_by_ours(world):
    a, b = world.cluster("a"), world.cluster("b")
    ok(a.dbrs("backup"))
    theirs = world.folder / "full" / f"dbrs-{b.rsid}-20261128T020000.000000Z.archive.partial"
    theirs.write_bytes(b"a dump in progress on the other cluster")
    ok(a.dbrs("backup"))
    assert theirs.exists()
    assert "incomplete" not in ok(a.dbrs("backup", "list"))


# ------------------------------------------------------------ 1: the chain is proven from the data

def chain_of_three(world):
    a = world.cluster("a")
    ok(a.dbrs("backup"))
    a.add(op(T0 + 60, 1), op(T0 + 60, 2), op(T0 + 70, 1))
    ok(a.dbrs("oplog"))
    a.add(op(T0 + 80, 1), op(T0 + 90, 1), op(T0 + 90, 2))
    ok(a.dbrs("oplog"))
    a.add(op(T0 + 100, 1), op(T0 + 110, 1))
    ok(a.dbrs("oplog"))
    s = slices_of(a)
    assert [x.manifest.count for x in s] == [3, 3, 2]
    return a, s


def test_a_slice_claiming_more_than_its_data_fails_verify_and_restore(world):
    a, (s1, s2, s3) = chain_of_three(world)
    m = json.loads(manifest_path(s1).read_text())
    m["last"] = {"t": T0 + 100, "i": 1}      # claims to reach into s3's time; its data ends at T0+70
    manifest_path(s1).write_text(json.dumps(m))
    # restore proves the slice from its data while planning, before any verify run has looked at it
    r = a.dbrs("restore", "--to", times.iso(T0 + 95), "--yes")
    assert "cannot be trusted" in one_error_line(r)
    assert world.records() == []                          # nothing reached mongorestore
    r = a.dbrs("backup", "verify", "--all")
    assert r.exit_code == 1
    assert f"FAILED {s1.name}: holds 3 entries {times.iso(T0 + 60)}+1 .. {times.iso(T0 + 70)}+1, the manifest " \
           f"says 3 entries {times.iso(T0 + 60)}+1 .. {times.iso(T0 + 100)}+1" in r.output
    # verify moved it to quarantine: now restore names the hole it leaves, still feeding nothing
    r = a.dbrs("restore", "--to", times.iso(T0 + 95), "--yes")
    assert "oplog hole" in one_error_line(r)
    assert world.records() == []


def test_a_deleted_middle_slice_is_a_named_hole_in_list_verify_and_status(world):
    a, (s1, s2, s3) = chain_of_three(world)
    catalog.remove(s2.path)
    listing = ok(a.dbrs("backup", "list"))
    holes = [line for line in listing.splitlines() if line.startswith("oplog hole")]
    assert holes == [f"oplog hole: no slice holds the entries after {times.iso(T0 + 70)}+1 up to "
                     f"{times.iso(T0 + 90)}+2 (slice {s3.name} starts there); a slice is missing, so `restore --to` "
                     "cannot cross it; run `dbrs backup` to start a new chain"]
    r = a.dbrs("backup", "verify", "--all")
    assert r.exit_code == 1 and "FAILED oplog hole" in r.output and "oplog chain has 1 problem" in r.output
    st = a.dbrs("status", "--check")
    assert st.exit_code == 1 and "WARN oplog hole" in st.output
    # the time just before the hole is restorable exactly as the message prints it
    r = a.dbrs("restore", "--to", times.iso(T0 + 95), "--yes")
    line = one_error_line(r)
    assert f"restore to {times.iso(T0 + 70)}+1 or earlier" in line
    ok(a.dbrs("restore", "--to", f"{times.iso(T0 + 70)}+1", "--yes"))
    assert world.records()[-1]["oplog_ts"] == [[T0 + 60, 1], [T0 + 60, 2], [T0 + 70, 1]]


# ------------------------------------------------------------ 2: overlapping slices replay once, in order

def test_overlapping_slices_replay_each_entry_once_in_ts_order(world, monkeypatch):
    a = world.cluster("a")
    ok(a.dbrs("backup"))
    a.add(op(T0 + 60, 1), op(T0 + 60, 2), op(T0 + 60, 3), op(T0 + 70, 1))
    ok(a.dbrs("oplog"))
    a.add(op(T0 + 80, 1), op(T0 + 80, 2))
    # a second writer saved an overlapping slice: from inside the first one's second T0+60, to T0+80
    real = oplog.plan
    monkeypatch.setattr(oplog, "plan", lambda f, s, o: oplog.SlicePlan(times.ts_int(T0 + 60, 2), False, False))
    ok(a.dbrs("oplog"))
    monkeypatch.setattr(oplog, "plan", real)
    s1, s2 = slices_of(a)
    assert s2.manifest.first == times.ts_int(T0 + 60, 3) and s2.manifest.count == 4
    assert any(line.startswith("oplog overlap") for line in ok(a.dbrs("backup", "list")).splitlines())
    world.forget_records()
    out = ok(a.dbrs("restore", "--to", f"{times.iso(T0 + 80)}+1", "--yes"))
    replay = world.records()[-1]
    assert replay["oplog_ts"] == [[T0 + 60, 1], [T0 + 60, 2], [T0 + 60, 3], [T0 + 70, 1], [T0 + 80, 1]]
    assert f"--oplogLimit={T0 + 80}:2" in replay["argv"]
    assert "oplog replayed: 5 entries from 2 slice(s)" in out


# ------------------------------------------------------------ 4: the window is exactly restorable

def test_the_advertised_window_end_is_restorable_as_printed_and_to_the_increment(world):
    a, (s1, s2, s3) = chain_of_three(world)
    a.add(op(T0 + 120, 1), op(T0 + 120, 2), op(T0 + 120, 3))
    ok(a.dbrs("oplog"))
    listing = ok(a.dbrs("backup", "list"))
    assert f"to {times.iso(T0 + 120)}+3" in listing
    # the second it prints, without an increment: every saved entry of that second
    world.forget_records()
    out = ok(a.dbrs("restore", "--to", times.iso(T0 + 120), "--yes"))
    assert world.records()[-1]["oplog_ts"][-3:] == [[T0 + 120, 1], [T0 + 120, 2], [T0 + 120, 3]]
    assert f"--oplogLimit={T0 + 120}:4" in world.records()[-1]["argv"]
    assert "inside the second asked for" in out
    # with the increment, exactly to that entry
    world.forget_records()
    ok(a.dbrs("restore", "--to", f"{times.iso(T0 + 120)}+2", "--yes"))
    rec = world.records()[-1]
    assert rec["oplog_ts"][-2:] == [[T0 + 120, 1], [T0 + 120, 2]] and f"--oplogLimit={T0 + 120}:3" in rec["argv"]
    # the window's start too
    start = listing.split("restore --to works from ")[1].split(" to ")[0]
    ok(a.dbrs("restore", "--to", start, "--yes"))
    # one past the end is refused, naming the end in a form that works
    r = a.dbrs("restore", "--to", f"{times.iso(T0 + 120)}+4", "--yes")
    assert f"the saved oplog ends at {times.iso(T0 + 120)}+3" in one_error_line(r)


# ------------------------------------------------------------ 5: a failed restore says what the cluster holds

def test_replay_failure_after_the_base_says_the_cluster_holds_the_base_and_how_to_finish(world, monkeypatch):
    a, slices = chain_of_three(world)
    monkeypatch.setenv("DBRS_STANDIN_RESTORE_FAIL_OPLOG", "1")
    r = a.dbrs("restore", "--to", times.iso(T0 + 95), "--yes")
    base = fulls_of(a)[0].name
    assert f"base restored from {base}: app.orders (1200 documents), app.users (40 documents)" in r.output
    line = one_error_line(r)
    assert "oplog replay failed (mongorestore exited 1: " in line and "not primary" in line
    assert f"the cluster now holds backup {base} (as of {times.iso(T0 + 50)}+3)" in line
    assert "not the time asked for" in line
    redo = line.split("Run `")[1].split("`")[0]
    assert redo == f"dbrs restore --to '{times.iso(T0 + 95)}' --base {base} --yes"
    monkeypatch.delenv("DBRS_STANDIN_RESTORE_FAIL_OPLOG")
    world.forget_records()
    args = [a.strip("'") for a in redo.split()[2:]]
    out = ok(a.dbrs("restore", *args))
    assert "restore finished" in out and world.records()[-1]["oplog_last_applied"] == [T0 + 90, 2]


def test_base_failure_midway_names_what_was_restored(world, monkeypatch):
    a = world.cluster("a")
    ok(a.dbrs("backup"))
    name = fulls_of(a)[0].name
    monkeypatch.setenv("DBRS_STANDIN_RESTORE_FAIL", "1")
    r = a.dbrs("restore", name, "--drop", "--yes")
    line = one_error_line(r)
    assert f"restore of {name} failed: mongorestore exited 1" in line
    assert "The cluster now holds: app.orders (1200 documents) from the backup (each dropped just before it was " \
           "restored); app.users partly restored; every other collection as it was" in line
    assert f"Run `dbrs restore {name} --drop --yes` to redo it" in line
