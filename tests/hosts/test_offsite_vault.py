"""Tier 3: off-site copies from a real systemd host to a `vault` host running Debian's OpenSSH server.

- data:  dbrs (the wheel of this tree) + Debian's rclone; the spec names the vault as an SFTP target
         (key auth, host key pinned); the product's own dbrs-offsite.service/.timer and dbrs-alert@ units.
- vault: Debian's openssh-server binaries (fetched on the machine with `apt-get download`, as the hosts
         have no network), an sftp-only account `dbrsvault`.
- fresh: a brand-new host that gets nothing but bundle.dbrs and its passphrase.

Backups are made with the product's own archive writer (encrypted with backup.key) and queued through
the seam (`offsite.enqueue`), since what is tested here is the copy, not the dump.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from . import product
from .testbed import Testbed, TestbedError, cleanup_stale, wait_until

sys.path.insert(0, str(product.REPO / "tests" / "unit"))
from sshd_env import openssh_root  # noqa: E402

pytestmark = pytest.mark.hosts

NET = {"data": "10.77.0.171", "vault": "10.77.0.172", "fresh": "10.77.0.173"}
PASS = "/root/bundle.pass"
UNITS = ("dbrs-offsite.service", "dbrs-offsite.timer", "dbrs-alert@.service")
OPENSSH = "/opt/openssh"

MAKE_BACKUP = textwrap.dedent('''\
    import json, os, sys, time
    from installer import secrets, spec as specmod
    from installer.backup import archive, catalog, offsite, times
    from installer.backup.manifest import Manifest
    spec = specmod.load("/etc/dbrs/cluster.toml")
    key = secrets.backup_key_bytes(open("/etc/dbrs/backup.key", "rb").read())
    kind, t = sys.argv[1], float(sys.argv[2])
    catalog.ensure_dirs(spec.backup.dir)
    name = catalog.file_name(spec.cluster.name, kind, t)
    path = os.path.join(spec.backup.dir, kind, name)
    with archive.Sink(path, key) as s:
        s.write(os.urandom(3 << 20))
        w = s.commit()
    m = {"name": name, "kind": kind, "bytes": w.bytes, "sha256": w.sha256, "encrypted": True,
         "cluster": spec.cluster.name, "started": times.iso(t - 5), "finished": times.iso(t),
         "oplog_start": {"t": int(t) - 60, "i": 1}, "oplog_end": {"t": int(t), "i": 1},
         "after": {"t": int(t) - 300, "i": 1}, "first": {"t": int(t) - 299, "i": 1}, "last": {"t": int(t), "i": 1},
         "count": 1, "plain_bytes": w.plain_bytes}
    catalog.write_manifest(path, Manifest.from_dict(m))
    assert offsite.enqueue(spec, path, path + catalog.MANIFEST)
    print(json.dumps({"name": name, "sha256": w.sha256}))
''')


def _wait(pred, timeout=60, step=0.5, what="condition"):
    return wait_until(pred, timeout, step, what)


def _deb(name):
    """A .deb fetched on the machine with `apt-get download` (cached next to the openssh tree)."""
    cache = openssh_root().parent
    found = sorted(cache.glob(f"{name}_*.deb"))
    if not found:
        r = subprocess.run(["apt-get", "download", name], cwd=cache, capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot fetch {name} with apt-get download: {r.stderr.strip()[-200:]}")
        found = sorted(cache.glob(f"{name}_*.deb"))
    return found[-1]


def _keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "dbrs-test", "-f", str(path)], check=True)
    return Path(path).read_bytes(), Path(str(path) + ".pub").read_text().strip()


SSHD_CONFIG = """\
ListenAddress 0.0.0.0:22
HostKey /etc/vault-ssh/host_key
PidFile none
AllowUsers dbrsvault
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
Subsystem sftp internal-sftp
ForceCommand internal-sftp
"""


def _start_sshd(vault):
    vault.run(["systemd-run", "--unit=vault-sshd", "--property=RuntimeDirectory=sshd",
               "--property=RuntimeDirectoryPreserve=yes",
               f"--setenv=LD_LIBRARY_PATH={OPENSSH}/usr/lib/x86_64-linux-gnu",
               f"{OPENSSH}/usr/sbin/sshd", "-D", "-e", "-f", "/etc/vault-ssh/sshd_config"])
    _wait(lambda: vault.run("ss -ltn 'sport = :22' | grep -q LISTEN", check=False).returncode == 0,
          30, what="sshd on the vault")


@pytest.fixture(scope="module")
def hosts(request):
    cleanup_stale()
    try:
        root = product.member_rootfs()
    except (TestbedError, OSError) as e:
        pytest.skip(f"tier-3 member rootfs cannot be built: {e}")
    wheels = product.wheelhouse()
    openssh = openssh_root()
    rclone_deb = _deb("rclone")
    tb = Testbed(rootfs=root)
    try:
        h = tb.boot(NET)
        for n in ("data", "fresh"):
            product.install_product(h[n], wheels, "8.0")
            h[n].copy_in(rclone_deb, "/var/tmp/rclone.deb")
            h[n].run("dpkg -i /var/tmp/rclone.deb >/dev/null && rm /var/tmp/rclone.deb", timeout=120)
        vault = h["vault"]
        vault.copy_in(openssh, OPENSSH)
        tmp = Path(tempfile.mkdtemp(prefix="dbrs-vault-keys-"))
        host_pem, host_pub = _keygen(tmp / "host_key")
        client_pem, client_pub = _keygen(tmp / "client_key")
        vault.run("useradd -r -d /run/sshd -s /usr/sbin/nologin sshd && "
                  "useradd -m -d /srv/vault -s /bin/sh dbrsvault && usermod -p NP dbrsvault && "
                  "mkdir -m 0700 /srv/vault/.ssh")
        vault.write_file("/srv/vault/.ssh/authorized_keys", client_pub + "\n", 0o600)
        vault.run("chown -R dbrsvault: /srv/vault/.ssh")
        vault.write_file("/etc/vault-ssh/host_key", host_pem, 0o600)
        vault.write_file("/etc/vault-ssh/sshd_config", SSHD_CONFIG, 0o644)
        _start_sshd(vault)
        h["data"].write_file("/root/vault.key", client_pem, 0o600)
        yield tb, h, " ".join(host_pub.split()[:2])
    finally:
        tb.close()


def _offsite_state(data):
    r = data.run(["dbrs", "offsite", "status", "--json"], check=False)
    return json.loads(r.stdout)["targets"][0] if r.returncode == 0 else None


def test_copies_reach_the_vault_a_cut_link_alerts_and_a_fresh_host_restores_from_it(hosts):
    tb, h, host_key = hosts
    data, vault, fresh = h["data"], h["vault"], h["fresh"]
    data.write_file(PASS, "correct horse battery staple\n", 0o600)
    data.run(["dbrs", "init", "--passphrase-file", PASS])
    data.run(["sh", "-c", "cat >> /etc/dbrs/cluster.toml"], input=(
        f'\n[[offsite]]\nname = "vault"\ntype = "sftp"\nhost = "{NET["vault"]}"\nuser = "dbrsvault"\n'
        f'path = "backups"\nhost_key = "{host_key}"\nmax_lag = "2min"\n'))
    r = data.run(["dbrs", "offsite", "credentials", "vault", "--key-file", "/root/vault.key",
                  "--passphrase-file", PASS])
    assert "wrote /etc/dbrs/bundle.dbrs" in r.stdout
    data.run("rm /root/vault.key")
    # the product's units, as dbrs-install renders them for this spec
    data.run("mkdir -p /tmp/stage/etc && cp -a /etc/dbrs /tmp/stage/etc/ && "
             "dbrs-install --role primary --root /tmp/stage --no-packages >/dev/null", timeout=120)
    for u in UNITS:
        data.run(f"cp /tmp/stage/etc/systemd/system/{u} /etc/systemd/system/{u}")
    # staged units name the packaged /usr/bin/dbrs, which the .deb provides; here it is the venv's
    data.run("ln -sf /opt/dbrs/venv/bin/dbrs /usr/bin/dbrs && mkdir -p -m 0700 /var/lib/dbrs/.backup && "
             "systemctl daemon-reload")
    data.write_file("/root/make_backup.py", MAKE_BACKUP, 0o644)
    py = "/opt/dbrs/venv/bin/python"
    now = time.time()
    b1 = json.loads(data.run([py, "/root/make_backup.py", "full", str(now - 600)]).stdout)
    s1 = json.loads(data.run([py, "/root/make_backup.py", "oplog", str(now - 300)]).stdout)

    # 1. the hardened unit copies both; the vault holds the very bytes, manifest beside each
    r = data.run(["systemctl", "start", "dbrs-offsite.service"], check=False, timeout=120)
    assert r.returncode == 0, data.run("journalctl -u dbrs-offsite.service --no-pager | tail -20").stdout
    for kind, b in (("full", b1), ("oplog", s1)):
        stored = vault.read_file(f"/srv/vault/backups/dbrs/{kind}/{b['name']}")
        assert hashlib.sha256(stored).hexdigest() == b["sha256"]
        m = json.loads(vault.read_file(f"/srv/vault/backups/dbrs/{kind}/{b['name']}.manifest.json"))
        assert m["sha256"] == b["sha256"]
    assert vault.run("stat -c %U /srv/vault/backups/dbrs/full").stdout.strip() == "dbrsvault"
    assert _offsite_state(data)["waiting"] == 0

    # 2. the vault goes away: the backup stays local and queued, the unit fails, the alert fires
    vault.run("systemctl stop vault-sshd")
    b2 = json.loads(data.run([py, "/root/make_backup.py", "full", str(now - 60)]).stdout)
    r = data.run(["systemctl", "start", "dbrs-offsite.service"], check=False, timeout=180)
    assert r.returncode != 0
    _wait(lambda: "dbrs-offsite.service" in data.run("cat /var/lib/dbrs/.backup/state.json", check=False).stdout,
          60, what="dbrs-alert@ to record the failed copy")
    st = _offsite_state(data)
    assert st["waiting"] == 1 and st["last_error"].startswith("off-site vault:"), st
    r = data.run(["dbrs", "offsite", "status", "--check"], check=False)
    assert r.returncode == 1 and "off-site copy to vault failed" in r.stdout
    assert data.run(f"test -f /var/backups/dbrs/full/{b2['name']}", check=False).returncode == 0

    # 3. the link is back: the queue drains
    _start_sshd(vault)
    r = data.run(["systemctl", "start", "dbrs-offsite.service"], check=False, timeout=120)
    assert r.returncode == 0
    assert _offsite_state(data)["waiting"] == 0
    assert hashlib.sha256(vault.read_file(f"/srv/vault/backups/dbrs/full/{b2['name']}")).hexdigest() == b2["sha256"]
    assert data.run(["dbrs", "offsite", "status", "--check"], check=False).returncode == 0

    # 4. the data host is gone: a fresh host with only the bundle and its passphrase gets the backups back
    bundle, passphrase = data.read_file("/etc/dbrs/bundle.dbrs"), data.read_file(PASS)
    data.poweroff()
    fresh.write_file("/root/bundle.dbrs", bundle, 0o600)
    fresh.write_file(PASS, passphrase, 0o600)
    fresh.run(["dbrs-install", "--role", "primary", "--bundle", "/root/bundle.dbrs", "--passphrase-file", PASS,
               "--root", "/root/dr", "--no-packages"], timeout=120)
    cfg = "/root/dr/etc/dbrs/cluster.toml"
    listing = fresh.run(["dbrs", "offsite", "list", "--config", cfg]).stdout
    assert "off-site vault: 2 full backup(s), 1 oplog slice(s)" in listing, listing
    r = fresh.run(["dbrs", "offsite", "verify", "--download", "--config", cfg], check=False, timeout=120)
    assert r.returncode == 0 and r.stdout.count("every chunk authenticates") == 3, r.stdout + r.stderr
    r = fresh.run(["dbrs", "offsite", "fetch", b1["name"], b2["name"], s1["name"], "--into", "/var/tmp/dr",
                   "--config", cfg], timeout=120)
    assert "(3 downloaded, 0 local)" in r.stdout, r.stdout
    for kind, b in (("full", b1), ("full", b2), ("oplog", s1)):
        got = fresh.read_file(f"/var/tmp/dr/{kind}/{b['name']}")
        assert hashlib.sha256(got).hexdigest() == b["sha256"]
