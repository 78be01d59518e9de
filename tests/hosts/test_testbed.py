"""Tests of the tier-3 test bed itself: if these fail, no host test result means anything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from . import testbed as tbmod
from .testbed import HostCommandError, leftovers

HERE = Path(__file__).resolve().parent


def _until(pred, timeout=10.0, step=0.05):
    """Poll ``pred`` until truthy; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        val = pred()
        if val or time.monotonic() > deadline:
            return val
        time.sleep(step)


def _listen(host, port, unit="tb-listen", keep=False):
    """A TCP listener as a transient service inside ``host``; received bytes go to /root/<unit>.out."""
    k = "-k " if keep else ""
    host.run(["systemd-run", f"--unit={unit}", "sh", "-c", f"exec nc {k}-l {port} > /root/{unit}.out"])
    sock = host.testinfra().socket(f"tcp://0.0.0.0:{port}")
    assert _until(lambda: sock.is_listening), f"{host.name}: nothing listens on {port}"


def _connects(src, ip, port) -> bool:
    return src.run(["nc", "-z", "-w", "1", ip, str(port)], check=False).returncode == 0


def _empty(left: dict) -> bool:
    return not any(left.values())


# --------------------------------------------------------------------------- rootfs and recipe

def test_rootfs_is_prepared_for_hosts(rootfs):
    assert (rootfs / "etc/hosts").read_text().startswith("127.0.0.1\tlocalhost")
    assert (rootfs / "etc/machine-id").read_text() == ""
    assert not (rootfs / "etc/hostname").exists()
    for tool in ("usr/bin/python3", "usr/bin/nc", "usr/sbin/nft", "usr/bin/curl", "bin/systemctl", "bin/ss"):
        assert os.path.lexists(rootfs / tool), tool  # lexists: alternatives links point at /etc
    assert os.readlink(rootfs / "etc/systemd/system/apt-daily.timer") == "/dev/null"


def test_one_image_for_every_user(rootfs):
    """The member hosts (test_scenarios, tests/packaging) boot the very image the bed's own tests use: one
    debootstrap per recipe, and no user's ensure_rootfs prunes another's image."""
    from . import product

    marker = rootfs / ".dbrs-testbed-ok"
    built = marker.stat().st_mtime_ns
    assert product.member_rootfs() == rootfs
    assert marker.stat().st_mtime_ns == built, "member_rootfs() rebuilt the image"
    assert set(product.MEMBER_PACKAGES) <= set(tbmod.PACKAGES)
    for tool in ("usr/sbin/adduser", "usr/sbin/logrotate", "usr/sbin/nft", "usr/bin/node"):
        assert os.path.lexists(rootfs / tool), tool
    assert (rootfs / "usr/lib/python3.11/ensurepip").is_dir()  # python3-venv


def test_prune_drops_old_images_only(tmp_path, monkeypatch):
    """A new recipe's build removes older images, never the caches that share the dir (wheelhouse, apt
    downloads of the packaging tier), which would otherwise be rebuilt after every image build."""
    monkeypatch.setattr(tbmod, "CACHE_DIR", tmp_path)
    keep, old = tmp_path / tbmod.recipe_hash(tbmod.recipe()), tmp_path / "0123456789abcdef"
    others = [tmp_path / "wheels" / "0f0f0f0f0f0f0f0f", tmp_path / "packaging-apt" / "27a26263329ce1a6"]
    for d in (keep / "rootfs", old / "rootfs", *others):
        d.mkdir(parents=True)
    (tmp_path / "wheels" / "lock").write_text("")
    tbmod._prune_cache(keep=keep)
    assert keep.is_dir() and not old.exists()
    assert all(d.is_dir() for d in others)


def test_recipe_hash_follows_the_recipe():
    base = tbmod.recipe()
    assert tbmod.recipe_hash(base) == tbmod.recipe_hash(tbmod.recipe())
    assert tbmod.recipe_hash(tbmod.recipe(["jq"])) != tbmod.recipe_hash(base)
    assert tbmod.recipe_hash({**base, "mirror": "http://mirror.invalid/debian"}) != tbmod.recipe_hash(base)


