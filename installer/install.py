"""The install action: spec -> host facts -> plan -> (show | apply) -> replica set.

Everything that decides is called from here but lives in pure modules;
this module only sequences the steps and gathers the result the CLI prints.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from . import cluster, departed, fsutil, generation, locks, machine, paths, pki, tls
from .host.apply import apply
from .host import facts, firewall, plan, preflight, registry
from .host.items import File
from .host.items import summary as summarize
from .errors import InputError
from .paths import INSTALL_LOCK
from .host.target import Target


@dataclass
class Options:
    role: Optional[str] = None
    member: Optional[str] = None
    config: Optional[str] = None
    bundle: Optional[str] = None
    passphrase_file: Optional[str] = None
    root: Optional[str] = None
    dry_run: bool = False
    packages: bool = True
    packages_from: Optional[str] = None
    start: bool = True
    replace_secrets: bool = False
    purge_data: bool = False


@dataclass
class Result:
    target: Target
    origin: str
    checks: list = field(default_factory=list)
    changes: list = field(default_factory=list)
    diffs: list = field(default_factory=list)
    steps: list = field(default_factory=list)   # after-apply steps: (name, status, detail)
    copied_from: Optional[str] = None           # --config FILE that is not /etc/dbrs/cluster.toml: copied there

    @property
    def summary(self):
        """Items and after-apply steps alike: a run whose bootstrap initiated the set did change something."""
        s = summarize(self.changes)
        for _step, status, _detail in self.steps:
            if status in s:
                s[status] += 1
        return s


def check_options(opts):
    if opts.member is not None and not opts.member.strip():
        raise InputError("--member", "is empty", "name a member of the spec, or leave --member out")
    if opts.passphrase_file and not opts.bundle:
        raise InputError("--passphrase-file", "only makes sense with --bundle", "add --bundle FILE or drop it")
    if opts.bundle and opts.config:
        raise InputError("--bundle", "and --config both name a spec", "use one of them")
    if opts.role and opts.member:
        raise InputError("--member", "and --role both pick members", "use one of them")
    if opts.packages_from:
        if not opts.packages:
            raise InputError("--packages-from", "contradicts --no-packages", "use one of them")
        p = Path(opts.packages_from)
        if not p.is_dir():
            raise InputError("--packages-from", f"{p} is not a directory", "point it at a folder of .deb files")
        if not any(p.glob("*.deb")):
            raise InputError("--packages-from", f"{p} holds no .deb files", "put the MongoDB .debs there")
    if opts.root is not None and not os.path.isabs(opts.root):
        opts.root = os.path.abspath(opts.root)


def load_cluster(opts):
    """Where the spec and secrets come from: --bundle, --config, /etc/dbrs, or a new default."""
    if opts.bundle:
        return cluster.from_bundle(opts.bundle, opts.passphrase_file)
    if opts.config:
        return cluster.from_spec(opts.config)
    spec_path = fsutil.under(opts.root, paths.SPEC)
    if spec_path.exists():
        return cluster.from_spec(spec_path)
    return cluster.default()


def select(spec, opts, local):
    """The members this run installs, and every member sharing their host."""
    if opts.member:
        chosen = [spec.member(opts.member)]
    elif opts.role == "all":
        chosen = list(spec.members)
    elif opts.role:
        chosen = spec.by_role(opts.role)
        if not chosen:
            raise InputError("--role", f"the spec has no {opts.role} member", "pick a role the spec lists, or all")
    else:
        chosen = [m for m in spec.members if machine.is_local(m.host, local)]
        if not chosen:
            raise InputError("--role", "no member of the spec lives on this host",
                             "pass --role primary|secondary|arbiter|all or --member NAME")
    if opts.root is None and (opts.member or opts.role):
        flag = "--member" if opts.member else "--role"
        for m in chosen:
            if not machine.is_local(m.host, local):
                raise InputError(flag, f"member {m.name} lives on {m.host}, which is not this host",
                                 f"run dbrs-install on {m.host}, or fix members[{spec.members.index(m)}].host")
    hosts = {m.host.lower() for m in chosen}
    host_members = [m for m in spec.members if m.host.lower() in hosts]
    return tuple(chosen), tuple(host_members)


def check_reachable(spec, members, addresses):
    """A member named by a hostname that resolves only to loopback here (Debian's 127.0.1.1
    line in /etc/hosts) would bind loopback only: the other hosts could never reach it."""
    if len({m.host.lower() for m in spec.members}) == 1:
        return
    for m in members:
        ips = addresses.get(m.host, ())
        if ips and all(ipaddress.ip_address(ip).is_loopback for ip in ips):
            raise InputError(f"members[{spec.members.index(m)}].host",
                             f"{m.host} resolves only to {', '.join(ips)} on this host, so the other members could "
                             "not reach this mongod", "put this host's own address for it in /etc/hosts, or use the IP")


# What ProtectHome=yes hides from every dbrs unit (systemd.exec(5)).
HIDDEN_FROM_UNITS = ("/home", "/root", "/run/user")


def hidden_from_units(paths):
    """The first of `paths` (the dbrs script, its interpreter, the package) that the units' sandbox
    cannot see, or None. Pure: the caller passes real paths."""
    for p in paths:
        if p and any(p == h or p.startswith(h + "/") for h in HIDDEN_FROM_UNITS):
            return p
    return None


def check_units_can_run(dbrs_bin, package_dir):
    """Refuse before anything changes when the units would get a dbrs they cannot see: a venv in a
    home folder makes every timer fail with 203/EXEC while the install looks fine."""
    paths = [dbrs_bin, os.path.realpath(dbrs_bin) if dbrs_bin else None, package_dir]
    if dbrs_bin:
        try:
            with open(dbrs_bin, "rb") as f:
                first = f.readline(512)
            if first.startswith(b"#!"):
                paths.append(first[2:].split()[0].decode(errors="replace"))
        except (OSError, IndexError):
            pass
    hidden = hidden_from_units(paths)
    if hidden:
        raise InputError("dbrs", f"{hidden} is in a home folder, which the units' sandbox (ProtectHome=yes) hides: "
                         "the backup and oplog timers would fail with 203/EXEC",
                         "install dbrs outside /home, /root and /run/user, e.g. `sudo python3 -m venv /opt/dbrs && "
                         "sudo /opt/dbrs/bin/pip install . && sudo /opt/dbrs/bin/dbrs-install`, or the .deb; "
                         "nothing was changed")


def running_members(target):
    """This host's members whose mongod runs now (none under --root: nothing runs in a staging tree)."""
    return facts.running_members() if target.live else []


