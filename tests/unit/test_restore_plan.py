"""Point-in-time planning: which full backup, which slices, which --oplogLimit; gaps and edges."""

import time

import pytest

from installer.backup import mongorestore, pitr, restore, times
from installer.errors import DbrsError, InputError

from .backup_records import chain, full, piece, ts

T0 = 1_764_300_000


def test_picks_newest_base_ending_before_time_and_the_slices_after_its_oplog_start():
    b1 = full(T0, start=ts(T0 - 100), end=ts(T0 - 10))
    b2 = full(T0 + 3600, start=ts(T0 + 3500), end=ts(T0 + 3590))
    slices = chain(T0 - 100, T0 + 7200, step=300)
    p = pitr.plan_pitr([b1, b2], slices, T0 + 4000.7)
    assert p.base is b2
    assert p.limit == ts(T0 + 4001, 0)
    assert times.ts_text(p.limit) == f"{T0 + 4001}:0"
    # the first slice holds the base's oplog start; the last reaches past the limit
    assert p.slices[0].after <= b2.oplog_start < p.slices[0].last
    assert p.slices[-1].last >= p.limit and p.slices[-2].last < p.limit
    assert [s.name for s in p.slices] == [s.name for s in slices if s.last > b2.oplog_start][:len(p.slices)]


def test_time_before_the_newest_base_uses_the_older_one():
    b1 = full(T0, start=ts(T0 - 100), end=ts(T0 - 10))
    b2 = full(T0 + 3600, start=ts(T0 + 3500), end=ts(T0 + 3590))
    p = pitr.plan_pitr([b1, b2], chain(T0 - 100, T0 + 7200), T0 + 3550)
    assert p.base is b1     # b2's dump may contain writes up to T0+3590, after the target


def test_time_before_every_backup_is_refused():
    with pytest.raises(DbrsError, match="no full backup ends before it"):
        pitr.plan_pitr([full(T0)], chain(T0 - 100, T0 + 600), T0 - 500)


def test_time_past_the_saved_oplog_is_refused_with_where_it_ends():
    with pytest.raises(DbrsError, match="saved oplog ends at"):
        pitr.plan_pitr([full(T0)], chain(T0 - 100, T0 + 600), T0 + 601)


def test_gap_between_base_and_time_is_refused_and_named():
    b = full(T0, start=ts(T0 - 100), end=ts(T0 - 10))
    before = chain(T0 - 100, T0 + 600)
    after_gap = [piece(ts(T0 + 600), ts(T0 + 2000), ts(T0 + 2300), gap=True)] + chain(T0 + 2300, T0 + 4000)
    slices = before + after_gap
    with pytest.raises(DbrsError, match="oplog gap after"):
        pitr.plan_pitr([b], slices, T0 + 3000)
    # before the gap still works
    assert pitr.plan_pitr([b], slices, T0 + 500).base is b
    # and a full backup taken after the gap re-anchors
    b2 = full(T0 + 2500, start=ts(T0 + 2400), end=ts(T0 + 2490))
    p = pitr.plan_pitr([b, b2], slices, T0 + 3000)
    assert p.base is b2 and p.slices[0].last > b2.oplog_start


def test_pitr_window_reports_the_unbroken_stretch():
    b = full(T0, start=ts(T0 - 100), end=ts(T0 - 10))
    assert pitr.pitr_window([b], chain(T0 - 100, T0 + 600)) == (ts(T0 - 10), ts(T0 + 600))
    slices = chain(T0 - 100, T0 + 600) + [piece(ts(T0 + 600), ts(T0 + 900), ts(T0 + 1200), gap=True)]
    assert pitr.pitr_window([b], slices) is None
    assert pitr.pitr_window([], slices) is None


def test_restore_argv_never_restores_system_dbs_and_refuses_ns_include_with_replay():
    argv = mongorestore.restore_argv("/usr/bin/mongorestore", ["10.0.0.11:27017", "10.0.0.12:27017"], "/dev/fd/5",
                                set_name="dbrs", drop=True)
    assert argv == ("/usr/bin/mongorestore", "--host=dbrs/10.0.0.11:27017,10.0.0.12:27017", "--username=restore",
                    "--authenticationDatabase=admin", "--config=/dev/fd/5", "--nsExclude=admin.*",
                    "--nsExclude=config.*", "--nsExclude=local.*", "--drop", "--oplogReplay", "--archive", "--gzip")
    assert not any("pass" in a.lower() for a in argv)
    with pytest.raises(InputError, match="--ns-include"):
        mongorestore.restore_argv("m", ["h:1"], "/dev/fd/5", ns_include=("app.*",))
    argv = mongorestore.restore_argv("m", ["h:1"], "/dev/fd/5", ns_include=("app.*",), oplog_replay=False)
    assert "--nsInclude=app.*" in argv and "--oplogReplay" not in argv
    argv = mongorestore.restore_argv("m", ["h:1"], "/c", archive_stdin=False, oplog_dir="/tmp/x",
                                oplog_limit=ts(T0 + 1, 0))
    assert argv[-2:] == (f"--oplogLimit={T0 + 1}:0", "--dir=/tmp/x")


@pytest.mark.parametrize("pattern", ["admin.*", "config.system.sessions", "local.oplog.rs", "*.*"])
def test_ns_include_into_system_dbs_is_refused(pattern):
    with pytest.raises(InputError, match="never restored"):
        restore.check_ns_include([pattern])


def test_planning_10000_slices_is_fast():
    b = full(T0, start=ts(T0 - 100), end=ts(T0 - 10))
    slices = chain(T0 - 100, T0 + 10_000 * 60, step=60)
    assert len(slices) >= 10_000
    t = time.perf_counter()
    p = pitr.plan_pitr([b], slices, T0 + 9_990 * 60)
    took = time.perf_counter() - t
    assert len(p.slices) > 9_000
    assert took < 0.5, took   # the benchmark holds the 100 ms target; this guards against quadratic work
