"""Issue #13 on real systemd hosts: PSA -> PSS (a fourth host joins as a secondary, the arbiter's host
leaves), its firewall on every host, the pruning on the old arbiter host, and a stale bundle refused.

One module-scoped bed: m1/m2/m3 installed as PSA (as the scenarios do), m4 with dbrs installed and
nothing configured. Tests run in file order and build on each other. MongoDB is the strict stand-in of
tests/standins (it enforces the keyfile, the firewall path between members and the set's config).
"""

from __future__ import annotations

import re
import time

import pytest

from . import product
from .beds import BUNDLE, PASS, booted, healthy_status as _status, install_psa, out as _out
from .testbed import wait_until

pytestmark = pytest.mark.hosts

NET = {"m1": "10.77.0.11", "m2": "10.77.0.12", "m3": "10.77.0.13", "m4": "10.77.0.14"}
STALE = "/root/stale.dbrs"


def _states(st):
    return {m["name"]: m["state"] for m in st["members"]}


def _nft(h):
    return h.run(["nft", "--stateless", "list", "table", "inet", "dbrs"], check=False).stdout  # no counters


def _install(h, *extra):
    return h.run(["dbrs-install", "--no-packages", "--bundle", BUNDLE, "--passphrase-file", PASS, *extra],
                 check=False, timeout=400)


@pytest.fixture(scope="module")
def bed(request):
    with booted(request, NET, lambda n, h, wheels: product.install_product(h, wheels, "8.0", NET)) as b:
        yield b


@pytest.fixture(scope="module")
def psa(bed):
    """`dbrs init` on m1 (PSA on m1/m2/m3, TLS off), the bundle to m2/m3, `dbrs-install --role …` primary first."""
    tb, hosts = bed
    m1 = hosts["m1"]
    for h in hosts.values():
        h.write_file(PASS, "correct horse battery staple\n", 0o600)
    m1.run(["dbrs", "init", "--primary", NET["m1"], "--secondary", NET["m2"], "--arbiter", NET["m3"],
            "--passphrase-file", PASS])
    # plaintext, so that the capture below is the control of test_tls_hosts.py (dbrs init turns TLS on)
    m1.run(["sed", "-i", r's/^tls = "required"/tls = "off"/', "/etc/dbrs/cluster.toml"])
    assert 'tls = "off"' in m1.read_file("/etc/dbrs/cluster.toml").decode()
    m1.run(["dbrs", "member", "seal", "--passphrase-file", PASS])
    bundle = m1.read_file("/etc/dbrs/bundle.dbrs")
    for n in ("m2", "m3"):
        hosts[n].write_file(BUNDLE, bundle, 0o600)

    results = install_psa(hosts, ["--no-packages"])
    for n, r in results.items():
        assert r.returncode == 0, f"PSA install on {n}: {_out(r)}"
    st = wait_until(lambda: _status(m1), 60, 0.5, "a healthy PSA set")
    assert _states(st) == {"mongod1": "PRIMARY", "mongod2": "SECONDARY", "mongod3": "ARBITER"}
    return hosts, bundle


def test_plaintext_control_capture(bed, psa):
    """The control of test_tls_hosts.py::test_members_talk_tls_on_the_bridge: the same capture of a set
    without TLS reads the members' command names, so that test's "none found" can fail."""
    tb, _ = bed
    pcap = tb.capture(4, "tcp port 27017")
    found = tb.plaintext_markers(pcap)
    assert "_standinHeartbeat" in found and "admin" in found, f"no plaintext member traffic seen: {found}"


