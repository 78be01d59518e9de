"""dbrs-install into a staging root: writes the member's files, then converges to a no-op."""

import json
import stat
from pathlib import Path

from ..conftest import PSA, snapshot


def test_second_run_changes_nothing(psa_root, run_install):
    first = run_install("--root", str(psa_root), "--role", "primary")
    assert first.exit_code == 0, first.output
    assert "0 changed" not in first.output
    before = snapshot(psa_root)
    second = run_install("--root", str(psa_root), "--role", "primary")
    assert second.exit_code == 0, second.output
    assert second.output.rstrip().endswith("0 changed, 29 unchanged")
    assert snapshot(psa_root) == before, "content, modes and mtimes must not move"


def test_dry_run_writes_nothing_and_shows_diffs(psa_root, run_install):
    before = snapshot(psa_root)
    result = run_install("--root", str(psa_root), "--role", "secondary", "--dry-run")
    assert result.exit_code == 0, result.output
    assert snapshot(psa_root) == before
    assert "+++ /etc/dbrs/mongod2/mongod.conf" in result.output
    assert "+  bindIp: 127.0.0.1,10.0.0.12" in result.output
    assert "would change file /etc/dbrs/mongod2/mongod.conf (new)" in result.output


def test_dry_run_never_prints_secrets(staging, run_install):
    """With no spec, the default cluster's secrets are planned but only their size is shown."""
    result = run_install("--root", str(staging), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "(secret," in result.output
    assert "[passwords]" not in result.output
    assert not any(staging.iterdir())


def test_changed_spec_rewrites_only_what_depends_on_it(psa_root, run_install):
    run_install("--root", str(psa_root), "--role", "primary")
    spec = psa_root / "etc/dbrs/cluster.toml"
    spec.write_text(PSA.replace('["10.0.0.0/24"]', '["10.0.0.0/24", "192.168.5.0/24"]'))
    result = run_install("--root", str(psa_root), "--role", "primary")
    changed = [line for line in result.output.splitlines() if line.startswith("changed")]
    assert changed == ["changed   file /etc/dbrs/firewall.nft (content)"]


def test_mode_drift_is_repaired(psa_root, run_install):
    run_install("--root", str(psa_root), "--role", "primary")
    conf = psa_root / "etc/dbrs/mongod1/mongod.conf"
    conf.chmod(0o666)
    result = run_install("--root", str(psa_root), "--role", "primary")
    assert "changed   file /etc/dbrs/mongod1/mongod.conf (mode 0666->0644)" in result.output
    assert stat.S_IMODE(conf.stat().st_mode) == 0o644


def test_json_output(psa_root, run_install):
    result = run_install("--root", str(psa_root), "--role", "arbiter", "--json")
    data = json.loads(result.output)
    assert data["members"] == ["mongod3"]
    assert data["summary"]["changed"] == sum(1 for i in data["items"] if i["status"] == "changed") > 0


def test_no_spec_installs_the_single_host_default(staging, run_install):
    result = run_install("--root", str(staging))
    assert result.exit_code == 0, result.output
    etc = staging / "etc/dbrs"
    assert {p.name for p in etc.iterdir() if p.is_dir()} == {"mongod1", "mongod2", "mongod3"}
    assert stat.S_IMODE((etc / "keyfile").stat().st_mode) == 0o400
    assert stat.S_IMODE((etc / "secrets.toml").stat().st_mode) == 0o600
    again = run_install("--root", str(staging))
    assert again.output.splitlines()[-1].startswith("0 changed, ")


def test_members_sharing_a_host_share_the_firewall(staging, run_install):
    """Installing one member of a host must keep the other members' ports guarded."""
    run_install("--root", str(staging))
    nft = (staging / "etc/dbrs/firewall.nft").read_text()
    before = nft
    run_install("--root", str(staging), "--member", "mongod2")
    assert (staging / "etc/dbrs/firewall.nft").read_text() == before
    assert "27017, 27018, 27019" in nft


def test_bundle_installs_same_secrets_on_another_host(tmp_path, run_dbrs, run_install):
    first, second = tmp_path / "a", tmp_path / "b"
    pp = tmp_path / "pass"
    pp.write_text("correct horse battery staple\n")
    r = run_dbrs("init", "--root", str(first), "--primary", "10.0.0.11", "--secondary", "10.0.0.12",
                 "--arbiter", "10.0.0.13", "--passphrase-file", str(pp))
    assert r.exit_code == 0, r.output
    bundle = first / "etc/dbrs/bundle.dbrs"
    r = run_install("--root", str(second), "--role", "secondary", "--bundle", str(bundle), "--passphrase-file", str(pp))
    assert r.exit_code == 0, r.output
    for name in ("keyfile", "secrets.toml", "backup.key", "cluster.toml"):
        assert (second / "etc/dbrs" / name).read_bytes() == (first / "etc/dbrs" / name).read_bytes()
    assert "bindIp: 127.0.0.1,10.0.0.12" in (second / "etc/dbrs/mongod2/mongod.conf").read_text()


def test_wrong_passphrase_exits_2_and_writes_nothing(tmp_path, run_dbrs, run_install):
    pp, bad = tmp_path / "pass", tmp_path / "bad"
    pp.write_text("the right passphrase")
    bad.write_text("the wrong passphrase")
    run_dbrs("init", "--root", str(tmp_path / "a"), "--passphrase-file", str(pp))
    target = tmp_path / "b"
    target.mkdir()
    r = run_install("--root", str(target), "--bundle", str(tmp_path / "a/etc/dbrs/bundle.dbrs"),
                    "--passphrase-file", str(bad))
    assert r.exit_code == 2
    assert "--passphrase-file" in r.output
    assert not any(target.iterdir())


def test_init_generates_passphrase_once(staging, run_dbrs):
    r = run_dbrs("init", "--root", str(staging))
    assert r.exit_code == 0
    assert "bundle passphrase" in r.stderr
    assert Path(staging / "etc/dbrs/bundle.dbrs").stat().st_mode & 0o777 == 0o600


def test_live_role_on_another_host_is_refused_before_anything():
    """--role primary on the wrong host would enable a mongod that can never bind its address."""
    import pytest

    from installer import install, spec as specmod
    from installer.errors import InputError

    spec = specmod.loads(PSA)
    here = ({"10.0.0.12", "127.0.0.1"}, {"db2"})
    with pytest.raises(InputError) as e:
        install.select(spec, install.Options(role="primary"), here)
    assert e.value.field == "--role" and "members[0].host" in e.value.fix
    chosen, _ = install.select(spec, install.Options(role="secondary"), here)
    assert [m.name for m in chosen] == ["mongod2"]
    # staging (--root) renders any member: the host cannot be told
    chosen, _ = install.select(spec, install.Options(role="primary", root="/tmp/x"), (set(), set()))
    assert [m.name for m in chosen] == ["mongod1"]


def test_member_hostname_resolving_to_loopback_only_is_refused():
    import pytest

    from installer import install, spec as specmod
    from installer.errors import InputError

    spec = specmod.loads(PSA.replace('host = "10.0.0.11"', 'host = "db1.example.com"'))
    with pytest.raises(InputError) as e:
        install.check_reachable(spec, spec.members[:1], {"db1.example.com": ("127.0.1.1",)})
    assert e.value.field == "members[0].host" and "/etc/hosts" in e.value.fix
    install.check_reachable(spec, spec.members[:1], {"db1.example.com": ("10.0.0.11",)})
    from installer.spec import single_host

    one = single_host()
    install.check_reachable(one, one.members, {"127.0.0.1": ("127.0.0.1",)})


def test_each_item_is_reported_as_soon_as_it_is_done(psa_root, monkeypatch):
    """The report streams: an item's line is out before the next item is touched, so a killed or
    long-waiting run has already shown what it changed."""
    from installer import install
    from installer.host import steps

    events = []
    real_write = steps.write_file

    def write_file(root, path, *a, **kw):
        events.append(("write", str(path)))
        return real_write(root, path, *a, **kw)

    monkeypatch.setattr(steps, "write_file", write_file)
    opts = install.Options(root=str(psa_root), role="primary")
    install.run(opts, on_plan=lambda r: events.append(("plan", len(r.changes))),
                on_item=lambda c: events.append(("item", c.item.label())))
    assert events[0][0] == "plan"
    writes = [i for i, e in enumerate(events) if e[0] == "write"]
    assert len(writes) > 5
    for i in writes:
        assert events[i + 1] == ("item", f"file {events[i][1]}"), events[i:i + 2]
    assert sum(1 for e in events if e[0] == "item") == events[0][1]


def test_the_summary_counts_the_replica_set_step_too():
    """`changed replica set: initiate …` followed by `0 changed` told scripts nothing happened."""
    from installer import install

    r = install.Result(target=None, origin="default")
    r.steps.append(("replica set", "changed", "initiate replica set dbrs with mongod1, mongod2, mongod3"))
    assert r.summary == {"changed": 1, "unchanged": 0}
    r.steps.append(("replica set", "waiting", "mongod2 is down"))
    assert r.summary == {"changed": 1, "unchanged": 0}
