"""The field table of cluster.toml: one row per key, with its type, default, check and help.

Everything else is generated from these rows: the parser and the defaults of
the spec objects (spec.py), the commented lines `dbrs init` writes (through
templates/dbrs/cluster.toml.j2), the `dbrs init` flag of a field, and the
spec reference in the README. A check takes the value (already of the
right type) and returns None or (problem, fix).
"""

from __future__ import annotations

from dataclasses import dataclass

from .render import toml_value
from .spec_checks import (
    CLUSTER_AUTHS, OFFSITE_TYPES, ROLES, TLS_MODES, is_bool, is_int, is_str, is_strlist, is_table, check_abspath,
    check_backup_dir, check_bucket, check_calendar, check_chunk_size, check_cidrs, check_command, check_host,
    check_host_key, check_member_name, check_offsite_user, check_oplog_size, check_oplog_span, check_port,
    check_positive, check_remote_path, check_setname, check_timespan, check_url, check_bwlimit, check_version,
    check_write_concern, check_write_timeout, one_of,
)

DEFAULT_NAME = "dbrs"
DEFAULT_PORT = 27017
REQUIRED = object()  # the default of a key that must be given


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


# ------------------------------------------------------------------ table

F = Field
_CALENDAR = 'a systemd calendar expression like "{}"'

# Keys outside any table (none yet: every key belongs to a section).
TOP = ()

SECTIONS = {
    "cluster": (
        F("name", is_str, "a string", DEFAULT_NAME, check_setname, pad=17, note="replica set name", flag="--name"),
        F("mongodb_version", is_str, 'a string like "8.0"', "8.0", check_version, pad=7, note="7.0 or 8.0",
          flag="--mongodb-version", help="MongoDB release; the OS tuning follows it"),
        F("allow", is_strlist, "a list of CIDR strings", (), check_cidrs, pad=3,
          note="client networks let through the firewall", flag="--allow", convert=tuple),
        F("write_concern", lambda v: is_str(v) or is_int(v), '"majority" or "1"', "majority", check_write_concern, pad=4,
          note='"majority": no acknowledged write is lost; "1": faster, can lose writes on failover',
          flag="--write-concern", convert=str),
        F("write_timeout", is_str, 'a time span like "10s"', "10s", check_write_timeout, pad=6,
          note="majority writes fail after this instead of hanging while a member is down"),
        F("oplog_size_mb", is_int, "an integer (MB)", 0, check_oplog_size,
          "oplog size in MB; 0: MongoDB's default (5% of the disk, 990 MB to 50 GB)"),
        F("generation", is_int, "an integer", 1, check_positive,
          "the spec's version, raised by every `dbrs member` change; a host refuses a spec or bundle older than its own"),
        F("tls", is_str, 'one of "off", "preferred", "required"', "off", one_of(TLS_MODES, "a TLS mode"),
          "TLS between members and clients, with the cluster's own CA: required (`dbrs init`'s choice for a new "
          "cluster), preferred, or off (a spec without the key: it was written before dbrs had TLS)", pad=14,
          note='"required", "preferred" or "off": TLS with the cluster CA (`dbrs tls status`)'),
        F("cluster_auth", is_str, 'one of "keyfile", "x509"', "keyfile", one_of(CLUSTER_AUTHS, "a cluster auth mode"),
          "how members prove themselves to each other: keyfile, or x509 member certificates (needs tls on; set it before the members first start: a running set is not switched)"),
    ),
    "members": (
        F("name", is_str, "a string", REQUIRED, check_member_name, pad=0, help="member name, unique in the set"),
        F("host", is_str, "a hostname or IP address", REQUIRED, check_host, pad=0,
          help="address the other members and clients reach it at"),
        F("port", is_int, "an integer", DEFAULT_PORT, check_port, pad=0, help="mongod port"),
        F("role", is_str, "one of " + ", ".join(ROLES), REQUIRED, one_of(ROLES, "a role"), pad=0,
          help="primary (priority 2), secondary or arbiter"),
        F("mongod", is_table, "a table of mongod.conf options", (), None,
          "mongod.conf options for this member only, over the spec's [mongod]"),
    ),
    "backup": (
        F("dir", is_str, "an absolute path", "/var/backups/dbrs", check_backup_dir, pad=0, flag="--backup-dir",
          help="where backups and oplog slices go (root, 0700; a folder of its own)"),
        F("schedule", is_str, _CALENDAR.format("daily"), "daily", check_calendar, pad=10,
          note="systemd calendar expression for full backups"),
        F("retention_days", is_int, "an integer", 7, check_positive, pad=0,
          help="full backups older than this go (but see keep_min)"),
        F("keep_min", is_int, "an integer", 3, check_positive, pad=17,
          note="newest good backups always kept, whatever their age"),
        F("oplog_every", is_str, 'a time span like "5min"', "5min", check_oplog_span, pad=8,
          note="oplog slices for point-in-time restore"),
        F("encrypt", is_bool, "true or false", True, None, pad=16, note="AES-256-GCM with backup.key"),
        F("verify_schedule", is_str, _CALENDAR.format("weekly"), "weekly", check_calendar, pad=2, note="restore drill"),
    ),
    "alerts": (
        F("command", is_strlist, 'an argv list like ["/usr/local/bin/page", "--db"]', (), check_command, pad=17,
          note="argv run when a dbrs unit fails", convert=tuple),
        F("webhook", is_str, "an http(s) URL", "", check_url, pad=17,
          note="URL that gets a JSON POST when a dbrs unit fails"),
        F("textfile_dir", is_str, "an absolute path", "/var/lib/prometheus/node-exporter", check_abspath, pad=0,
          help="node-exporter textfile folder for the dbrs metrics"),
    ),
    "mongo_express": (
        F("enabled", is_bool, "true or false", False, None, pad=0, help="run Mongo Express on the primary's host"),
        F("port", is_int, "an integer", 8081, check_port, pad=19, note="always bound to 127.0.0.1"),
    ),
}

