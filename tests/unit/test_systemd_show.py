"""`systemctl show` is read and parsed in one leaf (installer/systemd.py) for host/, backup and alert alike."""

import re
from pathlib import Path

from installer import systemd

INSTALLER = Path(systemd.__file__).parent


def test_blocks_pair_properties_per_unit_in_systemds_order():
    text = "NextElapseUSecRealtime=Sun 2026-11-29 02:07:31 UTC\nId=dbrs-backup.timer\n\nId=dbrs-oplog.timer\n" \
           "NextElapseUSecRealtime=\n"
    assert systemd.parse_show(text) == [
        {"NextElapseUSecRealtime": "Sun 2026-11-29 02:07:31 UTC", "Id": "dbrs-backup.timer"},
        {"Id": "dbrs-oplog.timer", "NextElapseUSecRealtime": ""}]


def test_values_keep_their_equals_signs_and_lines_without_one_are_ignored():
    assert systemd.parse_show("ExecStart={ path=/bin/x ; argv[]=/bin/x a=b }\nnoise\n") == \
        [{"ExecStart": "{ path=/bin/x ; argv[]=/bin/x a=b }"}]
    assert systemd.parse_show("") == []


def test_show_is_none_when_systemctl_cannot_answer(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert systemd.show(["dbrs-backup.timer"], ["Id"]) is None


def test_no_other_module_runs_systemctl_show():
    """One reader: a second hand-rolled `systemctl show` parser is how the three drifted apart."""
    pattern = re.compile(r"""["']systemctl["']\s*,\s*["']show["']""")
    offenders = [str(p.relative_to(INSTALLER)) for p in INSTALLER.rglob("*.py")
                 if p.name != "systemd.py" and pattern.search(p.read_text())]
    assert offenders == []
