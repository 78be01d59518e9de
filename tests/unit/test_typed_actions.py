"""apply decides from Change.actions alone: the reasons are only words for the operator."""

import dataclasses

from installer.host import apply as apply_mod
from installer.host.items import Action, File, PathFact, Service, ServiceFact, compare


def _run(changes, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(apply_mod, "systemctl", lambda *a: calls.append(a))
    apply_mod.apply(changes, tmp_path, live=True)
    return calls


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


def test_mode_only_change_does_not_rewrite(tmp_path, monkeypatch):
    f = File("/etc/dbrs/a.conf", b"new\n", 0o600)
    before = PathFact(True, "file", b"old\n", 0o644, "root", "root")
    (c,) = compare([f], {f.key: before}, chown=False)
    assert c.actions == (Action.WRITE,)
    (c,) = compare([f], {f.key: dataclasses.replace(before, content=b"new\n")}, chown=False)
    assert c.actions == (Action.ATTRS,)