def test_psa_to_pss_add_fourth_host_remove_arbiter_host(psa):
    hosts, old_bundle = psa
    m1, m2, m3, m4 = (hosts[n] for n in ("m1", "m2", "m3", "m4"))
    for n in ("m1", "m2", "m3"):
        assert NET["m3"] in _nft(hosts[n]) and NET["m4"] not in _nft(hosts[n]), f"PSA firewall on {n}"

    r = m1.run(["dbrs", "member", "add", "mongod4", "--host", NET["m4"], "--role", "secondary",
                "--remove", "mongod3", "--passphrase-file", PASS], check=False)
    assert r.returncode == 0, _out(r)
    new_bundle = m1.read_file("/etc/dbrs/bundle.dbrs")
    assert new_bundle != old_bundle, "member add did not re-seal the bundle"
    for n in ("m2", "m3", "m4"):
        hosts[n].write_file(BUNDLE, new_bundle, 0o600)

    # The new host, then the others' firewalls (m1 without the bootstrap, so `dbrs reconfigure` does the work).
    r = _install(m4)
    assert r.returncode == 0, f"install on m4: {_out(r)}"
    r = _install(m2)
    assert r.returncode == 0, f"install on m2: {_out(r)}"
    r = m1.run(["dbrs-install", "--no-packages", "--no-start"], check=False, timeout=300)
    assert r.returncode == 0, f"install on m1: {_out(r)}"
    print(f"--- m1 dbrs-install --no-start:\n{r.stdout}{r.stderr}")

    dry = m1.run(["dbrs", "reconfigure", "--dry-run"], check=False, timeout=120)
    assert dry.returncode == 0, _out(dry)
    print(f"--- m1 dbrs reconfigure --dry-run:\n{dry.stdout}{dry.stderr}")
    assert "mongod4" in dry.stdout and "remove arbiter" in dry.stdout and "nothing was changed" in dry.stdout, dry.stdout
    t = time.monotonic()
    r = m1.run(["dbrs", "reconfigure", "--wait", "180"], check=False, timeout=300)
    took = time.monotonic() - t
    print(f"--- m1 dbrs reconfigure:\n{r.stdout}{r.stderr}")
    assert r.returncode == 0, _out(r)
    assert "match the spec" in r.stdout, r.stdout
    print(f"dbrs reconfigure PSA -> PSS on real hosts: {took:.1f} s")
    again = m1.run(["dbrs", "reconfigure", "--wait", "30"], check=False, timeout=120)
    assert again.returncode == 0 and "changed" not in again.stdout, _out(again)

    # The old arbiter host prunes its member: unit gone, conf gone, data kept and said.
    assert m3.run("systemctl is-active dbrs-mongod@mongod3.service", check=False).stdout.strip() == "active"
    r = _install(m3)
    assert r.returncode == 0, f"install on m3 (prune): {_out(r)}"
    assert "departed mongod3" in r.stdout and "/var/lib/dbrs/mongod3" in r.stdout, r.stdout
    assert m3.run("systemctl is-active dbrs-mongod@mongod3.service", check=False).stdout.strip() != "active"
    assert m3.run("systemctl is-enabled dbrs-mongod@mongod3.service", check=False).stdout.strip() != "enabled"
    assert m3.run("test -e /etc/dbrs/mongod3/mongod.conf", check=False).returncode != 0
    assert m3.run("test -d /var/lib/dbrs/mongod3", check=False).returncode == 0, "the arbiter's data dir was deleted"

    # Every member host's firewall admits the new member and no longer the removed one.
    for n in ("m1", "m2", "m4"):
        table = _nft(hosts[n])
        assert NET["m4"] in table, f"{n}'s firewall does not admit mongod4:\n{table}"
        assert NET["m3"] not in table, f"{n}'s firewall still admits the removed arbiter host:\n{table}"
    # ... and the outsider-like view from m3: m3 is no longer let through to the members' port.
    for n in ("m1", "m2", "m4"):
        probe = m3.run(["nc", "-z", "-w", "2", NET[n], "27017"], check=False, timeout=20)
        assert probe.returncode != 0, f"the removed arbiter host still reaches {n}:27017"

    for n in ("m1", "m2", "m4"):
        st = wait_until(lambda: _status(hosts[n]), 60, 0.5, f"a healthy PSS set seen from {n}")
        assert _states(st) == {"mongod1": "PRIMARY", "mongod2": "SECONDARY", "mongod4": "SECONDARY"}, st
    second = _install(m3)
    assert second.returncode == 0 and re.search(r"^0 changed", second.stdout, re.M), _out(second)


def _snapshot(h):
    """Path -> (sha256, mode, mtime_ns) of everything dbrs-install writes, plus the units' states."""
    listing = h.run(r"find /etc/dbrs /etc/systemd/system /etc/sysctl.d /etc/apt "
                    r"-xdev \( -type f -o -type l \) -printf '%p %m %T@\n' 2>/dev/null | sort", check=False).stdout
    sums = h.run(r"find /etc/dbrs /etc/systemd/system -xdev -type f -exec sha256sum {} + 2>/dev/null | sort",
                 check=False).stdout
    units = h.run("systemctl list-units --all --no-legend --plain 'dbrs*' | awk '{print $1, $3, $4}'",
                  check=False).stdout
    return listing, sums, units, _nft(h)


def test_stale_bundle_is_refused_and_nothing_changes(psa):
    hosts, old_bundle = psa
    m2 = hosts["m2"]
    m2.write_file(STALE, old_bundle, 0o600)
    before = _snapshot(m2)
    r = m2.run(["dbrs-install", "--no-packages", "--bundle", STALE, "--passphrase-file", PASS],
               check=False, timeout=120)
    after = _snapshot(m2)
    assert r.returncode == 2, _out(r)
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and "generation" in lines[0].lower(), _out(r)
    assert len(lines[0]) < 400 and "Traceback" not in r.stderr
    for name, b, a in zip(("files", "hashes", "units", "firewall"), before, after):
        assert b == a, f"the refused stale bundle changed the host's {name}"
    assert "mongod4" in m2.read_file("/etc/dbrs/cluster.toml").decode()
