"""Tier 3 scenarios: dbrs installed, as a user would, into real systemd hosts (systemd-nspawn).

One module-scoped bed: a PSA cluster on m1/m2/m3, an allow-listed client host and an outsider on the
same bridge. The product is the wheel of this tree in /opt/dbrs/venv; MongoDB is replaced by the strict
stand-ins of tests/standins (see tests/hosts/README.md for what only the Vagrant tier can show).
Tests run in file order and build on each other (install, then idempotence, reboot, kill, backups).
"""

from __future__ import annotations

import concurrent.futures
import json
import re
import time
import tomllib

import pytest

from . import product
from .testbed import Testbed, TestbedError, cleanup_stale, wait_until, leftovers
checks = product.infra_checks()

pytestmark = pytest.mark.hosts

NET = {"m1": "10.77.0.11", "m2": "10.77.0.12", "m3": "10.77.0.13", "client": "10.77.0.20", "outsider": "10.77.0.30"}
ROLES = {"m1": "primary", "m2": "secondary", "m3": "arbiter"}
MEMBER = {"m1": "mongod1", "m2": "mongod2", "m3": "mongod3"}
PASS = "/root/bundle.pass"


def _parallel(fn, items):
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(items)) as ex:
        return dict(zip(items, ex.map(fn, items)))


def _wait(pred, timeout=30, step=0.3, what="condition"):
    return wait_until(pred, timeout, step, what)


def _tcp(host, ip, port, timeout=2):
    """True when `host` can open a TCP connection to ip:port (nc -z, bounded wait)."""
    return host.run(["nc", "-z", "-w", str(timeout), ip, str(port)], check=False, timeout=timeout + 10).returncode == 0


@pytest.fixture(scope="module")
def bed(request):
    """The booted hosts with dbrs installed (nothing configured yet); closed and checked at module end."""
    cleanup_stale()
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    log = (lambda m: reporter.write_line(m)) if reporter else None
    t0 = time.monotonic()
    try:
        member_root = product.member_rootfs(log=log)
    except (TestbedError, OSError) as e:
        pytest.skip(f"tier-3 member rootfs cannot be built: {e}")
    wheels = product.wheelhouse(log=log)
    tb = Testbed(rootfs=member_root)
    try:
        hosts = tb.boot(NET)
        names = {n: ip for n, ip in NET.items()}
        _parallel(lambda n: product.install_product(hosts[n], wheels, "8.0", names), ["m1", "m2", "m3"])
        for n in ("client", "outsider"):
            hosts[n].run(["sh", "-c", "cat >> /etc/hosts"], input="".join(f"{ip}\t{h}\n" for h, ip in names.items()))
        if log:
            log(f"dbrs-hosts: bed booted and product installed in {time.monotonic() - t0:.1f} s")
        yield tb, hosts, wheels
    finally:
        tb.close()


@pytest.fixture(scope="module")
def cluster(bed):
    """`dbrs init` on m1, bundle to m2/m3, `dbrs-install --role …` on each, primary first."""
    tb, hosts, _ = bed
    m1 = hosts["m1"]
    m1.write_file(PASS, "correct horse battery staple\n", 0o600)
    m1.run(["dbrs", "init", "--primary", NET["m1"], "--secondary", NET["m2"], "--arbiter", NET["m3"],
            "--allow", NET["client"] + "/32", "--passphrase-file", PASS])
    bundle = m1.read_file("/etc/dbrs/bundle.dbrs")
    for n in ("m2", "m3"):
        hosts[n].write_file("/root/bundle.dbrs", bundle, 0o600)
        hosts[n].write_file(PASS, m1.read_file(PASS), 0o600)

    def install(n):
        args = ["dbrs-install", "--no-packages", "--role", ROLES[n]]
        if n != "m1":
            args += ["--bundle", "/root/bundle.dbrs", "--passphrase-file", PASS]
        return hosts[n].run(args, check=False, timeout=300)

    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as ex:
        primary = ex.submit(install, "m1")  # the bootstrap in it waits for the other two
        time.sleep(1)
        others = {n: ex.submit(install, n) for n in ("m2", "m3")}
        results = {"m1": primary.result(), **{n: f.result() for n, f in others.items()}}
    return hosts, results


