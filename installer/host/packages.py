"""MongoDB's own apt repository and the packages a member host needs. Pure.

The repository line and key follow MongoDB's install guides for Debian and
Ubuntu; the key is kept as an armored `.asc` keyring, which apt reads
directly with `signed-by` (no gpg needed on the host).
"""

from __future__ import annotations

from ..errors import DbrsError
from .items import AptKey, File, Link, Packages, unit_path
from ..render import render

MONGODB_PACKAGES = ("mongodb-org-server", "mongodb-mongosh", "mongodb-database-tools")
DISTRO_PACKAGES = ("nftables",)
SOURCES = "/etc/apt/sources.list.d/mongodb-org-{version}.list"
KEYRING = "/usr/share/keyrings/mongodb-server-{version}.asc"
KEY_URL = "https://www.mongodb.org/static/pgp/server-{version}.asc"
PIN = "/etc/apt/preferences.d/dbrs-mongodb-org"
# The server's packages (mongodb-org, -server, -mongos, -database, -tools ...) share its version; mongosh and
# the database tools have version lines of their own, compatible across server versions, so they are not pinned.
PINNED = "mongodb-org*"

# (os id, codename) -> (repository path, component, MongoDB versions with packages)
SUPPORTED = {
    ("debian", "bookworm"): ("debian", "main", ("7.0", "8.0")),
    ("ubuntu", "jammy"): ("ubuntu", "multiverse", ("7.0", "8.0")),
    ("ubuntu", "noble"): ("ubuntu", "multiverse", ("8.0",)),
}


def repository(os_release, version):
    """(url, suite, component) for this OS and MongoDB version, or a clear error."""
    key = (os_release.id, os_release.codename)
    if key not in SUPPORTED:
        names = ", ".join(f"{i} {c}" for i, c in SUPPORTED)
        raise DbrsError(f"{os_release.pretty} has no MongoDB packages dbrs knows of (supported: {names}); "
                        "use --packages-from DIR with your own .debs or --no-packages")
    path, component, versions = SUPPORTED[key]
    if version not in versions:
        raise DbrsError(f"MongoDB {version} has no packages for {os_release.pretty}; "
                        f"set cluster.mongodb_version to one of {', '.join(versions)}")
    return f"https://repo.mongodb.org/apt/{path}", f"{os_release.codename}/mongodb-org/{version}", component


def items(target):
    """Mask the stock mongod.service first, so installing the package never starts it on 27017; with
    --no-packages too, since an operator-installed package ships the same unit (two mongods after a reboot)."""
    mask = Link(unit_path("mongod.service"), "/dev/null")
    if not target.packages:
        return [mask]
    if target.debs_from:
        return [mask, pin(target.version), Packages(DISTRO_PACKAGES + MONGODB_PACKAGES, debs_from=target.debs_from)]
    version = target.version
    url, suite, component = repository(target.os, version)
    keyring = KEYRING.format(version=version)
    return [
        mask,
        AptKey(KEY_URL.format(version=version), keyring),
        File(SOURCES.format(version=version),
             render("apt/mongodb-org.list.j2", version=version, keyring=keyring, url=url, suite=suite,
                    component=component), 0o644),
        pin(version),
        Packages(DISTRO_PACKAGES + MONGODB_PACKAGES),
    ]


def pin(version):
    """The apt preferences file that keeps the server packages at `version`'s series: written before the
    packages are installed, so neither that install nor a later `apt upgrade` or unattended-upgrades can take
    another major version (priority -1 forbids it; 990 prefers this one but, below 1000, never downgrades an installed newer one)."""
    return File(PIN, render("apt/mongodb-org.pref.j2", version=version, packages=PINNED), 0o644)