def test_mirror_is_read_from_apt_sources(tmp_path, monkeypatch):
    monkeypatch.delenv("DBRS_TESTBED_MIRROR", raising=False)
    (tmp_path / "sources.list.d").mkdir()
    with pytest.raises(tbmod.TestbedError, match="DBRS_TESTBED_MIRROR"):
        tbmod.apt_mirror(apt_dir=tmp_path)
    (tmp_path / "sources.list.d/debian.sources").write_text(textwrap.dedent("""\
        Types: deb
        URIs: http://security.example.invalid/debian-security
        Suites: bookworm-security
        Components: main

        Types: deb
        URIs: http://archive.example.invalid/debian/
        Suites: bookworm bookworm-updates
        Components: main
        """))
    assert tbmod.apt_mirror(apt_dir=tmp_path) == "http://archive.example.invalid/debian"
    (tmp_path / "sources.list").write_text("deb [arch=amd64] http://one.example.invalid/debian bookworm main\n")
    assert tbmod.apt_mirror(apt_dir=tmp_path) == "http://one.example.invalid/debian"


# ------------------------------------------------------------------------------------ hosts

def test_hosts_boot_isolated_and_reach_each_other_over_tcp(testbed):
    tb = testbed()
    hosts = tb.boot({"m1": "10.77.0.11", "m2": "10.77.0.12"})
    m1, m2 = hosts["m1"], hosts["m2"]
    for h in (m1, m2):
        assert h.state() == "running", h.run("systemctl --failed --no-legend", check=False).stdout
        assert h.run("hostname").stdout.strip() == h.name
        assert f"inet {h.ip}/24" in h.run(["ip", "-4", "-o", "addr", "show", "eth0"]).stdout
        assert h.run(["getent", "hosts", "localhost"]).returncode == 0
    assert m1.run("cat /etc/machine-id").stdout != m2.run("cat /etc/machine-id").stdout
    # The test addresses exist only inside the bed's namespaces, never on this machine.
    assert "10.77.0.11" not in subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout

    _listen(m1, 7001)
    m2.run(f"printf 'hello from m2\\n' | nc -N -w 5 {m1.ip} 7001")
    assert _until(lambda: m1.read_file("/root/tb-listen.out") == b"hello from m2\n")


def test_run_reports_failures_with_host_and_stderr(testbed):
    m1 = testbed().boot({"m1": "10.77.0.11"})["m1"]
    with pytest.raises(HostCommandError) as e:
        m1.run("echo boom >&2; exit 3")
    assert e.value.returncode == 3 and "m1" in str(e.value) and "boom" in str(e.value)
    assert m1.run(["sh", "-c", "exit 4"], check=False).returncode == 4
    assert m1.run("cat", input=b"\x00\xffbin", text=False).stdout == b"\x00\xffbin"


def test_nft_rule_in_one_host_blocks_the_other(testbed):
    hosts = testbed().boot({"m1": "10.77.0.11", "m2": "10.77.0.12", "outsider": "10.77.0.99"})
    m1, m2, out = hosts["m1"], hosts["m2"], hosts["outsider"]
    _listen(m1, 7002, keep=True)
    assert _connects(m2, m1.ip, 7002) and _connects(out, m1.ip, 7002)
    m1.run(["nft", "-f", "-"], input=textwrap.dedent(f"""\
        table inet tbtest {{
          chain input {{
            type filter hook input priority 0; policy accept;
            ip saddr {m2.ip} tcp dport 7002 drop
          }}
        }}
        """))
    assert not _connects(m2, m1.ip, 7002)
    assert _connects(out, m1.ip, 7002)
    # The rule lives in m1's namespace only: m2 still accepts from m1, and this machine has no such table.
    assert "tbtest" not in m2.run(["nft", "list", "tables"]).stdout
    assert "tbtest" not in subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout


def test_reboot_keeps_disk_state_and_is_a_real_new_boot(testbed, tmp_path):
    m1 = testbed().boot({"m1": "10.77.0.11"})["m1"]
    m1.write_file("/etc/dbrs/written-from-outside", "outside\n", mode=0o600)
    m1.run("echo inside > /var/lib/persist; echo gone > /run/volatile")
    machine_id, leader = m1.read_file("/etc/machine-id"), m1.leader

    assert m1.poweroff() is True  # orderly: systemd shut down before the timeout
    assert not m1.running
    assert not tbmod._alive(leader)
    # Files of a stopped host are still reachable (through chroot, so symlinks resolve inside it).
    (tmp_path / "tree/sub").mkdir(parents=True)
    (tmp_path / "tree/sub/x.sh").write_text("#!/bin/sh\n")
    (tmp_path / "tree/sub/x.sh").chmod(0o750)
    m1.copy_in(tmp_path / "tree", "/opt/tree")
    assert m1.read_file("/var/lib/persist") == b"inside\n"

    m1.start()
    assert m1.leader != leader
    assert m1.read_file("/etc/dbrs/written-from-outside") == b"outside\n"
    assert m1.run("stat -c %a /etc/dbrs/written-from-outside").stdout.strip() == "600"
    assert m1.read_file("/var/lib/persist") == b"inside\n"
    assert m1.run("stat -c %a /opt/tree/sub/x.sh").stdout.strip() == "750"
    assert m1.run("test -e /run/volatile", check=False).returncode == 1  # /run is fresh: a real boot
    assert m1.read_file("/etc/machine-id") == machine_id
    assert m1.state() in ("running", "degraded")