def test_psa_install_units_and_status(cluster):
    hosts, results = cluster
    for n, r in results.items():
        assert r.returncode == 0, f"dbrs-install on {n} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert "replica set" in results["m1"].stdout and "initiate" in results["m1"].stdout, results["m1"].stdout
    for n in ("m1", "m2", "m3"):
        checks.check_member(hosts[n].testinfra())
        h = hosts[n]
        # the real unit runs the stand-in as mongodb, sandboxed
        unit = f"dbrs-mongod@{MEMBER[n]}.service"
        user = h.run(f"ps -o user= -p $(systemctl show -p MainPID --value {unit})").stdout.strip()
        assert user == "mongodb"
        timers = h.run("systemctl is-active dbrs-backup.timer dbrs-oplog.timer", check=False).stdout.split()
        if n == "m3":
            assert "active" not in timers, "timers on the arbiter's host"
        else:
            assert timers == ["active", "active"], timers
    for n in ("m1", "m2", "m3"):
        st = json.loads(_wait(lambda: _status_json(hosts[n]), 30, what=f"dbrs status on {n}"))
        states = {m["name"]: m["state"] for m in st["members"]}
        assert states == {"mongod1": "PRIMARY", "mongod2": "SECONDARY", "mongod3": "ARBITER"}, states
        assert st["ok"], st["problems"]


def _status_json(h):
    r = h.run(["dbrs", "status", "--json"], check=False)
    if r.returncode != 0:
        return None
    st = json.loads(r.stdout)
    return r.stdout if st["ok"] else None


def test_firewall_keeps_outsider_out(cluster, bed):
    hosts, _ = cluster
    outsider, client = hosts["outsider"], hosts["client"]
    hosts["m1"].run("systemd-run --unit=probe9999 nc -lk 9999")
    _wait(lambda: hosts["m1"].run("ss -ltn 'sport = :9999'").stdout.count("LISTEN"), 10, what="nc on 9999")
    for n in ("m1", "m2", "m3"):
        ip = NET[n]
        t = time.monotonic()
        assert not _tcp(outsider, ip, 27017, timeout=2), f"outsider reached {n}:27017"
        assert time.monotonic() - t >= 1.5, "refused instead of dropped: the firewall should time the outsider out"
        assert _tcp(client, ip, 27017), f"allow-listed client cannot reach {n}:27017"
        for other in ("m1", "m2", "m3"):
            if other != n:
                assert _tcp(hosts[other], ip, 27017), f"member {other} cannot reach {n}:27017"
    assert _tcp(outsider, NET["m1"], 9999), "the firewall touched a port that is not mongod's"
    hosts["m1"].run("systemctl stop probe9999", check=False)


def test_second_install_changes_nothing(cluster):
    hosts, _ = cluster
    for n in ("m1", "m2", "m3"):
        args = ["dbrs-install", "--no-packages", "--role", ROLES[n]]
        if n != "m1":
            args += ["--bundle", "/root/bundle.dbrs", "--passphrase-file", PASS]
        out = hosts[n].run(args, timeout=300).stdout
        assert re.search(r"^0 changed, \d+ unchanged$", out, re.M), f"{n}:\n{out}"


