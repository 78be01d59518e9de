"""A stand-in replica set for the protocol tier: one MockupDB server per member, sharing one set state.

It answers what dbrs sends the way MongoDB's documentation says, and is
strict where a lenient fake would hide a bug: commands need an
authenticated user with a role that grants them, except for the localhost
exception (no users and no roles yet: createUser/createRole,
replSetInitiate, replSetGetStatus, replSetReconfig); writes need the
PRIMARY; replSetInitiate runs a quorum check; replSetReconfig follows
MongoDB's non-force rules (repl_set_config_checks.cpp, "safe reconfig"):
version+1, the current config committed (on a majority of its voters)
first, at most one voter added or removed (symmetric difference of the
voting hosts), arbiterOnly never changed in place, priority 0 for
non-voters and arbiters, arbiters vote, at most 7 voters and 50 members,
no user-set `newlyAdded`. An even voter count is legal in MongoDB (it only
warns), so the stand-in accepts it and `configs` keeps every config for the
tests to judge. A member added to the config runs its initial sync
(STARTUP2) for `sync_s[name]` seconds; a new config reaches the other
members `propagation_s` after it was accepted. Unknown commands fail with
CommandNotFound. From mongodb/mongo's sources:
a down member's `lastHeartbeat` is the last *attempt* (every failed
heartbeat sets it, MemberData::setDownValues) while `lastHeartbeatRecv`
stays at the last answer; replSetStepDown rejects stepDownForSecs <
secondaryCatchUpPeriodSecs (BadValue, repl_set_commands.cpp); the majority
commit point is the newest optime that a write majority of voting
data-bearing members has, so a lagged member that votes holds it back
(`rs.reconfigForPSASet`). Real MongoDB behaviour beyond this is for the
Vagrant tier (tests/infra/test_replset_real.py).
"""

from __future__ import annotations

import copy
import datetime as dt
import socket
import threading
import time
from dataclasses import dataclass

from bson import Binary, Int64, ObjectId, Timestamp
from mockupdb import MockupDB

from . import scram

WIRE = {"minWireVersion": 0, "maxWireVersion": 25}
ELECTION_S = 0.3
NO_AUTH = {"hello", "ismaster", "saslstart", "saslcontinue", "endsessions", "ping", "buildinfo"}
LOCALHOST_EXCEPTION = {"createuser", "createrole", "replsetinitiate", "replsetgetstatus", "replsetreconfig"}
BUILTIN_ROLES = {"root", "backup", "restore", "clusterMonitor", "read", "readWriteAnyDatabase", "readAnyDatabase",
                 "readWrite", "dbAdmin", "dbOwner", "userAdmin", "clusterAdmin", "clusterManager", "hostManager",
                 "userAdminAnyDatabase", "dbAdminAnyDatabase"}
ADMIN_ONLY_ROLES = BUILTIN_ROLES - {"read", "readWrite", "dbAdmin", "dbOwner", "userAdmin"}
ROLE_COMMANDS = {
    "clusterMonitor": {"replsetgetstatus", "replsetgetconfig", "getdefaultrwconcern", "serverstatus", "find:local.oplog.rs",
                       "getparameter"},
    "backup": {"find:local.oplog.rs"},
    "read@local": {"find:local.oplog.rs"},
}
WRITES = {"createuser", "createrole", "setdefaultrwconcern", "replsetreconfig", "replsetstepdown", "updateuser",
          "dropuser", "setfeaturecompatibilityversion"}
VERSION = "8.0.4"
OPLOG_DEFAULT_BYTES = 990 * 1024 * 1024


def now():
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0, tzinfo=None)


@dataclass
class Sent:
    member: str
    name: str
    doc: dict
    user: str | None


TRANSPORT_FIELDS = {"$db", "lsid", "$clusterTime", "$readPreference", "txnNumber", "apiVersion", "$client"}


def command_doc(doc):
    """What the tool sent, without the fields the driver adds to every command."""
    return {k: v for k, v in doc.items() if k not in TRANSPORT_FIELDS}


