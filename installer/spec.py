"""The cluster spec: `/etc/dbrs/cluster.toml` read into typed, validated objects.

The schema below is the single description of the file: parsing, defaults
and the error messages all come from it. Validation collects every problem
with its dotted field path before reporting, so an operator fixes the file
in one go; rules that span fields run after the per-field pass.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath

try:
    import tomllib
except ImportError:  # Python 3.10 (Ubuntu 22.04)
    import tomli as tomllib

from .errors import InputError, SpecErrors

ROLES = ("primary", "secondary", "arbiter")
WRITE_TIMEOUT_S = (1, 3600)  # MongoDB's wtimeout is an int32 of ms (~24.8 days); sane is far below
VERSIONS = ("7.0", "8.0")
WRITE_CONCERNS = ("majority", "1")
MAX_VOTING = 7
MAX_MEMBERS = 50
DEFAULT_NAME = "dbrs"
DEFAULT_PORT = 27017

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


@dataclass(frozen=True)
class Member:
    name: str
    host: str
    port: int
    role: str
    mongod: tuple = ()  # (dotted option, value) pairs from [members.mongod], over the spec's [mongod]

    @property
    def arbiter(self):
        return self.role == "arbiter"

    @property
    def data_bearing(self):
        return not self.arbiter

    @property
    def priority(self):
        """The primary-role member prefers to lead; an arbiter can never."""
        return {"primary": 2, "secondary": 1, "arbiter": 0}[self.role]

    @property
    def address(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class Cluster:
    name: str = DEFAULT_NAME
    mongodb_version: str = "8.0"
    allow: tuple = ()
    write_concern: str = "majority"
    write_timeout: str = "10s"
    oplog_size_mb: int = 0  # 0: MongoDB's default (5% of the disk, 990 MB to 50 GB)
    generation: int = 1     # raised by every spec change, so a host refuses an older bundle

    @property
    def write_timeout_ms(self):
        return int(timespan_seconds(self.write_timeout) * 1000)


@dataclass(frozen=True)
class Backup:
    dir: str = "/var/backups/dbrs"
    schedule: str = "daily"
    retention_days: int = 7
    keep_min: int = 3
    oplog_every: str = "5min"
    encrypt: bool = True
    verify_schedule: str = "weekly"


@dataclass(frozen=True)
class Alerts:
    command: tuple = ()
    webhook: str = ""
    textfile_dir: str = "/var/lib/prometheus/node-exporter"


@dataclass(frozen=True)
class MongoExpress:
    enabled: bool = False
    port: int = 8081


@dataclass(frozen=True)
class Spec:
    cluster: Cluster = field(default_factory=Cluster)
    members: tuple = ()
    backup: Backup = field(default_factory=Backup)
    alerts: Alerts = field(default_factory=Alerts)
    mongo_express: MongoExpress = field(default_factory=MongoExpress)
    mongod: tuple = ()  # (dotted option, value) pairs from [mongod], for every member
    offsite: tuple = ()     # of Offsite; see the [[offsite]] block below

    def member(self, name):
        for m in self.members:
            if m.name == name:
                return m
        raise InputError("--member", f"no member named {name!r}", "known: " + ", ".join(self.names()))

    def names(self):
        return [m.name for m in self.members]

    def by_role(self, role):
        return [m for m in self.members if m.role == role]

    @property
    def primary(self):
        return self.by_role("primary")[0]

    @property
    def voting(self):
        return list(self.members)


# ----------------------------------------------------------------- schema

def _str(v):
    return isinstance(v, str)


def _int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _bool(v):
    return isinstance(v, bool)


def _strlist(v):
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


# table -> key -> (type check, type name, per-value validator or None)
SCHEMA = {
    "cluster": {
        "name": (_str, "a string", "setname"),
        "mongodb_version": (_str, 'a string like "8.0"', "version"),
        "allow": (_strlist, "a list of CIDR strings", "cidrs"),
        "write_concern": (lambda v: _str(v) or _int(v), '"majority" or "1"', "write_concern"),
        "write_timeout": (_str, 'a time span like "10s"', "write_timeout"),
        "oplog_size_mb": (_int, "an integer (MB)", "oplog_size"),
        "generation": (_int, "an integer", "positive"),
    },
    "members": {
        "name": (_str, "a string", "member_name"),
        "host": (_str, "a hostname or IP address", "host"),
        "port": (_int, "an integer", "port"),
        "role": (_str, "one of " + ", ".join(ROLES), "role"),
        "mongod": (lambda v: isinstance(v, dict), "a table of mongod.conf options", None),
    },
    "backup": {
        "dir": (_str, "an absolute path", "backup_dir"),
        "schedule": (_str, 'a systemd calendar expression like "daily"', "calendar"),
        "retention_days": (_int, "an integer", "positive"),
        "keep_min": (_int, "an integer", "positive"),
        "oplog_every": (_str, 'a time span like "5min"', "oplog_span"),
        "encrypt": (_bool, "true or false", None),
        "verify_schedule": (_str, 'a systemd calendar expression like "weekly"', "calendar"),
    },
    "alerts": {
        "command": (_strlist, 'an argv list like ["/usr/local/bin/page", "--db"]', "command"),
        "webhook": (_str, "an http(s) URL", "url"),
        "textfile_dir": (_str, "an absolute path", "abspath"),
    },
    "mongo_express": {
        "enabled": (_bool, "true or false", None),
        "port": (_int, "an integer", "port"),
    },
}
REQUIRED_MEMBER_KEYS = ("name", "host", "role")
# [mongod] is free-form: its keys are checked against mongod's own option table (mongod_options).
TOP_LEVEL = list(SCHEMA) + ["mongod", "offsite"]


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


def _check(kind, value):
    """Return None when `value` is fine for `kind`, else (problem, fix)."""
    if kind == "setname":
        if not _SETNAME_RE.match(value):
            return f"{value!r} is not a usable replica set name", "use letters, digits, '-' or '_', at most 64"
    elif kind == "version":
        if value not in VERSIONS:
            return f"MongoDB {value!r} is not supported", "use one of " + ", ".join(VERSIONS)
    elif kind == "cidrs":
        for c in value:
            try:
                ipaddress.ip_network(c, strict=True)
            except ValueError:
                try:
                    net = ipaddress.ip_network(c, strict=False)
                    return f"{c!r} has host bits set", f"did you mean {net}?"
                except ValueError:
                    return f"{c!r} is not a CIDR network", 'write it like "10.0.0.0/24"'
    elif kind == "write_concern":
        if str(value) not in WRITE_CONCERNS:
            return f"{value!r} is not supported", 'use "majority" (no acknowledged write lost) or "1"'
    elif kind in ("timespan", "oplog_span", "write_timeout"):
        try:
            secs = timespan_seconds(value)
        except ValueError:
            return f"{value!r} is not a time span", 'write it like "10s", "5min" or "1h"'
        if kind == "write_timeout" and not WRITE_TIMEOUT_S[0] <= secs <= WRITE_TIMEOUT_S[1]:
            return (f"{value!r} is outside 1s .. 1h", "below a second majority writes fail on every replication "
                    "hiccup; beyond an hour a write that cannot commit just hangs, which this setting is there to stop")
        if kind == "oplog_span" and secs < 60:
            return f"{value!r} is shorter than a minute", "slices more often than every minute only add load"
        if secs <= 0:
            return f"{value!r} is not positive", 'write it like "10s"'
    elif kind == "member_name":
        if not _NAME_RE.match(value):
            return f"{value!r} is not a safe member name", "use lowercase letters, digits, '-' or '_', starting with a letter or digit, at most 40"
    elif kind == "host":
        if not is_host(value):
            return f"{value!r} is not a hostname or IP address", 'use e.g. "10.0.0.11" or "db1.example.com"'
        return _host_address_problem(value)
    elif kind == "backup_dir":
        return _check("abspath", value) or _backup_dir_problem(value)
    elif kind == "port":
        if not 1 <= value <= 65535:
            return f"{value} is out of range", "use a port from 1 to 65535"
    elif kind == "role":
        if value not in ROLES:
            return f"{value!r} is not a role", "use one of " + ", ".join(ROLES)
    elif kind == "abspath":
        if not PurePosixPath(value).is_absolute() or ".." in PurePosixPath(value).parts:
            return f"{value!r} is not an absolute path", "start it with / and leave out '..'"
        if not _UNIT_PATH_RE.match(value):
            return (f"{value!r} has characters systemd units cannot take unquoted (space, %, quotes, \\)",
                    "use letters, digits and . _ - + @ : / only")
    elif kind == "positive":
        if value < 1:
            return f"{value} is less than 1", "use 1 or more"
    elif kind == "calendar":
        if not is_calendar(value):
            return f"{value!r} is not a systemd calendar expression", 'use e.g. "daily", "*-*-* 02:30:00" or "Mon *-*-* 03:00" (see systemd.time(7))'
    elif kind == "command":
        if value and not PurePosixPath(value[0]).is_absolute():
            return f"{value[0]!r} is not an absolute program path", "give the program's full path first"
    elif kind == "oplog_size":
        from .mongod_options import oplog_size_problem

        return oplog_size_problem(value)
    elif kind == "url":
        if value and not re.match(r"^https?://[^\s/]+", value):
            return f"{value!r} is not an http(s) URL", "write it like https://hooks.example.com/dbrs"
    return None


def _host_address_problem(value):
    """An IP that names no one host: the any-address, or a link-local one (needs a zone, changes)."""
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return None
    if addr.is_unspecified:
        return f"{value} is the any-address, not a host", "use the member's own IP address or hostname"
    if addr.is_link_local:
        return (f"{value} is link-local: it needs an interface zone and is not routed",
                "use a global or unique-local (fd00::/8) address")
    return None


# dbrs' own trees: backups inside them would share their fate and their modes.
_OWN_DIRS = ("/etc/dbrs", "/var/lib/dbrs", "/var/log/dbrs", "/opt/dbrs")
# Backups here would be volatile, hidden by ProtectHome=, or chmod'ed 0700 into breaking the system.
_SYSTEM_TREES = ("/etc", "/usr", "/boot", "/proc", "/sys", "/dev", "/run", "/bin", "/sbin",
                 "/lib", "/lib32", "/lib64", "/libx32", "/home", "/root", "/snap", "/lost+found")
_SYSTEM_DIRS = ("/", "/var", "/srv", "/mnt", "/media", "/opt", "/tmp", "/var/tmp")


def _backup_dir_problem(value):
    """`backup.dir` gets mode 0700 and root as owner: it must be a folder of its own, not the system's."""
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
    return None


