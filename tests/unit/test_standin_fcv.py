"""The stand-in mongod answers the FCV as MongoDB does (issue 13's upgrade flow on real hosts relies on it):
a new set starts at its binary's FCV, the FCV survives a restart on a newer binary, an upgrade needs
`confirm: true` (7.0+) and never goes above the binary."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

STANDIN = Path(__file__).parents[1] / "standins" / "mongod"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mongod:
    def __init__(self, tmp_path):
        self.port = free_port()
        self.dir = tmp_path
        (tmp_path / "data").mkdir()
        (tmp_path / "mongod.conf").write_text(f"net:\n  port: {self.port}\n  bindIp: 127.0.0.1\nstorage:\n"
                                              f"  dbPath: {tmp_path / 'data'}\nreplication:\n  replSetName: rs\n")
        self.proc = None

    def start(self, version):
        (self.dir / "version").write_text(version + "\n")
        env = dict(os.environ, DBRS_STANDIN_VERSION_FILE=str(self.dir / "version"))
        self.proc = subprocess.Popen([sys.executable, str(STANDIN), "--config", str(self.dir / "mongod.conf")],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        from pymongo import MongoClient

        self.client = MongoClient("127.0.0.1", self.port, directConnection=True, serverSelectionTimeoutMS=5000)
        self.client.admin.command("ping")
        return self

    def stop(self):
        self.client.close()
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def mongod(tmp_path):
    m = Mongod(tmp_path)
    yield m
    if m.proc and m.proc.poll() is None:
        m.stop()


def fcv(m):
    return m.client.admin.command({"getParameter": 1, "featureCompatibilityVersion": 1})["featureCompatibilityVersion"]


def wait_primary(m):
    for _ in range(100):
        if m.client.admin.command("hello").get("isWritablePrimary"):
            return
        time.sleep(0.1)
    raise AssertionError("no primary")


def test_fcv_follows_mongodb_rules_across_a_binary_upgrade(mongod):
    from pymongo.errors import OperationFailure

    m = mongod.start("7.0.14")
    m.client.admin.command({"replSetInitiate": {"_id": "rs", "members": [{"_id": 0, "host": f"127.0.0.1:{m.port}"}]}})
    wait_primary(m)
    assert fcv(m) == {"version": "7.0"}
    with pytest.raises(OperationFailure) as e:
        m.client.admin.command({"setFeatureCompatibilityVersion": "8.0", "confirm": True})
    assert "this binary is 7.0.14" in str(e.value)
    with pytest.raises(OperationFailure) as e:
        m.client.admin.command({"getParameter": 1, "noSuchParameter": 1})
    assert e.value.code == 72
    m.stop()
    m = mongod.start("8.0.4")                       # the new binary keeps the set's FCV
    wait_primary(m)
    assert fcv(m) == {"version": "7.0"}
    assert m.client.admin.command("buildInfo")["version"] == "8.0.4"
    with pytest.raises(OperationFailure) as e:
        m.client.admin.command({"setFeatureCompatibilityVersion": "8.0"})
    assert e.value.code == 7369100 and "confirm: true" in str(e.value)
    assert fcv(m) == {"version": "7.0"}
    m.client.admin.command({"setFeatureCompatibilityVersion": "8.0", "confirm": True})
    assert fcv(m) == {"version": "8.0"}
    m.stop()
    assert fcv(mongod.start("8.0.4")) == {"version": "8.0"}
