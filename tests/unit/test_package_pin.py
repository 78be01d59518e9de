"""The apt pin that keeps MongoDB's server packages at the spec's version until `dbrs upgrade` moves them."""

import shutil
import subprocess
from dataclasses import replace

import pytest

from installer.host import packages
from installer.host.target import OsRelease, Target

from .test_preflight_packages import target

BOOKWORM = OsRelease("debian", "12", "bookworm")


def live(version="8.0", **kw):
    t = target(version)
    return replace(Target(spec=t.spec, members=t.members, host_members=t.host_members, os=BOOKWORM),
                   **{"live": True, "packages": True, **kw})


def test_pin_is_written_before_the_packages_are_installed():
    for t in (live("7.0"), live("7.0", debs_from="/srv/debs")):
        items = packages.items(t)
        kinds = [(i.kind, getattr(i, "path", "")) for i in items]
        pin_at = kinds.index(("file", packages.PIN))
        assert pin_at < [k for k, _ in kinds].index("packages")
        text = items[pin_at].content.decode()
        assert "Pin: version 7.0.*\nPin-Priority: 990" in text and "Pin: version *\nPin-Priority: -1" in text
        assert items[pin_at].mode == 0o644


def test_no_pin_when_dbrs_installs_no_packages():
    assert not [i for i in packages.items(live(packages=False)) if getattr(i, "path", "") == packages.PIN]


def _deb(tmp, version):
    d = tmp / f"pkg-{version}"
    (d / "DEBIAN").mkdir(parents=True)
    (d / "DEBIAN/control").write_text(f"Package: mongodb-org-server\nVersion: {version}\nArchitecture: all\n"
                                      "Maintainer: stand-in <t@example.invalid>\nDescription: stand-in\n")
    subprocess.run(["dpkg-deb", "-b", str(d), str(tmp / "repo" / f"server_{version}.deb")], check=True,
                   capture_output=True)


@pytest.mark.skipif(not all(shutil.which(t) for t in ("apt-get", "apt-cache", "dpkg-deb", "dpkg-scanpackages")),
                    reason="needs apt and dpkg-dev")
@pytest.mark.parametrize("pinned,candidate", [("7.0", "7.0.14"), ("8.0", "8.0.4")])
def test_apt_itself_takes_only_the_pinned_series(tmp_path, pinned, candidate):
    """A private apt root with a repository holding 7.0.14 and 8.0.4: apt's candidate is the pinned series,
    so an `apt upgrade` or unattended-upgrades run never moves the server to the newer major version."""
    (tmp_path / "repo").mkdir()
    for v in ("7.0.14", "8.0.4"):
        _deb(tmp_path, v)
    idx = subprocess.run(["dpkg-scanpackages", "-m", "."], cwd=tmp_path / "repo", capture_output=True, check=True)
    (tmp_path / "repo/Packages").write_bytes(idx.stdout)
    for d in ("etc/preferences.d", "etc/apt.conf.d", "state/lists/partial", "cache/archives/partial"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "state/status").write_text("")
    (tmp_path / "etc/sources.list").write_text(f"deb [trusted=yes] file:{tmp_path}/repo ./\n")
    pin = next(i for i in packages.items(live(pinned)) if getattr(i, "path", "") == packages.PIN)
    (tmp_path / "etc/preferences.d/dbrs-mongodb-org").write_bytes(pin.content)
    opts = []
    for k, v in (("Dir::Etc", "etc"), ("Dir::State", "state"), ("Dir::State::Lists", "state/lists"),
                 ("Dir::State::status", "state/status"), ("Dir::Cache", "cache")):
        opts += ["-o", f"{k}={tmp_path / v}"]
    opts += ["-o", "Debug::NoLocking=1"]
    subprocess.run(["apt-get", *opts, "update", "-q"], check=True, capture_output=True)
    policy = subprocess.run(["apt-cache", *opts, "policy", "mongodb-org-server"], check=True, capture_output=True,
                            text=True).stdout
    assert f"Candidate: {candidate}" in policy, policy
    assert "W:" not in policy