def build_target(opts, files):
    live = opts.root is None
    local = machine.this_host() if live else (set(), {"localhost"})
    if live:
        check_units_can_run(facts.dbrs_bin(), os.path.dirname(os.path.realpath(__file__)))
    members, host_members = select(files.spec, opts, local)
    addresses = {m.host: machine.resolve(m.host) for m in files.spec.members}
    if live:
        check_reachable(files.spec, members, addresses)
    with_packages = live and opts.packages
    target = Target(
        spec=files.spec,
        members=members,
        host_members=host_members,
        spec_path=str(paths.SPEC),
        addresses=addresses,
        os=facts.os_release() if with_packages and not opts.packages_from else None,
        in_container=facts.in_container() if live else False,
        packages=with_packages,
        debs_from=opts.packages_from if with_packages else None,
        start=opts.start,
        live=live,
        memory_bytes=facts.memory_total() if live else None,
        dbrs_bin=facts.dbrs_bin() if live else None,
        tls_step=tls.read_step(fsutil.under(opts.root, paths.TLS_STEP)),
    )
    from dataclasses import replace

    secret_files = [*cluster.secret_items(paths.ETC, files, live)] + member_tls_items(opts, files, members, addresses, live,
                                                                                      mode=target.tls_mode)
    return replace(target, secret_files=tuple(secret_files), secrets=files.secrets)


def cluster_ca(opts, files):
    """The CA that signs this host's member certificates: the bundle's, else the one next to the spec.

    Only the init host keeps ca.key; a host installed from the bundle has ca.pem alone, which is all a re-run
    needs while its certificates are good (the key is asked for when one must be issued)."""
    if files.ca is not None:
        return files.ca
    key, cert = fsutil.under(opts.root, paths.CA_KEY), fsutil.under(opts.root, paths.CA_CERT)
    try:
        cert_pem = cert.read_bytes()
    except FileNotFoundError:
        step = tls.read_step(fsutil.under(opts.root, paths.TLS_STEP))
        said = f'the rolling step is {step}' if step else f'is "{files.spec.cluster.tls}"'
        raise InputError("cluster.tls", f"{said} but this host has no cluster CA ({paths.CA_CERT}, {paths.CA_KEY})",
                         "install with --bundle from `dbrs init` (it carries the CA), or set tls = \"off\"") from None
    except OSError as e:
        raise InputError(str(cert), f"cannot be read: {e.strerror}", "run as root") from None
    problem = tls.ca_problem(cert_pem)
    if problem:
        raise InputError(str(cert), problem, tls.MISSING_CA_FIX + "; nothing was changed")
    try:
        return pki.Issued(key.read_bytes(), cert_pem)
    except FileNotFoundError:
        return pki.Issued(b"", cert_pem)
    except OSError as e:
        raise InputError(str(key), f"cannot be read: {e.strerror}", "run as root") from None


