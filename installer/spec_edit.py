"""Changing the members of cluster.toml in place: add, remove, replace, and a higher generation each time.

The file is the operator's (comments, [mongod] options, [[offsite]]
targets), so it is edited as text, line by line, never re-rendered. Every
edit is then parsed and compared with the spec it was meant to produce;
a file laid out in a way these edits do not understand is refused before
anything is written, with the change to make by hand.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from . import generation as generationmod
from . import machine
from . import secrets as secretsmod
from . import spec as specmod
from .cluster import parse_member_flag
from .errors import DbrsError, InputError, SpecErrors
from .fsutil import write_file
from .paths import siblings
from .spec_checks import check_host, check_member_name, check_port
from .spec_fields import DEFAULT_PORT

_HEADER = re.compile(r"^\s*\[")
_MEMBER_HEADER = re.compile(r"^\s*\[\[\s*members\s*\]\]\s*(#.*)?$")
_SUBTABLE = re.compile(r"^\s*\[\s*members\s*\.")
_CLUSTER_HEADER = re.compile(r"^\s*\[\s*cluster\s*\]\s*(#.*)?$")
_GENERATION = re.compile(r"^\s*generation\s*=")


@dataclass
class Outcome:
    what: str
    generation: int
    bundle: str | None
    next_steps: list


def _blocks(lines):
    """(start, end) line ranges of each [[members]] table, its [members.x] subtables included."""
    out, start = [], None
    for i, line in enumerate(lines):
        if _HEADER.match(line) and not _SUBTABLE.match(line):
            if start is not None:
                out.append((start, i))
                start = None
            if _MEMBER_HEADER.match(line):
                start = i
    if start is not None:
        out.append((start, len(lines)))
    return out


def _block_of(lines, name):
    key = re.compile(r"^\s*name\s*=\s*[\"']" + re.escape(name) + r"[\"']\s*(#.*)?$")
    for start, end in _blocks(lines):
        if any(key.match(line) for line in lines[start:end]):
            return start, end
    return None


def set_generation(text, n):
    """`text` with [cluster] generation = n (replaced, or added under the [cluster] header)."""
    lines = text.splitlines(keepends=True)
    head = next((i for i, line in enumerate(lines) if _CLUSTER_HEADER.match(line)), None)
    if head is None:
        return None
    end = next((i for i in range(head + 1, len(lines)) if _HEADER.match(lines[i])), len(lines))
    for i in range(head + 1, end):
        if _GENERATION.match(lines[i]):
            lines[i] = f"generation = {n}                  # raised by every member change\n"
            return "".join(lines)
    lines.insert(head + 1, f"generation = {n}                  # raised by every member change\n")
    return "".join(lines)


_TLS = re.compile(r"^\s*tls\s*=")


def setting_tls(value):
    """The edit that writes [cluster] tls = VALUE (`dbrs tls enable` once the whole set runs that mode)."""
    def edit(text, spec):
        lines = text.splitlines(keepends=True)
        head = next((i for i, line in enumerate(lines) if _CLUSTER_HEADER.match(line)), None)
        if head is None:
            raise _by_hand(f'set tls = "{value}" under [cluster]')
        end = next((i for i in range(head + 1, len(lines)) if _HEADER.match(lines[i])), len(lines))
        line = f'tls = "{value}"                    # written by dbrs tls enable once every member ran it\n'
        at = next((i for i in range(head + 1, end) if _TLS.match(lines[i])), None)
        if at is None:
            lines.insert(head + 1, line)
        else:
            lines[at] = line
        expected = replace(spec, cluster=replace(spec.cluster, tls=value))
        return "".join(lines), expected, f'cluster.tls = "{value}"', []
    return edit


def _member_text(m):
    return f'\n[[members]]\nname = "{m.name}"\nhost = "{m.host}"\nport = {m.port}\nrole = "{m.role}"\n'


def _host_port(value, port):
    """HOST[:PORT] from --host; `port` when none is given."""
    host, given = parse_member_flag(value, "--host")
    explicit = "]:" in value if value.startswith("[") else value.count(":") == 1
    return host, given if explicit else port


def _checked(name, host, port):
    """The raw arguments, checked before any of them goes into the file's text (a quote or a newline in a name
    or host would otherwise become TOML): exit 2 naming the argument."""
    for flag, value, check in (("NAME", name, check_member_name), ("--host", host, check_host),
                               ("--host", port, check_port)):
        problem = check(value)
        if problem:
            raise InputError(flag, *problem)
    if not machine.resolve(host):
        # every host would then refuse the spec (its firewall names members by address), after the generation rose
        raise InputError("--host", f"{host} does not resolve here",
                         "add it to DNS or /etc/hosts first, or give its IP address; nothing was changed")


def adding(new_members, role, remove=()):
    """The edit of `dbrs member add`: (name, HOST[:PORT]) pairs, optionally removing members in the same
    generation (PSA -> PSS)."""
    def edit(text, spec):
        added = []
        for name, host in new_members:
            if name in [m.name for m in added]:
                raise InputError(name, "is named twice", "name each new member once")
            if name in spec.names():
                raise InputError(name, "is already a member of the spec", "pick another name, or `dbrs member replace`")
            h, port = _host_port(host, DEFAULT_PORT)
            _checked(name, h, port)
            added.append(specmod.Member(name, h, port, role))
        if remove:
            text, spec = removing(*remove)(text, spec)[:2]
        text = text if text.endswith("\n") else text + "\n"
        what = ", ".join(f"added {role} {m.name} ({m.address})" for m in added) + "".join(
            f", removed {g}" for g in remove)
        steps = [f"copy bundle.dbrs to {m.host} and run `sudo dbrs-install --bundle bundle.dbrs --member {m.name}` there"
                 for m in added]
        steps += ["run `sudo dbrs-install --bundle bundle.dbrs` on every other member host (the firewall lets "
                  f"{', '.join(m.name for m in added)} in)",
                  "then `sudo dbrs reconfigure --dry-run` and `sudo dbrs reconfigure` on a member host"]
        return (text + "".join(_member_text(m) for m in added), replace(spec, members=tuple(list(spec.members) + added)),
                what, steps)
    return edit


def removing(*names):
    """The edit of `dbrs member remove`."""
    def edit(text, spec):
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise InputError(twice[0], "is named twice", "name each member to remove once")
        gone = [_known(spec, name) for name in names]
        lines = text.splitlines(keepends=True)
        for m in gone:
            if m.role == "primary":
                raise InputError(m.name, "has role \"primary\"",
                                 "give another member role = \"primary\" in the spec first")
            span = _block_of(lines, m.name)
            if span is None:
                raise _by_hand(f"remove the [[members]] table of {m.name}")
            start, end = span
            while start > 0 and not lines[start - 1].strip():
                start -= 1
            del lines[start:end]
        what = ", ".join(f"removed {m.name} ({m.address})" for m in gone)
        steps = ["run `sudo dbrs reconfigure --dry-run` and `sudo dbrs reconfigure` on a member host (the set lets "
                 f"{', '.join(names)} go)",
                 "then `sudo dbrs-install --bundle bundle.dbrs` on every member host (the firewall closes for "
                 f"{'them' if len(gone) > 1 else 'it'}); units and data on "
                 f"{', '.join(sorted({m.host for m in gone}))} are left as they are"]
        kept = [m for m in spec.members if m.name not in names]
        return "".join(lines), replace(spec, members=tuple(kept)), what, steps
    return edit


def replacing(name, host):
    """The edit of `dbrs member replace`: same name and role, new host (and port, if given)."""
    def edit(text, spec):
        old = _known(spec, name)
        h, port = _host_port(host, old.port)
        _checked(name, h, port)
        new = replace(old, host=h, port=port)
        if new.address == old.address:
            raise InputError("--host", f"{new.address} is where {name} is already", "name the new host")
        lines = text.splitlines(keepends=True)
        span = _block_of(lines, name)
        host_re, port_re = re.compile(r"^\s*host\s*="), re.compile(r"^\s*port\s*=")
        hits = [i for i in range(*span) if host_re.match(lines[i])] if span else []
        if len(hits) != 1:
            raise _by_hand(f"set host = \"{h}\" in the [[members]] table of {name}")
        lines[hits[0]] = f'host = "{h}"\n'
        ports = [i for i in range(*span) if port_re.match(lines[i])]
        if ports:
            lines[ports[0]] = f"port = {port}\n"
        elif port != DEFAULT_PORT:
            lines.insert(hits[0] + 1, f"port = {port}\n")
        members = [new if m.name == name else m for m in spec.members]
        what = f"{name} moves from {old.address} to {new.address}"
        steps = [f"copy bundle.dbrs to {h} and run `sudo dbrs-install --bundle bundle.dbrs --member {name}` there",
                 "run `sudo dbrs-install --bundle bundle.dbrs` on every other member host (the firewall follows)",
                 "then `sudo dbrs reconfigure` on a member host: "
                 f"{name} resyncs on {h} and votes again once it has caught up"]
        return "".join(lines), replace(spec, members=tuple(members)), what, steps
    return edit


def _known(spec, name):
    for m in spec.members:
        if m.name == name:
            return m
    raise InputError(name, "is not a member of the spec", "known: " + ", ".join(spec.names()))


def _by_hand(change):
    return DbrsError(f"cluster.toml is not laid out the way `dbrs member` edits it; nothing was changed: {change} "
                     "by hand and raise [cluster] generation by one")


def _passphrase(config, passphrase_file):
    """The passphrase, once it has opened the bundle that is there (before anything is written)."""
    if passphrase_file is None:
        return None
    passphrase = secretsmod.read_passphrase(passphrase_file)
    path = siblings(config)["bundle"]
    try:
        secretsmod.open_bundle(Path(path).read_bytes(), passphrase, where=str(path))
    except OSError as e:
        raise InputError("--passphrase-file", f"{path}: {e.strerror}", "re-seal on the host that holds bundle.dbrs") from None
    return passphrase


def change(config, passphrase_file, edit):
    """Edit the spec at `config` with `edit(text, spec) -> (text, expected spec, what, next steps)`, raise its
    generation, check the result parses to exactly the expected spec, write it, and re-seal the bundle."""
    spec = specmod.load(config)
    sec = secretsmod.load(config, keyfile=True)
    passphrase = _passphrase(config, passphrase_file)
    text = Path(config).read_text()
    new_text, expected, what, steps = edit(text, spec)
    generation = spec.cluster.generation + 1
    new_text = set_generation(new_text, generation)
    if new_text is None:
        raise _by_hand(f"make the change ({what})")
    try:
        got = specmod.loads(new_text)
    except SpecErrors as e:
        raise SpecErrors(e.errors + _hints(e)) from None
    expected = replace(expected, cluster=replace(expected.cluster, generation=generation))
    if got != expected:
        raise _by_hand(f"make the change ({what})")
    mode = os.stat(config).st_mode & 0o777
    write_file("/", os.path.abspath(config), new_text.encode(), mode, chown=False)
    bundle = None
    if passphrase is not None:
        bundle = generationmod.reseal(config, passphrase, sec) or str(siblings(config)["bundle"])
    return Outcome(what, generation, bundle, steps)


def _hints(err):
    if any("even number" in e.problem for e in err.errors):
        return [InputError("dbrs member", "keeps the voter count odd in every change",
                           "PSA -> PSS: `dbrs member add NAME --host H --remove ARBITER`; two at once: "
                           "`dbrs member add A B --host HA --host HB` or `dbrs member remove A B`")]
    return []


def reseal(config, passphrase_file):
    """Seal bundle.dbrs again with this host's spec and secrets; None when it holds them already."""
    specmod.load(config)
    return generationmod.reseal(config, secretsmod.read_passphrase(passphrase_file))