def is_host(value):
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return bool(_HOSTNAME_RE.match(value)) and not value.replace(".", "").isdigit()


def _unknown(path, key, known):
    close = difflib.get_close_matches(key, known, n=1)
    fix = f"did you mean {close[0]!r}?" if close else "remove it; known keys: " + ", ".join(known)
    return InputError(f"{path}.{key}" if path else key, "unknown key", fix)


def _table(path, raw, schema, errors):
    out = {}
    for key, value in raw.items():
        if key not in schema:
            errors.append(_unknown(path, key, list(schema)))
            continue
        typecheck, typename, kind = schema[key]
        where = f"{path}.{key}"
        if not typecheck(value):
            errors.append(InputError(where, f"{value!r} is not {typename}", f"write {typename}"))
            continue
        problem = _check(kind, value) if kind else None
        if problem:
            errors.append(InputError(where, *problem))
            continue
        if isinstance(value, list):
            value = tuple(value)
        if key == "write_concern":
            value = str(value)
        out[key] = value
    return out


def parse(raw, source="cluster.toml"):
    """Turn a TOML document (a dict) into a Spec, or raise SpecErrors listing every problem."""
    errors = []
    for key in raw:
        if key not in TOP_LEVEL:
            errors.append(_unknown("", key, TOP_LEVEL))
    tables = {}
    for name in ("cluster", "backup", "alerts", "mongo_express"):
        value = raw.get(name, {})
        if not isinstance(value, dict):
            errors.append(InputError(name, "is not a table", f"write it as [{name}]"))
            value = {}
        tables[name] = _table(name, value, SCHEMA[name], errors)

    members = []
    raw_members = raw.get("members", [])
    if not isinstance(raw_members, list) or not all(isinstance(m, dict) for m in raw_members):
        errors.append(InputError("members", "is not a list of tables", "write each member as [[members]]"))
        raw_members = []
    for i, rm in enumerate(raw_members):
        path = f"members[{i}]"
        values = _table(path, rm, SCHEMA["members"], errors)
        missing = [k for k in REQUIRED_MEMBER_KEYS if k not in rm]
        for k in missing:
            errors.append(InputError(f"{path}.{k}", "is missing", f"add {k} = ..."))
        if len(values) == len(rm) and not missing:
            values.setdefault("port", DEFAULT_PORT)
            if "mongod" in values:
                values["mongod"] = _options(values["mongod"])
            members.append(Member(**values))

    version = tables["cluster"].get("mongodb_version", Cluster.mongodb_version)
    mongod = raw.get("mongod", {})
    if version in VERSIONS:
        errors.extend(_check_mongod(mongod, version, "mongod"))
        for i, rm in enumerate(raw_members):
            if "mongod" in rm:
                errors.extend(_check_mongod(rm["mongod"], version, f"members[{i}].mongod"))
    offsite = parse_offsite(raw.get("offsite", []), errors)

    if not errors:
        errors.extend(_cross_checks(members))
        errors.extend(_express_port(tables["mongo_express"], members))
    if errors:
        raise SpecErrors(errors)
    return Spec(
        cluster=Cluster(**tables["cluster"]),
        members=tuple(members),
        backup=Backup(**tables["backup"]),
        alerts=Alerts(**tables["alerts"]),
        mongo_express=MongoExpress(**tables["mongo_express"]),
        mongod=_options(mongod),
        offsite=offsite,
    )


