"""`dbrs reconfigure`: bring the set's members to the spec's, one safe reconfig at a time.

Each round reads the live config and status from the primary and asks
`membership.next_step` what to do; nothing is remembered between rounds,
so a run killed anywhere is finished by running it again. Each reconfig
carries maxTimeMS (MongoDB would otherwise wait forever for a majority to
install it) and one whose predecessor is not committed yet is retried
until the deadline.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from ..errors import DbrsError
from . import bootstrap, connection, documents, health, membership

POLL_S = 0.5
RETRY_CODES = (109, 308)   # ConfigurationInProgress, CurrentConfigNotCommittedYet: the previous one is not done


@dataclass
class Result:
    steps: list = field(default_factory=list)     # the `says` of each reconfig sent
    planned: list = field(default_factory=list)   # dry run: ("step" | "wait", says) in order
    notes: list = field(default_factory=list)
    concern: str = ""                               # the default write concern, re-evaluated for the new set


def write_majority(config):
    """(data-bearing voters, how many of them a majority write needs) in `config`."""
    voting = [c for c in config["members"] if membership.votes(c)]
    data = [c for c in voting if not c.get("arbiterOnly")]
    return len(data), min(len(voting) // 2 + 1, len(data))


def concern_words(config, cluster):
    """The default write concern said for the set as `config` builds it, e.g. after PSA -> PSS."""
    wc = documents.concern_text(documents.rw_concern(cluster))
    data, need = write_majority(config)
    if cluster.write_concern != "majority":
        return f"default write concern {wc}: acknowledged writes can roll back on failover (not zero RPO)"
    spare = data - need
    tail = (f"they keep working with {spare} of them down" if spare else
            "they time out when one is down (`dbrs degrade MEMBER` is the way out)")
    return f"default write concern {wc}: majority writes need {need} of the {data} data-bearing voting members; {tail}"


def _read(c):
    return c.command("replSetGetConfig")["config"], c.command("replSetGetStatus")


def _send(c, config, deadline):
    """True once sent; False when the server says the previous config is not committed yet (retry later)."""
    errors = connection.errors()
    left_ms = max(1000, int((deadline - time.monotonic()) * 1000))
    try:
        c.client.admin.command({"replSetReconfig": config, "maxTimeMS": left_ms})
        return True
    except errors.OperationFailure as e:
        if e.code in RETRY_CODES and time.monotonic() < deadline:
            return False
        raise connection.translate(e, c.who, "replSetReconfig") from None
    except errors.PyMongoError as e:
        raise connection.translate(e, c.who, "replSetReconfig") from None


def _answering(spec, config, new):
    """A member joins only once its mongod answers: an unreachable new member would sit in the config unsynced."""
    known = {c["host"] for c in config["members"]}
    for c in new["members"]:
        if c["host"] in known:
            continue
        m = next(m for m in spec.members if m.address == c["host"])
        try:
            connection.hello(m.host, m.port)
        except connection.errors().PyMongoError as e:
            raise DbrsError(health.explain_missing(m, str(e)) + f"; install it first (`sudo dbrs-install --bundle "
                            f"bundle.dbrs --member {m.name}` on {m.host}); the set was not changed") from None


def _leaving_primary(spec):
    """The spec's members cannot reach a PRIMARY the spec no longer names; say that instead of "no primary"."""
    primary, seen = connection.find_primary(spec)
    if primary is not None:
        return
    addresses = {m.address for m in spec.members}
    for hello in seen.values():
        if isinstance(hello, dict) and hello.get("primary") and hello["primary"] not in addresses:
            raise DbrsError(f"the PRIMARY {hello['primary']} leaves the set in this spec: step it down first "
                            "(`dbrs stepdown` with the spec that still names it, or rs.stepDown() in mongosh), then "
                            "run `dbrs reconfigure` again; the set was not changed")


