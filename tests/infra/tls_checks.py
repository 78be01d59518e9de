"""TLS claims the stand-in mongod makes, as checks any mongod must pass (shared by two tiers).

On a host, a throwaway mongod (port 27099, 127.0.0.1 only, its own dbPath under /tmp, run by
systemd-run as mongodb) is started with dbrs' rendered net.tls block and a certificate of a fresh dbrs
CA. The checks: the handshake verifies by IP and name (openssl s_client), a plaintext client is dropped
under requireTLS, a client without a certificate is refused unless allowConnectionsWithoutCertificates
(why dbrs renders it), and bad settings are refused with mongod's message and exit code 2. The host's
own members are not touched.

tests/infra/test_tls_real.py runs them against a real mongod (Vagrant tier, real_mongod);
tests/hosts/test_tls_standin.py runs the very same checks against the stand-in in an nspawn host, so
a check that the stand-in passes and the real mongod fails shows where the stand-in is wrong.
"""

from __future__ import annotations

import base64
import shlex
import struct
import time
from types import SimpleNamespace

DIR = "/tmp/dbrs-tls-real"
PORT = 27099
UNIT = "dbrs-tls-real"


def _hello_hex():
    import bson

    body = b"\x00\x00\x00\x00" + b"\x00" + bson.encode({"hello": 1, "$db": "admin"})
    return (struct.pack("<iiii", 16 + len(body), 1, 0, 2013) + body).hex()


def _put(host, path, data, mode, owner="root"):
    b64 = base64.b64encode(data).decode()
    host.run_test(f"echo {b64} | base64 -d > {path} && chown {owner}: {path} && chmod {mode:o} {path}")


def _conf(server):
    from installer.render import render

    return render("mongod/mongod.conf.j2", member=SimpleNamespace(name="tlsreal", role="primary", port=PORT),
                  cluster=SimpleNamespace(name="tlsreal", mongodb_version="8.0"), spec_path="(test)",
                  data_dir=f"{DIR}/data", log_dir=f"{DIR}/log", bind_ip=["127.0.0.1"], ipv6=False,
                  keyfile=f"{DIR}/keyfile", extra={}, notes={}, tls=server).decode()


class Bench:
    """The throwaway mongod's files on `host` (a testinfra Host); `start(conf)` runs it, `close()` removes all."""

    def __init__(self, host):
        from installer import pki, tls

        self.host = host
        now = time.time()
        ca = pki.new_ca("tlsreal", now)
        member = pki.issue_member(ca, "tlsreal", "localhost", tls.member_names("localhost"), now)
        self.close()
        host.run_test(f"mkdir -p {DIR}/data {DIR}/log {DIR}/etc && chown -R mongodb: {DIR}")
        _put(host, f"{DIR}/keyfile", base64.b64encode(b"k" * 600) + b"\n", 0o400, "mongodb")
        _put(host, f"{DIR}/etc/ca.pem", ca.cert_pem, 0o444)
        _put(host, f"{DIR}/etc/member.pem", member.key_file(), 0o400, "mongodb")
        self.server = tls.ServerTLS(mode="requireTLS", certificateKeyFile=f"{DIR}/etc/member.pem",
                                    CAFile=f"{DIR}/etc/ca.pem")
        self.conf = _conf(self.server)

    def start(self, conf_text, wait=True):
        host = self.host
        host.run(f"systemctl stop {UNIT}; systemctl reset-failed {UNIT}")
        _put(host, f"{DIR}/mongod.conf", conf_text.encode(), 0o644)
        host.run_test(f"systemd-run --unit={UNIT} -p User=mongodb /usr/bin/mongod --config {DIR}/mongod.conf")
        if not wait:
            return
        for _ in range(60):
            if host.run(f"ss -ltn 'sport = :{PORT}' | grep -q {PORT}").rc == 0:
                return
            time.sleep(0.5)
        raise AssertionError(host.run(f"journalctl -u {UNIT} -n 20 --no-pager").stdout)

    def close(self):
        self.host.run(f"systemctl stop {UNIT}; systemctl reset-failed {UNIT}; rm -rf {DIR}")

    def ask(self, tls_on, cert=False):
        """Send hello (plaintext, or TLS verified by the CA, optionally with the member's certificate or the
        certificate file `cert` names): the number of bytes answered, or 'error ...' when the server dropped
        the connection."""
        wrap = ""
        if tls_on:
            chain = f"{DIR}/etc/member.pem" if cert is True else cert
            wrap = (f"import ssl; c = ssl.create_default_context(cafile='{DIR}/etc/ca.pem'); "
                    + (f"c.load_cert_chain('{chain}'); " if cert else "")
                    + "s = c.wrap_socket(s, server_hostname='127.0.0.1'); ")
        code = ("import socket\ntry:\n    s = socket.create_connection(('127.0.0.1', %d), timeout=10); %s"
                "s.sendall(bytes.fromhex('%s')); print(len(s.recv(4096)))\nexcept OSError as e:\n"
                "    print('error', e)" % (PORT, wrap, _hello_hex()))
        return self.host.run(f"python3 -c {shlex.quote(code)}").stdout.strip()


