"""What one run of dbrs-install is aimed at: the spec, this host's members, host facts.

A frozen value handed to every pure `items()` function, so they all see the
same decisions (which members, which addresses, packages or not).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Optional

from .. import paths, tls


class OsRelease(NamedTuple):
    id: str
    version_id: str
    codename: str

    @property
    def pretty(self):
        return f"{self.id} {self.version_id} ({self.codename})"


@dataclass(frozen=True)
class Target:
    spec: object
    members: tuple                      # installed by this run
    host_members: tuple                 # every spec member on this host (shared firewall)
    spec_path: str = str(paths.SPEC)
    addresses: dict = field(default_factory=dict)   # member host -> tuple of IP strings
    os: Optional[OsRelease] = None
    in_container: bool = False
    packages: bool = True
    debs_from: Optional[str] = None
    start: bool = True
    live: bool = True                   # the real host: users, packages, systemctl, chown (not --root)
    secret_files: tuple = ()            # File items for spec/keyfile/secrets/backup key
    memory_bytes: Optional[int] = None  # RAM of the real host (None under --root)
    dbrs_bin: Optional[str] = None      # this installation's dbrs script (None under --root)
    secrets: Optional[object] = None    # secrets.Secrets, for files that embed a password (mongo-express env)
    tls_step: Optional[str] = None      # the rolling TLS mode of this host (paths.TLS_STEP), None: cluster.tls

    @property
    def tls_mode(self):
        """net.tls.mode this run gives its members."""
        return tls.server_mode(self.spec.cluster.tls, self.tls_step)

    @property
    def etc(self):
        from pathlib import PurePosixPath

        return PurePosixPath(self.spec_path).parent

    @property
    def version(self):
        return self.spec.cluster.mongodb_version

    @property
    def data_bearing(self):
        return [m for m in self.members if m.data_bearing]

    @property
    def has_primary(self):
        return any(m.role == "primary" for m in self.members)