def test_reboot_brings_everything_back(cluster):
    hosts, _ = cluster
    h = hosts["m2"]
    old_boot = h.run("cat /proc/sys/kernel/random/boot_id").stdout
    h.poweroff()
    # While m2's host is down, re-running the primary's install converges m1 at once: the set needs
    # nothing, so nothing waits for m2; the report names it (exit 0).
    m1 = hosts["m1"]

    def m2_down():
        r = m1.run(["dbrs", "status", "--json"], check=False)
        return r.stdout and any(m["name"] == "mongod2" and not m["health"] for m in json.loads(r.stdout)["members"])

    _wait(m2_down, 30, what="the primary noticing m2 is down")
    t0 = time.monotonic()
    r = m1.run(["dbrs-install", "--no-packages", "--role", "primary"], check=False, timeout=300)
    took = time.monotonic() - t0
    print(f"dbrs-install re-run on m1 with m2 powered off: {took:.1f} s")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert took < 60, f"the re-run took {took:.0f} s"
    assert re.search(r"^waiting\s+replica set: .*health mongod2 is down", r.stdout, re.M), r.stdout[-2000:]
    assert re.search(r"^0 changed, \d+ unchanged$", r.stdout, re.M), r.stdout[-2000:]
    h.start()
    assert h.run("cat /proc/sys/kernel/random/boot_id").stdout != old_boot
    _wait(lambda: h.run("systemctl is-active dbrs-mongod@mongod2.service dbrs-firewall.service "
                        "dbrs-backup.timer dbrs-oplog.timer", check=False).returncode == 0, 30,
          what="units active after reboot")
    assert "dbrs" in h.run("nft list tables").stdout
    checks.check_member(h.testinfra())
    _wait(lambda: _status_json(hosts["m1"]), 30, what="m2 back as SECONDARY in dbrs status")


def test_killed_mongod_is_restarted(cluster):
    hosts, _ = cluster
    h, unit = hosts["m2"], "dbrs-mongod@mongod2.service"
    pid = h.run(f"systemctl show -p MainPID --value {unit}").stdout.strip()
    assert pid != "0"
    h.run(["kill", "-9", pid])
    new = _wait(lambda: (p := h.run(f"systemctl show -p MainPID --value {unit}").stdout.strip()) not in ("0", pid)
                and h.run(f"systemctl is-active {unit}", check=False).stdout.strip() == "active" and p, 20,
                what="systemd restarting mongod")
    assert new != pid
    assert int(h.run(f"systemctl show -p NRestarts --value {unit}").stdout) >= 1


def test_secret_and_data_modes(cluster):
    hosts, _ = cluster
    for n in ("m1", "m2", "m3"):
        out = hosts[n].run("stat -c '%n %a %U %G' /etc/dbrs/keyfile /etc/dbrs/secrets.toml /etc/dbrs/backup.key "
                           f"/var/lib/dbrs/{MEMBER[n]}").stdout.split("\n")
        got = {line.split()[0]: line.split()[1:] for line in out if line}
        assert got["/etc/dbrs/keyfile"] == ["400", "mongodb", "mongodb"]
        assert got["/etc/dbrs/secrets.toml"] == ["600", "root", "root"]
        assert got["/etc/dbrs/backup.key"] == ["600", "root", "root"]
        assert got[f"/var/lib/dbrs/{MEMBER[n]}"] == ["700", "mongodb", "mongodb"]


def test_standin_is_strict_under_the_real_unit(cluster):
    """The stand-in must refuse what mongod refuses, or the scenarios above prove nothing."""
    hosts, _ = cluster
    h, unit = hosts["m3"], "dbrs-mongod@mongod3.service"
    assert h.run("mongod --version").stdout.startswith("db version v8.0.")
    try:
        h.run("chmod 0440 /etc/dbrs/keyfile && systemctl restart dbrs-mongod@mongod3.service", check=False)
        _wait(lambda: "too open" in h.run(f"journalctl -u {unit} -n 20 --no-pager").stdout, 20,
              what="mongod refusing a group-readable keyfile")
    finally:
        h.run("chmod 0400 /etc/dbrs/keyfile && systemctl reset-failed dbrs-mongod@mongod3.service; "
              "systemctl restart dbrs-mongod@mongod3.service")
    _wait(lambda: h.run(f"systemctl is-active {unit}", check=False).returncode == 0, 20, what="mongod back")