def _check_mongod(raw, version, where):
    from . import mongod_options

    return mongod_options.check(raw, version, where)


def _options(raw):
    """A checked [mongod] table as sorted, hashable (dotted key, value) pairs."""
    from .mongod_options import flatten

    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in flatten(raw).items()))


def _cross_checks(members):
    errors = []
    if not members:
        return [InputError("members", "no members", "add [[members]] for the primary, secondary and arbiter")]
    if len(members) > MAX_MEMBERS:
        errors.append(InputError("members", f"{len(members)} members", f"a replica set has at most {MAX_MEMBERS}"))
    seen_names, seen_addr = {}, {}
    for i, m in enumerate(members):
        if m.name in seen_names:
            errors.append(InputError(f"members[{i}].name", f"{m.name!r} is used twice", "give every member its own name"))
        seen_names[m.name] = i
        key = (m.host.lower(), m.port)
        if key in seen_addr:
            errors.append(InputError(
                f"members[{i}].port", f"{m.address} is already members[{seen_addr[key]}]",
                "members on one host need different ports"))
        seen_addr[key] = i
    primaries = [m for m in members if m.role == "primary"]
    if len(primaries) != 1:
        errors.append(InputError("members", f"{len(primaries)} members have role = \"primary\"", "exactly one must"))
    arbiters = [m for m in members if m.role == "arbiter"]
    if len(arbiters) > 1:
        errors.append(InputError("members", f"{len(arbiters)} arbiters", "use at most one arbiter (MongoDB advises against more)"))
    voting = len(members)
    if voting > MAX_VOTING:
        errors.append(InputError("members", f"{voting} voting members", f"a replica set has at most {MAX_VOTING}"))
    elif voting % 2 == 0:
        fix = "remove the arbiter" if arbiters else "add an arbiter or another secondary"
        errors.append(InputError("members", f"{voting} voting members is an even number, so a split can leave no majority", fix))
    return errors


