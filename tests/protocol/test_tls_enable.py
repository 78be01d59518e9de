"""`dbrs tls enable` against the stand-in set: disabled -> allowTLS -> preferTLS -> requireTLS, one mode per run,
one member at a time with the primary last behind a stepdown, a primary throughout but for those elections, a run
cut short resumes, this host's clients dial TLS only from preferTLS, and the spec says required only at the end.

The host side is a recorder: `prepare` notes the mode the member's mongod.conf would get from the step file,
`restart` restarts the stand-in member with it (which then answers getParameter tlsMode with it).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from installer import enable_run, secrets as secretsmod, spec as specmod, tls
from installer.errors import DbrsError
from installer.replset import connection

from .standin import ELECTION_S
from .test_rotation import PrimaryWatch


class FakeHost(enable_run.Host):
    def __init__(self, rs, etc, local, spec):
        super().__init__(etc, Path(etc) / "tls-mode")
        self.rs, self.local, self.spec, self.done, self.pending = rs, set(local), spec, [], {}
        self.fail_restart_of = None

    def is_local(self, name):
        return name in self.local

    def prepare(self, name):
        self.pending[name] = tls.server_mode(self.spec.cluster.tls, self.step())
        self.done.append(("conf", name, self.pending[name]))

    def restart(self, name):
        if name == self.fail_restart_of:
            raise DbrsError(f"systemctl restart dbrs-mongod@{name}.service failed")
        assert self.rs.current_primary() != name, f"{name} restarted while PRIMARY"
        self.done.append(("restart", name))
        self.rs.restart(name, tls_mode=self.pending.pop(name))
        self.rs.electable_after.pop(name, None)


@pytest.fixture
def enabling(standin, spec_for, monkeypatch):
    rs = standin.initiated().start()
    path = Path(spec_for(rs))
    spec = specmod.load(path)
    host = FakeHost(rs, path.parent, spec.names(), spec)
    dials = []    # (step file, does this host's client dial TLS) each time the run re-arms its clients
    monkeypatch.setattr(connection, "use_tls", lambda spec, etc, step_path=None: dials.append(
        (tls.read_step(step_path), bool(tls.client_kwargs(tls.client_mode(spec, step_path))))))
    return rs, spec, secretsmod.load(path, keyfile=True), path, host, dials


def _modes(rs):
    return {name: m.tls_mode for name, m in rs.members.items()}


def test_enable_walks_the_set_one_mode_per_run_keeping_a_primary(enabling):
    rs, spec, secrets, path, host, dials = enabling
    seen = []
    with PrimaryWatch(rs) as watch:
        for want in ("allowTLS", "preferTLS", "requireTLS"):
            lines = []
            step, plan, done, notes = enable_run.run(spec, secrets, path, host, progress=lines.append, wait_s=20)
            assert step == want
            assert [s.action for s in done] == ["restart", "restart", "stepdown", "restart"]
            assert done[1].member == "mongod3" and done[2].member == done[3].member != "mongod3"
            assert set(_modes(rs).values()) == {want}
            seen.append(done)
    assert len(rs.sent("replSetStepDown")) == 3
    assert len(watch.gaps) == 3 and max(watch.gaps) < ELECTION_S + 1.0, watch.gaps   # the three stepdowns only
    assert dials == [("allowTLS", False), ("preferTLS", True), ("requireTLS", True)]
    assert "tls" not in path.read_text()
    step, plan, done, notes = enable_run.run(spec, secrets, path, host, wait_s=20)
    assert step is None and done == []
    got = specmod.load(path)
    assert got.cluster.tls == "required" and got.cluster.generation == spec.cluster.generation + 1
    assert not host.step_path.exists()
    assert any("the whole set runs requireTLS" in n for n in notes)


def test_a_run_cut_short_resumes_where_it_stopped(enabling):
    rs, spec, secrets, path, host, dials = enabling
    host.fail_restart_of = "mongod3"
    with pytest.raises(DbrsError):
        enable_run.run(spec, secrets, path, host, wait_s=20)
    assert _modes(rs) == {"mongod1": "disabled", "mongod2": "allowTLS", "mongod3": "disabled"}
    host.fail_restart_of = None
    host.done.clear()
    step, plan, done, _ = enable_run.run(spec, secrets, path, host, wait_s=20)
    assert step == "allowTLS"
    assert [(s.action, s.member) for s in done] == [("restart", "mongod3"), ("stepdown", "mongod1"),
                                                     ("restart", "mongod1")]
    assert set(_modes(rs).values()) == {"allowTLS"}


def test_the_next_mode_waits_for_another_hosts_member(enabling):
    """A member on another host still at disabled: this host does not go on to preferTLS, it names that host."""
    rs, spec, secrets, path, host, dials = enabling
    host.local = {"mongod1", "mongod2"}
    step, plan, done, _ = enable_run.run(spec, secrets, path, host, wait_s=20)
    assert step == "allowTLS" and [s.member for s in done if s.action == "restart"] == ["mongod2", "mongod1"]
    assert any("run `sudo dbrs tls enable` there" in w for w in plan.waiting)
    step, plan, done, _ = enable_run.run(spec, secrets, path, host, wait_s=20)
    assert step == "allowTLS" and done == [] and plan.waiting
    assert _modes(rs)["mongod3"] == "disabled" and _modes(rs)["mongod2"] == "allowTLS"
    assert tls.read_step(host.step_path) == "allowTLS"


def test_dry_run_changes_nothing(enabling):
    rs, spec, secrets, path, host, dials = enabling
    before = path.read_text()
    step, plan, done, _ = enable_run.run(spec, secrets, path, host, dry_run=True, wait_s=20)
    assert step == "allowTLS" and [s.member for s in plan.steps if s.action == "restart"] == ["mongod2", "mongod3",
                                                                                              "mongod1"]
    assert done == [] and host.done == [] and not host.step_path.exists() and path.read_text() == before
    assert set(_modes(rs).values()) == {"disabled"}


def test_the_standin_refuses_a_parameter_it_does_not_know(enabling):
    rs, spec, secrets, path, host, dials = enabling
    m = spec.members[1]
    with connection.connect_member(m, "admin", secrets.password("admin")) as c:
        assert c.command({"getParameter": 1, "tlsMode": 1})["tlsMode"] == "disabled"
        with pytest.raises(DbrsError):
            c.command({"getParameter": 1, "tlsNoSuchThing": 1})