def test_mongod_options_from_the_spec_reach_the_running_member(cluster):
    """A bad [mongod] key stops dbrs-install before anything changes; a good one reaches mongod.conf and the
    strict stand-in (the same option table) runs with it under the real unit."""
    hosts, _ = cluster
    h, unit, conf = hosts["m2"], "dbrs-mongod@mongod2.service", "/etc/dbrs/mongod2/mongod.conf"
    spec = h.read_file("/etc/dbrs/cluster.toml").decode()
    before = h.read_file(conf)
    install = ["dbrs-install", "--no-packages", "--role", "secondary"]
    pid = h.run(f"systemctl show -p MainPID --value {unit}").stdout.strip()
    try:
        h.write_file("/etc/dbrs/cluster.toml", spec + '\n[mongod]\nnet.compresion.compressors = "zstd"\n', 0o644)
        r = h.run(install, check=False, timeout=300)
        assert r.returncode == 2 and "mongod.net.compresion.compressors: not a mongod option of MongoDB 8.0" in r.stderr
        assert h.read_file(conf) == before
        h.write_file("/etc/dbrs/cluster.toml", spec + '\n[mongod]\nnet.compression.compressors = "zstd"\n'
                     "setParameter.diagnosticDataCollectionEnabled = false\n", 0o644)
        h.run(install, timeout=300)
        text = h.read_file(conf).decode()
        assert 'compressors: "zstd"' in text and "diagnosticDataCollectionEnabled: false" in text
        _wait(lambda: h.run(f"systemctl is-active {unit}", check=False).returncode == 0, 20, what="mongod2 active")
        assert h.run(f"systemctl show -p MainPID --value {unit}").stdout.strip() not in (pid, "0"), "not restarted"
        _wait(lambda: _status_json(hosts["m1"]), 30, what="the set healthy with mongod2's new options")
    finally:
        h.write_file("/etc/dbrs/cluster.toml", spec, 0o644)
        h.run(install, timeout=300)


def test_backup_timer_and_failure_alert(cluster):
    hosts, _ = cluster
    assert hosts["m2"].run("test -e /etc/systemd/system/dbrs-backup.timer", check=False).returncode == 0, \
        "dbrs-install put no dbrs-backup.timer on the data-bearing secondary"
    # A short schedule in the spec, applied the documented way: edit cluster.toml, re-run dbrs-install.
    for n in ("m1", "m2", "m3"):
        h = hosts[n]
        spec = h.read_file("/etc/dbrs/cluster.toml").decode()
        spec = re.sub(r'(?m)^schedule = .*$', 'schedule = "*:*:0/15"', spec)
        if 'schedule = "*:*:0/15"' not in spec:
            spec = spec.replace("[backup]\n", '[backup]\nschedule = "*:*:0/15"\n')
        h.write_file("/etc/dbrs/cluster.toml", spec, 0o644)
        h.run(["dbrs-install", "--no-packages", "--role", ROLES[n]], timeout=300)
    m2 = hosts["m2"]
    assert "0/15" in m2.run("systemctl cat dbrs-backup.timer").stdout
    # The shipped timer spreads a fleet over RandomizedDelaySec=15min; a test-only drop-in takes the spread
    # away so the timer itself fires within seconds.
    m2.write_file("/etc/systemd/system/dbrs-backup.timer.d/zz-test.conf",
                  "[Timer]\nRandomizedDelaySec=0\nAccuracySec=1s\n")
    m2.run("systemctl daemon-reload && systemctl restart dbrs-backup.timer")
    # While the timer runs backups, no secret may show up in any process's argv.
    secrets = m2.run("cat /etc/dbrs/secrets.toml").stdout
    pw = re.findall(r'"([^"]{12,})"', secrets)
    seen = []
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        seen.append(m2.run("cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '", check=False).stdout)
        if m2.run("find /var/backups/dbrs -name '*.manifest.json'", check=False).stdout.strip():
            break
        time.sleep(0.5)
    listing = m2.run("find /var/backups/dbrs; journalctl -u dbrs-backup.service -n 30 --no-pager",
                     check=False).stdout
    assert ".manifest.json" in listing, f"no backup on the secondary:\n{listing}"
    for text in seen:
        for p in pw:
            assert p not in text, "a password in some process's argv"
    assert ".manifest.json" not in hosts["m1"].run("find /var/backups/dbrs", check=False).stdout, \
        "the primary backed up although the secondary is healthy"
    # A failing backup: the stand-in mongodump dies mid-stream (test-only drop-in).
    m2.write_file("/etc/systemd/system/dbrs-backup.service.d/zz-test-fail.conf",
                  "[Service]\nEnvironment=DBRS_STANDIN_DUMP_FAIL_AFTER=100\n")
    m2.run("systemctl daemon-reload && systemctl start dbrs-backup.service", check=False, timeout=120)
    try:
        _wait(lambda: m2.run("systemctl is-failed dbrs-backup.service", check=False).returncode == 0, 30,
              what="failed backup")
        _wait(lambda: "dbrs-backup" in m2.run("journalctl -u 'dbrs-alert@*' --no-pager", check=False).stdout
              and m2.run("systemctl show -p ExecMainStatus --value dbrs-alert@dbrs-backup.service.service",
                         check=False).stdout.strip() != "", 30, what="dbrs-alert@ recording the failure")
        r = m2.run(["dbrs", "status", "--json"], check=False)
        assert r.stdout.strip(), f"dbrs status printed nothing (exit {r.returncode}): {r.stderr[-500:]}"
        backups = json.loads(r.stdout)["backups"]
        failed = [f for f in backups["recent_failures"] if f["unit"] == "dbrs-backup.service"]
        assert failed and failed[-1]["result"] != "success", backups["recent_failures"]
        assert any(p.startswith("dbrs-backup.service failed at ") for p in backups["problems"]), backups["problems"]
    finally:
        m2.run("rm -rf /etc/systemd/system/dbrs-backup.service.d/zz-test-fail.conf && systemctl daemon-reload "
               "&& systemctl reset-failed dbrs-backup.service", check=False)