def _express_port(express, members):
    """Mongo Express listens on the primary-role member's host: its port must be free of mongod there."""
    if not express.get("enabled"):
        return []
    port = express.get("port", MongoExpress.port)
    hosts = {m.host.lower() for m in members if m.role == "primary"}
    for i, m in enumerate(members):
        if m.host.lower() in hosts and m.port == port:
            return [InputError("mongo_express.port", f"{port} is the port of members[{i}] ({m.name}) on the same host",
                               "pick another port, e.g. 8081")]
    return []


def load(path):
    """Read and validate the spec at `path` (a real filesystem path)."""
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise InputError("--config", f"{path} does not exist", "run `dbrs init` first or pass --config FILE") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(str(path), f"not valid TOML: {e}", "fix the syntax at that line") from None
    except UnicodeDecodeError as e:
        raise InputError(str(path), f"is not UTF-8 (byte {e.start})", "save it as UTF-8 text") from None
    except OSError as e:
        raise InputError(str(path), f"cannot be read: {e.strerror}", "check the path and its permissions") from None
    return parse(raw, str(path))


def loads(text):
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InputError("cluster.toml", f"not valid TOML: {e}", "fix the syntax at that line") from None
    return parse(raw)


def single_host(name=DEFAULT_NAME, **cluster):
    """All three PSA members on this host, ports 27017-27019: the try-it-out layout."""
    members = (
        Member("mongod1", "127.0.0.1", 27017, "primary"),
        Member("mongod2", "127.0.0.1", 27018, "secondary"),
        Member("mongod3", "127.0.0.1", 27019, "arbiter"),
    )
    return Spec(cluster=Cluster(name=name, **cluster), members=members)


