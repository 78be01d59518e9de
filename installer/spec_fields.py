"""The field table of cluster.toml: one row per key, with its type, default, check and help.

Everything else is generated from these rows: the parser and the defaults of
the spec objects (spec.py), the commented lines `dbrs init` writes (through
templates/dbrs/cluster.toml.j2), the `dbrs init` flag of a field, and the
spec reference in the README. A check takes the value (already of the
right type) and returns None or (problem, fix).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

ROLES = ("primary", "secondary", "arbiter")
WRITE_TIMEOUT_S = (1, 3600)  # MongoDB's wtimeout is an int32 of ms (~24.8 days); sane is far below
VERSIONS = ("7.0", "8.0")
WRITE_CONCERNS = ("majority", "1")
TLS_MODES = ("off", "preferred", "required")
CLUSTER_AUTHS = ("keyfile", "x509")
OFFSITE_TYPES = ("sftp", "s3", "path")
DEFAULT_NAME = "dbrs"
DEFAULT_PORT = 27017
REQUIRED = object()  # the default of a key that must be given

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_SETNAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
# Paths go into ReadWritePaths= and friends, which split on spaces and expand %.
_UNIT_PATH_RE = re.compile(r"^/[A-Za-z0-9._+@:/-]*$")
_SPAN_UNITS = {
    "us": 1e-6, "usec": 1e-6, "ms": 1e-3, "msec": 1e-3,
    "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}
_SPAN_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")
_CALENDAR_SHORTHANDS = {
    "minutely", "hourly", "daily", "monthly", "weekly", "yearly",
    "annually", "quarterly", "semiannually",
}
_DOW = r"(mon|tue|wed|thu|fri|sat|sun)[a-z]*"
_CAL_WEEKDAYS = re.compile(rf"^{_DOW}((\.\.|,){_DOW})*$", re.I)
_CAL_FIELD = r"[0-9*][0-9*,./~]*"
_CAL_DATE = re.compile(rf"^({_CAL_FIELD}-)?{_CAL_FIELD}-{_CAL_FIELD}$")
_CAL_TIME = re.compile(rf"^{_CAL_FIELD}:{_CAL_FIELD}(:{_CAL_FIELD})?$")
_CAL_ZONE = re.compile(r"^(UTC|[A-Z][A-Za-z_]+/[A-Za-z_/+-]+)$")
_BWLIMIT_RE = re.compile(r"^(off|\d+(\.\d+)?[BKMGTP]?)$")
_SIZE_RE = re.compile(r"^\d+[KMG]$")
_HOST_KEY_RE = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+=*$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REMOTE_PATH_RE = re.compile(r"^[A-Za-z0-9._+@/-]+$")


@dataclass(frozen=True)
class Field:
    """One key of a section. `pad` and `note` shape the line `dbrs init` writes (None: not written)."""

    name: str
    accepts: object          # type check: value -> bool
    typename: str            # "a string", shown as the problem and the fix of a wrong type
    default: object = REQUIRED
    check: object = None     # value -> None | (problem, fix)
    help: str = ""
    pad: int | None = None   # spaces between value and `# note` in the init file; None = init leaves it out
    note: str = ""
    flag: str = ""           # the `dbrs init` option that sets it
    convert: object = None   # stored form: tuple for lists, str for write_concern


# ------------------------------------------------------------------ types

def _str(v):
    return isinstance(v, str)


def _int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _bool(v):
    return isinstance(v, bool)


def _strlist(v):
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _table(v):
    return isinstance(v, dict)


# ----------------------------------------------------------------- checks

def timespan_seconds(text):
    """Seconds in a systemd time span ("5min", "1h 30min", "90s"); ValueError if not one."""
    text = text.strip().lower()
    if not text:
        raise ValueError("empty time span")
    pos, total = 0, 0.0
    for m in _SPAN_RE.finditer(text):
        if text[pos:m.start()].strip():
            raise ValueError(text)
        if m.group(2) not in _SPAN_UNITS:
            raise ValueError(text)
        total += float(m.group(1)) * _SPAN_UNITS[m.group(2)]
        pos = m.end()
    if pos == 0 or text[pos:].strip():
        raise ValueError(text)
    return total


def is_calendar(text):
    """A pure check of systemd.time(7) calendar syntax: shorthands or [DOW] [DATE] [TIME] [TZ].

    `systemd-analyze verify` on the rendered timer (in the tests) is the
    second, authoritative check.
    """
    text = text.strip()
    if text.lower() in _CALENDAR_SHORTHANDS:
        return True
    tokens = text.split()
    if not tokens or len(tokens) > 4:
        return False
    order = [("dow", _CAL_WEEKDAYS), ("date", _CAL_DATE), ("time", _CAL_TIME), ("tz", _CAL_ZONE)]
    i = 0
    for tok in tokens:
        while i < len(order) and not order[i][1].match(tok):
            i += 1
        if i == len(order):
            return False
        i += 1
    return True


def is_host(value):
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return bool(_HOSTNAME_RE.match(value)) and not value.replace(".", "").isdigit()


def one_of(choices, what):
    def check(value):
        if value not in choices:
            return f"{value!r} is not {what}", "use one of " + ", ".join(choices)
    return check


def check_setname(value):
    if not _SETNAME_RE.match(value):
        return f"{value!r} is not a usable replica set name", "use letters, digits, '-' or '_', at most 64"


def check_version(value):
    if value not in VERSIONS:
        return f"MongoDB {value!r} is not supported", "use one of " + ", ".join(VERSIONS)


def check_cidrs(value):
    for c in value:
        try:
            ipaddress.ip_network(c, strict=True)
        except ValueError:
            try:
                net = ipaddress.ip_network(c, strict=False)
                return f"{c!r} has host bits set", f"did you mean {net}?"
            except ValueError:
                return f"{c!r} is not a CIDR network", 'write it like "10.0.0.0/24"'


def check_write_concern(value):
    if str(value) not in WRITE_CONCERNS:
        return f"{value!r} is not supported", 'use "majority" (no acknowledged write lost) or "1"'


def _span(value):
    """(seconds, None) or (None, (problem, fix)) when `value` is not a systemd time span."""
    try:
        return timespan_seconds(value), None
    except ValueError:
        return None, (f"{value!r} is not a time span", 'write it like "10s", "5min" or "1h"')


def _positive_span(value, secs):
    if secs <= 0:
        return f"{value!r} is not positive", 'write it like "10s"'


def check_timespan(value):
    secs, problem = _span(value)
    return problem or _positive_span(value, secs)


def check_write_timeout(value):
    secs, problem = _span(value)
    if problem:
        return problem
    if not WRITE_TIMEOUT_S[0] <= secs <= WRITE_TIMEOUT_S[1]:
        return (f"{value!r} is outside 1s .. 1h", "below a second majority writes fail on every replication "
                "hiccup; beyond an hour a write that cannot commit just hangs, which this setting is there to stop")
    return _positive_span(value, secs)


def check_oplog_span(value):
    secs, problem = _span(value)
    if problem:
        return problem
    if secs < 60:
        return f"{value!r} is shorter than a minute", "slices more often than every minute only add load"
    return _positive_span(value, secs)


def check_member_name(value):
    if not _NAME_RE.match(value):
        return (f"{value!r} is not a safe member name",
                "use lowercase letters, digits, '-' or '_', starting with a letter or digit, at most 40")


def check_host(value):
    """A hostname or an IP that names one host: not the any-address, not link-local (needs a zone, changes)."""
    if not is_host(value):
        return f"{value!r} is not a hostname or IP address", 'use e.g. "10.0.0.11" or "db1.example.com"'
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return None
    if addr.is_unspecified:
        return f"{value} is the any-address, not a host", "use the member's own IP address or hostname"
    if addr.is_link_local:
        return (f"{value} is link-local: it needs an interface zone and is not routed",
                "use a global or unique-local (fd00::/8) address")


def check_port(value):
    if not 1 <= value <= 65535:
        return f"{value} is out of range", "use a port from 1 to 65535"


def check_abspath(value):
    if not PurePosixPath(value).is_absolute() or ".." in PurePosixPath(value).parts:
        return f"{value!r} is not an absolute path", "start it with / and leave out '..'"
    if not _UNIT_PATH_RE.match(value):
        return (f"{value!r} has characters systemd units cannot take unquoted (space, %, quotes, \\)",
                "use letters, digits and . _ - + @ : / only")


# dbrs' own trees: backups inside them would share their fate and their modes.
_OWN_DIRS = ("/etc/dbrs", "/var/lib/dbrs", "/var/log/dbrs", "/opt/dbrs")
# Backups here would be volatile, hidden by ProtectHome=, or chmod'ed 0700 into breaking the system.
_SYSTEM_TREES = ("/etc", "/usr", "/boot", "/proc", "/sys", "/dev", "/run", "/bin", "/sbin",
                 "/lib", "/lib32", "/lib64", "/libx32", "/home", "/root", "/snap", "/lost+found")
_SYSTEM_DIRS = ("/", "/var", "/srv", "/mnt", "/media", "/opt", "/tmp", "/var/tmp")


def check_backup_dir(value):
    """`backup.dir` gets mode 0700 and root as owner: it must be a folder of its own, not the system's."""
    problem = check_abspath(value)
    if problem:
        return problem
    p = PurePosixPath(value)
    fix = "use a folder of its own, e.g. /var/backups/dbrs or /srv/backups/dbrs"
    for own in _OWN_DIRS:
        o = PurePosixPath(own)
        if p == o or o in p.parents or p in o.parents:
            return f"{value} is or holds dbrs' own folder {own}", fix
    for tree in _SYSTEM_TREES:
        t = PurePosixPath(tree)
        if p == t or t in p.parents:
            return f"{value} is a system folder (under {tree})", fix
    if str(p) in _SYSTEM_DIRS or p.parent == PurePosixPath("/var"):
        return f"{value} is a system folder", fix


