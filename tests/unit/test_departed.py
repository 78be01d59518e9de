"""Members that left this host's spec: the pure decision, and the doing in a staging root."""

from installer import departed
from installer.departed import Found, decide

from ..conftest import PSA, snapshot


def test_a_member_still_in_the_spec_is_never_touched():
    assert decide({"mongod1"}, [Found("mongod1", conf=True, enabled=True, active=True, data=True)]) == []


def test_a_departed_member_is_stopped_disabled_and_its_conf_removed_but_its_data_kept():
    [p] = decide({"mongod1"}, [Found("mongod1", conf=True, enabled=True, active=True, data=True),
                               Found("mongod3", conf=True, enabled=True, active=True, data=True)])
    assert (p.name, p.stop, p.disable, p.remove_conf, p.purge) == ("mongod3", True, True, True, False)
    step, status, detail = p.line()
    assert (step, status) == ("departed mongod3", "changed")
    assert "stop, disable, remove mongod.conf" in detail
    assert "data kept in /var/lib/dbrs/mongod3 (delete it with --purge-data)" in detail


def test_only_what_is_left_is_done_so_an_interrupted_prune_converges():
    [p] = decide(set(), [Found("mongod3", conf=True, enabled=False, active=False, data=True)])
    assert p.actions() == ["remove mongod.conf"]
    assert decide(set(), [Found("mongod3", data=True)]) == [], "only data left: nothing to do, nothing to say"


def test_purge_deletes_data_even_when_nothing_else_is_left():
    [p] = decide(set(), [Found("mongod3", data=True)], purge=True)
    assert p.actions() == ["delete /var/lib/dbrs/mongod3"]
    assert p.line(dry_run=True)[1:] == ("would change", "not in this host's spec: delete /var/lib/dbrs/mongod3; "
                                        "would delete /var/lib/dbrs/mongod3")


def test_instance_names_from_unit_names():
    assert departed.parse_instances(["dbrs-mongod@mongod2.service", "dbrs-backup.timer", "dbrs-mongod@.service",
                                     "dbrs-mongod@../x.service"]) == {"mongod2"}


def _spec_without_arbiter(root):
    """The arbiter mongod3 is replaced by mongod4 on another host: mongod3 left the spec."""
    (root / "etc/dbrs/cluster.toml").write_text(PSA.replace('name = "mongod3"\nhost = "10.0.0.13"',
                                                            'name = "mongod4"\nhost = "10.0.0.14"'))


def test_install_prunes_a_member_the_spec_dropped_and_converges(psa_root, run_install):
    assert run_install("--root", str(psa_root), "--role", "all").exit_code == 0
    (psa_root / "var/lib/dbrs/mongod3").mkdir(parents=True, exist_ok=True)
    (psa_root / "var/lib/dbrs/mongod3/WiredTiger").write_text("data")
    assert (psa_root / "etc/dbrs/mongod3/mongod.conf").exists()
    _spec_without_arbiter(psa_root)

    dry = run_install("--root", str(psa_root), "--role", "all", "--dry-run")
    assert "would change departed mongod3: not in this host's spec: remove mongod.conf; data kept in " \
           "/var/lib/dbrs/mongod3" in dry.output
    assert (psa_root / "etc/dbrs/mongod3/mongod.conf").exists(), "a dry run changes nothing"

    result = run_install("--root", str(psa_root), "--role", "all")
    assert result.exit_code == 0, result.output
    assert "changed   departed mongod3: not in this host's spec: remove mongod.conf; data kept in " \
           "/var/lib/dbrs/mongod3 (delete it with --purge-data)" in result.output
    assert not (psa_root / "etc/dbrs/mongod3").exists()
    assert (psa_root / "var/lib/dbrs/mongod3/WiredTiger").read_text() == "data"
    assert (psa_root / "etc/dbrs/mongod1/mongod.conf").exists() and (psa_root / "etc/dbrs/mongod2/mongod.conf").exists()

    before = snapshot(psa_root)
    again = run_install("--root", str(psa_root), "--role", "all")
    assert "departed" not in again.output
    assert again.output.rstrip().split("\n")[-1].startswith("0 changed")
    assert snapshot(psa_root) == before

    purged = run_install("--root", str(psa_root), "--role", "all", "--purge-data")
    assert "changed   departed mongod3: not in this host's spec: delete /var/lib/dbrs/mongod3; data deleted" in purged.output
    assert not (psa_root / "var/lib/dbrs/mongod3").exists()
    assert (psa_root / "var/lib/dbrs/mongod1").is_dir()


def test_a_staging_root_holding_several_hosts_keeps_them_all(psa_root, run_install):
    """--root has no notion of this host: installing the secondary next to the primary removes nothing."""
    assert run_install("--root", str(psa_root), "--role", "primary").exit_code == 0
    result = run_install("--root", str(psa_root), "--role", "secondary")
    assert "departed" not in result.output
    assert (psa_root / "etc/dbrs/mongod1/mongod.conf").exists()


def test_a_member_the_running_set_still_lists_is_left_running():
    [p] = decide(set(), [Found("mongod3", conf=True, enabled=True, active=True, data=True, in_set=True)], purge=True)
    assert (p.stop, p.disable, p.remove_conf, p.purge) == (False, False, False, False)
    step, status, detail = p.line()
    assert status == "waiting" and "the replica set still lists it" in detail and "dbrs reconfigure" in detail
