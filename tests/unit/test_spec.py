"""The spec parser: good specs become typed objects, bad ones name the field and the fix."""

import pytest

from installer import spec as specmod
from installer.errors import InputError, SpecErrors

from ..conftest import PSA


def test_psa_spec_parses_to_typed_members():
    s = specmod.loads(PSA)
    assert s.cluster.name == "dbrs"
    assert [m.role for m in s.members] == ["primary", "secondary", "arbiter"]
    assert s.primary.name == "mongod1" and s.primary.priority == 2
    assert s.member("mongod3").arbiter and s.member("mongod3").priority == 0
    assert s.cluster.allow == ("10.0.0.0/24",)
    assert s.cluster.write_timeout_ms == 10000
    assert s.backup.retention_days == 7 and s.backup.keep_min == 3


def test_defaults_fill_unset_tables_and_port():
    s = specmod.loads(PSA.replace("port = 27017\n", ""))
    assert {m.port for m in s.members} == {27017}
    assert s.mongo_express.enabled is False and s.mongo_express.port == 8081


def test_integer_write_concern_is_accepted_as_text():
    s = specmod.loads(PSA.replace('write_concern = "majority"', "write_concern = 1"))
    assert s.cluster.write_concern == "1"


def test_every_problem_is_reported_at_once():
    bad = PSA.replace('name = "dbrs"', 'name = "bad name!"').replace("port = 27017", "port = 0", 1)
    with pytest.raises(SpecErrors) as e:
        specmod.loads(bad)
    fields = [err.field for err in e.value.errors]
    assert "cluster.name" in fields and "members[0].port" in fields


@pytest.mark.parametrize("text", ["daily", "hourly", "*-*-* 02:30:00", "Mon *-*-* 03:00", "Mon..Fri 22:00",
                                  "*-*-* *:00/15:00", "2026-*-01 04:00 UTC", "Sat,Sun 05:00"])
def test_calendar_expressions_systemd_accepts(text):
    assert specmod.is_calendar(text)


@pytest.mark.parametrize("text", ["", "every day", "25:00:00:00", "daily please", "rm -rf /"])
def test_calendar_rejects_nonsense(text):
    assert not specmod.is_calendar(text)


@pytest.mark.parametrize("text,seconds", [("5min", 300), ("1h 30min", 5400), ("10s", 10), ("2 hours", 7200)])
def test_timespans(text, seconds):
    assert specmod.timespan_seconds(text) == seconds


def test_single_host_default_is_psa_on_loopback():
    s = specmod.single_host()
    assert [(m.host, m.port, m.role) for m in s.members] == [
        ("127.0.0.1", 27017, "primary"), ("127.0.0.1", 27018, "secondary"), ("127.0.0.1", 27019, "arbiter")]


def test_unknown_member_names_the_known_ones():
    with pytest.raises(InputError) as e:
        specmod.loads(PSA).member("mongod9")
    assert "mongod1" in e.value.fix
