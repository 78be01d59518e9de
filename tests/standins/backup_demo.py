#!/usr/bin/env python3
"""Prints the operator guide's example sessions (docs/backup.md) from the real CLI, with stand-ins.

mongodump/mongorestore are the stand-ins of this folder; the replica-set
member is fake_member.FakeMember and the cluster's server version is fixed,
since no mongod runs here. Everything else (files, manifests, checks,
plans, messages) is dbrs's own. Run: .venv/bin/python tests/standins/backup_demo.py
"""

import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from click.testing import CliRunner  # noqa: E402

from fake_member import FakeMember, entry  # noqa: E402
from installer import spec as specmod
from installer.backup import full as backup, catalog, restore, times, source, history  # noqa: E402
from installer.cli import main  # noqa: E402


def setup():
    tmp = Path(tempfile.mkdtemp(prefix="dbrs-demo-"))
    etc = tmp / "etc" / "dbrs"
    etc.mkdir(parents=True)
    backups = Path("/var/backups/dbrs-demo")
    if backups.exists():
        import shutil

        shutil.rmtree(backups)
    (etc / "cluster.toml").write_text(f"""\
[cluster]
name = "shop"
mongodb_version = "8.0"

[[members]]
name = "mongod1"
host = "127.0.0.1"
port = 27017
role = "primary"

[[members]]
name = "mongod2"
host = "127.0.0.1"
port = 27018
role = "secondary"

[[members]]
name = "mongod3"
host = "127.0.0.1"
port = 27019
role = "arbiter"

[backup]
dir = "{backups}"
keep_min = 2
""")
    (etc / "secrets.toml").write_text('[passwords]\nbackup = "b-demo-0000000000000000000000000"\n'
                                      'restore = "r-demo-0000000000000000000000000"\n')
    (etc / "backup.key").write_text("ZGVtby1rZXktZGVtby1rZXktZGVtby1rZXktZGVtbyE=\n")
    for f in etc.iterdir():
        f.chmod(0o600)
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for tool in ("mongodump", "mongorestore"):
        (bin_dir / tool).symlink_to(HERE / tool)
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    os.environ["DBRS_STANDIN_DUMP_BYTES"] = str(48 << 20)
    history.STATE_FILE = tmp / "state.json"
    spec = specmod.load(etc / "cluster.toml")
    return tmp, str(etc / "cluster.toml").replace(str(tmp), ""), str(etc / "cluster.toml"), spec


def run(shown_config, real_config, *args):
    shown = " ".join(shlex.quote(a) for a in args)
    print(f"$ sudo dbrs {shown}".replace(real_config, shown_config))
    r = CliRunner().invoke(main, [*args, "--config", real_config])
    print(r.output.replace(real_config, shown_config), end="")
    if r.exit_code:
        print(f"(exit {r.exit_code})")
    print()


def main_():
    tmp, shown, real, spec = setup()
    now = int(time.time())
    oplog = [entry(now - 600 + i, 1) for i in range(0, 60, 10)]
    member = FakeMember(spec, {"mongod1": "PRIMARY", "mongod2": "SECONDARY", "mongod3": "ARBITER"}, oplog,
                        version="8.0.4")
    source.connect = member.connect
    restore.cluster_version = lambda spec, pw: "8.0.4"
    run(shown, real, "backup")
    for s in (70, 80, 90, 100, 110, 200, 300):
        member.oplog.append(entry(now - 600 + s, 1))
    member.oplog += [entry(now - 600 + 300, 2), entry(now - 600 + 300, 3)]
    run(shown, real, "oplog")
    # another cluster named "shop" (its own replica set id) backs up into the same folder
    other = FakeMember(spec, member.states, [entry(now - 100, 1)], version="8.0.4",
                       replset_id="65f0000000000000000000b2")
    source.connect = other.connect
    import shutil

    other_etc = tmp / "other" / "etc" / "dbrs"     # its own host: its own spec folder and state file
    shutil.copytree(Path(real).parent, other_etc)
    backup.run(spec, str(other_etc / "cluster.toml"), local=[spec.member("mongod2")])
    source.connect = member.connect
    run(shown, real, "backup", "list")
    run(shown, real, "backup", "verify", "--all")
    ident = catalog.identity(spec.backup.dir, "shop", state_file=history.state_path(real))
    name = catalog.scan(spec.backup.dir, catalog.FULL, ident)[0][0].name
    run(shown, real, "restore", name, "--dry-run")
    run(shown, real, "restore", "--to", times.iso(now - 600 + 95), "--yes")
    run(shown, real, "restore", "--to", times.iso(now - 600 + 300) + "+2", "--yes")
    os.environ["DBRS_STANDIN_RESTORE_FAIL_OPLOG"] = "1"
    run(shown, real, "restore", "--to", times.iso(now - 600 + 95), "--yes")
    del os.environ["DBRS_STANDIN_RESTORE_FAIL_OPLOG"]
    p = Path(spec.backup.dir) / "full" / name
    data = bytearray(p.read_bytes())
    data[len(data) // 3] ^= 1
    p.write_bytes(bytes(data))
    run(shown, real, "backup", "verify", name)
    run(shown, real, "restore", name, "--yes")


if __name__ == "__main__":
    main_()
