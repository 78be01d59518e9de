"""Debian's real OpenSSH server, run unprivileged-ish on 127.0.0.1 for the SFTP target tests.

The .debs (openssh-server, openssh-sftp-server, libwrap0) are fetched once with
`apt-get download` and unpacked into a cache folder: nothing is installed on
the machine. sshd runs in the foreground from a config of its own: one
account (`dbrsvault`, in a private mount namespace), key auth only, `ForceCommand internal-sftp` (no
shell: the account a careful operator gives a backup target), its own host key
(pinned in the spec's host_key).
"""

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("DBRS_TEST_CACHE", Path.home() / ".cache/dbrs-tests")) / "openssh"   # as product.py
DEBS = ("openssh-server", "openssh-sftp-server", "libwrap0")


def openssh_root():
    """The unpacked packages (cached); pytest.skip with the reason when they cannot be fetched."""
    root = CACHE / "root"
    if (root / "usr/sbin/sshd").exists():
        return root
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        pytest.skip("SFTP tests need apt-get and dpkg-deb to fetch Debian's openssh-server")
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=CACHE))
    r = subprocess.run(["apt-get", "download", *DEBS], cwd=work, capture_output=True, text=True)
    if r.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        pytest.skip(f"cannot fetch openssh-server with apt-get download: {r.stderr.strip()[-200:]}")
    tmp_root = work / "root"
    for deb in work.glob("*.deb"):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_root)], check=True)
    try:
        os.rename(tmp_root, root)
    except OSError:
        pass    # another run won the race; its copy is the same
    shutil.rmtree(work, ignore_errors=True)
    return root


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "dbrs-test", "-f", str(path)], check=True)
    return Path(path).read_text(), Path(str(path) + ".pub").read_text().strip()


@contextlib.contextmanager
def sftp_server(tmp):
    """Yields (port, user, host_key_line, client_private_key_pem, served_dir).

    sshd runs as root in a mount namespace of its own whose /etc/passwd,
    /etc/shadow and /etc/group name just its privilege-separation user and the
    backup account `dbrsvault` (uid 65534), and whose /run is a private tmpfs:
    the machine's accounts and /run are untouched.
    """
    if os.geteuid() != 0:
        pytest.skip("the SFTP tests run sshd in a private mount namespace: root only")
    root = openssh_root()
    tmp = Path(tempfile.mkdtemp(prefix="dbrs-sftp-", dir="/var/tmp"))
    tmp.chmod(0o755)
    d = tmp / "sshd"
    d.mkdir()
    host_pem, host_pub = keygen(d / "host_key")
    client_pem, client_pub = keygen(d / "client_key")
    (d / "authorized_keys").write_text(client_pub + "\n")
    served = tmp / "vault"
    served.mkdir()
    os.chown(served, 65534, 65534)
    user = "dbrsvault"
    (d / "passwd").write_text(f"root:x:0:0:root:/root:/bin/sh\nsshd:x:101:65534::/run/sshd:/usr/sbin/nologin\n"
                              f"{user}:x:65534:65534::{served}:/bin/sh\n")
    (d / "shadow").write_text(f"root:*:20000:0:99999:7:::\nsshd:*:20000:0:99999:7:::\n{user}:NP:20000:0:99999:7:::\n")
    (d / "shadow").chmod(0o600)
    (d / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    port = _free_port()
    (d / "sshd_config").write_text(f"""\
ListenAddress 127.0.0.1:{port}
HostKey {d / 'host_key'}
PidFile none
AuthorizedKeysFile {d / 'authorized_keys'}
AllowUsers {user}
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
ForceCommand internal-sftp
LogLevel VERBOSE
""")
    libs = f"{root}/usr/lib/x86_64-linux-gnu:{root}/lib/x86_64-linux-gnu"
    script = (f"mount --bind {d}/passwd /etc/passwd && mount --bind {d}/shadow /etc/shadow && "
              f"mount --bind {d}/group /etc/group && mount -t tmpfs -o mode=0755 tmpfs /run && "
              f"mkdir -m 0755 /run/sshd && LD_LIBRARY_PATH={libs} exec {root}/usr/sbin/sshd -D -e -f {d}/sshd_config")
    log = open(d / "sshd.log", "wb")
    p = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                         stdout=log, stderr=subprocess.STDOUT, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if p.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("sshd did not start: " + (d / "sshd.log").read_text()[-500:])
                time.sleep(0.05)
        host_key = " ".join(host_pub.split()[:2])
        yield port, user, host_key, client_pem, served
    finally:
        p.terminate()
        p.wait(10)
        log.close()
        os.environ.get("KEEP_SSHD") or shutil.rmtree(tmp, ignore_errors=True)
