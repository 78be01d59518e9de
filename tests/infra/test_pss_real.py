"""PSA -> PSS with real data on real mongod (Vagrant tier, marked real_mongod), ready to run where MongoDB exists.

Needs the spare VM: `DBRS_SPARE=1 vagrant up mongod4` (dbrs installed, no member), then this module with the
Vagrant helper's environment (see test_replset_real.py; DBRS_HOST_MONGOD4 comes from `vagrant ssh-config`).
It does what the README's membership section tells an operator: `dbrs member add mongod4 --remove
<arbiter>` on the primary's host, `dbrs-install` with the re-sealed bundle on the new host, `dbrs reconfigure`,
then `dbrs-install` on the old arbiter's host, which prunes its member and keeps its data. It checks that the
documents written before are all on the new member, that every voter holds data, that majority writes go on,
and that the firewall of each remaining host admits the new member and no longer the arbiter's host.
One-way: the Vagrant set is PSS afterwards (rebuild with `vagrant destroy -f && rm -rf shared`).
"""

from __future__ import annotations

import os

import pytest

from .test_replset_real import host_of, wait_healthy

pytestmark = pytest.mark.real_mongod

SHARED = "/dbrs/vagrant/shared"
NEW = ("mongod4", "192.168.56.14")
DOCS = 2000


def _spare():
    import testinfra

    url = os.environ.get("DBRS_HOST_MONGOD4")
    if not url:
        pytest.skip("needs the spare VM: DBRS_SPARE=1 vagrant up mongod4, then `vagrant ssh-config` again")
    return testinfra.get_host(url, ssh_config=os.environ.get("DBRS_SSH_CONFIG"), sudo=True)


def _ok(host, cmd):
    r = host.run(cmd)
    assert r.rc == 0, f"{cmd}: rc={r.rc}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def _spec_on(host):
    from installer import spec as specmod

    return specmod.loads(host.file("/etc/dbrs/cluster.toml").content_string)


def test_psa_becomes_pss_with_the_data_on_the_new_member(real):
    from pymongo import WriteConcern

    from .test_replset_real import set_client
    from installer.replset import connection

    spec, secrets, _ = real
    arbiter = next((m for m in spec.members if m.role == "arbiter"), None)
    if arbiter is None:
        pytest.skip("the set has no arbiter any more (this test already ran; rebuild the VMs)")
    spare = _spare()
    wait_healthy(spec, secrets)
    with set_client(spec, secrets) as c:
        coll = c.dbrs_pss_test.docs.with_options(write_concern=WriteConcern("majority"))
        coll.drop()
        coll.insert_many([{"n": i, "pad": "x" * 512} for i in range(DOCS)])

    primary, _ = connection.find_primary(spec)
    first = host_of(primary)
    passphrase = f"{SHARED}/passphrase"
    _ok(first, f"dbrs member add {NEW[0]} --host {NEW[1]} --remove {arbiter.name} --passphrase-file {passphrase}")
    _ok(first, f"cp /etc/dbrs/bundle.dbrs {SHARED}/bundle-pss.dbrs")
    new_spec = _spec_on(first)
    assert {m.name for m in new_spec.members} == {m.name for m in spec.members if m.role != "arbiter"} | {NEW[0]}
    assert new_spec.cluster.generation > spec.cluster.generation

    out = _ok(spare, f"dbrs-install --bundle {SHARED}/bundle-pss.dbrs --passphrase-file {passphrase}")
    assert NEW[0] in out
    out = _ok(first, "dbrs reconfigure --wait 1800")
    assert "nothing to do" in _ok(first, "dbrs reconfigure --dry-run")

    old = host_of(arbiter)
    out = _ok(old, f"dbrs-install --bundle {SHARED}/bundle-pss.dbrs --passphrase-file {passphrase}")
    assert arbiter.name in out and "data kept in" in out, out
    assert not old.service(f"dbrs-mongod@{arbiter.name}").is_running

    wait_healthy(new_spec, secrets, limit_s=600)
    with set_client(new_spec, secrets) as c:
        config = c.admin.command("replSetGetConfig")["config"]
        assert not any(m.get("arbiterOnly") for m in config["members"])
        voters = [m for m in config["members"] if m.get("votes", 1)]
        assert len(voters) == 3 and all(m.get("priority", 1) > 0 for m in voters), config["members"]
        assert not any(m.get("newlyAdded") for m in config["members"])
        c.dbrs_pss_test.docs.with_options(write_concern=WriteConcern("majority")).insert_one({"n": DOCS})
    new_member = next(m for m in new_spec.members if m.name == NEW[0])
    with connection.client(new_member.address, None, direct=True, user="admin",
                           password=secrets.password("admin"), readPreference="secondaryPreferred") as c:
        assert c.dbrs_pss_test.docs.count_documents({}) >= DOCS

    for m in new_spec.members:
        members = _members_set(_ok(host_of(m) if m.name != NEW[0] else spare, "nft list set inet dbrs members4"))
        assert NEW[1] in members and arbiter.host not in members, (m.name, members)


def _members_set(listing):
    """The addresses of the ruleset's `members4` set (`nft list set` prints `elements = { a, b }`)."""
    inside = listing.split("elements = {", 1)[1].split("}", 1)[0]
    return {e.strip() for e in inside.replace("\n", " ").split(",") if e.strip()}
