"""dbrs-install never moves a RUNNING member's TLS mode more than one step, nor its clusterAuthMode at all:
disabled -> requireTLS (or keyFile -> x509) in one restart cuts the first restarted member off from the others."""

import pytest

from installer import install

from ..conftest import PSA, snapshot, write_cluster
from .test_install_tls import TLS_PSA, _with_ca


def _spec(tls=None, auth=None):
    extra = (f'tls = "{tls}"\n' if tls else "") + (f'cluster_auth = "{auth}"\n' if auth else "")
    return PSA.replace('write_concern = "majority"\n', 'write_concern = "majority"\n' + extra, 1)


@pytest.fixture
def running(monkeypatch):
    names = []
    monkeypatch.setattr(install, "running_members", lambda target: list(names))
    return names


def _installed(staging, run_install, spec):
    _with_ca(staging, spec)
    r = run_install("--root", str(staging), "--role", "secondary")
    assert r.exit_code == 0, r.output


def test_off_to_required_under_a_running_member_is_refused_and_changes_nothing(staging, run_install, running):
    _installed(staging, run_install, PSA)
    write_cluster(staging, TLS_PSA)
    running.append("mongod2")
    before = snapshot(staging)
    r = run_install("--root", str(staging), "--role", "secondary")
    assert r.exit_code == 2, r.output
    line = r.output.strip().splitlines()[-1]
    assert line.startswith("error: cluster.tls:") and "mongod2" in line and "disabled" in line and "requireTLS" in line
    assert "dbrs tls enable --to required" in line and "nothing was changed" in line
    assert len(r.output.strip().splitlines()) == 1
    assert snapshot(staging) == before


def test_fresh_install_goes_straight_to_required(staging, run_install, running):
    _with_ca(staging, TLS_PSA)
    r = run_install("--root", str(staging), "--role", "secondary")
    assert r.exit_code == 0, r.output
    assert "mode: requireTLS" in (staging / "etc/dbrs/mongod2/mongod.conf").read_text()


def test_stopped_member_may_jump(staging, run_install, running):
    """Only a running member is cut off; a set stopped for a maintenance window may change in one run."""
    _installed(staging, run_install, PSA)
    write_cluster(staging, TLS_PSA)
    running.append("mongod1")               # another host's member: not installed by this run
    r = run_install("--root", str(staging), "--role", "secondary")
    assert r.exit_code == 0, r.output


def test_one_step_is_allowed(staging, run_install, running):
    _installed(staging, run_install, _spec("preferred"))
    write_cluster(staging, TLS_PSA)
    _with_ca(staging, TLS_PSA)
    running.append("mongod2")
    r = run_install("--root", str(staging), "--role", "secondary")
    assert r.exit_code == 0, r.output
    assert "mode: requireTLS" in (staging / "etc/dbrs/mongod2/mongod.conf").read_text()


def test_required_to_off_under_a_running_member_is_refused(staging, run_install, running):
    _installed(staging, run_install, TLS_PSA)
    write_cluster(staging, PSA)
    running.append("mongod2")
    before = snapshot(staging)
    r = run_install("--root", str(staging), "--role", "secondary")
    assert r.exit_code == 2, r.output
    assert "cluster.tls:" in r.output and "--to off" in r.output
    assert snapshot(staging) == before


def test_keyfile_to_x509_under_a_running_member_is_refused(staging, run_install, running):
    _installed(staging, run_install, TLS_PSA)
    write_cluster(staging, _spec("required", "x509"))
    running.append("mongod2")
    before = snapshot(staging)
    r = run_install("--root", str(staging), "--role", "secondary")
    assert r.exit_code == 2, r.output
    line = r.output.strip().splitlines()[-1]
    assert line.startswith("error: cluster.cluster_auth:") and "mongod2" in line and "keyFile" in line and "x509" in line
    assert "nothing was changed" in line
    assert snapshot(staging) == before


def test_keyfile_to_x509_with_nothing_running_is_applied(staging, run_install, running):
    _installed(staging, run_install, TLS_PSA)
    write_cluster(staging, _spec("required", "x509"))
    r = run_install("--root", str(staging), "--role", "secondary")
    assert r.exit_code == 0, r.output
    assert "clusterAuthMode: x509" in (staging / "etc/dbrs/mongod2/mongod.conf").read_text()


def test_the_guard_passes_over_items_without_a_path():
    """Found by the black-box attack on a real host: every live dbrs-install died with AttributeError ('User'
    object has no attribute 'path'); the --root runs above plan no user, so they never met one."""
    from installer import tls
    from installer.host.items import Change, Packages, User

    changes = [Change(User("mongodb", "/var/lib/mongodb"), "changed", ["new"]),
               Change(Packages(("mongodb-org",)), "unchanged", [])]
    assert tls.guard_transitions(changes, ["mongod1"], {"/etc/dbrs/mongod1/mongod.conf": "mongod1"}) is None
