"""Membership changes as a series of safe replSetReconfig steps: pure, one step at a time.

`next_step(config, status, spec)` looks at the set's live config
(replSetGetConfig) and status (replSetGetStatus) and the spec's member list
and returns the next safe config, a reason to wait, or Done. It keeps no
state of its own: every call starts again from the live config, so a run
interrupted between any two steps resumes by construction.

The rules are MongoDB's for a non-force reconfig since 4.4
(https://www.mongodb.com/docs/manual/reference/command/replSetReconfig/,
"Safe reconfiguration"; server: repl_set_config_checks.cpp): the voters of
the new config may differ from the committed one by at most one host (a
symmetric difference, so "give B a vote and drop A" counts as two), and a
reconfig waits until the current config is committed, i.e. installed on a
majority of its voting members. On top of them, dbrs makes MongoDB's
`newlyAdded` behaviour explicit: a data-bearing member joins with votes 0 /
priority 0, gets its vote only once it is a SECONDARY close to the primary
(a lagged voter stalls the majority commit point), and its priority after
that. Arbiters have priority 0; votes 0 means priority 0; at most 7
voters. Additions and vote grants come before removals, so PSA -> PSS goes
PSA, PSA+S(0 votes), PSSA (4 voters: any one may fail), PSS, never through
a two-voter set in which every member is needed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from ..errors import DbrsError, InputError

MAX_VOTERS = 7
VOTE_LAG_S = 2      # a new voter must be this close to the primary (as `dbrs recover`)
PRIORITY_LAG_S = 10  # ... and this close before it may be elected
SYNCING = {0: "STARTUP", 5: "STARTUP2", 3: "RECOVERING", 9: "ROLLBACK"}


@dataclass(frozen=True)
class Step:
    config: dict      # the replSetReconfig document
    says: str         # what this step does, in one line


@dataclass(frozen=True)
class Wait:
    says: str         # what the next step waits for
    member: str | None = None


@dataclass(frozen=True)
class Done:
    notes: tuple = field(default_factory=tuple)


@dataclass(frozen=True)
class Seen:
    """One member as replSetGetStatus shows it."""
    state: int
    healthy: bool
    lag_s: float | None
    config_version: int | None


def votes(c):
    """A member's vote as the server counts it: `newlyAdded` members do not vote yet."""
    return 0 if c.get("newlyAdded") else c.get("votes", 1)


def voters(config):
    return {c["host"] for c in config["members"] if votes(c)}


def observed(status):
    """host -> Seen, from a replSetGetStatus document."""
    members = status.get("members", [])
    primary = next((m.get("optimeDate") for m in members if m.get("state") == 1), None)
    out = {}
    for m in members:
        healthy = bool(m.get("health"))
        lag = None
        if healthy and primary is not None and m.get("optimeDate") is not None and m.get("state") in (1, 2):
            lag = max(0.0, (primary - m["optimeDate"]).total_seconds())
        out[m["name"]] = Seen(m.get("state", 6) if healthy else 8, healthy, lag,
                              m.get("configVersion") if healthy else None)
    return out


def committed(config, seen):
    """(members holding the current config, voting members, needed): committed once have >= needed."""
    vote_hosts = voters(config)
    have = sum(1 for h in vote_hosts if seen.get(h) and seen[h].config_version == config["version"])
    return have, len(vote_hosts), len(vote_hosts) // 2 + 1


def _next_config(config, members):
    new = {k: v for k, v in config.items() if k != "term"}
    new["members"] = members
    new["version"] = config["version"] + 1
    return new


def _clean(c):
    """A member document to send back: MongoDB sets and clears `newlyAdded` itself and refuses it from a user."""
    return {k: v for k, v in c.items() if k != "newlyAdded"}


def _state(s):
    return {1: "PRIMARY", 2: "SECONDARY", 7: "ARBITER", 8: "DOWN"}.get(s.state, SYNCING.get(s.state, str(s.state)))


