"""Rendered host files compared with reviewed golden copies.

Regenerate after an intended change with DBRS_UPDATE_GOLDEN=1 and review
the diff like code: these files are what lands on operators' hosts.
"""

import os
from pathlib import Path

import pytest

from ..conftest import write_cluster

GOLDEN = Path(__file__).parent / "golden"
SECRET = {"etc/dbrs/keyfile", "etc/dbrs/secrets.toml", "etc/dbrs/backup.key"}

def single_host_7():
    from installer import cluster, spec

    return cluster.spec_text(spec.single_host(mongodb_version="7.0")).decode()


CASES = {
    "psa-primary": (None, ["--role", "primary"]),
    "psa-secondary": (None, ["--role", "secondary"]),
    "psa-arbiter": (None, ["--role", "arbiter"]),
    "single-host-7.0": (single_host_7, []),
}


def tree(root):
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_file() and rel not in SECRET:
            out[rel] = p.read_text()
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_tree_matches_golden(case, staging, run_install):
    spec_text, args = CASES[case]
    if spec_text:
        write_cluster(staging, spec_text())
    else:
        write_cluster(staging)
    result = run_install("--root", str(staging), *args)
    assert result.exit_code == 0, result.output
    got = tree(staging)
    golden = GOLDEN / case
    if os.environ.get("DBRS_UPDATE_GOLDEN"):
        for rel, text in got.items():
            (golden / rel).parent.mkdir(parents=True, exist_ok=True)
            (golden / rel).write_text(text)
    want = {str(p.relative_to(golden)): p.read_text() for p in sorted(golden.rglob("*")) if p.is_file()}
    assert sorted(got) == sorted(want)
    for rel in want:
        assert got[rel] == want[rel], rel