def with_members(spec, members):
    return replace(spec, members=tuple(members))


# ------------------------------------------------------------ [[offsite]]
# Off-site targets (issue 12). Kept in one block: the keys depend on `type`,
# so the per-table schema is chosen after `type` is known. Credentials are
# never here: they live in secrets.toml under [offsite.NAME].

OFFSITE_TYPES = ("sftp", "s3", "path")
_BWLIMIT_RE = re.compile(r"^(off|\d+(\.\d+)?[BKMGTP]?)$")
_SIZE_RE = re.compile(r"^\d+[KMG]$")
_HOST_KEY_RE = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+=*$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REMOTE_PATH_RE = re.compile(r"^[A-Za-z0-9._+@/-]+$")


@dataclass(frozen=True)
class Offsite:
    """One rclone remote that receives a copy of every backup and slice, already encrypted."""

    name: str
    type: str
    bwlimit: str = "off"            # rclone --bwlimit: "10M" = 10 MiB/s
    max_lag: str = "1h"             # status/--check warn when a copy waits longer
    retention_days: int = 0         # 0 = [backup] retention_days
    keep_min: int = 0               # 0 = [backup] keep_min
    path: str = ""                  # sftp: folder on the server; path: the mounted folder
    host: str = ""
    port: int = 22
    user: str = ""
    host_key: str = ""              # pinned: "ssh-ed25519 AAAA..." (ssh-keyscan -t ed25519 HOST)
    bucket: str = ""
    prefix: str = ""
    region: str = ""
    endpoint: str = ""
    storage_class: str = ""
    chunk_size: str = ""            # S3 multipart part size and cutoff, e.g. "16M"

    @property
    def max_lag_s(self):
        return timespan_seconds(self.max_lag)


