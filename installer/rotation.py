"""Rotating certificates on a running set: which of this host's members restart, in what order, and when a
CA roll may move on. Pure: what each member holds and runs goes in, the steps come out.

A member reads its certificate and CA file only when it starts, so a file
written but not yet loaded is as good as not written: such a member is
`stale` and restarts even though its certificate is already new (that is
how a run cut short resumes). One member restarts at a time; the
secondaries and the arbiter go first and the primary last, after a stepdown,
so the set keeps a primary except for the moment of that one election.

A CA roll (`ca.pem` holding the new CA and then the old one) is safe only
in this order: every member trusts the new CA before any member presents a
certificate signed by it, and the old CA leaves the CA file only once no
member presents one of its certificates. `decide` holds certificates back
until the first is true; `finish_problem` says what still stops the second.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import tls

HEALTHY = ("PRIMARY", "SECONDARY", "ARBITER")


@dataclass(frozen=True)
class MemberCert:
    name: str
    host: str
    state: str                      # PRIMARY, SECONDARY, ARBITER, or what replSetGetStatus says
    local: bool                     # on this host: its files are here and this run restarts it
    problem: str | None = None      # why its certificate must be re-issued (tls.certificate_problem), None: fine
    stale: bool = False             # its mongod started before its certificate or the CA file last changed
    trusts_new: bool = True         # accepts certificates of the newest CA (always True outside a CA roll)
    presents_new: bool = True       # presents a certificate of the newest CA (always True outside a CA roll)


@dataclass(frozen=True)
class Step:
    action: str                     # "renew" (new certificate, then restart) | "restart" | "stepdown"
    member: str
    why: str = ""

    def text(self):
        return {"renew": f"{self.member}: new certificate ({self.why}), restart, wait until healthy",
                "restart": f"{self.member}: restart to load {self.why}, wait until healthy",
                "stepdown": f"{self.member}: step down (a caught-up secondary takes over), then it goes last"}[self.action]


@dataclass
class Plan:
    steps: list = field(default_factory=list)
    waiting: list = field(default_factory=list)     # why some certificates are held back, and where to run next

    @property
    def renews(self):
        return [s.member for s in self.steps if s.action == "renew"]


def check_healthy(members):
    """Every member up: a rolling restart takes one member down and needs all the others."""
    bad = [m for m in members if m.state not in HEALTHY]
    if bad:
        return ("the set is not healthy: " + ", ".join(f"{m.name} {m.state.lower()}" for m in bad)
                + "; a rotation restarts members one at a time and needs every other one up (see `dbrs status`)")
    return None


def decide(members, rolling_ca=False):
    """The steps for this host's members, in order: secondaries and arbiter first, the primary last after a stepdown.

    `rolling_ca`: a CA roll is under way; a certificate from the new CA is
    issued only once every other member trusts that CA (a local member that
    restarts in this run loads the new CA file with its new certificate).
    """
    plan = Plan()
    distrust = [m for m in members if not m.local and not m.trusts_new] if rolling_ca else []
    todo = []
    for m in members:
        if not m.local:
            continue
        if m.problem and not distrust:
            todo.append(Step("renew", m.name, m.problem))
        elif m.stale:
            todo.append(Step("restart", m.name, "its new certificate or CA file"))
        if m.problem and distrust:
            plan.waiting.append(f"{m.name}: {m.problem}; held back until " + ", ".join(d.name for d in distrust)
                                + " trust the new CA")
    if distrust:
        hosts = sorted({d.host for d in distrust})
        plan.waiting.append(f"next: `sudo dbrs tls rotate --bundle FILE --passphrase-file FILE` on {' and '.join(hosts)} "
                            "(the re-sealed bundle carries the new CA), then run it here again")
    plan.steps = _rolling_order(todo, {m.name: m.state for m in members})
    return plan


def _rolling_order(todo, state):
    """Secondaries, then the arbiter, then the primary behind a stepdown."""
    first = [s for s in todo if state[s.member] != "PRIMARY"]
    last = [s for s in todo if state[s.member] == "PRIMARY"]
    return sorted(first, key=lambda s: state[s.member] == "ARBITER") + (
        [Step("stepdown", last[0].member), *last] if last else [])


def enable_step(members, modes, target):
    """The rolling enable's next step, as (server mode, Plan of this host's restarts), or (None, Plan()) when every
    member runs `target`.

    `modes` {member: net.tls.mode it runs} (getParameter tlsMode). The set
    moves one mode at a time (tls.rolling_steps): no member goes to the next
    mode before every member has the current one, so at each step every
    member still accepts what the others send. A member of this host already
    at the step is skipped (a re-run resumes); the plan waits, naming the
    hosts to run it on, while other hosts' members lag.
    """
    order = tls.SERVER_MODES
    up = order.index(target) >= max(order.index(modes[m.name]) for m in members)
    slowest = (min if up else max)((modes[m.name] for m in members), key=order.index)
    steps = tls.rolling_steps(slowest, target)
    if not steps:
        return None, Plan()
    step = steps[0]
    behind = [m for m in members if modes[m.name] != step and modes[m.name] == slowest]
    plan = Plan()
    todo = [Step("restart", m.name, f"net.tls.mode {step}") for m in behind if m.local]
    plan.steps = _rolling_order(todo, {m.name: m.state for m in members})
    remote = sorted({m.host for m in behind if not m.local})
    if remote:
        plan.waiting.append(f"{step} also on {' and '.join(remote)}: run `sudo dbrs tls enable` there, then here again "
                            "for the next step")
    return step, plan


def finish_problem(members):
    """Why the old CA may not leave the CA file yet (a member would present a certificate nobody trusts), or None."""
    old = [m for m in members if not m.presents_new or (m.local and (m.problem or m.stale))]
    if old:
        return ("the old CA still signs the certificate of " + ", ".join(m.name for m in old) + ": run `sudo dbrs tls "
                "rotate` on " + " and ".join(sorted({m.host for m in old})) + " first, then --finish")
    return None


def ca_roll_file(new_ca_pem, old_ca_pem):
    """The CA file during a roll: the new CA first (it signs from now on), the old one after it (still trusted)."""
    return new_ca_pem + old_ca_pem
