"""The chain on data, without files: what counts as a hole, an overlap, a contradiction; exact limits."""

import pytest

from installer.backup import pitr, times
from installer.errors import DbrsError

from .backup_records import chain, full, piece, ts

T0 = 1_764_300_000


def test_an_unbroken_chain_has_no_problems_even_when_slicing_started_after_several_fulls():
    fulls = [full(T0 - 7200, start=ts(T0 - 7300), end=ts(T0 - 7210)), full(T0, start=ts(T0 - 100), end=ts(T0 - 10))]
    assert pitr.chain_problems(fulls, chain(T0 - 100, T0 + 900)) == []


def test_a_missing_slice_is_a_hole_named_with_exact_bounds():
    b = full(T0, start=ts(T0 - 100), end=ts(T0 - 10))
    s = chain(T0 - 100, T0 + 900)
    del s[1]
    [line] = pitr.chain_problems([b], s)
    assert line.startswith(f"oplog hole: no slice holds the entries after {times.iso(T0 + 200)}+1 up to "
                           f"{times.iso(T0 + 500)}+1 (slice {s[1].name} starts there)")


def test_the_first_slice_after_the_newest_base_missing_is_a_hole_too():
    b = full(T0, start=ts(T0 - 100), end=ts(T0 - 10))
    s = chain(T0 - 100, T0 + 900)[1:]
    assert pitr.chain_problems([b], s)[0].startswith("oplog hole")


def test_overlap_and_self_contradiction_are_named():
    b = full(T0, start=ts(T0 - 100), end=ts(T0 - 10))
    a = piece(ts(T0 - 100), ts(T0 - 99), ts(T0 + 100))
    over = piece(ts(T0 + 50), ts(T0 + 51), ts(T0 + 200))
    liar = piece(ts(T0 + 200), ts(T0 + 300), ts(T0 + 250))
    lines = pitr.chain_problems([b], [a, over, liar])
    assert lines[0].startswith(f"oplog overlap: slices {a.name} and {over.name} both hold entries after "
                               f"{times.iso(T0 + 50)}+1 up to {times.iso(T0 + 100)}+1")
    assert lines[1].startswith(f"slice {liar.name}: its manifest contradicts itself")


def test_a_gap_counts_until_a_later_full_backup_reanchors():
    b = full(T0, start=ts(T0 - 100), end=ts(T0 - 10))
    before = chain(T0 - 100, T0 + 600)
    gap = piece(ts(T0 + 600), ts(T0 + 2000), ts(T0 + 2300), gap=True)
    assert pitr.chain_problems([b], before + [gap])[0].startswith(f"oplog gap before slice {gap.name}")
    b2 = full(T0 + 2500, start=ts(T0 + 2400), end=ts(T0 + 2490))
    after = [piece(ts(T0 + 2400), ts(T0 + 2401), ts(T0 + 2600))]      # the re-anchored chain
    assert pitr.chain_problems([b, b2], before + [gap] + after) == []


def test_limits_are_exact_to_the_increment_and_capped_inside_the_last_second():
    b = full(T0, start=ts(T0 - 100), end=ts(T0 - 10))
    s = [piece(ts(T0 - 100), ts(T0 - 50), ts(T0 + 60, 3))]
    p = pitr.plan_pitr([b], s, T0 + 60, 2)
    assert p.limit == times.ts_int(T0 + 60, 3) and not p.capped
    p = pitr.plan_pitr([b], s, T0 + 60)
    assert p.limit == times.ts_int(T0 + 60, 4) and p.capped
    assert any("inside the second asked for" in line for line in p.lines())
    with pytest.raises(DbrsError, match=rf"saved oplog ends at {times.iso(T0 + 60)}\+3"):
        pitr.plan_pitr([b], s, T0 + 60, 4)
    with pytest.raises(DbrsError, match="saved oplog ends at"):
        pitr.plan_pitr([b], s, T0 + 61)


def test_damaged_bases_are_passed_over_and_named_and_a_pinned_base_is_honoured():
    old = full(T0, start=ts(T0 - 100), end=ts(T0 - 10))
    new = full(T0 + 400, start=ts(T0 + 350, 7), end=ts(T0 + 390))
    s = chain(T0 - 100, T0 + 900)
    assert pitr.plan_pitr([old, new], s, T0 + 800).base is new
    p = pitr.plan_pitr([old, new], s, T0 + 800, exclude={new.name: "damaged (chunk 3)"})
    assert p.base is old and p.passed_over == ((new.name, "damaged (chunk 3)"),)
    assert pitr.plan_pitr([old, new], s, T0 + 800, base_name=old.name).base is old
    with pytest.raises(DbrsError, match="failed verification"):
        pitr.plan_pitr([old, new], s, T0 + 800, exclude={new.name: "x", old.name: "y"})