def member_tls_items(opts, files, members, addresses, live, now=None, mode=None):
    """Certificate files for this host's members when the spec turns TLS on; a certificate is re-issued
    only when `tls.member_certificate` says the one on disk will not do (so a re-run changes nothing)."""
    import time

    mode = tls.server_mode(files.spec.cluster.tls) if mode is None else mode
    if mode == "disabled":
        return []
    ca = cluster_ca(opts, files)
    now = time.time() if now is None else now
    issued = {}
    for m in members:
        path = fsutil.under(opts.root, paths.member_cert(m.name))
        try:
            current = path.read_bytes()
        except FileNotFoundError:
            current = None
        except OSError as e:
            raise InputError(str(path), f"cannot be read: {e.strerror}", "run as root") from None
        try:
            new, _why = tls.member_certificate(ca, files.spec.cluster.name, m.host, addresses.get(m.host, ()), current, now)
        except pki.CAError as e:
            if not ca.key_pem:
                raise InputError(f"member {m.name}", f"needs a new certificate and this host has no {paths.CA_KEY}",
                                 "install with --bundle from `dbrs init` (it carries the CA); nothing was changed") from None
            raise InputError("cluster CA", str(e), "install with --bundle from `dbrs init` (it carries the CA); "
                             "nothing was changed") from None
        if new is not None:
            issued[m.name] = new
    return cluster.member_tls_items(paths.ETC, issued, ca.cert_pem, live)


def run(opts, bootstrap=None, progress=None, on_plan=None, on_item=None, preview=None, the_set=None):
    """Do the whole install; `bootstrap(target)` runs after apply on the primary host and returns its steps.

    `the_set` is what a live run asks of the members (`replset.local`: TLS for
    the clients, whether the set still lists a departed member, the oplog
    size), handed in by the CLI so the host side never loads the client code.
    Without it nothing talks to the set: a departed member that runs is left
    running, and the oplog size is not touched.

    `on_plan(result)` sees the plan before anything changes and `on_item(change)`
    each item once it is settled, so a caller can stream the report. On a
    real host one run at a time (an flock): two runs planning from the same
    facts would fight over the same files and units.
    """
    check_options(opts)
    if opts.root is None and not opts.dry_run:
        os.makedirs(os.path.dirname(INSTALL_LOCK), exist_ok=True)
        with locks.held(INSTALL_LOCK, "dbrs-install"):
            return _run(opts, bootstrap, progress, on_plan, on_item, preview, the_set)
    return _run(opts, bootstrap, progress, on_plan, on_item, preview, the_set)


