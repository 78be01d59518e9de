"""The TLS tier: the strict stand-in mongod, started with a mongod.conf rendered from dbrs' own template
and certificates issued by dbrs' own CA, answers real TLS handshakes (pymongo, openssl s_client).

No root, no network beyond loopback: each member listens on 127.0.0.1 on a free port.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from installer import pki, tls
from installer.render import render

REPO = Path(__file__).resolve().parents[2]
STANDIN = REPO / "tests" / "standins" / "mongod"
NOW = time.time()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ca():
    return pki.new_ca("dbrs", NOW)


class Member:
    """One stand-in mongod in its own directory: /etc/dbrs-like files, dbPath, log, mongod.conf."""

    def __init__(self, base, name, ca, mode, names=None, issued=None, cafile=None):
        self.name, self.port = name, free_port()
        self.etc = base / "etc"
        self.dir = base / name
        for d in (self.etc / name, self.dir / "data", self.dir / "log"):
            d.mkdir(parents=True, exist_ok=True)
        keyfile = self.etc / "keyfile"
        if not keyfile.exists():
            keyfile.write_bytes(b"c2VjcmV0" * 100 + b"\n")
            keyfile.chmod(0o400)
        ca_file = cafile or tls.ca_path(self.etc)
        if not Path(ca_file).exists():
            Path(ca_file).write_bytes(pki.ca_file(ca))
            Path(ca_file).chmod(0o444)
        self.issued = issued or pki.issue_member(ca, "dbrs", "localhost", names or tls.member_names("localhost"), NOW)
        self.pem = Path(tls.paths.member_cert(name, self.etc))
        if self.pem.exists():
            self.pem.chmod(0o600)
        self.pem.write_bytes(self.issued.key_file())
        self.pem.chmod(0o400)
        self.version_file = base / "version"
        self.version_file.write_text("8.0.4\n")
        server = tls.server(mode_spec(mode), name, self.etc, step=mode if mode != "disabled" else None)
        self.conf = self.etc / name / "mongod.conf"
        self.conf.write_text(conf_text(self, server))
        self.proc = None

    def start(self, wait=True):
        env = dict(os.environ, DBRS_STANDIN_VERSION_FILE=str(self.version_file))
        self.proc = subprocess.Popen([sys.executable, str(STANDIN), "--config", str(self.conf)], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if wait:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"stand-in mongod exited {self.proc.returncode}: {self.proc.stderr.read()}")
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", self.port)) == 0:
                        return self
                time.sleep(0.05)
            raise AssertionError("stand-in mongod did not listen within 15 s")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def mode_spec(mode):
    """A spec value that, with `step`, gives this server mode (the step wins while a roll is under way)."""
    return "off" if mode == "disabled" else "required"


def conf_text(member, server, extra=None):
    """mongod.conf from dbrs' own template, as mongod.conf() renders it, with the TLS block."""
    from types import SimpleNamespace

    return render(
        "mongod/mongod.conf.j2",
        member=SimpleNamespace(name=member.name, role="primary", port=member.port),
        cluster=SimpleNamespace(name="dbrs", mongodb_version="8.0"),
        spec_path="/etc/dbrs/cluster.toml",
        data_dir=member.dir / "data",
        log_dir=member.dir / "log",
        bind_ip=["127.0.0.1"],
        ipv6=False,
        keyfile=member.etc / "keyfile",
        extra=extra or {},
        notes={},
        tls=server,
    ).decode()


@pytest.fixture
def members(tmp_path, ca):
    made = []

    def make(name="mongod1", mode="requireTLS", **kw):
        m = Member(tmp_path, name, ca, mode, **kw)
        made.append(m)
        return m

    yield make
    for m in made:
        m.stop()
