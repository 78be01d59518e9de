"""Issue #14 on real systemd hosts: a PSA set with `tls = "required"` bootstraps, reports healthy and
backs up over TLS; a plaintext client from the allowed network is refused at the TLS layer; and what
crosses the bridge between members carries no readable BSON. The control (the same capture of a set
without TLS shows the command names) is `test_membership_hosts.py::test_plaintext_control_capture`.

One module-scoped bed: m1/m2/m3 (PSA) and an allow-listed client. MongoDB is the strict stand-in of
tests/standins: under requireTLS it serves TLS only and dials the other members with TLS, verifying
their certificates by the CA and their host name, as mongod does.
"""

from __future__ import annotations

import json

import pytest

from . import product
from .beds import BUNDLE, PASS, booted, healthy_status as _status, install_psa, out as _out
from .testbed import wait_until

pytestmark = pytest.mark.hosts

NET = {"m1": "10.77.0.11", "m2": "10.77.0.12", "m3": "10.77.0.13", "client": "10.77.0.20"}
CA = "/root/ca.pem"

# A raw OP_MSG hello, over plain TCP or (with --tls) TLS verified by the CA; prints what came back.
PROBE = r'''
import json, socket, ssl, struct, sys
host, tls = sys.argv[1], sys.argv[2] == "--tls"
def cstr(s): return s.encode() + b"\0"
body = b"\x10" + cstr("hello") + struct.pack("<i", 1) + b"\x02" + cstr("$db") + struct.pack("<i", 6) + cstr("admin")
doc = struct.pack("<i", len(body) + 5) + body + b"\0"
payload = struct.pack("<I", 0) + b"\0" + doc
msg = struct.pack("<iiii", 16 + len(payload), 7, 0, 2013) + payload
out = {"reply": False, "error": ""}
try:
    s = socket.create_connection((host, 27017), timeout=5)
    if tls:
        ctx = ssl.create_default_context(cafile=sys.argv[3])
        s = ctx.wrap_socket(s, server_hostname=host)
    s.sendall(msg)
    data = b""
    while len(data) < 16 or len(data) < struct.unpack("<i", data[:4])[0]:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    out["bytes"] = len(data)
    out["reply"] = len(data) >= 16 and struct.unpack("<i", data[12:16])[0] == 2013 and b"isWritablePrimary" in data
except (OSError, ssl.SSLError) as e:
    out["error"] = f"{type(e).__name__}: {e}"[:200]
print(json.dumps(out))
'''


def _ready(n, h, wheels):
    if n != "client":
        product.install_product(h, wheels, "8.0", NET)
    else:
        h.run(["sh", "-c", "cat >> /etc/hosts"], input="".join(f"{ip}\t{name}\n" for name, ip in NET.items()))


@pytest.fixture(scope="module")
def bed(request):
    with booted(request, NET, _ready) as b:
        yield b


@pytest.fixture(scope="module")
def tls_set(bed):
    """`dbrs init` (it writes `tls = "required"` for a new cluster), the bundle installed, primary first."""
    tb, hosts = bed
    m1 = hosts["m1"]
    for n in ("m1", "m2", "m3"):
        hosts[n].write_file(PASS, "correct horse battery staple\n", 0o600)
    m1.run(["dbrs", "init", "--primary", NET["m1"], "--secondary", NET["m2"], "--arbiter", NET["m3"],
            "--allow", NET["client"] + "/32", "--passphrase-file", PASS])
    assert 'tls = "required"' in m1.read_file("/etc/dbrs/cluster.toml").decode(), "dbrs init turns TLS on"
    bundle = m1.read_file("/etc/dbrs/bundle.dbrs")
    for n in ("m2", "m3"):
        hosts[n].write_file(BUNDLE, bundle, 0o600)

    results = install_psa(hosts, ["--no-packages"])
    hosts["client"].write_file(CA, m1.read_file("/etc/dbrs/ca.pem"), 0o644)
    return tb, hosts, results


def test_bootstrap_status_and_backup_over_tls(tls_set):
    tb, hosts, results = tls_set
    for n, r in results.items():
        assert r.returncode == 0, f"dbrs-install on {n} with tls = required: {_out(r)}"
    assert "initiate" in results["m1"].stdout, results["m1"].stdout
    for n in ("m1", "m2", "m3"):
        conf = hosts[n].read_file(f"/etc/dbrs/mongod{n[1]}/mongod.conf").decode()
        assert "requireTLS" in conf, f"{n}'s mongod.conf:\n{conf}"
    for n in ("m1", "m2", "m3"):
        st = wait_until(lambda: _status(hosts[n]), 60, 0.5, f"a healthy TLS set seen from {n}")
        assert {m["name"]: m["state"] for m in st["members"]} == \
            {"mongod1": "PRIMARY", "mongod2": "SECONDARY", "mongod3": "ARBITER"}, st
    r = hosts["m2"].run(["dbrs", "backup"], check=False, timeout=180)
    assert r.returncode == 0, f"dbrs backup on the secondary's host over TLS: {_out(r)}"
    manifests = hosts["m2"].run("find /var/backups/dbrs/full -name '*.manifest.json'", check=False).stdout.split()
    assert len(manifests) == 1, hosts["m2"].run("ls -laR /var/backups/dbrs", check=False).stdout
    v = hosts["m2"].run(["dbrs", "backup", "verify"], check=False, timeout=180)
    assert v.returncode == 0, _out(v)


def test_plaintext_client_is_refused_at_the_tls_layer(tls_set):
    tb, hosts, _ = tls_set
    client = hosts["client"]
    client.write_file("/root/probe.py", PROBE, 0o644)
    for n in ("m1", "m2"):
        ip = NET[n]
        # the same probe over TLS gets its hello answered: the probe itself works, the path is open
        good = json.loads(client.run(["python3", "/root/probe.py", ip, "--tls", CA], timeout=30).stdout)
        assert good["reply"], f"TLS hello to {n} got no reply: {good}"
        plain = json.loads(client.run(["python3", "/root/probe.py", ip, "--plain"], timeout=30).stdout)
        assert not plain["reply"] and not plain.get("bytes"), f"{n} answered a plaintext hello: {plain}"
        s = client.run(f"openssl s_client -connect {ip}:27017 -CAfile {CA} -verify_return_error "
                       f"-verify_ip {ip} </dev/null", check=False, timeout=30)
        assert s.returncode == 0 and "Verify return code: 0 (ok)" in s.stdout, _out(s)


def test_members_talk_tls_on_the_bridge(tls_set):
    tb, hosts, _ = tls_set
    pcap = tb.capture(4, "tcp port 27017")
    assert len(pcap) > 2000, f"the capture saw almost nothing ({len(pcap)} bytes): the members are not talking"
    assert b"\x17\x03\x03" in pcap, "no TLS application-data record on the bridge"
    found = tb.plaintext_markers(pcap)
    assert not found, f"plaintext BSON between members under requireTLS: {found}"