def check_positive(value):
    if value < 1:
        return f"{value} is less than 1", "use 1 or more"


def check_calendar(value):
    if not is_calendar(value):
        return (f"{value!r} is not a systemd calendar expression",
                'use e.g. "daily", "*-*-* 02:30:00" or "Mon *-*-* 03:00" (see systemd.time(7))')


def check_command(value):
    if value and not PurePosixPath(value[0]).is_absolute():
        return f"{value[0]!r} is not an absolute program path", "give the program's full path first"


def check_oplog_size(value):
    from .mongod_options import oplog_size_problem

    return oplog_size_problem(value)


def check_url(value):
    if value and not re.match(r"^https?://[^\s/]+", value):
        return f"{value!r} is not an http(s) URL", "write it like https://hooks.example.com/dbrs"


def check_bwlimit(value):
    if not _BWLIMIT_RE.match(value):
        return f"{value!r} is not a bandwidth", 'write it like "10M" (MiB/s), "512K" or "off"'


def check_chunk_size(value):
    if not _SIZE_RE.match(value):
        return f"{value!r} is not a size", 'write it like "16M" (at least 5M for S3)'


def check_offsite_user(value):
    if not re.match(r"^[a-z_][a-z0-9_-]{0,31}$", value):
        return f"{value!r} is not a user name", "use lowercase letters, digits, '-' or '_'"


