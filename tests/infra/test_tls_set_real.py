"""The Vagrant set under requireTLS, and `dbrs tls rotate` on it (Vagrant tier, marked real_mongod).

`vagrant up` provisions with `dbrs init`, which writes `tls = "required"` for a new cluster, so the three VMs
run a requireTLS PSA set with certificates of the cluster CA. Checked here against real mongod: every member's
conf says requireTLS; a plaintext hello from an allowed network (this machine, 192.168.56.1) is dropped while
the same hello over TLS verified by the cluster CA is answered; `dbrs status` on a member host is healthy
over TLS; and `dbrs tls rotate --renew-within 3650` run host by host as the README says (the init host
without options, the others with the bundle; the primary's host last) gives every member a new certificate
while a primary exists throughout and majority writes go on. Environment: see test_replset_real.py.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time

import pytest

from .test_replset_real import host_of, set_client, wait_healthy

pytestmark = pytest.mark.real_mongod

SHARED = "/dbrs/vagrant/shared"


def _hello():
    import struct

    import bson

    body = b"\x00\x00\x00\x00" + b"\x00" + bson.encode({"hello": 1, "$db": "admin"})
    return struct.pack("<iiii", 16 + len(body), 1, 0, 2013) + body


def _ask(address, ca_file=None):
    """Bytes answered to a hello (plaintext, or TLS verified by `ca_file`), 0 when the server dropped it."""
    host, port = address.rsplit(":", 1)
    try:
        s = socket.create_connection((host, int(port)), timeout=10)
        if ca_file:
            s = ssl.create_default_context(cafile=ca_file).wrap_socket(s, server_hostname=host)
        s.sendall(_hello())
        return len(s.recv(4096))
    except OSError:
        return 0


@pytest.fixture(scope="module")
def tls_set(real):
    spec, secrets, path = real
    if spec.cluster.tls != "required":
        pytest.skip('the Vagrant set runs without TLS: provision it with a `dbrs init` that writes tls = "required"')
    return spec, secrets, path


def _ca_file(path):
    from pathlib import Path

    return str(Path(path).parent / "ca.pem")


def test_members_require_tls_and_drop_a_plaintext_client(tls_set):
    spec, _, path = tls_set
    for m in spec.members:
        conf = host_of(m).file(f"/etc/dbrs/{m.name}/mongod.conf").content_string
        assert "mode: requireTLS" in conf and "CAFile: /etc/dbrs/ca.pem" in conf, m.name
        assert _ask(m.address) == 0, f"{m.name} answered a plaintext hello"
        assert _ask(m.address, _ca_file(path)) > 16, f"{m.name} did not answer over TLS"
    out = host_of(spec.members[0]).run("dbrs status")
    assert out.rc == 0, out.stdout + out.stderr


def _serial(host, name):
    """The member's certificate file as it is now (a renewal writes a new certificate and key)."""
    return host.file(f"/etc/dbrs/{name}/member.pem").content


def test_rotate_host_by_host_keeps_a_primary_and_renews_every_certificate(tls_set):
    from pymongo import WriteConcern

    from installer.replset import connection

    spec, secrets, _ = tls_set
    wait_healthy(spec, secrets)
    before = {m.name: _serial(host_of(m), m.name) for m in spec.members}
    primary, _ = connection.find_primary(spec)
    init_host = spec.members[0].host          # mongod1 ran `dbrs init` and holds ca.key
    hosts, seen = [], set()
    for m in [m for m in spec.members if m.host != primary.host] + [primary]:
        if m.host not in seen:
            seen.add(m.host)
            hosts.append(m)

    gaps, stop = [], threading.Event()

    def watch():
        last_seen = time.monotonic()
        while not stop.is_set():
            try:
                if connection.find_primary(spec)[0] is not None:
                    now = time.monotonic()
                    gaps.append(now - last_seen)
                    last_seen = now
            except Exception:
                pass
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        for m in hosts:
            extra = "" if m.host == init_host else f" --bundle {SHARED}/bundle.dbrs --passphrase-file {SHARED}/passphrase"
            r = host_of(m).run(f"dbrs tls rotate --renew-within 3650{extra}")
            assert r.rc == 0, f"{m.host}: {r.stdout[-3000:]}{r.stderr[-3000:]}"
    finally:
        stop.set()
        watcher.join()
    assert max(gaps, default=0) < 30, f"no primary for {max(gaps):.1f} s during the rotation"
    after = {m.name: _serial(host_of(m), m.name) for m in spec.members}
    assert all(after[n] != before[n] for n in before), "a member kept its certificate"
    wait_healthy(spec, secrets, limit_s=300)
    with set_client(spec, secrets) as c:
        c.dbrs_tls_test.marks.with_options(write_concern=WriteConcern("majority")).insert_one({"t": time.time()})
