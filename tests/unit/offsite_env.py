"""An off-site test bed: the backup bed (stand-in mongodump, fake member) plus [[offsite]] targets and a spool."""

import sys
from pathlib import Path

from installer import secrets, spec as specmod
from installer.backup import offsite, slices as oplog

from .backup_env import STANDINS, T0, Bed, entry

sys.path.insert(0, str(STANDINS))
from s3_standin import client_for, s3_standin  # noqa: E402,F401


def path_target(dir_, name="usb", **extra):
    lines = [f'name = "{name}"', 'type = "path"', f'path = "{dir_}"'] + [f"{k} = {v!r}".replace("'", '"')
                                                                         for k, v in extra.items()]
    return "\n[[offsite]]\n" + "\n".join(lines) + "\n"


def s3_target(url, name="s3", bucket="dbrs-offsite", **extra):
    lines = [f'name = "{name}"', 'type = "s3"', f'bucket = "{bucket}"', 'prefix = "prod"',
             f'endpoint = "{url}"', 'region = "us-east-1"'] + [f'{k} = "{v}"' for k, v in extra.items()]
    return "\n[[offsite]]\n" + "\n".join(lines) + "\n"


class OffsiteBed(Bed):
    """Bed whose spec has off-site targets; secrets.toml gains their credentials."""

    def __init__(self, tmp, monkeypatch, targets_toml, creds=None, dump_bytes=300_000, encrypt=True):
        super().__init__(tmp, monkeypatch, encrypt=encrypt)
        monkeypatch.setenv("DBRS_STANDIN_DUMP_BYTES", str(dump_bytes))
        cfg = Path(self.config)
        cfg.write_text(cfg.read_text() + targets_toml)
        if creds:
            sec = cfg.parent / "secrets.toml"
            text = sec.read_text()
            for name, table in creds.items():
                text += f"\n[offsite.{name}]\n" + "".join(f'{k} = "{v}"\n' for k, v in table.items())
            sec.write_text(text)
        self.spec = specmod.load(self.config)
        self.spool = offsite.spool_of(self.spec)

    @property
    def sec(self):
        return secrets.load(self.config)

    def backup_and_queue(self, **kw):
        r = self.backup(**kw)
        assert r.status == "done", r.reason
        # the backup run itself handed the file to the queue (seam 1), nobody else
        assert [q.entry["data"] for q in offsite.read_queue(self.spool) if q.name == r.name] == \
            [str(self.bdir / "full" / r.name)]
        return r.name

    def slice_and_queue(self, secs=(60, 70, 80, 90), **kw):
        """Add oplog entries at T0+secs to the fake member, then take and queue a slice."""
        self.member.oplog += [entry(T0 + x, 1) for x in secs]
        self.member.oplog.sort(key=lambda d: d["ts"])
        s = oplog.run(self.spec, self.config, local=self.local("mongod2"), **kw)
        assert s.status == "done", s.reason
        assert [q.entry["data"] for q in offsite.read_queue(self.spool) if q.name == s.name] == \
            [str(self.bdir / "oplog" / s.name)]
        return s.name

    def push(self, **kw):
        return offsite.push(self.spec, self.sec, spool=self.spool, **kw)