def check_remote_path(value):
    if value and (not _REMOTE_PATH_RE.match(value) or ".." in value.split("/")):
        return f"{value!r} is not a plain folder path", "use letters, digits and . _ - + @ / only, no '..'"


def check_host_key(value):
    if not _HOST_KEY_RE.match(value.strip()):
        return ("is not a public host key line",
                "paste the key type and key from `ssh-keyscan -t ed25519 HOST` (e.g. \"ssh-ed25519 AAAA...\")")


def check_bucket(value):
    if not _BUCKET_RE.match(value):
        return f"{value!r} is not an S3 bucket name", "use 3-63 lowercase letters, digits, '.' or '-'"


# ------------------------------------------------------------------ table

F = Field
_CALENDAR = 'a systemd calendar expression like "{}"'

# Keys outside any table. `generation` numbers the spec's versions (#13).
TOP = (
    F("generation", _int, "an integer", 1, check_positive,
      "the spec's version number; raise it with every change so an older spec cannot roll a host back"),
)

SECTIONS = {
    "cluster": (
        F("name", _str, "a string", DEFAULT_NAME, check_setname, pad=17, note="replica set name", flag="--name"),
        F("mongodb_version", _str, 'a string like "8.0"', "8.0", check_version, pad=7, note="7.0 or 8.0",
          flag="--mongodb-version", help="MongoDB release; the OS tuning follows it"),
        F("allow", _strlist, "a list of CIDR strings", (), check_cidrs, pad=3,
          note="client networks let through the firewall", flag="--allow", convert=tuple),
        F("write_concern", lambda v: _str(v) or _int(v), '"majority" or "1"', "majority", check_write_concern, pad=4,
          note='"majority": no acknowledged write is lost; "1": faster, can lose writes on failover',
          flag="--write-concern", convert=str),
        F("write_timeout", _str, 'a time span like "10s"', "10s", check_write_timeout, pad=6,
          note="majority writes fail after this instead of hanging while a member is down"),
        F("oplog_size_mb", _int, "an integer (MB)", 0, check_oplog_size,
          "oplog size in MB; 0: MongoDB's default (5% of the disk, 990 MB to 50 GB)"),
        F("tls", _str, 'one of "off", "preferred", "required"', "off", one_of(TLS_MODES, "a TLS mode"),
          "TLS between members and clients: off, preferred (the rolling step), required"),
        F("cluster_auth", _str, 'one of "keyfile", "x509"', "keyfile", one_of(CLUSTER_AUTHS, "a cluster auth mode"),
          "how members prove themselves to each other: the shared keyfile or x.509 member certificates"),
    ),
    "members": (
        F("name", _str, "a string", REQUIRED, check_member_name, pad=0, help="member name, unique in the set"),
        F("host", _str, "a hostname or IP address", REQUIRED, check_host, pad=0,
          help="address the other members and clients reach it at"),
        F("port", _int, "an integer", DEFAULT_PORT, check_port, pad=0, help="mongod port"),
        F("role", _str, "one of " + ", ".join(ROLES), REQUIRED, one_of(ROLES, "a role"), pad=0,
          help="primary (priority 2), secondary or arbiter"),
        F("mongod", _table, "a table of mongod.conf options", (), None,
          "mongod.conf options for this member only, over the spec's [mongod]"),
    ),
    "backup": (
        F("dir", _str, "an absolute path", "/var/backups/dbrs", check_backup_dir, pad=0, flag="--backup-dir",
          help="where backups and oplog slices go (root, 0700; a folder of its own)"),
        F("schedule", _str, _CALENDAR.format("daily"), "daily", check_calendar, pad=10,
          note="systemd calendar expression for full backups"),
        F("retention_days", _int, "an integer", 7, check_positive, pad=0,
          help="full backups older than this go (but see keep_min)"),
        F("keep_min", _int, "an integer", 3, check_positive, pad=17,
          note="newest good backups always kept, whatever their age"),
        F("oplog_every", _str, 'a time span like "5min"', "5min", check_oplog_span, pad=8,
          note="oplog slices for point-in-time restore"),
        F("encrypt", _bool, "true or false", True, None, pad=16, note="AES-256-GCM with backup.key"),
        F("verify_schedule", _str, _CALENDAR.format("weekly"), "weekly", check_calendar, pad=2, note="restore drill"),
    ),
    "alerts": (
        F("command", _strlist, 'an argv list like ["/usr/local/bin/page", "--db"]', (), check_command, pad=17,
          note="argv run when a dbrs unit fails", convert=tuple),
        F("webhook", _str, "an http(s) URL", "", check_url, pad=17,
          note="URL that gets a JSON POST when a dbrs unit fails"),
        F("textfile_dir", _str, "an absolute path", "/var/lib/prometheus/node-exporter", check_abspath, pad=0,
          help="node-exporter textfile folder for the dbrs metrics"),
    ),
    "mongo_express": (
        F("enabled", _bool, "true or false", False, None, pad=0, help="run Mongo Express on the primary's host"),
        F("port", _int, "an integer", 8081, check_port, pad=19, note="always bound to 127.0.0.1"),
    ),
}

