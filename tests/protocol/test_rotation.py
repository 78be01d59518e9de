"""`dbrs tls rotate` against the stand-in set: one member at a time, the primary last after a stepdown, the set
never without a primary except for that one election, and a run cut short resumes.

The host side (writing member.pem, restarting dbrs-mongod@) is a recorder that restarts the stand-in member;
the certificates are real ones from the cluster CA in the test's folder.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from installer import pki, rotate_run, secrets as secretsmod, spec as specmod, tls
from installer.errors import DbrsError

from .standin import ELECTION_S

DAY = 86400


class FakeHost(rotate_run.Host):
    def __init__(self, rs, etc, local):
        super().__init__(etc)
        self.rs, self.local, self.done = rs, set(local), []
        self.started = {name: time.time() for name in rs.members}
        self.fail_restart_of = None

    def is_local(self, name):
        return name in self.local

    def write(self, path, data, mode, owner="root"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
        Path(path).chmod(mode)
        self.done.append(("write", Path(path).name if Path(path).name != "member.pem" else Path(path).parent.name))

    def started_at(self, name):
        return self.started[name]

    def restart(self, name):
        if name == self.fail_restart_of:
            raise DbrsError(f"systemctl restart dbrs-mongod@{name}.service failed")
        assert self.rs.current_primary() != name, f"{name} restarted while PRIMARY"
        self.done.append(("restart", name))
        self.rs.restart(name)
        self.rs.electable_after.pop(name, None)    # a restarted mongod forgets its stepdown period (kept in memory)
        self.started[name] = time.time() + 0.001


class PrimaryWatch:
    """Samples the stand-in's primary every 10 ms; `gaps` are the stretches without one, in seconds."""

    def __init__(self, rs):
        self.rs, self.gaps, self._stop = rs, [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        since = None
        while not self._stop.is_set():
            if self.rs.current_primary() is None:
                since = since or time.monotonic()
            elif since is not None:
                self.gaps.append(time.monotonic() - since)
                since = None
            time.sleep(0.01)
        if since is not None:
            self.gaps.append(float("inf"))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join()


@pytest.fixture
def rotating(standin, spec_for):
    rs = standin.initiated().start()
    path = Path(spec_for(rs))
    etc = path.parent
    ca = pki.new_ca("dbrs", time.time() - 10 * DAY)
    (etc / "ca.pem").write_bytes(ca.cert_pem)
    (etc / "ca.key").write_bytes(ca.key_pem)
    spec = specmod.load(path)
    for m in spec.members:                       # certificates that expire in 20 days
        issued = pki.issue_member(ca, "dbrs", m.host, tls.member_names(m.host, ("127.0.0.1",)), time.time() - 700 * DAY,
                                  days=720)
        (etc / m.name).mkdir()
        (etc / m.name / "member.pem").write_bytes(issued.key_file())
    host = FakeHost(rs, etc, spec.names())
    for name in spec.names():
        host.started[name] = time.time() + 1     # the files on disk are loaded
    return rs, spec, secretsmod.load(path, keyfile=True), path, host, ca


def test_rotation_keeps_a_primary_and_restarts_the_primary_last(rotating):
    rs, spec, secrets, path, host, ca = rotating
    lines = []
    with PrimaryWatch(rs) as watch:
        plan, done, _ = rotate_run.run(spec, secrets, path, host, progress=lines.append, wait_s=20)
    assert [(s.action, s.member) for s in done] == [("renew", "mongod2"), ("renew", "mongod3"),
                                                     ("stepdown", "mongod1"), ("renew", "mongod1")]
    assert host.done == [("write", "mongod2"), ("restart", "mongod2"), ("write", "mongod3"), ("restart", "mongod3"),
                         ("write", "mongod1"), ("restart", "mongod1")]
    assert len(rs.sent("replSetStepDown")) == 1
    assert len(watch.gaps) == 1 and watch.gaps[0] < ELECTION_S + 1.0, watch.gaps   # the stepdown's election only
    assert any("mongod2 is healthy" in x for x in lines) and any("stepped down" in x for x in lines)
    for m in spec.members:
        pem = (path.parent / m.name / "member.pem").read_bytes()
        assert pki.inspect(pem).days_left(time.time()) > 700 and pki.signed_by(pem, ca.cert_pem)

    again, done_again, _ = rotate_run.run(spec, secrets, path, host, wait_s=20)
    assert again.steps == [] and done_again == []


def test_a_run_cut_short_resumes_with_the_member_that_did_not_restart(rotating):
    rs, spec, secrets, path, host, ca = rotating
    host.fail_restart_of = "mongod3"
    with pytest.raises(DbrsError, match="mongod3"):
        rotate_run.run(spec, secrets, path, host, wait_s=20)
    assert host.done == [("write", "mongod2"), ("restart", "mongod2"), ("write", "mongod3")]
    host.fail_restart_of, host.done = None, []
    plan, done, _ = rotate_run.run(spec, secrets, path, host, wait_s=20)
    assert [(s.action, s.member) for s in done] == [("restart", "mongod3"), ("stepdown", "mongod1"),
                                                     ("renew", "mongod1")], "mongod2 is skipped, mongod3 not re-issued"


def test_a_member_down_stops_the_rotation_before_anything_changes(rotating):
    rs, spec, secrets, path, host, ca = rotating
    rs.member("mongod2").stop()
    with pytest.raises(DbrsError, match="mongod2") as e:
        rotate_run.run(spec, secrets, path, host, wait_s=20)
    assert "one at a time" in str(e.value) and host.done == []


def test_dry_run_prints_the_plan_and_changes_nothing(rotating):
    rs, spec, secrets, path, host, ca = rotating
    before = {m: (path.parent / m / "member.pem").read_bytes() for m in spec.names()}
    plan, done, _ = rotate_run.run(spec, secrets, path, host, dry_run=True)
    assert [s.member for s in plan.steps] == ["mongod2", "mongod3", "mongod1", "mongod1"] and done == []
    assert host.done == [] and not rs.sent("replSetStepDown")
    assert before == {m: (path.parent / m / "member.pem").read_bytes() for m in spec.names()}


def test_ca_roll_on_one_host_trusts_both_then_renews_from_the_new_ca_and_finish_drops_the_old(rotating):
    rs, spec, secrets, path, host, old = rotating
    plan, done, notes = rotate_run.run(spec, secrets, path, host, ca=True, wait_s=20, renew_days=1)
    ca_file = (path.parent / "ca.pem").read_bytes()
    new_cert = ca_file.split(b"-----END CERTIFICATE-----")[0] + b"-----END CERTIFICATE-----\n"
    assert ca_file.endswith(old.cert_pem) and new_cert != old.cert_pem
    assert (path.parent / "ca.key").read_bytes() != old.key_pem
    assert list(path.parent.glob("ca.key.replaced-*")) and list(path.parent.glob("ca.key.replaced-*"))[0].read_bytes() \
        == old.key_pem
    for m in spec.names():
        assert pki.signed_by((path.parent / m / "member.pem").read_bytes(), new_cert), m
    assert [s.action for s in done] == ["renew", "renew", "stepdown", "renew"]

    plan, done, notes = rotate_run.run(spec, secrets, path, host, finish=True, wait_s=20, renew_days=1)
    assert (path.parent / "ca.pem").read_bytes() == new_cert
    assert [s.action for s in done] == ["restart", "restart", "stepdown", "restart"], "members load the new CA file"


def test_ca_roll_reseals_this_hosts_spec_and_secrets_with_the_new_ca(rotating):
    """The roll's re-seal is generation.reseal: the bundle gets this host's current spec (not the text it held)
    and the CA file of the roll."""
    rs, spec, secrets, path, host, old = rotating
    sec = secretsmod.load(str(path), keyfile=True)
    stale_text = path.read_text() + "# a line this host's spec no longer has\n"
    (path.parent / "bundle.dbrs").write_bytes(secretsmod.seal_bundle(stale_text, sec, "pass phrase here"))
    rotate_run.run(spec, secrets, path, host, ca=True, passphrase="pass phrase here", wait_s=20, renew_days=1)
    opened = secretsmod.open_bundle((path.parent / "bundle.dbrs").read_bytes(), "pass phrase here")
    assert opened.spec_text == path.read_text()
    assert opened.files["ca.pem"] == (path.parent / "ca.pem").read_bytes() and opened.files["ca.pem"].endswith(old.cert_pem)
    assert opened.files["ca.key"] == (path.parent / "ca.key").read_bytes() != old.key_pem


def test_ca_roll_with_a_member_down_makes_no_new_ca(rotating):
    """Found by the black-box attack: with the set down, --ca replaced ca.key, ca.pem and the bundle, then said
    only "no member is PRIMARY"."""
    rs, spec, secrets, path, host, old = rotating
    rs.member("mongod2").stop()
    before = {p.name: p.read_bytes() for p in path.parent.iterdir() if p.is_file()}
    with pytest.raises(DbrsError) as e:
        rotate_run.run(spec, secrets, path, host, ca=True, wait_s=5, renew_days=1)
    assert "no new CA was made" in str(e.value)
    assert {p.name: p.read_bytes() for p in path.parent.iterdir() if p.is_file()} == before


def test_ca_roll_across_hosts_holds_new_certificates_until_the_others_trust_the_new_ca(rotating, monkeypatch):
    """This host holds mongod1 (the primary); the other hosts' answers come from rotate's two probes."""
    rs, spec, secrets, path, host, old = rotating
    host.local = {"mongod1"}
    trust = {"mongod2": False, "mongod3": False}
    monkeypatch.setattr(rotate_run, "remote_trusts", lambda m, files, cluster, now: trust[m.name])
    monkeypatch.setattr(rotate_run, "remote_presents", lambda m, ca_pem: False)
    host.started["mongod1"] = time.time() - 60          # it runs since before the roll

    plan, done, _ = rotate_run.run(spec, secrets, path, host, ca=True, wait_s=20, renew_days=1)
    assert [(s.action, s.member) for s in done] == [("stepdown", "mongod1"), ("restart", "mongod1")]
    assert pki.signed_by((path.parent / "mongod1" / "member.pem").read_bytes(), old.cert_pem), "kept its old certificate"
    assert any("mongod2, mongod3 trust the new CA" in w for w in plan.waiting)

    with pytest.raises(DbrsError, match="old CA still signs the certificate of mongod1, mongod2, mongod3"):
        rotate_run.run(spec, secrets, path, host, finish=True, wait_s=20, renew_days=1)

    trust.update(mongod2=True, mongod3=True)
    host.done = []
    plan, done, _ = rotate_run.run(spec, secrets, path, host, wait_s=20, renew_days=1)
    assert [(s.action, s.member) for s in done] == [("renew", "mongod1")], "mongod1 is a secondary now: no stepdown"
    new_ca = pki.split_pem((path.parent / "ca.pem").read_bytes())[0]
    assert pki.signed_by((path.parent / "mongod1" / "member.pem").read_bytes(), new_ca)
