"""Where dbrs keeps things on a host, in one place.

Every path here is absolute as seen on the host; `--root` is applied only by
the file writer and the fact readers, never by string pasting elsewhere.
"""

from pathlib import PurePosixPath as P

ETC = P("/etc/dbrs")
SPEC = ETC / "cluster.toml"
CA_CERT = ETC / "ca.pem"      # 0444: every client of the cluster verifies the members with it
CA_KEY = ETC / "ca.key"       # root 0600: signs member and client certificates
DATA = P("/var/lib/dbrs")
STATE_DIR = DATA / ".backup"
# The highest spec generation dbrs-install applied here: an old cluster.toml put back over /etc/dbrs (from git,
# etckeeper, a backup) must not roll a member change back either.
GENERATION = DATA / "spec-generation"
# The TLS mode this host's members are rolled to while `dbrs tls enable` is under way (root 0644): every client
# here and mongod.conf follow it instead of cluster.tls, which changes only once the whole set has arrived.
TLS_STEP = DATA / "tls-mode"
LOG = P("/var/log/dbrs")
UNIT_DIR = P("/etc/systemd/system")
SYSCTL = P("/etc/sysctl.d/60-dbrs.conf")
LOGROTATE = P("/etc/logrotate.d/dbrs")
MONGOD = P("/usr/bin/mongod")
# dbrs-install's lock; `dbrs user` takes it too (both rewrite secrets.toml). A str: it is named in messages.
INSTALL_LOCK = "/run/lock/dbrs-install.lock"


def member_conf(name):
    return ETC / name / "mongod.conf"


def member_cert(name, etc=ETC):
    """net.tls.certificateKeyFile: the member's certificate then its key, mongodb 0400."""
    return P(etc) / name / "member.pem"


def member_data(name):
    return DATA / name


def member_log(name):
    return LOG / name


def siblings(spec_path):
    """Secrets live next to the spec, so `--config` can point at another cluster."""
    base = P(spec_path).parent
    return {
        "keyfile": base / "keyfile",
        "secrets": base / "secrets.toml",
        "backup_key": base / "backup.key",
        "bundle": base / "bundle.dbrs",
    }
