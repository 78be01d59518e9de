"""`dbrs backup`: one full dump of the replica set, taken on one host, streamed into a checked file.

The host and member come from source.choose_source (the first healthy
SECONDARY, else the primary). The dump is `mongodump --oplog --archive
--gzip` against that member over loopback, as the backup user, its
password through a pipe (tools.PasswordPipe). The stream goes through
archive.Sink (sha256, optional encryption, `.partial` -> rename); the
manifest comes last (finish).
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

from .. import tls, tools
from . import archive, catalog, dump, finish, source, times, history
from .manifest import Manifest
from ..errors import DbrsError
from ..replset.connection import talking


@dataclass
class Result:
    status: str                     # "done" | "skipped"
    reason: str = ""
    name: str = ""
    path: str = ""
    manifest: dict = field(default_factory=dict)   # the manifest as JSON, for --json

    def line(self):
        if self.status == "skipped":
            return f"backup skipped: {self.reason}"
        m = self.manifest
        return (f"backup {self.name}: {dump.human(m['bytes'])} from {m['member']} in {m['duration_s']:.1f} s, "
                f"sha256 {m['sha256'][:16]}…, {'encrypted' if m['encrypted'] else 'not encrypted'}")


def run(spec, spec_path, *, progress=None, connect_fn=None, now=time.time, hostname=None, local=None, stall=dump.STALL_S):
    """Take one full backup if this host is the one to; see the module docstring."""
    state_file, password, key, local, connect_fn = source.prepare(spec, spec_path, connect_fn, local)
    if not local:
        return Result("skipped", "this host has no data-bearing member of the spec")
    mongodump = tools.find("mongodump")
    bdir = spec.backup.dir
    with tools.signals_as_errors("the backup"), catalog.lock(bdir, catalog.FULL):
        client = connect_fn(local[0], password)
        try:
            try:
                states = source.member_states(spec, source.first_status(client, local[0], state_file))
            except source.Skip as s:
                return Result("skipped", str(s))
            with talking(source.who(local[0]), "replSetGetConfig"):
                ident = source.cluster_identity(client, spec)
            catalog.remember_identity(ident, state_file)
            catalog.clear_partials(bdir, catalog.FULL, ident)
            try:
                member, why = source.choose_source(spec, local, states)
            except source.Skip as s:
                return Result("skipped", str(s))
            if member != local[0]:
                client.close()
                client = connect_fn(member, password)
                try:    # users reach the other members a moment after the bootstrap created them
                    source.first_status(client, member, state_file)
                except source.Skip as s:
                    return Result("skipped", str(s))
            with talking(source.who(member), "buildInfo, find local.oplog.rs"):
                mongod_version = source.server_version(client)
                oplog_start = source.newest_ts(client)
            started = now()
            name = catalog.free_name(catalog.kind_dir(bdir, catalog.FULL), ident.cluster, catalog.FULL, started,
                                     ident.replset_id)
            path = catalog.kind_dir(bdir, catalog.FULL) / name
            try:
                with catalog.folder_errors(bdir), archive.Sink(path, key) as sink:
                    counts = dump.stream_dump(lambda cfg: dump.dump_argv(mongodump, member.port, cfg, tls_args=tls_args(spec, spec_path)), password, sink,
                                         progress, stall)
                    with talking(source.who(member), "find local.oplog.rs"):
                        oplog_end = source.newest_ts(client)
                    written = sink.commit()
            except OSError as e:
                raise DbrsError(f"writing {path}: {e.strerror or e}; nothing was kept (is {bdir} full?)") from None
        finally:
            client.close()
        finished = now()
        manifest = Manifest(
            kind=catalog.FULL, name=name, cluster=spec.cluster.name, replset_id=ident.replset_id,
            member=member.name, member_state=why, host=hostname or socket.gethostname(),
            started=times.iso(started), finished=times.iso(finished), duration_s=round(finished - started, 3),
            bytes=written.bytes, plain_bytes=written.plain_bytes, sha256=written.sha256,
            encrypted=written.encrypted, key_id=archive.key_id(key).hex() if key else None,
            **archive.proofs(written), oplog_start=oplog_start, oplog_end=oplog_end,
            mongod_version=mongod_version, mongodump_version=tools.version(mongodump), collections=counts)
        finish.write_manifest_or_remove(path, manifest)
        finish.record_written(path)
        finish.queue_offsite(spec, path)
    history.record_success(catalog.FULL, {"name": name, "bytes": written.bytes, "host": manifest.host}, state_file)
    finish.metrics(spec, state_file)
    return Result("done", why, name, str(path), manifest.to_dict())


def tls_args(spec, spec_path):
    """mongodump's TLS flags when the spec turns TLS on: the member then refuses (or may refuse) plaintext."""
    from pathlib import Path

    return tls.tool_args(tls.client_mode(spec), tls.ca_path(Path(spec_path).parent))