# [[offsite]]: the keys depend on `type`, so the table is chosen once `type` is known.
# Credentials are never here: they live in secrets.toml under [offsite.NAME].
OFFSITE_COMMON = (
    F("name", _str, "a string", REQUIRED, check_member_name, "target name"),
    F("type", _str, "one of " + ", ".join(OFFSITE_TYPES), REQUIRED, one_of(OFFSITE_TYPES, "a target type"),
      "sftp, s3 or path"),
    F("bwlimit", _str, 'a bandwidth like "10M" (MiB/s) or "off"', "off", check_bwlimit, "rclone --bwlimit"),
    F("max_lag", _str, 'a time span like "1h"', "1h", check_timespan, "status warns when a copy waits longer"),
    F("retention_days", _int, "an integer", 0, check_positive, "0: [backup] retention_days"),
    F("keep_min", _int, "an integer", 0, check_positive, "0: [backup] keep_min"),
)
OFFSITE_BY_TYPE = {
    "sftp": (
        F("host", _str, "a hostname or IP address", REQUIRED, check_host, "SFTP server"),
        F("port", _int, "an integer", 22, check_port, "SSH port"),
        F("user", _str, "a user name", REQUIRED, check_offsite_user, "SSH user"),
        F("path", _str, "a folder on the server", REQUIRED, check_remote_path, "folder on the server"),
        F("host_key", _str, 'the server\'s public host key, "ssh-ed25519 AAAA..."', REQUIRED, check_host_key,
          "pinned host key (ssh-keyscan -t ed25519 HOST)", convert=str.strip),
    ),
    "s3": (
        F("bucket", _str, "an S3 bucket name", REQUIRED, check_bucket, "bucket"),
        F("prefix", _str, "a folder inside the bucket", "", check_remote_path, "folder inside the bucket"),
        F("region", _str, 'a region like "eu-central-1"', "", None, "region"),
        F("endpoint", _str, "an http(s) URL", "", check_url, "endpoint of an S3-compatible store"),
        F("storage_class", _str, 'an S3 storage class like "STANDARD_IA"', "", None, "storage class"),
        F("chunk_size", _str, 'a size like "16M"', "", check_chunk_size, "multipart part size and cutoff"),
    ),
    "path": (
        F("path", _str, "an absolute path", REQUIRED, check_abspath, "the mounted folder"),
    ),
}
def by_name(fields):
    return {f.name: f for f in fields}