def test_testinfra_backend_sees_inside_the_host(testbed):
    m1 = testbed().boot({"m1": "10.77.0.11"})["m1"]
    host = m1.testinfra()
    assert host.run("hostname").stdout.strip() == "m1"
    assert host.file("/etc/hosts").contains("localhost")
    assert host.file("/etc/machine-id").size == 33
    assert host.service("systemd-journald").is_running
    assert host.service("apt-daily.timer").is_masked
    assert not host.socket("tcp://0.0.0.0:7003").is_listening
    _listen(m1, 7003)
    assert host.socket("tcp://0.0.0.0:7003").is_listening
    m1.reboot()  # the testinfra host follows the new PID 1
    assert host.run("systemctl is-system-running").stdout.strip() in ("running", "degraded")
    assert not host.socket("tcp://0.0.0.0:7003").is_listening


def test_boot_refuses_non_private_or_duplicate_addresses(testbed):
    tb = testbed()
    with pytest.raises(ValueError):
        tb.boot({"pub": "8.8.8.8"})
    with pytest.raises(ValueError):
        tb.boot({"lo": "127.0.0.2"})
    with pytest.raises(ValueError):
        tb.boot({"a": "10.77.0.11", "b": "10.77.0.11"})
    assert _empty(leftovers(tb.id))  # nothing was created for a refused spec


# ----------------------------------------------------------------------------------- cleanup

def test_close_leaves_no_mount_netns_process_or_cgroup(testbed):
    tb = testbed()
    hosts = tb.boot({"m1": "10.77.0.11", "m2": "10.77.0.12"})
    # Processes of several kinds: a service, a stray background job started through nsenter.
    _listen(hosts["m1"], 7004)
    hosts["m2"].run("setsid sleep 600 >/dev/null 2>&1 < /dev/null &")
    pids = [h._proc.pid for h in hosts.values()] + [h.leader for h in hosts.values()]
    before = leftovers(tb.id)
    assert len(before["mounts"]) == 2 and len(before["netns"]) == 3 and before["cgroups"] and before["processes"]

    tb.close()

    assert _empty(leftovers(tb.id)), leftovers(tb.id)
    assert str(tb.dir) not in Path("/proc/mounts").read_text()
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert tb.id not in netns
    assert not any(tbmod._alive(p) for p in pids)
    assert not any(Path(cg).exists() for cg in before["cgroups"])
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "sleep 600" not in ps and str(tb.dir) not in ps


_CHILD = """
import sys, time
sys.path.insert(0, {here!r})
import testbed

def run(tb):
    tb.boot({{"k1": "10.77.0.21", "k2": "10.77.0.22"}})
    print(tb.id, flush=True)
    time.sleep(120)

tb = testbed.Testbed(rootfs={rootfs!r})
if {with_context}:
    with tb:  # an interrupt must unwind through __exit__
        run(tb)
else:
    run(tb)
"""


def _child(rootfs, with_context: bool):
    """Another process that boots a bed and sleeps, to be interrupted or killed."""
    code = _CHILD.format(here=str(HERE), rootfs=str(rootfs), with_context=with_context)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True)
    bed_id = p.stdout.readline().strip()
    if not bed_id.startswith(tbmod.PREFIX):
        p.kill()
        pytest.fail(f"child did not boot its bed (rc {p.wait()})")
    assert len(leftovers(bed_id)["netns"]) == 3
    return p, bed_id


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interrupted_run_cleans_up_after_itself(rootfs, sig):
    p, bed_id = _child(rootfs, with_context=True)
    p.send_signal(sig)
    p.wait(30)
    assert _empty(leftovers(bed_id)), leftovers(bed_id)


def test_cleanup_stale_removes_what_a_killed_run_left(rootfs):
    p, bed_id = _child(rootfs, with_context=False)
    p.kill()
    p.wait(10)
    left = leftovers(bed_id)
    assert left["mounts"] and left["netns"]  # SIGKILL leaves the bed behind…
    assert bed_id in tbmod.cleanup_stale()  # …and the next run removes it
    assert _empty(leftovers(bed_id)), leftovers(bed_id)


def test_cleanup_stale_spares_a_live_bed(testbed):
    tb = testbed()
    tb.boot({"m1": "10.77.0.11"})
    assert tb.id not in tbmod.cleanup_stale()
    assert tb["m1"].state() == "running"
