"""The `[mongod]` table of the spec: mongod.conf options beyond what dbrs decides, checked against mongod's own schema.

A wrong key or value makes mongod refuse to start, which on a running set
means a member down after `dbrs-install`. So every key is checked before
anything changes, against a table generated from MongoDB's IDL option
definitions (`installer/data/mongod-options-VERSION.json`, made by
tools/mongod_options/generate.py), and options dbrs itself sets are refused
with the spec field that controls them. Pure apart from reading that table.
"""

from __future__ import annotations

import difflib
import json
import math
from functools import lru_cache
from importlib import resources

from .errors import InputError

# Options dbrs sets from the spec or its own layout -> where the operator changes them instead.
OWNED = {
    "net.port": "members[].port",
    "net.bindIp": "members[].host (dbrs binds loopback and the member's own address)",
    "net.bindIpAll": "members[].host and cluster.allow (the firewall decides who gets in)",
    "net.ipv6": "members[].host (an IPv6 address turns it on)",
    "replication.replSetName": "cluster.name",
    "replication.replSet": "cluster.name",
    "replication.oplogSizeMB": "cluster.oplog_size_mb",
    "security.keyFile": "the keyfile dbrs init writes (/etc/dbrs/keyfile)",
    "security.authorization": "nothing: dbrs always runs with authorization enabled",
    "security.clusterAuthMode": "nothing: members authenticate with the dbrs keyfile",
    "security.transitionToAuth": "nothing: members authenticate with the dbrs keyfile",
    "security.enableLocalhostAuthBypass": "nothing: dbrs bootstraps users through the localhost exception",
    "storage.dbPath": "nothing: data lives in /var/lib/dbrs/MEMBER",
    "storage.engine": "nothing: dbrs runs WiredTiger",
    "storage.queryableBackupMode": "nothing: dbrs restore handles restores",
    "setParameter.enableLocalhostAuthBypass": "nothing: dbrs bootstraps users through the localhost exception",
}
OWNED_PREFIXES = {
    "systemLog.": "nothing: dbrs logs to /var/log/dbrs/MEMBER and rotates with logrotate",
    "processManagement.": "nothing: systemd runs mongod (dbrs-mongod@MEMBER.service)",
}
# Option families whose IDL files are not in the generated table yet: say so instead of "not an option".
NOT_COVERED = ("net.tls.", "net.ssl.", "security.sasl.", "security.ldap.", "security.kmip.", "security.enableEncryption",
               "security.encryption", "sharding.", "auditLog.", "storage.inMemory.", "cloud.")
# String options whose IDL entry validates through a C++ callback: the values those callbacks accept.
_COMPRESSORS = ("none", "snappy", "zlib", "zstd")
VALUES = {
    "storage.wiredTiger.engineConfig.journalCompressor": _COMPRESSORS,  # validateWiredTigerCompressor
    "storage.wiredTiger.collectionConfig.blockCompressor": _COMPRESSORS,
    "operationProfiling.mode": ("off", "slowOp", "all"),               # validateOperationProfilingModeSetting
}
NETWORK_COMPRESSORS = ("snappy", "zlib", "zstd")  # net.compression.compressors: a comma list, or "disabled"
MIN_OPLOG_MB, MAX_OPLOG_MB = 990, 1024 * 1024 * 1024  # replSetResizeOplog: 990 MB .. 1 PB
# IDL `Int` is a C++ int: mongod refuses a value outside 32 bits at startup; the generator marks 64-bit
# ones ("bits": 64, from `Long` / long long / size_t).
_INT_BOUNDS = {32: (-2**31, 2**31 - 1), 64: (-2**63, 2**63 - 1)}
_TYPE_NAMES = {"bool": "true or false", "int": "an integer", "float": "a number", "string": "a string",
               "string_list": "a list of strings", "any": "a string, number or boolean"}


@lru_cache(maxsize=None)
def table(version):
    """The generated option table for MongoDB `version` ("7.0", "8.0")."""
    data = resources.files("installer.data").joinpath(f"mongod-options-{version}.json").read_text()
    return json.loads(data)


def flatten(raw, prefix=""):
    """{"net": {"compression": {"compressors": "zstd"}}} -> {"net.compression.compressors": "zstd"}."""
    out = {}
    for key, value in raw.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            if not value:
                out[path] = value
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def _type_ok(kind, value):
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "string":
        return isinstance(value, str)
    if kind == "string_list":
        return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
    return isinstance(value, (bool, int, float, str))


