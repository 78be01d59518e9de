"""The spec parser: good specs become typed objects, bad ones name the field and the fix."""

import pytest

from installer import spec as specmod, spec_checks, spec_fields
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
    assert spec_checks.is_calendar(text)


@pytest.mark.parametrize("text", ["", "every day", "25:00:00:00", "daily please", "rm -rf /"])
def test_calendar_rejects_nonsense(text):
    assert not spec_checks.is_calendar(text)


@pytest.mark.parametrize("text,seconds", [("5min", 300), ("1h 30min", 5400), ("10s", 10), ("2 hours", 7200)])
def test_timespans(text, seconds):
    assert spec_checks.timespan_seconds(text) == seconds


def test_single_host_default_is_psa_on_loopback():
    s = specmod.single_host()
    assert [(m.host, m.port, m.role) for m in s.members] == [
        ("127.0.0.1", 27017, "primary"), ("127.0.0.1", 27018, "secondary"), ("127.0.0.1", 27019, "arbiter")]


def test_unknown_member_names_the_known_ones():
    with pytest.raises(InputError) as e:
        specmod.loads(PSA).member("mongod9")
    assert "mongod1" in e.value.fix


def test_new_fields_default_for_a_spec_that_does_not_name_them():
    s = specmod.loads(PSA)
    assert (s.cluster.generation, s.cluster.tls, s.cluster.cluster_auth) == (1, "off", "keyfile")


def test_new_fields_parse():
    text = PSA.replace('[cluster]\n', '[cluster]\ngeneration = 3\ntls = "required"\ncluster_auth = "x509"\n')
    s = specmod.loads(text)
    assert (s.cluster.generation, s.cluster.tls, s.cluster.cluster_auth) == (3, "required", "x509")
    assert specmod.loads(PSA.replace('[cluster]\n', '[cluster]\ntls = "preferred"\n')).cluster.tls == "preferred"


@pytest.mark.parametrize("text,field,problem,fix", [
    (PSA.replace('[cluster]\n', '[cluster]\ngeneration = 0\n'), "cluster.generation", "0 is less than 1", "use 1 or more"),
    (PSA.replace('[cluster]\n', '[cluster]\ngeneration = "2"\n'), "cluster.generation", "'2' is not an integer",
     "write an integer"),
    (PSA.replace('[cluster]\n', '[cluster]\ntls = "on"\n'), "cluster.tls", "'on' is not a TLS mode",
     "use one of off, preferred, required"),
    (PSA.replace('[cluster]\n', '[cluster]\ncluster_auth = "ldap"\n'), "cluster.cluster_auth",
     "'ldap' is not a cluster auth mode", "use one of keyfile, x509"),
])
def test_new_fields_reject_bad_values_naming_field_and_fix(text, field, problem, fix):
    with pytest.raises(SpecErrors) as e:
        specmod.loads(text)
    assert [(x.field, x.problem, x.fix) for x in e.value.errors] == [(field, problem, fix)]


def test_init_output_states_tls_and_leaves_the_other_new_fields_out():
    """tls is written (init chooses "required" for a new cluster, issue 14); generation and cluster_auth stay
    at their defaults unwritten, and the text reads back as the same spec."""
    from installer import cluster

    text = cluster.spec_text(specmod.single_host()).decode()
    assert "generation" not in text and "cluster_auth" not in text and '\ntls = "off"' in text
    assert specmod.loads(text) == specmod.single_host()


def test_flag_map_comes_from_the_table():
    from installer import cluster

    assert cluster._FLAG_OF == {
        "cluster.name": "--name", "cluster.mongodb_version": "--mongodb-version", "cluster.allow": "--allow",
        "cluster.write_concern": "--write-concern", "backup.dir": "--backup-dir",
    }


def test_every_key_has_help_and_a_type():
    tables = [spec_fields.TOP, spec_fields.OFFSITE_COMMON, *spec_fields.SECTIONS.values(),
              *spec_fields.OFFSITE_BY_TYPE.values()]
    for table in tables:
        for f in table:
            assert (f.help or f.note) and f.typename and callable(f.accepts), f.name
            if f.default is not spec_fields.REQUIRED and f.name != "mongod":  # mongod's default is the stored pairs
                assert f.accepts(list(f.default) if isinstance(f.default, tuple) else f.default), f.name


def test_defaults_come_from_the_table():
    for name, cls in (("cluster", specmod.Cluster), ("backup", specmod.Backup), ("alerts", specmod.Alerts),
                      ("mongo_express", specmod.MongoExpress)):
        assert cls().__dict__ == spec_fields.defaults(spec_fields.SECTIONS[name]), name


def test_readme_spec_reference_matches_the_table():
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    tool = importlib.util.spec_from_file_location("spec_reference", root / "tools/spec_reference.py")
    mod = importlib.util.module_from_spec(tool)
    tool.loader.exec_module(mod)
    _, body, _ = mod.section((root / "README.md").read_text())
    assert body == spec_fields.reference(), "README.md's spec reference is stale: run python3 tools/spec_reference.py"