def dropped(answer):
    return answer == "0" or answer.startswith("error")


def check_handshake_verifies_by_ip_and_name(bench):
    bench.start(bench.conf)
    base = f"openssl s_client -connect 127.0.0.1:{PORT} -CAfile {DIR}/etc/ca.pem -verify_return_error -brief"
    assert bench.host.run(f"{base} -verify_ip 127.0.0.1 </dev/null").rc == 0
    assert bench.host.run(f"{base} -verify_hostname localhost </dev/null").rc == 0
    assert bench.host.run(f"{base} -verify_hostname mongod9.example </dev/null").rc != 0


def check_plaintext_is_dropped_under_require_tls(bench):
    bench.start(bench.conf)
    assert dropped(bench.ask(tls_on=False))
    answer = bench.ask(tls_on=True)
    assert answer.isdigit() and int(answer) > 16, answer


def check_client_without_certificate_needs_allow(bench):
    bench.start(bench.conf.replace("allowConnectionsWithoutCertificates: true",
                                   "allowConnectionsWithoutCertificates: false"))
    assert dropped(bench.ask(tls_on=True))
    answer = bench.ask(tls_on=True, cert=True)
    assert answer.isdigit() and int(answer) > 16, answer


def check_ca_roll_trust_is_what_dbrs_tls_rotate_probes(bench):
    """`dbrs tls rotate` asks a member whether it trusts the new CA by presenting a client certificate of that
    CA: a mongod whose CAFile lacks the CA drops the connection (allowConnectionsWithoutCertificates spares only
    clients that present none); with the roll's CAFile (new CA, then the old) it answers, and the member's
    old-CA certificate still verifies for clients trusting both."""
    from installer import pki, rotation

    now = time.time()
    new = pki.new_ca("tlsreal", now)
    _put(bench.host, f"{DIR}/etc/probe.pem", pki.issue_client(new, "tlsreal", "probe", now).key_file(), 0o444)
    bench.start(bench.conf)
    assert dropped(bench.ask(tls_on=True, cert=f"{DIR}/etc/probe.pem"))
    old_ca = bench.host.file(f"{DIR}/etc/ca.pem").content
    _put(bench.host, f"{DIR}/etc/ca.pem", rotation.ca_roll_file(new.cert_pem, old_ca), 0o444)
    bench.start(bench.conf)
    answer = bench.ask(tls_on=True, cert=f"{DIR}/etc/probe.pem")
    assert answer.isdigit() and int(answer) > 16, answer


BAD_SETTINGS = [
    ({"mode: requireTLS": "mode: requireSSL"}, "unsupported value for tlsMode requireSSL"),
    ({"    certificateKeyFile:": "    # certificateKeyFile:"},
     "need tlsCertificateKeyFile or certificateSelector when TLS is enabled"),
    ({"mode: requireTLS": "mode: disabled"}, "need to enable TLS via the sslMode/tlsMode flag"),
]


def check_bad_setting_is_refused(bench, change, message):
    """The stand-in exits 2 with these messages (tests/tls/test_standin_options.py)."""
    conf = bench.conf
    for old, new in change.items():
        assert old in conf
        conf = conf.replace(old, new)
    bench.start(conf, wait=False)
    for _ in range(20):
        time.sleep(0.5)
        show = bench.host.run(f"systemctl show -p ActiveState -p ExecMainStatus {UNIT}").stdout
        if "ActiveState=active" not in show:
            break
    log = bench.host.run(f"journalctl -u {UNIT} -n 30 --no-pager").stdout
    assert "ExecMainStatus=2" in show and message in log, (show, log[-600:])


CHECKS = [check_handshake_verifies_by_ip_and_name, check_plaintext_is_dropped_under_require_tls,
          check_client_without_certificate_needs_allow, check_ca_roll_trust_is_what_dbrs_tls_rotate_probes]