def defaults(fields):
    return {f.name: f.default for f in fields if f.default is not REQUIRED}


def required(fields):
    return tuple(f.name for f in fields if f.default is REQUIRED)


def flag_of():
    """`dbrs init` option by dotted field: errors in values from flags name the flag."""
    return {f"{s}.{f.name}": f.flag for s, fields in SECTIONS.items() for f in fields if f.flag}


def init_lines(section, values):
    """The `key = value  # note` lines `dbrs init` writes for one section of `values` (a spec object)."""
    from .render import toml_value

    out = []
    for f in SECTIONS[section]:
        if f.pad is None:
            continue
        note = " " * f.pad + "# " + f.note if f.note else ""
        out.append(f"{f.name} = {toml_value(getattr(values, f.name))}{note}")
    return out


def _shown_default(f):
    from .render import toml_value

    if f.default is REQUIRED:
        return "required"
    if f.default == () and f.typename.startswith("a table"):
        return "{}"
    return "`" + toml_value(f.default) + "`"


def reference():
    """The spec reference of the README, in Markdown: one table per section."""
    blocks = [("top level", TOP)] + [(f"[{s}]" if s != "members" else "[[members]]", fields)
                                     for s, fields in SECTIONS.items()]
    blocks += [("[[offsite]] (every type)", OFFSITE_COMMON)]
    blocks += [(f'[[offsite]] type = "{t}"', fields) for t, fields in OFFSITE_BY_TYPE.items()]
    lines = []
    for title, fields in blocks:
        lines += [f"**{title}**", "", "| key | type | default | meaning |", "|---|---|---|---|"]
        for f in fields:
            meaning = (f.help or f.note).replace("|", "\\|")
            flag = f" (`dbrs init {f.flag}`)" if f.flag else ""
            lines.append(f"| `{f.name}` | {f.typename.replace('|', '/')} | {_shown_default(f)} | {meaning}{flag} |")
        lines.append("")
    return "\n".join(lines)