class StandInSet:
    """Members by name -> StandInMember; `log` holds every command the tool sent (no hellos, no SASL)."""

    def __init__(self, roles, name="dbrs"):
        self.name = name
        self.lock = threading.RLock()
        self.members = {}
        for member_name, role in roles:
            self.members[member_name] = StandInMember(self, member_name, role)
        self.config = None
        self.users = {}
        self.custom_roles = {}
        self.rw = None
        self.primary = None
        self.elect_at = None
        self.electable_after = {}     # member -> monotonic time it may stand again (stepdown)
        self.keyfile_mismatch = set()  # members whose keyfile differs: heartbeats fail with auth errors
        self.lag = {}                  # member -> seconds behind the primary, or a callable returning them
        self.fault = None              # auth | drop | timeout | error: every command fails that way
        self.stall_s = 2.0             # how long "timeout" keeps a command unanswered
        self.vote_grants = []          # (member, its lag when a reconfig gave it a vote)
        self.commit_lag = 0
        self.started = now() - dt.timedelta(hours=50)
        self.log = []
        self.oplog_bytes = {}          # member -> its oplog's maxSize (replSetResizeOplog)
        self.sync_s = {}               # member -> seconds of initial sync once it joins the config
        self.joined = {}               # member -> monotonic time it joined the config
        self.propagation_s = 0.0       # a new config reaches the other members this long after it was accepted
        self.config_at = 0.0           # monotonic time the current config was accepted
        self.prev_version = 0
        self.configs = []              # every config replSetReconfig accepted, in order
        self.fcv = {"version": series(VERSION)}   # featureCompatibilityVersion as getParameter shows it

    def spare(self, name, role="secondary"):
        """A member that runs (once started) but is in no config yet: a host `dbrs member add` brings in."""
        self.members[name] = StandInMember(self, name, role)
        return self.members[name]

    # -------------------------------------------------------------- test helpers
    def start(self):
        for m in self.members.values():
            m.start()
        return self

    def stop(self):
        threads = [threading.Thread(target=m.stop) for m in self.members.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def member(self, name):
        return self.members[name]

    def running(self, version, fcv=None):
        """Every member on binary `version`, the FCV at `fcv` (default: that series)."""
        for m in self.members.values():
            m.version = version
        self.fcv = {"version": fcv or series(version)}
        return self

    def restart(self, name, version=None, tls_mode=None):
        """Stop a member and start it again (on binary `version`, with net.tls.mode `tls_mode`): a primary comes
        back as a secondary."""
        m = self.members[name]
        m.stop()
        with self.lock:
            if self.primary == name:
                self.primary = None
                self.elect_at = time.monotonic() + ELECTION_S
            if version:
                m.version = version
            if tls_mode:
                m.tls_mode = tls_mode
        m.start()

    def lag_of(self, name):
        lag = self.lag.get(name, 0)
        return lag() if callable(lag) else lag

    def catching_up(self, name, behind_s, per_s):
        """`name` is `behind_s` seconds behind now and gains `per_s` seconds every second."""
        t0 = time.monotonic()
        self.lag[name] = lambda: max(0.0, behind_s - per_s * (time.monotonic() - t0))

    def _down_for(self, m):
        return (now() - m.last_heard).total_seconds() if m.last_heard else 0.0

    def majority_commit_lag(self):
        """Seconds the majority commit point trails the primary: the optime a write majority of the voting
        data-bearing members has reached (down ones have none), never better than `commit_lag`."""
        voters = [m for m in self.in_config() if m.role != "arbiter" and self.cfg_member(m.name)["votes"]]
        voting = [c for c in self.config["members"] if c["votes"]]
        need = min(len(voting) // 2 + 1, len(voters))
        lags = sorted(self.lag_of(m.name) if self.healthy_from_primary(m.name) else self._down_for(m) for m in voters)
        behind = lags[need - 1] if need else 0
        return max(self.commit_lag, behind)

    def sent(self, *names):
        wanted = {n.lower() for n in names}
        return [s for s in self.log if not wanted or s.name.lower() in wanted]

    def initiated(self, primary="mongod1"):
        """Put the set in the state a finished bootstrap leaves (users, role, concern), without logging it."""
        self.config = self._config_from(self._default_config())
        for user, roles, pw in INITIAL_USERS:
            self.users[user] = {"roles": roles, "creds": scram.credentials(pw, iterations=4096)}
        self.custom_roles["dbrsOplogReplay"] = {}
        self.rw = {"w": "majority", "wtimeout": 10000}
        self.primary = primary
        return self

    def _default_config(self):
        out = []
        for i, m in enumerate(self.members.values()):
            doc = {"_id": i, "host": m.address, "priority": {"primary": 2, "secondary": 1, "arbiter": 0}[m.role]}
            if m.role == "arbiter":
                doc["arbiterOnly"] = True
            out.append(doc)
        return {"_id": self.name, "members": out}

    def _config_from(self, cfg):
        full = {"_id": cfg["_id"], "version": 1, "term": 1, "protocolVersion": Int64(1),
                "writeConcernMajorityJournalDefault": True, "members": [],
                "settings": {"chainingAllowed": True, "heartbeatIntervalMillis": 2000,
                             "heartbeatTimeoutSecs": 10, "electionTimeoutMillis": 10000,
                             "catchUpTimeoutMillis": -1, "catchUpTakeoverDelayMillis": 30000,
                             "replicaSetId": ObjectId()}}
        for m in cfg["members"]:
            full["members"].append({"_id": m["_id"], "host": m["host"], "arbiterOnly": bool(m.get("arbiterOnly")),
                                    "buildIndexes": True, "hidden": False, "priority": m.get("priority", 1),
                                    "tags": {}, "secondaryDelaySecs": Int64(0), "votes": m.get("votes", 1)})
        return full

    def by_address(self, address):
        return next((m for m in self.members.values() if m.address == address), None)

    def cfg_member(self, name):
        """The member's config document, or None while it is not in the config."""
        return next((c for c in self.config["members"] if c["host"] == self.members[name].address), None)

    def in_config(self):
        return [m for m in self.members.values() if self.cfg_member(m.name) is not None]

    def syncing(self, name):
        return time.monotonic() < self.joined.get(name, 0) + self.sync_s.get(name, 0)

    def config_version_on(self, name):
        """The config version member `name` holds: the new one only once it propagated there."""
        m = self.members[name]
        if name == self.current_primary() or (m.up and time.monotonic() >= self.config_at + self.propagation_s):
            return self.config["version"]
        return self.prev_version if m.up else -1

    def config_committed(self):
        voting = [c for c in self.config["members"] if c.get("votes", 1) and not c.get("newlyAdded")]
        have = [c for c in voting if self.by_address(c["host"]) is not None
                and self.config_version_on(self.by_address(c["host"]).name) == self.config["version"]]
        return len(have) >= len(voting) // 2 + 1

    # -------------------------------------------------------------- elections
    def current_primary(self):
        with self.lock:
            if self.primary is None and self.elect_at and time.monotonic() >= self.elect_at:
                self.elect_at = None
                self.primary = self._electable()
            return self.primary

    def _electable(self):
        best = None
        for m in self.in_config():
            c = self.cfg_member(m.name)
            if not m.up or self.syncing(m.name) or c["arbiterOnly"] or c["priority"] <= 0 or not c["votes"]:
                continue
            if time.monotonic() < self.electable_after.get(m.name, 0):
                continue
            if best is None or c["priority"] > self.cfg_member(best)["priority"]:
                best = m.name
        return best

    def healthy_from_primary(self, name):
        m = self.members[name]
        return m.up and name not in self.keyfile_mismatch

    # -------------------------------------------------------------- replies
    def status_doc(self, me):
        """replSetGetStatus as documented (members[n].health/state/optimeDate/lastHeartbeat...)."""
        t = now()
        primary = self.current_primary()
        applied = t - dt.timedelta(seconds=1)
        commit_lag = self.majority_commit_lag()
        committed = applied - dt.timedelta(seconds=min(commit_lag, 86400 * 365))
        members = []
        for m in self.in_config():
            c = self.cfg_member(m.name)
            is_self = m.name == me
            healthy = is_self or self.healthy_from_primary(m.name)
            doc = {"_id": c["_id"], "name": m.address, "health": 1.0 if healthy else 0.0}
            if not healthy:
                doc.update(state=8, stateStr="(not reachable/healthy)", uptime=0,
                           optime={"ts": Timestamp(0, 0), "t": Int64(-1)}, optimeDate=dt.datetime(1970, 1, 1),
                           lastHeartbeat=t - dt.timedelta(seconds=1), lastHeartbeatRecv=m.last_heard or dt.datetime(1970, 1, 1),
                           pingMs=Int64(0), authenticated=False, configVersion=-1, configTerm=-1,
                           lastHeartbeatMessage=("Authentication failed." if m.name in self.keyfile_mismatch else
                                                 f"Error connecting to {m.address} :: caused by :: Connection refused"))
                members.append(doc)
                continue
            state = 1 if m.name == primary else 7 if m.role == "arbiter" else 5 if self.syncing(m.name) else 2
            doc.update(state=state, stateStr={1: "PRIMARY", 2: "SECONDARY", 5: "STARTUP2", 7: "ARBITER"}[state],
                       uptime=180000, configVersion=self.config_version_on(m.name), configTerm=1)
            if state == 5:
                doc.update(optime={"ts": Timestamp(0, 0), "t": Int64(-1)}, optimeDate=dt.datetime(1970, 1, 1))
            elif state != 7:
                at = applied - dt.timedelta(seconds=self.lag_of(m.name))
                doc.update(optime={"ts": Timestamp(int(at.replace(tzinfo=dt.timezone.utc).timestamp()), 1), "t": Int64(1)},
                           optimeDate=at, lastAppliedWallTime=at, lastDurableWallTime=at)
            if is_self:
                doc["self"] = True
            else:
                doc.update(lastHeartbeat=t - dt.timedelta(seconds=1), lastHeartbeatRecv=t - dt.timedelta(seconds=1),
                           pingMs=Int64(0), lastHeartbeatMessage="", syncSourceHost="", syncSourceId=-1,
                           infoMessage="")
            members.append(doc)
        voting = [c for c in self.config["members"] if c["votes"]]
        data_voting = [c for c in voting if not c["arbiterOnly"]]
        return {
            "set": self.name, "date": t, "myState": 1 if me == primary else 2, "term": Int64(1),
            "syncSourceHost": "", "syncSourceId": -1, "heartbeatIntervalMillis": Int64(2000),
            "majorityVoteCount": len(voting) // 2 + 1, "writeMajorityCount": min(len(voting) // 2 + 1, len(data_voting)),
            "votingMembersCount": len(voting), "writableVotingMembersCount": len(data_voting),
            "optimes": {"lastCommittedOpTime": {"ts": Timestamp(int(committed.replace(tzinfo=dt.timezone.utc).timestamp()), 1), "t": Int64(1)},
                        "lastCommittedWallTime": committed, "appliedOpTime": {"ts": Timestamp(0, 1), "t": Int64(1)},
                        "lastAppliedWallTime": applied, "lastDurableWallTime": applied},
            "members": members, "ok": 1.0,
        }


INITIAL_USERS = [
    ("admin", [{"role": "root", "db": "admin"}], "admin-pw-0000000000000000000000"),
    ("monitor", [{"role": "clusterMonitor", "db": "admin"}], "monitor-pw-00000000000000000000"),
    ("backup", [{"role": "backup", "db": "admin"}, {"role": "clusterMonitor", "db": "admin"},
                {"role": "read", "db": "local"}], "backup-pw-000000000000000000000"),
    ("restore", [{"role": "restore", "db": "admin"}, {"role": "dbrsOplogReplay", "db": "admin"}],
     "restore-pw-00000000000000000000"),
]


_HANDED_OUT = set()


def free_port():
    """A free port below the kernel's ephemeral range, so no client connection of this test run can take it
    between now and the member's bind (a port from bind(0) is ephemeral: that race failed runs)."""
    import random

    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(200):
        port = random.randrange(max(1024, low - 12000), low)
        if port in _HANDED_OUT:     # a member made but not started yet, or stopped to be restarted, owns it
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            _HANDED_OUT.add(port)
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def series(version):
    return ".".join(version.split(".")[:2])


class StandInMember:
    def __init__(self, rs, name, role):
        self.rs, self.name, self.role = rs, name, role
        self.version = VERSION   # buildInfo.version: the binary it runs
        self.server = None
        self.port = free_port()
        self.up = False
        self.auth = {}     # client port -> user
        self.sasl = {}     # client port -> Conversation
        self.last_heard = None   # when the others last got a heartbeat answer (set when it stops)
        self.tls_mode = "disabled"   # net.tls.mode it started with (getParameter tlsMode); set by restart()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        self.server = MockupDB(port=self.port)
        self.server.autoresponds(self.handle)
        self.server.run()
        self.up = True

    def stop(self):
        if self.server and self.up:
            self.up = False
            self.last_heard = now()
            time.sleep(0.05)  # MockupDB's accept thread fails if its socket closes before it first runs
            self.server.stop()

    # -------------------------------------------------------------- dispatch
    def handle(self, request):
        rs = self.rs
        low = next(iter(request.doc)).lower()
        fault = rs.fault if low not in ("hello", "ismaster", "endsessions") else None
        if fault == "auth" and low == "saslcontinue":
            return request.command_err(code=18, errmsg="Authentication failed.", codeName="AuthenticationFailed")
        if fault in ("drop", "timeout") and low not in ("saslstart", "saslcontinue"):
            if fault == "timeout":
                time.sleep(rs.stall_s)   # outside the lock: the other members keep answering
            return request.hangup()
        if fault == "error" and low not in ("saslstart", "saslcontinue"):
            return request.command_err(code=8000, errmsg="stand-in: the server failed", codeName="AtlasError")
        with rs.lock:
            doc = dict(request.doc)
            name = next(iter(doc))
            low = name.lower()
            port = request.client_port
            user = self.auth.get(port)
            if low in ("hello", "ismaster"):
                return request.reply(self.hello(legacy=low == "ismaster", hello_ok="helloOk" in doc))
            if low not in ("saslstart", "saslcontinue"):
                rs.log.append(Sent(self.name, name, doc, user))
            if low == "saslstart":
                return self.sasl_start(request, doc)
            if low == "saslcontinue":
                return self.sasl_continue(request, doc)
            if low in ("endsessions", "ping"):
                return request.ok()
            if not self.allowed(user, low, doc):
                return request.command_err(code=13, errmsg=f"Command {name} requires authentication"
                                           if user is None else f"not authorized on admin to execute command {{ {name} }}",
                                           codeName="Unauthorized")
            if low in WRITES and rs.current_primary() != self.name:
                return request.command_err(code=10107, errmsg="not primary", codeName="NotWritablePrimary")
            handler = getattr(self, "cmd_" + low, None)
            if handler is None:
                return request.command_err(code=59, errmsg=f"no such command: '{name}'", codeName="CommandNotFound")
            return handler(request, doc)

    def allowed(self, user, low, doc):
        rs = self.rs
        if low == "buildinfo":     # MongoDB answers it before authentication
            return True
        if user is None:
            return not rs.users and not rs.custom_roles and low in LOCALHOST_EXCEPTION
        granted = set()
        for role in rs.users[user]["roles"]:
            if role["role"] == "root":
                return True
            granted |= ROLE_COMMANDS.get(role["role"] if role["db"] == "admin" else f"{role['role']}@{role['db']}", set())
        if low == "find":
            return f"find:{doc.get('$db')}.{doc['find']}" in granted
        return low in granted

    # -------------------------------------------------------------- hello
    def hello(self, legacy=False, hello_ok=False):
        rs = self.rs
        doc = {"maxBsonObjectSize": 16777216, "maxMessageSizeBytes": 48000000, "maxWriteBatchSize": 100000,
               "localTime": now(), "logicalSessionTimeoutMinutes": 30, "connectionId": 1, "readOnly": False,
               "ok": 1.0, **WIRE}
        if hello_ok:
            doc["helloOk"] = True
        writable = False
        if rs.config is None or rs.cfg_member(self.name) is None:
            doc.update(secondary=False, isreplicaset=True, info="Does not have a valid replica set config")
        else:
            primary = rs.current_primary()
            writable = primary == self.name
            doc.update(setName=rs.name, setVersion=rs.config["version"], me=self.address,
                       hosts=[c["host"] for c in rs.config["members"] if not c["arbiterOnly"]],
                       arbiters=[c["host"] for c in rs.config["members"] if c["arbiterOnly"]],
                       secondary=not writable and self.role != "arbiter")
            if self.role == "arbiter":
                doc["arbiterOnly"] = True
            if primary:
                doc["primary"] = rs.members[primary].address
        doc["ismaster" if legacy else "isWritablePrimary"] = writable
        return doc

    # -------------------------------------------------------------- SCRAM
    def sasl_start(self, request, doc):
        if doc.get("mechanism") != "SCRAM-SHA-256":
            return request.command_err(code=2, errmsg="Received authentication for mechanism "
                                       f"{doc.get('mechanism')} which is not enabled", codeName="BadValue")
        conv = scram.Conversation(lambda u: (self.rs.users.get(u) or {}).get("creds"))
        self.sasl[request.client_port] = conv
        payload = conv.start(doc["payload"])
        return request.reply({"conversationId": 1, "done": False, "payload": Binary(payload), "ok": 1})

    def sasl_continue(self, request, doc):
        conv = self.sasl.get(request.client_port)
        try:
            payload = conv.step(doc["payload"])
        except (scram.AuthFailed, AttributeError):
            return request.command_err(code=18, errmsg="Authentication failed.", codeName="AuthenticationFailed")
        self.auth[request.client_port] = conv.user
        return request.reply({"conversationId": 1, "done": True, "payload": Binary(payload), "ok": 1})

    # -------------------------------------------------------------- commands
    def cmd_replsetinitiate(self, request, doc):
        rs = self.rs
        if rs.config is not None:
            return request.command_err(code=23, errmsg="already initialized", codeName="AlreadyInitialized")
        cfg = doc["replSetInitiate"]
        if cfg.get("_id") != rs.name:
            return request.command_err(code=93, errmsg=f"Attempting to initiate a replica set with name {cfg.get('_id')}, "
                                       f"but command line reports {rs.name}; rejecting", codeName="InvalidReplicaSetConfig")
        if self.address not in [m["host"] for m in cfg["members"]]:
            return request.command_err(code=93, errmsg="No host described in new configuration with {version: 1, term: 0} "
                                       f"for replica set {rs.name} maps to this node", codeName="InvalidReplicaSetConfig")
        failed = []
        for m in cfg["members"]:
            other = rs.by_address(m["host"])
            if other is None or other is self:
                continue
            if not other.up:
                failed.append(f"{m['host']} failed with Error connecting to {m['host']} :: caused by :: Connection refused")
            elif other.name in rs.keyfile_mismatch or self.name in rs.keyfile_mismatch:
                failed.append(f"{m['host']} failed with Authentication failed.")
        if failed:
            return request.command_err(code=74, codeName="NodeNotFound", errmsg=(
                "replSetInitiate quorum check failed because not all proposed set members responded affirmatively: "
                + ", ".join(failed)))
        rs.config = rs._config_from(cfg)
        rs.elect_at = time.monotonic() + ELECTION_S
        return request.ok()

    def cmd_replsetgetstatus(self, request, doc):
        if self.rs.config is None:
            return request.command_err(code=94, errmsg="no replset config has been received", codeName="NotYetInitialized")
        return request.reply(self.rs.status_doc(self.name))

    def cmd_replsetgetconfig(self, request, doc):
        return request.reply({"config": copy.deepcopy(self.rs.config), "ok": 1})

    def cmd_replsetreconfig(self, request, doc):
        rs = self.rs
        new = doc["replSetReconfig"]
        old = rs.config
        err = reconfig_error(old, new, rs.name, rs.config_committed(), global_default=rs.rw is not None)
        if err:
            return request.command_err(code=err[0], codeName=err[1], errmsg=err[2])
        old_hosts = {c["host"]: c for c in old["members"]}
        for c in new["members"]:
            m = rs.by_address(c["host"])
            if m is None:
                continue
            if c["host"] not in old_hosts:
                rs.joined[m.name] = time.monotonic()
            if c.get("votes", 1) and not old_hosts.get(c["host"], {}).get("votes", 0):
                rs.vote_grants.append((m.name, float("inf") if rs.syncing(m.name) else rs.lag_of(m.name)))
        stored = copy.deepcopy(new)
        stored["term"] = old["term"]
        for c in stored["members"]:
            c.setdefault("votes", 1)
            c.setdefault("priority", 0 if c.get("arbiterOnly") else 1)
            c.setdefault("arbiterOnly", False)
        rs.prev_version = old["version"]
        rs.config = stored
        rs.config_at = time.monotonic()
        rs.configs.append(copy.deepcopy(stored))
        return request.ok()

    def cmd_replsetstepdown(self, request, doc):
        rs = self.rs
        catch_up = doc.get("secondaryCatchUpPeriodSecs", 10)
        if doc["replSetStepDown"] < catch_up:
            return request.command_err(code=2, codeName="BadValue",
                                       errmsg="stepdown period must be longer than secondaryCatchUpPeriodSecs")
        electable = [m for m in rs.in_config() if m.name != self.name and m.up and m.role != "arbiter"
                     and rs.cfg_member(m.name)["votes"] and rs.cfg_member(m.name)["priority"] > 0
                     and rs.lag_of(m.name) <= catch_up]
        if not electable:
            return request.command_err(code=262, codeName="ExceededTimeLimit",
                                       errmsg="No electable secondaries caught up as of now.")
        rs.primary = None
        rs.electable_after[self.name] = time.monotonic() + doc["replSetStepDown"]
        rs.elect_at = time.monotonic() + ELECTION_S
        return request.ok()

    def cmd_usersinfo(self, request, doc):
        wanted = doc["usersInfo"]
        if wanted == 1:  # every user of the database the command runs on (all of them live in admin here)
            wanted = sorted(self.rs.users) if doc.get("$db") == "admin" else []
        wanted = [wanted] if isinstance(wanted, (str, dict)) else wanted
        names = [w if isinstance(w, str) else w["user"] for w in wanted]
        users = [{"_id": f"admin.{n}", "user": n, "db": "admin", "roles": self.rs.users[n]["roles"],
                  "mechanisms": ["SCRAM-SHA-256"]} for n in names if n in self.rs.users]
        return request.reply({"users": users, "ok": 1})

    def cmd_rolesinfo(self, request, doc):
        name = doc["rolesInfo"]
        roles = [{"role": name, "db": "admin", "isBuiltin": False, "roles": [], "inheritedRoles": []}] \
            if name in self.rs.custom_roles else []
        return request.reply({"roles": roles, "ok": 1})

    def cmd_createuser(self, request, doc):
        rs = self.rs
        name = doc["createUser"]
        if name in rs.users:
            return request.command_err(code=51003, codeName="Location51003", errmsg=f'User "{name}@admin" already exists')
        if doc.get("mechanisms") != ["SCRAM-SHA-256"] or not doc.get("pwd"):
            return request.command_err(code=2, codeName="BadValue", errmsg="stand-in: dbrs must send pwd and SCRAM-SHA-256 only")
        for role in doc["roles"]:
            known = (role["role"] in BUILTIN_ROLES and (role["db"] == "admin" or role["role"] not in ADMIN_ONLY_ROLES)
                     or role["role"] in rs.custom_roles)
            if not known:
                return request.command_err(code=31, codeName="RoleNotFound",
                                           errmsg=f"Could not find role: {role['role']}@{role['db']}")
        rs.users[name] = {"roles": doc["roles"], "creds": scram.credentials(doc["pwd"], iterations=4096)}
        return request.ok()

    def cmd_updateuser(self, request, doc):
        rs = self.rs
        name = doc["updateUser"]
        if name not in rs.users:
            return request.command_err(code=11, codeName="UserNotFound", errmsg=f"User {name}@admin not found")
        if set(doc) - {"updateUser", "pwd", "mechanisms", "roles", "$db", "lsid", "$clusterTime",
                       "$readPreference", "writeConcern", "digestPassword"}:
            return request.command_err(code=40415, codeName="Location40415", errmsg="unknown field in updateUser")
        if "pwd" in doc:
            if not doc["pwd"] or doc.get("mechanisms") not in (None, ["SCRAM-SHA-256"]):
                return request.command_err(code=2, codeName="BadValue", errmsg="stand-in: pwd with SCRAM-SHA-256 only")
            rs.users[name]["creds"] = scram.credentials(doc["pwd"], iterations=4096)
        if "roles" in doc:
            rs.users[name]["roles"] = doc["roles"]
        return request.ok()

    def cmd_dropuser(self, request, doc):
        name = doc["dropUser"]
        if name not in self.rs.users:
            return request.command_err(code=11, codeName="UserNotFound", errmsg=f"User {name}@admin not found")
        del self.rs.users[name]
        return request.ok()

    def cmd_aggregate(self, request, doc):
        """$collStats on local.oplog.rs only: the member's own oplog size."""
        if (doc.get("$db"), doc["aggregate"]) != ("local", "oplog.rs") or list(doc["pipeline"][0]) != ["$collStats"]:
            return request.command_err(code=2, codeName="BadValue", errmsg="stand-in: only $collStats on local.oplog.rs")
        if self.role == "arbiter":
            return request.command_err(code=26, codeName="NamespaceNotFound", errmsg="local.oplog.rs does not exist")
        size = self.rs.oplog_bytes.get(self.name, OPLOG_DEFAULT_BYTES)
        return request.reply({"cursor": {"id": Int64(0), "ns": "local.oplog.rs", "firstBatch": [
            {"ns": "local.oplog.rs", "storageStats": {"capped": True, "maxSize": Int64(size), "size": Int64(size // 3)}}]},
            "ok": 1})

    def cmd_replsetresizeoplog(self, request, doc):
        """As MongoDB: size is MB as a double, 990 MB .. 1 PB, on the member that runs it; arbiters have no oplog."""
        size = doc.get("size")
        if self.role == "arbiter":
            return request.command_err(code=20, codeName="IllegalOperation", errmsg="arbiters have no oplog")
        if not isinstance(size, float) or not 990 <= size <= 1024 ** 3:
            return request.command_err(code=2, codeName="BadValue",
                                       errmsg="BSON field 'size' must be a double between 990 MB and 1 PB")
        self.rs.oplog_bytes[self.name] = int(size * 1024 * 1024)
        return request.ok()

    def cmd_buildinfo(self, request, doc):
        """Answered before authentication, as MongoDB does; the binary's version."""
        parts = [int(p) for p in self.version.split(".")]
        return request.reply({"version": self.version, "versionArray": parts + [0], "gitVersion": "stand-in",
                              "bits": 64, "maxBsonObjectSize": 16777216, "ok": 1})

    def cmd_getparameter(self, request, doc):
        """featureCompatibilityVersion and tlsMode (the mode this member started with), each asked as NAME: 1;
        as mongod, a name it does not know is "no option found to get" and nothing asked is refused too."""
        asked = set(doc) - {"getParameter", *TRANSPORT_FIELDS}
        unknown = asked - {"featureCompatibilityVersion", "tlsMode"}
        if unknown or not asked:
            return request.command_err(code=72, codeName="InvalidOptions", errmsg="no option found to get")
        reply = {"ok": 1}
        if "featureCompatibilityVersion" in asked:
            reply["featureCompatibilityVersion"] = dict(self.rs.fcv)
        if "tlsMode" in asked:
            reply["tlsMode"] = self.tls_mode
        return request.reply(reply)

    def cmd_setfeaturecompatibilityversion(self, request, doc):
        """As 7.0+: confirm: true is required; upgrading only one series up and only when every member's
        binary runs that series (an older binary cannot follow the new FCV), on the primary."""
        rs = self.rs
        want = doc["setFeatureCompatibilityVersion"]
        if doc.get("confirm") is not True:
            return request.command_err(code=7369100, codeName="Location7369100", errmsg=(
                f"Once you have upgraded to {want}, you will not be able to downgrade FCV and binary version without "
                "support assistance. Please re-run this command with 'confirm: true' to acknowledge this and "
                "continue with the FCV upgrade."))
        behind = [m.name for m in rs.members.values() if series(m.version) != want]
        if behind or not all(m.up for m in rs.members.values()):
            return request.command_err(code=20, codeName="IllegalOperation",
                                       errmsg=f"stand-in: members {behind} do not run {want} or are down")
        rs.fcv = {"version": want}
        return request.ok()

    def cmd_createrole(self, request, doc):
        rs = self.rs
        name = doc["createRole"]
        if name in rs.custom_roles:
            return request.command_err(code=51002, codeName="Location51002", errmsg=f'Role "{name}@admin" already exists')
        rs.custom_roles[name] = doc
        return request.ok()

    def cmd_getdefaultrwconcern(self, request, doc):
        rs = self.rs
        implicit = rs.rw is None
        wc = {"w": 1, "wtimeout": 0} if implicit else rs.rw
        return request.reply({"defaultReadConcern": {"level": "local"}, "defaultWriteConcern": wc,
                              "defaultWriteConcernSource": "implicit" if implicit else "global",
                              "defaultReadConcernSource": "implicit", "localUpdateWallClockTime": now(), "ok": 1})

    def cmd_setdefaultrwconcern(self, request, doc):
        wc = doc.get("defaultWriteConcern")
        if not wc or "w" not in wc:
            return request.command_err(code=2, codeName="BadValue", errmsg="Default write concern must have 'w' field.")
        self.rs.rw = dict(wc)
        return request.reply({"defaultReadConcern": {"level": "local"}, "defaultWriteConcern": wc,
                              "updateOpTime": Timestamp(int(time.time()), 1), "updateWallClockTime": now(),
                              "defaultWriteConcernSource": "global", "defaultReadConcernSource": "implicit",
                              "localUpdateWallClockTime": now(), "ok": 1})

    def cmd_find(self, request, doc):
        if doc["find"] != "oplog.rs" or doc.get("$db") != "local":
            return request.command_err(code=2, codeName="BadValue", errmsg="stand-in: only local.oplog.rs is served")
        first = self.rs.started
        last = now() - dt.timedelta(seconds=1)
        entry = first if doc.get("sort", {}).get("$natural") == 1 else last
        ts = Timestamp(int(entry.replace(tzinfo=dt.timezone.utc).timestamp()), 1)
        return request.reply({"cursor": {"id": Int64(0), "ns": "local.oplog.rs",
                                         "firstBatch": [{"ts": ts, "wall": entry}]}, "ok": 1})


def _voters(config):
    return {c["host"] for c in config["members"] if c.get("votes", 1) and not c.get("newlyAdded")}


def implicit_write_concern(config):
    """MongoDB's implicit default: w:1 when arbiters > 0 and data-bearing voters <= majority of the voters."""
    voting = [c for c in config["members"] if c.get("votes", 1) and not c.get("newlyAdded")]
    arbiters = [c for c in voting if c.get("arbiterOnly")]
    return 1 if arbiters and len(voting) - len(arbiters) <= len(voting) // 2 + 1 else "majority"


def reconfig_error(old, new, set_name, committed, global_default=True):
    """(code, codeName, errmsg) of MongoDB's refusal of a non-force reconfig from `old` to `new`, or None.

    Codes and wording from mongodb/mongo (repl_set_config_checks.cpp, repl_set_config.cpp,
    member_config.cpp, replset_commands.cpp)."""
    bad = (93, "InvalidReplicaSetConfig")
    incompatible = (103, "NewReplicaSetConfigurationIncompatible")
    if not committed:
        return (308, "CurrentConfigNotCommittedYet", f"New config is rejected :: caused by :: Current config with "
                f"{{version: {old['version']}, term: {old['term']}}} has not yet propagated to a majority of nodes")
    if new.get("version") != old["version"] + 1:
        return (*incompatible, f"New config version {new.get('version')} must be greater than old version "
                f"{old['version']}")
    if new.get("_id") != set_name:
        return (*incompatible, f"New and old configurations differ in replica set name; old was {set_name}, "
                f"and new is {new.get('_id')}")
    members = new.get("members", [])
    if not 1 <= len(members) <= 50:
        return (*bad, f"Replica set configuration contains {len(members)} members, but must be at least 1 and no "
                "more than 50")
    ids, hosts = [c.get("_id") for c in members], [c.get("host") for c in members]
    if len(set(ids)) != len(ids) or len(set(hosts)) != len(hosts):
        return (*bad, "Found two member configurations with same _id field or host")
    old_by_id = {c["_id"]: c for c in old["members"]}
    old_by_host = {c["host"]: c for c in old["members"]}
    for c in members:
        votes, priority, arbiter = c.get("votes", 1), c.get("priority", 0 if c.get("arbiterOnly") else 1), c.get("arbiterOnly", False)
        if "newlyAdded" in c:
            return (*bad, "Cannot provide newlyAdded field to member config during reconfig")
        if votes not in (0, 1):
            return (*bad, f"votes field value is {votes} but must be 0 or 1")
        if not votes and priority:
            return (*bad, f"priority must be 0 when non-voting (votes:0) for {c['host']}")
        if arbiter and priority:
            return (*bad, "priority must be 0 for an arbiter")
        if arbiter and not votes:
            return (*bad, "Arbiter must vote (cannot have 0 votes)")
        same_host = old_by_host.get(c["host"])
        if same_host is not None and same_host["_id"] != c["_id"]:
            return (*incompatible, f"New and old configurations both have members with host of {c['host']} but "
                    f"in the new configuration the _id field is {c['_id']} and in the old configuration it is "
                    f"{same_host['_id']} for replica set {set_name}")
        same_id = old_by_id.get(c["_id"])
        if same_id is not None and bool(same_id.get("arbiterOnly")) != bool(arbiter):
            return (*incompatible, f"New and old configurations differ in the setting of the arbiterOnly field for "
                    f"member {c['host']}; to make this change, remove then re-add the member")
    voters = _voters(new)
    if not 1 <= len(voters) <= 7:
        return (*bad, f"Replica set configuration contains {len(voters)} voting members, but must be at least 1 "
                "and no more than 7")
    if len(_voters(old) ^ voters) > 1:
        return (*incompatible, "Non force replica set reconfig can only add or remove at most 1 voting member.")
    if not global_default and implicit_write_concern(old) != implicit_write_concern(new):
        return (*incompatible, "Reconfig attempted to install a config that would change the implicit default write "
                "concern. Use the setDefaultRWConcern command to set a cluster-wide write concern and try the "
                "reconfig again.")
    return None