# [[offsite]]: the keys depend on `type`, so the table is chosen once `type` is known.
# Credentials are never here: they live in secrets.toml under [offsite.NAME].
OFFSITE_COMMON = (
    F("name", is_str, "a string", REQUIRED, check_member_name, "target name"),
    F("type", is_str, "one of " + ", ".join(OFFSITE_TYPES), REQUIRED, one_of(OFFSITE_TYPES, "a target type"),
      "sftp, s3 or path"),
    F("bwlimit", is_str, 'a bandwidth like "10M" (MiB/s) or "off"', "off", check_bwlimit, "rclone --bwlimit"),
    F("max_lag", is_str, 'a time span like "1h"', "1h", check_timespan, "status warns when a copy waits longer"),
    F("retention_days", is_int, "an integer", 0, check_positive, "0: [backup] retention_days"),
    F("keep_min", is_int, "an integer", 0, check_positive, "0: [backup] keep_min"),
)
OFFSITE_BY_TYPE = {
    "sftp": (
        F("host", is_str, "a hostname or IP address", REQUIRED, check_host, "SFTP server"),
        F("port", is_int, "an integer", 22, check_port, "SSH port"),
        F("user", is_str, "a user name", REQUIRED, check_offsite_user, "SSH user"),
        F("path", is_str, "a folder on the server", REQUIRED, check_remote_path, "folder on the server"),
        F("host_key", is_str, 'the server\'s public host key, "ssh-ed25519 AAAA..."', REQUIRED, check_host_key,
          "pinned host key (ssh-keyscan -t ed25519 HOST)", convert=str.strip),
    ),
    "s3": (
        F("bucket", is_str, "an S3 bucket name", REQUIRED, check_bucket, "bucket"),
        F("prefix", is_str, "a folder inside the bucket", "", check_remote_path, "folder inside the bucket"),
        F("region", is_str, 'a region like "eu-central-1"', "", None, "region"),
        F("endpoint", is_str, "an http(s) URL", "", check_url, "endpoint of an S3-compatible store"),
        F("storage_class", is_str, 'an S3 storage class like "STANDARD_IA"', "", None, "storage class"),
        F("chunk_size", is_str, 'a size like "16M"', "", check_chunk_size, "multipart part size and cutoff"),
    ),
    "path": (
        F("path", is_str, "an absolute path", REQUIRED, check_abspath, "the mounted folder"),
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
    out = []
    for f in SECTIONS[section]:
        if f.pad is None:
            continue
        note = " " * f.pad + "# " + f.note if f.note else ""
        out.append(f"{f.name} = {toml_value(getattr(values, f.name))}{note}")
    return out


def _shown_default(f):
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
