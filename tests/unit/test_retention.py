"""Retention: old full backups go, the newest keep_min always stay, slices live as long as a base needs them."""

from hypothesis import given, settings, strategies as st

from installer.backup import retention

from .backup_records import chain, full

DAY = 86400
NOW = 2_000_000_000


def names(entries):
    return [e.name for e in entries]


def test_all_backups_old_keeps_the_newest_keep_min():
    fulls = [full(NOW - (30 - i) * DAY) for i in range(10)]
    d = retention.decide(fulls, [], NOW, retention_days=7, keep_min=3)
    assert names(d.keep_full) == names(fulls[-3:])
    assert names(d.drop_full) == names(fulls[:-3])


def test_recent_ones_all_stay_even_beyond_keep_min():
    fulls = [full(NOW - i * 3600) for i in range(24, 0, -1)]
    d = retention.decide(fulls, [], NOW, retention_days=7, keep_min=3)
    assert d.drop_full == () and len(d.keep_full) == 24


def test_boundary_exactly_retention_days_old_stays():
    fulls = [full(NOW - 7 * DAY), full(NOW - 7 * DAY - 1)]
    d = retention.decide(fulls, [], NOW, retention_days=7, keep_min=0)
    assert names(d.keep_full) == names(fulls[:1]) and names(d.drop_full) == names(fulls[1:])


def test_slices_older_than_the_oldest_kept_base_go_the_straddling_one_stays():
    fulls = [full(NOW - 10 * DAY), full(NOW - 2 * DAY)]
    slices = chain(NOW - 11 * DAY, NOW, step=DAY // 2)
    d = retention.decide(fulls, slices, NOW, retention_days=7, keep_min=1)
    floor = fulls[1].oplog_start
    assert names(d.drop_full) == names(fulls[:1])
    assert all(s.last <= floor for s in d.drop_slices) and d.drop_slices
    assert all(s.last > floor for s in d.keep_slices)
    # the kept slices still chain from the kept base's oplog start
    first = d.keep_slices[0]
    assert first.after <= floor < first.last


def test_no_full_backup_keeps_every_slice():
    slices = chain(NOW - 30 * DAY, NOW, step=DAY)
    d = retention.decide([], slices, NOW, retention_days=7, keep_min=3)
    assert d.drop_slices == () and len(d.keep_slices) == len(slices)


def test_only_trusted_backups_count_and_untrusted_ones_are_never_dropped():
    fulls = [full(NOW - (30 - i) * DAY) for i in range(6)]
    bad = {fulls[-1].name, fulls[-2].name}                         # the newest two failed verification
    d = retention.decide(fulls, [], NOW, retention_days=7, keep_min=2, trusted=lambda e: e.name not in bad)
    assert sorted(names(d.relied)) == names(fulls[-4:-2])                # keep_min counts the newest trusted ones
    assert set(names(d.keep_full)) == set(names(fulls[-4:]))       # the untrusted stay for quarantine, not deletion
    assert names(d.drop_full) == names(fulls[:2])


ages = st.lists(st.integers(min_value=0, max_value=60 * DAY), max_size=25, unique=True)


@settings(max_examples=300, deadline=None)
@given(ages=ages, days=st.integers(1, 30), keep_min=st.integers(1, 10))
def test_properties(ages, days, keep_min):
    fulls = sorted((full(NOW - a) for a in ages), key=lambda e: e.created)
    slices = chain(NOW - 61 * DAY, NOW, step=DAY // 4)
    d = retention.decide(fulls, slices, NOW, days, keep_min)
    kept, dropped = set(names(d.keep_full)), set(names(d.drop_full))
    # a partition, nothing lost or invented
    assert kept | dropped == set(names(fulls)) and not kept & dropped
    # the newest keep_min always stay
    assert set(names(fulls[-keep_min:])) <= kept
    # nothing inside the retention period is dropped; nothing outside is kept beyond keep_min
    for e in fulls:
        if e.created >= NOW - days * DAY:
            assert e.name in kept
        elif e.name in kept:
            assert e.name in names(fulls[-keep_min:])
    # every kept base can still be rolled forward: no slice ending after its oplog start was dropped
    for e in d.keep_full:
        assert all(s.last <= e.oplog_start for s in d.drop_slices)
    assert len(d.keep_slices) + len(d.drop_slices) == len(slices)