def test_mongo_express_on_loopback_behind_basic_auth(cluster, request):
    """Enabled later on the primary's host, the documented way (cluster.toml, dbrs-install --no-packages):
    the bootstrap creates the express user, the unit runs mongo-express 1.0.0 (npm-installed outside: the
    hosts have no network) on the image's node, bound to 127.0.0.1 only, 401 without credentials, 200 with
    those of secrets.toml, and the page shows what the stand-in's serverStatus returned to `express`."""
    hosts, _ = cluster
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    try:
        tree = product.mongo_express_tree(log=(lambda m: reporter.write_line(m)) if reporter else None)
    except product.Unavailable as e:
        pytest.skip(f"Mongo Express scenario: {e}")
    m1, port, unit = hosts["m1"], 8081, "dbrs-mongo-express.service"
    assert m1.run("node --version").stdout.startswith("v"), "nodejs missing from the host image"
    m1.copy_in(tree, "/opt/dbrs/mongo-express")
    spec = m1.read_file("/etc/dbrs/cluster.toml").decode()
    spec, n = re.subn(r"(?ms)^\[mongo_express\]\n.*?(?=^\[|\Z)",
                      f"[mongo_express]\nenabled = true\nport = {port}\n\n", spec)
    if not n:
        spec += f"\n[mongo_express]\nenabled = true\nport = {port}\n"
    m1.write_file("/etc/dbrs/cluster.toml", spec, 0o644)
    out = m1.run(["dbrs-install", "--no-packages", "--role", "primary"], timeout=300).stdout
    assert "express" in out, f"the bootstrap did not create the express user:\n{out}"

    try:
        _wait(lambda: m1.run(f"systemctl is-active {unit}", check=False).stdout.strip() == "active"
              and m1.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{port}/"], check=False).returncode == 0,
              60, what=f"{unit} answering on 127.0.0.1:{port}")
    except AssertionError as e:
        journal = m1.run(f"systemctl status {unit} --no-pager; journalctl -u {unit} -n 40 --no-pager", check=False)
        raise AssertionError(f"{e}\n{journal.stdout[-4000:]}") from None
    listeners = m1.run(f"ss -ltnH 'sport = :{port}'").stdout.split()
    assert [a for a in listeners if a.endswith(f":{port}")] == [f"127.0.0.1:{port}"], listeners

    def code(host, url, *curl):
        r = host.run(["curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", *curl, url], check=False)
        return r.returncode, r.stdout.strip()

    local = f"http://127.0.0.1:{port}/"
    sec = tomllib.loads(m1.read_file("/etc/dbrs/secrets.toml").decode())["mongo_express"]
    creds = f"{sec['basic_auth_user']}:{sec['basic_auth_password']}"
    assert code(m1, local) == (0, "401")
    assert code(m1, local, "-u", f"{sec['basic_auth_user']}:wrong") == (0, "401")
    assert code(m1, local, "-u", creds) == (0, "200")
    # The page embeds the serverStatus the stand-in answered the `express` user (SCRAM, clusterMonitor).
    page = m1.run(["curl", "-s", "-m", "10", "-u", creds, local]).stdout
    version = m1.run("cat /usr/lib/dbrs-standin/version").stdout.strip()
    assert "Mongo Express" in page and version in page and "m1:27017" in page, page[-2000:]
    for db in ("admin", "config", "local"):  # listDatabases + listCollections, as the user may see them
        assert f"/db/{db}/" in page, f"database {db} not listed"
    log = m1.run("grep -rh 'Successfully authenticated' /var/log/dbrs", check=False).stdout
    assert re.search(r'"user": "express"', log), "express never authenticated to the stand-in"
    # Not on the host's bridge address, neither from the host itself nor from another host.
    for src in (m1, hosts["client"], hosts["m2"]):
        rc, http = code(src, f"http://{NET['m1']}:{port}/", "-u", creds)
        assert rc != 0 and http == "000", f"{src.name} reached mongo-express on {NET['m1']}:{port} ({rc}, {http})"
    # The env file holds the passwords: root 0600; the process runs as a dynamic user, not root.
    assert m1.run("stat -c '%a %U' /etc/dbrs/mongo-express.env").stdout.split() == ["600", "root"]
    pid = m1.run(f"systemctl show -p MainPID --value {unit}").stdout.strip()
    assert m1.run(f"ps -o user= -p {pid}").stdout.strip() not in ("root", "0", "")
    again = m1.run(["dbrs-install", "--no-packages", "--role", "primary"], timeout=300).stdout
    assert re.search(r"^0 changed, \d+ unchanged$", again, re.M), again


