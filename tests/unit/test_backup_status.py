"""The backup part of `dbrs status`: what it shows and what makes `--check` fail."""

from installer.backup import status


def summary(**kw):
    base = {
        "backup_dir": "/var/backups/dbrs",
        "last_full": {"name": "dbrs-20261128T020000Z.archive", "finished": "2026-11-28T02:00:30Z", "age_s": 3600,
                      "bytes": 3 * 2**20, "host": "db2", "member": "mongod2", "encrypted": True},
        "last_slice": {"name": "dbrs-20261128T025500Z.oplog.gz", "finished": "2026-11-28T02:55:01Z", "age_s": 300,
                       "last_ts": "2026-11-28T02:55:00Z", "gap": False},
        "pitr_window": {"from": "2026-11-28T02:00:10Z", "to": "2026-11-28T02:55:00Z"},
        "recent_failures": [],
        "next_runs": {"dbrs-backup.timer": "Sun 2026-11-29 02:07:31 UTC"},
    }
    base.update(kw)
    return base


def test_healthy_summary_has_no_problems_and_shows_window():
    s = summary()
    assert status.summary_problems(s) == []
    text = "\n".join(status.render_summary(s))
    assert "last full backup: dbrs-20261128T020000Z.archive, 60min ago, 3.0 MiB, from mongod2 on db2" in text
    assert "restore --to window: 2026-11-28T02:00:10Z .. 2026-11-28T02:55:00Z" in text
    assert "next dbrs-backup.timer: Sun 2026-11-29 02:07:31 UTC" in text


def test_failure_after_last_good_backup_is_a_problem_older_one_is_not():
    old = {"unit": "dbrs-backup.service", "time": "2026-11-27T02:00:00Z", "host": "db2", "message": "disk full"}
    new = {"unit": "dbrs-oplog.service", "time": "2026-11-28T02:50:00Z", "host": "db2", "message": "auth failed"}
    assert status.summary_problems(summary(recent_failures=[old])) == []
    problems = status.summary_problems(summary(recent_failures=[old, new]))
    assert problems == ["dbrs-oplog.service failed at 2026-11-28T02:50:00Z on db2: auth failed"]
    assert "WARN dbrs-oplog.service failed" in "\n".join(status.render_summary(summary(recent_failures=[new])))


def test_any_failure_counts_when_no_backup_exists_and_gap_is_reported():
    f = {"unit": "dbrs-backup.service", "time": "2026-11-27T02:00:00Z", "host": "db2", "message": "x"}
    assert len(status.summary_problems(summary(last_full=None, recent_failures=[f]))) == 1
    gap = summary(last_slice={**summary()["last_slice"], "gap": True})
    assert "point-in-time restore is broken" in status.summary_problems(gap)[0]
    assert "none in /var/backups/dbrs on this host" in status.render_summary(summary(last_full=None))[0]
