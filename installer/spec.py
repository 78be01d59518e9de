"""The cluster spec: `/etc/dbrs/cluster.toml` read into typed, validated objects.

The field table in spec_fields is the single description of the file: the
spec objects, their defaults, the parser and its error messages all come
from it. Validation collects every problem with its dotted field path before
reporting, so an operator fixes the file in one go; rules that span fields
run after the per-field pass.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, make_dataclass

try:
    import tomllib
except ImportError:  # Python 3.10 (Ubuntu 22.04)
    import tomli as tomllib

from . import mongod_options
from . import spec_fields as fields
from .errors import InputError, SpecErrors
from .spec_checks import VERSIONS, timespan_seconds
from .spec_fields import DEFAULT_NAME, REQUIRED

MAX_VOTING = 7
MAX_MEMBERS = 50


def _record(name, table, defaults=None):
    """A frozen dataclass with one attribute per field, defaults from the table.

    A field keeps its default only when every field after it has one too, so
    the positional order stays the table's (Member(name, host, port, role)).
    """
    defaults = fields.defaults(table) if defaults is None else defaults
    out, trailing = [], True
    for f in reversed(table):
        trailing = trailing and f.name in defaults
        out.append((f.name, object, field(default=defaults[f.name])) if trailing else (f.name, object))
    cls = make_dataclass(name, list(reversed(out)), frozen=True)
    cls.__module__ = __name__
    return cls


class Member(_record("Member", fields.SECTIONS["members"])):
    """One [[members]] table; `mongod` holds (dotted option, value) pairs over the spec's [mongod]."""

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


class Cluster(_record("Cluster", fields.SECTIONS["cluster"])):
    @property
    def write_timeout_ms(self):
        return int(timespan_seconds(self.write_timeout) * 1000)


Backup = _record("Backup", fields.SECTIONS["backup"])
Alerts = _record("Alerts", fields.SECTIONS["alerts"])
MongoExpress = _record("MongoExpress", fields.SECTIONS["mongo_express"])


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


SECTIONS = ("cluster", "backup", "alerts", "mongo_express")
# [mongod] is free-form: its keys are checked against mongod's own option table (mongod_options).
TOP_LEVEL = [f.name for f in fields.TOP] + list(fields.SECTIONS) + ["mongod", "offsite"]


def _unknown(path, key, known):
    close = difflib.get_close_matches(key, known, n=1)
    fix = f"did you mean {close[0]!r}?" if close else "remove it; known keys: " + ", ".join(known)
    return InputError(f"{path}.{key}" if path else key, "unknown key", fix)


def _table(path, raw, table, errors):
    """The checked values of one table (as stored); every problem goes to `errors` as path.key."""
    by_name = fields.by_name(table)
    out = {}
    for key, value in raw.items():
        f = by_name.get(key)
        if f is None:
            errors.append(_unknown(path, key, list(by_name)))
            continue
        where = f"{path}.{key}" if path else key
        if not f.accepts(value):
            errors.append(InputError(where, f"{value!r} is not {f.typename}", f"write {f.typename}"))
            continue
        problem = f.check(value) if f.check else None
        if problem:
            errors.append(InputError(where, *problem))
            continue
        out[key] = f.convert(value) if f.convert else value
    return out


def parse(raw, source="cluster.toml"):
    """Turn a TOML document (a dict) into a Spec, or raise SpecErrors listing every problem."""
    errors = []
    for key in raw:
        if key not in TOP_LEVEL:
            errors.append(_unknown("", key, TOP_LEVEL))
    top = _table("", {f.name: raw[f.name] for f in fields.TOP if f.name in raw}, fields.TOP, errors)
    tables = {}
    for name in SECTIONS:
        value = raw.get(name, {})
        if not isinstance(value, dict):
            errors.append(InputError(name, "is not a table", f"write it as [{name}]"))
            value = {}
        tables[name] = _table(name, value, fields.SECTIONS[name], errors)

    members = []
    raw_members = raw.get("members", [])
    if not isinstance(raw_members, list) or not all(isinstance(m, dict) for m in raw_members):
        errors.append(InputError("members", "is not a list of tables", "write each member as [[members]]"))
        raw_members = []
    for i, rm in enumerate(raw_members):
        path = f"members[{i}]"
        values = _table(path, rm, fields.SECTIONS["members"], errors)
        missing = [k for k in fields.required(fields.SECTIONS["members"]) if k not in rm]
        for k in missing:
            errors.append(InputError(f"{path}.{k}", "is missing", f"add {k} = ..."))
        if len(values) == len(rm) and not missing:
            if "mongod" in values:
                values["mongod"] = _options(values["mongod"])
            members.append(Member(**{**fields.defaults(fields.SECTIONS["members"]), **values}))

    version = tables["cluster"].get("mongodb_version", Cluster.mongodb_version)
    mongod = raw.get("mongod", {})
    if version in VERSIONS:
        errors.extend(mongod_options.check(mongod, version, "mongod"))
        for i, rm in enumerate(raw_members):
            if isinstance(rm.get("mongod"), dict):  # a non-table is the field table's error already
                errors.extend(mongod_options.check(rm["mongod"], version, f"members[{i}].mongod"))
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
        **top,
    )


def _options(raw):
    """A checked [mongod] table as sorted, hashable (dotted key, value) pairs."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in mongod_options.flatten(raw).items()))


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
    port = express.get("port", fields.defaults(fields.SECTIONS["mongo_express"])["port"])
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


# ------------------------------------------------------------ [[offsite]]
# Off-site targets (issue 12): the keys depend on `type`, so the table is
# chosen once `type` is known (spec_fields.OFFSITE_BY_TYPE).


def _offsite_defaults():
    """Every key of every type, so each Offsite has them all: a key its type does not use stays empty."""
    out = fields.defaults(fields.OFFSITE_COMMON)
    for table in fields.OFFSITE_BY_TYPE.values():
        for f in table:
            out.setdefault(f.name, "" if f.default is REQUIRED else f.default)
    return out


_OFFSITE_ALL = fields.OFFSITE_COMMON + tuple(
    {f.name: f for table in fields.OFFSITE_BY_TYPE.values() for f in table}.values())


class Offsite(_record("Offsite", _OFFSITE_ALL, _offsite_defaults())):
    """One rclone remote that receives a copy of every backup and slice, already encrypted."""

    @property
    def max_lag_s(self):
        return timespan_seconds(self.max_lag)


def parse_offsite(raw, errors):
    """The [[offsite]] tables as Offsite objects; problems go to `errors` as offsite[i].key."""
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        errors.append(InputError("offsite", "is not a list of tables", "write each target as [[offsite]]"))
        return ()
    out, seen = [], {}
    for i, table in enumerate(raw):
        where = f"offsite[{i}]"
        kind = table.get("type")
        extra = fields.OFFSITE_BY_TYPE.get(kind, ()) if isinstance(kind, str) else ()
        n_errors = len(errors)
        values = _table(where, table, fields.OFFSITE_COMMON + extra, errors)
        for key in fields.required(fields.OFFSITE_COMMON + extra):
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
