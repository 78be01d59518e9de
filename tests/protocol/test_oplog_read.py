"""Oplog slices on the wire (MockupDB): the exact find sent to local.oplog.rs, and raw bytes kept as sent."""

import io
import zlib

import bson
import pytest
from bson import Int64, Timestamp
from bson.raw_bson import RawBSONDocument
from mockupdb import MockupDB, go

from installer.backup import slices as oplog, times
from installer.replset import connection

WIRE = {"minWireVersion": 0, "maxWireVersion": 25}


@pytest.fixture
def server():
    s = MockupDB(auto_ismaster=False)
    s.autoresponds("hello", isWritablePrimary=True, **WIRE)
    s.autoresponds("ismaster", ismaster=True, **WIRE)
    s.autoresponds("endSessions")
    s.run()
    yield s
    s.stop()


class Collect:
    def __init__(self):
        self.buf = io.BytesIO()

    def write(self, data):
        self.buf.write(data)


def entries():
    # types a decode/encode round trip could alter: Int64, a nested document's key order, binary subtype
    return [
        {"ts": Timestamp(1_764_300_010, 1), "t": Int64(7), "op": "i", "ns": "app.c", "o": {"z": 1, "a": Int64(2)},
         "ui": bson.Binary(b"\x00" * 16, 4)},
        {"ts": Timestamp(1_764_300_010, 2), "t": Int64(7), "op": "u", "ns": "app.c", "o2": {"_id": 1},
         "o": {"$v": 2, "diff": {"u": {"x": 1.5}}}},
        {"ts": Timestamp(1_764_300_011, 1), "t": Int64(7), "op": "n", "ns": "", "o": {"msg": "periodic noop"}},
    ]


def test_slice_reads_after_the_last_ts_in_natural_order_and_keeps_raw_bytes(server):
    client = connection.client("127.0.0.1", server.port, timeout_ms=3000)
    after = times.ts_int(1_764_300_000, 5)
    until = times.ts_int(1_764_300_011, 1)
    sink = Collect()
    future = go(oplog.write_slice, oplog.read_entries(client, after, until, batch_size=2), sink)
    find = server.receives()
    assert find.doc["find"] == "oplog.rs" and find.doc["$db"] == "local"
    assert find.doc["filter"] == {"ts": {"$gt": Timestamp(1_764_300_000, 5), "$lte": Timestamp(1_764_300_011, 1)}}
    assert find.doc["sort"] == {"$natural": 1} and find.doc["batchSize"] == 2
    docs = entries()
    find.reply({"cursor": {"id": Int64(99), "ns": "local.oplog.rs", "firstBatch": docs[:2]}, "ok": 1})
    more = server.receives()
    assert more.doc["getMore"] == Int64(99) and more.doc["collection"] == "oplog.rs"
    more.reply({"cursor": {"id": Int64(0), "ns": "local.oplog.rs", "nextBatch": docs[2:]}, "ok": 1})
    first, last, count = future()
    client.close()
    assert (first, last, count) == (times.ts_int(1_764_300_010, 1), times.ts_int(1_764_300_011, 1), 3)
    raw = zlib.decompress(sink.buf.getvalue(), 31)
    assert raw == b"".join(bson.encode(d) for d in docs)       # byte for byte what the server sent


def test_oplog_bounds_asks_for_one_entry_each_way(server):
    from installer.backup import source

    client = connection.client("127.0.0.1", server.port, timeout_ms=3000)
    future = go(source.oplog_bounds, client)
    for direction, sec in ((1, 1_764_200_000), (-1, 1_764_300_000)):
        req = server.receives()
        assert req.doc["sort"] == {"$natural": direction} and req.doc["limit"] == 1
        assert req.doc["projection"] == {"ts": 1}
        req.reply({"cursor": {"id": Int64(0), "ns": "local.oplog.rs",
                              "firstBatch": [{"ts": Timestamp(sec, 3)}]}, "ok": 1})
    assert future() == (times.ts_int(1_764_200_000, 3), times.ts_int(1_764_300_000, 3))
    client.close()


def test_committed_point_comes_from_replsetgetstatus():
    status = {"optimes": {"lastCommittedOpTime": {"ts": Timestamp(1_764_300_000, 4), "t": Int64(3)}}}
    assert oplog.committed_ts(status) == times.ts_int(1_764_300_000, 4)
    assert oplog.committed_ts({}) is None
    assert isinstance(RawBSONDocument(bson.encode({"ts": Timestamp(1, 1)}))["ts"], Timestamp)
