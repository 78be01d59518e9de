"""Fixtures of the protocol tier: a stand-in PSA set on MockupDB and a cluster spec pointing at it.

The spec names 127.0.0.1 and the stand-in's ports, so the tool reaches the
stand-in through its own `--config` path, with no monkeypatching.
"""

from __future__ import annotations

import pytest

from ..conftest import write_cluster
from .standin import StandInSet

PSA_ROLES = (("mongod1", "primary"), ("mongod2", "secondary"), ("mongod3", "arbiter"))


def spec_text(rs, write_concern="majority", express=False):
    out = ["[cluster]", f'name = "{rs.name}"', 'mongodb_version = "8.0"', f'write_concern = "{write_concern}"', ""]
    for m in rs.members.values():
        out += ["[[members]]", f'name = "{m.name}"', 'host = "127.0.0.1"', f"port = {m.port}", f'role = "{m.role}"', ""]
    if express:
        out += ["[mongo_express]", "enabled = true", ""]
    return "\n".join(out)


@pytest.fixture
def standin():
    """A PSA stand-in set, not started: a test may first stop or break members."""
    rs = StandInSet(PSA_ROLES)
    yield rs
    rs.stop()


@pytest.fixture
def spec_for(tmp_path):
    """spec_for(rs, **kw) -> path of a cluster.toml (secrets next to it) for the stand-in set."""
    def make(rs, **kw):
        return str(write_cluster(tmp_path, spec_text(rs, **kw)))

    return make
