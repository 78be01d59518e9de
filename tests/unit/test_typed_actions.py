"""apply decides from Change.actions alone (the reasons are only words for the operator), and every kind
of item is read, compared and acted on through one handler in host/registry."""

import dataclasses

import pytest

from installer import cluster, install
from installer.host import apply as apply_mod
from installer.host import plan, registry, steps
from installer.host.items import (Absent, Action, Change, Dir, File, Link, PathFact, Service, ServiceFact,
                                  User)
from installer.host.registry import compare


def _run(changes, root, monkeypatch):
    calls = []
    monkeypatch.setattr(steps, "systemctl", lambda *a: calls.append(a))
    apply_mod.apply(changes, root, live=True)
    return calls


def _tree(root):
    return {str(p.relative_to(root)): (p.is_symlink() and str(p.readlink())) or (p.is_file() and p.read_bytes())
            for p in sorted(root.rglob("*"))}


def test_apply_ignores_reason_text(tmp_path, monkeypatch):
    unit = File("/etc/systemd/system/x.service", b"[Unit]\n", 0o644, notify=("x.service",))
    svc = Service("x.service")
    facts = {unit.key: PathFact(False), svc.key: ServiceFact(enabled="disabled", active="inactive")}
    changes = compare([unit, svc], facts, chown=False)
    assert [c.actions for c in changes] == [(Action.WRITE, Action.UNITS_CHANGED), (Action.ENABLE, Action.START)]
    plain = _run(changes, tmp_path / "a", monkeypatch)
    nonsense = [dataclasses.replace(c, reasons=["stop", "disable", "restart", "zzz"]) for c in changes]
    garbled = _run(nonsense, tmp_path / "b", monkeypatch)
    assert plain == garbled == [("daemon-reload",), ("enable", "x.service"), ("start", "x.service")]
    assert (tmp_path / "b/etc/systemd/system/x.service").read_bytes() == b"[Unit]\n"


def test_every_kind_acts_the_same_with_nonsense_reasons(tmp_path, monkeypatch):
    """Files, dirs, links, removals, mode-only fixes and services, once with their reasons and once with
    words that name other steps: the same systemctl calls and the same tree."""
    for side in ("a", "b"):
        (tmp_path / side / "etc/old.conf").parent.mkdir(parents=True)
        (tmp_path / side / "etc/old.conf").write_bytes(b"gone\n")
        (tmp_path / side / "etc/mode.conf").write_bytes(b"same\n")
        (tmp_path / side / "etc/mode.conf").chmod(0o644)
    desired = [Dir("/etc/d", 0o750), File("/etc/d/new.conf", b"n\n", 0o600, notify=("y.service",)),
               File("/etc/mode.conf", b"same\n", 0o600), Link("/etc/l", "/dev/null"), Absent("/etc/old.conf"),
               Service("y.service"), Service("z.service", off=True)]
    found = registry.gather(desired, str(tmp_path / "a"), live=False)
    found.update({"service:y.service": ServiceFact("enabled", "active"),
                  "service:z.service": ServiceFact("enabled", "active")})
    changes = compare(desired, found, chown=False)
    assert [c.actions for c in changes] == [(Action.MKDIR,), (Action.WRITE,), (Action.ATTRS,), (Action.LINK,),
                                            (Action.REMOVE,), (Action.RESTART,), (Action.STOP, Action.DISABLE)]
    plain = _run(changes, tmp_path / "a", monkeypatch)
    garbled = _run([dataclasses.replace(c, reasons=["content", "start", "enable", "new"]) for c in changes],
                   tmp_path / "b", monkeypatch)
    assert plain == garbled == [("try-reload-or-restart", "y.service"), ("stop", "z.service"),
                                ("disable", "z.service")]
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    assert (tmp_path / "b/etc/mode.conf").stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "b/etc/old.conf").exists()


def test_daemon_reload_follows_the_action_not_the_path(tmp_path, monkeypatch):
    """A unit file is known by its UNITS_CHANGED action; apply never looks at /etc/systemd/system/."""
    svc = Change(Service("x.service"), "changed", ["start"], actions=(Action.START,))
    unit_path_only = Change(File("/etc/systemd/system/x.service", b"u\n"), "changed", ["new"],
                            actions=(Action.WRITE,))
    elsewhere = Change(File("/opt/units/x.service", b"u\n"), "changed", ["new"],
                       actions=(Action.WRITE, Action.UNITS_CHANGED))
    assert _run([unit_path_only, svc], tmp_path / "a", monkeypatch) == [("start", "x.service")]
    assert _run([elsewhere, svc], tmp_path / "b", monkeypatch) == [("daemon-reload",), ("start", "x.service")]


def test_mode_only_change_does_not_rewrite(tmp_path, monkeypatch):
    f = File("/etc/dbrs/a.conf", b"new\n", 0o600)
    before = PathFact(True, "file", b"old\n", 0o644, "root", "root")
    (c,) = compare([f], {f.key: before}, chown=False)
    assert c.actions == (Action.WRITE,)
    (c,) = compare([f], {f.key: before._replace(content=b"new\n")}, chown=False)
    assert c.actions == (Action.ATTRS,)


@dataclasses.dataclass(frozen=True)
class _Unregistered:
    path: str
    kind = "file"
    key = "path:/etc/unregistered"

    def label(self):
        return "unregistered"


def test_an_item_without_a_handler_stops_the_plan(psa_root, monkeypatch):
    """A new kind of item that nobody registered fails when the plan is made, before the host is read."""
    opts = install.Options(root=str(psa_root), role="primary")
    target = install.build_target(opts, install.load_cluster(opts))
    assert plan.desired(target)
    real = plan.tuning.items
    monkeypatch.setattr(plan.tuning, "items", lambda *a, **kw: real(*a, **kw) + [_Unregistered("/etc/x")])
    with pytest.raises(TypeError, match="no handler for _Unregistered items.*installer/host/registry.py"):
        plan.desired(target)
    with pytest.raises(TypeError, match="no handler for _Unregistered"):
        registry.gather([_Unregistered("/etc/x")], str(psa_root), live=False)


def test_every_planned_kind_is_registered(psa_root):
    opts = install.Options(root=str(psa_root), role="primary")
    target = install.build_target(opts, install.load_cluster(opts))
    live = dataclasses.replace(target, live=True)
    kinds = {type(i) for i in plan.desired(live)}
    assert {File, Dir, Link, Service, User} <= kinds
    assert kinds <= set(registry.HANDLERS)


def test_guard_replacement_reads_the_actions_not_the_reasons():
    """A backup.key rewrite is known by its WRITE action: reasons in other words still keep the old key."""
    before = PathFact(True, "file", b"OLD\n", 0o600, "root", "root")
    new = File(str(cluster.SIBLINGS["backup_key"]), b"NEW\n", 0o600, secret=True)
    changed = Change(new, "changed", ["inhalt"], before, (Action.WRITE,))
    out = cluster.guard_replacement([changed], [], False, "S")
    assert len(out) == 2 and out[0].actions == (Action.WRITE,) and out[0].item.content == b"OLD\n"
    attrs_only = Change(new, "changed", ["content"], before, (Action.ATTRS,))
    assert cluster.guard_replacement([attrs_only], [], False, "S") == [attrs_only]