def _value_problem(key, value, entry):
    kind = entry["type"]
    if not _type_ok(kind, value):
        return f"{value!r} is not {_TYPE_NAMES.get(kind, kind)}", f"write {_TYPE_NAMES.get(kind, kind)}"
    for text in ([value] if isinstance(value, str) else value if isinstance(value, list) else []):
        if any(ord(c) < 32 for c in text) or len(text) > 4096:
            return "has control characters or is over 4096 characters", "write it on one line"
    if key in VALUES and value not in VALUES[key]:
        return f"{value!r} is not one of {', '.join(VALUES[key])}", f"use one of {', '.join(VALUES[key])}"
    if key == "net.compression.compressors" and value != "disabled":
        bad = [c for c in value.split(",") if c.strip() not in NETWORK_COMPRESSORS]
        if bad or not value.strip():
            return (f"{value!r} names an unknown compressor", 'write a comma list of snappy, zlib, zstd, or "disabled"')
    if kind == "int":
        low, high = _INT_BOUNDS[entry.get("bits", 32)]
        if not low <= value <= high:
            return (f"{value} does not fit mongod's {entry.get('bits', 32)}-bit integer",
                    f"use {max(low, entry.get('min', low))} to {min(high, entry.get('max', high))}")
    if "min" in entry and value < entry["min"]:
        return f"{value} is below mongod's minimum {entry['min']}", f"use {entry['min']} or more"
    if "max" in entry and value > entry["max"]:
        return f"{value} is above mongod's maximum {entry['max']}", f"use {entry['max']} or less"
    return None


def _unknown(where, key, known, version, what):
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
    fix = f"did you mean {close[0]}?" if close else "see https://www.mongodb.com/docs/manual/reference/configuration-options/"
    return InputError(where, f"not a {what} of MongoDB {version}", fix)


def check(raw, version, where="mongod"):
    """Every problem of one `[mongod]` table as InputErrors (empty when mongod would accept it all)."""
    if not isinstance(raw, dict):
        return [InputError(where, "is not a table", "write it as [mongod] with keys like net.compression.compressors")]
    schema = table(version)
    options, params = schema["options"], schema["server_parameters"]
    errors = []
    for key, value in flatten(raw).items():
        at = f"{where}.{key}"
        if isinstance(value, dict):
            errors.append(InputError(at, "is an empty table", "remove it or give it keys"))
            continue
        owner = OWNED.get(key) or next((v for p, v in OWNED_PREFIXES.items() if key.startswith(p)), None)
        if owner:
            errors.append(InputError(at, "is set by dbrs", f"use {owner}" if not owner.startswith("nothing") else owner))
            continue
        if key.startswith("setParameter."):
            name = key[len("setParameter."):]
            if "." in name:
                errors.append(InputError(at, "a server parameter name has no dots", "write setParameter.NAME = value"))
                continue
            entry = params.get(name)
            if entry is None:
                close = difflib.get_close_matches(name, list(params), n=1, cutoff=0.75)
                # the table holds the startup parameters of the IDL files it was generated from, not all of
                # MongoDB's: say so rather than call a real parameter unknown
                errors.append(InputError(at, f"is not among the {len(params)} startup server parameters dbrs "
                                         f"checks for MongoDB {version}",
                                         f"did you mean {close[0]}?" if close else
                                         "dbrs refuses what it cannot check, since a wrong one stops mongod; "
                                         "leave it out (the table is in installer/data)"))
                continue
        elif key in schema["deprecated"]:
            errors.append(InputError(at, "is a deprecated name", f"write {schema['deprecated'][key]}"))
            continue
        else:
            entry = options.get(key)
            if entry is None or entry["type"] == "map":
                if any(key.startswith(p) for p in NOT_COVERED):
                    errors.append(InputError(at, "belongs to a family of options dbrs does not check yet",
                                             "leave it out; dbrs' option table does not cover it"))
                else:
                    errors.append(_unknown(at, key, [k for k in options if k != "setParameter"], version,
                                           "mongod option"))
                continue
        problem = _value_problem(key, value, entry)
        if problem:
            errors.append(InputError(at, *problem))
    return errors


def oplog_size_problem(value):
    """None, or (problem, fix) for cluster.oplog_size_mb (the bounds replSetResizeOplog enforces)."""
    if not MIN_OPLOG_MB <= value <= MAX_OPLOG_MB:
        return (f"{value} MB is outside what MongoDB accepts",
                f"use {MIN_OPLOG_MB} to {MAX_OPLOG_MB} MB; it bounds how far back point-in-time restore reaches")
    return None


def nest(flat):
    """{"a.b": 1, "a.c": 2} -> {"a": {"b": 1, "c": 2}}: the shape mongod.conf's YAML takes."""
    out = {}
    for key, value in flat.items():
        node = out
        parts = key.split(".") if not key.startswith("setParameter.") else ["setParameter", key[len("setParameter."):]]
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def merged(spec_options, member_options):
    """The member's effective extra options: the cluster-wide table, then its own on top."""
    out = dict(spec_options)
    out.update(dict(member_options))
    return out
