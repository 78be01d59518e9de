"""Doing `dbrs tls enable` on this host: read each member's TLS mode, let `rotation.enable_step` choose the next
mode and this host's restarts, then move this host's step file and restart its members one at a time.

The mode a member runs is what it says (getParameter tlsMode). The step
file (paths.TLS_STEP) is what this host's mongod.conf files and clients
follow until the whole set has arrived; only then is cluster.tls written into
the spec. Every run does at most one mode; a run cut short is resumed by
running it again (a member already at the step is skipped).
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

from . import install, paths, rotation, spec_edit, tls
from .errors import DbrsError, InputError
from .fsutil import write_file
from .host import registry
from .host.apply import apply
from .host.items import File
from .host.mongod import conf
from .replset import connection, operations
from .rotate_run import Host as RotateHost, _ready, member_states, wait_healthy

SPEC_OF = {v: k for k, v in tls.SPEC_MODES.items()}
TARGETS = {"off": "disabled", "preferred": "preferTLS", "required": "requireTLS"}


class Host(RotateHost):
    """This host's side for the enable: the step file, each member's mongod.conf and certificate, the units."""

    def __init__(self, etc, step_path=paths.TLS_STEP, install_opts=None):
        super().__init__(etc)
        self.step_path = Path(step_path)
        self.install_opts = install_opts

    def step(self):
        return tls.read_step(self.step_path)

    def write_step(self, mode):
        write_file(None, str(self.step_path), f"{mode}\n".encode(), 0o644, chown=True)

    def local_mode(self, name):
        """The mode this host's member started with (its mongod.conf), None when the file changed since."""
        conf = self.etc / name / "mongod.conf"
        started = self.started_at(name)
        if not started or self.changed_at(conf) > started:
            return None
        try:
            return tls.conf_modes(conf.read_text())[0]
        except OSError:
            return None

    def clear_step(self):
        self.step_path.unlink(missing_ok=True)

    def prepare(self, name):
        """Write the member's certificate (when it needs one) and its mongod.conf at the step: what the restart loads."""
        opts = self.install_opts or install.Options(member=name)
        files = install.load_cluster(opts)
        target = install.build_target(install.Options(member=name, root=opts.root), files)
        member = files.spec.member(name)
        items = [i._replace(notify=()) for i in target.secret_files
                 if i.path.endswith(("/ca.pem", f"/{name}/member.pem"))]
        items.append(File(str(target.etc / name / "mongod.conf"), conf(target, member), 0o644))
        apply(registry.compare(items, registry.gather(items, opts.root, target.live), chown=target.live),
              root=opts.root, live=target.live)


def member_mode(spec, secrets_, m, host=None, up=True):
    """net.tls.mode the member runs, from getParameter tlsMode (authenticated as dbrs' admin). An arbiter holds no
    users, so real mongod refuses it the command: this host's arbiter is read from the mongod.conf it started with,
    another host's from the wire (tls.mode_from_probe)."""
    try:
        with connection.connect_member(m, "admin", secrets_.password("admin")) as c:
            got = c.command({"getParameter": 1, "tlsMode": 1})
    except DbrsError:
        if not m.arbiter:
            raise
        mode = host.local_mode(m.name) if host is not None and host.is_local(m.name) else None
        mode = mode or tls.mode_from_probe(*probe(m), up=up)
        if mode is None:
            raise DbrsError(f"{m.name} ({m.address}) answers neither plaintext nor TLS; see `dbrs status`, "
                            "then run `dbrs tls enable` again") from None
        return mode
    mode = got.get("tlsMode")
    if mode not in tls.SERVER_MODES:
        raise DbrsError(f"{m.name} answers tlsMode {str(mode)[:40]!r}; dbrs knows {', '.join(tls.SERVER_MODES)}")
    return mode