def next_step(config, status, spec):
    """The next safe reconfig toward the spec's members, a Wait, or Done (see the module docstring).

    Raises InputError for a change MongoDB cannot make in place and
    DbrsError when the next step would cost the set its majority.
    """
    seen = observed(status)
    have, n_voters, need = committed(config, seen)
    if have < need:
        return Wait(f"config version {config['version']} is on {have} of {n_voters} voting members; "
                    f"waiting until {need} have it (committed)")
    members = [_clean(c) for c in copy.deepcopy(config["members"])]
    by_host = {c["host"]: c for c in members}
    want = {m.address: m for m in spec.members}
    name_of = {m.address: m.name for m in spec.members}
    primary = next((h for h, s in seen.items() if s.state == 1), None)
    if primary is None:
        return Wait("no PRIMARY: a reconfig needs one")

    for c in members:
        m = want.get(c["host"])
        if m is not None and bool(c.get("arbiterOnly")) != m.arbiter:
            raise InputError(m.name, f"is {'an arbiter' if c.get('arbiterOnly') else 'data-bearing'} in the set and "
                             f"{m.role} in the spec, and MongoDB cannot change that in place",
                             f"`dbrs member remove {m.name}`, `dbrs reconfigure`, then add it again under a new name")

    leaving = [c for c in members if c["host"] not in want]
    joining = [m for m in spec.members if m.address not in by_host]
    for c in leaving:
        if c["host"] == primary:
            raise DbrsError(f"{c['host']} is the PRIMARY and leaves the set: run `dbrs stepdown` first, then "
                            "`dbrs reconfigure` again")

    # Replace: a dead host's member keeps its _id and comes back on the new host without a vote.
    if len(leaving) == 1 and len(joining) == 1 and not leaving[0].get("arbiterOnly") and not joining[0].arbiter:
        old, new = leaving[0], joining[0]
        was = old["host"]
        old.update(host=new.address, votes=0, priority=0)
        return Step(_next_config(config, members),
                    f"{new.name}: replace {was} by {new.address} (same member _id {old['_id']}), votes 0, priority 0 "
                    "until it has synced")

    vote_hosts = voters(config)
    for m in joining:
        doc = {"_id": max([c["_id"] for c in members] + [-1]) + 1, "host": m.address}
        if m.arbiter:
            if len(vote_hosts) >= MAX_VOTERS:
                continue
            doc.update(arbiterOnly=True, votes=1, priority=0)
            says = f"{m.name}: add arbiter {m.address} (one more voter)"
        else:
            doc.update(votes=0, priority=0)
            says = f"{m.name}: add {m.address} with votes 0, priority 0 until its initial sync is done"
        return Step(_next_config(config, members + [doc]), says)

    waits, notes = [], []
    for c in members:
        m = want.get(c["host"])
        if m is None or m.arbiter or votes(c):
            continue
        s = seen.get(c["host"])
        if s is None or not s.healthy:
            if leaving:  # removing a voter now would leave the set short of the vote this member is to bring
                waits.append(Wait(f"{m.name} is not reachable from the primary yet (votes 0): it gets its vote once "
                                  f"it is a SECONDARY within {VOTE_LAG_S} s of the primary, and only then does "
                                  f"{', '.join(c['host'] for c in leaving)} leave", m.name))
                continue
            notes.append(f"{m.name} is down with votes 0: once it is up, `dbrs reconfigure` (or `dbrs recover "
                         f"{m.name}`) gives its vote back after it has caught up")
            continue
        if s.state == 2 and s.lag_s is not None and s.lag_s <= VOTE_LAG_S:
            if len(vote_hosts) >= MAX_VOTERS:
                break
            c.update(votes=1, priority=0)
            return Step(_next_config(config, members),
                        f"{m.name}: caught up ({s.lag_s:.0f} s behind), gets its vote (priority 0 for now)")
        lag = "" if s.lag_s is None else f", {s.lag_s:.0f} s behind"
        waits.append(Wait(f"{m.name} is {_state(s)}{lag}: it gets its vote once it is a SECONDARY within "
                          f"{VOTE_LAG_S} s of the primary", m.name))
    if waits:
        return waits[0]

    for c in leaving:
        after = vote_hosts - {c["host"]}
        up = [h for h in after if seen.get(h) and seen[h].healthy and seen[h].state in (1, 2, 7)]
        if len(up) < len(after) // 2 + 1:
            raise DbrsError(f"removing {c['host']} leaves {len(up)} of {len(after)} voting members up and "
                            f"{len(after) // 2 + 1} are needed: bring the others back first")
        kind = "arbiter " if c.get("arbiterOnly") else ""
        return Step(_next_config(config, [x for x in members if x is not c]),
                    f"remove {kind}{c['host']}" + (" (one voter less)" if votes(c) else " (it had no vote)"))

    fixes, lagging = [], []
    for c in members:
        m = want[c["host"]]
        if m.arbiter or not votes(c) or c.get("priority", 1) == m.priority:
            continue
        s = seen.get(c["host"])
        if m.priority and not (s and s.state in (1, 2) and s.lag_s is not None and s.lag_s <= PRIORITY_LAG_S):
            lagging.append(Wait(f"{m.name} gets priority {m.priority:g} once it is a SECONDARY within "
                                f"{PRIORITY_LAG_S} s of the primary", m.name))
            continue
        fixes.append(f"{name_of[c['host']]} priority {c.get('priority', 1):g} -> {m.priority:g}")
        c["priority"] = m.priority
    if fixes:
        return Step(_next_config(config, members), "; ".join(fixes))
    if lagging:
        return lagging[0]
    return Done(tuple(notes))


def simulate(config, status, step):
    """(config, status) once `step` is committed: new hosts in initial sync, every other member caught up."""
    new = dict(step.config, term=config.get("term", 1))
    primary = next((m for m in status["members"] if m.get("state") == 1), None)
    known = {m["name"] for m in status["members"]}
    members = []
    for c in new["members"]:
        doc = {"name": c["host"], "health": 1, "state": 7 if c.get("arbiterOnly") else 2,
               "configVersion": new["version"]}
        if primary and c["host"] == primary["name"]:
            doc["state"] = 1
        if c["host"] not in known and doc["state"] == 2:
            doc["state"] = 5      # a new host starts with its initial sync
        elif primary and doc["state"] != 7:
            doc["optimeDate"] = primary.get("optimeDate")
        members.append(doc)
    return new, dict(status, members=members)


def plan(config, status, spec, limit=50):
    """Every step from here to the spec, assuming each member syncs: what `dbrs reconfigure --dry-run` prints."""
    steps = []
    for _ in range(limit):
        nxt = next_step(config, status, spec)
        if isinstance(nxt, Done):
            return steps, nxt.notes
        if isinstance(nxt, Wait):
            if steps and steps[-1] == nxt:
                return steps, ()
            steps.append(nxt)
            status = simulate(config, status, Step(dict(config, version=config["version"]), ""))[1]
            continue
        steps.append(nxt)
        config, status = simulate(config, status, nxt)
    raise DbrsError(f"no end after {limit} steps: this is a bug in dbrs; the set was not changed")