def run(spec, secrets, wait_s=600, dry_run=False, progress=None):
    """Reconfigure toward `spec` (or, dry run, list the steps); DbrsError naming what is pending at the deadline."""
    started = time.monotonic()
    deadline = started + wait_s
    result = Result()
    _leaving_primary(spec)
    _, client = connection.connect_any(spec, secrets, "admin", need_primary=True)
    with client as c:
        config, status = _read(c)
        if dry_run:
            final = config
            for s in membership.plan(config, status, spec)[0]:
                step = isinstance(s, membership.Step)
                result.planned.append(("step" if step else "wait", s.says))
                if step:
                    try:
                        _answering(spec, final, s.config)
                    except DbrsError as e:
                        result.notes.append(str(e).replace("; the set was not changed", ""))
                    final = s.config
            result.concern = concern_words(final, spec.cluster)
            return result
        while True:
            nxt = membership.next_step(config, status, spec)
            if isinstance(nxt, membership.Done):
                result.notes.extend(nxt.notes)
                break
            elapsed = time.monotonic() - started
            if isinstance(nxt, membership.Step):
                _answering(spec, config, nxt.config)
            if isinstance(nxt, membership.Step) and not result.steps:
                # MongoDB 5.0+ refuses a reconfig that changes the implicit default write concern (PSA <-> PSS)
                # while no cluster-wide default is set: set the spec's first.
                if bootstrap.ensure_rw_concern(c, spec.cluster):
                    result.notes.append("the cluster default write concern was set to the spec's")
            if isinstance(nxt, membership.Step) and _send(c, nxt.config, deadline):
                result.steps.append(nxt.says)
                bootstrap.tell_step(progress, "reconfig", "changed", f"config version {nxt.config['version']}: {nxt.says}")
            else:
                why = nxt.says if isinstance(nxt, membership.Wait) else "the previous config is not committed yet"
                if elapsed >= wait_s:
                    raise DbrsError(f"after {wait_s:g} s still waiting: {why}; the set is safe as it is: run "
                                    "`dbrs reconfigure` again to go on from here")
                connection.wait_line(progress, why, elapsed, wait_s, key=re.sub(r"\d+", "#", why))
                time.sleep(POLL_S)
            config, status = _read(c)
        result.concern = concern_words(config, spec.cluster)
    return result


def _unanswered(spec, config):
    """The spec's members the config lacks whose mongod does not answer yet, each in the operator's words."""
    known = {c["host"] for c in config["members"]}
    out = []
    for m in spec.members:
        if m.address in known:
            continue
        try:
            connection.hello(m.host, m.port)
        except connection.errors().PyMongoError as e:
            out.append(health.explain_missing(m, str(e)))
    return out


def converge(spec, secrets, wait_s=600, progress=None):
    """What `dbrs-install --role primary` does after its bootstrap, as one (step, status, detail).

    A new member whose host is not installed yet is not waited for: the set is
    left as it is ("waiting") and the detail says that `dbrs reconfigure` (or
    the next install here) finishes it. Otherwise the safe steps run as in
    `dbrs reconfigure`, with the same wait and the same resumption.
    """
    _leaving_primary(spec)
    _, client = connection.connect_any(spec, secrets, "admin", need_primary=True)
    with client as c:
        config, status = _read(c)
    nxt = membership.next_step(config, status, spec)
    if isinstance(nxt, membership.Done):
        return "replica set members", "unchanged", "the set's members match the spec"
    missing = _unanswered(spec, config)
    if missing:
        return ("replica set members", "waiting", "; ".join(missing) + ": the set was not changed; install that "
                "host (`sudo dbrs-install --bundle bundle.dbrs --member NAME` there), then `sudo dbrs reconfigure` "
                "here finishes it")
    result = run(spec, secrets, wait_s=wait_s, progress=progress)
    return ("replica set members", "changed" if result.steps else "unchanged",
            f"{len(result.steps)} reconfig step(s); {result.concern}" if result.steps
            else "the set's members match the spec")
