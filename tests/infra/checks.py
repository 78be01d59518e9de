"""Checks of one dbrs member host, written once for every kind of host.

Each takes a testinfra Host: an nspawn host of the tier-3 test bed
(`Host.testinfra()` in tests/hosts/testbed.py), a Vagrant VM over ssh, or any
real host (`--hosts`). What the host should hold is read from the host itself
(its /etc/dbrs/cluster.toml and addresses), so the same check fits every role.
"""

from __future__ import annotations

import contextlib
import ipaddress

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ETC = "/etc/dbrs"


@contextlib.contextmanager
def as_root(host):
    """sudo for the Vagrant user; nothing to do where we already are root (nspawn has no sudo)."""
    if host.user().name == "root":
        yield
    else:
        with host.sudo():
            yield


def addresses(host):
    """Every IP address of the host (`ip -o addr`), loopback included."""
    out = set()
    for line in host.check_output("ip -o addr show").splitlines():
        parts = line.split()
        if len(parts) > 3 and parts[2] in ("inet", "inet6"):
            out.add(parts[3].split("/")[0])
    return out


def spec(host):
    return tomllib.loads(host.file(f"{ETC}/cluster.toml").content_string)


def local_members(host, spec_=None):
    """The spec's members whose address is one of this host's (all of them on a single-host install)."""
    spec_ = spec_ or spec(host)
    mine = addresses(host)
    out = []
    for m in spec_["members"]:
        try:
            ip = str(ipaddress.ip_address(m["host"]))
        except ValueError:
            ip = host.check_output(f"getent ahosts {m['host']} | head -n 1 | cut -d' ' -f1")
        if ip in mine:
            out.append(m)
    return out


def check_units(host, members):
    for m in members:
        unit = host.service(f"dbrs-mongod@{m['name']}.service")
        assert unit.is_enabled and unit.is_running, f"dbrs-mongod@{m['name']} not enabled and running"
    fw = host.service("dbrs-firewall.service")
    assert fw.is_enabled and fw.is_running, "dbrs-firewall.service not enabled and active"
    tuning = host.service("dbrs-tuning.service")
    assert tuning.is_enabled, "dbrs-tuning.service not enabled"
    # active, or skipped by its own ConditionVirtualization=!container
    state = host.check_output("systemctl show -p ActiveState,ConditionResult --value dbrs-tuning.service").split()
    assert state[0] == "active" or state[1:] == ["no"], f"dbrs-tuning.service: {state}"


def check_modes(host, members):
    expected = {
        f"{ETC}/keyfile": (0o400, "mongodb"),
        f"{ETC}/secrets.toml": (0o600, "root"),
        f"{ETC}/backup.key": (0o600, "root"),
        f"{ETC}/cluster.toml": (0o644, "root"),
    }
    for m in members:
        expected[f"/var/lib/dbrs/{m['name']}"] = (0o700, "mongodb")
    with as_root(host):
        for path, (mode, owner) in expected.items():
            f = host.file(path)
            assert f.exists, f"{path} missing"
            assert (f.mode, f.user, f.group) == (mode, owner, owner), f"{path}: {f.mode:o} {f.user}:{f.group}"


def check_listening(host, members):
    assert members, "no member of /etc/dbrs/cluster.toml lives on this host: nothing to check listens"
    for m in members:
        for ip in {m["host"], "127.0.0.1"}:
            where = f"[{ip}]" if ":" in ip else ip
            assert host.socket(f"tcp://{where}:{m['port']}").is_listening, f"{m['name']} not listening on {ip}:{m['port']}"


def guarded_ports(ruleset):
    """The ports `nft list table inet dbrs` sends to the mongod chain (`tcp dport { a, b } jump mongod`)."""
    import re

    ports = set()
    for line in ruleset.splitlines():
        m = re.search(r"tcp dport (\{[^}]*\}|\d+) jump mongod", line)
        if m:
            ports |= {int(p) for p in re.findall(r"\d+", m.group(1))}
    return ports


def check_firewall(host, members):
    assert members, "no member of /etc/dbrs/cluster.toml lives on this host: no port to find guarded"
    with as_root(host):
        table = host.run("nft list table inet dbrs")
    assert table.rc == 0, f"nft table inet dbrs missing: {table.stderr.strip()}"
    assert " drop" in table.stdout, "the mongod chain drops nobody"
    guarded = guarded_ports(table.stdout)
    for m in members:
        assert m["port"] in guarded, f"firewall does not guard port {m['port']} (guards {sorted(guarded)})"


def check_mongo_express(host, spec_, members):
    """Only on the primary's host, when enabled: running, 0600 env file, loopback only."""
    cfg = spec_.get("mongo_express", {})
    if not cfg.get("enabled") or not any(m["role"] == "primary" for m in members):
        assert not host.file(f"{ETC}/mongo-express.env").exists, "mongo-express env file where it is not wanted"
        return
    port = cfg.get("port", 8081)
    unit = host.service("dbrs-mongo-express.service")
    assert unit.is_enabled and unit.is_running, "dbrs-mongo-express.service not enabled and running"
    with as_root(host):
        env = host.file(f"{ETC}/mongo-express.env")
        assert (env.mode, env.user) == (0o600, "root"), f"mongo-express.env: {env.mode:o} {env.user}"
    assert host.socket(f"tcp://127.0.0.1:{port}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening, "mongo-express listens on every address"


def check_sysctls(host):
    """The host's own /proc/sys holds the drop-in's values right after install, without a reboot (net.*
    sysctls are per network namespace; set inside a private one they would be lost). Containers skip the
    tuning unit (ConditionVirtualization=!container), so there is nothing to read there."""
    if host.run("systemd-detect-virt --container").rc == 0:
        return []
    wanted = {}
    for line in host.file("/etc/sysctl.d/60-dbrs.conf").content_string.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = (x.strip() for x in line.split("=", 1))
            wanted[key] = value
    assert any(k.startswith("net.") for k in wanted), "the drop-in sets no net.* sysctl"
    for key, value in wanted.items():
        got = host.file("/proc/sys/" + key.replace(".", "/")).content_string.strip()
        if key == "vm.max_map_count":
            assert int(got) >= int(value), f"{key} = {got}, want >= {value}"
        else:
            assert got == value, f"{key} = {got} on the host, the drop-in says {value}"
    return sorted(wanted)


def check_member(host):
    """All of the above for whatever members live on `host`; raises AssertionError on the first miss."""
    spec_ = spec(host)
    members = local_members(host, spec_)
    assert members, "no member of /etc/dbrs/cluster.toml lives on this host"
    check_units(host, members)
    check_modes(host, members)
    check_listening(host, members)
    check_firewall(host, members)
    check_mongo_express(host, spec_, members)
