"""The documents dbrs sends to the set, and the next config of a degrade or recover: pure, no I/O."""

from __future__ import annotations

from .. import paths, tls

from ..errors import DbrsError, InputError

RESTORE_ROLE = "dbrsOplogReplay"


def initiate_config(spec):
    """replSetInitiate's document: every member, arbiter arbiterOnly, the primary-role member priority 2."""
    members = []
    for i, m in enumerate(spec.members):
        doc = {"_id": i, "host": m.address, "priority": m.priority}
        if m.arbiter:
            doc["arbiterOnly"] = True
        members.append(doc)
    return {"_id": spec.cluster.name, "members": members}


def _role(name, db="admin"):
    return {"role": name, "db": db}


def user_roles(spec):
    """Each dbrs user with no more than its job needs, in creation order (admin first: it ends the localhost exception)."""
    users = [
        ("admin", [_role("root")]),
        ("backup", [_role("backup"), _role("clusterMonitor"), _role("read", "local")]),
        ("restore", [_role("restore"), _role(RESTORE_ROLE)]),
        ("monitor", [_role("clusterMonitor")]),
    ]
    if spec.mongo_express.enabled:
        # Mongo Express browses and edits documents and shows serverStatus; no user or cluster admin.
        users.append(("express", [_role("readWriteAnyDatabase"), _role("clusterMonitor")]))
    return users


def restore_role_command():
    """`mongorestore --oplogReplay` applies arbitrary oplog entries, which MongoDB allows only with anyAction."""
    return {
        "createRole": RESTORE_ROLE,
        "privileges": [{"resource": {"anyResource": True}, "actions": ["anyAction"]}],
        "roles": [],
    }


def create_user_command(user, password, roles):
    return {"createUser": user, "pwd": password, "roles": roles, "mechanisms": ["SCRAM-SHA-256"]}


def rw_concern(cluster):
    """The cluster default write concern; the wtimeout makes writes fail fast when the secondary is down."""
    w = "majority" if cluster.write_concern == "majority" else int(cluster.write_concern)
    return {"w": w, "wtimeout": cluster.write_timeout_ms}


def concern_matches(got, cluster):
    """Whether a getDefaultRWConcern reply already holds the spec's write concern, set globally."""
    want = rw_concern(cluster)
    wc = got.get("defaultWriteConcern") or {}
    return (got.get("defaultWriteConcernSource") == "global" and str(wc.get("w")) == str(want["w"])
            and wc.get("wtimeout", 0) == want["wtimeout"])


def concern_text(wc):
    if not wc:
        return "unknown"
    text = f"w:{wc.get('w', 1)}"
    if wc.get("wtimeout"):
        text += f", wtimeout {wc['wtimeout'] / 1000:g} s"
    return text


def connection_strings(spec, user=None, ca_file=None):
    """(uri, read-scaling uri) over the data-bearing members; never with a password.

    With TLS on they name the CA file (`dbrs tls client-bundle` writes it for an app host).
    """
    hosts = ",".join(m.address for m in spec.members if m.data_bearing)
    from urllib.parse import quote

    who = f"{quote(user, safe='')}@" if user else ""   # a user name with @ : / ? must not break the URI
    base = f"mongodb://{who}{hosts}/?replicaSet={spec.cluster.name}"
    if user:
        base += "&authSource=admin"
    base += tls.uri_params(tls.client_mode(spec), ca_file or paths.CA_CERT)
    return base, base + "&readPreference=secondaryPreferred"


def plan_reconfig(config, member, action, *, primary=None, up=()):
    """The next config for `degrade` or `recover` of spec member `member`; InputError when it makes no sense.

    `primary` is the address of the current primary, `up` the addresses of
    healthy members. Degrade sets votes 0 / priority 0 (MongoDB's PSA
    mitigation). Recover is two reconfigs: first the vote back with
    priority 0, then (once the member caught up) its priority; each call
    returns the next one, so an interrupted recover resumes.
    """
    members = [dict(m) for m in config["members"]]
    target = next((m for m in members if m["host"] == member.address), None)
    if target is None:
        raise DbrsError(f"{member.name} ({member.address}) is not in the set's config; run `dbrs reconfigure` first")
    if target.get("arbiterOnly") or member.arbiter:
        raise InputError(member.name, "is the arbiter", "degrade/recover apply to a data-bearing secondary")
    votes, priority = target.get("votes", 1), target.get("priority", 1)
    if action == "degrade":
        if member.address == primary:
            raise InputError(member.name, "is the primary", "run `dbrs stepdown` first, then degrade it")
        if votes == 0:
            raise InputError(member.name, "is already degraded (votes 0)", f"run `dbrs recover {member.name}` once it is back")
        voters_after = [m for m in members if m.get("votes", 1) and m is not target]
        up_after = [m for m in voters_after if m["host"] in up]
        need = len(voters_after) // 2 + 1
        if len(up_after) < need:
            raise InputError(member.name, f"degrading it leaves {len(up_after)} of {len(voters_after)} voting members up "
                             f"and {need} are needed", "bring another member back first")
        target["votes"], target["priority"] = 0, 0
    elif action == "recover":
        if votes and priority == member.priority:
            raise InputError(member.name, "is not degraded", "nothing to recover")
        if member.address not in up:
            raise InputError(member.name, "is not healthy", f"start dbrs-mongod@{member.name} and wait for SECONDARY first")
        if votes == 0:
            target["votes"], target["priority"] = 1, 0
        else:
            target["priority"] = member.priority
    else:
        raise ValueError(action)
    new = {k: v for k, v in config.items() if k != "term"}
    new["members"] = members
    new["version"] = config["version"] + 1
    return new


def config_member(config, member):
    """The entry of spec member `member` in a replica-set config ({} when it has none)."""
    return next((m for m in config["members"] if m["host"] == member.address), {})