def test_single_host_default(bed):
    tb, _, wheels = bed
    h = tb.boot({"single": "10.77.0.40"})["single"]
    product.install_product(h, wheels, "8.0", {"single": "10.77.0.40"})
    r = h.run(["dbrs-install", "--no-packages"], timeout=300)
    assert "single-host default" in r.stdout
    for m in ("mongod1", "mongod2", "mongod3"):
        assert h.run(f"systemctl is-active dbrs-mongod@{m}.service", check=False).stdout.strip() == "active"
    st = json.loads(_wait(lambda: _status_json(h), 30, what="single-host dbrs status"))
    assert sorted(m["state"] for m in st["members"]) == ["ARBITER", "PRIMARY", "SECONDARY"]
    # two data-bearing mongods share the host: each gets its split of the WiredTiger cache
    confs = {m: h.read_file(f"/etc/dbrs/{m}/mongod.conf").decode() for m in ("mongod1", "mongod2", "mongod3")}
    assert "cacheSizeGB:" in confs["mongod1"] and "cacheSizeGB:" in confs["mongod2"]
    assert "cacheSizeGB:" not in confs["mongod3"]
    checks.check_member(h.testinfra())


def test_zz_nothing_left_behind(bed, request):
    """Runs last: close the bed now and check that no mount, netns, cgroup, process or dir is left."""
    tb, _, _ = bed
    bed_id = tb.id
    tb.close()
    left = leftovers(bed_id)
    assert not any(left.values()), left
