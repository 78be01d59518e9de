"""The value checks of the spec's fields: pure functions, value -> None or (problem, fix).

The field table (spec_fields) names one per key; the types are checked
before, so a check sees a value of the right type.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import PurePosixPath

from .mongod_options import oplog_size_problem

ROLES = ("primary", "secondary", "arbiter")
WRITE_TIMEOUT_S = (1, 3600)  # MongoDB's wtimeout is an int32 of ms (~24.8 days); sane is far below
VERSIONS = ("7.0", "8.0")
WRITE_CONCERNS = ("majority", "1")
TLS_MODES = ("off", "preferred", "required")
CLUSTER_AUTHS = ("keyfile", "x509")
OFFSITE_TYPES = ("sftp", "s3", "path")

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


# ------------------------------------------------------------------ types

def is_str(v):
    return isinstance(v, str)


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_bool(v):
    return isinstance(v, bool)


def is_strlist(v):
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def is_table(v):
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
