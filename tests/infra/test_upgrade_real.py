"""A real rolling 7.0 -> 8.0 upgrade (Vagrant tier, marked real_mongod), ready to run where MongoDB exists.

Provision the VMs on 7.0 (`DBRS_MONGODB_VERSION=7.0 vagrant up`), then run this module with the Vagrant
helper's environment (see test_replset_real.py). It runs `dbrs upgrade --to 8.0` on the primary's host first
(refused, exit 2, naming another host), then on the other hosts and the primary's host, checks that majority
writes succeed between hosts, every member reports 8.0 in buildInfo, the apt pin and the spec follow, and
finally raises the FCV with `--set-fcv 8.0 --yes` (one-way: run it on VMs you can rebuild).
"""

from __future__ import annotations

import pytest

from .test_replset_real import host_of, set_client, wait_healthy

pytestmark = pytest.mark.real_mongod


def _versions(spec):
    from installer import upgrade_run

    return {m.name: upgrade_run.build_version(m) for m in spec.members}


def _fcv(spec, secrets):
    with set_client(spec, secrets) as c:
        return c.admin.command({"getParameter": 1, "featureCompatibilityVersion": 1})["featureCompatibilityVersion"]


def _write(spec, secrets, n):
    from pymongo import WriteConcern

    with set_client(spec, secrets) as c:
        c.dbrs_upgrade_test.marks.with_options(write_concern=WriteConcern("majority")).insert_one({"n": n})
        return c.dbrs_upgrade_test.marks.count_documents({})


def test_rolling_upgrade_7_0_to_8_0_then_fcv(real):
    from installer.replset import connection

    spec, secrets, _ = real
    if {v.rsplit(".", 1)[0] for v in _versions(spec).values() if v} != {"7.0"} or _fcv(spec, secrets).get("version") != "7.0":
        pytest.skip("needs a set running 7.0 with FCV 7.0: provision with DBRS_MONGODB_VERSION=7.0 vagrant up")
    wait_healthy(spec, secrets)
    count = _write(spec, secrets, 0)
    primary, _ = connection.find_primary(spec)
    first = host_of(primary)
    early = first.run("dbrs upgrade --to 8.0")
    assert early.rc == 2 and "goes last" in early.stderr + early.stdout

    order = [m for m in spec.members if m.host != primary.host] + [primary]
    seen_hosts = []
    for m in order:
        if m.host in seen_hosts:
            continue
        seen_hosts.append(m.host)
        h = host_of(m)
        r = h.run("dbrs upgrade --to 8.0 --wait 900")
        assert r.rc == 0, r.stdout[-3000:] + r.stderr[-3000:]
        assert "changed" in r.stdout
        wait_healthy(spec, secrets, limit_s=300)
        count = _write(spec, secrets, len(seen_hosts))
        assert 'Pin: version 8.0.*' in h.file("/etc/apt/preferences.d/dbrs-mongodb-org").content_string
        assert 'mongodb_version = "8.0"' in h.file("/etc/dbrs/cluster.toml").content_string
    versions = _versions(spec)
    assert all(v and v.startswith("8.0.") for v in versions.values()), versions
    assert _fcv(spec, secrets).get("version") == "7.0", "binaries move first; the FCV only on --set-fcv"

    done = host_of(primary).run("dbrs upgrade --to 8.0")
    assert done.rc == 0 and "--set-fcv 8.0" in done.stdout
    fcv = host_of(primary).run("dbrs upgrade --set-fcv 8.0 --yes")
    assert fcv.rc == 0, fcv.stdout + fcv.stderr
    assert _fcv(spec, secrets) == {"version": "8.0"}
    assert _write(spec, secrets, 99) == count + 1