def _run(opts, bootstrap, progress, on_plan=None, on_item=None, preview=None, the_set=None):
    files = load_cluster(opts)
    if files.origin != "default":
        flag = "--bundle" if opts.bundle else "--config" if opts.config else "cluster.generation"
        generation.check(files.spec, fsutil.under(opts.root, paths.SPEC), flag, fsutil.under(opts.root, paths.GENERATION))
    if leaves_host(opts, files):
        return _leave(opts, files, on_plan, on_item, the_set)
    target = build_target(opts, files)
    if target.live and the_set:
        the_set.use_tls(files.spec, paths.ETC, fsutil.under(opts.root, paths.TLS_STEP))   # the bootstrap and oplog steps below talk to the members
    result = Result(target, files.origin)
    if target.tls_step is not None and target.tls_step != tls.server_mode(files.spec.cluster.tls):
        result.steps.append(("tls mode", "note", f"the members run {target.tls_step} from {paths.TLS_STEP} (a `dbrs tls "
                             f"enable` roll under way), not the spec's {tls.server_mode(files.spec.cluster.tls)}; "
                             "finish it with `dbrs tls enable`, or delete the file if no roll is under way"))
    if opts.config and Path(opts.config).resolve() != fsutil.under(opts.root, paths.SPEC).resolve():
        result.copied_from = opts.config

    if target.live:
        ports = {m.port for m in target.members}
        result.checks = preflight.evaluate(preflight.read(paths.member_data(target.members[0].name), ports,
                                                          [m.name for m in target.members]), target)

    result.checks += firewall.checks(target.spec)
    items = plan.desired(target)
    current = registry.gather(items, opts.root, target.live)
    result.changes = registry.compare(items, current, chown=target.live)
    running = running_members(target)
    # another cluster's secrets first: that is the mistake to name, whatever its TLS mode
    result.changes = cluster.guard_replacement(result.changes, running,
                                               opts.replace_secrets, cluster.utc_stamp(), "--bundle" if opts.bundle else "--config")
    tls.guard_transitions(result.changes, running, {str(target.etc / m.name / "mongod.conf"): m.name
                                                    for m in target.members})

    if on_plan:
        on_plan(result)
    result.steps += departed.run(target, opts.root, opts.dry_run or preflight.failed(result.checks), opts.purge_data,
                                 running, *((the_set.listed,) if the_set else ()))
    if preflight.failed(result.checks) or opts.dry_run:
        result.diffs = diffs(result.changes)
        if opts.dry_run and preview and target.live and target.start and target.has_primary:
            result.steps += preview(target)
        return result

    apply(result.changes, root=opts.root, live=target.live, progress=progress, done=on_item)
    generation.record(opts.root, paths.GENERATION, files.spec.cluster.generation)
    if target.tls_step is not None and target.tls_step == tls.server_mode(files.spec.cluster.tls):
        # The roll has arrived where the spec is: from now on the spec alone decides, so a later edit of cluster.tls
        # is not silently overridden by a left-over step.
        fsutil.under(opts.root, paths.TLS_STEP).unlink(missing_ok=True)
    if bootstrap and target.live and target.start and target.has_primary:
        result.steps += bootstrap(target)
    if the_set:
        result.steps += the_set.oplog_steps(target, files.secrets)
    return result


def leaves_host(opts, files):
    """True on a host whose every member left the spec (the arbiter's host after PSA -> PSS) while dbrs
    members, or their kept data, are still on it: the run prunes them instead of refusing "no member lives here"."""
    if opts.root is not None or opts.member or opts.role or files.origin == "default":
        return False
    local = machine.this_host()
    if any(machine.is_local(m.host, local) for m in files.spec.members):
        return False
    return bool(departed.found(None, True, facts.running_members()))   # a re-run after the pruning: 0 changed


def _leave(opts, files, on_plan=None, on_item=None, the_set=None):
    """Prune this host's departed members and record the new spec (its generation refuses a stale bundle
    later, and a plain re-run no longer reinstalls the members that left)."""
    from dataclasses import replace

    target = Target(spec=files.spec, members=(), host_members=(), start=opts.start)
    target = replace(target, secret_files=tuple(cluster.secret_items(paths.ETC, files, True)), secrets=files.secrets)
    result = Result(target, files.origin)
    items = list(target.secret_files)
    result.changes = registry.compare(items, registry.gather(items, None, True), chown=True)
    running = facts.running_members()
    result.changes = cluster.guard_replacement(result.changes, running, opts.replace_secrets,
                                               cluster.utc_stamp(), "--bundle" if opts.bundle else "--config")
    if on_plan:
        on_plan(result)
    listed = {}
    if the_set:
        the_set.use_tls(files.spec, paths.ETC)   # departed asks the set whether it still counts on a member
        listed = {"listed": the_set.listed}
    result.steps += departed.run(target, None, opts.dry_run, opts.purge_data, running, **listed)
    if opts.dry_run:
        result.diffs = diffs(result.changes)
        return result
    apply(result.changes, root=None, live=True, done=on_item)
    generation.record(None, paths.GENERATION, files.spec.cluster.generation)
    return result


def diffs(changes):
    """Unified diffs of the files that would change; secrets are never shown."""
    out = []
    for c in changes:
        item = c.item
        if not c.changed or not isinstance(item, File):
            continue
        if item.secret:
            out.append(f"--- {item.path}\n+++ {item.path}\n(secret, {len(item.content)} bytes, not shown; {', '.join(c.reasons)})\n")
            continue
        before = c.before.content.decode(errors="replace") if c.before and c.before.exists else ""
        after = item.content.decode(errors="replace")
        text = "".join(difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True),
            fromfile=item.path if before else "/dev/null", tofile=item.path))
        if not text:
            text = f"--- {item.path}\n+++ {item.path}\n({', '.join(c.reasons)})\n"
        out.append(text)
    return out