def probe(m):
    """(takes a plaintext hello, takes a TLS handshake) of member `m`."""
    try:
        _plain_hello(m)
        plain = True
    except (connection.errors().PyMongoError, DbrsError):
        plain = False
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE   # is TLS spoken at all; trust is not the question
    try:
        with socket.create_connection((m.host, m.port), timeout=3) as s, ctx.wrap_socket(s):
            tls_ok = True
    except (OSError, ssl.SSLError):
        tls_ok = False
    return plain, tls_ok


def _plain_hello(m):
    with connection.client(m.host, m.port, timeout_ms=3000, tls_options={}) as c:
        return c.admin.command("hello")


def gather(spec, secrets_, host, up=True):
    states = member_states(spec, secrets_)
    members = [rotation.MemberCert(m.name, m.host, states.get(m.name, "UNKNOWN"), host.is_local(m.name))
               for m in spec.members]
    problem = rotation.check_healthy(members)
    if problem:
        raise DbrsError(problem.replace("a rotation", "the enable"))
    return members, {m.name: member_mode(spec, secrets_, m, host, up) for m in spec.members}


def run(spec, secrets_, spec_path, host, to="required", dry_run=False, progress=None, wait_s=600,
        passphrase_file=None):
    """Plan (and unless dry_run, do) this host's part of one step. Returns (step, plan, steps done, notes)."""
    if to not in TARGETS:
        raise InputError("--to", f"{str(to)[:40]!r} is not a TLS setting", "use off, preferred or required")
    if spec.cluster.cluster_auth == "x509" and to != "required":
        raise InputError("--to", "cluster_auth is x509, which needs TLS between the members",
                         'set cluster_auth = "keyfile" first (with every member stopped), or stay at required')
    target = TARGETS[to]
    say = progress or (lambda text: None)
    members, modes = gather(spec, secrets_, host, up=target != "disabled")
    step, plan = rotation.enable_step(members, modes, target)
    notes = []
    if step is None:
        notes += _arrived(spec, spec_path, host, to, dry_run, passphrase_file)
        return None, plan, [], notes
    if dry_run:
        return step, plan, [], notes
    if plan.steps and host.step() != step:
        host.write_step(step)
        connection.use_tls(spec, Path(spec_path).parent, host.step_path)
        notes.append(f"changed   {host.step_path}: {step} (this host's clients and mongod.conf follow it)")
    done = []
    for s in plan.steps:
        say(s.text())
        if s.action == "stepdown":
            sd = operations.stepdown(spec, secrets_, secs=60, wait_s=min(wait_s, 120))
            say(f"{sd.old} stepped down; {sd.new} is primary ({sd.no_primary_s:.1f} s without a primary)")
        else:
            _ready(spec, secrets_, s.member)
            host.prepare(s.member)
            host.restart(s.member)
            wait_healthy(spec, secrets_, s.member, wait_s, progress)
            say(f"{s.member} is healthy at {step}")
        done.append(s)
    if step == "preferTLS" and target == "requireTLS":
        notes.append("every member of this host now sends TLS; switch the applications to TLS (`dbrs uri`, "
                     "`dbrs tls client-bundle DIR`) before the set goes to requireTLS, which refuses plaintext")
    return step, plan, done, notes


def _arrived(spec, spec_path, host, to, dry_run, passphrase_file):
    """The whole set runs the target: the spec says so from now on, and this host's step file goes."""
    notes = []
    if spec.cluster.tls != to:
        if dry_run:
            return [f'would write cluster.tls = "{to}" into {spec_path} (generation raised)']
        outcome = spec_edit.change(spec_path, passphrase_file, spec_edit.setting_tls(to))
        notes.append(f'changed   {spec_path}: cluster.tls = "{to}", generation {outcome.generation}'
                     + (f"; {outcome.bundle} re-sealed" if outcome.bundle else
                        "; re-seal the bundle for the other hosts: `sudo dbrs member seal --passphrase-file FILE`"))
    if not dry_run and host.step() is not None:
        host.clear_step()
        notes.append(f"removed   {host.step_path}: the spec decides again")
    notes.append(f"the whole set runs {TARGETS[to]}")
    return notes
