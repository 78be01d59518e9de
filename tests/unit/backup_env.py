"""A backup test bed: spec + secrets in a temp folder, the mongodump/mongorestore stand-ins first on PATH,
a stand-in member client, and the state file kept inside the test's folder."""

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

from installer import spec as specmod
from installer.backup import history

from ..conftest import SECRETS, write_cluster

STANDINS = Path(__file__).resolve().parents[1] / "standins"
sys.path.insert(0, str(STANDINS))
from fake_member import FakeMember, entry  # noqa: E402

BACKUP_PW = "backup-pw-000000000000000000000"
RESTORE_PW = "restore-pw-00000000000000000000"
assert BACKUP_PW.encode() in SECRETS and RESTORE_PW.encode() in SECRETS
T0 = 1_764_300_000


def spec_text(tmp, encrypt=True, name="dbrs", backup_dir=None):
    return f"""\
[cluster]
name = "{name}"
mongodb_version = "8.0"

[[members]]
name = "mongod1"
host = "127.0.0.1"
port = 27017
role = "primary"

[[members]]
name = "mongod2"
host = "127.0.0.1"
port = 27018
role = "secondary"

[[members]]
name = "mongod3"
host = "127.0.0.1"
port = 27019
role = "arbiter"

[backup]
dir = "{backup_dir or tmp / 'backups'}"
encrypt = {"true" if encrypt else "false"}
retention_days = 7
keep_min = 2

[alerts]
textfile_dir = "{tmp / 'textfile'}"
"""


class Bed:
    def __init__(self, tmp, monkeypatch, encrypt=True, backup_dir=None):
        self.tmp = tmp
        self.mp = monkeypatch
        (tmp / "etc").mkdir(exist_ok=True)
        self.config = str(write_cluster(tmp / "etc", spec_text(tmp, encrypt, backup_dir=backup_dir)))
        self.spec = specmod.load(self.config)
        self.bdir = Path(self.spec.backup.dir)
        self.bin = tmp / "bin"
        self.bin.mkdir(exist_ok=True)
        for tool in ("mongodump", "mongorestore"):
            if not (self.bin / tool).exists():
                (self.bin / tool).symlink_to(STANDINS / tool)
        self.record = tmp / "standin-record.jsonl"
        monkeypatch.setenv("PATH", f"{self.bin}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("DBRS_STANDIN_RECORD", str(self.record))
        monkeypatch.setenv("DBRS_STANDIN_DUMP_BYTES", str(300_000))
        # the state file follows --config (history.state_path); reads without a path see the same file
        self.state = history.state_path(self.config)
        monkeypatch.setattr(history, "STATE_FILE", self.state)
        self.oplog = [entry(T0 + i, 1) for i in range(0, 51, 10)]
        self.member = FakeMember(self.spec, {"mongod1": "PRIMARY", "mongod2": "SECONDARY", "mongod3": "ARBITER"},
                                 self.oplog)
        from installer.backup import source

        monkeypatch.setattr(source, "connect", self.member.connect)

    def expect_password(self, pw):
        self.mp.setenv("DBRS_STANDIN_EXPECT_PW_DIGEST", hashlib.sha256(pw.encode()).hexdigest())

    def records(self, tool=None):
        if not self.record.exists():
            return []
        out = [json.loads(line) for line in self.record.read_text().splitlines()]
        return [r for r in out if tool is None or r["tool"] == tool]

    def local(self, *names):
        return [self.spec.member(n) for n in names]

    def backup(self, local=("mongod1", "mongod2"), **kw):
        from installer.backup import full as backup

        return backup.run(self.spec, self.config, local=self.local(*local), **kw)

    def dump_bytes(self):
        """What the mongodump stand-in emits with the current env: the bytes a restore must get back."""
        import random

        n = int(os.environ["DBRS_STANDIN_DUMP_BYTES"])
        block = random.Random("dbrs").randbytes(1 << 20)
        magic = b"STANDIN-MONGODUMP-ARCHIVE v1\n"
        data = magic + (block * (n // len(block) + 1))
        return data[:n]

    def files(self, kind="full"):
        d = self.bdir / kind
        return sorted(os.listdir(d)) if d.exists() else []


@pytest.fixture
def bed(tmp_path, monkeypatch):
    return Bed(tmp_path, monkeypatch)
