"""The pure comparison of desired items with host facts."""

from installer.host.items import Change, Dir, File, Link, Packages, PathFact, Service, ServiceFact, summary
from installer.host.registry import compare


def f(content=b"x", mode=0o644, owner="root"):
    return PathFact(True, "file", content, mode, owner, "root")


def test_file_states():
    item = File("/etc/a", b"x")
    assert compare([item], {})[0].reasons == ["new"]
    assert compare([item], {item.key: f()})[0].status == "unchanged"
    assert compare([item], {item.key: f(b"y")})[0].reasons == ["content"]
    assert compare([item], {item.key: f(mode=0o600)})[0].reasons == ["mode 0600->0644"]
    assert compare([item], {item.key: f(owner="bob")})[0].reasons == ["owner bob:root->root:root"]
    assert compare([item], {item.key: f(owner="bob")}, chown=False)[0].status == "unchanged"
    assert compare([item], {item.key: PathFact(True, "dir", mode=0o755)})[0].reasons == ["not a regular file"]


def test_link_and_dir():
    link = Link("/etc/systemd/system/mongod.service", "/dev/null")
    assert compare([link], {link.key: PathFact(True, "link", target="/dev/null")})[0].status == "unchanged"
    assert compare([link], {link.key: PathFact(True, "file")})[0].reasons == ["target"]
    d = Dir("/var/lib/dbrs/m1", 0o700, "mongodb", "mongodb")
    assert compare([d], {d.key: PathFact(True, "dir", mode=0o700, owner="mongodb", group="mongodb")})[0].status == "unchanged"


def test_service_started_enabled_restarted():
    svc = Service("dbrs-mongod@m1.service")
    running = ServiceFact("enabled", "active")
    assert compare([svc], {svc.key: running})[0].status == "unchanged"
    assert compare([svc], {svc.key: ServiceFact("disabled", "inactive")})[0].reasons == ["enable", "start"]
    conf = File("/etc/dbrs/m1/mongod.conf", b"new", notify=("dbrs-mongod@m1.service",))
    changes = compare([conf, svc], {conf.key: f(b"old"), svc.key: running})
    assert changes[1].reasons == ["restart"]
    template = File("/etc/systemd/system/dbrs-mongod@.service", b"new", notify=("dbrs-mongod@.service",))
    assert compare([template, svc], {template.key: f(b"old"), svc.key: running})[1].reasons == ["restart"]


def test_unit_skipped_by_its_condition_is_satisfied():
    """dbrs-tuning skips itself in containers; that must not count as a change every run."""
    svc = Service("dbrs-tuning.service")
    assert compare([svc], {svc.key: ServiceFact("enabled", "inactive", "no")})[0].status == "unchanged"


def test_packages_missing():
    item = Packages(("a", "b"))
    assert compare([item], {item.key: {"a"}})[0].reasons == ["missing b"]
    assert compare([item], {item.key: {"a", "b"}})[0].status == "unchanged"


def test_summary_counts():
    changes = [Change(File("/a", b""), "changed"), Change(File("/b", b""), "unchanged")]
    assert summary(changes) == {"changed": 1, "unchanged": 1}


def test_writer_sweeps_temporaries_a_killed_run_left(tmp_path):
    import os
    import time

    from installer.fsutil import write_file

    old = tmp_path / "etc/dbrs/.firewall.nft.deadbeef.dbrs-new"
    fresh = tmp_path / "etc/dbrs/.firewall.nft.cafebabe.dbrs-new"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"half")
    fresh.write_bytes(b"another run writing now")
    hour_ago = time.time() - 7200
    os.utime(old, (hour_ago, hour_ago))
    write_file(str(tmp_path), "/etc/dbrs/firewall.nft", b"table inet dbrs {}\n", 0o644, chown=False)
    assert not old.exists() and fresh.exists()
    assert (tmp_path / "etc/dbrs/firewall.nft").read_bytes() == b"table inet dbrs {}\n"


def test_second_install_run_is_refused_while_one_holds_the_lock(tmp_path):
    import pytest

    from installer import locks
    from installer.errors import DbrsError

    path = tmp_path / "dbrs-install.lock"
    with locks.held(path, "dbrs-install"):
        with pytest.raises(DbrsError, match=r"another dbrs-install holds .* \(pid \d+\)"):
            with locks.held(path, "dbrs-install"):
                pass
    with locks.held(path, "dbrs-install"):
        pass