_OFFSITE_COMMON = {
    "name": (_str, "a string", "member_name"),
    "type": (_str, "one of " + ", ".join(OFFSITE_TYPES), "offsite_type"),
    "bwlimit": (_str, 'a bandwidth like "10M" (MiB/s) or "off"', "bwlimit"),
    "max_lag": (_str, 'a time span like "1h"', "timespan"),
    "retention_days": (_int, "an integer", "positive"),
    "keep_min": (_int, "an integer", "positive"),
}
OFFSITE_SCHEMA = {
    "sftp": {
        "host": (_str, "a hostname or IP address", "host"),
        "port": (_int, "an integer", "port"),
        "user": (_str, "a user name", "offsite_user"),
        "path": (_str, "a folder on the server", "remote_path"),
        "host_key": (_str, 'the server\'s public host key, "ssh-ed25519 AAAA..."', "host_key"),
    },
    "s3": {
        "bucket": (_str, "an S3 bucket name", "bucket"),
        "prefix": (_str, "a folder inside the bucket", "remote_path"),
        "region": (_str, 'a region like "eu-central-1"', None),
        "endpoint": (_str, "an http(s) URL", "url"),
        "storage_class": (_str, 'an S3 storage class like "STANDARD_IA"', None),
        "chunk_size": (_str, 'a size like "16M"', "chunk_size"),
    },
    "path": {
        "path": (_str, "an absolute path", "abspath"),
    },
}
OFFSITE_REQUIRED = {"sftp": ("host", "user", "path", "host_key"), "s3": ("bucket",), "path": ("path",)}


def _check_offsite(kind, value):
    if kind == "offsite_type" and value not in OFFSITE_TYPES:
        return f"{value!r} is not a target type", "use one of " + ", ".join(OFFSITE_TYPES)
    if kind == "bwlimit" and not _BWLIMIT_RE.match(value):
        return f"{value!r} is not a bandwidth", 'write it like "10M" (MiB/s), "512K" or "off"'
    if kind == "chunk_size" and not _SIZE_RE.match(value):
        return f"{value!r} is not a size", 'write it like "16M" (at least 5M for S3)'
    if kind == "offsite_user" and not re.match(r"^[a-z_][a-z0-9_-]{0,31}$", value):
        return f"{value!r} is not a user name", "use lowercase letters, digits, '-' or '_'"
    if kind == "remote_path" and value and (not _REMOTE_PATH_RE.match(value) or ".." in value.split("/")):
        return f"{value!r} is not a plain folder path", "use letters, digits and . _ - + @ / only, no '..'"
    if kind == "host_key" and not _HOST_KEY_RE.match(value.strip()):
        return ("is not a public host key line",
                "paste the key type and key from `ssh-keyscan -t ed25519 HOST` (e.g. \"ssh-ed25519 AAAA...\")")
    if kind == "bucket" and not _BUCKET_RE.match(value):
        return f"{value!r} is not an S3 bucket name", "use 3-63 lowercase letters, digits, '.' or '-'"
    return _check(kind, value)


def parse_offsite(raw, errors):
    """The [[offsite]] tables as Offsite objects; problems go to `errors` as offsite[i].key."""
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        errors.append(InputError("offsite", "is not a list of tables", "write each target as [[offsite]]"))
        return ()
    out, seen = [], {}
    for i, table in enumerate(raw):
        where = f"offsite[{i}]"
        kind = table.get("type")
        extra = OFFSITE_SCHEMA.get(kind, {}) if isinstance(kind, str) else {}
        schema = {**_OFFSITE_COMMON, **extra}
        values, n_errors = {}, len(errors)
        for key, value in table.items():
            if key not in schema:
                errors.append(_unknown(where, key, list(schema)))
                continue
            typecheck, typename, check = schema[key]
            if not typecheck(value):
                errors.append(InputError(f"{where}.{key}", f"{value!r} is not {typename}", f"write {typename}"))
                continue
            problem = _check_offsite(check, value) if check else None
            if problem:
                errors.append(InputError(f"{where}.{key}", *problem))
                continue
            values[key] = value.strip() if key == "host_key" else value
        for key in ("name", "type") + OFFSITE_REQUIRED.get(kind, ()):
            if key not in table:
                errors.append(InputError(f"{where}.{key}", "is missing", f"add {key} = ..."))
        name = table.get("name")
        if isinstance(name, str):
            if name in seen:
                errors.append(InputError(f"{where}.name", f"{name!r} is used twice", "give every target its own name"))
            seen[name] = i
        if len(errors) == n_errors:
            out.append(Offsite(**values))
    return tuple(out)
