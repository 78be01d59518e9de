"""STAND-IN for a pymongo client connected to one replica-set member (dbrs tests only).

Answers just what the backup side asks: replSetGetStatus, replSetGetConfig, buildInfo, and
finds on local.oplog.rs (filter on ts with $gt/$gte/$lte, $natural sort, limit),
returning RawBSONDocuments built from real BSON like a server would. The
wire-level behaviour is covered separately against MockupDB
(tests/protocol/test_oplog_*.py); this one keeps pipeline tests fast.
"""

import bson
from bson.raw_bson import RawBSONDocument
from bson.timestamp import Timestamp

STATE_CODES = {"PRIMARY": 1, "SECONDARY": 2, "ARBITER": 7, "DOWN": 8, "RECOVERING": 3}


def entry(sec, inc, ns="app.orders", op="i", o=None):
    return {"ts": Timestamp(sec, inc), "t": 1, "op": op, "ns": ns, "o": o or {"_id": f"{sec}.{inc}"},
            "wall": None}


class _Cursor:
    def __init__(self, docs):
        self.docs = docs

    def sort(self, key, direction=1):
        if direction == -1:
            self.docs = list(reversed(self.docs))
        return self

    def limit(self, n):
        self.docs = self.docs[:n]
        return self

    def __iter__(self):
        return iter([RawBSONDocument(bson.encode({k: v for k, v in d.items() if v is not None}))
                     for d in self.docs])


class _Oplog:
    def __init__(self, member):
        self.member = member

    def find(self, flt=None, projection=None, sort=None, batch_size=None):
        self.member.finds.append(flt or {})
        docs = list(self.member.oplog)
        cond = (flt or {}).get("ts", {})
        if "$gt" in cond:
            docs = [d for d in docs if d["ts"] > cond["$gt"]]
        if "$gte" in cond:
            docs = [d for d in docs if d["ts"] >= cond["$gte"]]
        if "$lte" in cond:
            docs = [d for d in docs if d["ts"] <= cond["$lte"]]
        cur = _Cursor(docs)
        if sort and sort[0][1] == -1:
            cur.sort("$natural", -1)
        return cur


class _Db:
    def __init__(self, member, name):
        self.member, self.name = member, name

    def __getitem__(self, coll):
        assert (self.name, coll) == ("local", "oplog.rs"), (self.name, coll)
        return _Oplog(self.member)

    def command(self, name):
        self.member.commands.append(name)
        if name == "replSetGetStatus":
            return self.member.status()
        if name == "replSetGetConfig":
            return {"config": {"_id": self.member.spec.cluster.name, "version": 1,
                               "settings": {"replicaSetId": self.member.replset_id}}, "ok": 1}
        if name == "buildInfo":
            return {"version": self.member.version, "ok": 1}
        raise AssertionError(f"unexpected command {name}")


class FakeMember:
    """`states` maps spec member name -> stateStr ("SECONDARY", "DOWN", ...)."""

    def __init__(self, spec, states, oplog=(), version="8.0.4", committed=None, replset_id=None):
        from bson import ObjectId

        self.spec = spec
        self.replset_id = ObjectId(replset_id) if replset_id else ObjectId("65f000000000000000000001")
        self.states = dict(states)
        self.oplog = list(oplog)
        self.version = version
        self.committed = committed
        self.commands, self.finds = [], []
        self.admin = _Db(self, "admin")
        self.closed = 0

    def status(self):
        members = []
        for m in self.spec.members:
            state = self.states.get(m.name, "ARBITER" if m.arbiter else "DOWN")
            members.append({"name": m.address, "stateStr": state, "state": STATE_CODES.get(state, 6),
                            "health": 0 if state == "DOWN" else 1})
        out = {"set": self.spec.cluster.name, "members": members, "ok": 1}
        if self.committed is not None:
            out["optimes"] = {"lastCommittedOpTime": {"ts": self.committed, "t": 1}}
        return out

    def get_database(self, name, codec_options=None):
        return _Db(self, name)

    def close(self):
        self.closed += 1

    def connect(self, member, password):
        """Use as backup.run(connect_fn=fake.connect)."""
        assert password, "the backup password must reach the client"
        self.connected_to = member.name
        return self
